"""Ridge regression for every alpha at once, from one eigendecomposition per training set.

With ``Xs = U S V^T`` (thin), the ridge fit at ``alpha`` is ``w = Xs^T U diag(1 / (s^2 + alpha))
U^T y``; the validation predictions are ``Xv Xs^T U diag(1 / (s^2 + alpha)) U^T y``. The smaller of
the two Gram matrices (``Xs^T Xs`` or the kernel ``Xs Xs^T``) is decomposed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["centred_kernels", "eigen", "eigen_of_gram", "scaled"]


def scaled(
    X: np.ndarray, standardize: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``X`` centred (and z-scored if ``standardize``) on its own rows: Xs, mean, scale, keep."""
    mean = X.mean(axis=0)
    if standardize:
        sd = X.std(axis=0)
        keep = sd > 1e-12 * np.maximum(1.0, np.abs(mean))
        scale = np.where(keep, sd, 1.0)
    else:
        keep = np.ones(X.shape[1], dtype=bool)
        scale = np.ones(X.shape[1])
    return np.where(keep, (X - mean) / scale, 0.0), mean, scale, keep


def eigen(Xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left singular vectors ``U`` and squared singular values of ``Xs`` (rank-revealing).

    Uses the smaller of the two Gram matrices: ``Xs Xs^T`` (kernel form) or ``Xs^T Xs``.
    """
    n, d = Xs.shape
    if d < n:
        s2, V = np.linalg.eigh(Xs.T @ Xs)
        nz = s2 > 1e-10 * max(float(s2[-1]), 1e-300)
        s2, V = s2[nz], V[:, nz]
        return (Xs @ V) / np.sqrt(s2), s2
    return eigen_of_gram(Xs @ Xs.T)


def eigen_of_gram(K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvectors and eigenvalues of a Gram matrix ``K = Xs Xs^T``, zero eigenvalues dropped."""
    s2, U = np.linalg.eigh(K)
    nz = s2 > 1e-10 * max(float(s2[-1]), 1e-300)
    return U[:, nz], s2[nz]


def centred_kernels(
    kernel: np.ndarray, tr: np.ndarray, va: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation kernels of features centred on the training rows ``tr``."""
    K_tr = kernel[np.ix_(tr, tr)]
    K_va = kernel[np.ix_(va, tr)]
    row = K_tr.mean(axis=0)
    total = row.mean()
    K_tr = K_tr - row[None, :] - row[:, None] + total
    K_va = K_va - K_va.mean(axis=1, keepdims=True) - row[None, :] + total
    return K_tr, K_va
