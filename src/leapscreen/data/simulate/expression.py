"""Step 3 of ``simulate_screen``: gene parameters and the expression matrix (log2(TPM+1)-like)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from leapscreen.data.simulate._constants import _EXPR_BLOCK, _LOG_TPM_MAX

__all__ = ["gene_parameters", "simulate_expression"]


def gene_parameters(
    rng: np.random.Generator, n_genes: int, n_lineages: int, strength: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-gene baseline ``mu``, noise sd ``sigma`` and lineage effects ``Lambda`` (float32)."""
    silent = rng.random(n_genes) < 0.3
    high = rng.random(n_genes) < 0.015
    mu = np.where(
        silent,
        rng.uniform(-2.0, 0.5, n_genes),
        np.where(
            high, rng.uniform(8.0, 13.0, n_genes), np.clip(rng.normal(3.6, 1.8, n_genes), 0.5, 13.0)
        ),
    )
    sigma = np.where(
        silent,
        rng.lognormal(np.log(0.6), 0.4, n_genes),
        rng.lognormal(np.log(0.6), 0.5, n_genes),
    )
    dense = rng.normal(0.0, 0.2 * strength, (n_lineages, n_genes))
    marker = rng.random((n_lineages, n_genes)) < 0.05
    shift = rng.normal(0.0, 2.0 * strength, (n_lineages, n_genes))
    lam = dense + np.where(marker, shift, 0.0)
    return mu.astype(np.float32), sigma.astype(np.float32), lam.astype(np.float32)


def simulate_expression(
    rng: np.random.Generator,
    lineage: np.ndarray,
    activity: np.ndarray,
    loadings: sp.csr_matrix,
    mu: np.ndarray,
    sigma: np.ndarray,
    lam: np.ndarray,
) -> np.ndarray:
    """``X``: samples x genes, float32, clipped to [0, log2(1e6 + 1)], in blocks of genes."""
    n = lineage.shape[0]
    n_genes = mu.shape[0]
    out = np.empty((n, n_genes), dtype=np.float32)
    w = loadings.tocsc()
    for start in range(0, n_genes, _EXPR_BLOCK):
        stop = min(start + _EXPR_BLOCK, n_genes)
        block = rng.standard_normal((n, stop - start), dtype=np.float32)
        block *= sigma[start:stop]
        block += mu[start:stop]
        block += lam[:, start:stop][lineage]
        if w.shape[0]:
            block += activity @ w[:, start:stop].toarray()
        np.clip(block, 0.0, _LOG_TPM_MAX, out=block)
        out[:, start:stop] = block
    return out
