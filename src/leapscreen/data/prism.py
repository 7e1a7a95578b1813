"""Readers of the PRISM Repurposing drug screens (Corsello et al. 2020, DepMap).

* :func:`read_prism_secondary`: the secondary screen's dose-response curve parameters
  (``secondary-screen-dose-response-curve-parameters.csv``), one value per (cell line, compound);
* :func:`read_prism_primary`: the primary screen's log2 fold-change matrix
  (``primary-screen-replicate-collapsed-logfold-change.csv``), cell lines x (compound, dose, screen)
  columns, optionally named with ``primary-screen-replicate-collapsed-treatment-info.csv``.

Samples are indexed by DepMap ``depmap_id`` (= ModelID).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from leapscreen.data._io import (
    check_numeric,
    format_examples,
    read_header,
    read_table,
    require_columns,
)
from leapscreen.data.longtable import long_to_wide
from leapscreen.errors import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "PRISM_SECONDARY_COLUMNS",
    "parse_prism_column",
    "read_prism_primary",
    "looks_like_prism_primary",
    "read_prism_secondary",
    "screen_priority",
]

#: Columns of the PRISM Repurposing secondary dose-response file (19Q4 release).
PRISM_SECONDARY_COLUMNS = (
    "broad_id",
    "depmap_id",
    "ccle_name",
    "screen_id",
    "upper_limit",
    "lower_limit",
    "slope",
    "r2",
    "auc",
    "ec50",
    "ic50",
    "name",
    "moa",
    "target",
    "disease.area",
    "indication",
    "smiles",
    "phase",
    "passed_str_profiling",
    "row_name",
)
_VALUES = {"auc": "auc", "aac": "auc", "ic50": "ic50", "ec50": "ec50"}
_FALSE = {"false", "f", "0", "no"}


def screen_priority(screen_id: object) -> tuple[int, int, str]:
    """Sort key of a PRISM screen (smaller = preferred): HTS before MTS, then the newest.

    ``HTS002`` (the largest secondary screen) comes first, then the MTS screens from the most
    recent (highest number: ``MTS010`` > ``MTS006`` > ``MTS005``), then anything else.
    """
    text = str(screen_id).strip().upper()
    m = re.match(r"^([A-Z]+)(\d+)", text)
    prefix, number = (m.group(1), int(m.group(2))) if m else (text, -1)
    order = {"HTS": 0, "MTS": 1}.get(prefix, 2)
    return order, -number, text


def read_prism_secondary(
    path: str | os.PathLike,
    value: str = "auc",
    screen_id: str | None = None,
    *,
    perturbation_id: str = "broad_id",
    drop_failed_str: bool = True,
    agg: str = "mean",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read PRISM secondary dose-response parameters into samples x compounds.

    Several ``screen_id`` per compound: with ``screen_id`` only that screen is kept. Otherwise
    **one screen per compound** is kept, the first by :func:`screen_priority` among those that
    measured it (``HTS002`` > ``MTS010`` > ``MTS006`` > ``MTS005``): screens differ in dose range
    and plate layout, so their curves are not averaged. Rows of one (cell line, compound, screen)
    that still repeat are combined with ``agg``.

    Parameters
    ----------
    path : str or PathLike
        The CSV (columns ``broad_id, depmap_id, ccle_name, screen_id, upper_limit, lower_limit,
        slope, r2, auc, ec50, ic50, name, moa, target, ...``).
    value : {"auc", "ic50", "ec50", "aac"}
        ``auc`` is the area under the fitted viability curve over the screened doses (0..1 up to
        curve overshoot); ``aac = 1 - auc``; ``ic50`` / ``ec50`` in micromolar.
    screen_id : str, optional
        Keep only this screen.
    perturbation_id : {"broad_id", "name"}
        Column naming the compounds. ``"name"`` merges the broad IDs (salts, batches) of one name
        with ``agg``.
    drop_failed_str : bool
        Drop rows with ``passed_str_profiling == False`` (cell line identity not confirmed).
    agg : str
        Combination of repeated rows.

    Returns
    -------
    responses : pandas.DataFrame
        float32, samples (depmap_id) x compounds.
    compounds : pandas.DataFrame
        Indexed by compound: ``kind`` ("drug"), ``broad_id``, ``name``, ``moa``, ``target``,
        ``screen_id`` (the kept screen), ``screens_available``, ``n_samples``.
    """
    p = Path(path)
    vkey = str(value).lower()
    if vkey not in _VALUES:
        raise InputError(
            f"unknown PRISM response value {value!r}",
            path=p,
            fix="use value='auc', 'aac' (= 1 - auc), 'ic50' or 'ec50'",
        )
    if perturbation_id not in ("broad_id", "name"):
        raise InputError(
            f"perturbation_id must be 'broad_id' or 'name', not {perturbation_id!r}", path=p
        )
    value_col = _VALUES[vkey]
    header = read_header(p)
    needed = ["broad_id", "depmap_id", "screen_id", value_col]
    optional = ["name", "moa", "target", "passed_str_profiling", "ccle_name"]
    df = read_table(
        p,
        required=needed,
        usecols=list(dict.fromkeys(needed + [c for c in optional if c in header])),
        what="PRISM secondary file",
    )
    if perturbation_id == "name":
        require_columns(df, ["name"], p, what="PRISM secondary file")
    df = check_numeric(df, p, [value_col])
    df["screen_id"] = df["screen_id"].astype(str).str.strip()
    if drop_failed_str and "passed_str_profiling" in df.columns:
        failed = df["passed_str_profiling"].astype(str).str.strip().str.lower().isin(_FALSE)
        if failed.any():
            logger.info("%s: %d rows that failed STR profiling dropped", p, int(failed.sum()))
            df = df[~failed]
    available = df.groupby("broad_id")["screen_id"].agg(
        lambda s: ";".join(sorted(pd.unique(s), key=screen_priority))
    )
    if screen_id is not None:
        found = sorted(pd.unique(df["screen_id"]), key=screen_priority)
        df = df[df["screen_id"] == str(screen_id)]
        if df.empty:
            raise InputError(
                f"no row has screen_id == {screen_id!r}; screens found: {format_examples(found)}",
                path=p,
                column="screen_id",
                fix="use one of the screens found, or screen_id=None for one screen per compound",
            )
    else:
        screens = df[["broad_id", "screen_id"]].drop_duplicates()
        screens = screens.assign(_rank=screens["screen_id"].map(screen_priority))
        best = screens.sort_values("_rank", kind="stable").drop_duplicates("broad_id")
        chosen = dict(zip(best["broad_id"], best["screen_id"], strict=True))
        n_multi = int((screens.groupby("broad_id").size() > 1).sum())
        df = df[df["screen_id"] == df["broad_id"].map(chosen)]
        logger.info("%s: %d compounds in several screens, one screen kept each", p, n_multi)
    df = df[df["depmap_id"].notna()].copy()
    df["_sample"] = df["depmap_id"].astype(str).str.strip()
    df["_value"] = 1.0 - df[value_col] if vkey == "aac" else df[value_col]
    pid = perturbation_id
    df = df[df[pid].notna()]
    responses, _ = long_to_wide(df, "_sample", pid, "_value", agg=agg, path=p)
    responses.index.name = "depmap_id"

    groups = df.groupby(pid, sort=False)
    compounds = pd.DataFrame(index=pd.Index(responses.columns, name="perturbation_id"))
    compounds["kind"] = "drug"
    for col in ("broad_id", "name", "moa", "target", "screen_id"):
        if col in df.columns:
            compounds[col] = groups[col].agg(_join_distinct).reindex(compounds.index)
    if pid == "broad_id":
        compounds["screens_available"] = available.reindex(compounds.index)
    compounds["n_samples"] = responses.notna().sum(axis=0).astype(int)
    return responses, compounds


def _join_distinct(values: pd.Series) -> object:
    distinct = [str(v) for v in pd.unique(values.dropna())]
    return ";".join(distinct) if distinct else np.nan


def parse_prism_column(column: str) -> dict[str, object]:
    """Split a primary-screen column ID ``"BRD-A00077618-236-07-6::2.5::HTS"``.

    Returns
    -------
    dict
        ``broad_id``, ``dose`` (float, micromolar; NaN when absent) and ``screen_id``.
    """
    parts = str(column).split("::")
    dose = np.nan
    if len(parts) > 1:
        try:
            dose = float(parts[1])
        except ValueError:
            dose = np.nan
    return {
        "broad_id": parts[0],
        "dose": dose,
        "screen_id": parts[2] if len(parts) > 2 else np.nan,
    }


def read_prism_primary(
    path: str | os.PathLike, treatment_info: str | os.PathLike | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the PRISM primary screen's log2 fold-change matrix.

    Parameters
    ----------
    path : str or PathLike
        Rows = cell lines (first column: ``depmap_id``, or unnamed), columns = treatments
        ``"BRD-...::dose::screen"``, values = replicate-collapsed log2 fold change.
    treatment_info : str or PathLike, optional
        ``primary-screen-replicate-collapsed-treatment-info.csv`` (``column_name, broad_id, name,
        dose, screen_id, moa, target, ...``) to name the columns. Without it the column IDs are
        parsed (broad ID, dose, screen).

    Returns
    -------
    responses : pandas.DataFrame
        float32, depmap_id x treatment column IDs.
    treatments : pandas.DataFrame
        Indexed by column ID: ``kind`` ("drug"), ``broad_id``, ``dose``, ``screen_id`` and, with
        the info file, ``name``, ``moa``, ``target``.
    """
    p = Path(path)
    responses = read_table(
        p,
        index_col=("depmap_id", "ModelID", "row_name"),
        expected="matrix",
        what="PRISM primary log-fold-change matrix",
    )
    responses.index.name = "depmap_id"
    n_brd = sum("::" in str(c) for c in responses.columns)
    if n_brd < responses.shape[1] / 2:
        logger.warning(
            "%s: only %d of %d columns look like PRISM treatment IDs (BRD-...::dose::screen)",
            p,
            n_brd,
            responses.shape[1],
        )
    parsed = pd.DataFrame(
        [parse_prism_column(c) for c in responses.columns],
        index=pd.Index(responses.columns, name="perturbation_id"),
    )
    treatments = pd.DataFrame({"kind": "drug"}, index=parsed.index)
    treatments = treatments.join(parsed)
    if treatment_info is not None:
        info = read_table(
            treatment_info, required=("column_name",), what="PRISM treatment info file"
        )
        info = info.drop_duplicates("column_name").set_index("column_name")
        keep = [c for c in info.columns if c not in ("kind",)]
        info = info[keep].reindex(treatments.index)
        unnamed = int(info.isna().all(axis=1).sum())
        if unnamed:
            logger.info(
                "%s: %d of %d columns are not in the treatment info file",
                treatment_info,
                unnamed,
                len(info),
            )
        for col in info.columns:
            filled = info[col]
            if col in treatments.columns:
                filled = filled.where(filled.notna(), treatments[col])
            treatments[col] = filled
    if "dose" in treatments.columns:
        treatments["dose"] = pd.to_numeric(treatments["dose"], errors="coerce")
    return responses, treatments


def looks_like_prism_primary(columns: list[str]) -> bool:
    """True when most columns (after the first) are PRISM treatment IDs."""
    rest = columns[1:]
    return bool(rest) and sum("::" in str(c) for c in rest) >= len(rest) / 2
