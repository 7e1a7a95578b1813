"""The fit / predict flow every pan-perturbation head shares (the models plug in two hooks).

A pan head is one model ``f(z, v)`` of a sample's representation ``z`` and a perturbation's
descriptor ``v`` (or a stand-in for perturbations without one), trained on the labelled
(sample, perturbation) pairs. What the heads share, here:

* targets are standardised per perturbation (training mean and sd), so the model learns the
  within-perturbation variation that the per-perturbation Spearman scores; predictions are mapped
  back with the same mean and sd. For a perturbation never screened, its mean and log-sd are
  predicted from its descriptor by a ridge regression over the training perturbations
  (``scale_coef_``, ``scale_intercept_``);
* ``n_folds`` sample-grouped folds (a sample's pairs are never split); the fold models are kept and
  their predictions averaged (LEAP's reference procedure), and the held-out fold of every sample
  gives the out-of-fold predictions ``_oof``. ``n_folds=1``: one model on all samples, no OOF;
* each fold model stops early on an inner split of its training **samples** (``val_fraction``);
* features are z-scored with the fold's training samples; descriptors with the described training
  perturbations (label-free);
* the one fallback rule (:func:`~leapscreen.heads._cv.fallback_columns`): perturbations with fewer
  than ``2 * max(n_folds, 2)`` labels or a constant response are predicted by their training mean
  and left out of the pairs (when all are, no model is fitted: ``n_folds_ == 0``).

Subclasses implement ``_check_params()``, ``_fit_fold(fold, Zs, T, train, P, has_desc, seed)`` and
``_predict_fold(fold, Zs, desc, emb_index) -> (n, m)`` (standardised scale), where ``desc`` (m, q)
holds standardised descriptors (or None) and ``emb_index`` (m,) the training perturbation whose
learned stand-in to use instead (-1: use the descriptor).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from leapscreen.base import BaseHead
from leapscreen.errors import InputError
from leapscreen.heads._cv import fallback_columns
from leapscreen.heads.pan._pairs import column_scale, sample_folds
from leapscreen.heads.pan.descriptors import (
    as_descriptor_frame,
    match_descriptors,
    resolve_descriptors,
)

logger = logging.getLogger(__name__)

__all__ = ["PanHead"]


def _positive_int(owner: str, name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(
            f"{owner}: {name} must be an integer >= {minimum}, got {value!r}",
            fix=f"use e.g. {name}={max(minimum, 5)}",
        )
    return int(value)


def _layers(owner: str, name: str, value: Any, allow_empty: bool) -> tuple[int, ...]:
    try:
        layers = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        layers = None
    if layers is None or any(v < 1 for v in layers) or (not layers and not allow_empty):
        raise InputError(
            f"{owner}: {name} must be a tuple of positive layer widths"
            + ("" if allow_empty else " (at least one)")
            + f", got {value!r}",
            fix=f"use e.g. {name}=(256, 128)",
        )
    return layers


class PanHead(BaseHead):
    """Base of the pan-perturbation heads (see the module docstring for the shared procedure)."""

    # ------------------------------------------------------------------ shared parameter checks

    def _check_shared(self) -> None:
        owner = type(self).__name__
        _positive_int(owner, "n_folds", self.n_folds)
        frac = self.val_fraction
        if not isinstance(frac, (int, float)) or not 0.0 < float(frac) < 0.5:
            raise InputError(
                f"{owner}: val_fraction must be a number in (0, 0.5), got {frac!r}",
                fix="use val_fraction=0.15",
            )
        if self.descriptors is not None:
            as_descriptor_frame(self.descriptors)

    def _check_params(self) -> None:  # pragma: no cover - the interface
        raise NotImplementedError

    def _fit_fold(self, fold, Zs, T, train, P, has_desc, seed) -> None:  # pragma: no cover
        raise NotImplementedError

    def _predict_fold(self, fold, Zs, desc, emb_index) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------------ fit

    def fit(self, Z: Any, Y: Any, perturbations: Any = None) -> PanHead:
        """Fit the pan model on the labelled pairs of ``Y`` (NaN = not measured; 1-D allowed).

        Parameters
        ----------
        Z : array of shape (n_samples, n_features)
            Sample representation.
        Y : array of shape (n_samples, n_perturbations) or (n_samples,)
            Responses, NaN where not measured.
        perturbations : sequence of str, optional
            The names of the columns of ``Y`` (LEAP passes them), used to look the descriptors
            up (on the ID, else on the symbol: ``"A1BG (1)"`` matches ``"A1BG"``). Without names
            ``descriptors`` must have one row per column of ``Y``, in order.

        Returns
        -------
        self
        """
        self._check_params()
        self._check_shared()
        Zv, Yv = self._validate_fit(Z, Y)
        n, p = Yv.shape
        names = None if perturbations is None else [str(x) for x in list(perturbations)]
        P, found, columns = resolve_descriptors(self.descriptors, names, p)
        k = int(self.n_folds)
        labelled = ~np.isnan(Yv)
        fallback, y_mean, n_lab = fallback_columns(Yv, labelled, 2 * max(k, 2), logger)
        mean, scale = column_scale(Yv, labelled)
        T = (Yv - mean) / scale
        T[:, fallback] = np.nan

        Ps = None
        self.descriptor_mean_ = self.descriptor_scale_ = None  # set below with descriptors
        self.scale_coef_ = self.scale_intercept_ = None
        if P is not None:
            use = found & ~fallback
            use = use if use.any() else found
            if use.any():
                d_mean, d_sd = P[use].mean(axis=0), P[use].std(axis=0)
            else:
                d_mean, d_sd = np.zeros(P.shape[1]), np.ones(P.shape[1])
            d_sd = np.where(d_sd > 1e-12, d_sd, 1.0)
            Ps = np.where(found[:, None], (P - d_mean) / d_sd, 0.0)
            self.descriptor_mean_, self.descriptor_scale_ = d_mean, d_sd
            self._fit_scale_model(
                Ps[use & ~fallback], mean[use & ~fallback], scale[use & ~fallback]
            )
        self.descriptor_columns_ = columns
        self.train_descriptors_ = Ps
        self.has_descriptor_ = found
        self.perturbations_ = names
        self.y_mean_ = np.where(n_lab > 0, mean, np.nan)
        self.y_scale_ = scale
        self.fallback_ = fallback
        self.n_train_ = n_lab.astype(np.int64)

        folds = sample_folds(n, k, self.random_state) if k >= 2 else np.zeros(n, dtype=np.int64)
        seeds = np.random.default_rng(self.random_state).integers(0, 2**31 - 1, size=k)
        n_models = k if (~fallback).any() else 0  # nothing to learn: every column falls back
        self.z_mean_ = np.zeros((n_models, Zv.shape[1]))
        self.z_scale_ = np.ones((n_models, Zv.shape[1]))
        self._start_folds(n_models, n, Zv.shape[1], p, Ps, found)
        full = np.zeros((n, p))
        oof = np.zeros((n, p))
        emb_index = np.where(found, -1, np.arange(p))
        for f in range(n_models):
            train = np.flatnonzero(folds != f) if k >= 2 else np.arange(n)
            zm, zs = Zv[train].mean(axis=0), Zv[train].std(axis=0)
            zs = np.where(zs > 1e-12, zs, 1.0)
            self.z_mean_[f], self.z_scale_[f] = zm, zs
            Zs = (Zv - zm) / zs
            self._fit_fold(f, Zs, T, train, Ps, found, int(seeds[f]))
            pred = self._predict_fold(f, Zs, Ps, emb_index)
            full += pred / k
            held = folds == f
            oof[held] = pred[held]
        self.n_folds_ = n_models
        if k >= 2:
            oof = np.where(labelled, oof, full)
            self._oof = np.where(fallback, mean, mean + scale * oof)
            self._oof[:, n_lab == 0] = np.nan
        else:
            self._oof = None
        return self

    def _start_folds(self, k, n, d, p, Ps, has_desc) -> None:
        """Hook: prepare per-fold storage before the folds are fitted (default: nothing)."""

    def _fit_scale_model(self, P: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> None:
        """Ridge of [mean, log sd] on the descriptors, for perturbations never screened."""
        target = np.column_stack([mean, np.log(scale)]) if mean.size else np.zeros((0, 2))
        q = P.shape[1]
        if target.shape[0] < 3:
            self.scale_coef_ = np.zeros((q, 2))
            self.scale_intercept_ = target.mean(axis=0) if target.size else np.zeros(2)
            return
        from sklearn.linear_model import RidgeCV

        model = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(P, target)
        self.scale_coef_ = np.asarray(model.coef_, dtype=np.float64).T.reshape(q, 2)
        self.scale_intercept_ = np.asarray(model.intercept_, dtype=np.float64).reshape(2)

    # ------------------------------------------------------------------ predict

    def _standardised(self, Zv: np.ndarray, f: int) -> np.ndarray:
        return (Zv - self.z_mean_[f]) / self.z_scale_[f]

    def _mean_prediction(
        self, Zv: np.ndarray, desc: np.ndarray | None, emb: np.ndarray
    ) -> np.ndarray:
        out = np.zeros((Zv.shape[0], emb.size))
        for f in range(self.n_folds_):
            out += self._predict_fold(f, self._standardised(Zv, f), desc, emb)
        return out / max(self.n_folds_, 1)

    def predict(self, Z: Any) -> np.ndarray:
        """Predict every training perturbation (the mean of the fold models).

        Parameters
        ----------
        Z : array of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_perturbations), or (n_samples,) after a 1-D fit
        """
        Zv = self._validate_predict(Z)
        emb = np.where(self.has_descriptor_, -1, np.arange(self.has_descriptor_.size))
        std = self._mean_prediction(Zv, self.train_descriptors_, emb)
        mean = np.nan_to_num(self.y_mean_)
        pred = np.where(self.fallback_, mean, mean + self.y_scale_ * std)
        return self._shape_output(pred)

    def predict_perturbations(self, Z: Any, descriptors: Any) -> np.ndarray:
        """Predict any perturbations from their descriptor rows, screened or not.

        Parameters
        ----------
        Z : array of shape (n_samples, n_features)
        descriptors : pandas.DataFrame
            Perturbation ID x the descriptor columns of the fit (any order of columns).

        Returns
        -------
        numpy.ndarray of shape (n_samples, len(descriptors))
            A row whose ID (or symbol) is a training perturbation is put on that perturbation's
            training mean and sd (its training mean where it fell back); the others on the mean
            and sd predicted from the descriptor (``scale_coef_``).
        """
        Zv = self._validate_predict(Z)
        if not self.descriptor_columns_:
            raise InputError(
                f"this {type(self).__name__} was fitted without descriptors, so it cannot "
                "predict perturbations from descriptors",
                fix="fit it with descriptors=<perturbation ID x numeric columns>",
            )
        frame = as_descriptor_frame(descriptors)
        missing = [c for c in self.descriptor_columns_ if c not in frame.columns]
        if missing:
            raise InputError(
                f"descriptors lacks {len(missing)} column(s) of the fit (e.g. {missing[0]!r})",
                fix="describe the perturbations with the same columns as in fit",
            )
        V = frame[self.descriptor_columns_].to_numpy()
        Vs = (V - self.descriptor_mean_) / self.descriptor_scale_
        std = self._mean_prediction(Zv, Vs, np.full(V.shape[0], -1))
        scale_hat = Vs @ self.scale_coef_ + self.scale_intercept_
        mean, sd = scale_hat[:, 0], np.exp(scale_hat[:, 1])
        fallback = np.zeros(V.shape[0], dtype=bool)
        if self.perturbations_ is not None:
            pos = match_descriptors(self.perturbations_, list(frame.index))
            known = pos >= 0
            mean[known] = np.nan_to_num(self.y_mean_[pos[known]])
            sd[known] = self.y_scale_[pos[known]]
            fallback[known] = self.fallback_[pos[known]]
        return np.where(fallback, mean, mean + sd * std)
