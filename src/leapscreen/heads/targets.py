"""A head fitted on normal scores of the responses instead of the responses themselves.

Drug responses such as LN_IC50 have heavy tails: extrapolated IC50s, a few extremely sensitive
lines. A least-squares head spends much of its fit on them, while the per-perturbation Spearman that
users judge a model by only sees ranks. :class:`NormalScoresHead` replaces each perturbation's
labelled responses by their normal scores, ``Phi^-1((rank - 1/2) / n)`` (ties share their mean
rank), fits any head on those, and maps its predictions back to the response scale with the
perturbation's labelled mean and standard deviation: ``pred = mean + sd * base.predict(Z)``. The
map back is affine, so a linear base stays linear (LEAP still collapses to gene coefficients), and
members fitted on the raw and on the normal-scored responses can be averaged.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata
from sklearn.base import clone

from leapscreen.base import BaseHead, has_parameter
from leapscreen.errors import InputError
from leapscreen.heads.linear import RidgeHead
from leapscreen.registry import register_head

logger = logging.getLogger(__name__)

__all__ = ["NormalScoresHead", "normal_scores"]


def normal_scores(Y: np.ndarray) -> np.ndarray:
    """Per column, the normal scores of the labelled entries (NaN stays NaN).

    Parameters
    ----------
    Y : ndarray of shape (n, p), NaN = not measured

    Returns
    -------
    ndarray of shape (n, p): ``Phi^-1((r - 1/2) / m)``, ``r`` the rank among the column's ``m``
    labelled entries (ties: the mean rank); a constant column gives zeros.
    """
    Y = np.asarray(Y, dtype=np.float64)
    ranks = rankdata(Y, axis=0, nan_policy="omit")
    m = np.sum(~np.isnan(Y), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ndtri((ranks - 0.5) / np.maximum(m, 1)[None, :])


@register_head("normal-scores")
class NormalScoresHead(BaseHead):
    """Any head, fitted on the normal scores of each perturbation's responses.

    Parameters
    ----------
    base : BaseHead or None, default None
        The head fitted on the normal scores (cloned before fitting); None is
        ``RidgeHead(cv="loo", standardize=False)``.

    Attributes
    ----------
    base_ : BaseHead
        The fitted head (on the normal-score scale).
    y_mean_, y_scale_ : ndarray of shape (p,)
        Each perturbation's labelled mean and standard deviation (1 where it is constant or has
        fewer than two labels): the map back to the response scale.
    fallback_ : ndarray of shape (p,) of bool
        The base's fallback perturbations (predicted by their training mean).
    """

    def __init__(self, base: BaseHead | None = None) -> None:
        self.base = base

    @property
    def is_linear(self) -> bool:  # type: ignore[override]
        """Linear exactly when the base is (the map back is affine)."""
        base = getattr(self, "base_", self.base)
        return bool(getattr(base if base is not None else RidgeHead, "is_linear", False))

    def fit(self, Z: Any, Y: Any, perturbations: Any = None) -> NormalScoresHead:
        """Fit the base on the normal scores of ``Y``.

        Parameters
        ----------
        Z : array of shape (n_samples, n_features)
        Y : array of shape (n_samples, n_perturbations) or (n_samples,), NaN = not measured
        perturbations : sequence of str, optional
            Passed on to a base whose ``fit`` takes it (pan-perturbation heads).

        Returns
        -------
        self
        """
        if self.base is not None and not isinstance(self.base, BaseHead):
            raise InputError(
                f"NormalScoresHead: base must be a leapscreen head, got {type(self.base).__name__}",
                fix='use e.g. RidgeHead(cv="loo")',
            )
        Zv, Yv = self._validate_fit(Z, Y)
        base = RidgeHead(cv="loo", standardize=False) if self.base is None else clone(self.base)
        with warnings.catch_warnings():  # all-NaN columns: mean 0, scale 1 below
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(Yv, axis=0)
            scale = np.nanstd(Yv, axis=0)
        labelled = np.sum(~np.isnan(Yv), axis=0)
        mean = np.where(labelled > 0, mean, 0.0)
        scale = np.where((labelled > 1) & (scale > 0) & np.isfinite(scale), scale, 1.0)
        G = normal_scores(Yv)
        if perturbations is not None and has_parameter(base.fit, "perturbations"):
            base.fit(Zv, G, perturbations=perturbations)
        else:
            base.fit(Zv, G)
        self.base_ = base
        self.y_mean_ = mean
        self.y_scale_ = scale
        self.fallback_ = np.asarray(base.fallback_mask(), dtype=bool).reshape(-1)
        oof = base.out_of_fold_predictions()
        self._oof = None if oof is None else self._back(np.asarray(oof, np.float64))
        return self

    def _back(self, G: np.ndarray) -> np.ndarray:
        G = G.reshape(G.shape[0], -1)
        return self.y_mean_ + self.y_scale_ * G

    def predict(self, Z: Any) -> np.ndarray:
        """Predictions on the response scale: ``y_mean_ + y_scale_ * base_.predict(Z)``.

        Parameters
        ----------
        Z : array of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_perturbations), or (n_samples,) after a 1-D fit
        """
        Zv = self._validate_predict(Z)
        return self._shape_output(self._back(np.asarray(self.base_.predict(Zv), np.float64)))

    # the linear form (used by LEAP's collapse when the base is linear)
    @property
    def coef_mean_(self) -> np.ndarray:
        """``base_.coef_mean_`` scaled to the response scale (linear bases only)."""
        return np.asarray(self.base_.coef_mean_, np.float64) * self.y_scale_[None, :]

    @property
    def intercept_mean_(self) -> np.ndarray:
        """``y_mean_ + y_scale_ * base_.intercept_mean_`` (linear bases only)."""
        return self.y_mean_ + self.y_scale_ * np.asarray(self.base_.intercept_mean_, np.float64)
