"""How LEAP combines its members: the plain mean, or weights chosen on out-of-fold predictions.

LEAP's members come in *groups* (one per strategy: a representation type with a head type; the
seeds of a group are exchangeable and always averaged). With ``combine="mean"`` every member counts
the same. With ``combine="cv"`` each perturbation gets its own weights over the groups, chosen by
greedy forward selection with replacement (Caruana et al., 2004) on the groups' **out-of-fold**
predictions of the training rows: at each of ``steps`` steps the group whose addition to the running
average gives the highest Spearman correlation with the perturbation's labelled training responses
is added once, so the weights are multiples of ``1 / steps`` that sum to 1. ``combine="cv-global"``
chooses one weight vector for all perturbations (the highest mean Spearman over perturbations),
which is less noisy when perturbations have few labels.

Out-of-fold predictions come from the heads' own cross-validation (see
:meth:`leapscreen.base.BaseHead.out_of_fold_predictions`); representations never see labels, so a
label is never predicted by a model fitted on it, and the test samples are never used.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from leapscreen.heads._cv import label_groups, spearman_columns

__all__ = ["COMBINE_RULES", "Combine", "greedy_weights"]

Combine = Literal["mean", "cv", "cv-global"]
COMBINE_RULES: tuple[str, ...] = ("mean", "cv", "cv-global")


def _scores(candidates: np.ndarray, Y: np.ndarray, patterns: list[np.ndarray]) -> np.ndarray:
    """Spearman of each candidate (G, n, p) with each column of ``Y`` on its labelled rows: (G, p)."""
    out = np.full(candidates.shape[::2], np.nan)
    for cols in patterns:
        rows = np.flatnonzero(~np.isnan(Y[:, cols[0]]))
        truth = Y[np.ix_(rows, cols)]
        out[:, cols] = spearman_columns(
            candidates[:, rows][:, :, cols], np.broadcast_to(truth, (len(candidates), *truth.shape))
        )
    return out


def greedy_weights(
    oof: np.ndarray, Y: np.ndarray, steps: int = 10, per_perturbation: bool = True
) -> np.ndarray:
    """Weights over groups by greedy forward selection with replacement on out-of-fold predictions.

    Parameters
    ----------
    oof : numpy.ndarray of shape (G, n, p)
        Out-of-fold predictions of the training rows, one slice per group.
    Y : numpy.ndarray of shape (n, p)
        Training responses, NaN = not measured.
    steps : int
        Selection steps: weights are multiples of ``1 / steps``.
    per_perturbation : bool
        One weight vector per perturbation (True) or one for all (False).

    Returns
    -------
    numpy.ndarray of shape (G, p)
        Non-negative weights, each column summing to 1. A perturbation with fewer than three labels
        gets equal weights.
    """
    oof = np.asarray(oof, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    G, _, p = oof.shape
    labelled = ~np.isnan(Y)
    n_lab = labelled.sum(axis=0)
    scored = np.flatnonzero(n_lab >= 3)
    patterns = [np.asarray(c) for c in label_groups(labelled, scored).values()]
    counts = np.zeros((G, p))
    if G == 1 or not scored.size:
        return np.full((G, p), 1.0 / G)
    total = np.zeros(oof.shape[1:])
    for t in range(1, steps + 1):
        scores = _scores((total[None] + oof) / t, Y, patterns)  # (G, p)
        if per_perturbation:
            best = np.argmax(np.nan_to_num(scores, nan=-np.inf), axis=0)  # first group wins a tie
        else:
            best = np.full(p, int(np.argmax(np.nanmean(scores[:, scored], axis=1))))
        counts[best, np.arange(p)] += 1
        total += oof[best, :, np.arange(p)].T
    weights = counts / steps
    weights[:, n_lab < 3] = 1.0 / G
    return weights
