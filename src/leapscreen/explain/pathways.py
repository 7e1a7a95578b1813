"""Pathway activity scores and over-representation of selected genes in gene sets.

:func:`pathway_scores` turns z-scored expression into one activity score per gene set (the mean
z-score of its genes present, or their first principal component, sign-aligned with the mean);
stability selection on these scores explains predictions by pathways directly.

:func:`enrichment` tests the over-representation of a set of selected genes in every gene set
against a gene universe (the model's genes): the one-sided hypergeometric test, with
Benjamini-Hochberg q-values over the sets tested (``scipy.stats.hypergeom`` and
``scipy.stats.false_discovery_control``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control, hypergeom

from leapscreen.errors import InputError

__all__ = ["enrichment", "pathway_scores"]

_METHODS = ("mean", "pca")


def pathway_scores(
    Xz: pd.DataFrame,
    gene_sets: Mapping[str, Sequence[str]],
    method: str = "mean",
    min_size: int = 5,
) -> pd.DataFrame:
    """One activity score per gene set and sample.

    Parameters
    ----------
    Xz : pandas.DataFrame
        Samples x genes, z-scored expression (e.g. the model's preprocessed genes).
    gene_sets : mapping of str to sequence of str
        Set name -> genes (as from :func:`leapscreen.data.genesets.read_gene_sets`).
    method : {"mean", "pca"}, default "mean"
        ``"mean"``: the mean z-score of the set's genes present in ``Xz``. ``"pca"``: the score
        of the first principal component of those genes (centred, not rescaled), with its sign
        chosen so that it correlates positively with the mean z-score.
    min_size : int, default 5
        Sets with fewer genes present in ``Xz`` are left out.

    Returns
    -------
    pandas.DataFrame
        Samples x pathways (sets kept, in the order given), float64.
    """
    if method not in _METHODS:
        raise InputError(
            f"method must be one of {_METHODS}, got {method!r}", fix="pass method='mean'"
        )
    if not isinstance(Xz, pd.DataFrame):
        raise InputError("Xz must be a samples x genes DataFrame", fix="pass a pandas.DataFrame")
    columns = {str(g): i for i, g in enumerate(Xz.columns)}
    values = Xz.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise InputError("Xz has missing or infinite values", fix="impute them first")
    out: dict[str, np.ndarray] = {}
    for name, genes in gene_sets.items():
        idx = sorted({columns[g] for g in map(str, genes) if g in columns})
        if len(idx) < max(int(min_size), 1):
            continue
        block = values[:, idx]
        mean_score = block.mean(axis=1)
        if method == "mean":
            out[str(name)] = mean_score
            continue
        centred = block - block.mean(axis=0)
        u, s, _ = np.linalg.svd(centred, full_matrices=False)
        score = u[:, 0] * s[0]
        if np.dot(score, mean_score - mean_score.mean()) < 0:
            score = -score
        out[str(name)] = score
    if not out:
        raise InputError(
            f"no gene set has {min_size} or more genes among the {len(columns)} genes given",
            fix="check that the gene sets use the same gene symbols as the expression",
        )
    return pd.DataFrame(out, index=Xz.index)


def enrichment(
    selected: Sequence[str],
    universe: Sequence[str],
    gene_sets: Mapping[str, Sequence[str]],
    *,
    min_size: int = 5,
    max_size: int = 500,
) -> pd.DataFrame:
    """Over-representation of the selected genes in each gene set (hypergeometric, BH).

    With ``M`` universe genes, ``n`` selected genes in the universe, and a set with ``K`` genes
    in the universe of which ``k`` are selected, ``p = P(X >= k)`` for
    ``X ~ Hypergeometric(M, K, n)`` (the one-sided Fisher exact test); ``q`` are the
    Benjamini-Hochberg adjusted p-values over the sets tested (those with ``min_size <= K <=
    max_size``).

    Parameters
    ----------
    selected : sequence of str
        The selected genes (genes outside the universe are ignored).
    universe : sequence of str
        The genes that could have been selected (the model's genes).
    gene_sets : mapping of str to sequence of str
        Set name -> genes.
    min_size, max_size : int
        Size limits (within the universe) of the sets tested.

    Returns
    -------
    pandas.DataFrame
        Columns ``pathway``, ``size`` (in the universe), ``overlap``, ``genes`` (the overlap,
        ``;``-joined, in universe order), ``p``, ``q``; sorted by ``p`` then ``pathway``.
    """
    order = {str(g): i for i, g in enumerate(dict.fromkeys(map(str, universe)))}
    M = len(order)
    if M == 0:
        raise InputError("the gene universe is empty", fix="pass the model's genes")
    chosen = {g for g in map(str, selected) if g in order}
    n = len(chosen)
    rows = []
    for name, genes in gene_sets.items():
        members = sorted({g for g in map(str, genes) if g in order}, key=order.__getitem__)
        K = len(members)
        if K < min_size or K > max_size:
            continue
        hits = [g for g in members if g in chosen]
        rows.append((str(name), K, len(hits), ";".join(hits)))
    columns = ["pathway", "size", "overlap", "genes", "p", "q"]
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    frame = pd.DataFrame(rows, columns=["pathway", "size", "overlap", "genes"])
    frame["p"] = hypergeom.sf(frame["overlap"].to_numpy() - 1, M, frame["size"].to_numpy(), n)
    frame["p"] = frame["p"].clip(upper=1.0)
    frame["q"] = false_discovery_control(frame["p"].to_numpy(), method="bh")
    frame = frame.sort_values(["p", "pathway"], kind="stable").reset_index(drop=True)
    return frame[columns]
