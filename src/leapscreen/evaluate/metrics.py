"""Per-perturbation scores between observed and predicted responses, and their aggregation.

LEAP's headline metric is computed *per perturbation* (column): the Spearman correlation between
true and predicted responses across the test samples; then the mean over perturbations within a
split, then mean ± sd over splits. A pooled correlation over all (sample, perturbation) pairs is
dominated by the differences between perturbations and is deliberately not offered.

All column-wise metrics are vectorised: missing truths (NaN) are masked per column, ranks are
average ranks among each column's labelled rows (as scipy's ``rankdata(..., nan_policy="omit")``),
and sums run over the masked matrix.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "METRICS",
    "aggregate",
    "pearson_by_column",
    "precision_at_k",
    "rank_columns",
    "score_perturbations",
    "spearman_by_column",
    "split_means",
]

logger = logging.getLogger(__name__)

#: Metric columns of :func:`score_perturbations`; ``True`` where higher is better.
METRICS: dict[str, bool] = {
    "spearman": True,
    "pearson": True,
    "r2": True,
    "mse": False,
    "precision_at_k": True,
}

#: Fewest labelled test samples for which a column gets scores.
MIN_TEST = 3

_ID_COLUMNS = ("model", "split", "perturbation")
_NOT_METRICS = ("n_test", "n_train", "repeat", "fold", "k")


def _as_2d(a: Any, name: str) -> tuple[np.ndarray, bool]:
    arr = np.asarray(a, dtype=float)
    if arr.ndim == 1:
        return arr[:, None], True
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D, got shape {arr.shape}")
    return arr, False


def _prepare(
    y_true: Any, y_pred: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """Arrays, the labelled mask, and the columns whose prediction is missing where truth exists."""
    if isinstance(y_true, pd.DataFrame) and isinstance(y_pred, pd.DataFrame):
        if not (y_true.index.equals(y_pred.index) and y_true.columns.equals(y_pred.columns)):
            missing_rows = y_true.index.difference(y_pred.index)
            missing_cols = y_true.columns.difference(y_pred.columns)
            if len(missing_rows) or len(missing_cols):
                raise ValueError(
                    f"predictions lack {len(missing_rows)} samples and {len(missing_cols)} "
                    "perturbations of the truth"
                )
            y_pred = y_pred.reindex(index=y_true.index, columns=y_true.columns)
    t, vector = _as_2d(y_true, "y_true")
    p, _ = _as_2d(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true has shape {t.shape} but y_pred has shape {p.shape}")
    mask = np.isfinite(t)
    bad_pred = (mask & ~np.isfinite(p)).any(axis=0)
    if bad_pred.any():
        logger.warning(
            "%d perturbation(s) have missing predictions for labelled samples; they score NaN",
            int(bad_pred.sum()),
        )
    return t, p, mask, bad_pred, vector


def _masked_pearson(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Column-wise Pearson r over masked rows.

    Returns NaN where ``x`` (the truth) is constant and 0 where ``y`` (the prediction) is constant.
    """
    n = mask.sum(axis=0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = np.where(mask, x, 0.0)
        ym = np.where(mask, y, 0.0)
        xc = np.where(mask, x - xm.sum(axis=0) / n, 0.0)
        yc = np.where(mask, y - ym.sum(axis=0) / n, 0.0)
        sxx = (xc * xc).sum(axis=0)
        syy = (yc * yc).sum(axis=0)
        sxy = (xc * yc).sum(axis=0)
        r = sxy / np.sqrt(sxx * syy)
    x_const = _constant(x, mask)
    y_const = _constant(y, mask)
    r = np.where(y_const, 0.0, r)
    r = np.where(x_const, np.nan, r)
    return np.clip(r, -1.0, 1.0)


def _constant(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Columns whose masked values are all equal (up to rounding)."""
    hi = np.where(mask, x, -np.inf).max(axis=0, initial=-np.inf)
    lo = np.where(mask, x, np.inf).min(axis=0, initial=np.inf)
    scale = np.maximum(np.abs(hi), np.abs(lo))
    with np.errstate(invalid="ignore"):
        spread = hi - lo
        return ~(spread > 64 * np.finfo(float).eps * np.where(np.isfinite(scale), scale, 0.0))


def _finish(values: np.ndarray, vector: bool) -> np.ndarray | float:
    return float(values[0]) if vector else values


def pearson_by_column(y_true: Any, y_pred: Any) -> np.ndarray | float:
    """Pearson correlation per column between truth and prediction, skipping missing truths.

    Parameters
    ----------
    y_true : array-like, (n,) or (n, p)
        Observed responses; NaN = not measured (skipped in that column).
    y_pred : array-like, same shape
        Predicted responses.

    Returns
    -------
    np.ndarray of shape (p,), or float for 1-D input
        NaN for columns with fewer than 3 labelled samples, constant truth or missing predictions;
        0 where the prediction is constant.
    """
    t, p, mask, bad, vector = _prepare(y_true, y_pred)
    r = _masked_pearson(t, p, mask)
    r[(mask.sum(axis=0) < MIN_TEST) | bad] = np.nan
    return _finish(r, vector)


def spearman_by_column(y_true: Any, y_pred: Any) -> np.ndarray | float:
    """Spearman correlation per column (average ranks for ties), skipping missing truths.

    Parameters, return value and conventions (NaN, constant predictions) are those of
    :func:`pearson_by_column`.
    """
    t, p, mask, bad, vector = _prepare(y_true, y_pred)
    r = _spearman(t, p, mask)
    r[(mask.sum(axis=0) < MIN_TEST) | bad] = np.nan
    return _finish(r, vector)


def rank_columns(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties share their mean rank) within each column; NaN stays NaN.

    Equal to ``scipy.stats.rankdata(x, axis=0, nan_policy="omit")`` (tested), and faster.

    Parameters
    ----------
    x : np.ndarray, (n, p)
        Values; NaN = missing (not ranked).

    Returns
    -------
    np.ndarray, (n, p)
        Ranks among the non-missing values of each column.
    """
    xt = np.ascontiguousarray(np.asarray(x, dtype=float).T)  # one row per column: fast sorts
    n = xt.shape[1]
    order = np.argsort(xt, axis=1)  # NaN sorts last; order within ties does not matter
    xs = np.take_along_axis(xt, order, axis=1)
    pos = np.broadcast_to(np.arange(n), xs.shape)
    starts = np.ones(xs.shape, dtype=bool)
    starts[:, 1:] = xs[:, 1:] != xs[:, :-1]  # NaN != NaN: each NaN alone (and masked below)
    ends = np.ones(xs.shape, dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    first = np.maximum.accumulate(np.where(starts, pos, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, pos, n - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks_sorted = (first + last) / 2.0 + 1.0
    ranks_sorted[np.isnan(xs)] = np.nan
    ranks = np.empty_like(ranks_sorted)
    np.put_along_axis(ranks, order, ranks_sorted, axis=1)
    return ranks.T


def _spearman(t: np.ndarray, p: np.ndarray, mask: np.ndarray) -> np.ndarray:
    p_masked = np.where(mask & np.isfinite(p), p, np.nan)
    rt = rank_columns(np.where(mask, t, np.nan))
    rp = rank_columns(p_masked)
    ok = mask & np.isfinite(rp)
    return _masked_pearson(rt, rp, ok)


def _top_k_weights(x: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    """Per column, the probability that each row is among the k smallest (random tie-breaking).

    Rows strictly below the k-th smallest value get 1, rows tied with it share the remaining slots,
    masked rows get 0. Each valid column sums to k.
    """
    v = np.where(mask, x, np.inf)
    kth = np.partition(v, k - 1, axis=0)[k - 1]
    below = mask & (v < kth)
    tied = mask & (v == kth)
    n_below = below.sum(axis=0)
    n_tied = np.maximum(tied.sum(axis=0), 1)
    share = (k - n_below) / n_tied
    return below.astype(float) + tied * share


def _precision(
    t: np.ndarray, p: np.ndarray, mask: np.ndarray, bad: np.ndarray, k: int, sensitive: str
) -> np.ndarray:
    sign = 1.0 if sensitive == "low" else -1.0
    n = mask.sum(axis=0)
    valid = (n > k) & (n >= MIN_TEST) & ~bad
    out = np.full(t.shape[1], np.nan)
    if valid.any():
        m = mask[:, valid]
        tv = np.where(m, sign * t[:, valid], np.inf)
        kth_true = np.partition(tv, k - 1, axis=0)[k - 1]
        truly_top = m & (tv <= kth_true)  # ties with the k-th truth all count as truly top-k
        w_pred = _top_k_weights(sign * np.where(m, p[:, valid], 0.0), m, k)
        out[valid] = (w_pred * truly_top).sum(axis=0) / k
    return out


def precision_at_k(y_true: Any, y_pred: Any, k: int, sensitive: str = "low") -> np.ndarray | float:
    """Fraction of the top-k predicted most sensitive samples that are truly among the top-k.

    Computed per perturbation (column) over its labelled samples. Ties in the truth: every sample
    tied with the k-th most sensitive true value counts as truly top-k (so discrete labels work).
    Ties in the prediction: samples tied at the k-th predicted place share the remaining slots (the
    expected value under random tie-breaking), so a constant prediction scores chance, about k / n,
    rather than an arbitrary value.

    Parameters
    ----------
    y_true : array-like, (n,) or (n, p)
        Observed responses; NaN = not measured.
    y_pred : array-like, same shape
        Predicted responses.
    k : int
        Number of top samples (>= 1).
    sensitive : {"low", "high"}, default "low"
        Which end is "most sensitive": ``"low"`` for LN_IC50 or gene effect (Chronos), ``"high"``
        for AAC or dependency probability.

    Returns
    -------
    np.ndarray of shape (p,), or float for 1-D input
        Values in [0, 1]; NaN for columns with ``k`` or fewer labelled samples (or fewer than 3), or
        missing predictions.
    """
    if sensitive not in ("low", "high"):
        raise ValueError(f"sensitive must be 'low' or 'high', got {sensitive!r}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    t, p, mask, bad, vector = _prepare(y_true, y_pred)
    out = _precision(t, p, mask, bad, k, sensitive)
    return _finish(out, vector)


def score_perturbations(
    Y_true: Any,
    Y_pred: Any,
    perturbation_ids: Sequence[Any] | None = None,
    k: int = 10,
    sensitive: str = "low",
) -> pd.DataFrame:
    """All per-perturbation scores of one prediction on one test set.

    Parameters
    ----------
    Y_true : array-like or pd.DataFrame, (n_test, p)
        Observed responses of the test samples; NaN = not measured (skipped per column).
    Y_pred : array-like or pd.DataFrame, (n_test, p)
        Predictions. When both are DataFrames, ``Y_pred`` is aligned to ``Y_true``'s labels.
    perturbation_ids : sequence, optional
        One ID per column; defaults to ``Y_true.columns`` for a DataFrame, else 0..p-1.
    k : int, default 10
        ``k`` of :func:`precision_at_k`.
    sensitive : {"low", "high"}, default "low"
        Sensitive end for :func:`precision_at_k`.

    Returns
    -------
    pd.DataFrame
        One row per perturbation with columns ``perturbation, spearman, pearson, mse, r2,
        precision_at_k, n_test``. Correlations are 0 for a constant prediction; correlations and R²
        (``1 - SSE/SST`` around the test-set mean) are NaN for constant truth; every metric is NaN
        with fewer than 3 labelled test samples (``n_test`` counts them) or missing predictions.
    """
    if perturbation_ids is None:
        if isinstance(Y_true, pd.DataFrame):
            perturbation_ids = list(Y_true.columns)
        else:
            perturbation_ids = list(range(_as_2d(Y_true, "Y_true")[0].shape[1]))
    t, p, mask, bad, _ = _prepare(Y_true, Y_pred)
    if len(perturbation_ids) != t.shape[1]:
        raise ValueError(
            f"{len(perturbation_ids)} perturbation IDs for {t.shape[1]} columns of responses"
        )
    n = mask.sum(axis=0)
    too_few = (n < MIN_TEST) | bad
    with np.errstate(invalid="ignore", divide="ignore"):
        resid = np.where(mask, p - t, 0.0)
        sse = (resid * resid).sum(axis=0)
        mse = sse / n
        tm = np.where(mask, t, 0.0).sum(axis=0) / n
        tc = np.where(mask, t - tm, 0.0)
        sst = (tc * tc).sum(axis=0)
        r2 = 1.0 - sse / sst
    r2 = np.where(_constant(t, mask), np.nan, r2)
    pearson = _masked_pearson(t, p, mask)
    spearman = _spearman(t, p, mask)
    for arr in (pearson, spearman, mse, r2):
        arr[too_few] = np.nan
    if sensitive not in ("low", "high"):
        raise ValueError(f"sensitive must be 'low' or 'high', got {sensitive!r}")
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    prec = _precision(t, p, mask, bad, int(k), sensitive)
    return pd.DataFrame(
        {
            "perturbation": list(perturbation_ids),
            "spearman": spearman,
            "pearson": pearson,
            "mse": mse,
            "r2": r2,
            "precision_at_k": prec,
            "n_test": n.astype(np.int64),
        }
    )


def _metric_columns(
    df: pd.DataFrame, metrics: Sequence[str] | None, keys: Sequence[str]
) -> list[str]:
    """The metric columns: as given; else the known metrics present; else numeric non-ID columns."""
    if metrics is not None:
        missing = [m for m in metrics if m not in df.columns]
        if missing:
            raise ValueError(f"metric columns not in the table: {missing}")
        return list(metrics)
    known = [m for m in METRICS if m in df.columns]
    if known:
        return known
    skip = set(keys) | set(_ID_COLUMNS) | set(_NOT_METRICS)
    return [
        c
        for c in df.columns
        if c not in skip
        and not c.startswith(("split_", "n_"))
        and pd.api.types.is_numeric_dtype(df[c])
        and not pd.api.types.is_bool_dtype(df[c])
    ]


def split_means(
    per_split: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    by: Sequence[str] = ("model",),
) -> pd.DataFrame:
    """Mean of each metric over perturbations, per (model, split).

    Parameters
    ----------
    per_split : pd.DataFrame
        Long table with columns ``model, split, perturbation`` and metric columns (NaN skipped).
    metrics : sequence of str, optional
        Metric columns; default: those of :data:`METRICS` present (else every numeric column
        except IDs, counts and ``split_*`` columns).
    by : sequence of str, default ("model",)
        Grouping columns besides ``split`` (e.g. ``("task", "model")``).

    Returns
    -------
    pd.DataFrame
        One row per (by..., split): the metric means and ``n_perturbations`` (those with a finite
        value of the first metric). Other constant-per-split columns (e.g. ``lineage``) are kept.
    """
    keys = [*by, "split"]
    missing = [c for c in [*keys, "perturbation"] if c not in per_split.columns]
    if missing:
        raise ValueError(f"per-split table lacks columns {missing}")
    cols = _metric_columns(per_split, metrics, keys)
    grouped = per_split.groupby(keys, sort=False, dropna=False)
    out = grouped[cols].mean()
    head = cols[0] if cols else None
    if head is not None:
        out["n_perturbations"] = grouped[head].count()
    else:
        out["n_perturbations"] = grouped["perturbation"].nunique()
    extra = [
        c
        for c in per_split.columns
        if c not in keys and c not in cols and c != "perturbation" and c not in _NOT_METRICS
    ]
    for c in extra:
        first = grouped[c].first()
        if (grouped[c].nunique(dropna=False) <= 1).all():
            out[c] = first
    return out.reset_index()


def aggregate(
    per_split: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    by: Sequence[str] = ("model",),
) -> pd.DataFrame:
    """Mean over perturbations within each split, then mean ± sd over splits, per model.

    Parameters
    ----------
    per_split : pd.DataFrame
        Long table with columns ``model, split, perturbation`` and metric columns (e.g. the output
        of :func:`score_perturbations` with ``model`` and ``split`` added). NaN scores are skipped.
    metrics : sequence of str, optional
        Metric columns; default: as in :func:`split_means`.
    by : sequence of str, default ("model",)
        Grouping columns (rows of the result), in order of first appearance.

    Returns
    -------
    pd.DataFrame
        One row per model: ``<metric>_mean`` and ``<metric>_sd`` (sample sd over splits, ddof=1; NaN
        with a single split) for each metric, ``n_splits``, and ``n_perturbations`` (distinct
        perturbations with at least one finite score).
    """
    keys = list(by)
    cols = _metric_columns(per_split, metrics, [*keys, "split"])
    means = split_means(per_split, cols, by=keys)
    grouped = means.groupby(keys, sort=False, dropna=False)
    out = pd.DataFrame(index=grouped.size().index)
    for c in cols:
        out[f"{c}_mean"] = grouped[c].mean()
        out[f"{c}_sd"] = grouped[c].std(ddof=1)
    out["n_splits"] = grouped["split"].nunique()
    if cols:
        finite = per_split[cols].notna().any(axis=1)
        n_pert = per_split[finite].groupby(keys, sort=False, dropna=False)["perturbation"].nunique()
    else:
        n_pert = per_split.groupby(keys, sort=False, dropna=False)["perturbation"].nunique()
    out["n_perturbations"] = n_pert.reindex(out.index).fillna(0).astype(np.int64)
    return out.reset_index()


def paired_difference(
    per_split: pd.DataFrame, baseline: str, metric: str = "spearman"
) -> pd.DataFrame:
    """Each model's split mean of ``metric`` minus the baseline's on the same split.

    Parameters
    ----------
    per_split : pd.DataFrame
        Long table with ``model, split, perturbation`` and ``metric`` (as for :func:`aggregate`).
    baseline : str
        The model to subtract (e.g. "lineage-mean", the score normalised against what the tissue of
        origin alone predicts, or "ridge").
    metric : str
        The metric column.

    Returns
    -------
    pd.DataFrame
        One row per model: ``{metric}_minus_{baseline}_mean`` / ``_sd`` over the splits both ran,
        and ``splits_ahead_of_{baseline}`` (splits where the model scores higher). Empty when the
        baseline is absent.
    """
    means = split_means(per_split, [metric])
    wide = means.pivot_table(index="split", columns="model", values=metric, sort=False)
    if baseline not in wide.columns:
        return pd.DataFrame(columns=["model"])
    diff = wide.sub(wide[baseline], axis=0)
    name = f"{metric}_minus_{baseline}"
    out = pd.DataFrame(
        {
            "model": diff.columns,
            f"{name}_mean": diff.mean().to_numpy(),
            f"{name}_sd": diff.std(ddof=1).to_numpy(),
            f"splits_ahead_of_{baseline}": (diff > 0).sum().to_numpy(),
        }
    )
    return out
