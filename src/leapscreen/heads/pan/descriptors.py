"""Perturbation descriptors: gene-set membership -> PCA vectors, and matching them to perturbations.

A *descriptor* is a fixed numeric vector per perturbation that lets one (pan-perturbation) model
share what it learns across perturbations and predict perturbations it never saw. For gene
perturbations the reference descriptor is the PCA (256 components) of the gene's binary membership
in gene sets (MSigDB C2 CGP); any table (perturbation ID x numeric columns) works too.

* :func:`membership_pca` - array maths: a genes x sets 0/1 matrix -> genes x components;
* :func:`gene_set_descriptors` - gene sets (from :func:`leapscreen.data.genesets.read_gmt` or
  :func:`~leapscreen.data.genesets.read_msigdb_json`) -> a :class:`DescriptorTable` of genes;
* :func:`perturbation_symbol` / :func:`match_descriptors` - DepMap IDs such as ``"A1BG (1)"`` are
  matched to descriptor rows on the symbol (``"A1BG"``);
* :class:`DescriptorTable` - a :class:`pandas.DataFrame` that a saved model can hold (persistence
  stores its IDs, columns and values as arrays; a plain DataFrame parameter cannot be saved).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from leapscreen.errors import InputError
from leapscreen.registry import register_component

__all__ = [
    "DescriptorTable",
    "as_descriptor_frame",
    "gene_set_descriptors",
    "match_descriptors",
    "membership_pca",
    "perturbation_symbol",
    "resolve_descriptors",
]

_ENTREZ_SUFFIX = re.compile(r"^(.*?)\s*\(\s*\d+\s*\)\s*$")


def perturbation_symbol(name: Any) -> str:
    """The symbol of a perturbation ID: ``"A1BG (1)"`` -> ``"A1BG"``; plain names unchanged."""
    text = str(name).strip()
    m = _ENTREZ_SUFFIX.match(text)
    return m.group(1).strip() if m and m.group(1).strip() else text


@register_component
class DescriptorTable(pd.DataFrame):
    """A descriptor table (perturbation ID x numeric columns) that saved models can hold.

    Build it from any DataFrame: ``DescriptorTable(frame)``. It behaves as the DataFrame it wraps;
    in addition persistence (:func:`leapscreen.base.get_state`) stores it as arrays, so a head
    whose ``descriptors`` parameter is a ``DescriptorTable`` can be saved with its model.
    """

    _metadata: list[str] = []

    @property
    def _constructor(self) -> type:
        return DescriptorTable

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON part (IDs, column names, the two axis names) and arrays (the values) of the table."""
        frame = as_descriptor_frame(self, "descriptors")
        names = [None if n is None else str(n) for n in (self.index.name, self.columns.name)]
        params = {
            "index": [str(i) for i in frame.index],
            "columns": [str(c) for c in frame.columns],
            "names": names,
        }
        return params, {"values": frame.to_numpy(dtype=np.float64)}

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> DescriptorTable:
        """The table saved by :meth:`get_state`."""
        values = np.asarray(arrays["values"], dtype=np.float64)
        index_name, columns_name = params.get("names", [None, None])
        index = pd.Index(params["index"], name=index_name)
        return cls(values, index=index, columns=pd.Index(params["columns"], name=columns_name))


def as_descriptor_frame(descriptors: Any, what: str = "descriptors") -> pd.DataFrame:
    """``descriptors`` checked: a DataFrame, unique string IDs, numeric finite values, >= 1 column.

    Returns
    -------
    pandas.DataFrame
        Float64 values, index and columns as strings.
    """
    if not isinstance(descriptors, pd.DataFrame):
        raise InputError(
            f"{what} must be a pandas DataFrame (perturbation ID x numeric columns), got "
            f"{type(descriptors).__name__}",
            fix="pass e.g. leapscreen.data.genesets.read_descriptor_table(path) or "
            "gene_set_descriptors(sets)",
        )
    if descriptors.shape[1] == 0:
        raise InputError(f"{what} has no columns", fix="give every perturbation numeric columns")
    bad = [c for c in descriptors.columns if not pd.api.types.is_numeric_dtype(descriptors[c])]
    if bad:
        raise InputError(
            f"{what} column {str(bad[0])!r} is not numeric ({len(bad)} such column(s))",
            fix="keep only numeric columns (the IDs go in the index)",
        )
    values = descriptors.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        row = descriptors.index[int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])]
        raise InputError(
            f"{what} has missing or infinite values (first in row {str(row)!r})",
            fix="impute them or drop those perturbations (they then get a learned embedding)",
        )
    index = pd.Index([str(i) for i in descriptors.index])
    if index.duplicated().any():
        dup = index[index.duplicated()][0]
        raise InputError(
            f"{what} has the perturbation ID {dup!r} more than once", fix="keep one row per ID"
        )
    return pd.DataFrame(values, index=index, columns=[str(c) for c in descriptors.columns])


def match_descriptors(index: Sequence[str], names: Sequence[str]) -> np.ndarray:
    """Row of ``index`` describing each of ``names`` (-1 where none).

    A name matches the row with the same ID; failing that, the first row whose symbol (see
    :func:`perturbation_symbol`) equals the name's symbol, so ``"A1BG (1)"`` finds ``"A1BG"``
    and ``"A1BG"`` finds ``"A1BG (1)"``.
    """
    exact = {str(v): i for i, v in reversed(list(enumerate(index)))}
    by_symbol: dict[str, int] = {}
    for i, v in reversed(list(enumerate(index))):
        by_symbol[perturbation_symbol(v)] = i
    out = np.full(len(names), -1, dtype=np.int64)
    for j, name in enumerate(names):
        key = str(name)
        if key in exact:
            out[j] = exact[key]
        else:
            out[j] = by_symbol.get(perturbation_symbol(key), -1)
    return out


def membership_pca(
    membership: np.ndarray | sp.spmatrix, n_components: int = 256, random_state: int | None = 0
) -> np.ndarray:
    """PCA scores of the rows (genes) of a binary genes x sets membership matrix.

    The covariance of the sets is formed from the sparse Gram matrix ``M^T M`` (no dense genes x
    sets copy) and its leading eigenvectors taken with LAPACK; above 8,000 sets scikit-learn's
    ARPACK PCA (implicit centring of the sparse matrix) is used instead.

    Parameters
    ----------
    membership : numpy.ndarray or scipy.sparse matrix of shape (n_genes, n_sets)
        ``1`` where the gene belongs to the set.
    n_components : int, default 256
        Components kept; fewer when there are fewer sets or genes (``min(n_genes - 1, n_sets)``).
    random_state : int or None
        Seed of the ARPACK start vector (large collections only).

    Returns
    -------
    numpy.ndarray of shape (n_genes, k)
        The centred rows projected on the first ``k`` principal axes; the sign of each axis is
        fixed so that its largest loading (in absolute value) is positive.
    """
    import scipy.linalg

    M = sp.csr_matrix(membership, dtype=np.float64)
    n, m = M.shape
    k = int(min(n_components, m, max(n - 1, 1)))
    if k < 1 or M.nnz == 0:
        raise InputError("the membership matrix is empty", fix="pass at least one gene set")
    mean = np.asarray(M.mean(axis=0)).ravel()
    if m <= 8000 or k == m:
        gram = (M.T @ M).toarray()
        cov = (gram - n * np.outer(mean, mean)) / max(n - 1, 1)
        values, vectors = scipy.linalg.eigh(cov, subset_by_index=[m - k, m - 1])
        axes = vectors[:, ::-1].T  # (k, m), largest variance first
    else:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=k, svd_solver="arpack", random_state=random_state).fit(M)
        axes = pca.components_
    big = np.argmax(np.abs(axes), axis=1)
    axes = axes * np.sign(axes[np.arange(k), big])[:, None]
    return np.asarray(M @ axes.T) - mean @ axes.T


def gene_set_descriptors(
    sets: Mapping[str, Sequence[str]],
    genes: Sequence[str] | None = None,
    *,
    n_components: int = 256,
    random_state: int | None = 0,
) -> DescriptorTable:
    """PCA descriptors of genes from their membership in gene sets (e.g. MSigDB C2 CGP).

    The PCA is fitted on every gene of the sets (label-free). Genes in no set have no descriptor
    (a pan head gives such perturbations a learned embedding).

    Parameters
    ----------
    sets : mapping of str to sequence of str
        Set name -> member genes (e.g. from :func:`leapscreen.data.genesets.read_gmt`).
    genes : sequence of str, optional
        Genes (or perturbation IDs such as ``"A1BG (1)"``, matched on the symbol) to return;
        default every gene of the sets. IDs whose symbol is in no set are left out.
    n_components : int, default 256
        PCA components (fewer if there are fewer sets).
    random_state : int or None

    Returns
    -------
    DescriptorTable
        Genes (the IDs given, in order) x ``PC1..PCk``.
    """
    if not sets:
        raise InputError("no gene set given", fix="read a GMT or MSigDB JSON file first")
    universe = list(dict.fromkeys(g for members in sets.values() for g in members))
    row = {g: i for i, g in enumerate(universe)}
    rows, cols = [], []
    for j, members in enumerate(sets.values()):
        idx = sorted({row[g] for g in members})
        rows.extend(idx)
        cols.extend([j] * len(idx))
    M = sp.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(universe), len(sets)), dtype=np.float64
    )
    scores = membership_pca(M, n_components=n_components, random_state=random_state)
    columns = [f"PC{i + 1}" for i in range(scores.shape[1])]
    if genes is None:
        return DescriptorTable(scores, index=pd.Index(universe), columns=columns)
    ids = [str(g) for g in dict.fromkeys(genes)]
    found = [(g, row[perturbation_symbol(g)]) for g in ids if perturbation_symbol(g) in row]
    if not found:
        raise InputError(
            f"none of the {len(ids)} genes is in any gene set (e.g. {ids[:3]})",
            fix="check that the gene sets use the same symbols as the perturbations",
        )
    return DescriptorTable(
        scores[[i for _, i in found]], index=pd.Index([g for g, _ in found]), columns=columns
    )


def resolve_descriptors(
    descriptors: Any, names: Sequence[str] | None, n_perturbations: int
) -> tuple[np.ndarray | None, np.ndarray, list[str]]:
    """Descriptor of every training perturbation (column of ``Y``).

    Parameters
    ----------
    descriptors : pandas.DataFrame or None
        Perturbation ID x numeric columns; None: no descriptors (learned embeddings).
    names : sequence of str or None
        The column names of ``Y``. Without them the table must have one row per column, in order.
    n_perturbations : int

    Returns
    -------
    values : numpy.ndarray of shape (p, q) or None
        Descriptor rows (zeros for perturbations without one); None without descriptors.
    found : numpy.ndarray of bool, shape (p,)
        Which perturbations have a descriptor.
    columns : list of str
        The descriptor columns (empty without descriptors).
    """
    if descriptors is None:
        return None, np.zeros(n_perturbations, dtype=bool), []
    frame = as_descriptor_frame(descriptors)
    if names is None:
        if frame.shape[0] != n_perturbations:
            raise InputError(
                f"descriptors has {frame.shape[0]} rows but Y has {n_perturbations} columns, and "
                "no perturbation names were given to match them",
                fix="pass fit(Z, Y, perturbations=<column names of Y>), or one descriptor row "
                "per column of Y, in order",
            )
        return frame.to_numpy(), np.ones(n_perturbations, dtype=bool), list(frame.columns)
    if len(names) != n_perturbations:
        raise InputError(
            f"perturbations has {len(names)} names but Y has {n_perturbations} columns",
            fix="pass the column names of Y, in order",
        )
    pos = match_descriptors(list(frame.index), [str(n) for n in names])
    found = pos >= 0
    values = np.zeros((n_perturbations, frame.shape[1]))
    values[found] = frame.to_numpy()[pos[found]]
    return values, found, list(frame.columns)
