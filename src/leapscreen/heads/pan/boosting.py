"""pan-LightGBM: one gradient-boosted tree model on the labelled (sample, perturbation) pairs.

Features of a pair: the sample's ``z``, then the perturbation's descriptor (NaN where it has none),
then a **target encoding** for perturbations without a descriptor (NaN for the others): the
correlation of the perturbation's standardised response with each feature of ``z`` over the fold's
fit samples (the rows that also train the booster; never the early-stopping or the held-out
samples). A perturbation's training mean and sd are not features: the targets are standardised
per perturbation and the mean and sd put back at prediction (see :mod:`._base`). One-hot
perturbation IDs are never used. The booster stops early on a sample-grouped inner split and is
saved in LightGBM's text format.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from leapscreen.errors import InputError
from leapscreen.heads.pan._base import PanHead, _positive_int
from leapscreen.heads.pan._pairs import inner_split, pairs_of
from leapscreen.registry import register_head

__all__ = ["PanLightGBMHead"]


def _lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError as exc:
        raise InputError(
            "PanLightGBMHead needs the lightgbm package, which is not installed",
            fix="pip install lightgbm (or choose the pan-mlp head)",
        ) from exc
    return lightgbm


def _target_encoding(Zs: np.ndarray, T: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Correlation of each column of ``T`` with each feature of ``Zs`` over ``samples``: (p, d)."""
    t = T[samples]
    ok = ~np.isnan(t)
    z = Zs[samples]
    cnt = ok.sum(axis=0)
    t0 = np.where(ok, t, 0.0)
    zt = z.T @ t0  # (d, p): sum over labelled rows of z * t
    z_sum = z.T @ ok  # (d, p)
    z2_sum = (z * z).T @ ok
    t_sum, t2_sum = t0.sum(axis=0), (t0 * t0).sum(axis=0)
    c = np.maximum(cnt, 1)
    cov = zt / c - (z_sum / c) * (t_sum / c)
    vz = np.maximum(z2_sum / c - (z_sum / c) ** 2, 0.0)
    vt = np.maximum(t2_sum / c - (t_sum / c) ** 2, 0.0)
    den = np.sqrt(vz * vt)
    return np.where(den > 1e-12, cov / np.where(den > 1e-12, den, 1.0), 0.0).T


@register_head("pan-lightgbm")
class PanLightGBMHead(PanHead):
    """Pan-perturbation LightGBM: one booster on ``[z, descriptor, target encoding]`` of the pairs.

    Parameters
    ----------
    descriptors : pandas.DataFrame or None, default None
        Perturbation ID x numeric columns (see :class:`~leapscreen.heads.pan.mlp.PanMLPHead`);
        perturbations without a row, or all with None, are described by their target encoding.
    n_estimators : int, default 300
        Most boosting rounds (early stopping usually ends sooner).
    learning_rate : float, default 0.1
    num_leaves : int, default 31
    min_child_samples : int, default 20
    colsample_bytree : float, default 0.3
    subsample : float, default 0.5
        Row bagging fraction (every iteration).
    reg_lambda : float, default 1.0
    max_bin : int, default 63
        Histogram bins per feature (fewer: faster; the defaults are sized for ~200k pairs x 400
        features on a few cores).
    early_stopping_rounds : int, default 20
    val_fraction : float, default 0.15
        Share of each fold's training samples held out for early stopping.
    n_folds : int, default 5
        Sample-grouped fold models (averaged; out-of-fold predictions). 1: a single booster.
    random_state : int or None, default 0
    n_jobs : int or None, default None
        LightGBM threads (None: LightGBM's default).

    Attributes
    ----------
    target_encoding_ : ndarray (n_folds, p, d)
        Per fold, the target encoding of every perturbation (used for those without a descriptor).
    best_iterations_ : ndarray of int (n_folds,)
    Others as :class:`~leapscreen.heads.pan.mlp.PanMLPHead`.
    """

    def __init__(
        self,
        descriptors: Any = None,
        n_estimators: int = 300,
        learning_rate: float = 0.1,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        colsample_bytree: float = 0.3,
        subsample: float = 0.5,
        reg_lambda: float = 1.0,
        max_bin: int = 63,
        early_stopping_rounds: int = 20,
        val_fraction: float = 0.15,
        n_folds: int = 5,
        random_state: int | None = 0,
        n_jobs: int | None = None,
    ) -> None:
        self.descriptors = descriptors
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.colsample_bytree = colsample_bytree
        self.subsample = subsample
        self.reg_lambda = reg_lambda
        self.max_bin = max_bin
        self.early_stopping_rounds = early_stopping_rounds
        self.val_fraction = val_fraction
        self.n_folds = n_folds
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _check_params(self) -> None:
        owner = type(self).__name__
        for name in ("n_estimators", "num_leaves", "early_stopping_rounds", "max_bin"):
            minimum = 2 if name in ("num_leaves", "max_bin") else 1
            _positive_int(owner, name, getattr(self, name), minimum=minimum)
        _positive_int(owner, "min_child_samples", self.min_child_samples)
        for name, lo, hi in (
            ("learning_rate", 0.0, np.inf),
            ("colsample_bytree", 0.0, 1.0),
            ("subsample", 0.0, 1.0),
        ):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not lo < v <= hi:
                raise InputError(
                    f"{owner}: {name} must be in ({lo:g}, {hi:g}], got {v!r}",
                    fix=f"use the default {name}",
                )
        if not isinstance(self.reg_lambda, (int, float)) or self.reg_lambda < 0:
            raise InputError(
                f"{owner}: reg_lambda must be >= 0, got {self.reg_lambda!r}", fix="use 1.0"
            )
        _lightgbm()

    def _params(self, seed: int) -> dict[str, Any]:
        params = {
            "objective": "regression",
            "learning_rate": float(self.learning_rate),
            "num_leaves": int(self.num_leaves),
            "min_child_samples": int(self.min_child_samples),
            "colsample_bytree": float(self.colsample_bytree),
            "subsample": float(self.subsample),
            "subsample_freq": 1 if self.subsample < 1 else 0,
            "reg_lambda": float(self.reg_lambda),
            "max_bin": int(self.max_bin),
            "seed": int(seed),
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }
        if self.n_jobs is not None:
            params["num_threads"] = int(self.n_jobs)
        return params

    def _start_folds(self, k, n, d, p, Ps, has_desc) -> None:
        self._boosters = []
        self.target_encoding_ = np.zeros((k, p, d))
        self.best_iterations_ = np.zeros(k, dtype=np.int64)

    def _features(
        self, fold: int, Zs: np.ndarray, rows: np.ndarray, cols: np.ndarray, desc, emb_index
    ) -> np.ndarray:
        """Feature matrix of the pairs (rows, cols): [z, descriptor or NaN, encoding or NaN]."""
        d = Zs.shape[1]
        q = 0 if desc is None else desc.shape[1]
        te = d if (~self.has_descriptor_).any() else 0  # encoding columns only when needed
        X = np.full((rows.size, d + q + te), np.nan, dtype=np.float32)
        X[:, :d] = Zs[rows]
        emb = emb_index[cols]
        described = emb < 0
        if q:
            X[described, d : d + q] = desc[cols[described]]
        if (~described).any():
            X[~described, d + q :] = self.target_encoding_[fold][emb[~described]]
        return X

    def _fit_fold(self, fold, Zs, T, train, P, has_desc, seed) -> None:
        lgb = _lightgbm()
        fit_s, val_s = inner_split(train, float(self.val_fraction), seed)
        self.target_encoding_[fold] = _target_encoding(Zs, T, fit_s)
        emb_index = np.where(has_desc, -1, np.arange(has_desc.size))
        rows, cols, y = pairs_of(T, fit_s)
        if y.size == 0:  # no labelled pair to learn from (tiny data): predict the mean
            self._boosters.append(None)
            return
        train_set = lgb.Dataset(
            self._features(fold, Zs, rows, cols, P, emb_index), label=y, free_raw_data=True
        )
        callbacks = []
        valid = []
        vrows, vcols, vy = pairs_of(T, val_s)
        if vy.size:
            valid = [
                lgb.Dataset(
                    self._features(fold, Zs, vrows, vcols, P, emb_index),
                    label=vy,
                    reference=train_set,
                )
            ]
            callbacks = [lgb.early_stopping(int(self.early_stopping_rounds), verbose=False)]
        booster = lgb.train(
            self._params(seed),
            train_set,
            num_boost_round=int(self.n_estimators),
            valid_sets=valid,
            callbacks=callbacks,
        )
        best = booster.best_iteration if booster.best_iteration > 0 else booster.current_iteration()
        self.best_iterations_[fold] = best
        self._boosters.append(booster)

    def _predict_fold(self, fold, Zs, desc, emb_index) -> np.ndarray:
        n, m = Zs.shape[0], emb_index.size
        out = np.empty((n, m))
        booster = self._boosters[fold]
        if booster is None:
            return np.zeros((n, m))
        step = max(1, 2_000_000 // max(m, 1))
        cols_all = np.arange(m)
        for start in range(0, n, step):
            rows = np.arange(start, min(n, start + step))
            r = np.repeat(rows, m)
            c = np.tile(cols_all, rows.size)
            X = self._features(fold, Zs, r, c, desc, emb_index)
            pred = booster.predict(X, num_iteration=int(self.best_iterations_[fold]))
            out[rows] = pred.reshape(rows.size, m)
        return out

    # -------------------------------------------------------------- saved state (no pickle)

    def _extra_state(self) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        texts = {
            f"booster{f}": b.model_to_string()
            for f, b in enumerate(getattr(self, "_boosters", []))
            if b is not None
        }
        return {}, texts

    def _load_extra_state(self, arrays: dict[str, np.ndarray], texts: dict[str, str]) -> None:
        if not hasattr(self, "n_folds_"):
            return
        lgb = _lightgbm()
        self._boosters = [
            lgb.Booster(model_str=texts[f"booster{f}"]) if f"booster{f}" in texts else None
            for f in range(self.n_folds_)
        ]
