"""PS-KNN: per-perturbation k-nearest-neighbour regression, k and the metric chosen by CV.

For every perturbation (a column of ``Y``), over that perturbation's labelled rows only:

* the rows are split into ``cv`` folds (:func:`~leapscreen.heads._cv.kfold_assignment`: the same
  folds as every other head for the same missingness pattern);
* the "fold model" of fold ``f`` is the training fold itself: a query is predicted by the mean
  (``weights="uniform"``) or the inverse-distance weighted mean (``weights="distance"``, as
  :class:`sklearn.neighbors.KNeighborsRegressor`) of the responses of its ``k`` nearest rows among
  the rows labelled for the perturbation and not in fold ``f``;
* ``k`` (``n_neighbors_grid``) and the metric (``metrics``: "euclidean", or "correlation" =
  1 - Pearson correlation of the two rows' feature profiles) are chosen by the mean validation
  Spearman over the folds; ties go to the setting listed first (metrics in the given order, then
  ``k`` in the given order: with the default grid the smaller ``k``);
* the ``cv`` fold models at the chosen setting are kept and their predictions averaged, the
  reference LEAP procedure. A ``k`` larger than a fold's candidate rows uses them all.

How it is fast: one distance matrix per metric (training x training in ``fit``, query x training
in ``predict``) serves every perturbation and every fold; perturbations sharing a missingness
pattern share their folds, hence their neighbour lists, and are computed together; the prefix sums
of the neighbours' responses give every ``k`` of the grid at once. The groups run in a thread pool
(:mod:`leapscreen.heads._parallel`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from leapscreen.base import BaseHead
from leapscreen.errors import InputError
from leapscreen.heads._cv import (
    Preference,
    choose_alpha,
    fallback_columns,
    kfold_assignment,
    label_groups,
    spearman_columns,
)
from leapscreen.heads._parallel import map_tasks, resolve_jobs
from leapscreen.registry import register_head

logger = logging.getLogger(__name__)

__all__ = ["METRICS", "PSKNNHead", "pairwise_distances"]

#: the metrics PS-KNN knows
METRICS = ("euclidean", "correlation")


def _prepare(Z: np.ndarray, metric: str) -> np.ndarray:
    """Rows of ``Z`` as the metric compares them: as they are, or centred and of unit norm."""
    if metric == "euclidean":
        return Z
    centred = Z - Z.mean(axis=1, keepdims=True)
    norm = np.sqrt((centred * centred).sum(axis=1, keepdims=True))
    # a constant row has no correlation with anything: distance 1 to every row
    return np.divide(centred, norm, out=np.zeros_like(centred), where=norm > 0)


def _distances(A: np.ndarray, B: np.ndarray, metric: str) -> np.ndarray:
    """What neighbours are ranked by: squared Euclidean distance, or 1 - Pearson correlation."""
    if metric == "euclidean":
        sq = (A * A).sum(axis=1)[:, None] + (B * B).sum(axis=1)[None, :] - 2.0 * (A @ B.T)
        return np.maximum(sq, 0.0)
    return np.clip(1.0 - A @ B.T, 0.0, 2.0)


def pairwise_distances(A: np.ndarray, B: np.ndarray, metric: str) -> np.ndarray:
    """Distances between the rows of ``A`` and ``B`` as PS-KNN measures them.

    Parameters
    ----------
    A, B : numpy.ndarray of shape (n_a, d), (n_b, d)
    metric : {"euclidean", "correlation"}

    Returns
    -------
    numpy.ndarray of shape (n_a, n_b)
        Euclidean distance, or the correlation distance ``1 - r`` (rows with no spread are at
        distance 1 from every row).
    """
    D = _distances(_prepare(A, metric), _prepare(B, metric), metric)
    return np.sqrt(D) if metric == "euclidean" else D


def _neighbour_means(
    D: np.ndarray, Y: np.ndarray, ks: np.ndarray, metric: str, weights: str
) -> np.ndarray:
    """Predictions at every ``k`` of ``ks`` for every query row and column.

    Parameters
    ----------
    D : numpy.ndarray of shape (n_query, m)
        Ranking distances (see :func:`_distances`) from the queries to the ``m`` candidate rows.
    Y : numpy.ndarray of shape (m, q)
        Responses of the candidates (no NaN).
    ks : numpy.ndarray of int, shape (n_k,)
        Neighbour counts (capped at ``m``).

    Returns
    -------
    numpy.ndarray of shape (n_k, n_query, q)
    """
    m = D.shape[1]
    ks = np.minimum(np.asarray(ks, dtype=np.int64), m)
    kmax = int(ks.max())
    if kmax < m:
        idx = np.argpartition(D, kmax - 1, axis=1)[:, :kmax]
    else:
        idx = np.broadcast_to(np.arange(m), D.shape)
    dist = np.take_along_axis(D, idx, axis=1)
    order = np.argsort(dist, axis=1, kind="stable")
    idx = np.take_along_axis(idx, order, axis=1)
    Ynb = Y[idx]  # (n_query, kmax, q)
    if weights == "uniform":
        csum = np.cumsum(Ynb, axis=1)
        return _canonical(np.moveaxis(csum[:, ks - 1, :], 1, 0) / ks[:, None, None], Y)
    dist = np.take_along_axis(dist, order, axis=1)
    if metric == "euclidean":
        dist = np.sqrt(dist)
    # KNeighborsRegressor's rule: weights 1/d; rows with a neighbour at distance 0 average those
    zero = dist == 0
    with np.errstate(divide="ignore"):
        w = np.where(zero, 0.0, 1.0 / np.where(zero, 1.0, dist))
    wsum = np.cumsum(w, axis=1)[:, ks - 1]  # (n_query, n_k)
    wy = np.cumsum(w[:, :, None] * Ynb, axis=1)[:, ks - 1, :]  # (n_query, n_k, q)
    nzero = np.cumsum(zero, axis=1)[:, ks - 1]
    zy = np.cumsum(zero[:, :, None] * Ynb, axis=1)[:, ks - 1, :]
    has_zero = nzero > 0
    pred = np.where(
        has_zero[:, :, None],
        zy / np.maximum(nzero, 1)[:, :, None],
        wy / np.where(wsum > 0, wsum, 1.0)[:, :, None],
    )
    return _canonical(np.moveaxis(pred, 1, 0), Y)


def _canonical(pred: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Predictions rounded to 12 digits of each column's response scale.

    Two queries with the same neighbours get the same prediction in exact arithmetic, but summing
    the neighbours in a different order (they are sorted by distance) can leave them one rounding
    error apart, which would break the tie arbitrarily in the validation Spearman. Rounding far
    below any meaningful difference makes equal predictions equal.
    """
    scale = np.abs(Y).max(axis=0) if Y.size else np.ones(Y.shape[1])
    scale = np.where(scale > 0, scale, 1.0)
    return np.round(pred / scale, 12) * scale


@register_head("ps-knn", leap_params={"n_folds": "cv"})
class PSKNNHead(BaseHead):
    """Per-perturbation k-nearest-neighbour regression, ``k`` and the metric chosen by CV.

    See the module docstring for the procedure.

    Parameters
    ----------
    n_neighbors_grid : sequence of int, default (5, 10, 20, 40)
        Candidate neighbour counts.
    metrics : sequence of {"euclidean", "correlation"}, default both
        Candidate metrics.
    weights : {"uniform", "distance"}, default "uniform"
        Plain mean of the neighbours, or weighted by inverse distance.
    cv : int, default 5
        Number of folds (LEAP's ``n_folds``).
    random_state : int or None, default 0
        Seed of the fold shuffle.
    n_jobs : int or None, default None
        Threads over groups of perturbations (None or -1: one per core).

    Attributes
    ----------
    Z_train_ : ndarray (n, d)
        The training representation (the fold models' rows).
    Y_train_ : ndarray (n, p)
        The training responses, NaN = not measured.
    fold_ : ndarray (n, p) of int
        Fold of every labelled (row, perturbation), -1 where unlabelled (or a fallback).
    n_neighbors_ : ndarray (p,) of int
        Chosen ``k`` (0 for fallbacks).
    metric_ : ndarray (p,) of str
        Chosen metric ("" for fallbacks).
    settings_ : list of (metric, k)
        The candidates, in the order of ``cv_scores_``.
    cv_scores_ : ndarray (n_settings, p)
        Mean validation Spearman of every candidate (NaN for fallbacks).
    y_mean_ : ndarray (p,)
        Training mean of every perturbation (the fallback prediction).
    n_folds_ : int
    n_train_ : ndarray (p,); fallback_ : ndarray (p,) of bool
    """

    #: ties of mean CV scores go to the candidate listed first (positions, smaller wins)
    setting_tie: ClassVar[Preference] = "smaller"

    def __init__(
        self,
        n_neighbors_grid: Sequence[int] = (5, 10, 20, 40),
        metrics: Sequence[str] = METRICS,
        weights: str = "uniform",
        cv: int = 5,
        random_state: int | None = 0,
        n_jobs: int | None = None,
    ) -> None:
        self.n_neighbors_grid = n_neighbors_grid
        self.metrics = metrics
        self.weights = weights
        self.cv = cv
        self.random_state = random_state
        self.n_jobs = n_jobs

    # -- parameters ------------------------------------------------------------------------------
    def _check_params(self) -> tuple[np.ndarray, list[str], int]:
        name = type(self).__name__
        grid = self.n_neighbors_grid
        if isinstance(grid, (int, np.integer)) and not isinstance(grid, bool):
            grid = [grid]
        try:
            ks = [
                int(k) for k in grid if isinstance(k, (int, np.integer)) and not isinstance(k, bool)
            ]
        except TypeError:
            ks = []
        if not ks or len(ks) != len(list(grid)) or min(ks) < 1:
            raise InputError(
                f"{name}: n_neighbors_grid must be a non-empty list of positive integers, "
                f"got {self.n_neighbors_grid!r}",
                fix="use e.g. n_neighbors_grid=(5, 10, 20, 40)",
            )
        metrics = [self.metrics] if isinstance(self.metrics, str) else self.metrics
        try:
            metrics = list(metrics)
        except TypeError:
            metrics = []
        if (
            not metrics
            or any(m not in METRICS for m in metrics)
            or len(set(metrics)) < len(metrics)
        ):
            raise InputError(
                f"{name}: metrics must be distinct names among {list(METRICS)}, got {self.metrics!r}",
                fix="use e.g. metrics=('euclidean', 'correlation')",
            )
        if self.weights not in ("uniform", "distance"):
            raise InputError(
                f"{name}: weights must be 'uniform' or 'distance', got {self.weights!r}",
                fix="use weights='uniform'",
            )
        if not (isinstance(self.cv, (int, np.integer)) and not isinstance(self.cv, bool)) or (
            self.cv < 2
        ):
            raise InputError(f"{name}: cv must be an integer >= 2, got {self.cv!r}", fix="use 5")
        return (
            np.asarray(ks, dtype=np.int64),
            [str(m) for m in metrics],
            resolve_jobs(self.n_jobs, name),
        )

    # -- fit -------------------------------------------------------------------------------------
    def fit(self, Z: Any, Y: Any) -> PSKNNHead:
        """Choose ``k`` and the metric of every column of ``Y`` by CV (NaN = missing; 1-D allowed).

        Returns
        -------
        self
        """
        ks, metrics, n_jobs = self._check_params()
        Zv, Yv = self._validate_fit(Z, Y)
        n, p = Yv.shape
        k_folds = int(self.cv)
        labelled = ~np.isnan(Yv)
        fallback, y_mean, n_lab = fallback_columns(Yv, labelled, 2 * k_folds, logger)
        settings = [(m, int(k)) for m in metrics for k in ks]
        positions = np.arange(len(settings), dtype=np.float64)

        fold = np.full((n, p), -1, dtype=np.int64)
        groups = [np.asarray(c) for c in label_groups(labelled, np.flatnonzero(~fallback)).values()]
        for cols in groups:
            fold[:, cols] = kfold_assignment(labelled[:, cols[0]], k_folds, self.random_state)[
                :, None
            ]
        prepared = {m: _prepare(Zv, m) for m in metrics}
        D = {m: _distances(prepared[m], prepared[m], m) for m in metrics}

        def run(cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            f = fold[:, cols[0]]
            rows = np.flatnonzero(f >= 0)
            total = np.zeros((len(settings), cols.size))
            val = np.zeros((len(settings), n, cols.size))
            for fo in range(k_folds):
                tr = np.flatnonzero((f >= 0) & (f != fo))
                va = np.flatnonzero(f == fo)
                truth = Yv[va][:, cols]
                for mi, m in enumerate(metrics):
                    pred = _neighbour_means(
                        D[m][np.ix_(va, tr)], Yv[tr][:, cols], ks, m, self.weights
                    )
                    sl = slice(mi * ks.size, (mi + 1) * ks.size)
                    val[sl, va] = pred
                    total[sl] += spearman_columns(pred, np.broadcast_to(truth, pred.shape))
            mean = total / k_folds
            best = choose_alpha(mean, positions, prefer=self.setting_tie)
            oof = val[best[None, :], rows[:, None], np.arange(cols.size)[None, :]]
            return mean, best, oof

        results = map_tasks(
            run, groups, n_jobs=n_jobs, sizes=[c.size for c in groups], message="PS-KNN"
        )
        scores = np.full((len(settings), p), np.nan)
        chosen_k = np.zeros(p, dtype=np.int64)
        chosen_metric = np.array([""] * p, dtype=object)
        oof = np.tile(y_mean, (n, 1))
        for cols, (mean, best, part) in zip(groups, results, strict=True):
            scores[:, cols] = mean
            chosen_k[cols] = [settings[b][1] for b in best]
            chosen_metric[cols] = [settings[b][0] for b in best]
            rows = np.flatnonzero(fold[:, cols[0]] >= 0)
            oof[np.ix_(rows, cols)] = part

        self.Z_train_ = Zv
        self.Y_train_ = Yv
        self.fold_ = fold
        self.n_neighbors_ = chosen_k
        self.metric_ = chosen_metric
        self.settings_ = [(m, k) for m, k in settings]
        self.cv_scores_ = scores
        self.y_mean_ = y_mean
        self.n_folds_ = k_folds
        self.n_train_ = n_lab.astype(np.int64)
        self.fallback_ = fallback

        # out-of-fold predictions: labelled rows from the fold that did not see them, unlabelled
        # rows (of modelled columns) from the full head, fallbacks from the training mean
        unlab = np.flatnonzero((~labelled[:, ~fallback]).any(axis=1)) if (~fallback).any() else []
        if len(unlab):
            full = self._predict_from(
                {m: D[m][unlab] for m in set(chosen_metric[~fallback])}, n_jobs
            )
            fill = ~labelled[unlab] & ~fallback[None, :]
            oof[unlab] = np.where(fill, full, oof[unlab])
        self._oof = oof
        return self

    # -- predict ---------------------------------------------------------------------------------
    def _predict_from(self, Dq: dict[str, np.ndarray], n_jobs: int) -> np.ndarray:
        """Mean of the fold models, given ranking distances from the queries to the training rows."""
        n_q = next(iter(Dq.values())).shape[0] if Dq else 0
        out = np.tile(np.asarray(self.y_mean_, dtype=np.float64), (n_q, 1))
        modelled = np.flatnonzero(~np.asarray(self.fallback_, dtype=bool))
        if n_q == 0 or modelled.size == 0:
            return out
        fold = self.fold_
        groups: dict[bytes, list[int]] = {}
        for j in modelled:
            groups.setdefault(fold[:, j].tobytes(), []).append(int(j))
        tasks = [np.asarray(c) for c in groups.values()]
        k_folds = int(self.n_folds_)

        def run(cols: np.ndarray) -> np.ndarray:
            f = fold[:, cols[0]]
            acc = np.zeros((n_q, cols.size))
            metric_of = self.metric_[cols]
            k_of = np.asarray(self.n_neighbors_)[cols]
            for fo in range(k_folds):
                tr = np.flatnonzero((f >= 0) & (f != fo))
                for m in dict.fromkeys(metric_of):
                    pos = np.flatnonzero(metric_of == m)
                    uniq, where = np.unique(k_of[pos], return_inverse=True)
                    pred = _neighbour_means(
                        Dq[m][:, tr], self.Y_train_[tr][:, cols[pos]], uniq, m, self.weights
                    )
                    acc[:, pos] += pred[where, :, np.arange(pos.size)].T
            return acc / k_folds

        results = map_tasks(
            run, tasks, n_jobs=n_jobs, sizes=[c.size for c in tasks], message="PS-KNN predict"
        )
        for cols, part in zip(tasks, results, strict=True):
            out[:, cols] = part
        return out

    def predict(self, Z: Any) -> np.ndarray:
        """Predict every perturbation: the mean over the fold models at the chosen (k, metric).

        Parameters
        ----------
        Z : array of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_perturbations), or (n_samples,) after a 1-D fit
        """
        Zv = self._validate_predict(Z)
        n_jobs = resolve_jobs(self.n_jobs, type(self).__name__)
        used = set(self.metric_[~np.asarray(self.fallback_, dtype=bool)])
        Dq = {
            m: _distances(_prepare(Zv, m), _prepare(np.asarray(self.Z_train_, float), m), m)
            for m in used
        }
        if not Dq:
            out = np.tile(np.asarray(self.y_mean_, dtype=np.float64), (Zv.shape[0], 1))
        else:
            out = self._predict_from(Dq, n_jobs)
        return self._shape_output(out)
