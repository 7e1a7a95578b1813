"""The batched gather-and-solve of the path solver on a torch device (torch imported on use only).

``device="cuda"`` (or any torch device) moves the Gram matrices there once per fit and solves the
padded sub-systems with ``torch.linalg.solve_ex``; ``"torch-cpu"`` runs this path on the CPU.
"""

from __future__ import annotations

import numpy as np

from leapscreen.heads._solvers._buckets import (
    _Bucket,
    _padded_index,
    _padded_rhs,
    _scatter_padded,
)

__all__ = ["check_device", "gather_solve_torch", "torch_device"]

# the Gram matrices of the current fit on the device: {(id(mats), device): (mats, tensor)}
_TORCH_CACHE: dict = {}


def torch_device(device: str) -> str:
    """Torch device of a ``device`` argument (``"torch-cpu"`` runs the torch path on the CPU)."""
    return "cpu" if device == "torch-cpu" else device


def check_device(device: str) -> None:
    """Raise if ``device`` (not ``"cpu"``) cannot hold a torch tensor (torch missing, no GPU)."""
    import torch

    torch.empty(1, device=torch_device(device))


def gather_solve_torch(mats: np.ndarray, d: int, bucket: _Bucket, device: str) -> np.ndarray:
    """``_gather_solve_part`` with the gather and the solve on a torch device."""
    import torch

    slot, sets, sizes, ps, rhs, shift = bucket
    idx = _padded_index(sets, sizes, d, ps)
    device = torch_device(device)
    key = (id(mats), device)
    cached = _TORCH_CACHE.get(key)
    if cached is None or cached[0] is not mats:
        _TORCH_CACHE.clear()
        cached = (mats, torch.as_tensor(mats, device=device))
        _TORCH_CACHE[key] = cached
    mt = cached[1]
    it = torch.as_tensor(idx, device=device)
    st = torch.as_tensor(slot, device=device)
    M = mt[st[:, None, None], it[:, :, None], it[:, None, :]]
    if shift is not None:
        diag = torch.arange(ps, device=device)
        M[:, diag, diag] += torch.as_tensor(shift, device=device)[:, None]
    rr = _padded_rhs(rhs, idx)
    x, info = torch.linalg.solve_ex(M, torch.as_tensor(rr, device=device).transpose(1, 2))
    x = x.transpose(1, 2).cpu().numpy()
    x[info.cpu().numpy() != 0] = np.nan
    return _scatter_padded(x, idx, d)
