"""The per-perturbation cross-validation engine shared by every head.

Every head fits one model per perturbation (column of ``Y``) on that perturbation's labelled rows
only. What they share, in one place:

* :func:`fallback_columns` - the one fallback rule: a perturbation with fewer than ``min_labels``
  labelled rows, or a constant response (range ``<= 1e-12 * max(1, |mean|)``), is predicted by its
  training mean; the heads log how many and why;
* :func:`label_groups` - perturbations grouped by missingness pattern (same labelled rows, hence
  same folds: their fold problems share one Gram matrix or decomposition);
* :func:`kfold_assignment` - the folds of one perturbation (seeded shuffle, KFold's sizes);
* :func:`spearman_columns` - the validation score (average ranks for ties, constant -> 0);
* :class:`RunningBest` / :func:`choose_alpha` - the one tie rule: among the alphas whose mean
  validation score is within ``1e-12 * max(1, |best|)`` of the best, the head's preferred alpha
  wins. PS-LASSO prefers the smaller alpha (``prefer="smaller"``: the denser model, as the reference
  procedure of LEAP does); ridge prefers the larger (``prefer="larger"``: the more regularised
  model). Either way a tie goes to the alpha visited last when the grid is visited from the least
  to the most preferred end, which lets PS-LASSO choose while it walks down its path. Each head
  declares its preference as the class attribute ``alpha_tie``.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np

#: attribute set on the log records of the fallback rule (they name columns, not perturbations)
FALLBACK_RECORD = "leapscreen_fallback"

__all__ = [
    "TIE",
    "Preference",
    "RunningBest",
    "choose_alpha",
    "corr_of_ranks",
    "fallback_columns",
    "kfold_assignment",
    "label_groups",
    "linear_out_of_fold",
    "rank_average",
    "spearman_columns",
]

TIE = 1e-12  # mean validation scores this close (relative to max(1, |best|)) are ties
Preference = Literal["smaller", "larger"]


# ---------------------------------------------------------------------------------- fallbacks


def fallback_columns(
    Y: np.ndarray, labelled: np.ndarray, min_labels: int, logger: logging.Logger
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Perturbations predicted by their training mean (too few labels, or a constant response).

    Parameters
    ----------
    Y : numpy.ndarray of shape (n, p)
        Responses, NaN = missing.
    labelled : numpy.ndarray of bool, shape (n, p)
        ``~isnan(Y)``.
    min_labels : int
        Fewest labelled rows a cross-validated model needs (``2 * n_folds``: two per fold).
    logger : logging.Logger
        Where the head reports the fallbacks (one warning per reason).

    Returns
    -------
    fallback : numpy.ndarray of bool, shape (p,)
    y_mean : numpy.ndarray of shape (p,)
        Mean of every column's labelled responses (NaN without any).
    n_labelled : numpy.ndarray of int, shape (p,)
    """
    n_lab = labelled.sum(axis=0)
    p = Y.shape[1]
    y_mean = np.array([Y[labelled[:, j], j].mean() if n_lab[j] else np.nan for j in range(p)])
    spread = np.array([np.ptp(Y[labelled[:, j], j]) if n_lab[j] else 0.0 for j in range(p)])
    too_few = n_lab < min_labels
    constant = ~too_few & (spread <= 1e-12 * np.maximum(1.0, np.abs(np.nan_to_num(y_mean))))
    # tagged: a head knows columns, not names; LEAP drops these and warns once, naming them
    if too_few.any():
        logger.warning(
            "%d perturbation(s) have fewer than %d labelled rows; predicting their training "
            "mean (e.g. column %d)",
            int(too_few.sum()),
            min_labels,
            int(np.flatnonzero(too_few)[0]),
            extra={FALLBACK_RECORD: True},
        )
    if constant.any():
        logger.warning(
            "%d perturbation(s) have a constant response; predicting it (e.g. column %d)",
            int(constant.sum()),
            int(np.flatnonzero(constant)[0]),
            extra={FALLBACK_RECORD: True},
        )
    return too_few | constant, y_mean, n_lab


def label_groups(labelled: np.ndarray, columns: np.ndarray) -> dict[bytes, list[int]]:
    """``columns`` grouped by missingness pattern (key: the packed labelled mask), in order."""
    groups: dict[bytes, list[int]] = {}
    for j in columns:
        groups.setdefault(np.packbits(labelled[:, j]).tobytes(), []).append(int(j))
    return groups


# ---------------------------------------------------------------------------------- folds


def kfold_assignment(labelled: np.ndarray, n_folds: int, random_state: int | None) -> np.ndarray:
    """Fold of every labelled row of one perturbation (-1 for unlabelled rows).

    The rows are shuffled with ``numpy.random.default_rng(random_state).permutation(n)`` (the same
    permutation for every perturbation), the labelled ones are taken in that order and cut into
    ``n_folds`` contiguous chunks of the sizes :class:`sklearn.model_selection.KFold` uses (the
    first ``m % n_folds`` folds get one more row). Perturbations with the same missingness pattern
    therefore share their folds, and fully observed perturbations all share the same folds.

    Parameters
    ----------
    labelled : numpy.ndarray of bool, shape (n,)
        Which rows have a response.
    n_folds : int
        Number of folds.
    random_state : int or None
        Seed of the shuffle.

    Returns
    -------
    numpy.ndarray of int, shape (n,)
    """
    labelled = np.asarray(labelled, dtype=bool)
    n = labelled.shape[0]
    perm = np.random.default_rng(random_state).permutation(n)
    order = perm[labelled[perm]]
    m = order.size
    sizes = np.full(n_folds, m // n_folds)
    sizes[: m % n_folds] += 1
    fold = np.full(n, -1, dtype=np.int64)
    fold[order] = np.repeat(np.arange(n_folds), sizes)
    return fold


def rank_average(X: np.ndarray) -> np.ndarray:
    """Ranks (1-based, ties averaged) along axis -2 of ``X`` (..., n, k)."""
    Xt = np.ascontiguousarray(np.swapaxes(X, -1, -2)).reshape(-1, X.shape[-2])  # (rows, n)
    n = Xt.shape[1]
    order = np.argsort(Xt, axis=1, kind="stable")
    xs = np.take_along_axis(Xt, order, axis=1)
    ranks = np.empty_like(Xt)
    plain = np.broadcast_to(np.arange(1.0, n + 1.0), order.shape)
    np.put_along_axis(ranks, order, plain, axis=1)
    tied = np.flatnonzero((xs[:, 1:] == xs[:, :-1]).any(axis=1)) if n > 1 else np.zeros(0, int)
    if tied.size:
        # average the ranks within runs of equal values (rows with ties only)
        xt = xs[tied]
        new = np.ones(xt.shape, dtype=bool)
        new[:, 1:] = xt[:, 1:] != xt[:, :-1]
        end = np.ones(xt.shape, dtype=bool)
        end[:, :-1] = new[:, 1:]
        pos = np.arange(n, dtype=np.float64)
        first = np.maximum.accumulate(np.where(new, pos, 0.0), axis=1)
        last = np.minimum.accumulate(np.where(end, pos, n - 1.0)[:, ::-1], axis=1)[:, ::-1]
        fixed = np.empty_like(xt)
        np.put_along_axis(fixed, order[tied], (first + last) / 2.0 + 1.0, axis=1)
        ranks[tied] = fixed
    shape = X.shape[:-2] + (X.shape[-1], n)
    return np.swapaxes(ranks.reshape(shape), -1, -2)


def corr_of_ranks(ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """Pearson correlation of rank arrays along axis -2 (Spearman of the ranked data; 0 if constant)."""
    ra = ra - ra.mean(axis=-2, keepdims=True)
    rb = rb - rb.mean(axis=-2, keepdims=True)
    num = (ra * rb).sum(axis=-2)
    den = np.sqrt((ra * ra).sum(axis=-2) * (rb * rb).sum(axis=-2))
    n = ra.shape[-2]
    # ranks are integers or half-integers: a column is constant exactly when its sum of squares
    # is (almost) zero; anything above 1e-9 * n^3 is a real spread
    ok = den > 1e-9 * max(n, 1) ** 3
    return np.where(ok, num / np.where(ok, den, 1.0), 0.0)


def spearman_columns(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Spearman correlation of each column of ``pred`` with the same column of ``truth``.

    Ties get average ranks (as :func:`scipy.stats.spearmanr`); a constant column scores 0. Leading
    dimensions are batch dimensions: arrays of shape (..., n, k) give scores of shape (..., k).

    Parameters
    ----------
    pred, truth : numpy.ndarray of shape (..., n, k)
        Predictions and observed values (no NaN).

    Returns
    -------
    numpy.ndarray of shape (..., k)
    """
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    return corr_of_ranks(rank_average(pred), rank_average(truth))


# ---------------------------------------------------------------------------------- the tie rule


class RunningBest:
    """The best alpha so far of every column, the grid visited from least to most preferred.

    :meth:`update` takes the mean validation scores at the next alpha; that alpha becomes the
    column's choice when its score is at least the best so far minus ``TIE * max(1, |best|)``.
    Visiting the grid from the least to the most preferred alpha, this chooses, among the alphas
    within the tie tolerance of the best score, the most preferred one (see :func:`choose_alpha`).
    """

    def __init__(self, n_columns: int) -> None:
        self.score = np.full(n_columns, -np.inf)
        self.index = np.zeros(n_columns, dtype=np.int64)

    def update(self, position: int, score: np.ndarray) -> np.ndarray:
        """Take the scores at grid ``position``; returns where it became the choice (bool)."""
        better = score >= self.score - TIE * np.maximum(1.0, np.abs(self.score))
        self.score = np.where(better, np.maximum(score, self.score), self.score)
        self.index = np.where(better, position, self.index)
        return better


def choose_alpha(scores: np.ndarray, alphas: np.ndarray, prefer: Preference) -> np.ndarray:
    """Index of the chosen alpha of every column: the preferred one among the near-best.

    Parameters
    ----------
    scores : numpy.ndarray of shape (n_alphas, p)
        Mean validation score of every (alpha, column); higher is better.
    alphas : numpy.ndarray of shape (n_alphas,)
        The grid (any order).
    prefer : {"smaller", "larger"}
        Which alpha wins a tie (scores within ``TIE * max(1, |best|)`` of the best).

    Returns
    -------
    numpy.ndarray of int, shape (p,)
        Row of ``scores`` (position in ``alphas``) chosen for every column.
    """
    if prefer not in ("smaller", "larger"):
        raise ValueError(f"prefer must be 'smaller' or 'larger', got {prefer!r}")
    alphas = np.asarray(alphas, dtype=np.float64)
    order = np.argsort(alphas if prefer == "larger" else -alphas, kind="stable")
    best = RunningBest(scores.shape[1])
    for position in order:
        best.update(int(position), scores[position])
    return best.index


def linear_out_of_fold(
    Z: np.ndarray,
    Y: np.ndarray,
    coef: np.ndarray,
    intercept: np.ndarray,
    columns: np.ndarray,
    random_state: int | None,
) -> np.ndarray:
    """Out-of-fold predictions of kept linear fold models (see ``BaseHead.out_of_fold_predictions``).

    Parameters
    ----------
    Z : numpy.ndarray of shape (n, d)
        The training representation.
    Y : numpy.ndarray of shape (n, p)
        The training responses, NaN = not measured.
    coef, intercept : numpy.ndarray of shape (k, d, p) and (k, p)
        Fold model ``f`` was fitted without the rows of fold ``f`` (:func:`kfold_assignment`).
    columns : numpy.ndarray of int
        The cross-validated columns (not the fallbacks).
    random_state : int or None
        The seed of the folds.

    Returns
    -------
    numpy.ndarray of shape (n, p)
        The mean of the fold models everywhere, replaced on each labelled row of a cross-validated
        column by the model of the fold that left the row out, with that model's response mean
        replaced by the mean of all labelled rows (see ``BaseHead.out_of_fold_predictions``).
    """
    k = coef.shape[0]
    labelled = ~np.isnan(Y)
    oof = Z @ coef.mean(axis=0) + intercept.mean(axis=0)
    for cols in label_groups(labelled, columns).values():
        c = np.asarray(cols)
        mask = labelled[:, c[0]]
        fold = kfold_assignment(mask, k, random_state)
        y_all = Y[mask][:, c].mean(axis=0)
        for f in range(k):
            rows = np.flatnonzero(fold == f)
            y_fold = Y[mask & (fold != f)][:, c].mean(axis=0)
            oof[np.ix_(rows, c)] = Z[rows] @ coef[f][:, c] + intercept[f, c] - y_fold + y_all
    return oof
