"""Assemble a ScreenData from the files a user points at (expression, responses, sample metadata).

A file's **role comes from the argument it was given through**, never from its values: expression
that is centred or negative is still expression, responses in 0..1 are still responses. Each loader
reads its file with the layouts that role may have (DepMap, GDSC, CCLE 2012, PRISM, long tables,
generic matrices, saved datasets) and refuses, with a message naming the file, a file whose header
clearly belongs to another role (e.g. a GDSC dose-response file given as expression).

When the responses are keyed by other IDs than the expression (e.g. GDSC's SANGER_MODEL_ID or
cell-line names against DepMap ModelIDs) and a DepMap Model.csv is given, response IDs are mapped
to ModelIDs through it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from leapscreen.data._io import (
    check_exists,
    check_header_unique,
    check_unique_index,
    read_header,
    read_table,
    reading_encoding,
    table_format,
)
from leapscreen.data._values import (
    check_expression_values,
    check_finite,
    check_not_constant,
    check_rows,
)
from leapscreen.data.dataset import ScreenData
from leapscreen.data.depmap import (
    MODEL_ID_COLUMNS,
    collapse_gene_columns,
    read_depmap_expression,
    read_depmap_models,
)
from leapscreen.data.ids import IdMapper
from leapscreen.data.longtable import DUPLICATE_RULES
from leapscreen.data.tables import (
    ENTREZ_LABEL,
    LINEAGE_NAMES,
    PERTURBATION_NAMES,
    SAMPLE_NAMES,
    VALUE_NAMES,
    orient,
    pick_column,
    read_long_columns,
    resolve_column,
)
from leapscreen.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["load_expression", "load_responses", "load_samples", "load_screen"]

PathLike = str | os.PathLike


# ----------------------------------------------------------------------------- roles
def _foreign_role(header: list[str]) -> str | None:
    """What a header says the file is when it is clearly not a matrix of one role."""
    cols = set(header)
    if "DRUG_NAME" in cols and {"LN_IC50", "AUC"} & cols:
        return "a GDSC dose-response file (responses)"
    if "Compound" in cols and {"ActArea", "IC50 (uM)"} & cols:
        return "a CCLE 2012 drug data file (responses)"
    if {"broad_id", "depmap_id", "screen_id"} <= cols:
        return "a PRISM secondary screen (responses)"
    if "IsDefaultEntryForModel" in cols:
        return "a DepMap expression file"
    if header and header[0] in MODEL_ID_COLUMNS and {"OncotreeLineage", "lineage"} & cols:
        return "a DepMap Model.csv (sample metadata)"
    return None


def _wrong_role(path: Path, role: str, looks: str, option: str) -> InputError:
    return InputError(
        f"was given as the {role} ({option}) but its header is that of {looks}",
        path=path,
        fix=f"check the order of the files: pass the {role} file through {option}",
    )


def _check_unique_header(p: Path) -> None:
    if table_format(p) == "text":
        check_header_unique(p)


def _is_dataset(p: Path) -> bool:
    return p.is_dir() or p.name.lower().removesuffix(".gz").endswith(".h5ad")


def _read_dataset(p: Path) -> ScreenData:
    from leapscreen.data.tables import read_any

    kind, obj = read_any(p)
    assert kind == "dataset"
    return obj


def _gene_labels_to_symbols(df: pd.DataFrame, path: Path, rule: str) -> pd.DataFrame:
    cols = [str(c) for c in df.columns]
    n_entrez = sum(bool(ENTREZ_LABEL.match(c)) for c in cols)
    if cols and n_entrez >= 0.5 * len(cols):
        return collapse_gene_columns(df, rule, path=path)  # type: ignore[arg-type]
    return df


# ----------------------------------------------------------------------------- expression
def load_expression(
    path: PathLike, *, encoding: str | None = None, log_transform: bool | None = False
) -> pd.DataFrame:
    """Expression (samples x genes) from a DepMap file, any wide matrix, or a saved dataset.

    Layouts: DepMap wide (``SYMBOL (ENTREZ)`` columns; row IDs of any kind: ACH- ModelIDs,
    organoids, PDX, patients) and long (``IsDefaultEntryForModel``), any samples x genes matrix
    (CSV / TSV / parquet, gzip-compressed or not) or a genes x samples one (transposed when its
    index is named ``gene`` or its columns look like sample IDs), ``.h5ad`` / dataset directories.
    ``SYMBOL (ENTREZ)`` columns become ``SYMBOL`` (highest-mean column kept per symbol).

    Parameters
    ----------
    path : str or PathLike
        The expression file.
    encoding : str, optional
        Text encoding of a CSV/TSV file (default UTF-8), e.g. ``"latin-1"``.
    log_transform : bool or None
        ``False``: the values must look like log2(TPM+1) (un-logged TPM is an error, whatever the
        layout). ``True``: the file holds linear TPM / counts for a model that applies its own
        log (``Preprocessor(log_transform=True)``); the values are checked non-negative and
        returned **unchanged**, so that the model (and a saved model at predict time) applies the
        transform. ``None``: no scale check (the caller's fitted model checks the scale against
        the one it was trained on, see :meth:`leapscreen.preprocess.Preprocessor.transform`).

    Returns
    -------
    pandas.DataFrame
        float32 samples x genes.

    Raises
    ------
    InputError
        The file is missing, unreadable, of another role, has no data rows, infinite values,
        or is on the wrong scale. (Expression that varies in no gene is refused by
        :func:`load_screen`, for training; new samples may be identical.)
    """
    p = Path(path)
    with reading_encoding(encoding):
        if _is_dataset(p):
            return _read_dataset(p).expression
        check_exists(p)
        header = read_header(p)
        _check_unique_header(p)
        looks = _foreign_role(header)
        if looks and looks != "a DepMap expression file":
            raise _wrong_role(p, "expression", looks, "--expression")
        if "IsDefaultEntryForModel" in header:
            df = read_depmap_expression(p, log_transform=False, check_scale=False)
        else:
            df = read_table(p, expected="matrix", what="expression", id_what="sample IDs")
            df = orient(df)
            df = _gene_labels_to_symbols(df, p, "max_mean")
    check_expression_values(
        df, p, log_transform=bool(log_transform), check_scale=log_transform is not None
    )
    return df


# ----------------------------------------------------------------------------- responses
def load_responses(
    path: PathLike,
    *,
    value: str | None = None,
    encoding: str | None = None,
    sample_column: str | None = None,
    perturbation_column: str | None = None,
    value_column: str | None = None,
    duplicates: str = "mean",
) -> tuple[pd.DataFrame, pd.DataFrame | None, str | None]:
    """Responses (samples x perturbations) from any response layout.

    Parameters
    ----------
    path : str or PathLike
        DepMap CRISPRGeneEffect / CRISPRGeneDependency (or any wide matrix), a GDSC fitted dose
        response file, CCLE 2012, PRISM secondary / primary, a long (sample, perturbation, value)
        table, or a saved dataset.
    value : str, optional
        What to learn: GDSC ``LN_IC50`` (default), ``AUC`` or ``AAC``; CCLE 2012 ``ActArea``
        (default), ``IC50``, ``LN_IC50`` or ``EC50``; PRISM ``auc`` (default), ``aac``, ``ic50``,
        ``ec50``; for a long table, the value column. Not meaningful for a wide matrix (error).
    encoding : str, optional
        Text encoding (default UTF-8).
    sample_column, perturbation_column, value_column : str, optional
        The columns of a long table (case-insensitive); any one given reads the file as a long
        table. Unset ones are found by their usual names.
    duplicates : {"mean", "median", "first", "error"}
        Rule for repeated (sample, perturbation) measurements.

    Returns
    -------
    responses : pandas.DataFrame
        float32 samples x perturbations.
    perturbations : pandas.DataFrame or None
        Perturbation metadata where the layout has some.
    kind : str or None
        ``"gene"``, ``"drug"`` or ``None`` (unknown).
    """
    p = Path(path)
    if duplicates not in DUPLICATE_RULES:
        raise InputError(
            f"unknown rule {duplicates!r} for repeated measurements",
            fix=f"use --duplicates {' | '.join(DUPLICATE_RULES)}",
        )
    with reading_encoding(encoding):
        resp, perts, kind = _read_responses(
            p, value, sample_column, perturbation_column, value_column, duplicates
        )
    check_rows(resp, p, what="responses")
    check_finite(resp, p, what="responses")
    if not resp.notna().to_numpy().any():
        raise InputError(
            f"the responses hold no measured value: all {resp.size} cells of "
            f"{resp.shape[0]} samples x {resp.shape[1]} perturbations are missing",
            path=p,
            fix="check that this is the right file and column"
            + (" (--value / --value-column)" if value or value_column else ""),
        )
    return resp, perts, kind


def _read_responses(p, value, sample_column, perturbation_column, value_column, duplicates):
    from leapscreen.data.gdsc import read_ccle2012, read_gdsc_detected
    from leapscreen.data.prism import (
        looks_like_prism_primary,
        read_prism_primary,
        read_prism_secondary,
    )

    if _is_dataset(p):
        data = _read_dataset(p)
        if value is not None:
            raise InputError(
                "--value does not apply to a saved dataset (its responses are already chosen)",
                path=p,
                fix="drop --value, or pass the original response file",
            )
        return data.responses, data.perturbations, None
    check_exists(p)
    header = read_header(p)
    _check_unique_header(p)
    cols = set(header)
    if sample_column or perturbation_column or value_column:
        wide = read_long_columns(
            p,
            header,
            sample_column=sample_column,
            perturbation_column=perturbation_column,
            value_column=value_column or value,
            duplicates=duplicates,
        )
        return wide, None, None
    looks = _foreign_role(header)
    if looks in ("a DepMap expression file", "a DepMap Model.csv (sample metadata)"):
        raise _wrong_role(p, "responses", looks, "--responses")
    if "DRUG_NAME" in cols and {"LN_IC50", "AUC"} & cols:
        resp, drugs = read_gdsc_detected(p, header, value=value, agg=duplicates)
        return resp, drugs, "drug"
    if "Compound" in cols and {"ActArea", "IC50 (uM)"} & cols:
        default = "ActArea" if "ActArea" in cols else "IC50"
        resp, drugs = read_ccle2012(p, value=value or default, agg=duplicates)
        return resp, drugs, "drug"
    if {"broad_id", "depmap_id", "screen_id"} <= cols:
        default = next((v for v in ("auc", "ic50", "ec50") if v in cols), "auc")
        resp, drugs = read_prism_secondary(p, value=(value or default).lower(), agg=duplicates)
        return resp, drugs, "drug"
    if looks_like_prism_primary(header):
        _no_value(value, p, "a PRISM primary matrix")
        resp, treatments = read_prism_primary(p)
        return resp, treatments, "drug"
    sample = pick_column(header, SAMPLE_NAMES)
    pert = pick_column(header, PERTURBATION_NAMES)
    if sample and pert and len(header) <= 10:
        val = resolve_column(header, value, VALUE_NAMES)
        if val is None and value is None and len(header) == 3:
            val = next((c for c in header if c not in (sample, pert)), None)
        if val is not None:
            wide = read_long_columns(
                p,
                header,
                sample_column=sample,
                perturbation_column=pert,
                value_column=val,
                duplicates=duplicates,
            )
            return wide, None, None
    _no_value(value, p, "a wide matrix (samples x perturbations)")
    df = read_table(p, expected="matrix", what="responses", id_what="sample IDs")
    df = orient(df)
    df = _gene_labels_to_symbols(df, p, "min_entrez")
    return df, None, ("gene" if _mostly_entrez(header) else None)


def _mostly_entrez(header: list[str]) -> bool:
    cols = header[1:]
    return bool(cols) and sum(bool(ENTREZ_LABEL.match(c)) for c in cols) >= 0.5 * len(cols)


def _no_value(value: str | None, p: Path, what: str) -> None:
    if value is not None:
        raise InputError(
            f"--value {value!r} was given but this is {what}: every cell is already the response",
            path=p,
            fix="drop --value, or for a long table name its columns with --sample-column, "
            "--perturbation-column and --value-column",
        )


# ----------------------------------------------------------------------------- samples
def load_samples(path: PathLike, *, encoding: str | None = None) -> pd.DataFrame:
    """Sample metadata indexed by sample ID, with a ``lineage`` column.

    A DepMap ``Model.csv`` (first column ``ModelID`` / ``DepMap_ID``) is read by
    :func:`~leapscreen.data.depmap.read_depmap_models`; any other table is indexed by its first
    column, ``lineage`` taken from a column named ``OncotreeLineage`` / ``lineage`` / ``tissue``.
    Without a lineage column every sample gets ``"unknown"`` (logged): it is not an error, since
    lineages are only needed by lineage splits.
    """
    p = Path(path)
    with reading_encoding(encoding):
        check_exists(p)
        header = read_header(p)
        looks = _foreign_role(header)
        if looks and "Model.csv" not in looks:
            raise _wrong_role(p, "sample metadata", looks, "--samples")
        if header and header[0] in MODEL_ID_COLUMNS:
            return read_depmap_models(p)
        df = read_table(p, index_col=0, what="sample table")
    if table_format(p) == "text":
        check_header_unique(p)
    check_rows(df, p, what="sample table")
    df.index = pd.Index(
        [None if pd.isna(v) else str(v).strip() for v in df.index], name=str(df.index.name)
    )
    check_unique_index(df, p, what="sample IDs")
    lineage = pick_column([str(c) for c in df.columns], tuple(n.lower() for n in LINEAGE_NAMES))
    if lineage is None:
        logger.warning("%s: no lineage column (tried %s); lineage 'unknown'", p, LINEAGE_NAMES)
        df["lineage"] = "unknown"
    else:
        df["lineage"] = df[lineage].fillna("unknown").astype(str)
    return df


# ----------------------------------------------------------------------------- screen
def load_screen(
    expression: PathLike,
    responses: PathLike,
    samples: PathLike | None = None,
    *,
    min_shared_samples: int = 10,
    value: str | None = None,
    encoding: str | None = None,
    log_transform: bool = False,
    sample_column: str | None = None,
    perturbation_column: str | None = None,
    value_column: str | None = None,
    duplicates: str = "mean",
) -> ScreenData:
    """Read and align expression, responses and (optionally) sample metadata.

    Parameters
    ----------
    expression : path
        Samples x genes; see :func:`load_expression`.
    responses : path
        See :func:`load_responses`.
    samples : path, optional
        DepMap Model.csv or any table with a ``lineage`` column, indexed by sample ID.
    min_shared_samples : int
        Fewest samples with both expression and responses (at least 1).
    value, sample_column, perturbation_column, value_column, duplicates
        What to learn from the responses; see :func:`load_responses`.
    encoding : str, optional
        Text encoding of all three files (default UTF-8).
    log_transform : bool
        The expression is linear TPM / counts for a model that logs it; see
        :func:`load_expression`.

    Returns
    -------
    ScreenData
    """
    if isinstance(min_shared_samples, bool) or int(min_shared_samples) < 1:
        raise InputError(
            f"min_shared_samples must be at least 1, got {min_shared_samples!r}",
            fix="use --min-shared-samples 1 or more (default 10)",
        )
    expr = load_expression(expression, encoding=encoding, log_transform=log_transform)
    check_not_constant(expr, expression, what="expression")  # nothing to learn from
    resp, perturbations, p_kind = load_responses(
        responses,
        value=value,
        encoding=encoding,
        sample_column=sample_column,
        perturbation_column=perturbation_column,
        value_column=value_column,
        duplicates=duplicates,
    )
    meta = None
    if samples is not None:
        meta = load_samples(samples, encoding=encoding)
        if meta.index.name == "ModelID":
            resp = _map_to_model_ids(resp, expr, meta, samples)
    return ScreenData(
        expr,
        resp,
        samples=meta,
        perturbations=perturbations,
        name=Path(responses).stem,
        paths={
            "expression": str(expression),
            "responses": str(responses),
            **({"samples": str(samples)} if samples else {}),
        },
        min_shared_samples=int(min_shared_samples),
        perturbation_kind=p_kind,
    )


def _map_to_model_ids(
    resp: pd.DataFrame, expr: pd.DataFrame, meta: pd.DataFrame, samples: PathLike
) -> pd.DataFrame:
    shared = resp.index.intersection(expr.index)
    if len(shared) >= 0.5 * len(resp.index):
        return resp
    mapper = IdMapper.from_models(meta)
    ids = mapper.to_model_id(resp.index, kind="auto")
    report = ids.attrs.get("report", {})
    keep = ids.notna().to_numpy()
    resp = resp.loc[keep]
    resp.index = pd.Index(ids[keep].astype(str).to_numpy())
    resp = resp.groupby(level=0).mean()
    logger.info("mapped response IDs to ModelIDs through %s: %s", samples, report)
    return resp.astype(np.float32)
