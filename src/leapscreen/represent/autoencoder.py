"""Autoencoder representations: plain, masked (VIME-style) and DAMAE (pooled, aligned sources).

Architecture: an encoder ``d -> hidden... -> latent`` and a mirrored decoder, ReLU between hidden
layers, no activation on the latent or the output. With ``hidden_dims=()`` (the default, as in the
released LEAP) each is one affine layer, the encoder is an affine map and :meth:`linear_map` gives
it exactly.

Training (why not the reference schedule): the reference uses Adam at lr 1e-4 with batches of 1,024,
i.e. one optimiser step per epoch on ~900 samples, for up to 1,000 epochs, and never stops early.
Here Adam (fused) takes mini-batches of ``batch_size`` (64: 12 steps per epoch on 780 samples) at
a peak learning rate of 3e-3, with a linear warm-up over ``warmup_epochs`` and a cosine decay to
zero at ``max_epochs``. Measured on GDSC (780 lines x 5,000 genes, latent 256, 2 threads;
``benchmarks/bench_represent.py``): 14-17 s per seed and a held-out masked loss of 0.441, against
330-515 s and 0.447 for the reference schedule (0.548 after 300 epochs); the exact optimum of the
masked linear objective scores 0.424. The learning rate is a function of the (fractional) epoch
only, so the retrain on all data for the best epoch count follows exactly the schedule the
validation run followed up to that epoch:

1. a seeded split holds out ``val_fraction`` of the samples; training stops when the validation
   loss (the training objective on a corruption of the validation set drawn once) has not improved
   for ``patience`` epochs; ``best_epoch_`` is the epoch of the lowest validation loss;
2. the network is re-initialised (same seed) and trained on all samples for ``best_epoch_``
   epochs (``retrain=False`` keeps the best validation-phase weights instead).

Every random draw (initial weights, split, batch order, masks, noise) comes from generators seeded
with ``random_state``: the same seed gives the same weights, and different seeds differ in
initialisation and corruption, which is the diversity the LEAP ensemble averages over.

Speed note: torch's OpenMP threads spin while they wait; when another process shares the cores
this makes training 5-10x slower. Setting ``OMP_WAIT_POLICY=PASSIVE`` in the environment before
torch is imported avoids it (the benchmark does so).
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from leapscreen.represent.align import SourceAligner

logger = logging.getLogger(__name__)

_STATE_FORMAT = "leapscreen.Autoencoder/1"
_ENCODE_BATCH = 4096

#: Source label of the screened samples of a :class:`DAMAE` when none is given.
PRIMARY_SOURCE = "screen"


def vime_corrupt(
    x: torch.Tensor, mask_prob: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """VIME-style masking: replace entries by the same gene's value in another sample of the batch.

    Each entry is replaced independently with probability ``mask_prob``; the donor row is drawn
    uniformly among the *other* rows of the batch (never the row itself).

    Parameters
    ----------
    x : torch.Tensor, shape (batch, genes)
    mask_prob : float
        Probability that an entry is replaced.
    generator : torch.Generator
        Source of randomness (on the device of ``x``).

    Returns
    -------
    corrupted : torch.Tensor, shape (batch, genes)
    mask : torch.Tensor of bool, shape (batch, genes)
        True where an entry was replaced.
    """
    n_rows = x.shape[0]
    if mask_prob <= 0.0 or n_rows < 2:
        return x, torch.zeros(x.shape, dtype=torch.bool, device=x.device)
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=torch.float32)
    mask = u < mask_prob
    # Given u < p, u / p is uniform on [0, 1): one draw gives both the mask and the donor offset
    # 1..n_rows-1 (the donor is row + offset modulo n_rows, so never the row itself).
    donor = (u * ((n_rows - 1) / mask_prob)).long().clamp_(max=n_rows - 2)
    donor += torch.arange(1, n_rows + 1, device=x.device).unsqueeze(1)
    donor = torch.where(donor >= n_rows, donor - n_rows, donor)
    return torch.where(mask, torch.gather(x, 0, donor), x), mask


class _AENet(nn.Module):
    def __init__(self, n_in: int, latent: int, hidden: Sequence[int]) -> None:
        super().__init__()
        dims = [n_in, *hidden, latent]
        enc: list[nn.Module] = []
        dec: list[nn.Module] = []
        for i in range(len(dims) - 1):
            enc.append(nn.Linear(dims[i], dims[i + 1]))
            if i < len(dims) - 2:
                enc.append(nn.ReLU())
        rdims = dims[::-1]
        for i in range(len(rdims) - 1):
            dec.append(nn.Linear(rdims[i], rdims[i + 1]))
            if i < len(rdims) - 2:
                dec.append(nn.ReLU())
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    def reset(self, generator: torch.Generator) -> None:
        """PyTorch's default Linear initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), seeded."""
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    bound = 1.0 / math.sqrt(module.in_features)
                    module.weight.uniform_(-bound, bound, generator=generator)
                    module.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def _adam(net: nn.Module, lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam, fused where the device supports it (same update, a third of the CPU time)."""
    try:
        return torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # pragma: no cover - old torch / device
        return torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)


def _lr_factor(epoch_pos: float, warmup_epochs: float, max_epochs: int, schedule: str) -> float:
    """Learning-rate multiplier at a fractional epoch: linear warm-up, then cosine (or flat)."""
    warm = 1.0 if warmup_epochs <= 0 else min(1.0, epoch_pos / warmup_epochs)
    if schedule == "constant":
        return warm
    t = min(epoch_pos, max_epochs) / max_epochs
    return warm * 0.5 * (1.0 + math.cos(math.pi * t))


class Autoencoder:
    """Autoencoder of scaled expression (optionally masked and noised), trained with torch.

    Parameters
    ----------
    latent_dim : int, default 256
    hidden_dims : sequence of int, default ()
        Hidden layer widths of the encoder (mirrored in the decoder); empty = affine encoder.
    mask_prob : float, default 0.0
        VIME masking probability (see :func:`vime_corrupt`); the loss is MSE against the clean
        input.
    noise_std : float, default 0.0
        Standard deviation of Gaussian noise added to the (masked) input.
    lr : float, default 3e-3
        Peak Adam learning rate.
    batch_size : int, default 64
        Mini-batch size (batches are balanced, never smaller than this unless the data are).
    max_epochs : int, default 50
        Epochs of the validation run and horizon of the cosine schedule.
    patience : int, default 10
        Epochs without improvement of the validation loss before stopping.
    val_fraction : float, default 0.2
        Fraction of samples held out for early stopping (0: no validation, ``max_epochs`` epochs).
    weight_decay : float, default 0.0
        Adam L2 penalty.
    random_state : int, default 0
    device : str, default "cpu"
    warmup_epochs : float, default 2.0
        Linear learning-rate warm-up.
    retrain : bool, default True
        Retrain on all samples for ``best_epoch_`` epochs (the reference's procedure); False keeps
        the best weights of the validation run.
    min_delta : float, default 1e-4
        Relative decrease of the validation loss that counts as an improvement.
    schedule : {"cosine", "constant"}, default "cosine"
        Learning rate after the warm-up: cosine decay to 0 at ``max_epochs``, or constant
        (the reference's schedule is ``lr=1e-4, batch_size=1024, max_epochs=1000, patience=20,
        warmup_epochs=0, schedule="constant"``).

    Attributes
    ----------
    history_ : dict
        ``"train"`` and ``"val"``: per-epoch training and validation loss of the validation run;
        ``"refit"``: per-epoch training loss of the retrain on all samples.
    best_epoch_ : int or None
        Epoch (1-based) of the lowest validation loss; None without validation.
    n_epochs_ : int
        Epochs the final weights were trained for.
    stopped_early_ : bool
        Whether the validation run stopped before ``max_epochs``.
    n_features_in_ : int
    """

    _default_mask_prob = 0.0

    def __init__(
        self,
        latent_dim: int = 256,
        hidden_dims: Sequence[int] = (),
        mask_prob: float = 0.0,
        noise_std: float = 0.0,
        lr: float = 3e-3,
        batch_size: int = 64,
        max_epochs: int = 50,
        patience: int = 10,
        val_fraction: float = 0.2,
        weight_decay: float = 0.0,
        random_state: int = 0,
        device: str = "cpu",
        warmup_epochs: float = 2.0,
        retrain: bool = True,
        min_delta: float = 1e-4,
        schedule: str = "cosine",
    ) -> None:
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.mask_prob = mask_prob
        self.noise_std = noise_std
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.val_fraction = val_fraction
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.device = device
        self.warmup_epochs = warmup_epochs
        self.retrain = retrain
        self.min_delta = min_delta
        self.schedule = schedule

    # ------------------------------------------------------------------ helpers
    @property
    def is_linear(self) -> bool:
        """Whether the encoder is one affine layer (then :meth:`linear_map` is exact)."""
        return len(tuple(self.hidden_dims)) == 0

    def _param_names(self) -> list[str]:
        return [
            "latent_dim",
            "hidden_dims",
            "mask_prob",
            "noise_std",
            "lr",
            "batch_size",
            "max_epochs",
            "patience",
            "val_fraction",
            "weight_decay",
            "random_state",
            "device",
            "warmup_epochs",
            "retrain",
            "min_delta",
            "schedule",
        ]

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (JSON-able)."""
        params = {k: getattr(self, k) for k in self._param_names()}
        params["hidden_dims"] = [int(h) for h in self.hidden_dims]
        return params

    def _check_params(self) -> None:
        if int(self.latent_dim) < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if any(int(h) < 1 for h in self.hidden_dims):
            raise ValueError(f"hidden_dims must be positive, got {self.hidden_dims}")
        if not 0.0 <= float(self.mask_prob) < 1.0:
            raise ValueError(f"mask_prob must lie in [0, 1), got {self.mask_prob}")
        if float(self.noise_std) < 0:
            raise ValueError(f"noise_std must be >= 0, got {self.noise_std}")
        if int(self.batch_size) < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size}")
        if int(self.max_epochs) < 1 or int(self.patience) < 1:
            raise ValueError("max_epochs and patience must be >= 1")
        if not 0.0 <= float(self.val_fraction) < 1.0:
            raise ValueError(f"val_fraction must lie in [0, 1), got {self.val_fraction}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if float(self.lr) <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet; call fit() first")

    @staticmethod
    def _as_matrix(X: Any, what: str = "X") -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2:
            raise ValueError(f"{what} must be a 2-D array (samples x genes), got shape {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError(f"{what} contains NaN or infinite values; impute them first")
        return X

    def _new_net(self, n_in: int, seed_offset: int = 0) -> _AENet:
        net = _AENet(n_in, int(self.latent_dim), [int(h) for h in self.hidden_dims])
        gen = torch.Generator().manual_seed(int(self.random_state) * 1_000_003 + seed_offset)
        net.reset(gen)
        return net.to(torch.device(self.device))

    def _device_generator(self, seed_offset: int) -> torch.Generator:
        gen = torch.Generator(device=torch.device(self.device))
        gen.manual_seed(int(self.random_state) * 1_000_003 + seed_offset)
        return gen

    def _corrupt(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        xt, _ = vime_corrupt(x, float(self.mask_prob), gen)
        if self.noise_std > 0:
            noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
            xt = xt + float(self.noise_std) * noise
        return xt

    # ------------------------------------------------------------------ training
    def _run(
        self,
        net: _AENet,
        X: torch.Tensor,
        n_epochs: int,
        gen: torch.Generator,
        X_val: torch.Tensor | None = None,
        X_val_in: torch.Tensor | None = None,
    ) -> tuple[list[float], list[float], int, dict[str, torch.Tensor] | None]:
        """Train ``net`` in place for up to ``n_epochs`` (early stopping when validation given)."""
        opt = _adam(net, float(self.lr), float(self.weight_decay))
        n = X.shape[0]
        n_batches = max(1, n // int(self.batch_size))
        train_hist: list[float] = []
        val_hist: list[float] = []
        best, best_epoch, best_state, waited = math.inf, 0, None, 0
        for epoch in range(n_epochs):
            net.train()
            order = torch.randperm(n, generator=gen, device=X.device)
            total = 0.0
            for i, idx in enumerate(torch.tensor_split(order, n_batches)):
                factor = _lr_factor(
                    epoch + (i + 1) / n_batches,
                    float(self.warmup_epochs),
                    int(self.max_epochs),
                    self.schedule,
                )
                for group in opt.param_groups:
                    group["lr"] = float(self.lr) * factor
                x = X[idx]
                loss = torch.mean((net(self._corrupt(x, gen)) - x) ** 2)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * x.shape[0]
            train_hist.append(total / n)
            if X_val is None:
                continue
            val = self._loss(net, X_val_in, X_val)
            val_hist.append(val)
            if val < best * (1.0 - float(self.min_delta)):
                best, best_epoch, waited = val, epoch + 1, 0
                if not self.retrain:
                    best_state = copy.deepcopy(net.state_dict())
            else:
                waited += 1
                if waited >= int(self.patience):
                    break
        return train_hist, val_hist, best_epoch, best_state

    @staticmethod
    def _loss(net: _AENet, X_in: torch.Tensor, X_target: torch.Tensor) -> float:
        net.eval()
        total = 0.0
        with torch.inference_mode():
            for start in range(0, X_in.shape[0], _ENCODE_BATCH):
                sl = slice(start, start + _ENCODE_BATCH)
                total += float(torch.sum((net(X_in[sl]) - X_target[sl]) ** 2))
        return total / X_target.numel()

    def _fit_array(self, X: np.ndarray) -> None:
        """Fit the network on an already validated float32 matrix."""
        self._check_params()
        n, d = X.shape
        if n < 2:
            raise ValueError(f"need at least 2 samples to train an autoencoder, got {n}")
        device = torch.device(self.device)
        X_all = torch.from_numpy(np.ascontiguousarray(X)).to(device)
        n_val = int(round(n * float(self.val_fraction)))
        use_val = float(self.val_fraction) > 0 and n_val >= 2 and n - n_val >= 2
        if float(self.val_fraction) > 0 and not use_val:
            logger.warning("too few samples (%d) for a validation split: no early stopping", n)
        self.history_ = {"train": [], "val": [], "refit": []}
        self.best_epoch_ = None
        self.stopped_early_ = False
        if use_val:
            split_gen = torch.Generator().manual_seed(int(self.random_state) * 1_000_003 + 1)
            perm = torch.randperm(n, generator=split_gen).to(device)
            val_idx, train_idx = perm[:n_val], perm[n_val:]
            X_tr, X_val = X_all[train_idx], X_all[val_idx]
            val_gen = self._device_generator(2)
            X_val_in = self._corrupt(X_val, val_gen)
            net = self._new_net(d)
            train_hist, val_hist, best_epoch, best_state = self._run(
                net, X_tr, int(self.max_epochs), self._device_generator(3), X_val, X_val_in
            )
            self.history_["train"], self.history_["val"] = train_hist, val_hist
            self.best_epoch_ = max(1, best_epoch)
            self.stopped_early_ = len(val_hist) < int(self.max_epochs)
            if self.retrain:
                net = self._new_net(d)
                refit, _, _, _ = self._run(net, X_all, self.best_epoch_, self._device_generator(4))
                self.history_["refit"] = refit
            elif best_state is not None:
                net.load_state_dict(best_state)
            self.n_epochs_ = self.best_epoch_
        else:
            net = self._new_net(d)
            refit, _, _, _ = self._run(net, X_all, int(self.max_epochs), self._device_generator(4))
            self.history_["refit"] = refit
            self.n_epochs_ = int(self.max_epochs)
        net.eval()
        self.net_ = net
        self.n_features_in_ = d
        logger.info(
            "%s seed %s: %d epochs (best %s), final train loss %.4g",
            type(self).__name__,
            self.random_state,
            self.n_epochs_,
            self.best_epoch_,
            (self.history_["refit"] or self.history_["train"])[-1],
        )

    def fit(self, X: np.ndarray, y: Any = None) -> Autoencoder:
        """Train on ``X`` (samples x genes, already scaled).

        Returns
        -------
        Autoencoder
            ``self``.
        """
        self._fit_array(self._as_matrix(X))
        return self

    # ------------------------------------------------------------------ inference
    def _prepare(self, X: Any, sources: Any = None) -> np.ndarray:
        X = self._as_matrix(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} genes, the model was fitted on {self.n_features_in_}"
            )
        return X

    def _apply(self, X: np.ndarray, module: nn.Module) -> np.ndarray:
        device = torch.device(self.device)
        outs = []
        self.net_.eval()
        with torch.inference_mode():
            for start in range(0, X.shape[0], _ENCODE_BATCH):
                xb = torch.from_numpy(np.ascontiguousarray(X[start : start + _ENCODE_BATCH]))
                outs.append(module(xb.to(device)).cpu().numpy())
        if not outs:
            return np.zeros((0, int(self.latent_dim)), dtype=np.float32)
        return np.concatenate(outs).astype(np.float32, copy=False)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Encode samples (no gradient, in batches).

        Returns
        -------
        np.ndarray of float32, shape (n_samples, latent_dim)
        """
        self._check_fitted()
        return self._apply(self._prepare(X), self.net_.encoder)

    def fit_transform(self, X: np.ndarray, y: Any = None) -> np.ndarray:
        """Fit on ``X`` and return its latent representation."""
        return self.fit(X).transform(X)

    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        """Decode the encoding of clean (uncorrupted) samples; same space as the input."""
        self._check_fitted()
        return self._apply(self._prepare(X), self.net_)

    def linear_map(self) -> tuple[np.ndarray, np.ndarray]:
        """The encoder as ``X @ W + b`` (affine encoders only).

        Returns
        -------
        W : np.ndarray of float64, shape (n_genes, latent_dim)
        b : np.ndarray of float64, shape (latent_dim,)
        """
        self._check_fitted()
        if not self.is_linear:
            raise ValueError("linear_map() needs an affine encoder (hidden_dims=())")
        layer = self.net_.encoder[0]
        W = layer.weight.detach().cpu().numpy().astype(np.float64).T
        b = layer.bias.detach().cpu().numpy().astype(np.float64)
        return W, b

    # ------------------------------------------------------------------ persistence
    def _fitted_params(self) -> dict[str, Any]:
        return {
            "n_features_in_": int(self.n_features_in_),
            "history_": {k: [float(v) for v in vs] for k, vs in self.history_.items()},
            "best_epoch_": None if self.best_epoch_ is None else int(self.best_epoch_),
            "n_epochs_": int(self.n_epochs_),
            "stopped_early_": bool(self.stopped_early_),
        }

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able parameters and numpy arrays (the network weights) for :meth:`from_state`."""
        self._check_fitted()
        params = {
            "format": _STATE_FORMAT,
            "class": type(self).__name__,
            "params": self.get_params(),
            "fitted": self._fitted_params(),
        }
        arrays = {
            f"net.{k}": v.detach().cpu().numpy().copy() for k, v in self.net_.state_dict().items()
        }
        return params, arrays

    @classmethod
    def from_state(
        cls, params: dict[str, Any], arrays: dict[str, np.ndarray], device: str = "cpu"
    ) -> Autoencoder:
        """Rebuild a fitted model from :meth:`get_state` output, on ``device``."""
        if params.get("format") != _STATE_FORMAT:
            raise ValueError(f"not an Autoencoder state (format {params.get('format')!r})")
        kwargs = dict(params["params"])
        kwargs["hidden_dims"] = tuple(kwargs["hidden_dims"])
        kwargs["device"] = device
        obj = cls(**kwargs)
        fitted = params["fitted"]
        obj.n_features_in_ = int(fitted["n_features_in_"])
        obj.history_ = {k: list(v) for k, v in fitted["history_"].items()}
        obj.best_epoch_ = fitted["best_epoch_"]
        obj.n_epochs_ = int(fitted["n_epochs_"])
        obj.stopped_early_ = bool(fitted["stopped_early_"])
        net = _AENet(obj.n_features_in_, int(obj.latent_dim), [int(h) for h in obj.hidden_dims])
        state = {
            k[4:]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith("net.")
        }
        net.load_state_dict(state)
        obj.net_ = net.to(torch.device(device)).eval()
        obj._restore_extra(params, arrays)
        return obj

    def _restore_extra(self, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Hook for subclasses with more fitted state."""

    def __repr__(self) -> str:
        changed = [
            f"{k}={getattr(self, k)!r}"
            for k in ("latent_dim", "hidden_dims", "mask_prob", "noise_std", "random_state")
        ]
        return f"{type(self).__name__}({', '.join(changed)})"


class MaskedAutoencoder(Autoencoder):
    """:class:`Autoencoder` with VIME masking on by default (``mask_prob=0.3``)."""

    def __init__(
        self,
        latent_dim: int = 256,
        hidden_dims: Sequence[int] = (),
        mask_prob: float = 0.3,
        noise_std: float = 0.0,
        lr: float = 3e-3,
        batch_size: int = 64,
        max_epochs: int = 50,
        patience: int = 10,
        val_fraction: float = 0.2,
        weight_decay: float = 0.0,
        random_state: int = 0,
        device: str = "cpu",
        warmup_epochs: float = 2.0,
        retrain: bool = True,
        min_delta: float = 1e-4,
        schedule: str = "cosine",
    ) -> None:
        super().__init__(
            latent_dim=latent_dim,
            hidden_dims=hidden_dims,
            mask_prob=mask_prob,
            noise_std=noise_std,
            lr=lr,
            batch_size=batch_size,
            max_epochs=max_epochs,
            patience=patience,
            val_fraction=val_fraction,
            weight_decay=weight_decay,
            random_state=random_state,
            device=device,
            warmup_epochs=warmup_epochs,
            retrain=retrain,
            min_delta=min_delta,
            schedule=schedule,
        )


class DAMAE(MaskedAutoencoder):
    """Data-augmented masked autoencoder: pretrained on pooled, per-source aligned expression.

    The screened samples ``X`` are pooled with unlabelled samples of other data sets
    (``extra_X``, same gene columns, e.g. ``preprocessor.transform(other_expression)``), each
    source is aligned with :class:`~leapscreen.represent.align.SourceAligner`, and a masked
    autoencoder (optionally with Gaussian noise) is trained on the pool.

    Parameters
    ----------
    align : {"standardize", "combat", "none"}, default "standardize"
        Per-source alignment (the paper used ComBat).
    min_source_samples : int, default 10
        See :class:`SourceAligner` (unseen or small sources).
    **others
        As :class:`MaskedAutoencoder`.

    Attributes
    ----------
    aligner_ : SourceAligner
    primary_source_ : str
        Source assumed for samples passed to :meth:`transform` without labels.
    """

    def __init__(
        self,
        latent_dim: int = 256,
        hidden_dims: Sequence[int] = (),
        mask_prob: float = 0.3,
        noise_std: float = 0.0,
        lr: float = 3e-3,
        batch_size: int = 64,
        max_epochs: int = 50,
        patience: int = 10,
        val_fraction: float = 0.2,
        weight_decay: float = 0.0,
        random_state: int = 0,
        device: str = "cpu",
        warmup_epochs: float = 2.0,
        retrain: bool = True,
        min_delta: float = 1e-4,
        schedule: str = "cosine",
        align: str = "standardize",
        min_source_samples: int = 10,
    ) -> None:
        super().__init__(
            latent_dim=latent_dim,
            hidden_dims=hidden_dims,
            mask_prob=mask_prob,
            noise_std=noise_std,
            lr=lr,
            batch_size=batch_size,
            max_epochs=max_epochs,
            patience=patience,
            val_fraction=val_fraction,
            weight_decay=weight_decay,
            random_state=random_state,
            device=device,
            warmup_epochs=warmup_epochs,
            retrain=retrain,
            min_delta=min_delta,
            schedule=schedule,
        )
        self.align = align
        self.min_source_samples = min_source_samples

    def _param_names(self) -> list[str]:
        return [*super()._param_names(), "align", "min_source_samples"]

    def fit(  # type: ignore[override]
        self,
        X: np.ndarray,
        sources: Sequence[Any] | np.ndarray | None = None,
        extra_X: np.ndarray | None = None,
        extra_sources: Sequence[Any] | np.ndarray | None = None,
    ) -> DAMAE:
        """Align the pooled samples per source and train the masked autoencoder on them.

        Parameters
        ----------
        X : np.ndarray, shape (n, genes)
            Screened samples (scaled expression).
        sources : sequence, optional
            Source of each row of ``X``; default all :data:`PRIMARY_SOURCE`.
        extra_X : np.ndarray, shape (m, genes), optional
            Unlabelled samples of other data sets, same gene columns as ``X``.
        extra_sources : sequence, optional
            Source of each row of ``extra_X``; default all ``"extra"``.

        Returns
        -------
        DAMAE
            ``self``.
        """
        X = self._as_matrix(X)
        labels = self._labels(sources, X.shape[0], PRIMARY_SOURCE)
        values, counts = np.unique(labels, return_counts=True)
        primary = str(values[np.argmax(counts)])
        pooled, pooled_labels = X, labels
        if extra_X is not None:
            extra = self._as_matrix(extra_X, "extra_X")
            if extra.shape[1] != X.shape[1]:
                raise ValueError(
                    f"extra_X has {extra.shape[1]} genes but X has {X.shape[1]}; map it onto the "
                    "same genes first (e.g. with the fitted Preprocessor)"
                )
            pooled = np.concatenate([X, extra])
            pooled_labels = np.concatenate(
                [labels, self._labels(extra_sources, extra.shape[0], "extra")]
            )
        aligner = SourceAligner(self.align, min_source_samples=int(self.min_source_samples))
        aligned = aligner.fit_transform(pooled.astype(np.float64), pooled_labels)
        self.aligner_ = aligner
        self.primary_source_ = primary
        self.n_pooled_ = int(pooled.shape[0])
        self._fit_array(aligned.astype(np.float32))
        return self

    @staticmethod
    def _labels(sources: Any, n: int, default: str) -> np.ndarray:
        if sources is None:
            return np.full(n, default, dtype=object)
        labels = np.asarray(
            [str(s) for s in np.asarray(sources, dtype=object).ravel()], dtype=object
        )
        if labels.shape[0] != n:
            raise ValueError(f"got {labels.shape[0]} source labels for {n} samples")
        return labels

    def _prepare(self, X: Any, sources: Any = None) -> np.ndarray:
        X = super()._prepare(X)
        labels = self._labels(sources, X.shape[0], self.primary_source_)
        return self.aligner_.transform(X.astype(np.float64), labels).astype(np.float32)

    def transform(  # type: ignore[override]
        self, X: np.ndarray, sources: Sequence[Any] | np.ndarray | None = None
    ) -> np.ndarray:
        """Align (default source: ``primary_source_``) and encode.

        Returns
        -------
        np.ndarray of float32, shape (n_samples, latent_dim)
        """
        self._check_fitted()
        return self._apply(self._prepare(X, sources), self.net_.encoder)

    def reconstruct(  # type: ignore[override]
        self, X: np.ndarray, sources: Sequence[Any] | np.ndarray | None = None
    ) -> np.ndarray:
        """Reconstruction of clean samples, in the aligned space."""
        self._check_fitted()
        return self._apply(self._prepare(X, sources), self.net_)

    def linear_map(self, source: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Alignment of ``source`` (default ``primary_source_``) composed with the encoder.

        Returns
        -------
        W : np.ndarray of float64, shape (n_genes, latent_dim)
        b : np.ndarray of float64, shape (latent_dim,)
            ``transform(X, sources=[source] * n) == X @ W + b``.
        """
        W_enc, b_enc = super().linear_map()
        scale, shift = self.aligner_.affine(self.primary_source_ if source is None else source)
        return scale[:, None] * W_enc, shift @ W_enc + b_enc

    def _fitted_params(self) -> dict[str, Any]:
        aligner_params, _ = self.aligner_.get_state()
        return {
            **super()._fitted_params(),
            "primary_source_": self.primary_source_,
            "n_pooled_": int(self.n_pooled_),
            "aligner": aligner_params,
        }

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """As :meth:`Autoencoder.get_state`, with the aligner's arrays under ``aligner.``."""
        params, arrays = super().get_state()
        _, aligner_arrays = self.aligner_.get_state()
        arrays.update({f"aligner.{k}": v for k, v in aligner_arrays.items()})
        return params, arrays

    def _restore_extra(self, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        fitted = params["fitted"]
        self.primary_source_ = str(fitted["primary_source_"])
        self.n_pooled_ = int(fitted["n_pooled_"])
        aligner_arrays = {k[8:]: v for k, v in arrays.items() if k.startswith("aligner.")}
        self.aligner_ = SourceAligner.from_state(fitted["aligner"], aligner_arrays)


__all__ = ["DAMAE", "PRIMARY_SOURCE", "Autoencoder", "MaskedAutoencoder", "vime_corrupt"]
