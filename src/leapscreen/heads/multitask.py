"""Multi-task heads: perturbations share structure that per-perturbation heads ignore.

* :class:`ReducedRankRidgeHead` ("rr-ridge") - per-perturbation ridge (:class:`RidgeHead`), then
  its predictions constrained to a rank-``r`` subspace of the perturbations: ``B_r = B V_r V_r^T``
  with ``V_r`` the top right singular vectors of ridge's (centred) fitted prediction matrix, ``r``
  chosen by cross-validation on mean validation Spearman. Still one linear map.
* :class:`StackedHead` ("stacked") - a first-level head, then per perturbation ``j`` a ridge on the
  first-level **out-of-fold** predictions of all perturbations that corrects ``j``'s own prediction:
  ``y_j ~ o_j + c_j + O w_j``, shrunk towards the first level, with "keep the first level"
  (``alpha = inf``) among the candidates, chosen per perturbation by leave-one-out Spearman.

Why the stack is shaped so: a second-level ridge on the standardised OOF predictions of all
perturbations alone loses 0.026 mean Spearman against ridge on GDSC2 (the lead's measurement) -
the own prediction is penalised like 285 others. Here the own prediction is an offset (coefficient
1, unpenalised), the ridge only adds what the others explain of its residual, and a perturbation
whose CV says the correction does not help keeps its first-level prediction exactly (up to a shift).

What the first level must give: K-fold out-of-fold predictions (the default first level is
``RidgeHead(cv=5, standardize=False)``). Leave-one-out predictions of a ridge with many more genes
than lines are not distributed like its predictions of new samples (each is the fit without the
row rescaled by ``1 / (1 - h_ii)``), and a second level trained on them learns corrections that do
not hold at predict time: on GDSC2 (750 lines x 5,000 genes -> 286 drugs, one unseen-lines split)
the stack on leave-one-out ridge scored 0.528 against its first level's 0.550; on 5-fold ridge
0.549 against 0.553 (``min_gain=0.01``: 90% of the drugs keep the first level). The per-drug
choice is still optimistic: every other row's first-level prediction came from a model that saw
the row being validated; a first level refitted per second-level fold would remove that at
``K`` times its cost.

Honesty of the rank CV (ReducedRankRidgeHead): the rows are split into ``n_folds`` folds shared
by all perturbations; for each fold, every perturbation's ridge is refitted on its labelled
training rows (at the penalty ridge chose), the subspace is the SVD of these fold models' fitted
values on the training rows, and the validation rows are predicted by the fold models and then
projected: no label of a validation row enters what predicts it (only the scalar penalty per
perturbation, chosen by ridge on all rows, is shared). A cheaper shortcut - the subspace of the
training rows of ridge's leave-one-out matrix, validation rows taken from the same matrix - is not
honest: each training row's leave-one-out model saw the validation rows, so the subspace carries
their labels; on GDSC2 it overstated the gain of rank 40 over full rank ten-fold (+0.028 mean
Spearman against +0.0025 with refits, +0.0015 on the test lines).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from sklearn.base import clone

from leapscreen.base import BaseHead, LinearHeadMixin
from leapscreen.errors import InputError
from leapscreen.heads._cv import (
    Preference,
    choose_alpha,
    fallback_columns,
    kfold_assignment,
    label_groups,
    spearman_columns,
)
from leapscreen.heads._solvers.spectral import eigen, scaled
from leapscreen.heads.linear import RidgeHead
from leapscreen.registry import register_head

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_RANKS", "ReducedRankRidgeHead", "StackedHead"]

#: the rank grid of ReducedRankRidgeHead (None = full rank, i.e. plain ridge)
DEFAULT_RANKS: tuple[int | None, ...] = (5, 10, 20, 40, 80, 160, None)

MIN_VALIDATION = 3  # a column is scored on a validation fold with at least this many labels


def _nan_spearman_columns(pred: np.ndarray, truth: np.ndarray, labelled: np.ndarray):
    """Spearman of every (candidate, column) on the column's labelled rows, batched by pattern.

    Parameters
    ----------
    pred : numpy.ndarray of shape (n_candidates, n, q)
    truth : numpy.ndarray of shape (n, q), NaN where not labelled
    labelled : numpy.ndarray of bool, shape (n, q)

    Returns
    -------
    numpy.ndarray of shape (n_candidates, q)
        NaN for a column with fewer than ``MIN_VALIDATION`` labelled rows.
    """
    out = np.full((pred.shape[0], truth.shape[1]), np.nan)
    for cols_list in label_groups(labelled, np.arange(truth.shape[1])).values():
        cols = np.asarray(cols_list)
        rows = np.flatnonzero(labelled[:, cols[0]])
        if rows.size < MIN_VALIDATION:
            continue
        t = truth[np.ix_(rows, cols)]
        out[:, cols] = spearman_columns(
            pred[:, rows][:, :, cols], np.broadcast_to(t, (pred.shape[0], *t.shape))
        )
    return out


@register_head("rr-ridge", leap_params={"n_folds": "n_folds"})
class ReducedRankRidgeHead(LinearHeadMixin, BaseHead):
    """Reduced-rank ridge: per-perturbation ridge, predictions projected to a rank chosen by CV.

    1. :class:`RidgeHead` (``alphas``, ``cv``, ``standardize``) on ``(Z, Y)``: coefficients ``B``
       (d x p), intercepts ``b``, penalties ``alpha_j``.
    2. For every row fold (``n_folds`` folds shared by all perturbations): each perturbation's
       ridge refitted at ``alpha_j`` on its labelled training rows (features z-scored, or only
       centred, on all rows; :func:`_refit_predictions`), the top right singular vectors ``V`` of
       the fold models' centred fitted values ``P_tr`` on the training rows, and for every rank
       ``r`` the validation predictions ``m + (P_va - m) V_r V_r^T``, scored by the Spearman of
       each perturbation on its labelled validation rows (honest: see the module docstring).
    3. The rank with the best mean validation Spearman over perturbations (ties: the larger rank;
       ``per_perturbation=True``: chosen per perturbation), then ``M = V_r V_r^T`` from ridge's
       fitted values ``F = Z B + b`` on all rows and the one linear map ``coef_mean_ = B M``,
       ``intercept_mean_ = (b - m) M + m`` (``m`` the column means of ``F``).

    Out-of-fold predictions: the projected fold-model predictions at the chosen rank (ridge's own
    out-of-fold predictions for a perturbation kept at full rank). The refits cost one Cholesky
    factorisation per perturbation and fold (one kernel matrix serves all of them when there are
    more features than rows): on GDSC2 (750 x 5,000 -> 286) about 10% of the ridge fit.

    Full rank is the identity: the head is then exactly the ridge it wraps. Perturbations that
    ridge predicts by their training mean (the fallback rule) are left out of the projection.

    Parameters
    ----------
    ranks : sequence of int or None, default ``DEFAULT_RANKS`` = (5, 10, 20, 40, 80, 160, None)
        Candidate ranks; None (or any rank >= the number of perturbations) is full rank.
    alphas : array-like or None, default None
        Ridge's penalties (None: :class:`RidgeHead`'s grid).
    cv : int or "loo", default "loo"
        Ridge's cross-validation (its out-of-fold predictions are the input of the rank CV).
    n_folds : int, default 5
        Row folds of the rank CV.
    random_state : int or None, default 0
        Seed of the folds (ridge's and the rank CV's).
    standardize : bool, default True
        Ridge z-scores the features within each fold.
    per_perturbation : bool, default False
        Choose the rank per perturbation instead of one rank for all.

    Attributes
    ----------
    coef_mean_ : ndarray (d, p); intercept_mean_ : ndarray (p,)
    rank_ : ndarray (p,) of int
        Rank used for each perturbation (the number of projected perturbations = full rank;
        0 for a fallback perturbation).
    ranks_ : ndarray (n_ranks,) of int
        The effective candidate ranks (the grid clipped to the number of projected perturbations).
    cv_scores_ : ndarray (n_ranks, p)
        Mean validation Spearman of each rank and perturbation (NaN where never scored).
    alpha_ : ndarray (p,)
        Ridge's penalties.
    n_train_ : ndarray (p,); fallback_ : ndarray (p,) of bool
    """

    def __init__(
        self,
        ranks: Sequence[int | None] | None = None,
        alphas: np.ndarray | list[float] | None = None,
        cv: int | str = "loo",
        n_folds: int = 5,
        random_state: int | None = 0,
        standardize: bool = True,
        per_perturbation: bool = False,
    ) -> None:
        self.ranks = ranks
        self.alphas = alphas
        self.cv = cv
        self.n_folds = n_folds
        self.random_state = random_state
        self.standardize = standardize
        self.per_perturbation = per_perturbation

    def _rank_grid(self) -> list[int | None]:
        grid = list(DEFAULT_RANKS if self.ranks is None else self.ranks)
        ok = bool(grid) and all(
            r is None or (isinstance(r, (int, np.integer)) and not isinstance(r, bool) and r >= 1)
            for r in grid
        )
        if not ok:
            raise InputError(
                f"ReducedRankRidgeHead: ranks must be a non-empty list of positive integers or "
                f"None (full rank), got {self.ranks!r}",
                fix="use e.g. ranks=(5, 10, 20, 40, 80, 160, None)",
            )
        if not (isinstance(self.n_folds, (int, np.integer)) and self.n_folds >= 2):
            raise InputError(
                f"ReducedRankRidgeHead: n_folds must be an integer >= 2, got {self.n_folds!r}",
                fix="use 5",
            )
        return grid

    def fit(self, Z: Any, Y: Any) -> ReducedRankRidgeHead:
        """Fit ridge, choose the rank by CV and store the projected linear map.

        Parameters
        ----------
        Z : array of shape (n_samples, n_features)
        Y : array of shape (n_samples, n_perturbations) or (n_samples,), NaN = not measured

        Returns
        -------
        self
        """
        grid = self._rank_grid()
        Zv, Yv = self._validate_fit(Z, Y)
        n, p = Yv.shape
        ridge = RidgeHead(
            alphas=self.alphas,
            cv=self.cv,
            random_state=self.random_state,
            standardize=self.standardize,
        ).fit(Zv, Yv)
        F_all = ridge.out_of_fold_predictions()
        labelled = ~np.isnan(Yv)
        cols = np.flatnonzero(~ridge.fallback_)
        q = cols.size
        ranks = np.unique([q if r is None else min(int(r), q) for r in grid]).astype(np.int64)
        ranks = ranks[ranks >= 1] if q else np.zeros(1, dtype=np.int64)
        scores = np.full((ranks.size, p), np.nan)
        chosen = np.full(q, ranks[-1], dtype=np.int64)
        coef = ridge.coef_mean_.copy()
        intercept = ridge.intercept_mean_.copy()
        oof = None

        if q >= 2 and ranks.size > 1:
            Yc, lab = Yv[:, cols], labelled[:, cols]
            alpha = ridge.alpha_[cols]
            Xg = scaled(Zv, self.standardize)[0]  # features only (no label): shared by the folds
            kernel = Xg @ Xg.T if Xg.shape[1] >= n // 2 else None
            fold = kfold_assignment(np.ones(n, dtype=bool), int(self.n_folds), self.random_state)
            total = np.zeros((ranks.size, q))
            count = np.zeros(q)
            fold_preds = []
            for f in range(int(self.n_folds)):
                tr, va = fold != f, fold == f
                P = _refit_predictions(Xg, kernel, Yc, lab & tr[:, None], alpha)
                pred = _projections(P[tr], P[va], ranks)  # (n_ranks, n_va, q)
                s = _nan_spearman_columns(pred, Yc[va], lab[va])
                seen = ~np.isnan(s[0])
                total[:, seen] += s[:, seen]
                count += seen
                fold_preds.append((np.flatnonzero(va), pred))
            with np.errstate(invalid="ignore", divide="ignore"):
                mean_score = np.where(count > 0, total / np.maximum(count, 1), np.nan)
            scores[:, cols] = mean_score
            prefer: Preference = "larger"
            if self.per_perturbation:
                best = choose_alpha(np.nan_to_num(mean_score, nan=0.0), ranks, prefer)
            else:
                overall = np.nanmean(np.where(count > 0, mean_score, np.nan), axis=1)
                overall = np.nan_to_num(overall, nan=0.0)[:, None]
                best = np.full(q, choose_alpha(overall, ranks, prefer)[0])
            chosen = ranks[best]
            fitted = Zv @ ridge.coef_mean_[:, cols] + ridge.intercept_mean_[cols]
            M = _projection_matrix(fitted, chosen)
            m = fitted.mean(axis=0)
            coef[:, cols] = ridge.coef_mean_[:, cols] @ M
            intercept[cols] = (ridge.intercept_mean_[cols] - m) @ M + m
            oof = Zv @ coef + intercept  # unlabelled entries: the head's prediction
            for va, pred in fold_preds:
                chosen_pred = pred[best, :, np.arange(q)].T  # (n_va, q)
                block = oof[va][:, cols]
                block[lab[va]] = chosen_pred[lab[va]]
                oof[np.ix_(va, cols)] = block
            full = cols[chosen >= q]  # full rank: ridge itself, and its own out-of-fold predictions
            oof[:, full] = F_all[:, full]

        rank = np.zeros(p, dtype=np.int64)
        rank[cols] = chosen
        self.coef_mean_ = coef
        self.intercept_mean_ = intercept
        self.rank_ = rank
        self.ranks_ = ranks
        self.cv_scores_ = scores
        self.alpha_ = ridge.alpha_
        self.n_train_ = ridge.n_train_
        self.fallback_ = ridge.fallback_
        self._oof = F_all.copy() if oof is None else oof
        return self


def _refit_predictions(
    X: np.ndarray,
    kernel: np.ndarray | None,
    Y: np.ndarray,
    train: np.ndarray,
    alpha: np.ndarray,
) -> np.ndarray:
    """Ridge of every column at its own penalty on its ``train`` rows; predictions of all rows.

    Parameters
    ----------
    X : numpy.ndarray of shape (n, d)
        Features (centred, or z-scored, on all rows: no label involved).
    kernel : numpy.ndarray of shape (n, n) or None
        ``X X^T`` for the kernel form (more features than rows), None for the primal form.
    Y : numpy.ndarray of shape (n, q)
    train : numpy.ndarray of bool, shape (n, q)
        The rows each column is fitted on (labelled and in the training fold).
    alpha : numpy.ndarray of shape (q,)

    Returns
    -------
    numpy.ndarray of shape (n, q)
        ``(X - mean_tr) w_j + mean(y_j)`` with the intercept fitted (features centred on the
        column's training rows).
    """
    out = np.empty(Y.shape)
    for cols_list in label_groups(train, np.arange(Y.shape[1])).values():
        cols = np.asarray(cols_list)
        rows = np.flatnonzero(train[:, cols[0]])
        y = Y[np.ix_(rows, cols)]
        ym = y.mean(axis=0)
        if kernel is not None:
            # kernel of the features centred on ``rows``; predictions of all rows applied
            # algebraically (kernel[:, rows] = kernel[rows].T: no centred n x m copy)
            K_rows = kernel[rows]  # (m, n)
            K_tr = K_rows[:, rows]
            mean_col = K_tr.mean(axis=0)
            total = mean_col.mean()
            lhs = K_tr - mean_col[None, :] - mean_col[:, None] + total
            rhs = y - ym
            row_mean = K_rows.mean(axis=0)  # (n,): each row's mean kernel with ``rows``
        else:
            mu = X[rows].mean(axis=0)
            Xc = X[rows] - mu
            lhs, rhs = Xc.T @ Xc, Xc.T @ (y - ym)
        eye = np.eye(lhs.shape[0])
        for a in np.unique(alpha[cols]):
            sel = np.flatnonzero(alpha[cols] == a)
            factor = cho_factor(lhs + a * eye, check_finite=False)
            sol = cho_solve(factor, rhs[:, sel], check_finite=False)
            if kernel is not None:
                ssum = sol.sum(axis=0)
                pred = K_rows.T @ sol - row_mean[:, None] * ssum - mean_col @ sol + total * ssum
            else:
                pred = (X - mu) @ sol
            out[:, cols[sel]] = pred + ym[sel]
    return out


def _svd_rows(F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means of ``F`` and the right singular vectors (rows of ``Vt``) of ``F`` centred."""
    m = F.mean(axis=0)
    _, _, Vt = np.linalg.svd(F - m, full_matrices=False)
    return m, Vt


def _projections(F_tr: np.ndarray, F_va: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """``m + (F_va - m) V_r V_r^T`` for every rank (subspace from the training rows only)."""
    q = F_tr.shape[1]
    m, Vt = _svd_rows(F_tr)
    coords = (F_va - m) @ Vt.T  # (n_va, k), k = min(n_tr, q)
    out = np.empty((ranks.size, F_va.shape[0], q))
    for i, r in enumerate(ranks):
        if r >= q:
            out[i] = F_va
        else:
            r = min(int(r), Vt.shape[0])
            out[i] = m + coords[:, :r] @ Vt[:r]
    return out


def _projection_matrix(F: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """``M`` (q x q) whose column ``j`` is ``V_r V_r^T e_j`` at ``j``'s rank (identity at full)."""
    q = F.shape[1]
    _, Vt = _svd_rows(F)
    M = np.eye(q)
    for r in np.unique(rank):
        if r >= q:
            continue
        js = np.flatnonzero(rank == r)
        V = Vt[: min(int(r), Vt.shape[0])]
        M[:, js] = V.T @ V[:, js]
    return M


@register_head("stacked")
class StackedHead(BaseHead):
    """A first-level head, then per perturbation a ridge on all perturbations' OOF predictions.

    The first level (``base``) is fitted on ``(Z, Y)`` and gives its out-of-fold predictions ``F``
    (n x p; :meth:`BaseHead.out_of_fold_predictions`). For each perturbation ``j``, on its labelled
    rows only, the second level fits ``y_j - o_j = c_j + X w_j + e`` by ridge, ``X`` the columns of
    ``F`` z-scored on those rows (the first-level columns that did not fall back): its own
    prediction is an offset with coefficient 1, the ridge adds what all perturbations' predictions
    explain of its residual. ``alpha`` is chosen by the exact leave-one-out Spearman of
    ``o_j + c_j + X w_j`` (ties: the larger alpha); the candidate ``alpha = inf`` is the first level
    itself (scored by the first level's own out-of-fold Spearman), so a perturbation that gains
    nothing keeps its first-level prediction plus a constant. ``min_gain`` asks the stack to beat
    the first level by that much mean validation Spearman before it replaces it.

    At predict time the first level predicts the new samples and its predictions feed the second
    level: ``pred_j = P_j + c_j + P[:, inputs_] @ W_[:, j]``.

    Parameters
    ----------
    base : BaseHead or None, default None
        The first level; None is ``RidgeHead(cv=5, standardize=False)`` (K-fold: see the module
        docstring for why not leave-one-out). Any head that provides
        out-of-fold predictions (cloned before fitting).
    alphas : array-like or None, default ``numpy.logspace(-1, 6, 15)``
        Second-level penalties (positive; ``inf``, the first level, is always a candidate).
    min_gain : float, default 0.01
        Smallest validation Spearman gain over the first level for the stack to be used on a
        perturbation (the selection is optimistic: see the module docstring).

    Attributes
    ----------
    base_ : BaseHead
        The fitted first level.
    W_ : ndarray (n_inputs, p); stack_intercept_ : ndarray (p,)
        Second-level weights on the first-level predictions of the input columns, and ``c``.
    inputs_ : ndarray (n_inputs,) of int
        First-level columns used as second-level inputs.
    alpha_ : ndarray (p,)
        Chosen second-level penalty (``inf``: the first level kept; NaN: fallback).
    alphas_ : ndarray; cv_scores_ : ndarray (n_alphas + 1, p)
        Leave-one-out Spearman of each penalty (last row: the first level).
    n_train_ : ndarray (p,); fallback_ : ndarray (p,) of bool
    """

    #: ties of mean CV scores go to the larger alpha (towards the first level)
    alpha_tie: ClassVar[Preference] = "larger"

    def __init__(
        self,
        base: BaseHead | None = None,
        alphas: np.ndarray | list[float] | None = None,
        min_gain: float = 0.01,
    ) -> None:
        self.base = base
        self.alphas = alphas
        self.min_gain = min_gain

    def _grid(self) -> np.ndarray:
        grid = np.logspace(-1, 6, 15) if self.alphas is None else np.asarray(self.alphas, float)
        if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)) or (grid <= 0).any():
            raise InputError(
                f"StackedHead: alphas must be a non-empty list of positive finite numbers, "
                f"got {self.alphas!r}",
                fix="use e.g. numpy.logspace(-1, 6, 15)",
            )
        gain = self.min_gain
        if not isinstance(gain, (int, float, np.number)) or not np.isfinite(gain) or gain < 0:
            raise InputError(
                f"StackedHead: min_gain must be a number >= 0, got {self.min_gain!r}",
                fix="use 0.0",
            )
        if self.base is not None and not isinstance(self.base, BaseHead):
            raise InputError(
                f"StackedHead: base must be a leapscreen head, got {type(self.base).__name__}",
                fix='use e.g. RidgeHead(cv="loo")',
            )
        return np.sort(grid)

    def fit(self, Z: Any, Y: Any) -> StackedHead:
        """Fit the first level, then each perturbation's second level on the OOF predictions.

        Parameters
        ----------
        Z : array of shape (n_samples, n_features)
        Y : array of shape (n_samples, n_perturbations) or (n_samples,), NaN = not measured

        Returns
        -------
        self
        """
        grid = self._grid()
        Zv, Yv = self._validate_fit(Z, Y)
        n, p = Yv.shape
        base = RidgeHead(cv=5, standardize=False) if self.base is None else clone(self.base)
        base.fit(Zv, Yv)
        F = base.out_of_fold_predictions()
        if F is None:
            raise InputError(
                f"StackedHead: the first level {type(base).__name__} gives no out-of-fold "
                "predictions",
                fix="use a head that sets them (RidgeHead, PSLassoHead, ...) as base",
            )
        F = np.asarray(F, dtype=np.float64).reshape(n, p)
        labelled = ~np.isnan(Yv)
        fallback, y_mean, n_lab = fallback_columns(Yv, labelled, 10, logger)
        base_fb = np.asarray(base.fallback_mask(), dtype=bool)
        fallback = fallback | base_fb | ~np.isfinite(F).all(axis=0)
        inputs = np.flatnonzero(~base_fb & np.isfinite(F).all(axis=0))
        candidates = np.append(grid, np.inf)  # inf: the first level itself
        W = np.zeros((inputs.size, p))
        c = np.zeros(p)
        chosen = np.full(p, np.nan)
        scores = np.full((candidates.size, p), np.nan)
        oof = F.copy()
        oof[:, fallback] = y_mean[fallback]
        X_all = F[:, inputs]

        for cols_list in label_groups(labelled, np.flatnonzero(~fallback)).values():
            cols = np.asarray(cols_list)
            rows = np.flatnonzero(labelled[:, cols[0]])
            Xs, mean, scale, keep = scaled(X_all[rows], True)
            U, s2 = eigen(Xs)
            first = F[np.ix_(rows, cols)]
            R = Yv[np.ix_(rows, cols)] - first
            rm = R.mean(axis=0)
            Uy = U.T @ (R - rm)  # (r, q)
            gain = s2[None, :] / (s2[None, :] + grid[:, None])  # (n_alphas, r)
            fitted = U @ (gain[:, :, None] * Uy[None]) + rm  # (n_alphas, n, q)
            lev = (U**2) @ gain.T + 1.0 / rows.size  # (n, n_alphas)
            lev = np.minimum(lev.T[:, :, None], 1.0 - 1e-12)
            loo = first + (fitted - lev * R) / (1.0 - lev)  # (n_alphas, n, q)
            truth = Yv[np.ix_(rows, cols)]
            stack = spearman_columns(loo, np.broadcast_to(truth, loo.shape))
            kept = spearman_columns(first, truth)  # the first level's own OOF score
            group_scores = np.vstack([stack, kept[None]])
            best = choose_alpha(group_scores, candidates, prefer=self.alpha_tie)
            gained = group_scores[best, np.arange(cols.size)] - kept > self.min_gain
            best = np.where(gained, best, candidates.size - 1)
            scores[:, cols] = group_scores
            chosen[cols] = candidates[best]
            for i, j in enumerate(cols):
                if best[i] == candidates.size - 1:
                    c[j] = rm[i]
                    oof[rows, j] = first[:, i] + rm[i]
                    continue
                shrink = 1.0 / (s2 + grid[best[i]])
                w_std = Xs.T @ (U @ (shrink * Uy[:, i]))
                w = np.where(keep, w_std / scale, 0.0)
                W[:, j] = w
                c[j] = rm[i] - mean @ w
                oof[rows, j] = loo[best[i], :, i]
            unl = np.flatnonzero(~labelled[:, cols[0]])
            if unl.size:
                oof[np.ix_(unl, cols)] = F[np.ix_(unl, cols)] + c[cols] + X_all[unl] @ W[:, cols]

        self.base_ = base
        self.W_ = W
        self.stack_intercept_ = c
        self.inputs_ = inputs.astype(np.int64)
        self.y_mean_ = y_mean
        self.alpha_ = chosen
        self.alphas_ = grid
        self.cv_scores_ = scores
        self.n_train_ = n_lab.astype(np.int64)
        self.fallback_ = fallback
        self._oof = oof
        return self

    def predict(self, Z: Any) -> np.ndarray:
        """First-level predictions of ``Z`` corrected by the second level.

        Parameters
        ----------
        Z : array of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_perturbations), or (n_samples,) after a 1-D fit
        """
        Zv = self._validate_predict(Z)
        P = np.asarray(self.base_.predict(Zv), dtype=np.float64).reshape(Zv.shape[0], -1)
        out = P + self.stack_intercept_ + P[:, self.inputs_] @ self.W_
        out[:, self.fallback_] = self.y_mean_[self.fallback_]
        return self._shape_output(out)
