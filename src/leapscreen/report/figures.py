"""Figures of evaluation results (matplotlib, no display needed).

Figures are built with :class:`matplotlib.figure.Figure` directly (not ``pyplot``), so they need no
GUI backend, are not tracked by pyplot's global state, and render to PNG with Agg.

Every function takes the long per-perturbation table of the evaluation: one row per
(model, split, perturbation) with metric columns (``spearman``, ``pearson``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = [
    "model_colors",
    "plot_lineage_scores",
    "plot_model_scatter",
    "plot_score_distribution",
]

_LABELS = {
    "spearman": "Spearman r",
    "pearson": "Pearson r",
    "r2": "R²",
    "mse": "MSE",
    "precision_at_k": "precision at k",
}

#: Most points drawn per model in the distribution plot (a seeded subsample beyond that).
MAX_POINTS = 3000


def _label(metric: str) -> str:
    return _LABELS.get(metric, metric)


def _check(df: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"the results table lacks columns {missing}; it has {list(df.columns)}")


def _models(df: pd.DataFrame, models: Sequence[str] | None) -> list[str]:
    present = list(pd.unique(df["model"]))
    if models is None:
        return present
    absent = [m for m in models if m not in present]
    if absent:
        raise ValueError(f"models {absent} are not in the results (present: {present})")
    return list(models)


def model_colors(models: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
    """A stable colour per model (tab10 in the given order, then tab20).

    Parameters
    ----------
    models : sequence of str
        Model names in display order.

    Returns
    -------
    dict
        Model name -> RGBA tuple.
    """
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if len(models) <= 10 else colormaps["tab20"]
    return {m: cmap(i % cmap.N) for i, m in enumerate(models)}


def _per_perturbation(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean over splits for each (model, perturbation), NaN skipped."""
    return df.groupby(["model", "perturbation"], sort=False)[metric].mean().reset_index()


def plot_score_distribution(
    per_split: pd.DataFrame,
    metric: str = "spearman",
    models: Sequence[str] | None = None,
    title: str | None = None,
    random_state: int = 0,
) -> Figure:
    """Distribution of a per-perturbation score by model: box plot plus jittered points.

    Each point is one perturbation, its score averaged over splits.

    Parameters
    ----------
    per_split : pd.DataFrame
        Long table with columns ``model, split, perturbation`` and ``metric``.
    metric : str, default "spearman"
        Metric column to show.
    models : sequence of str, optional
        Models and their order; default: order of first appearance.
    title : str, optional
        Figure title.
    random_state : int, default 0
        Seed of the jitter and of the point subsample (at most ``MAX_POINTS`` per model).

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check(per_split, ["model", "perturbation", metric])
    order = _models(per_split, models)
    per = _per_perturbation(per_split, metric)
    colors = model_colors(order)
    rng = np.random.default_rng(random_state)
    data = [per.loc[per["model"] == m, metric].dropna().to_numpy() for m in order]

    longest = max((len(m) for m in order), default=1)
    fig = Figure(figsize=(max(4.5, 0.9 * len(order) + 1.8), 4.6 + 0.04 * min(longest, 40)))
    ax = fig.add_subplot()
    positions = np.arange(1, len(order) + 1)
    non_empty = [i for i, d in enumerate(data) if len(d)]
    if non_empty:
        ax.boxplot(
            [data[i] for i in non_empty],
            positions=positions[non_empty],
            widths=0.55,
            showfliers=False,
            patch_artist=True,
            boxprops={"facecolor": "none", "linewidth": 1.2},
            medianprops={"color": "black", "linewidth": 1.5},
            whiskerprops={"linewidth": 1.0},
        )
    for i, (m, d) in enumerate(zip(order, data, strict=True)):
        if not len(d):
            continue
        shown = d if len(d) <= MAX_POINTS else rng.choice(d, MAX_POINTS, replace=False)
        x = positions[i] + rng.uniform(-0.2, 0.2, size=len(shown))
        ax.scatter(x, shown, s=6, alpha=0.35, color=colors[m], linewidths=0, rasterized=True)
        ax.scatter(
            [positions[i]],
            [np.mean(d)],
            marker="D",
            s=36,
            color="white",
            edgecolors="black",
            zorder=3,
            label="mean" if i == non_empty[0] else None,
        )
    if metric in ("spearman", "pearson", "r2"):
        ax.axhline(0.0, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xticks(positions)
    rotate = longest > 10 or len(order) > 6
    ax.set_xticklabels(order, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    ax.set_xlim(0.4, len(order) + 0.6)
    ax.set_ylabel(f"{_label(metric)} per perturbation (mean over splits)")
    n_pert = per["perturbation"].nunique()
    ax.set_title(title or f"{_label(metric)} by model ({n_pert:,} perturbations)")
    if non_empty:
        ax.legend(loc="best", frameon=False, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_model_scatter(
    per_split: pd.DataFrame,
    x_model: str,
    y_model: str,
    metric: str = "spearman",
    title: str | None = None,
) -> Figure:
    """Per-perturbation scores of two models against each other (e.g. single representation, LEAP).

    Each point is one perturbation (score averaged over splits); the diagonal marks equal scores and
    the title gives the fraction of perturbations where ``y_model`` scores strictly higher.

    Parameters
    ----------
    per_split : pd.DataFrame
        Long table with columns ``model, split, perturbation`` and ``metric``.
    x_model : str
        Model on the x axis (e.g. the single-representation model).
    y_model : str
        Model on the y axis (e.g. LEAP).
    metric : str, default "spearman"
        Metric column to compare.
    title : str, optional
        Overrides the default title (the fraction is then appended on a second line).

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check(per_split, ["model", "perturbation", metric])
    _models(per_split, [x_model, y_model])
    per = _per_perturbation(per_split, metric)
    wide = per.pivot(index="perturbation", columns="model", values=metric)
    pair = wide[[x_model, y_model]].dropna()
    x = pair[x_model].to_numpy()
    y = pair[y_model].to_numpy()

    fig = Figure(figsize=(5.0, 5.0))
    ax = fig.add_subplot()
    ax.scatter(x, y, s=8, alpha=0.45, color="#1f77b4", linewidths=0, rasterized=True)
    if len(pair):
        lo = float(min(x.min(), y.min()))
        hi = float(max(x.max(), y.max()))
        pad = 0.04 * (hi - lo if hi > lo else 1.0)
        lims = (lo - pad, hi + pad)
        ax.plot(lims, lims, color="black", linewidth=1.0, linestyle="--")
        ax.set_xlim(lims)
        ax.set_ylim(lims)
        above = float(np.mean(y > x))
        summary = (
            f"{y_model} > {x_model} for {above:.1%} of {len(pair):,} perturbations\n"
            f"mean {_label(metric)}: {y.mean():.3f} vs {x.mean():.3f}"
        )
    else:
        summary = "no perturbation scored by both models"
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(f"{x_model}: {_label(metric)}")
    ax.set_ylabel(f"{y_model}: {_label(metric)}")
    ax.set_title(f"{title}\n{summary}" if title else summary, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_lineage_scores(
    per_split: pd.DataFrame,
    metric: str = "spearman",
    models: Sequence[str] | None = None,
    lineage_column: str | None = None,
    title: str | None = None,
) -> Figure:
    """Mean score per held-out lineage and model (leave-one-lineage-out evaluation).

    Horizontal grouped bars: one group per lineage (sorted by the first model's score), one bar per
    model, each the mean over perturbations of that lineage's split.

    Parameters
    ----------
    per_split : pd.DataFrame
        Long table with columns ``model, split, perturbation``, ``metric`` and, optionally,
        a lineage column (the held-out lineage; the split name is used where there is none, with a
        leading ``lineage-`` removed).
    metric : str, default "spearman"
        Metric column.
    models : sequence of str, optional
        Models and their order; default: order of first appearance.
    lineage_column : str, optional
        Column naming the held-out lineage; default: ``lineage``, else ``split_lineage`` where
        present.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check(per_split, ["model", "split", "perturbation", metric])
    order = _models(per_split, models)
    df = per_split[per_split["model"].isin(order)].copy()
    if lineage_column is None:
        lineage_column = next((c for c in ("lineage", "split_lineage") if c in df.columns), None)
    if lineage_column is not None:
        df["_lineage"] = df[lineage_column].astype(str)
    else:
        df["_lineage"] = df["split"].astype(str).str.replace(r"^lineage-", "", regex=True)
    means = df.groupby(["_lineage", "model"], sort=False)[metric].mean().unstack("model")
    means = means.reindex(columns=order)
    means = means.sort_values(order[0], ascending=True, na_position="first")
    lineages = list(means.index)
    colors = model_colors(order)

    n_lin, n_mod = len(lineages), len(order)
    height = 1.4 + n_lin * (0.09 * max(n_mod, 1) + 0.12)
    longest = max((len(s) for s in lineages), default=5)
    fig = Figure(figsize=(7.0 + 0.06 * min(longest, 40), min(height, 30.0)))
    ax = fig.add_subplot()
    bar_h = 0.8 / max(n_mod, 1)
    ypos = np.arange(n_lin)
    for j, m in enumerate(order):
        offs = ((n_mod - 1) / 2 - j) * bar_h  # first model on top of its group
        ax.barh(ypos + offs, means[m].to_numpy(), height=bar_h, color=colors[m], label=m)
    ax.set_yticks(ypos)
    ax.set_yticklabels(lineages)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(f"mean {_label(metric)} over perturbations")
    ax.set_ylabel("held-out lineage")
    ax.set_title(title or f"{_label(metric)} per held-out lineage")
    ax.grid(axis="x", alpha=0.3)
    ax.set_ylim(-0.6, n_lin - 0.4)
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        frameon=False,
        title="model",
        title_fontsize=8,
    )
    fig.tight_layout()
    return fig
