"""PCA baseline representation (a linear map, like the released LEAP encoder)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.decomposition import PCA

from leapscreen.base import BaseRepresentation
from leapscreen.registry import register_representation
from leapscreen.represent._common import PooledFitMixin, check_fitted, validate_input

__all__ = ["PCARepresentation"]


@register_representation("pca", leap_params={"latent_dim": "n_components"})
class PCARepresentation(PooledFitMixin, BaseRepresentation):
    """Principal components of the (already scaled) expression.

    Parameters
    ----------
    n_components : int, default 256
        Latent dimension; capped at ``min(n_samples, n_genes) - 1`` with a warning.
    random_state : int, default 0
        Seed of the randomized SVD (used by scikit-learn for large matrices).
    svd_solver : str, default "auto"
        Passed to :class:`sklearn.decomposition.PCA`.

    Attributes
    ----------
    n_components_ : int
        Number of components kept.
    components_ : np.ndarray, shape (n_components_, n_genes)
    mean_ : np.ndarray, shape (n_genes,)
    explained_variance_, explained_variance_ratio_ : np.ndarray, shape (n_components_,)
    n_features_in_ : int
    """

    is_linear = True

    def __init__(
        self, n_components: int = 256, random_state: int = 0, svd_solver: str = "auto"
    ) -> None:
        self.n_components = n_components
        self.random_state = random_state
        self.svd_solver = svd_solver

    _fit_dtype = np.float64
    _min_features = 2

    def _fit_matrix(self, X: np.ndarray) -> None:
        """Fit the components on the pooled samples (``fit`` validates and pools them)."""
        if int(self.n_components) < 1:
            raise ValueError(f"n_components must be >= 1, got {self.n_components}")
        cap = min(X.shape) - 1
        k = int(self.n_components)
        if k > cap:
            warnings.warn(
                f"n_components={k} exceeds min(n_samples, n_genes) - 1 = {cap}; using {cap}",
                stacklevel=3,
            )
            k = cap
        pca = PCA(n_components=k, svd_solver=self.svd_solver, random_state=self.random_state)
        pca.fit(X)
        self.n_components_ = k
        self.components_ = pca.components_.astype(np.float64)
        self.mean_ = pca.mean_.astype(np.float64)
        self.explained_variance_ = pca.explained_variance_.astype(np.float64)
        self.explained_variance_ratio_ = pca.explained_variance_ratio_.astype(np.float64)

    def linear_map(self) -> tuple[np.ndarray, np.ndarray]:
        """The representation as ``X @ W + b``.

        Returns
        -------
        W : np.ndarray, shape (n_genes, n_components_)
        b : np.ndarray, shape (n_components_,)
        """
        check_fitted(self)
        W = self.components_.T.copy()
        return W, -self.mean_ @ W

    def transform(self, X: Any) -> np.ndarray:
        """Project samples onto the components.

        Returns
        -------
        np.ndarray of float32, shape (n_samples, n_components_)
        """
        X = validate_input(self, X, reset=False, dtype=np.float64)
        W, b = self.linear_map()
        return (X @ W + b).astype(np.float32)
