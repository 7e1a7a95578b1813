"""PS-LightGBM: one cross-validated LightGBM regressor per perturbation, the fold boosters kept.

For every perturbation (a column of ``Y``), over that perturbation's labelled rows only:

* the rows are split into ``cv`` folds (:func:`~leapscreen.heads._cv.kfold_assignment`: the same
  folds as every other head for the same missingness pattern);
* for every fold and every candidate setting of the grid, a booster is trained on the training
  fold less an *inner* early-stopping split (``validation_fraction`` of the training fold, drawn
  with the seed); boosting stops when the L2 loss on that inner split has not improved for
  ``early_stopping_rounds`` rounds and the booster keeps its best number of trees. The validation
  fold is never seen by training or stopping;
* the candidate with the highest mean validation Spearman over the folds is chosen (ties: the
  candidate listed first), and its ``cv`` fold boosters are kept and their predictions averaged,
  the reference LEAP procedure.

Grids (``grid``):

* ``"reference"`` - LEAP's: learning rate {0.005, 0.01} x ``colsample_bytree`` {0.05, 0.1, 0.15,
  0.2, 0.25}, 31 leaves, ``max_depth`` 10, up to 400 trees, ``min_child_samples`` 5, L1 = L2 = 1
  (10 candidates);
* ``"fast"`` (default) - one candidate of our own that scores as well at a fraction of the cost
  (see :data:`FAST_GRID`);
* or a list of dicts of LightGBM parameters (each merged over the reference base settings; the key
  ``n_estimators`` is the maximum number of trees).

Columns are fitted in parallel threads (:mod:`leapscreen.heads._parallel`), each booster with
``num_threads=1`` and ``deterministic=True``, so the fit is the same for any ``n_jobs``. Boosters
are saved in LightGBM's text format (``model_to_string``) through the generic saved state: no
pickle. lightgbm is an optional dependency (``pip install "leapscreen[lightgbm]"``), imported only
when the head fits or loads.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from leapscreen.base import BaseHead
from leapscreen.errors import InputError
from leapscreen.heads._cv import (
    Preference,
    choose_alpha,
    fallback_columns,
    kfold_assignment,
    spearman_columns,
)
from leapscreen.heads._parallel import map_tasks, resolve_jobs
from leapscreen.registry import register_head

logger = logging.getLogger(__name__)

__all__ = ["FAST_GRID", "REFERENCE_BASE", "REFERENCE_GRID", "PSLightGBMHead", "import_lightgbm"]

#: settings shared by every candidate of the reference grid (LEAP's)
REFERENCE_BASE: dict[str, Any] = {
    "num_leaves": 31,
    "max_depth": 10,
    "n_estimators": 400,
    "min_child_samples": 5,
    "reg_alpha": 1.0,
    "reg_lambda": 1.0,
}

#: LEAP's reference grid: learning rate x column subsampling (10 candidates)
REFERENCE_GRID: list[dict[str, Any]] = [
    {"learning_rate": lr, "colsample_bytree": cs}
    for lr in (0.005, 0.01)
    for cs in (0.05, 0.1, 0.15, 0.2, 0.25)
]

#: our default: one candidate, a larger learning rate and fewer, smaller trees
FAST_GRID: list[dict[str, Any]] = [
    {
        "learning_rate": 0.05,
        "colsample_bytree": 0.2,
        "n_estimators": 150,
        "num_leaves": 15,
        "max_depth": 6,
        "min_child_samples": 10,
    }
]

_INSTALL = 'pip install "leapscreen[lightgbm]"'
_FIXED = {
    "objective": "regression",
    "verbose": -1,
    "num_threads": 1,
    "deterministic": True,
    "force_col_wise": True,
    "feature_pre_filter": False,
}


def import_lightgbm() -> Any:
    """The ``lightgbm`` module, or an :class:`InputError` saying how to install it."""
    try:
        import lightgbm
    except ImportError as exc:
        raise InputError(
            f"PS-LightGBM needs the optional package lightgbm, which is not installed ({exc})",
            fix=f"install it with: {_INSTALL}",
        ) from None
    return lightgbm


def _sub_seed(base: int, *keys: int) -> int:
    """A seed for one (column, fold) that does not depend on the order tasks run in."""
    return int(np.random.SeedSequence([base, *keys]).generate_state(1)[0] & 0x7FFFFFFF)


@register_head("ps-lightgbm", leap_params={"n_folds": "cv"})
class PSLightGBMHead(BaseHead):
    """Per-perturbation LightGBM, the setting chosen by CV on Spearman, fold boosters averaged.

    See the module docstring for the procedure and the grids.

    Parameters
    ----------
    grid : {"fast", "reference"} or list of dict, default "fast"
        Candidate settings.
    cv : int, default 5
        Number of folds (LEAP's ``n_folds``).
    random_state : int or None, default 0
        Seed of the folds, the inner splits and LightGBM's subsampling.
    early_stopping_rounds : int, default 20
        Rounds without improvement on the inner split before boosting stops.
    validation_fraction : float, default 0.2
        Share of each training fold held out for early stopping (at least one row).
    max_bin : int, default 255
        LightGBM's histogram bins per feature.
    n_jobs : int or None, default None
        Threads over perturbations (None or -1: one per core); each booster uses one thread.

    Attributes
    ----------
    candidates_ : list of dict
        The candidate settings (the base settings merged in), in the order of ``cv_scores_``.
    candidate_ : ndarray (p,) of int
        Chosen candidate of every perturbation (-1 for fallbacks).
    learning_rate_, colsample_bytree_ : ndarray (p,)
        The chosen learning rate and column subsampling (NaN for fallbacks).
    n_estimators_ : ndarray (cv, p) of int
        Trees kept in every fold booster (the best iteration on the inner split; 0 for fallbacks).
    cv_scores_ : ndarray (n_candidates, p)
        Mean validation Spearman (NaN for fallbacks).
    y_mean_ : ndarray (p,)
        Training mean (the fallback prediction).
    n_folds_ : int
    n_train_ : ndarray (p,); fallback_ : ndarray (p,) of bool
    """

    #: ties of mean CV scores go to the candidate listed first
    setting_tie: ClassVar[Preference] = "smaller"

    def __init__(
        self,
        grid: str | Sequence[Mapping[str, Any]] = "fast",
        cv: int = 5,
        random_state: int | None = 0,
        early_stopping_rounds: int = 20,
        validation_fraction: float = 0.2,
        max_bin: int = 255,
        n_jobs: int | None = None,
    ) -> None:
        self.grid = grid
        self.cv = cv
        self.random_state = random_state
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.max_bin = max_bin
        self.n_jobs = n_jobs

    # -- parameters ------------------------------------------------------------------------------
    def _candidates(self) -> list[dict[str, Any]]:
        name = type(self).__name__
        if isinstance(self.grid, str):
            if self.grid not in ("fast", "reference"):
                raise InputError(
                    f"{name}: grid must be 'fast', 'reference' or a list of dicts of LightGBM "
                    f"parameters, got {self.grid!r}",
                    fix="use grid='fast'",
                )
            grid = FAST_GRID if self.grid == "fast" else REFERENCE_GRID
        else:
            grid = self.grid
            ok = isinstance(grid, (list, tuple)) and len(grid) > 0
            ok = ok and all(
                isinstance(c, Mapping) and all(isinstance(k, str) for k in c) for c in grid
            )
            if not ok:
                raise InputError(
                    f"{name}: grid must be 'fast', 'reference' or a non-empty list of dicts of "
                    f"LightGBM parameters, got {self.grid!r}",
                    fix="use grid='fast' or e.g. grid=[{'learning_rate': 0.05}]",
                )
        out = []
        for cand in grid:
            merged = {**REFERENCE_BASE, **dict(cand)}
            n_est = merged["n_estimators"]
            if not (isinstance(n_est, (int, np.integer)) and n_est >= 1):
                raise InputError(
                    f"{name}: n_estimators in grid must be a positive integer, got {n_est!r}",
                    fix="use e.g. 'n_estimators': 150",
                )
            out.append(merged)
        return out

    def _check_params(self) -> tuple[list[dict[str, Any]], int]:
        name = type(self).__name__
        candidates = self._candidates()

        def integer(value: Any) -> bool:
            return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

        if not integer(self.cv) or self.cv < 2:
            raise InputError(f"{name}: cv must be an integer >= 2, got {self.cv!r}", fix="use 5")
        if not integer(self.early_stopping_rounds) or self.early_stopping_rounds < 1:
            raise InputError(
                f"{name}: early_stopping_rounds must be a positive integer, "
                f"got {self.early_stopping_rounds!r}",
                fix="use 20",
            )
        frac = self.validation_fraction
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac < 1:
            raise InputError(
                f"{name}: validation_fraction must be in (0, 1), got {frac!r}", fix="use 0.2"
            )
        if not integer(self.max_bin) or self.max_bin < 2:
            raise InputError(
                f"{name}: max_bin must be an integer >= 2, got {self.max_bin!r}", fix="use 255"
            )
        if self.random_state is not None and not integer(self.random_state):
            raise InputError(
                f"{name}: random_state must be an integer or None, got {self.random_state!r}",
                fix="use e.g. random_state=0",
            )
        return candidates, resolve_jobs(self.n_jobs, name)

    # -- fit -------------------------------------------------------------------------------------
    def fit(self, Z: Any, Y: Any) -> PSLightGBMHead:
        """Fit the cross-validated boosters of every column of ``Y`` (NaN = missing; 1-D allowed).

        Returns
        -------
        self
        """
        candidates, n_jobs = self._check_params()
        lgb = import_lightgbm()
        Zv, Yv = self._validate_fit(Z, Y)
        n, p = Yv.shape
        k_folds = int(self.cv)
        labelled = ~np.isnan(Yv)
        fallback, y_mean, n_lab = fallback_columns(Yv, labelled, 2 * k_folds, logger)
        base_seed = (
            int(np.random.default_rng().integers(2**31))
            if self.random_state is None
            else int(self.random_state)
        )
        positions = np.arange(len(candidates), dtype=np.float64)
        dataset_params = {"max_bin": int(self.max_bin), "verbose": -1, "feature_pre_filter": False}
        stopping = int(self.early_stopping_rounds)
        frac = float(self.validation_fraction)

        def run(j: int) -> tuple[np.ndarray, int, list[Any], np.ndarray, np.ndarray]:
            mask = labelled[:, j]
            fold = kfold_assignment(mask, k_folds, self.random_state)
            y = Yv[:, j]
            total = np.zeros(len(candidates))
            val = np.zeros((len(candidates), n))
            boosters: list[list[Any]] = [[] for _ in candidates]
            iters = np.zeros((len(candidates), k_folds), dtype=np.int64)
            for fo in range(k_folds):
                tr = np.flatnonzero(mask & (fold != fo))
                va = np.flatnonzero(fold == fo)
                seed = _sub_seed(base_seed, j, fo)
                n_stop = min(max(1, int(round(frac * tr.size))), tr.size - 1)
                perm = np.random.default_rng(seed).permutation(tr.size)
                stop_rows, fit_rows = np.sort(tr[perm[:n_stop]]), np.sort(tr[perm[n_stop:]])
                train_set = lgb.Dataset(
                    Zv[fit_rows], label=y[fit_rows], params=dataset_params, free_raw_data=False
                )
                stop_set = lgb.Dataset(
                    Zv[stop_rows], label=y[stop_rows], reference=train_set, free_raw_data=False
                )
                for c, cand in enumerate(candidates):
                    params = {k: v for k, v in cand.items() if k != "n_estimators"}
                    params.update(_FIXED, **dataset_params, seed=seed)
                    booster = lgb.train(
                        params,
                        train_set,
                        num_boost_round=int(cand["n_estimators"]),
                        valid_sets=[stop_set],
                        callbacks=[lgb.early_stopping(stopping, verbose=False)],
                    )
                    best = int(booster.best_iteration) or booster.current_iteration()
                    iters[c, fo] = best
                    val[c, va] = booster.predict(Zv[va], num_iteration=best, num_threads=1)
                    total[c] += spearman_columns(val[c, va][:, None], y[va][:, None])[0]
                    boosters[c].append(booster)
            mean = total / k_folds
            chosen = int(choose_alpha(mean[:, None], positions, prefer=self.setting_tie)[0])
            return mean, chosen, boosters[chosen], iters[chosen], val[chosen]

        columns = [int(j) for j in np.flatnonzero(~fallback)]
        results = map_tasks(run, columns, n_jobs=n_jobs, message="PS-LightGBM")

        scores = np.full((len(candidates), p), np.nan)
        chosen = np.full(p, -1, dtype=np.int64)
        n_estimators = np.zeros((k_folds, p), dtype=np.int64)
        oof = np.tile(y_mean, (n, 1))
        self._boosters: dict[int, list[Any]] = {}
        for j, (mean, best, boosters, iters, val) in zip(columns, results, strict=True):
            scores[:, j] = mean
            chosen[j] = best
            n_estimators[:, j] = iters
            rows = labelled[:, j]
            oof[rows, j] = val[rows]
            self._boosters[j] = boosters

        self.candidates_ = [dict(c) for c in candidates]
        self.candidate_ = chosen

        def chosen_value(key: str, default: float) -> np.ndarray:
            return np.array(
                [float(candidates[c].get(key, default)) if c >= 0 else np.nan for c in chosen]
            )

        self.learning_rate_ = chosen_value("learning_rate", 0.1)  # LightGBM's default
        self.colsample_bytree_ = chosen_value("colsample_bytree", 1.0)
        self.n_estimators_ = n_estimators
        self.cv_scores_ = scores
        self.y_mean_ = y_mean
        self.n_folds_ = k_folds
        self.n_train_ = n_lab.astype(np.int64)
        self.fallback_ = fallback

        # unlabelled rows of modelled columns: the full head (mean of the fold boosters)
        unlab = np.flatnonzero((~labelled[:, columns]).any(axis=1)) if columns else []
        if len(unlab):
            full = self._predict_rows(Zv[unlab], n_jobs)
            fill = ~labelled[unlab] & ~fallback[None, :]
            oof[unlab] = np.where(fill, full, oof[unlab])
        self._oof = oof
        return self

    # -- predict ---------------------------------------------------------------------------------
    def _predict_rows(self, Zv: np.ndarray, n_jobs: int) -> np.ndarray:
        out = np.tile(np.asarray(self.y_mean_, dtype=np.float64), (Zv.shape[0], 1))
        columns = sorted(self._boosters)

        def run(j: int) -> np.ndarray:
            iters = self.n_estimators_[:, j]
            preds = [
                b.predict(Zv, num_iteration=int(it), num_threads=1)
                for b, it in zip(self._boosters[j], iters, strict=True)
            ]
            return np.mean(preds, axis=0)

        results = map_tasks(run, columns, n_jobs=n_jobs, message="PS-LightGBM predict")
        for j, pred in zip(columns, results, strict=True):
            out[:, j] = pred
        return out

    def predict(self, Z: Any) -> np.ndarray:
        """Predict every perturbation: the mean of its fold boosters (fallbacks: training mean).

        Parameters
        ----------
        Z : array of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_perturbations), or (n_samples,) after a 1-D fit
        """
        Zv = self._validate_predict(Z)
        out = self._predict_rows(Zv, resolve_jobs(self.n_jobs, type(self).__name__))
        return self._shape_output(out)

    # -- saved state -----------------------------------------------------------------------------
    def _extra_state(self) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        """The fold boosters in LightGBM's text format, one text per (column, fold)."""
        texts = {}
        for j, boosters in sorted(getattr(self, "_boosters", {}).items()):
            for f, booster in enumerate(boosters):
                it = int(self.n_estimators_[f, j])
                texts[f"booster_{j}_{f}"] = booster.model_to_string(num_iteration=it)
        return {}, texts

    def _load_extra_state(self, arrays: dict[str, np.ndarray], texts: dict[str, str]) -> None:
        """Rebuild the boosters from their texts (needs lightgbm)."""
        if not texts:
            self._boosters = {}
            return
        lgb = import_lightgbm()
        boosters: dict[int, list[Any]] = {}
        keys = sorted(
            tuple(int(x) for x in key.split("_")[1:]) for key in texts if key.startswith("booster_")
        )
        for j, f in keys:
            boosters.setdefault(j, []).append(lgb.Booster(model_str=texts[f"booster_{j}_{f}"]))
        self._boosters = boosters
