"""Padded buckets of equally sized sub-problems: the index, right-hand sides and scatter that the
numpy and torch gather-solves share (arrays in, arrays out)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

_PAD = 8  # solve sizes are padded to a multiple of this, so that problems can be batched


def _padded_index(sets: np.ndarray, sizes: np.ndarray, d: int, ps: int) -> np.ndarray:
    """Coordinates of each problem's active set, padded to ``ps`` columns.

    Padded positions point at distinct dummy coordinates d, d+1, ... (identity rows, zero rhs).
    """
    rows, cols = np.nonzero(sets)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pos = np.arange(rows.size) - np.repeat(starts, sizes)
    idx = d + np.arange(ps)[None, :] - sizes[:, None]
    idx[rows, pos] = cols
    return idx


def _padded_rhs(rhs: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The entries ``idx`` of every right-hand side (dummy coordinates give 0): (b, r, ps)."""
    nb, r, _ = rhs.shape
    padded = np.concatenate([rhs, np.zeros((nb, r, _PAD))], axis=2)
    return np.take_along_axis(
        padded, np.broadcast_to(idx[:, None, :], (nb, r, idx.shape[1])), axis=2
    )


def _scatter_padded(x: np.ndarray, idx: np.ndarray, d: int) -> np.ndarray:
    """Solutions ``x`` (b, r, ps) on the coordinates ``idx`` back to (b, r, d), zero elsewhere."""
    nb, r, ps = x.shape
    out = np.zeros((nb, r, d + _PAD))
    np.put_along_axis(out, np.broadcast_to(idx[:, None, :], (nb, r, ps)), x, axis=2)
    return out[:, :, :d]


class _Bucket(NamedTuple):
    """Problems of one padded size ``ps``: their matrices, index sets, set sizes, rhs and shifts."""

    slot: np.ndarray
    sets: np.ndarray
    sizes: np.ndarray
    ps: int
    rhs: np.ndarray
    shift: np.ndarray | None
