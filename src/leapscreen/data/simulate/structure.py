"""Steps 1-2 of ``simulate_screen``: lineage structure and programmes, and the IDs of everything.

Samples get lineages (:func:`assign_lineages`), lineages get DepMap names
(:func:`lineage_names`), and the latent programmes get activities (samples x programmes) and
sparse gene loadings (:func:`draw_programmes`); see the generative model in
:mod:`leapscreen.data.simulate`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from leapscreen.data.simulate._constants import _LINEAGES

__all__ = ["assign_lineages", "draw_programmes", "id_names", "lineage_names"]


def id_names(prefix: str, n: int, width: int) -> list[str]:
    """``prefix`` + zero-padded 1..n (``width`` digits at least)."""
    width = max(width, len(str(n)))
    return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]


def lineage_names(n_lineages: int) -> tuple[list[str], list[str]]:
    """DepMap's ``OncotreeLineage`` / ``OncotreePrimaryDisease`` names, most frequent first."""
    names, diseases = [], []
    for i in range(n_lineages):
        if i < len(_LINEAGES):
            names.append(_LINEAGES[i][0])
            diseases.append(_LINEAGES[i][1])
        else:
            names.append(f"Lineage {i + 1}")
            diseases.append(f"Lineage {i + 1} Cancer")
    return names, diseases


def assign_lineages(rng: np.random.Generator, n: int, n_lineages: int) -> np.ndarray:
    """Lineage index per sample: at least ``min(2, n // L)`` each, the rest multinomial."""
    base = min(2, n // n_lineages)
    props = rng.dirichlet(np.full(n_lineages, 2.0))
    counts = np.full(n_lineages, base, dtype=np.int64)
    counts += rng.multinomial(n - base * n_lineages, props)
    labels = np.repeat(np.arange(n_lineages), counts)
    return rng.permutation(labels)


def _programme_loadings(
    rng: np.random.Generator, n_programmes: int, n_genes: int, module_size: int
) -> sp.csr_matrix:
    rows, cols, vals = [], [], []
    for k in range(n_programmes):
        genes = np.sort(rng.choice(n_genes, size=module_size, replace=False))
        sign = np.where(rng.random(module_size) < 0.8, 1.0, -1.0)
        rows.append(np.full(module_size, k))
        cols.append(genes)
        vals.append(sign * rng.uniform(0.3, 1.0, module_size))
    if n_programmes == 0:
        return sp.csr_matrix((0, n_genes), dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_programmes, n_genes),
        dtype=np.float32,
    )


def draw_programmes(
    rng: np.random.Generator,
    lineage: np.ndarray,
    n_lineages: int,
    n_programmes: int,
    n_genes: int,
    module_size: int,
    strength: float,
) -> tuple[np.ndarray, sp.csr_matrix]:
    """Programme activities ``A`` (samples x programmes, float32) and loadings ``W`` (sparse)."""
    n = lineage.shape[0]
    m_prog = rng.normal(0.0, strength, (n_lineages, n_programmes))
    activity = (m_prog[lineage] + rng.standard_normal((n, n_programmes))).astype(np.float32)
    loadings = _programme_loadings(rng, n_programmes, n_genes, module_size)
    return activity, loadings
