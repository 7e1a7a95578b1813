"""Checks of the values of a matrix once read: finite, not constant, on the expected scale.

Each names the file it came from, so that a problem is reported where it is, not later by the model
("training expression contains infinite values" without a file).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from leapscreen.data._io import check_log_scale, format_examples
from leapscreen.errors import InputError

__all__ = [
    "as_int_ids",
    "check_expression_values",
    "check_finite",
    "check_not_constant",
    "check_rows",
]


def as_int_ids(values: pd.Series) -> pd.Series:
    """Integer IDs (e.g. COSMIC IDs) as nullable Int64; text, non-finite or out-of-range -> <NA>."""
    num = pd.to_numeric(values, errors="coerce").astype(np.float64)
    ok = np.isfinite(num) & (num.abs() < 2.0**62)
    return num.where(ok).round().astype("Int64")


def check_rows(df: pd.DataFrame, path: str | os.PathLike | None, *, what: str) -> None:
    """Raise :class:`InputError` when the matrix has no rows or no columns (e.g. header only)."""
    if df.shape[0] == 0:
        raise InputError(
            f"the {what} has no data rows (only a header)",
            path=path,
            fix=f"pass the {what} file with one row per sample",
        )
    if df.shape[1] == 0:
        raise InputError(
            f"the {what} has no value columns", path=path, fix="check the delimiter and the file"
        )


def first_flagged(
    df: pd.DataFrame, values: np.ndarray, bad: np.ndarray
) -> tuple[int, float, str, str]:
    """How many entries ``bad`` flags, and the first one: (count, value, row label, column label)."""
    r, c = np.argwhere(bad)[0]
    return int(bad.sum()), float(values[r, c]), str(df.index[r]), str(df.columns[c])


def check_finite(df: pd.DataFrame, path: str | os.PathLike | None, *, what: str) -> None:
    """Raise :class:`InputError` naming the first infinite value (row, column) of ``df``."""
    values = df.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isinf(values)
    if bad.any():
        n, value, row, column = first_flagged(df, values, bad)
        raise InputError(
            f"the {what} contains {n} infinite values (first {value} in row '{row}')",
            path=path,
            column=column,
            fix="replace them with an empty field / NA (read as missing) or fix the computation "
            "that produced them",
        )


def check_not_constant(df: pd.DataFrame, path: str | os.PathLike | None, *, what: str) -> None:
    """Raise :class:`InputError` when no column varies across samples (nothing to learn from)."""
    values = df.to_numpy(dtype=np.float64, na_value=np.nan)
    if values.shape[0] < 2:
        return
    with np.errstate(invalid="ignore"):
        lo = np.nanmin(np.where(np.isnan(values), np.inf, values), axis=0)
        hi = np.nanmax(np.where(np.isnan(values), -np.inf, values), axis=0)
    varies = np.isfinite(lo) & np.isfinite(hi) & (hi > lo)
    if not varies.any():
        observed = np.isfinite(lo)
        detail = (
            f"every value is {lo[observed][0]:.4g}"
            if observed.any() and np.all(lo[observed] == lo[observed][0])
            else "every column is constant or missing"
        )
        raise InputError(
            f"the {what} does not vary across its {values.shape[0]} samples ({detail})",
            path=path,
            fix=f"check that this is the right {what} file (a placeholder or a failed export?)",
        )


def check_expression_values(
    df: pd.DataFrame,
    path: str | os.PathLike | None,
    *,
    log_transform: bool = False,
    check_scale: bool = True,
) -> None:
    """The checks every expression file goes through, whatever its layout.

    Rows and columns present, finite values, and the scale: without
    ``log_transform`` the values must look like log2(TPM+1) (:func:`check_log_scale`); with it
    they are linear TPM / counts and must not be negative.
    """
    check_rows(df, path, what="expression")
    check_finite(df, path, what="expression")
    values = df.to_numpy(dtype=np.float64, na_value=np.nan)
    if log_transform:
        with np.errstate(invalid="ignore"):
            neg = values < 0
        if neg.any():
            n, value, row, column = first_flagged(df, values, neg)
            raise InputError(
                f"cannot log-transform negative values ({n} of them, first {value:.4g} in row "
                f"'{row}'); TPM and counts are never negative",
                path=path,
                column=column,
                fix="drop --log-transform (log_transform=True) if the file is already on a log "
                "scale",
            )
    elif check_scale:
        check_log_scale(values, path)


def describe_ids(index: pd.Index) -> str:
    """A few IDs for messages."""
    return format_examples(index, 3)
