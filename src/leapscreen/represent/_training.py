"""The autoencoders' training loop: seeded split, early stopping, retrain for the best epoch count.

See :mod:`leapscreen.represent.autoencoder` for the schedule and why. Every random draw comes from
a generator seeded with ``random_state * 1_000_003 + offset``: offset 0 the initial weights, 1 the
validation split, 2 the validation corruption, 3 the validation run, 4 the retrain.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from leapscreen.represent._network import ENCODE_BATCH, AENet, adam, lr_factor, vime_corrupt

__all__ = ["TrainConfig", "TrainResult", "corrupt", "new_net", "train"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """The training settings of an autoencoder (its constructor parameters, checked)."""

    latent_dim: int
    hidden_dims: tuple[int, ...]
    mask_prob: float
    noise_std: float
    lr: float
    batch_size: int
    max_epochs: int
    patience: int
    val_fraction: float
    weight_decay: float
    random_state: int
    device: str
    warmup_epochs: float
    retrain: bool
    min_delta: float
    schedule: str

    def seed(self, offset: int) -> int:
        return int(self.random_state) * 1_000_003 + offset


@dataclass
class TrainResult:
    """The trained network and how it was trained."""

    net: AENet
    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int | None = None
    n_epochs: int = 0
    stopped_early: bool = False


def new_net(cfg: TrainConfig, n_in: int, seed_offset: int = 0) -> AENet:
    """A freshly initialised network on ``cfg.device`` (weights drawn on the CPU, seeded)."""
    net = AENet(n_in, cfg.latent_dim, list(cfg.hidden_dims))
    net.reset(torch.Generator().manual_seed(cfg.seed(seed_offset)))
    return net.to(torch.device(cfg.device))


def _device_generator(cfg: TrainConfig, seed_offset: int) -> torch.Generator:
    gen = torch.Generator(device=torch.device(cfg.device))
    gen.manual_seed(cfg.seed(seed_offset))
    return gen


def corrupt(cfg: TrainConfig, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """VIME masking (``mask_prob``) then Gaussian noise (``noise_std``)."""
    xt, _ = vime_corrupt(x, cfg.mask_prob, gen)
    if cfg.noise_std > 0:
        noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        xt = xt + cfg.noise_std * noise
    return xt


def _loss(net: AENet, X_in: torch.Tensor, X_target: torch.Tensor) -> float:
    net.eval()
    total = 0.0
    with torch.inference_mode():
        for start in range(0, X_in.shape[0], ENCODE_BATCH):
            sl = slice(start, start + ENCODE_BATCH)
            total += float(torch.sum((net(X_in[sl]) - X_target[sl]) ** 2))
    return total / X_target.numel()


def _run(
    cfg: TrainConfig,
    net: AENet,
    X: torch.Tensor,
    n_epochs: int,
    gen: torch.Generator,
    X_val: torch.Tensor | None = None,
    X_val_in: torch.Tensor | None = None,
) -> tuple[list[float], list[float], int, dict[str, Any] | None]:
    """Train ``net`` in place for up to ``n_epochs`` (early stopping when validation given)."""
    opt = adam(net, cfg.lr, cfg.weight_decay)
    n = X.shape[0]
    n_batches = max(1, n // cfg.batch_size)
    train_hist: list[float] = []
    val_hist: list[float] = []
    best, best_epoch, best_state, waited = math.inf, 0, None, 0
    for epoch in range(n_epochs):
        net.train()
        order = torch.randperm(n, generator=gen, device=X.device)
        total = 0.0
        for i, idx in enumerate(torch.tensor_split(order, n_batches)):
            factor = lr_factor(
                epoch + (i + 1) / n_batches, cfg.warmup_epochs, cfg.max_epochs, cfg.schedule
            )
            for group in opt.param_groups:
                group["lr"] = cfg.lr * factor
            x = X[idx]
            loss = torch.mean((net(corrupt(cfg, x, gen)) - x) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * x.shape[0]
        train_hist.append(total / n)
        if X_val is None:
            continue
        val = _loss(net, X_val_in, X_val)
        val_hist.append(val)
        if val < best * (1.0 - cfg.min_delta):
            best, best_epoch, waited = val, epoch + 1, 0
            if not cfg.retrain:
                best_state = copy.deepcopy(net.state_dict())
        else:
            waited += 1
            if waited >= cfg.patience:
                break
    return train_hist, val_hist, best_epoch, best_state


def train(cfg: TrainConfig, X: np.ndarray) -> TrainResult:
    """Train a network on a validated float32 matrix (samples x genes), as documented above."""
    n, d = X.shape
    if n < 2:
        raise ValueError(f"need at least 2 samples to train an autoencoder, got {n}")
    device = torch.device(cfg.device)
    X_all = torch.from_numpy(np.ascontiguousarray(X)).to(device)
    n_val = int(round(n * cfg.val_fraction))
    use_val = cfg.val_fraction > 0 and n_val >= 2 and n - n_val >= 2
    if cfg.val_fraction > 0 and not use_val:
        logger.warning("too few samples (%d) for a validation split: no early stopping", n)
    history: dict[str, list[float]] = {"train": [], "val": [], "refit": []}
    if not use_val:
        net = new_net(cfg, d)
        refit, _, _, _ = _run(cfg, net, X_all, cfg.max_epochs, _device_generator(cfg, 4))
        history["refit"] = refit
        net.eval()
        return TrainResult(net, history, None, cfg.max_epochs, False)
    split_gen = torch.Generator().manual_seed(cfg.seed(1))
    perm = torch.randperm(n, generator=split_gen).to(device)
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    X_tr, X_val = X_all[train_idx], X_all[val_idx]
    X_val_in = corrupt(cfg, X_val, _device_generator(cfg, 2))
    net = new_net(cfg, d)
    train_hist, val_hist, best_epoch, best_state = _run(
        cfg, net, X_tr, cfg.max_epochs, _device_generator(cfg, 3), X_val, X_val_in
    )
    history["train"], history["val"] = train_hist, val_hist
    best = max(1, best_epoch)
    stopped_early = len(val_hist) < cfg.max_epochs
    if cfg.retrain:
        net = new_net(cfg, d)
        refit, _, _, _ = _run(cfg, net, X_all, best, _device_generator(cfg, 4))
        history["refit"] = refit
    elif best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return TrainResult(net, history, best, best, stopped_early)
