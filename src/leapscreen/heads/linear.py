"""Baseline heads in the interface of :class:`~leapscreen.heads.lasso.PSLassoHead`.

* :class:`MeanHead` - the training mean of every perturbation (the floor every model must beat);
* :class:`RidgeHead` - per-perturbation ridge regression, penalty chosen by cross-validation;
* :class:`ElasticNetHead` - PS-LASSO with ``l1_ratio=0.5`` (PS-ElasticNet of the paper).

All heads accept responses with NaN (missing) entries, use each perturbation's labelled rows only,
and expose ``coef_mean_`` (d x p) and ``intercept_mean_`` (p,) so that
``predict(Z) == Z @ coef_mean_ + intercept_mean_``. Folds, scoring, the tie rule (ridge: ties go to
the larger alpha) and the fallback rule are those of :mod:`leapscreen.heads._cv`.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, ClassVar

import numpy as np

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
from leapscreen.heads._solvers.spectral import centred_kernels, eigen, eigen_of_gram, scaled
from leapscreen.heads.lasso import PSLassoHead
from leapscreen.registry import register_head

logger = logging.getLogger(__name__)

__all__ = ["ElasticNetHead", "MeanHead", "RidgeHead"]


@register_head("ps-enet")
class ElasticNetHead(PSLassoHead):
    """PS-ElasticNet: :class:`PSLassoHead` with ``l1_ratio=0.5`` by default.

    All parameters (given by keyword) and attributes are those of :class:`PSLassoHead`.
    """

    # the parameters of PSLassoHead, listed once (there): only the default of l1_ratio differs
    def __init__(self, **params: Any) -> None:
        super().__init__(**{"l1_ratio": 0.5, **params})

    __init__.__signature__ = inspect.signature(PSLassoHead.__init__).replace(
        parameters=[
            p.replace(default=0.5) if p.name == "l1_ratio" else p
            for p in inspect.signature(PSLassoHead.__init__).parameters.values()
        ]
    )


@register_head("ridge", leap_params={"n_folds": "cv"})
class RidgeHead(LinearHeadMixin, BaseHead):
    """Per-perturbation ridge regression, penalty chosen by K-fold or leave-one-out cross-validation.

    Each fold model minimises ``||y - Xw - b||^2 + alpha ||w||^2`` (scikit-learn's ``Ridge``) on
    features z-scored with the fold's training rows (``standardize=True``). Folds are those of
    :func:`~leapscreen.heads.lasso.kfold_assignment` (shared by perturbations with the same
    missingness). The fold models at the chosen alpha are kept and averaged.

    One thin SVD per fold (per missingness pattern) serves every alpha and every perturbation of
    the pattern.

    With ``cv="loo"`` the penalty is chosen on the exact leave-one-out predictions, which follow in
    closed form from one eigendecomposition per missingness pattern (as scikit-learn's ``RidgeCV``
    does); the model kept is then the single ridge fit on all labelled rows at the chosen alpha. It is
    about K times faster than K-fold and the usual choice for a ridge baseline.

    Parameters
    ----------
    alphas : array-like, default ``numpy.logspace(-1, 5, 13)``
        Candidate penalties.
    cv : int or "loo", default 5
        Number of folds, or "loo" for leave-one-out.
    random_state : int or None, default 0
        Seed of the fold shuffle.
    standardize : bool, default True
        Z-score the features within each fold.
    scoring : {"spearman", "mse"}, default "spearman"
        Criterion: highest mean validation Spearman (ties: larger alpha) or lowest mean validation
        mean squared error.

    Attributes
    ----------
    coef_ : ndarray (cv, d, p); intercept_ : ndarray (cv, p)
        The fold models (one model fitted on all labelled rows when ``cv="loo"``).
    coef_mean_ : ndarray (d, p); intercept_mean_ : ndarray (p,)
    alpha_ : ndarray (p,); alphas_ : ndarray (n_alphas,)
    cv_scores_ : ndarray (n_alphas, p)
        Mean validation score (Spearman, or minus the MSE).
    n_train_ : ndarray (p,); fallback_ : ndarray (p,) of bool
    """

    #: which alpha wins a tie of mean CV scores (see :func:`leapscreen.heads._cv.choose_alpha`):
    #: the larger, the more regularised model
    alpha_tie: ClassVar[Preference] = "larger"

    def __init__(
        self,
        alphas: np.ndarray | list[float] | None = None,
        cv: int | str = 5,
        random_state: int | None = 0,
        standardize: bool = True,
        scoring: str = "spearman",
    ) -> None:
        self.alphas = alphas
        self.cv = cv
        self.random_state = random_state
        self.standardize = standardize
        self.scoring = scoring

    def _grid(self) -> np.ndarray:
        grid = np.logspace(-1, 5, 13) if self.alphas is None else np.asarray(self.alphas, float)
        if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)) or (grid <= 0).any():
            raise InputError(
                "RidgeHead: alphas must be a non-empty list of positive numbers, "
                f"got {self.alphas!r}",
                fix="use e.g. numpy.logspace(-1, 5, 13)",
            )
        if self.cv != "loo" and not (isinstance(self.cv, (int, np.integer)) and self.cv >= 2):
            raise InputError(
                f"RidgeHead: cv must be an integer >= 2 or 'loo', got {self.cv!r}", fix="use 5"
            )
        if self.scoring not in ("spearman", "mse"):
            raise InputError(
                f"RidgeHead: scoring must be 'spearman' or 'mse', got {self.scoring!r}",
                fix="use 'spearman'",
            )
        return np.sort(grid)

    def fit(self, Z: Any, Y: Any) -> RidgeHead:
        """Fit one cross-validated ridge model per column of ``Y`` (NaN = missing; 1-D allowed).

        Returns
        -------
        self
        """
        grid = self._grid()
        Zv, Yv = self._validate_fit(Z, Y)
        n, d = Zv.shape
        p = Yv.shape[1]
        loo = self.cv == "loo"
        k = 5 if loo else int(self.cv)  # loo: the label floor of 5-fold applies
        labelled = ~np.isnan(Yv)
        z_mean = Zv.mean(axis=0)
        Zc = Zv - z_mean
        fallback, y_mean, n_lab = fallback_columns(Yv, labelled, 2 * k, logger)

        n_models = 1 if loo else k
        coef = np.zeros((n_models, d, p))
        intercept = np.tile(y_mean, (n_models, 1))
        scores = np.full((grid.size, p), np.nan)
        chosen = np.full(p, np.nan)
        groups = label_groups(labelled, np.flatnonzero(~fallback))
        held_out: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # for _oof

        kernel: list[np.ndarray] = []  # Zc Zc^T, computed once if the centred kernel form is used

        def decompose(tr: np.ndarray, va: np.ndarray | None = None):
            """Scaled training rows, the eigenbasis of their Gram matrix, the validation projection.

            With ``Xs = U S V^T`` and validation rows ``Xv``: ``Xv w(alpha) = XvU @ diag(1 / (s^2 +
            alpha)) @ U^T y`` where ``XvU = Xv Xs^T U``. Unscaled features with more genes than rows
            slice and centre one kernel matrix instead of forming ``Xs Xs^T`` again.
            """
            Xs, mean, scale, keep = scaled(Zc[tr], self.standardize)
            Xv = None if va is None else np.where(keep, (Zc[va] - mean) / scale, 0.0)
            if not self.standardize and d >= tr.size:
                if not kernel:
                    kernel.append(Zc @ Zc.T)
                K_tr, K_va = centred_kernels(kernel[0], tr, tr if va is None else va)
                U, s2 = eigen_of_gram(K_tr)
                XvU = None if va is None else K_va @ U
            else:
                U, s2 = eigen(Xs)
                XvU = None if Xv is None else Xv @ (Xs.T @ U)
            return Xs, mean, scale, keep, U, s2, XvU

        def score(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
            """Validation score of each (alpha, column): Spearman, or minus the MSE."""
            if self.scoring == "spearman":
                return spearman_columns(pred, np.broadcast_to(truth, pred.shape))
            return -((pred - truth) ** 2).mean(axis=1)

        for cols_list in groups.values():
            cols = np.asarray(cols_list)
            mask = labelled[:, cols[0]]
            if loo:
                rows = np.flatnonzero(mask)
                fit = decompose(rows)
                U, s2 = fit[4], fit[5]
                yt = Yv[rows][:, cols]
                ym = yt.mean(axis=0)
                Uy = U.T @ (yt - ym)
                # hat matrix of ridge with an intercept: 1/n + U diag(s2 / (s2 + alpha)) U^T
                gain = s2[None, :] / (s2[None, :] + grid[:, None])  # (n_alphas, r)
                fitted = U @ (gain[:, :, None] * Uy[None]) + ym  # (n_alphas, n, q)
                lev = (U**2) @ gain.T + 1.0 / rows.size  # (n, n_alphas)
                lev = np.minimum(lev.T[:, :, None], 1.0 - 1e-12)  # (n_alphas, n, 1)
                loo_pred = (fitted - lev * yt) / (1.0 - lev)  # (n_alphas, n, q)
                mean_score = score(loo_pred, yt)  # leave-one-out
                fold_models = [(*fit[:6], Uy, ym)]
                # out-of-fold, less the mean of the other rows, (n * ym - y) / (n - 1)
                validation = [(rows, loo_pred - ym - (ym - yt) / (rows.size - 1))]
            else:
                fold = kfold_assignment(mask, k, self.random_state)
                total = np.zeros((grid.size, cols.size))
                fold_models = []
                validation = []
                for f in range(k):
                    tr = np.flatnonzero(mask & (fold != f))
                    va = np.flatnonzero(fold == f)
                    *fit, XvU = decompose(tr, va)
                    yt = Yv[tr][:, cols]
                    ym = yt.mean(axis=0)
                    Uy = fit[4].T @ (yt - ym)  # (r, q)
                    shrink = 1.0 / (fit[5][None, :] + grid[:, None])  # (n_alphas, r)
                    # validation predictions for every alpha at once: (n_alphas, n_val, q)
                    pred = XvU @ (shrink[:, :, None] * Uy[None]) + ym
                    total += score(pred, Yv[va][:, cols])
                    fold_models.append((*fit, Uy, ym))
                    validation.append((va, pred - ym))
                mean_score = total / k
            best = choose_alpha(mean_score, grid, prefer=self.alpha_tie)
            scores[:, cols] = mean_score
            chosen[cols] = grid[best]
            held_out += [(rows_, cols, best, pred_) for rows_, pred_ in validation]
            for f, (Xs, mean, scale, keep, U, s2, Uy, ym) in enumerate(fold_models):
                shrink = 1.0 / (s2[:, None] + grid[best][None, :])  # (r, q)
                w_std = Xs.T @ (U @ (shrink * Uy))  # (d, q)
                w_raw = np.where(keep[:, None], w_std / scale[:, None], 0.0)
                coef[f][:, cols] = w_raw
                intercept[f, cols] = ym - mean @ w_raw

        intercept = intercept - np.einsum("d,kdp->kp", z_mean, coef)
        self.coef_ = coef
        self.intercept_ = intercept
        self.coef_mean_ = coef.mean(axis=0)
        self.intercept_mean_ = intercept.mean(axis=0)
        self.alpha_ = chosen
        self.alphas_ = grid
        self.cv_scores_ = scores
        self.n_train_ = n_lab.astype(np.int64)
        self.fallback_ = fallback
        oof = Zv @ self.coef_mean_ + self.intercept_mean_
        for rows_, cols, best, pred_ in held_out:  # each labelled row: the model that left it out
            oof[np.ix_(rows_, cols)] = pred_[best, :, np.arange(cols.size)].T + y_mean[cols]
        self._oof = oof
        return self


@register_head("mean")
class MeanHead(LinearHeadMixin, BaseHead):
    """Predict the training mean of every perturbation (over its labelled rows).

    Attributes
    ----------
    coef_mean_ : ndarray (d, p) of zeros
    intercept_mean_ : ndarray (p,)
        Mean of the labelled responses (NaN for a perturbation without any label).
    n_train_ : ndarray (p,)
    """

    #: the prediction does not depend on the features: LEAP fits one such member
    uses_features = False

    def __sklearn_tags__(self):  # noqa: ANN204 - sklearn's Tags object
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True  # the floor every model must beat: R^2 = 0
        return tags

    def fit(self, Z: Any, Y: Any) -> MeanHead:
        """Store the mean of every column of ``Y`` over its non-missing rows (``Z`` is only checked).

        Returns
        -------
        self
        """
        Zv, Yv = self._validate_fit(Z, Y)
        labelled = ~np.isnan(Yv)
        n_lab = labelled.sum(axis=0)
        total = np.where(labelled, Yv, 0.0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n_lab > 0, total / np.maximum(n_lab, 1), np.nan)
        if (n_lab == 0).any():
            logger.warning(
                "%d perturbation(s) have no labelled row; their prediction is NaN",
                int((n_lab == 0).sum()),
            )
        self.coef_mean_ = np.zeros((Zv.shape[1], Yv.shape[1]))
        self.intercept_mean_ = mean
        self.n_train_ = n_lab.astype(np.int64)
        self._oof = np.tile(mean, (Zv.shape[0], 1))  # the training mean (not left out: a floor)
        return self
