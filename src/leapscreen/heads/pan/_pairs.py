"""The labelled (sample, perturbation) pairs of a pan-perturbation head, and their sample-grouped splits.

A pan head trains one model on every labelled pair. Its cross-validation folds and its inner
early-stopping split are drawn over **samples**, so that all pairs of a sample are on the same side
(a sample's responses to other perturbations would otherwise leak its identity into validation).
Arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np

from leapscreen.heads._cv import kfold_assignment

__all__ = ["column_scale", "inner_split", "pairs_of", "sample_folds"]


def sample_folds(n_samples: int, n_folds: int, random_state: int | None) -> np.ndarray:
    """Fold of every sample (KFold sizes, seeded shuffle: :func:`~leapscreen.heads._cv.kfold_assignment`)."""
    return kfold_assignment(np.ones(n_samples, dtype=bool), n_folds, random_state)


def inner_split(
    samples: np.ndarray, fraction: float, random_state: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Split training ``samples`` (indices) into (fit, validation) samples for early stopping.

    ``round(fraction * len(samples))`` samples (at least 1 when there are 4 or more, none
    otherwise) go to validation; both parts are returned sorted.
    """
    samples = np.asarray(samples)
    n_val = 0
    if samples.size >= 4 and fraction > 0:
        n_val = min(max(int(round(fraction * samples.size)), 1), samples.size - 2)
    perm = np.random.default_rng(random_state).permutation(samples.size)
    return np.sort(samples[perm[n_val:]]), np.sort(samples[perm[:n_val]])


def pairs_of(T: np.ndarray, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labelled pairs of the rows ``samples`` of ``T`` (n, p) (NaN = not labelled).

    Returns
    -------
    rows : numpy.ndarray of int
        Sample of every pair (an index into the rows of ``T``).
    cols : numpy.ndarray of int
        Perturbation of every pair.
    target : numpy.ndarray
        ``T[rows, cols]``.
    """
    sub = T[samples]
    r, c = np.nonzero(~np.isnan(sub))
    rows = np.asarray(samples)[r]
    return rows, c, T[rows, c]


def column_scale(Y: np.ndarray, labelled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (ddof 0; 1 where not positive) of each column's labelled values."""
    cnt = labelled.sum(axis=0)
    Y0 = np.where(labelled, Y, 0.0)
    mean = Y0.sum(axis=0) / np.maximum(cnt, 1)
    var = (np.where(labelled, (Y - mean) ** 2, 0.0)).sum(axis=0) / np.maximum(cnt, 1)
    sd = np.sqrt(var)
    return mean, np.where(sd > 0, sd, 1.0)
