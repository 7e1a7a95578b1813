from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from leapscreen import persist, registry
from leapscreen.base import has_parameter, nan_r2
from leapscreen.combine import COMBINE_RULES, greedy_weights
from leapscreen.errors import InputError
from leapscreen.explain import intervals as _intervals
from leapscreen.explain.domain import (
    ApplicabilityDomain,
    normalise_lineages,
    reconstruction_error,
)
from leapscreen.heads._cv import FALLBACK_RECORD
from leapscreen.preprocess import Preprocessor

logger = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]

registry.register_component(Preprocessor)
registry.register_component(_intervals.ConformalCalibration)


@registry.register_component
@dataclass
class Member:
    """One layer-1 member of the ensemble: a fitted representation and the head fitted on it.

    ``kind`` and ``head_kind`` are the registered names of the two (the class name for
    unregistered estimators).
    """

    kind: str
    seed: int
    representation: Any
    head: Any
    fit_seconds: float = 0.0
    head_kind: str = ""
    #: the member's strategy (index into ``LEAP.groups_``): same representation and head spec
    group: int = 0

    @property
    def is_linear(self) -> bool:
        """Both parts linear: the member is one affine map of the preprocessed genes."""
        return bool(getattr(self.representation, "is_linear", False)) and bool(
            getattr(self.head, "is_linear", False)
        )

    def predict(self, Xz: np.ndarray) -> np.ndarray:
        return np.asarray(self.head.predict(self.representation.transform(Xz)))

    def fallback_mask(self, n_perturbations: int) -> np.ndarray:
        """Perturbations this member's head predicts by their training mean."""
        fb = getattr(self.head, "fallback_", None)
        if fb is None:
            return np.zeros(n_perturbations, dtype=bool)
        return np.asarray(fb, dtype=bool).reshape(-1)


def fingerprint(expression: pd.DataFrame, responses: pd.DataFrame) -> str:
    """sha256 of the training data (IDs, genes, values), to tell which data a model saw."""
    h = hashlib.sha256()
    for index in (expression.index, expression.columns, responses.columns):
        h.update("\x1f".join(map(str, index)).encode())
    h.update(np.ascontiguousarray(expression.to_numpy(np.float32)).tobytes())
    h.update(np.ascontiguousarray(responses.to_numpy(np.float32)).tobytes())
    return h.hexdigest()


class _DropUnnamedFallback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, FALLBACK_RECORD, False)


@contextlib.contextmanager
def _named_fallback_only():  # noqa: ANN202 - a context manager
    """Inside LEAP.fit the heads' fallback warnings (which name columns) are dropped: LEAP names
    the perturbations itself, once."""
    names = [n for n in logging.root.manager.loggerDict if n.startswith("leapscreen.heads")]
    targets = [logging.getLogger(n) for n in names]
    flt = _DropUnnamedFallback()
    for target in targets:
        target.addFilter(flt)
    try:
        yield
    finally:
        for target in targets:
            target.removeFilter(flt)


def _as_list(spec: Any) -> list[Any]:
    if isinstance(spec, (str, BaseEstimator)):
        return [spec]
    return list(spec)


def _strategies(representation: Any, head: Any) -> list[tuple[Any, list[Any]]]:
    """(representation spec, its head specs) for every representation type.

    An element of ``representation`` may be a pair ``(representation, head or heads)`` that binds
    its own heads; a plain element gets LEAP's ``head``.
    """
    out = []
    for spec in _as_list(representation):
        if isinstance(spec, tuple):
            if len(spec) != 2:
                raise InputError(
                    f"LEAP: a (representation, heads) pair must have two parts, got {spec!r}",
                    fix="write e.g. representation=[('genes', 'ridge'), ('damae', ['ps-lasso'])]",
                )
            out.append((spec[0], _as_list(spec[1])))
        else:
            out.append((spec, _as_list(head)))
    return out


def _accepted_somewhere(kind: registry.Kind, keys: set[str]) -> set[str]:
    """Of ``keys``, those that no registered estimator of ``kind`` accepts (typos)."""
    names = registry.head_names() if kind == "head" else registry.representation_names()
    accepted: set[str] = set()
    for name in names:
        accepted |= registry.get_entry(kind, name).constructor_params()
    return keys - accepted


@registry.register_component
class LEAP(RegressorMixin, BaseEstimator):
    """Layered Ensemble of Autoencoders and Predictors.

    Every member is a representation fitted with its own seed and a head fitted on that
    representation; the prediction is the plain mean over members (= over seeds x CV folds, since a
    head's prediction is already the mean of its fold models).

    Parameters
    ----------
    representation : str, estimator, or a sequence of them
        A registered name ("damae" (default), "mae", "ae", "pca", "genes": no representation, the
        heads on the preprocessed genes) or a representation object (e.g.
        ``DAMAE(latent_dim=128)``). A sequence ensembles across representation types too. An
        element of the sequence may be a pair ``(representation, head or heads)`` whose heads
        replace ``head`` for that representation, e.g.
        ``[("genes", "ridge"), ("damae", ["ps-lasso", "rr-ridge"])]``.
    n_seeds : int
        Representation seeds per type (the paper: 5). 1 gives the single-representation model.
    head : str, estimator, or a sequence of them
        A registered name ("ps-lasso" (default), "ps-enet", "ridge", "mean", ...) or a head object
        (e.g. ``PSLassoHead(n_alphas=20)``). With several, every representation seed gets each head:
        members mix strategies, and an ensemble that is not entirely linear predicts through its
        members.
    latent_dim : int
        Size of the latent representation (256 in the reference); used for representations given
        by name (an object keeps its own).
    n_genes : int
        Most-variant genes kept (fitted on the training expression only). Ignored if ``genes`` is given.
    genes : sequence of str, optional
        Use these genes instead of the most-variant ones.
    log_transform : bool or "auto"
        Apply ln(1 + x) first (for TPM input).
    n_folds : int
        CV folds of the heads given by name (their fold models are kept and averaged).
    combine : {"mean", "cv", "cv-global"}
        How members are combined (see :mod:`leapscreen.combine`): the plain mean (the paper), or
        weights over the strategies (representation type x head) chosen per perturbation ("cv") or
        for all perturbations ("cv-global") on the heads' out-of-fold predictions of the training
        rows, never on test samples. The seeds of a strategy are always averaged.
    representation_params, head_params : dict, optional
        Extra constructor arguments of the representations / heads given by name (with several
        types, each gets those it accepts; a key no registered estimator accepts is an error).
    random_state : int
        Base seed: representation seed k is ``random_state + k``; heads use ``random_state``. This
        applies to objects too: each member is ``clone(obj)`` with its seed set.
    device : str
        Torch device ("cpu", "cuda"), set on every member that has a ``device`` parameter.
    """

    def __init__(
        self,
        representation: Any = "damae",
        n_seeds: int = 5,
        head: Any = "ps-lasso",
        latent_dim: int = 256,
        n_genes: int = 5000,
        genes: Sequence[str] | None = None,
        log_transform: bool | str = False,
        n_folds: int = 5,
        representation_params: dict[str, Any] | None = None,
        head_params: dict[str, Any] | None = None,
        combine: str = "mean",
        random_state: int = 0,
        device: str = "cpu",
    ) -> None:
        self.representation = representation
        self.n_seeds = n_seeds
        self.head = head
        self.latent_dim = latent_dim
        self.n_genes = n_genes
        self.genes = genes
        self.log_transform = log_transform
        self.n_folds = n_folds
        self.representation_params = representation_params
        self.head_params = head_params
        self.combine = combine
        self.random_state = random_state
        self.device = device

    # ------------------------------------------------------------------ building members
    def _check_params(self) -> None:
        def positive_int(name: str, value: Any, minimum: int = 1) -> None:
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, np.integer))
                or value < minimum
            ):
                raise InputError(
                    f"LEAP: {name} must be an integer >= {minimum}, got {value!r}",
                    fix=f"use e.g. {name}={max(minimum, 5)}",
                )

        positive_int("n_seeds", self.n_seeds)
        positive_int("n_folds", self.n_folds, 2)
        positive_int("latent_dim", self.latent_dim)
        if not _as_list(self.representation):
            raise InputError("LEAP: no representation given", fix="use representation='damae'")
        strategies = _strategies(self.representation, self.head)
        if any(not heads for _, heads in strategies):
            raise InputError("LEAP: no head given", fix="use head='ps-lasso'")
        if self.combine not in COMBINE_RULES:
            raise InputError(
                f"LEAP: combine must be one of {', '.join(COMBINE_RULES)}, got {self.combine!r}",
                fix="use combine='mean' (the plain mean) or 'cv' (weights from out-of-fold CV)",
            )
        for kind, specs, extra in (
            ("representation", [r for r, _ in strategies], self.representation_params),
            ("head", [h for _, heads in strategies for h in heads], self.head_params),
        ):
            for spec in specs:
                if isinstance(spec, str):
                    registry.get_entry(kind, spec)  # ValueError naming the choices
                elif not isinstance(spec, BaseEstimator):
                    raise InputError(
                        f"LEAP: {kind} must be a registered name or an estimator, got {spec!r}",
                        fix="pass e.g. 'damae' / 'ps-lasso' or an estimator object",
                    )
            unknown = _accepted_somewhere(kind, set(extra or {}))
            if unknown:
                raise InputError(
                    f"LEAP: {kind}_params {sorted(unknown)} are accepted by no {kind}",
                    fix=f"check the spelling of the {kind} parameters",
                )

    @staticmethod
    def _member_part(
        kind: registry.Kind, spec: Any, params: dict[str, Any] | None, **settings: Any
    ) -> tuple[str, Any]:
        """A fresh part from a name (LEAP's settings + the params it accepts) or a clone of an
        object (only the seed and the device are set: an object keeps its other settings)."""
        if isinstance(spec, str):
            accepted = registry.get_entry(kind, spec).constructor_params()
            own = {k: v for k, v in (params or {}).items() if k in accepted}
            return spec, registry.build(kind, spec, own, **settings)
        part = clone(spec)
        keep = set(part.get_params(deep=False)) & {"random_state", "device"}
        part.set_params(**{k: v for k, v in settings.items() if k in keep})
        return registry.name_of(part), part

    def _representation(self, spec: Any, seed: int) -> tuple[str, Any]:
        return self._member_part(
            "representation",
            spec,
            self.representation_params,
            latent_dim=self.latent_dim,
            random_state=seed,
            device=self.device,
        )

    def _head(self, spec: Any) -> tuple[str, Any]:
        return self._member_part(
            "head",
            spec,
            self.head_params,
            n_folds=self.n_folds,
            random_state=self.random_state,
            device=self.device,
        )

    @property
    def representation_kinds(self) -> list[str]:
        """Registered names (or class names) of the representation types."""
        return [
            s if isinstance(s, str) else registry.name_of(s)
            for s, _ in _strategies(self.representation, self.head)
        ]

    # ------------------------------------------------------------------ fit
    @staticmethod
    def _frames(expression: Any, responses: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        """DataFrames of the inputs (arrays get generic row / column names), rows aligned."""
        if not isinstance(expression, pd.DataFrame):
            X = np.asarray(expression)
            expression = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
        if not isinstance(responses, pd.DataFrame):
            Y = np.asarray(responses, dtype=np.float64)
            if Y.ndim == 1:
                Y = Y[:, None]
            responses = pd.DataFrame(
                Y, index=expression.index, columns=[f"y{j}" for j in range(Y.shape[1])]
            )
        if not expression.index.equals(responses.index):
            if set(expression.index) != set(responses.index):
                raise InputError(
                    "expression and responses must hold the same samples "
                    f"({len(expression)} vs {len(responses)} rows)",
                    fix="align them first, e.g. with ScreenData",
                )
            responses = responses.loc[expression.index]
        return expression, responses

    def fit(
        self,
        expression: pd.DataFrame,
        responses: pd.DataFrame,
        unlabelled_expression: pd.DataFrame | None = None,
        sources: Sequence[str] | None = None,
        unlabelled_sources: Sequence[str] | None = None,
        progress: ProgressFn | None = None,
        lineages: Sequence[str] | None = None,
    ) -> LEAP:
        """Fit preprocessing, the representations (one per seed and type) and their heads.

        Parameters
        ----------
        expression : pandas.DataFrame
            Training samples x genes (an array is accepted too: genes get generic names).
        responses : pandas.DataFrame
            Training samples x perturbations (same rows as ``expression``), NaN = not measured.
        unlabelled_expression : pandas.DataFrame, optional
            Extra samples (no labels) pooled into the representation pretraining. Only their
            expression is used, never to fit the preprocessing statistics.
        sources, unlabelled_sources : sequence of str, optional
            Source (dataset / domain) of each row, for per-source alignment in DAMAE.
        progress : callable, optional
            Called as ``progress(message, done, total)`` after each member.
        lineages : sequence of str, optional
            Lineage (tissue) of each training row, kept so that :meth:`applicability` can flag new
            samples of a lineage absent from training.

        Returns
        -------
        LEAP

        Notes
        -----
        Besides the members, the fit keeps the z-scored training matrix
        (:meth:`training_expression`, float32) and the conformal calibration of the heads'
        out-of-fold residuals (``calibration_``, see :mod:`leapscreen.explain.intervals`); both are
        saved with the model.
        """
        self._check_params()
        self._y_1d_ = np.ndim(responses) == 1
        expression, responses = self._frames(expression, responses)
        self.fingerprint_ = fingerprint(expression, responses)
        self.perturbations_ = [str(c) for c in responses.columns]
        self.feature_names_in_ = np.asarray([str(c) for c in expression.columns], dtype=object)
        self.n_features_in_ = expression.shape[1]
        Y = responses.to_numpy(dtype=np.float64)

        self.preprocessor_ = Preprocessor(
            n_genes=self.n_genes,
            genes=None if self.genes is None else list(self.genes),
            log_transform=self.log_transform,
        ).fit(expression)
        Xz = self.preprocessor_.transform(expression)
        self.training_expression_ = pd.DataFrame(
            np.asarray(Xz, dtype=np.float32),
            index=pd.Index([str(i) for i in expression.index], name="sample"),
            columns=[str(g) for g in self.preprocessor_.genes_],
        )
        known = None if lineages is None else normalise_lineages(lineages, len(expression))
        self.training_lineages_ = (
            None
            if known is None or all(v is None for v in known)
            else np.asarray(["" if v is None else v for v in known], dtype=object)
        )
        extra = None
        if unlabelled_expression is not None and len(unlabelled_expression):
            extra = self.preprocessor_.transform(unlabelled_expression)

        plan = []  # (representation spec, seed, its heads, group of its first head)
        group = 0
        for spec, heads in _strategies(self.representation, self.head):
            cls = (
                registry.get_entry("representation", spec).cls
                if isinstance(spec, str)
                else type(spec)
            )
            head_classes = [
                registry.get_entry("head", h).cls if isinstance(h, str) else type(h) for h in heads
            ]
            n = self.n_seeds if getattr(cls, "seeded", True) else 1
            if not any(getattr(c, "uses_features", True) for c in head_classes):
                n, heads = 1, heads[:1]  # the mean predictor: one member, whatever the seeds
            plan += [(spec, self.random_state + k, heads, group) for k in range(n)]
            group += len(heads)
        self.members_: list[Member] = []
        oof: list[np.ndarray | None] = []
        with _named_fallback_only():
            self._fit_members(plan, Xz, Y, extra, sources, unlabelled_sources, progress, oof)
        self._combine_weights(oof, Y)
        self.calibration_ = self._calibrate(oof, Y, Xz)
        self._collapse()
        fallback = self.fallback_perturbations()
        if fallback:
            shown = ", ".join(fallback[:10]) + (", ..." if len(fallback) > 10 else "")
            logger.warning(
                "%d perturbation(s) have too few labelled samples (or a constant response) and "
                "are predicted by their training mean: %s",
                len(fallback),
                shown,
            )
        return self

    def _fit_members(
        self,
        plan: list[tuple[Any, int, list[Any], int]],
        Xz: np.ndarray,
        Y: np.ndarray,
        extra: np.ndarray | None,
        sources: Sequence[str] | None,
        unlabelled_sources: Sequence[str] | None,
        progress: ProgressFn | None,
        oof: list[np.ndarray | None],
    ) -> None:
        """Fit every (representation seed, head) member, appending to ``members_``.

        Each member's out-of-fold predictions of the training rows (None where its head gives
        none) are appended to ``oof``: they choose the weights (``combine != "mean"``) and
        calibrate the prediction intervals.
        """
        total = sum(len(heads) for _, _, heads, _ in plan)
        for spec, seed, heads, first_group in plan:
            t0 = time.perf_counter()
            kind, rep = self._representation(spec, seed)
            rep.fit(Xz, sources=sources, X_unlabelled=extra, sources_unlabelled=unlabelled_sources)
            Z = rep.transform(Xz)
            for h_index, hspec in enumerate(heads):
                head_kind, head = self._head(hspec)
                if has_parameter(
                    head.fit, "perturbations"
                ):  # heads that use perturbation descriptors
                    head.fit(Z, Y, perturbations=self.perturbations_)
                else:
                    head.fit(Z, Y)
                seconds = time.perf_counter() - t0
                t0 = time.perf_counter()
                group = first_group + h_index
                self.members_.append(Member(kind, seed, rep, head, seconds, head_kind, group))
                oof.append(self._out_of_fold(head))
                if progress is not None:
                    progress(f"{kind} seed {seed} + {head_kind}", len(self.members_), total)

    @staticmethod
    def _out_of_fold(head: Any) -> np.ndarray | None:
        get = getattr(head, "out_of_fold_predictions", None)
        oof = get() if callable(get) else None
        if oof is None:
            return None
        oof = np.asarray(oof, dtype=np.float64)
        return oof[:, None] if oof.ndim == 1 else oof

    def _combine_weights(self, oof: list[np.ndarray | None], Y: np.ndarray) -> None:
        """``weights_`` (groups x perturbations) from the groups' out-of-fold predictions."""
        used = sorted({m.group for m in self.members_})
        names: dict[int, str] = {}
        for m in self.members_:
            names.setdefault(m.group, f"{m.kind} + {m.head_kind}")
        # groups renumbered 0..G-1 in order of first use
        index = {g: i for i, g in enumerate(used)}
        for m in self.members_:
            m.group = index[m.group]
        self.groups_ = [names[g] for g in used]
        if self.combine == "mean":
            self.weights_ = None
            return
        for m, o in zip(self.members_, oof, strict=True):
            if o is None:
                raise InputError(
                    f"LEAP: the head {m.head_kind!r} gives no out-of-fold predictions, which "
                    f"combine={self.combine!r} needs to choose the weights",
                    fix="use combine='mean', or give the head out_of_fold_predictions()",
                )
        groups = np.array([m.group for m in self.members_])
        stacked = np.stack(
            [
                np.mean([oof[i] for i in np.flatnonzero(groups == g)], axis=0)
                for g in range(len(used))
            ]
        )
        self.weights_ = greedy_weights(stacked, Y, per_perturbation=self.combine == "cv")

    def _calibrate(
        self, oof: list[np.ndarray | None], Y: np.ndarray, Xz: np.ndarray
    ) -> _intervals.ConformalCalibration | None:
        """The conformal calibration from the members' out-of-fold predictions, combined with the
        members' weights as predictions are (None when a head gives no out-of-fold predictions).

        The spread that normalises the scores is that of the members' own predictions of the
        training rows: the quantity :meth:`predict_spread` gives for new samples. (The spread of
        the out-of-fold predictions is about twice as large, since fold models differ more than the
        full members: normalising by it undercovers by 5-10 points on simulated screens; on GDSC2
        the in-sample spread undercovers instead, hence absolute intervals by default.)"""
        if any(o is None or o.shape != Y.shape for o in oof):
            logger.info("a head gives no out-of-fold predictions: no prediction intervals")
            return None
        combined = np.einsum("mp,mnp->np", self._member_weights(), np.stack(oof))
        spread = self.predict_spread(Xz) if len(oof) >= 2 else None
        return _intervals.calibrate(Y, combined, spread)

    def _member_weights(self) -> np.ndarray:
        """Weight of each member for each perturbation (members x perturbations)."""
        p = len(self.perturbations_)
        n = len(self.members_)
        weights = getattr(self, "weights_", None)
        if weights is None:
            return np.full((n, p), 1.0 / n)
        groups = np.array([m.group for m in self.members_])
        size = np.bincount(groups, minlength=weights.shape[0]).astype(np.float64)
        return weights[groups] / size[groups][:, None]

    def fallback_perturbations(self) -> list[str]:
        """Perturbations that every member predicts by the training mean (too few labels)."""
        check_is_fitted(self, "members_")
        p = len(self.perturbations_)
        mask = np.ones(p, dtype=bool)
        for m in self.members_:
            mask &= m.fallback_mask(p)
        return [name for name, fb in zip(self.perturbations_, mask, strict=True) if fb]

    # ------------------------------------------------------------------ collapse
    @property
    def is_linear(self) -> bool:
        """True when every member is linear, so the ensemble is one affine map of the genes."""
        return all(m.is_linear for m in self.members_)

    def _collapse(self) -> None:
        """Fold preprocessing, representations, heads and the means into gene-level coefficients."""
        self.gene_coef_ = None
        self.gene_intercept_ = None
        if not self.is_linear:
            return
        n_genes = len(self.preprocessor_.genes_)
        A = np.zeros((n_genes, len(self.perturbations_)), dtype=np.float64)
        c = np.zeros(len(self.perturbations_), dtype=np.float64)
        weights = self._member_weights() if getattr(self, "weights_", None) is not None else None
        for i, m in enumerate(self.members_):
            w = 1.0 if weights is None else weights[i]
            W, b = m.representation.linear_map()
            B = np.asarray(m.head.coef_mean_, dtype=np.float64)
            A += (np.asarray(W, np.float64) @ B) * w
            c += (
                np.asarray(b, np.float64) @ B + np.asarray(m.head.intercept_mean_, np.float64)
            ) * w
        if weights is None:  # the plain mean
            A /= len(self.members_)
            c /= len(self.members_)

        # z = (x - mean) / scale  ->  pred = x @ (A / scale) + (c - (mean / scale) @ A)
        scale = np.asarray(self.preprocessor_.scale_, np.float64)
        mean = np.asarray(self.preprocessor_.mean_, np.float64)
        self.gene_coef_ = A / scale[:, None]
        self.gene_intercept_ = c - (mean / scale) @ A

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        check_is_fitted(self, "members_")

    def predict(self, expression: pd.DataFrame, layered: bool = False) -> pd.DataFrame:
        """Predicted responses of new samples (samples x perturbations).

        Each sample is processed on its own with the training statistics, so one sample alone gets
        the same prediction as within a cohort. Missing genes are imputed with the training mean
        (warning); too few genes raise :class:`InputError`.

        Parameters
        ----------
        expression : pandas.DataFrame
            Samples x genes, on the same scale as the training expression.
        layered : bool
            Run every member instead of the collapsed gene-level map (same result for linear models).
        """
        self._check_fitted()
        frame = self._frame(expression)
        pred = self.predict_preprocessed(self.preprocessor_.transform(frame), layered=layered)
        if not isinstance(expression, pd.DataFrame):  # arrays in, arrays out (scikit-learn style)
            out = pred.astype(np.float32)
            return out[:, 0] if getattr(self, "_y_1d_", False) else out
        return pd.DataFrame(pred.astype(np.float32), index=frame.index, columns=self.perturbations_)

    def _frame(self, expression: Any) -> pd.DataFrame:
        if isinstance(expression, pd.DataFrame):
            return expression
        return pd.DataFrame(np.asarray(expression), columns=list(self.feature_names_in_))

    def preprocess(self, expression: pd.DataFrame) -> np.ndarray:
        """The model's z-scored genes of new samples (float32, samples x ``preprocessor_.genes_``).

        Missing genes are imputed with the training mean (z = 0, warning), as in :meth:`predict`.
        """
        self._check_fitted()
        return self.preprocessor_.transform(self._frame(expression))

    def predict_preprocessed(self, Xz: np.ndarray, layered: bool = False) -> np.ndarray:
        """The ensemble's predictions (float64, samples x perturbations) from preprocessed genes.

        ``predict(expression)`` equals ``predict_preprocessed(preprocess(expression))`` (as float32).
        """
        self._check_fitted()
        Xz = np.asarray(Xz)
        if Xz.ndim != 2 or Xz.shape[1] != len(self.preprocessor_.genes_):
            raise InputError(
                f"preprocessed samples must be (n, {len(self.preprocessor_.genes_)}), got "
                f"{Xz.shape}",
                fix="pass the output of LEAP.preprocess",
            )
        if self.gene_coef_ is not None and not layered:
            return self._predict_collapsed(Xz)
        return np.asarray(self._combined(Xz), dtype=np.float64)

    def training_expression(self) -> pd.DataFrame:
        """The z-scored training matrix the model was fitted on (samples x model genes, float32)."""
        self._check_fitted()
        stored = getattr(self, "training_expression_", None)
        if stored is None:
            raise InputError(
                "this model was saved without its training expression (an older leapscreen)",
                fix="fit the model again with this version",
            )
        return stored.copy()

    def predict_spread(self, Xz: np.ndarray) -> np.ndarray:
        """The members' (weighted) standard deviation around the prediction, from preprocessed genes."""
        self._check_fitted()
        outputs = np.stack([self._member_output(m, np.asarray(Xz)) for m in self.members_])
        return _intervals.weighted_spread(outputs, self._member_weights())

    def predict_intervals(
        self, expression: pd.DataFrame, coverage: float = 0.9, normalize: bool | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """Predictions with conformal prediction intervals (see :mod:`leapscreen.explain.intervals`).

        Parameters
        ----------
        expression : pandas.DataFrame
            Samples x genes, as for :meth:`predict`.
        coverage : float
            Nominal coverage in (0, 1) of each (sample, perturbation) interval.
        normalize : bool, optional
            Scale each interval by the members' spread (>= 2 members; undercovers on GDSC2, see
            :mod:`leapscreen.explain.intervals`); default False (one width per perturbation).

        Returns
        -------
        prediction, lower, upper : pandas.DataFrame
            Samples x perturbations; +/- inf where a perturbation has too few labelled training
            rows for ``coverage``.
        """
        self._check_fitted()
        coverage = _intervals.check_coverage(coverage)
        calibration = getattr(self, "calibration_", None)
        if calibration is None:
            raise InputError(
                "this model has no interval calibration (a head without out-of-fold predictions, "
                "or a model saved by an older leapscreen)",
                fix="fit it again with heads that cross-validate (n_folds >= 2)",
            )
        if normalize is None:
            normalize = _intervals.DEFAULT_NORMALIZE and calibration.can_normalize
        frame = self._frame(expression)
        Xz = self.preprocessor_.transform(frame)
        pred = self.predict_preprocessed(Xz)
        spread = self.predict_spread(Xz) if normalize else None
        lower, upper = _intervals.intervals(calibration, pred, coverage, spread, normalize)
        return tuple(  # type: ignore[return-value]
            pd.DataFrame(v.astype(np.float32), index=frame.index, columns=self.perturbations_)
            for v in (pred, lower, upper)
        )

    def applicability(
        self,
        expression: pd.DataFrame,
        lineages: Sequence[str] | None = None,
        n_neighbors: int = 10,
        threshold: float = 0.99,
    ) -> pd.DataFrame:
        """How far each sample lies from the training samples (see :mod:`leapscreen.explain.domain`).

        Parameters
        ----------
        expression : pandas.DataFrame
            Samples x genes, as for :meth:`predict`.
        lineages : sequence of str, optional
            The samples' lineages, checked against the training lineages (when the fit got them).
        n_neighbors : int
            Training neighbours whose mean distance is the score.
        threshold : float
            Percentile of the training samples' own distances at or above which a sample is
            flagged as extrapolating.

        Returns
        -------
        pandas.DataFrame
            Per sample: ``domain_distance``, ``domain_percentile``, ``lineage_seen``,
            ``extrapolates``, ``domain_note``; with autoencoder representations also
            ``reconstruction_error`` and ``reconstruction_ratio`` (to the training median).
        """
        train = self.training_expression()
        key = (n_neighbors, threshold)
        reps = [m.representation for m in self.members_]
        cached = getattr(self, "_domain", None)
        if cached is None or cached[0] != key:
            domain = ApplicabilityDomain(n_neighbors, threshold)
            domain.fit(train.to_numpy(), getattr(self, "training_lineages_", None))
            err = reconstruction_error(reps, train.to_numpy())
            self._domain = cached = (key, domain, None if err is None else float(np.median(err)))
        frame = self._frame(expression)
        Xz = self.preprocessor_.transform(frame)
        out = cached[1].assess(Xz, lineages, index=frame.index)
        if cached[2] is not None:
            out["reconstruction_error"] = reconstruction_error(reps, Xz)
            out["reconstruction_ratio"] = out["reconstruction_error"] / max(cached[2], 1e-12)
        return out

    def _combined(self, Xz: np.ndarray) -> np.ndarray:
        """The members' predictions combined by the fitted rule (mean or weights)."""
        if getattr(self, "weights_", None) is None:
            return np.mean([self._member_output(m, Xz) for m in self.members_], axis=0)
        pred = np.zeros((Xz.shape[0], len(self.perturbations_)))
        for m, w in zip(self.members_, self._member_weights(), strict=True):
            pred += self._member_output(m, Xz) * w
        return pred

    @staticmethod
    def _member_output(member: Member, Xz: np.ndarray) -> np.ndarray:
        pred = member.predict(Xz)
        return pred[:, None] if pred.ndim == 1 else pred

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """NaN-aware mean R^2 over perturbations (scikit-learn's R^2 when nothing is missing)."""
        pred = self.predict(X)
        return nan_r2(np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64))

    def _predict_collapsed(self, Xz: np.ndarray) -> np.ndarray:
        # Xz is already z-scored: use the z-space form of the collapsed map.
        scale = np.asarray(self.preprocessor_.scale_, np.float64)
        mean = np.asarray(self.preprocessor_.mean_, np.float64)
        A = self.gene_coef_ * scale[:, None]
        c = self.gene_intercept_ + (mean / scale) @ A
        return np.asarray(Xz, np.float64) @ A + c

    def predict_members(self, expression: pd.DataFrame) -> np.ndarray:
        """Predictions of each member: array (members x samples x perturbations)."""
        self._check_fitted()
        Xz = self.preprocessor_.transform(expression)
        return np.stack([self._member_output(m, Xz) for m in self.members_])

    def predict_unscreened(
        self, expression: pd.DataFrame, descriptors: pd.DataFrame
    ) -> pd.DataFrame:
        """Predicted responses to perturbations described by ``descriptors``, screened or not.

        Only members whose head is a pan-perturbation model (it has ``predict_perturbations``, e.g.
        "pan-mlp") can predict a perturbation from its descriptor; their predictions are averaged.

        Parameters
        ----------
        expression : pandas.DataFrame
            Samples x genes, as for :meth:`predict`.
        descriptors : pandas.DataFrame
            Perturbation ID x descriptor columns (the same columns as the descriptors in training).

        Returns
        -------
        pandas.DataFrame
            Samples x the perturbations of ``descriptors``.
        """
        self._check_fitted()
        members = [
            m for m in self.members_ if callable(getattr(m.head, "predict_perturbations", None))
        ]
        if not members:
            raise InputError(
                "this model has no pan-perturbation head, so it cannot predict a perturbation "
                "from its descriptor",
                fix="fit a model with a pan head, e.g. LEAP(head='pan-mlp', ...)",
            )
        frame = expression
        if not isinstance(expression, pd.DataFrame):
            frame = pd.DataFrame(np.asarray(expression), columns=list(self.feature_names_in_))
        Xz = self.preprocessor_.transform(frame)
        pred = np.mean(
            [
                np.asarray(
                    m.head.predict_perturbations(m.representation.transform(Xz), descriptors)
                )
                for m in members
            ],
            axis=0,
        )
        return pd.DataFrame(
            pred.astype(np.float32), index=frame.index, columns=[str(i) for i in descriptors.index]
        )

    def gene_attributions(self, perturbation: str) -> pd.Series:
        """Exact gene-level coefficients of one perturbation (linear ensembles only)."""
        self._check_fitted()
        if self.gene_coef_ is None:
            raise ValueError("gene attributions need a linear ensemble (linear encoders and heads)")
        if perturbation not in self.perturbations_:
            raise InputError(
                f"unknown perturbation {perturbation!r}",
                fix=f"choose one of the model's {len(self.perturbations_)} perturbations",
            )
        j = self.perturbations_.index(perturbation)
        return pd.Series(self.gene_coef_[:, j], index=self.preprocessor_.genes_, name=perturbation)

    # ------------------------------------------------------------------ persistence
    def save(self, directory, overwrite: bool = False, metadata: dict[str, Any] | None = None):
        """Write the model directory (arrays + JSON, no pickle). See :mod:`leapscreen.persist`."""
        return persist.save_model(self, directory, overwrite=overwrite, metadata=metadata)

    @classmethod
    def load(cls, directory, device: str = "cpu") -> LEAP:
        """Load a model directory written by :meth:`save`."""
        return persist.load_model(directory, device=device, cls=cls)
