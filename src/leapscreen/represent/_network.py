"""The torch side of the autoencoders: the network, VIME corruption, optimiser and schedule.

Imported only when an autoencoder is fitted or loaded (``import leapscreen.represent`` does not
import torch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["ENCODE_BATCH", "AENet", "adam", "apply_module", "lr_factor", "vime_corrupt"]

#: rows encoded at once at inference
ENCODE_BATCH = 4096


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


class AENet(nn.Module):
    """Encoder ``n_in -> hidden... -> latent`` and its mirror, ReLU between hidden layers."""

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


def adam(net: nn.Module, lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam, fused where the device supports it (same update, a third of the CPU time)."""
    try:
        return torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # pragma: no cover - old torch / device
        return torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)


def lr_factor(epoch_pos: float, warmup_epochs: float, max_epochs: int, schedule: str) -> float:
    """Learning-rate multiplier at a fractional epoch: linear warm-up, then cosine (or flat)."""
    warm = 1.0 if warmup_epochs <= 0 else min(1.0, epoch_pos / warmup_epochs)
    if schedule == "constant":
        return warm
    t = min(epoch_pos, max_epochs) / max_epochs
    return warm * 0.5 * (1.0 + math.cos(math.pi * t))


def apply_module(
    net: nn.Module, module: nn.Module, X: np.ndarray, device: str, n_out: int
) -> np.ndarray:
    """``module(X)`` as float32 numpy, without gradients, in batches of :data:`ENCODE_BATCH`."""
    dev = torch.device(device)
    outs = []
    net.eval()
    with torch.inference_mode():
        for start in range(0, X.shape[0], ENCODE_BATCH):
            xb = torch.from_numpy(np.ascontiguousarray(X[start : start + ENCODE_BATCH]))
            outs.append(module(xb.to(dev)).cpu().numpy())
    if not outs:
        return np.zeros((0, n_out), dtype=np.float32)
    return np.concatenate(outs).astype(np.float32, copy=False)
