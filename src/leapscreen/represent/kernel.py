"""RBF kernel features: a linear head on them is kernel ridge regression on the genes.

For training samples ``x_1..x_n`` and ``k(x, y) = exp(-gamma |x - y|^2)``, the representation of a
sample ``x`` is ``phi(x) = k_c(x) U / sqrt(lambda)``: ``k_c(x)`` the row of kernel values against the
training samples, centred with the training kernel's statistics, and ``(lambda, U)`` the
eigen-decomposition of the centred training kernel ``K_c = U diag(lambda) U'`` (the components with
``lambda`` above ``tol * lambda_max``). On the training samples ``phi phi' = K_c``, so a ridge on
``phi`` with penalty ``alpha`` is kernel ridge regression with the centred kernel and an
unpenalised intercept - with every per-perturbation, NaN-aware and cross-validated piece of
:class:`~leapscreen.heads.RidgeHead` unchanged. This is kernel PCA without truncation; it is
deterministic (no seed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics.pairwise import rbf_kernel

from leapscreen.base import BaseRepresentation
from leapscreen.errors import InputError
from leapscreen.registry import register_representation
from leapscreen.represent._common import PooledFitMixin, validate_input

__all__ = ["RBFKernelRepresentation"]


@register_representation("rbf")
class RBFKernelRepresentation(PooledFitMixin, BaseRepresentation):
    """Exact RBF kernel features of the preprocessed genes (one per training sample).

    Parameters
    ----------
    gamma_scale : float, default 0.25
        The kernel width as ``gamma = gamma_scale / n_genes``. For z-scored genes the squared
        distance of two samples is about ``2 n_genes``, so the default gives typical kernel values
        near ``exp(-0.5)``; a larger value is more local (less linear).
    tol : float, default 1e-10
        Components whose eigenvalue is below ``tol`` times the largest are dropped.

    Attributes
    ----------
    gamma_ : float
        The kernel's ``gamma``.
    X_fit_ : ndarray of float32, shape (n_fit, n_genes)
        The samples the kernel is centred on (the training samples, and any unlabelled samples
        pooled into the fit).
    row_mean_ : ndarray, shape (n_fit,)
        Column means of the training kernel (its centring statistics), and ``all_mean_`` its mean.
    projection_ : ndarray, shape (n_fit, n_components_)
        ``U / sqrt(lambda)``.
    eigenvalues_ : ndarray, shape (n_components_,)
    n_components_ : int
    n_features_in_ : int
    """

    seeded = False
    _fit_dtype = np.float32

    def __init__(self, gamma_scale: float = 0.25, tol: float = 1e-10) -> None:
        self.gamma_scale = gamma_scale
        self.tol = tol

    def _check_params(self) -> None:
        for name in ("gamma_scale", "tol"):
            value = getattr(self, name)
            ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
            if not ok or not np.isfinite(value) or value <= 0:
                raise InputError(
                    f"RBFKernelRepresentation: {name} must be a positive number, got {value!r}",
                    fix=f"use the default ({type(self)().get_params()[name]})",
                )

    def _kernel(self, A: np.ndarray) -> np.ndarray:
        return rbf_kernel(
            np.asarray(A, np.float64), np.asarray(self.X_fit_, np.float64), gamma=self.gamma_
        )

    def _fit_matrix(self, X: np.ndarray) -> None:
        self._check_params()
        self.gamma_ = float(self.gamma_scale) / X.shape[1]
        self.X_fit_ = np.asarray(X, dtype=np.float32)
        K = self._kernel(self.X_fit_)
        row_mean = K.mean(axis=0)
        all_mean = float(row_mean.mean())
        Kc = K - row_mean[None, :] - row_mean[:, None] + all_mean
        lam, U = np.linalg.eigh(Kc)
        lam, U = lam[::-1], U[:, ::-1]
        keep = lam > float(self.tol) * max(float(lam[0]), np.finfo(float).tiny)
        if not keep.any():  # all samples identical: one constant (zero) component
            keep[0] = True
            lam = np.ones_like(lam)
        self.eigenvalues_ = lam[keep].copy()
        self.projection_ = U[:, keep] / np.sqrt(self.eigenvalues_)[None, :]
        self.row_mean_ = row_mean
        self.all_mean_ = all_mean
        self.n_components_ = int(keep.sum())

    def transform(self, X: Any) -> np.ndarray:
        """The kernel features of ``X``.

        Returns
        -------
        numpy.ndarray of float32, shape (n_samples, n_components_)
        """
        Xv = validate_input(self, X, reset=False, dtype=np.float32)
        k = self._kernel(Xv)
        kc = k - k.mean(axis=1, keepdims=True) - self.row_mean_[None, :] + self.all_mean_
        return (kc @ self.projection_).astype(np.float32)
