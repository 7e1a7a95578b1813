"""Readers of DepMap files: expression, CRISPR gene effect / dependency, and Model.csv.

Every matrix comes back as a float32 DataFrame, samples x features, indexed by the DepMap
``ModelID`` (``ACH-xxxxxx``) with gene symbols as columns (``SYMBOL (ENTREZ)`` -> ``SYMBOL``).
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from leapscreen.data._io import (
    check_log_scale,
    check_numeric,
    check_unique_index,
    format_examples,
    read_header,
    read_table,
)
from leapscreen.data._values import as_int_ids, check_finite, first_flagged
from leapscreen.errors import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "LONG_LAYOUT_COLUMNS",
    "MODEL_ID_COLUMNS",
    "collapse_gene_columns",
    "expression_from_frame",
    "gene_dependency_from_frame",
    "gene_effect_from_frame",
    "read_depmap_expression",
    "read_depmap_gene_dependency",
    "read_depmap_gene_effect",
    "read_depmap_models",
    "split_gene_label",
]

#: Names of the model ID column in DepMap releases (newest first); an unnamed first column
#: works too.
MODEL_ID_COLUMNS = ("ModelID", "DepMap_ID", "depmap_id")
#: Non-gene columns of the long (newer) expression layout.
LONG_LAYOUT_COLUMNS = (
    "SequencingID",
    "ModelID",
    "IsDefaultEntryForModel",
    "ModelConditionID",
    "IsDefaultEntryForMC",
)
_GENE_LABEL = re.compile(r"^(?P<symbol>.*?\S)\s*\((?P<entrez>[0-9]+)\)$")
_YES = {"yes", "true", "1", "y", "t"}

DuplicateRule = Literal["max_mean", "min_entrez"]


def split_gene_label(label: str) -> tuple[str, int | None]:
    """Split a DepMap gene column ``"SYMBOL (ENTREZ)"`` into ``(SYMBOL, ENTREZ)``.

    A label without an Entrez ID in parentheses is returned unchanged with ``None``.

    Examples
    --------
    >>> split_gene_label("TP53 (7157)")
    ('TP53', 7157)
    >>> split_gene_label("TP53")
    ('TP53', None)
    """
    m = _GENE_LABEL.match(str(label).strip())
    if m is None:
        return str(label).strip(), None
    return m.group("symbol"), int(m.group("entrez"))


def collapse_gene_columns(
    df: pd.DataFrame,
    rule: DuplicateRule = "max_mean",
    *,
    path: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Rename ``SYMBOL (ENTREZ)`` columns to ``SYMBOL`` and keep one column per symbol.

    Parameters
    ----------
    df : pandas.DataFrame
        Samples x gene columns.
    rule : {"max_mean", "min_entrez"}
        Which column survives when several carry the same symbol (different Entrez IDs):
        ``"max_mean"`` keeps the one with the highest mean over samples (for expression: the
        dominant transcript source); ``"min_entrez"`` keeps the lowest Entrez ID (for screens,
        where a mean says nothing of identity). Ties fall to the lower Entrez ID, then to the
        earlier column. The number of dropped columns is logged.
    path : str or PathLike, optional
        The file, for the log message.

    Returns
    -------
    pandas.DataFrame
        The same rows, one column per symbol in the original order of the kept columns.
    """
    parsed = [split_gene_label(c) for c in df.columns]
    symbols = pd.Index([s for s, _ in parsed])
    if not symbols.duplicated().any():
        out = df.copy(deep=False)
        out.columns = symbols
        return out
    entrez = np.array([np.inf if e is None else e for _, e in parsed], dtype=float)
    position = np.arange(len(parsed), dtype=float)
    if rule == "max_mean":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            primary = -np.nanmean(df.to_numpy(dtype=np.float64), axis=0)
        primary = np.where(np.isnan(primary), np.inf, primary)
    elif rule == "min_entrez":
        primary = entrez
    else:
        raise ValueError(f"unknown duplicate rule {rule!r}; use 'max_mean' or 'min_entrez'")
    # lexsort: last key is the primary one
    order = np.lexsort((position, entrez, primary))
    first = ~pd.Index(symbols[order]).duplicated()
    keep = np.sort(order[first])
    dropped = len(parsed) - len(keep)
    examples = pd.unique(symbols[symbols.duplicated()])
    logger.info(
        "%s: %d gene columns share a symbol with another column and were dropped (rule %s; "
        "symbols: %s)",
        path or "matrix",
        dropped,
        rule,
        format_examples(examples),
    )
    out = df.iloc[:, keep].copy(deep=False)
    out.columns = symbols[keep]
    return out


def _is_yes(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype(bool)
    return values.astype(str).str.strip().str.lower().isin(_YES)


def _read_long_expression(path: str | os.PathLike) -> pd.DataFrame:
    df = read_table(path, required=("ModelID", "IsDefaultEntryForModel"), what="expression file")
    keep = _is_yes(df["IsDefaultEntryForModel"])
    if not keep.any():
        raise InputError(
            "no row has IsDefaultEntryForModel == 'Yes' (values found: "
            f"{format_examples(pd.unique(df['IsDefaultEntryForModel'].astype(str)))})",
            path=path,
            column="IsDefaultEntryForModel",
            fix="pass the DepMap expression file with its default-entry flags unchanged",
        )
    n_other = int((~keep).sum())
    df = df.loc[keep]
    meta = [c for c in df.columns if c in LONG_LAYOUT_COLUMNS or c in ("Unnamed: 0", "index")]
    ids = df["ModelID"]
    df = df.drop(columns=meta)
    df.index = pd.Index([None if pd.isna(v) else str(v).strip() for v in ids], name="ModelID")
    check_unique_index(df, path, what="ModelIDs among the default entries")
    df = check_numeric(df, path)
    logger.info(
        "%s: long layout, %d default entries kept, %d others dropped", path, len(df), n_other
    )
    return df.astype(np.float32)


def read_depmap_expression(
    path: str | os.PathLike, *, log_transform: bool = False, check_scale: bool = True
) -> pd.DataFrame:
    """Read a DepMap expression file (samples x genes, log2(TPM+1)).

    Two layouts are recognised from the header:

    * wide (``OmicsExpressionProteinCodingGenesTPMLogp1.csv``, up to 24Q2): the first column holds
      the ModelID (unnamed, ``ModelID`` or ``DepMap_ID``), the others are genes;
    * long (``OmicsExpressionTPMLogp1HumanProteinCodingGenes.csv``, newer): columns
      ``SequencingID, ModelID, IsDefaultEntryForModel, ModelConditionID, IsDefaultEntryForMC``
      then genes; only rows with ``IsDefaultEntryForModel == "Yes"`` are kept, indexed by ModelID.

    Gene columns ``SYMBOL (ENTREZ)`` become ``SYMBOL``. When several columns carry the same
    symbol, the one with the **highest mean expression** is kept (ties: lowest Entrez ID); the
    number dropped is logged (see :func:`collapse_gene_columns`).

    Parameters
    ----------
    path : str or PathLike
        CSV / TSV / parquet, optionally ``.gz``.
    log_transform : bool
        The file holds linear TPM: return log2(TPM + 1). Without it, values that look like TPM
        are an error.
    check_scale : bool
        Check that the values look like log2(TPM+1) (ignored with ``log_transform``). The
        loaders of :mod:`leapscreen.data.loading` check the scale themselves, for every layout.

    Returns
    -------
    pandas.DataFrame
        float32, index ``ModelID`` (str), columns gene symbols.

    Raises
    ------
    InputError
        Missing file or ID column, non-numeric values, duplicated ModelIDs, linear TPM without
        ``log_transform``, negative values with ``log_transform``.
    """
    header = read_header(path)
    if "IsDefaultEntryForModel" in header:
        df = _read_long_expression(path)
    else:
        df = read_table(path, index_col=MODEL_ID_COLUMNS, expected="matrix", what="expression")
    return expression_from_frame(
        df, path=path, log_transform=log_transform, check_scale=check_scale
    )


def expression_from_frame(
    df: pd.DataFrame,
    *,
    path: str | os.PathLike | None = None,
    log_transform: bool = False,
    check_scale: bool = True,
) -> pd.DataFrame:
    """Finish a DepMap expression matrix already read as samples x ``SYMBOL (ENTREZ)`` columns.

    Checks the log scale (or applies log2(x + 1) with ``log_transform``) and keeps one column per
    symbol (highest mean). See :func:`read_depmap_expression`.
    """
    df = df.copy(deep=False)
    df.index.name = "ModelID"
    check_finite(df, path, what="expression")
    values = df.to_numpy()
    if log_transform:
        vmin = np.nanmin(values) if values.size else 0.0
        if vmin < 0:
            raise InputError(
                f"cannot log-transform negative values (minimum {vmin:.4g}); TPM is never negative",
                path=path,
                fix="drop log_transform=True / --log-transform if the file is already logged",
            )
        if values.size and np.nanmax(values) <= 20:
            logger.warning(
                "%s: values are at most %.3g and may already be log2(TPM+1); log-transforming "
                "anyway as asked",
                path,
                float(np.nanmax(values)),
            )
        df = pd.DataFrame(
            np.log2(values.astype(np.float64) + 1.0).astype(np.float32),
            index=df.index,
            columns=df.columns,
        )
    elif check_scale:
        check_log_scale(values, path)
    return collapse_gene_columns(df, "max_mean", path=path)


def _read_screen_matrix(path: str | os.PathLike, what: str) -> pd.DataFrame:
    return read_table(path, index_col=MODEL_ID_COLUMNS, expected="matrix", what=what)


def read_depmap_gene_effect(path: str | os.PathLike) -> pd.DataFrame:
    """Read DepMap ``CRISPRGeneEffect.csv`` (Chronos scores), samples x genes.

    Scores are continuous: about 0 for no effect, about -1 for the median common essential gene.
    Missing scores stay NaN. Gene columns ``SYMBOL (ENTREZ)`` become ``SYMBOL``; a repeated
    symbol keeps the column with the **lowest Entrez ID** (logged).

    Parameters
    ----------
    path : str or PathLike
        CSV / TSV / parquet (optionally ``.gz``); first column the ModelID (named ``ModelID``,
        ``DepMap_ID`` or unnamed).

    Returns
    -------
    pandas.DataFrame
        float32, index ``ModelID``, columns gene symbols.
    """
    return gene_effect_from_frame(_read_screen_matrix(path, "gene effect matrix"), path=path)


def gene_effect_from_frame(
    df: pd.DataFrame, *, path: str | os.PathLike | None = None
) -> pd.DataFrame:
    """Finish a gene effect matrix already read (symbols, one column per symbol)."""
    check_finite(df, path, what="gene effect matrix")
    df = collapse_gene_columns(df, "min_entrez", path=path)
    df.index.name = "ModelID"
    values = df.to_numpy()
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() >= 0 and finite.max() <= 1:
        logger.warning(
            "%s: all values lie in 0..1; this looks like CRISPRGeneDependency (probabilities), "
            "not gene effect",
            path,
        )
    return df


def read_depmap_gene_dependency(path: str | os.PathLike, *, tol: float = 1e-6) -> pd.DataFrame:
    """Read DepMap ``CRISPRGeneDependency.csv`` (probability of dependency), samples x genes.

    Parameters
    ----------
    path : str or PathLike
        Same layout as ``CRISPRGeneEffect.csv``.
    tol : float
        Values may exceed 0..1 by this much (rounding).

    Returns
    -------
    pandas.DataFrame
        float32 in [0, 1], NaN where not measured, index ``ModelID``, columns gene symbols.

    Raises
    ------
    InputError
        A value outside 0..1 (names the column, row and value).
    """
    df = _read_screen_matrix(path, "gene dependency matrix")
    return gene_dependency_from_frame(df, path=path, tol=tol)


def gene_dependency_from_frame(
    df: pd.DataFrame, *, path: str | os.PathLike | None = None, tol: float = 1e-6
) -> pd.DataFrame:
    """Finish a gene dependency matrix already read: 0..1 check, symbols."""
    values = df.to_numpy()
    with np.errstate(invalid="ignore"):
        bad = (values < -tol) | (values > 1 + tol)
    if bad.any():
        n, value, row, column = first_flagged(df, values, bad)
        raise InputError(
            f"value {value:.4g} in row '{row}' is outside 0..1 ({n} such values); a probability "
            "of dependency was expected",
            path=path,
            column=column,
            fix="pass CRISPRGeneDependency.csv here; Chronos scores (CRISPRGeneEffect.csv) "
            "are read with read_depmap_gene_effect",
        )
    df = collapse_gene_columns(df, "min_entrez", path=path)
    df.index.name = "ModelID"
    return df


# Model.csv (and the older sample_info.csv) -> standard column names
_MODEL_ALIASES: dict[str, Sequence[str]] = {
    "lineage": ("OncotreeLineage", "lineage", "disease", "tissue"),
    "primary_disease": ("OncotreePrimaryDisease", "primary_disease", "disease_sutype"),
    "subtype": ("OncotreeSubtype", "disease_sub_subtype"),
    "CellLineName": ("CellLineName", "cell_line_name"),
    "StrippedCellLineName": ("StrippedCellLineName", "stripped_cell_line_name"),
    "CCLEName": ("CCLEName", "CCLE_Name", "CCLE_name", "CCLE Name"),
    "SangerModelID": ("SangerModelID", "Sanger_Model_ID"),
    "COSMICID": ("COSMICID", "COSMIC_ID"),
}


def read_depmap_models(path: str | os.PathLike, *, all_columns: bool = False) -> pd.DataFrame:
    """Read DepMap ``Model.csv`` into sample metadata indexed by ModelID.

    Columns of the result: ``lineage`` (= ``OncotreeLineage``; ``"unknown"`` where empty),
    ``primary_disease`` (= ``OncotreePrimaryDisease``), ``subtype`` (= ``OncotreeSubtype``), and
    the identifiers ``CellLineName``, ``StrippedCellLineName``, ``CCLEName``, ``SangerModelID``,
    ``COSMICID`` (nullable integer). The older ``sample_info.csv`` (``DepMap_ID``,
    ``CCLE_Name``, ``COSMIC_ID``, ``lineage`` / ``disease``) is read the same way.

    Parameters
    ----------
    path : str or PathLike
        The Model.csv file.
    all_columns : bool
        Keep every other column of the file too (after the standard ones).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``ModelID`` (str).
    """
    raw = read_table(path, index_col=MODEL_ID_COLUMNS, what="model table")
    raw.index = pd.Index([None if pd.isna(v) else str(v).strip() for v in raw.index])
    raw.index.name = "ModelID"
    check_unique_index(raw, path, what="ModelIDs")
    out = pd.DataFrame(index=raw.index)
    used: set[str] = set()
    for std, aliases in _MODEL_ALIASES.items():
        src = next((a for a in aliases if a in raw.columns), None)
        if src is None:
            if std in ("lineage", "primary_disease"):
                logger.warning("%s: no column for %s (tried %s)", path, std, ", ".join(aliases))
            continue
        used.add(src)
        col = raw[src]
        if std == "COSMICID":
            col = as_int_ids(col)
        else:
            col = col.map(lambda v: (v.strip() or np.nan) if isinstance(v, str) else v)
        out[std] = col
    if "lineage" in out:
        out["lineage"] = out["lineage"].fillna("unknown").astype(object)
    else:
        out["lineage"] = "unknown"
    if all_columns:
        rest = [c for c in raw.columns if c not in used and c not in out.columns]
        out = out.join(raw[rest])
    return out
