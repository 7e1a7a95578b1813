"""PCA baseline representation (a linear map, like the released LEAP encoder)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.decomposition import PCA

_STATE_FORMAT = "leapscreen.PCARepresentation/1"


class PCARepresentation:
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
    """

    is_linear = True

    def __init__(
        self, n_components: int = 256, random_state: int = 0, svd_solver: str = "auto"
    ) -> None:
        self.n_components = n_components
        self.random_state = random_state
        self.svd_solver = svd_solver

    def fit(self, X: np.ndarray, y: Any = None) -> PCARepresentation:
        """Fit the components on ``X`` (samples x genes).

        Returns
        -------
        PCARepresentation
            ``self``.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 2:
            raise ValueError(f"X must be a 2-D array with >= 2 samples and genes, got {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError("X contains NaN or infinite values; impute them first")
        if int(self.n_components) < 1:
            raise ValueError(f"n_components must be >= 1, got {self.n_components}")
        cap = min(X.shape) - 1
        k = int(self.n_components)
        if k > cap:
            warnings.warn(
                f"n_components={k} exceeds min(n_samples, n_genes) - 1 = {cap}; using {cap}",
                stacklevel=2,
            )
            k = cap
        pca = PCA(n_components=k, svd_solver=self.svd_solver, random_state=self.random_state)
        pca.fit(X)
        self.n_components_ = k
        self.components_ = pca.components_.astype(np.float64)
        self.mean_ = pca.mean_.astype(np.float64)
        self.explained_variance_ = pca.explained_variance_.astype(np.float64)
        self.explained_variance_ratio_ = pca.explained_variance_ratio_.astype(np.float64)
        self.n_features_in_ = X.shape[1]
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise RuntimeError("this PCARepresentation is not fitted yet; call fit() first")

    def linear_map(self) -> tuple[np.ndarray, np.ndarray]:
        """The representation as ``X @ W + b``.

        Returns
        -------
        W : np.ndarray, shape (n_genes, n_components_)
        b : np.ndarray, shape (n_components_,)
        """
        self._check_fitted()
        W = self.components_.T.copy()
        return W, -self.mean_ @ W

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Project samples onto the components.

        Returns
        -------
        np.ndarray of float32, shape (n_samples, n_components_)
        """
        self._check_fitted()
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have shape (n, {self.n_features_in_}), got {X.shape}")
        W, b = self.linear_map()
        return (X @ W + b).astype(np.float32)

    def fit_transform(self, X: np.ndarray, y: Any = None) -> np.ndarray:
        """Fit on ``X`` and return its projection."""
        return self.fit(X).transform(X)

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able parameters and numpy arrays from which :meth:`from_state` rebuilds this."""
        self._check_fitted()
        params = {
            "format": _STATE_FORMAT,
            "n_components": int(self.n_components),
            "random_state": self.random_state,
            "svd_solver": self.svd_solver,
            "n_components_": int(self.n_components_),
            "n_features_in_": int(self.n_features_in_),
        }
        arrays = {
            "components": self.components_.copy(),
            "mean": self.mean_.copy(),
            "explained_variance": self.explained_variance_.copy(),
            "explained_variance_ratio": self.explained_variance_ratio_.copy(),
        }
        return params, arrays

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> PCARepresentation:
        """Rebuild a fitted :class:`PCARepresentation` from :meth:`get_state` output."""
        if params.get("format") != _STATE_FORMAT:
            raise ValueError(f"not a PCARepresentation state (format {params.get('format')!r})")
        obj = cls(params["n_components"], params["random_state"], params["svd_solver"])
        obj.n_components_ = int(params["n_components_"])
        obj.n_features_in_ = int(params["n_features_in_"])
        obj.components_ = np.asarray(arrays["components"], dtype=np.float64)
        obj.mean_ = np.asarray(arrays["mean"], dtype=np.float64)
        obj.explained_variance_ = np.asarray(arrays["explained_variance"], dtype=np.float64)
        obj.explained_variance_ratio_ = np.asarray(
            arrays["explained_variance_ratio"], dtype=np.float64
        )
        return obj


__all__ = ["PCARepresentation"]
