"""Long tables (one row per measurement) pivoted to samples x perturbations.

A leaf of ``leapscreen.data``: the generic reader (:mod:`~leapscreen.data.tables`) and the screen
readers (:mod:`~leapscreen.data.gdsc`, :mod:`~leapscreen.data.prism`) all pivot through
:func:`long_to_wide`, so none of them needs to import another.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd

from leapscreen.data._io import check_numeric, format_examples, require_columns
from leapscreen.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["AGGREGATIONS", "DUPLICATE_RULES", "long_to_wide"]

#: How repeated (sample, perturbation) measurements may be combined; ``"error"`` refuses them.
AGGREGATIONS = ("mean", "median", "min", "max", "first", "last", "error")
#: The rules offered on the command line (``--duplicates``).
DUPLICATE_RULES = ("mean", "median", "first", "error")


def long_to_wide(
    df: pd.DataFrame,
    sample_col: str,
    perturbation_col: str,
    value_col: str,
    agg: str = "mean",
    *,
    path: str | os.PathLike | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """Pivot a long table (one row per measurement) to samples x perturbations.

    Parameters
    ----------
    df : pandas.DataFrame
        The long table.
    sample_col, perturbation_col, value_col : str
        Its columns. Rows without a sample or perturbation are dropped (logged).
    agg : {"mean", "median", "min", "max", "first", "last", "error"}
        Combination of repeated (sample, perturbation) rows; missing values are skipped.
        ``"error"`` raises :class:`InputError` naming the repeated pairs.
    path : str or PathLike, optional
        The file, for messages.

    Returns
    -------
    wide : pandas.DataFrame
        float32, samples x perturbations (both sorted), NaN where not measured.
    repeats : pandas.Series
        Per perturbation, the number of samples with more than one measured value.
    """
    if agg not in AGGREGATIONS:
        raise InputError(
            f"unknown aggregation {agg!r} of repeated measurements",
            path=path,
            fix=f"use one of {', '.join(AGGREGATIONS)} (--duplicates)",
        )
    require_columns(df, (sample_col, perturbation_col, value_col), path, what="long table")
    df = check_numeric(df, path, [value_col])
    inf = np.isinf(df[value_col].to_numpy(dtype=np.float64, na_value=np.nan))
    if inf.any():
        row = df.index[int(np.argmax(inf))]
        raise InputError(
            f"{int(inf.sum())} infinite values (first in row '{row}'); a finite response or an "
            "empty field / NA for a missing one was expected",
            path=path,
            column=value_col,
            fix="replace them with an empty field / NA or fix the computation that produced them",
        )
    keys = df[[sample_col, perturbation_col]]
    missing = keys.isna().any(axis=1)
    if missing.any():
        logger.info(
            "%s: %d rows without %s or %s dropped",
            path or "table",
            int(missing.sum()),
            sample_col,
            perturbation_col,
        )
        df = df.loc[~missing]
    samples = df[sample_col].astype(str).str.strip().rename("_s")
    perts = df[perturbation_col].astype(str).str.strip().rename("_p")
    grouped = df[value_col].astype(np.float64).groupby([samples, perts], sort=True)
    if agg == "error":
        sizes = grouped.size()
        repeated = sizes.index[sizes.to_numpy() > 1]
        if len(repeated):
            raise InputError(
                f"{len(repeated)} (sample, perturbation) pairs are measured more than once, e.g. "
                f"{format_examples([f'{s} / {p}' for s, p in repeated[:5]])}",
                path=path,
                column=value_col,
                fix="choose how to combine them: --duplicates mean, median or first "
                "(duplicates='mean' in Python)",
            )
        agg = "first"
    values = grouped.agg(agg)
    counts = grouped.count()
    wide = values.unstack("_p").astype(np.float32)
    wide.index = pd.Index(wide.index.astype(str), name=sample_col)
    wide.columns = pd.Index(wide.columns.astype(str), name=None)
    repeats = (counts > 1).groupby(level="_p").sum().astype(int)
    repeats.index.name = None
    n_rep = int((counts > 1).sum())
    if n_rep:
        logger.info(
            "%s: %d (sample, perturbation) pairs measured more than once, combined by %s",
            path or "table",
            n_rep,
            agg,
        )
    return wide, repeats.reindex(wide.columns).fillna(0).astype(int)
