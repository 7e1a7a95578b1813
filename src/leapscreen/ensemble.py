"""LEAP: the layered ensemble of representations x heads, and its exact linear collapse.

A fitted :class:`LEAP` holds

* one :class:`~leapscreen.preprocess.Preprocessor` fitted on the training expression only;
* K members (representation seeds, optionally several representation types), each a fitted
  representation and a fitted head whose prediction is already the mean over its CV-fold models;
* the prediction = plain mean over members (= mean over seeds x folds).

When the preprocessing is affine after the log, every representation is linear and every head is linear,
the whole ensemble is one affine map of the (logged) expression: ``gene_coef_`` (genes x perturbations)
and ``gene_intercept_``. :meth:`LEAP.predict` then uses that one matrix product; ``layered=True`` runs the
members instead (they agree to float precision, which a test checks).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from leapscreen.errors import InputError
from leapscreen.heads import ElasticNetHead, MeanHead, PSLassoHead, RidgeHead
from leapscreen.preprocess import Preprocessor
from leapscreen.represent import DAMAE, Autoencoder, MaskedAutoencoder, PCARepresentation

logger = logging.getLogger(__name__)

REPRESENTATIONS = ("damae", "mae", "ae", "pca", "genes")
HEADS = ("ps-lasso", "ps-enet", "ridge", "mean")

ProgressFn = Callable[[str, int, int], None]


class IdentityRepresentation:
    """The preprocessed genes themselves (the "raw genes" baseline); linear."""

    is_linear = True

    def fit(self, X: np.ndarray, **_: Any) -> IdentityRepresentation:
        self.n_features_ = X.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float32)

    def linear_map(self) -> tuple[np.ndarray, np.ndarray]:
        return np.eye(self.n_features_, dtype=np.float32), np.zeros(self.n_features_, np.float32)

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"n_features": int(self.n_features_)}, {}

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray], **_: Any):
        obj = cls()
        obj.n_features_ = int(params["n_features"])
        return obj


def make_representation(
    kind: str, latent_dim: int, seed: int, device: str, params: dict[str, Any] | None = None
):
    """A fresh, unfitted representation of the given kind."""
    params = dict(params or {})
    if kind == "pca":
        return PCARepresentation(n_components=latent_dim, random_state=seed)
    if kind == "genes":
        return IdentityRepresentation()
    cls = {"damae": DAMAE, "mae": MaskedAutoencoder, "ae": Autoencoder}.get(kind)
    if cls is None:
        raise ValueError(f"unknown representation {kind!r}; choose from {REPRESENTATIONS}")
    return cls(latent_dim=latent_dim, random_state=seed, device=device, **params)


def make_head(
    kind: str, n_folds: int, seed: int, device: str, params: dict[str, Any] | None = None
):
    """A fresh, unfitted head of the given kind."""
    params = dict(params or {})
    if kind == "ps-lasso":
        return PSLassoHead(n_folds=n_folds, random_state=seed, device=device, **params)
    if kind == "ps-enet":
        return ElasticNetHead(n_folds=n_folds, random_state=seed, device=device, **params)
    if kind == "ridge":
        return RidgeHead(**{"cv": n_folds, "random_state": seed, **params})
    if kind == "mean":
        return MeanHead()
    raise ValueError(f"unknown head {kind!r}; choose from {HEADS}")


@dataclass
class Member:
    """One layer-1 member of the ensemble: a representation and the head fitted on it."""

    kind: str
    seed: int
    representation: Any
    head: Any
    fit_seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def is_linear(self) -> bool:
        return bool(getattr(self.representation, "is_linear", False))

    def predict(self, Xz: np.ndarray) -> np.ndarray:
        return self.head.predict(self.representation.transform(Xz))


def fingerprint(expression: pd.DataFrame, responses: pd.DataFrame) -> str:
    """sha256 of the training data (IDs, genes, values), to tell which data a model saw."""
    h = hashlib.sha256()
    for index in (expression.index, expression.columns, responses.columns):
        h.update("\x1f".join(map(str, index)).encode())
    h.update(np.ascontiguousarray(expression.to_numpy(np.float32)).tobytes())
    h.update(np.ascontiguousarray(responses.to_numpy(np.float32)).tobytes())
    return h.hexdigest()


class LEAP:
    """Layered Ensemble of Autoencoders and Predictors.

    Parameters
    ----------
    representation : str or sequence of str
        "damae" (default), "mae", "ae", "pca" or "genes" (no representation: heads on the preprocessed
        genes). A sequence ensembles across representation types too.
    n_seeds : int
        Representation seeds per type (the paper: 5). 1 gives the single-representation model.
    head : str
        "ps-lasso" (default), "ps-enet", "ridge" or "mean".
    latent_dim : int
        Size of the latent representation (256 in the reference).
    n_genes : int
        Most-variant genes kept (fitted on the training expression only). Ignored if ``genes`` is given.
    genes : sequence of str, optional
        Use these genes instead of the most-variant ones.
    log_transform : bool or "auto"
        Apply ln(1 + x) first (for TPM input).
    n_folds : int
        CV folds of the heads (their fold models are kept and averaged).
    representation_params, head_params : dict, optional
        Extra keyword arguments of the representation / head constructors.
    random_state : int
        Base seed: representation seed k is ``random_state + k``; heads use ``random_state``.
    device : str
        Torch device for representations and heads ("cpu", "cuda").
    """

    def __init__(
        self,
        representation: str | Sequence[str] = "damae",
        n_seeds: int = 5,
        head: str = "ps-lasso",
        latent_dim: int = 256,
        n_genes: int = 5000,
        genes: Sequence[str] | None = None,
        log_transform: bool | str = False,
        n_folds: int = 5,
        representation_params: dict[str, Any] | None = None,
        head_params: dict[str, Any] | None = None,
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
        self.random_state = random_state
        self.device = device

    # ------------------------------------------------------------------ parameters
    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (JSON-able)."""
        rep = self.representation
        return {
            "representation": rep if isinstance(rep, str) else list(rep),
            "n_seeds": int(self.n_seeds),
            "head": self.head,
            "latent_dim": int(self.latent_dim),
            "n_genes": int(self.n_genes),
            "genes": None if self.genes is None else list(self.genes),
            "log_transform": self.log_transform,
            "n_folds": int(self.n_folds),
            "representation_params": dict(self.representation_params or {}),
            "head_params": dict(self.head_params or {}),
            "random_state": int(self.random_state),
            "device": self.device,
        }

    @property
    def representation_kinds(self) -> list[str]:
        rep = self.representation
        kinds = [rep] if isinstance(rep, str) else list(rep)
        for kind in kinds:
            if kind not in REPRESENTATIONS:
                raise ValueError(f"unknown representation {kind!r}; choose from {REPRESENTATIONS}")
        return kinds

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        expression: pd.DataFrame,
        responses: pd.DataFrame,
        unlabelled_expression: pd.DataFrame | None = None,
        sources: Sequence[str] | None = None,
        unlabelled_sources: Sequence[str] | None = None,
        progress: ProgressFn | None = None,
    ) -> LEAP:
        """Fit preprocessing, K representations and their heads.

        Parameters
        ----------
        expression : pandas.DataFrame
            Training samples x genes.
        responses : pandas.DataFrame
            Training samples x perturbations (same rows as ``expression``), NaN = not measured.
        unlabelled_expression : pandas.DataFrame, optional
            Extra samples (no labels) pooled into the representation pretraining (DAMAE). Only their
            expression is used, never to fit the preprocessing statistics.
        sources, unlabelled_sources : sequence of str, optional
            Source (dataset / domain) of each row, for per-source alignment in DAMAE.
        progress : callable, optional
            Called as ``progress(message, done, total)`` after each member.

        Returns
        -------
        LEAP
        """
        kinds = self.representation_kinds
        if self.head not in HEADS:
            raise ValueError(f"unknown head {self.head!r}; choose from {HEADS}")
        if not expression.index.equals(responses.index):
            if set(expression.index) != set(responses.index):
                raise InputError(
                    "expression and responses must hold the same samples "
                    f"({len(expression)} vs {len(responses)} rows)",
                    fix="align them first, e.g. with ScreenData",
                )
            responses = responses.loc[expression.index]
        self.fingerprint_ = fingerprint(expression, responses)
        self.perturbations_ = [str(c) for c in responses.columns]
        Y = responses.to_numpy(dtype=np.float64)

        self.preprocessor_ = Preprocessor(
            n_genes=self.n_genes,
            genes=None if self.genes is None else list(self.genes),
            log_transform=self.log_transform,
        ).fit(expression)
        Xz = self.preprocessor_.transform(expression)
        extra = None
        if unlabelled_expression is not None and len(unlabelled_expression):
            extra = self.preprocessor_.transform(unlabelled_expression)

        self.members_: list[Member] = []
        total = len(kinds) * (1 if self.head == "mean" else self.n_seeds)
        done = 0
        for kind in kinds:
            seeds = (
                [self.random_state]
                if kind == "genes"
                else [self.random_state + k for k in range(self.n_seeds)]
            )
            for seed in seeds:
                t0 = time.perf_counter()
                rep = make_representation(
                    kind, self.latent_dim, seed, self.device, self.representation_params
                )
                if kind == "damae":
                    rep.fit(Xz, sources=sources, extra_X=extra, extra_sources=unlabelled_sources)
                elif kind in ("mae", "ae", "pca") and extra is not None:
                    rep.fit(np.vstack([Xz, extra]))
                else:
                    rep.fit(Xz)
                Z = rep.transform(Xz)
                head = make_head(
                    self.head, self.n_folds, self.random_state, self.device, self.head_params
                ).fit(Z, Y)
                self.members_.append(
                    Member(kind, seed, rep, head, fit_seconds=time.perf_counter() - t0)
                )
                done += 1
                if progress is not None:
                    progress(f"{kind} seed {seed}", done, total)
                if kind == "genes" or self.head == "mean":
                    break
            if self.head == "mean":
                break
        self._collapse()
        return self

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
        for m in self.members_:
            W, b = m.representation.linear_map()
            B = np.asarray(m.head.coef_mean_, dtype=np.float64)
            A += np.asarray(W, np.float64) @ B
            c += np.asarray(b, np.float64) @ B + np.asarray(m.head.intercept_mean_, np.float64)
        A /= len(self.members_)
        c /= len(self.members_)
        # z = (x - mean) / scale  ->  pred = x @ (A / scale) + (c - (mean / scale) @ A)
        scale = np.asarray(self.preprocessor_.scale_, np.float64)
        mean = np.asarray(self.preprocessor_.mean_, np.float64)
        self.gene_coef_ = A / scale[:, None]
        self.gene_intercept_ = c - (mean / scale) @ A

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "members_"):
            raise RuntimeError("this LEAP model is not fitted yet: call fit() or LEAP.load()")

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
        Xz = self.preprocessor_.transform(expression)
        if self.gene_coef_ is not None and not layered:
            pred = self._predict_collapsed(Xz)
        else:
            pred = np.mean([m.predict(Xz) for m in self.members_], axis=0)
        return pd.DataFrame(
            pred.astype(np.float32), index=expression.index, columns=self.perturbations_
        )

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
        return np.stack([m.predict(Xz) for m in self.members_])

    def gene_attributions(self, perturbation: str) -> pd.Series:
        """Exact gene-level coefficients of one perturbation (linear ensembles only)."""
        self._check_fitted()
        if self.gene_coef_ is None:
            raise ValueError("gene attributions need a linear ensemble (linear encoders and heads)")
        j = self.perturbations_.index(perturbation)
        return pd.Series(self.gene_coef_[:, j], index=self.preprocessor_.genes_, name=perturbation)

    # ------------------------------------------------------------------ persistence
    def save(self, directory, overwrite: bool = False, metadata: dict[str, Any] | None = None):
        """Write the model directory (arrays + JSON, no pickle). See :mod:`leapscreen.persist`."""
        from leapscreen.persist import save_model

        return save_model(self, directory, overwrite=overwrite, metadata=metadata)

    @classmethod
    def load(cls, directory, device: str = "cpu") -> LEAP:
        """Load a model directory written by :meth:`save`."""
        from leapscreen.persist import load_model

        return load_model(directory, device=device)
