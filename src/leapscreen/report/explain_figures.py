"""Figures of an explanation (``leapscreen explain``): stability selection, calibration, pathways.

Built with :class:`matplotlib.figure.Figure` directly (no ``pyplot``, no GUI backend), like the
evaluation figures. Every function takes plain arrays or tables, so it can be drawn from any
stability-selection result.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = [
    "plot_calibration",
    "plot_contributions",
    "plot_pathways",
    "plot_selection_proportions",
]

#: Colours of a feature that raises (up) or lowers (down) the predicted response.
UP, DOWN, NEUTRAL = "#c0392b", "#2b6cb0", "#9aa3ad"
#: Longest feature / pathway label drawn (longer ones are shortened with an ellipsis).
MAX_LABEL = 48


def _short(text: object, limit: int = MAX_LABEL) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sign_colors(signs: Sequence[float]) -> list[str]:
    return [UP if s > 0 else DOWN if s < 0 else NEUTRAL for s in signs]


def plot_selection_proportions(
    features: pd.DataFrame,
    threshold: float,
    n_top: int = 30,
    title: str | None = None,
) -> Figure:
    """Selection proportions of the top features, coloured by sign, with the chosen threshold.

    Parameters
    ----------
    features : pd.DataFrame
        Columns ``feature``, ``proportion`` and ``sign`` (+1 raises the prediction, -1 lowers it).
    threshold : float
        The chosen selection-proportion threshold (a dashed line).
    n_top : int, default 30
        Features shown (highest proportions first).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    top = features.sort_values("proportion", ascending=False, kind="mergesort").head(n_top)
    n = len(top)
    fig = Figure(figsize=(5.6, 1.3 + 0.22 * max(n, 3)))
    ax = fig.add_subplot()
    y = np.arange(n)
    colors = _sign_colors(top["sign"])
    if "selected" in top.columns:  # features below the threshold drawn pale
        colors = [
            c if sel else c + "66"
            for c, sel in zip(colors, top["selected"].astype(bool), strict=True)
        ]
    ax.barh(y, top["proportion"].to_numpy(float), color=colors, height=0.75)
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1.0)
    right = threshold > 0.75  # the label left of the line near the right edge
    ax.text(
        threshold,
        -0.75,
        f"threshold {threshold:.2f} " if right else f" threshold {threshold:.2f}",
        fontsize=8,
        va="center",
        ha="right" if right else "left",
    )
    ax.set_yticks(y)
    ax.set_yticklabels([_short(f) for f in top["feature"]], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(n - 0.4, -1.2)
    ax.set_xlabel("selection proportion over subsamples (at the chosen penalty)")
    handles = [
        ax.bar([0], [0], color=UP, label="raises the prediction"),
        ax.bar([0], [0], color=DOWN, label="lowers the prediction"),
        ax.bar([0], [0], color=NEUTRAL + "66", label="below the threshold (pale)"),
    ]
    ax.legend(handles=handles, loc="lower right", fontsize=8, frameon=False)
    ax.set_title(title or f"Top {n} features by selection proportion", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_calibration(
    penalties: np.ndarray,
    thresholds: np.ndarray,
    scores: np.ndarray,
    penalty_index: int,
    threshold: float,
    title: str | None = None,
) -> Figure:
    """Heat map of the calibrated stability score over penalty x threshold; the chosen pair marked.

    Parameters
    ----------
    penalties : ndarray of shape (L,)
        The penalty grid (rows of ``scores``).
    thresholds : ndarray of shape (T,)
        The selection-proportion thresholds (columns of ``scores``).
    scores : ndarray of shape (L, T)
        The stability score; NaN marks pairs that are not allowed (shown blank).
    penalty_index : int
        Row of the chosen penalty.
    threshold : float
        The chosen threshold (its nearest column is marked).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    penalties = np.asarray(penalties, float)
    thresholds = np.asarray(thresholds, float)
    scores = np.asarray(scores, float)
    fig = Figure(figsize=(5.6, 4.6))
    ax = fig.add_subplot()
    shown = np.ma.masked_invalid(scores)
    extent = (-0.5, len(thresholds) - 0.5, len(penalties) - 0.5, -0.5)
    image = ax.imshow(shown, aspect="auto", cmap="viridis", extent=extent, interpolation="nearest")
    bar = fig.colorbar(image, ax=ax)
    bar.set_label("stability score (higher = more stable)")
    col = int(np.argmin(np.abs(thresholds - threshold))) if len(thresholds) else 0
    ax.scatter(
        [col],
        [penalty_index],
        marker="*",
        s=260,
        color="#ff5a36",
        edgecolors="white",
        linewidths=1.2,
        zorder=3,
        label=f"chosen: penalty {penalties[penalty_index]:.3g}, threshold {threshold:.2f}",
    )
    x_ticks = np.unique(np.linspace(0, len(thresholds) - 1, min(6, len(thresholds))).astype(int))
    ax.set_xticks(x_ticks)
    ax.set_xticklabels([f"{thresholds[i]:.2f}" for i in x_ticks])
    y_ticks = np.unique(np.linspace(0, len(penalties) - 1, min(8, len(penalties))).astype(int))
    ax.set_yticks(y_ticks)
    ax.set_yticklabels([f"{penalties[i]:.3g}" for i in y_ticks])
    ax.set_xlabel("selection-proportion threshold")
    ax.set_ylabel("penalty (descending: sparser at the top)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8, frameon=False)
    ax.set_title(title or "Calibration: stability score over penalty × threshold", fontsize=10)
    fig.tight_layout()
    return fig


def plot_pathways(pathways: pd.DataFrame, n_top: int = 10, title: str | None = None) -> Figure:
    """The top pathways of an enrichment as bars of -log10 q (with the overlap as a label).

    Parameters
    ----------
    pathways : pd.DataFrame
        Columns ``pathway``, ``q`` and, optionally, ``overlap`` and ``size``.
    n_top : int, default 10
        Pathways shown (smallest q first).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    top = pathways
    if "overlap" in top.columns:
        top = top[top["overlap"] > 0]  # a set without any stable gene says nothing
    top = top.sort_values("q", kind="mergesort").head(n_top)
    n = len(top)
    fig = Figure(figsize=(4.6, 1.3 + 0.3 * max(n, 2)))
    ax = fig.add_subplot()
    q = np.clip(top["q"].to_numpy(float), 1e-300, 1.0)
    values = -np.log10(q)
    y = np.arange(n)
    colors = ["#2b6cb0" if v >= -np.log10(0.05) else NEUTRAL for v in values]
    ax.barh(y, values, color=colors, height=0.7)
    ax.axvline(-np.log10(0.05), color="black", linestyle="--", linewidth=0.9, label="q = 0.05")
    if "overlap" in top.columns:
        sizes = top["size"].to_numpy() if "size" in top.columns else [None] * n
        for yi, v, k, s in zip(y, values, top["overlap"].to_numpy(), sizes, strict=True):
            label = f" {int(k)}" + (f"/{int(s)}" if s is not None and pd.notna(s) else "")
            ax.text(v, yi, label, va="center", ha="left", fontsize=7)
    ax.set_yticks(y)
    ax.set_yticklabels([_short(p, 40) for p in top["pathway"]], fontsize=7)
    ax.invert_yaxis()
    top_value = float(values.max()) if n else 1.0
    ax.set_xlim(0.0, max(top_value * 1.18, -np.log10(0.05) * 1.3))
    ax.set_xlabel("−log10 q (Benjamini–Hochberg)\nlabels: stable genes in the set / set size")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    if n == 0:
        ax.text(
            0.5,
            0.5,
            "no gene set holds a stable gene",
            ha="center",
            va="center",
            transform=ax.transAxes,
            fontsize=9,
        )
    ax.set_title(title or f"Top {n} pathways among the stable genes", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_contributions(
    contributions: pd.Series, n_top: int = 10, title: str | None = None
) -> Figure:
    """One sample's features pushing its prediction up (right) or down (left).

    Parameters
    ----------
    contributions : pd.Series
        Feature -> contribution to the sample's prediction (coefficient x standardised value).
    n_top : int, default 10
        Features shown on each side (largest pushes).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    c = contributions.astype(float)
    c = c[np.isfinite(c.to_numpy()) & (c.to_numpy() != 0)]
    up = c[c > 0].sort_values(ascending=False).head(n_top)
    down = c[c < 0].sort_values().head(n_top)
    shown = pd.concat([up, down.iloc[::-1]])
    n = len(shown)
    fig = Figure(figsize=(5.6, 1.3 + 0.24 * max(n, 3)))
    ax = fig.add_subplot()
    y = np.arange(n)
    values = shown.to_numpy(float)
    ax.barh(y, values, color=_sign_colors(values), height=0.72)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([_short(f) for f in shown.index], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("contribution to the prediction (coefficient × standardised value)")
    if n == 0:
        ax.text(
            0.5,
            0.5,
            "no selected feature moves this prediction",
            ha="center",
            va="center",
            transform=ax.transAxes,
            fontsize=9,
        )
    ax.set_title(title or "Features pushing this prediction up or down", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
