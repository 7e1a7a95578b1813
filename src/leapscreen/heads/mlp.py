"""PS-MLP: one small neural network per perturbation, all of them trained as one batched network.

The procedure is LEAP's reference one for its PS-MLP head, for every perturbation (column of ``Y``)
over that perturbation's labelled rows only:

* the rows are split into ``cv`` folds (:func:`~leapscreen.heads._cv.kfold_assignment`);
* for every candidate setting (``hidden_layers`` x ``learning_rates``) and every fold, an MLP
  (ReLU, dropout after every hidden layer, Adam, MSE) is trained on the fold's training rows, with
  inputs z-scored by those rows' statistics (the target too; both are folded back into the weights);
* early stopping: an inner validation split is taken from the fold's training rows (never from the
  CV validation fold); each network keeps the weights of its best inner-validation epoch and stops
  after ``patience`` epochs without improvement (or at ``max_epochs``);
* the setting is chosen by the mean validation Spearman over the folds (ties go to the setting
  listed first: :func:`~leapscreen.heads._cv.choose_alpha` on positions), and the ``cv`` fold
  networks at that setting are kept; their predictions are averaged.

How it is fast: the networks of all perturbations and folds of one setting are one batched network
whose weights carry a model axis (first layer ``(d, models, h)``, one matrix product for all
models since they share the input rows; later layers batched products). Mini-batches are shared
row sets; a masked MSE gives every model the gradient of its own labelled training rows only, so
each model trains exactly as if alone. Models that stop early are dropped from the batch.

Randomness without cross-talk: the initial weights (per model: setting, perturbation index, fold),
the row order of every epoch and the dropout masks (per setting, fold, epoch, row and unit; shared
by the perturbations, whose networks are separate models) come from a counter-based hash (murmur3's
finaliser) of the seed. A perturbation's networks therefore do not depend on the other
perturbations' labels (up to float rounding of products of other shapes once networks stop), and
the random numbers are the same on every device. The inner validation rows are the fold's training
rows that fall in one seeded subset (``validation_fraction`` of all rows) shared by every model, so
that the per-epoch validation pass runs on that subset only.

torch is imported only inside :meth:`PSMLPHead.fit`; prediction is numpy (float64), so a saved head
loads and predicts without a GPU (and without importing torch).
"""

from __future__ import annotations

import logging
import math
from itertools import product
from typing import TYPE_CHECKING, Any, ClassVar

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
from leapscreen.heads._mlp_train import (
    _U32,
    _Config,
    _fmix,
    _fold_scaling,
    _forward_numpy,
    _model_keys,
    _plan,
    _seed_key,
    _shapes,
    _take_models,
    _train,
)
from leapscreen.heads._parallel import report_progress
from leapscreen.registry import register_head

if TYPE_CHECKING:  # pragma: no cover
    pass

logger = logging.getLogger(__name__)

__all__ = ["PSMLPHead"]


def _positive_int(name: str, value: Any, minimum: int, example: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(
            f"PSMLPHead: {name} must be an integer >= {minimum}, got {value!r}",
            fix=f"use e.g. {name}={example}",
        )
    return int(value)


def _number(name: str, value: Any, low: float, high: float, closed_high: bool, example: str):
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v) and v >= low and (v <= high if closed_high else v < high)
    if not ok:
        bracket = "]" if closed_high else ")"
        raise InputError(
            f"PSMLPHead: {name} must be a number in [{low:g}, {high:g}{bracket}, got {value!r}",
            fix=f"use e.g. {name}={example}",
        )
    return float(value)


@register_head("ps-mlp", leap_params={"n_folds": "cv", "device": "device"})
class PSMLPHead(BaseHead):
    """Per-perturbation MLPs (LEAP's PS-MLP), setting chosen by CV, fold networks averaged.

    See the module docstring for the procedure and how all networks train as one.

    Parameters
    ----------
    learning_rates : sequence of float, default (1e-3, 1e-2)
        Candidate Adam learning rates.
    hidden_layers : sequence of tuples of int, default ((20,), (20, 20))
        Candidate architectures (hidden widths); the grid is ``hidden_layers x learning_rates``.
    dropout : float, default 0.2
        Dropout rate after every hidden layer (training only).
    max_epochs : int, default 100
        Most epochs of any network.
    patience : int, default 5
        Epochs without a relative improvement of ``1e-4`` of the inner-validation loss after which
        a network stops; it keeps the weights of its best epoch.
    batch_size : int, default 64
        Rows per mini-batch (shared by the networks; each uses its own labelled training rows).
    weight_decay : float, default 0.0
        Adam's L2 penalty.
    validation_fraction : float, default 0.2
        Share of the rows forming the inner-validation subset (intersected with each network's
        training fold).
    cv : int, default 5
        Number of folds (LEAP's ``n_folds``).
    random_state : int or None, default 0
        Seed of the folds, the inner split, the initial weights, the row orders and the dropout.
    device : str, default "cpu"
        Torch device of the training ("cpu", "cuda", "cuda:0", "mps"). Prediction is numpy.

    Attributes
    ----------
    settings_ : list of (hidden widths, learning rate)
        The candidates, in the order of ``cv_scores_`` (ties go to the first).
    cv_scores_ : ndarray (n_settings, p)
        Mean validation Spearman of every candidate (NaN for fallbacks).
    setting_ : ndarray (p,) of int
        Chosen candidate (-1 for fallbacks).
    learning_rate_ : ndarray (p,)
        Chosen learning rate (NaN for fallbacks).
    best_epoch_ : ndarray (n_folds, p) of int
        Epoch whose weights each kept fold network holds (0 for fallbacks).
    n_epochs_ : ndarray (n_settings,) of int
        Epochs the batched training of each candidate ran (until its last network stopped).
    y_mean_ : ndarray (p,)
        Training mean of every perturbation (the fallback prediction).
    n_folds_ : int
    n_train_ : ndarray (p,); fallback_ : ndarray (p,) of bool
    """

    #: ties of mean CV scores go to the candidate listed first (positions, smaller wins)
    setting_tie: ClassVar[Preference] = "smaller"

    def __init__(
        self,
        learning_rates: Any = (1e-3, 1e-2),
        hidden_layers: Any = ((20,), (20, 20)),
        dropout: float = 0.2,
        max_epochs: int = 100,
        patience: int = 5,
        batch_size: int = 64,
        weight_decay: float = 0.0,
        validation_fraction: float = 0.2,
        cv: int = 5,
        random_state: int | None = 0,
        device: str = "cpu",
    ) -> None:
        self.learning_rates = learning_rates
        self.hidden_layers = hidden_layers
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.patience = patience
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.cv = cv
        self.random_state = random_state
        self.device = device

    # -- parameters ------------------------------------------------------------------------------
    def _check_params(self) -> list[_Config]:
        lrs = self.learning_rates
        lrs = [lrs] if isinstance(lrs, (int, float, np.integer, np.floating)) else lrs
        try:
            ok = [float(v) for v in lrs if not isinstance(v, bool) and 0 < float(v) < math.inf]
        except (TypeError, ValueError):
            ok = []
        if not ok or len(ok) != len(lrs):
            raise InputError(
                "PSMLPHead: learning_rates must be a non-empty list of positive numbers, "
                f"got {self.learning_rates!r}",
                fix="use e.g. learning_rates=(1e-3, 1e-2)",
            )
        lrs = ok
        archs = []
        try:
            for arch in self.hidden_layers:
                widths = tuple(arch)
                if not widths or any(
                    isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1
                    for w in widths
                ):
                    raise TypeError
                archs.append(tuple(int(w) for w in widths))
        except TypeError:
            archs = []
        if not archs:
            raise InputError(
                "PSMLPHead: hidden_layers must be a non-empty list of architectures, each a "
                f"non-empty tuple of positive widths, got {self.hidden_layers!r}",
                fix="use e.g. hidden_layers=((20,), (20, 20))",
            )
        dropout = _number("dropout", self.dropout, 0.0, 1.0, False, "0.2")
        max_epochs = _positive_int("max_epochs", self.max_epochs, 1, 100)
        patience = _positive_int("patience", self.patience, 1, 5)
        batch_size = _positive_int("batch_size", self.batch_size, 1, 64)
        weight_decay = _number("weight_decay", self.weight_decay, 0.0, math.inf, False, "0.0")
        fraction = _number("validation_fraction", self.validation_fraction, 0.0, 1.0, False, "0.2")
        if fraction <= 0:
            raise InputError(
                f"PSMLPHead: validation_fraction must be in (0, 1), got {self.validation_fraction!r}",
                fix="use e.g. validation_fraction=0.2",
            )
        _positive_int("cv", self.cv, 2, 5)
        if self.random_state is not None and (
            isinstance(self.random_state, bool)
            or not isinstance(self.random_state, (int, np.integer))
        ):
            raise InputError(
                f"PSMLPHead: random_state must be an integer or None, got {self.random_state!r}",
                fix="use e.g. random_state=0",
            )
        device = _check_device(self.device)
        return [
            _Config(arch, lr, dropout, max_epochs, patience, batch_size, weight_decay, device)
            for arch, lr in product(archs, lrs)
        ]

    # -- fit -------------------------------------------------------------------------------------
    def fit(self, Z: Any, Y: Any) -> PSMLPHead:
        """Train and choose the networks of every column of ``Y`` (NaN = missing; 1-D allowed).

        Returns
        -------
        self
        """
        configs = self._check_params()
        Zv, Yv = self._validate_fit(Z, Y)
        n, p = Yv.shape
        k = int(self.cv)
        labelled = ~np.isnan(Yv)
        fallback, y_mean, n_lab = fallback_columns(Yv, labelled, 2 * k, logger)
        cols = np.flatnonzero(~fallback)
        q = cols.size
        n_settings = len(configs)
        seed = _seed_key(self.random_state)

        scores = np.full((n_settings, p), np.nan)
        setting = np.full(p, -1, dtype=np.int64)
        best_epoch = np.zeros((k, p), dtype=np.int64)
        n_epochs = np.zeros(n_settings, dtype=np.int64)
        oof = np.tile(y_mean, (n, 1))
        models: list[tuple[np.ndarray, list[np.ndarray]] | None] = [None] * n_settings
        if q:
            fold = np.full((n, q), -1, dtype=np.int64)
            groups = [np.searchsorted(cols, g) for g in label_groups(labelled, cols).values()]
            for pos in groups:
                fold[:, pos] = kfold_assignment(labelled[:, cols[pos[0]]], k, self.random_state)[
                    :, None
                ]
            plan = _plan(
                Zv,
                Yv[:, cols],
                fold,
                k,
                _model_keys(seed, 0xFFFF, cols, k),
                int(_fmix(_U32(seed) ^ _U32(0x5EED5EED))),
                float(self.validation_fraction),
            )
            pred = np.empty((n_settings, n, q * k), dtype=np.float32)
            fitted, epochs = [], []
            for c, cfg in enumerate(configs):
                trained = _train(
                    Zv,
                    plan.target,
                    plan.train,
                    plan.val,
                    plan.mu,
                    plan.sd,
                    _model_keys(seed, c, cols, k),
                    np.tile(np.arange(k), q),
                    int(_fmix((seed + 0x51ED270 + c) & 0xFFFFFFFF)),
                    int(_fmix((seed + 0xD80F0 + c) & 0xFFFFFFFF)),
                    cfg,
                )
                layers = _fold_scaling(trained.weights, plan.mu, plan.sd, plan.y_mean, plan.y_sd)
                pred[c] = _forward_numpy(layers, Zv, np.float32)
                fitted.append(layers)
                epochs.append(trained.best_epoch.reshape(q, k))
                n_epochs[c] = trained.history.shape[0]
                report_progress("PS-MLP", (c + 1) * q // n_settings, q)  # settings done
            mean = np.zeros((n_settings, q))
            for pos in groups:
                f_of = fold[:, pos[0]]
                for f in range(k):
                    va = np.flatnonzero(f_of == f)
                    part = pred[:, va][:, :, pos * k + f]  # (settings, rows, columns)
                    truth = np.broadcast_to(Yv[va][:, cols[pos]], part.shape)
                    mean[:, pos] += spearman_columns(part, truth) / k
            best = choose_alpha(mean, np.arange(n_settings, dtype=np.float64), self.setting_tie)
            scores[:, cols] = mean
            setting[cols] = best
            chosen = pred.reshape(n_settings, n, q, k)[
                best[None, :], np.arange(n)[:, None], np.arange(q)[None, :]
            ]  # (n, q, k): every fold model of the chosen setting
            # out of fold: the model that left the row out, its training mean replaced by the
            # mean of all labelled rows (see BaseHead.out_of_fold_predictions)
            at = np.maximum(fold, 0)[:, :, None]
            own = np.take_along_axis(chosen, at, axis=2)[:, :, 0]
            fold_mean = plan.y_mean.reshape(q, k)[np.arange(q)[None, :], at[:, :, 0]]
            own = own - fold_mean + y_mean[cols]
            oof[:, cols] = np.where(fold >= 0, own, chosen.mean(axis=2))
            for c in range(n_settings):
                idx = np.flatnonzero(best == c)
                if idx.size:
                    ids = (idx[:, None] * k + np.arange(k)).ravel()
                    models[c] = (cols[idx], _take_models(fitted[c], ids))
                    best_epoch[:, cols[idx]] = epochs[c][idx].T

        self.settings_ = [(cfg.hidden, cfg.lr) for cfg in configs]
        self.cv_scores_ = scores
        self.setting_ = setting
        self.learning_rate_ = np.array(
            [configs[s].lr if s >= 0 else np.nan for s in setting], dtype=np.float64
        )
        self.best_epoch_ = best_epoch
        self.n_epochs_ = n_epochs
        self.y_mean_ = y_mean
        self.n_folds_ = k
        self.n_train_ = n_lab.astype(np.int64)
        self.fallback_ = fallback
        self._models = models
        self._oof = oof
        return self

    # -- predict ---------------------------------------------------------------------------------
    def predict(self, Z: Any) -> np.ndarray:
        """Mean prediction of the kept fold networks of every perturbation.

        Parameters
        ----------
        Z : array of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_perturbations), or (n_samples,) after a 1-D fit
        """
        Zv = self._validate_predict(Z)
        n = Zv.shape[0]
        out = np.tile(np.asarray(self.y_mean_, dtype=np.float64), (n, 1))
        k = int(self.n_folds_)
        for entry in self._models:
            if entry is not None:
                cols, layers = entry
                out[:, cols] = _forward_numpy(layers, Zv).reshape(n, cols.size, k).mean(axis=2)
        return self._shape_output(out)

    # -- persistence hooks -----------------------------------------------------------------------
    def _extra_state(self) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        """The kept networks as arrays: ``s{setting}.columns`` and ``s{setting}.{layer}``."""
        arrays: dict[str, np.ndarray] = {}
        for c, entry in enumerate(getattr(self, "_models", [])):  # none before fit
            if entry is not None:
                cols, layers = entry
                arrays[f"s{c}.columns"] = np.asarray(cols, dtype=np.int64)
                for i, a in enumerate(layers):
                    arrays[f"s{c}.{i}"] = a
        return arrays, {}

    def _load_extra_state(self, arrays: dict[str, np.ndarray], texts: dict[str, str]) -> None:
        """Rebuild the kept networks from their arrays (checked against the architectures)."""
        if not hasattr(self, "settings_"):  # an unfitted head (e.g. LEAP's template)
            return
        settings = list(self.settings_)
        models: list[tuple[np.ndarray, list[np.ndarray]] | None] = [None] * len(settings)
        k = int(self.n_folds_)
        d = int(self.n_features_in_)
        for c, (hidden, _) in enumerate(settings):
            if f"s{c}.columns" not in arrays:
                continue
            cols = np.asarray(arrays[f"s{c}.columns"], dtype=np.int64)
            shapes = _shapes(d, cols.size * k, tuple(int(h) for h in hidden))
            layers = []
            for i, (shape, _fan) in enumerate(shapes):
                a = arrays.get(f"s{c}.{i}")
                if a is None or tuple(np.shape(a)) != shape:
                    raise ValueError(
                        f"PSMLPHead weights s{c}.{i} have shape "
                        f"{None if a is None else tuple(np.shape(a))}, expected {shape}"
                    )
                layers.append(np.asarray(a))
            models[c] = (cols, layers)
        self._models = models


def _check_device(device: Any) -> str:
    """The device as a string torch accepts and can use here; InputError otherwise."""
    import torch

    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError, ValueError):
        kind = None
    usable = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": kind == "mps" and torch.backends.mps.is_available(),
    }
    if kind not in usable:
        raise InputError(
            f"PSMLPHead: device must be a torch device name, got {device!r}",
            fix='use "cpu", "cuda", "cuda:0" or "mps"',
        )
    if not usable[kind]:
        raise InputError(
            f"PSMLPHead: device {device!r} asked for {kind.upper()}, which is not available here",
            fix='use device="cpu"',
        )
    return str(torch.device(device))
