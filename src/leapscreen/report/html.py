"""One self-contained HTML report of an evaluation (figures embedded, no external resources)."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import logging
import os
import shlex
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from leapscreen._version import __version__
from leapscreen.persist.atomic import refuse_existing, write_text_atomic

__all__ = ["figure_to_data_uri", "render_html_report", "write_html_report"]

logger = logging.getLogger(__name__)

#: Metrics in display order; True where higher is better.
_METRIC_ORDER: dict[str, bool] = {
    "spearman": True,
    "pearson": True,
    "r2": True,
    "mse": False,
    "precision_at_k": True,
}
_METRIC_LABELS = {
    "spearman": "Spearman",
    "pearson": "Pearson",
    "r2": "R²",
    "mse": "MSE",
    "precision_at_k": "Precision@k",
    "spearman_minus_lineage-mean": "Spearman − lineage mean (paired)",
    "spearman_minus_ridge": "Spearman − ridge (paired)",
}
#: The per-perturbation CSV is embedded for download only below this size.
MAX_EMBEDDED_CSV_BYTES = 4_000_000
#: Rows of the best/worst perturbation tables.
N_TOP = 10

_CSS = """
:root { --ink:#1d2330; --muted:#5b6472; --line:#d9dde3; --head:#f3f5f8; --accent:#2b6cb0; }
* { box-sizing: border-box; }
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); margin: 0; background: #fafbfc; line-height: 1.45; }
main { max-width: 1260px; margin: 0 auto; padding: 28px 32px 48px; background: #fff;
       min-height: 100vh; box-shadow: 0 0 0 1px var(--line); }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.15rem; margin: 32px 0 10px; padding-bottom: 4px;
     border-bottom: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 18px 0 8px; }
p.meta { color: var(--muted); margin: 0 0 12px; font-size: 0.92rem; }
p.note { color: var(--muted); font-size: 0.85rem; margin: 6px 0 0; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.8rem;
         background: #e8eef7; color: var(--accent); margin-right: 6px; }
.badge.warn { background: #fff3e0; color: #9c4a00; }
.table-wrap { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.88rem; margin: 4px 0; }
th, td { padding: 5px 12px; border-bottom: 1px solid var(--line); text-align: right;
         white-space: nowrap; }
th { background: var(--head); font-weight: 600; }
td.name, th.name { text-align: left; }
td.best { font-weight: 700; background: #eef6ee; }
tr:hover td { background: #f7f9fb; }
table.kv td { text-align: left; white-space: normal; word-break: break-word; }
table.kv td.key { color: var(--muted); width: 240px; white-space: nowrap; }
.sd { color: var(--muted); font-size: 0.8rem; }
.figures { display: flex; flex-wrap: wrap; gap: 18px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 10px;
         background: #fff; max-width: 100%; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 0.85rem; margin-top: 6px; }
.cols { display: flex; flex-wrap: wrap; gap: 28px; }
a.download { color: var(--accent); }
footer { margin-top: 40px; color: var(--muted); font-size: 0.8rem; }
"""


#: PNG resolution of embedded figures; they are displayed at 96 CSS px per inch (sharp on HiDPI).
FIGURE_DPI = 144


def _png(fig: Figure, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def figure_to_data_uri(fig: Figure, dpi: int = FIGURE_DPI) -> str:
    """A matplotlib figure as a ``data:image/png;base64,...`` URI.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (not closed or modified).
    dpi : int, default 144
        Resolution of the PNG.

    Returns
    -------
    str
    """
    return "data:image/png;base64," + base64.b64encode(_png(fig, dpi)).decode("ascii")


def _figure_html(name: str, fig: Figure) -> str:
    data = _png(fig, FIGURE_DPI)
    width, height = struct.unpack(">II", data[16:24])  # PNG IHDR
    css_w = round(width * 96 / FIGURE_DPI)
    css_h = round(height * 96 / FIGURE_DPI)
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (
        f'<figure><img alt="{_esc(name)}" width="{css_w}" height="{css_h}" src="{uri}">'
        f"<figcaption>{_esc(name)}</figcaption></figure>"
    )


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return "–"
        if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}"
    return str(value)


def _fmt_sd(sd: Any, mean: Any) -> str:
    """An sd with the same number of decimals as its mean where the mean is shown in fixed point."""
    mean_text = _fmt(mean)
    if "e" not in mean_text and "." in mean_text and np.isfinite(float(sd)):
        return f"{float(sd):.{len(mean_text.split('.')[1])}f}"
    return _fmt(sd)


def _metrics_in(results: pd.DataFrame) -> list[str]:
    found = [m for m in _METRIC_ORDER if f"{m}_mean" in results.columns]
    extra = [
        c[: -len("_mean")]
        for c in results.columns
        if c.endswith("_mean") and c[: -len("_mean")] not in _METRIC_ORDER
    ]
    return found + extra


def _results_table(results: pd.DataFrame, k: Any = None) -> str:
    """Mean ± sd per model and metric; the best model of each metric in bold."""
    labels = dict(_METRIC_LABELS)
    if k is not None:
        labels["precision_at_k"] = f"Precision@{k}"
    metrics = _metrics_in(results)
    counts = [c for c in results.columns if c.startswith("splits_ahead_of_")] + [
        c for c in ("n_splits", "n_perturbations") if c in results.columns
    ]
    id_cols = [
        c
        for c in results.columns
        if not c.endswith("_mean") and not c.endswith("_sd") and c not in counts
    ]
    best: dict[str, Any] = {}
    for m in metrics:
        col = results[f"{m}_mean"].astype(float)
        if col.notna().any():
            higher = _METRIC_ORDER.get(m, True)
            best[m] = col.max() if higher else col.min()
    head = "".join(f'<th class="name">{_esc(c)}</th>' for c in id_cols)
    head += "".join(
        f"<th>{_esc(labels.get(m, m))}{' ↑' if _METRIC_ORDER.get(m, True) else ' ↓'}</th>"
        for m in metrics
    )
    for c in counts:
        head += f"<th>{_esc(c.removeprefix('n_').replace('_', ' '))}</th>"
    rows = []
    for _, row in results.iterrows():
        cells = "".join(f'<td class="name">{_esc(row[c])}</td>' for c in id_cols)
        for m in metrics:
            mean = row[f"{m}_mean"]
            sd = row.get(f"{m}_sd", np.nan)
            is_best = m in best and pd.notna(mean) and np.isclose(float(mean), float(best[m]))
            sd_html = f' <span class="sd">± {_fmt_sd(sd, mean)}</span>' if pd.notna(sd) else ""
            cls = ' class="best"' if is_best else ""
            cells += f"<td{cls}>{_fmt(mean)}{sd_html}</td>"
        for c in counts:
            cells += f"<td>{_fmt(int(row[c]) if pd.notna(row[c]) else None)}</td>"
        rows.append(f"<tr>{cells}</tr>")
    return (
        '<div class="table-wrap"><table class="results"><thead><tr>'
        + head
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )


def _kv_table(items: Mapping[str, Any]) -> str:
    rows = []
    for key, value in items.items():
        if isinstance(value, Mapping | list | tuple):
            text = json.dumps(value, default=str, ensure_ascii=False)
        else:
            text = _fmt(value)
        rows.append(f'<tr><td class="key">{_esc(key)}</td><td>{_esc(text)}</td></tr>')
    return '<div class="table-wrap"><table class="kv">' + "".join(rows) + "</table></div>"


def _file_line(entry: Mapping[str, Any]) -> str:
    """One input file (or folder of files) on one line: ``path: x, sha256: y, files: a; b``."""
    parts = []
    for key, value in entry.items():
        if key == "option":
            continue
        if isinstance(value, list | tuple) and all(isinstance(v, Mapping) for v in value):
            value = "; ".join(_file_line(v) for v in value)
        elif isinstance(value, Mapping):
            value = _file_line(value)
        parts.append(f"{key}: {_fmt(value)}")
    return ", ".join(parts)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``"a / b"`` keys (lists of dicts indexed by their ``option`` or position);
    a file entry (a dict with ``path`` or ``sha256``) stays on one row."""
    if isinstance(value, Mapping) and ("sha256" in value or "path" in value):
        return {prefix or str(value.get("option", "file")): _file_line(value)}
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix} / {key}" if prefix else str(key)))
        return out
    if isinstance(value, list | tuple) and value and all(isinstance(v, Mapping) for v in value):
        out = {}
        for i, inner in enumerate(value):
            label = str(inner.get("option", i))
            out.update(_flatten(inner, f"{prefix} / {label}" if prefix else label))
        return out
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        if any(word in prefix.lower() for word in ("command", "argv")):
            return {prefix: shlex.join(str(v) for v in value)}
        return {prefix: ", ".join(str(v) for v in value)}
    return {prefix: value}


def _provenance_html(settings: Mapping[str, Any]) -> str:
    """The "How this was made" section: the caller's provenance and the data fingerprint."""
    provenance = settings.get("provenance")
    fingerprint = settings.get("data_fingerprint")
    if provenance is None and fingerprint is None:
        return ""
    rows: dict[str, Any] = {}
    if fingerprint is not None:
        rows["data fingerprint"] = fingerprint
    if isinstance(provenance, Mapping):
        rows.update(_flatten(provenance))
    elif provenance is not None:
        rows["provenance"] = provenance
    note = (
        '<p class="note">The data fingerprint is a digest of the evaluated values (expression, '
        "responses, sample, gene and perturbation IDs): the same fingerprint means the same data; "
        "cached results are reused only for it.</p>"
    )
    return "<h2>How this was made</h2>" + _kv_table(rows) + note


def _per_perturbation_means(per_perturbation: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Perturbations x models table of a metric, averaged over splits."""
    return (
        per_perturbation.groupby(["perturbation", "model"], sort=False)[metric]
        .mean()
        .unstack("model")
    )


def _ranking_model(wide: pd.DataFrame, order: list[str]) -> str:
    """The model whose scores rank the perturbations: a LEAP model if any, else the best on average.

    (The first model is often the mean predictor, whose scores are all 0 and would rank nothing.)
    """
    leap = [m for m in order if str(m).lower().startswith("leap")]
    if leap:
        return leap[0]
    return str(wide[order].mean(axis=0).idxmax())


def _top_tables(per_perturbation: pd.DataFrame, models: list[str], metric: str) -> str:
    if per_perturbation.empty or not {"perturbation", "model", metric} <= set(
        per_perturbation.columns
    ):
        return ""
    wide = _per_perturbation_means(per_perturbation, metric)
    order = [m for m in models if m in wide.columns] or list(wide.columns)
    wide = wide[order]
    lead = _ranking_model(wide, order)
    ranked = wide.dropna(subset=[lead]).sort_values(lead, ascending=False)
    if ranked.empty:
        return ""

    def table(part: pd.DataFrame) -> str:
        head = '<th class="name">perturbation</th>' + "".join(f"<th>{_esc(m)}</th>" for m in order)
        body = "".join(
            f'<tr><td class="name">{_esc(idx)}</td>'
            + "".join(f"<td>{_fmt(v)}</td>" for v in row)
            + "</tr>"
            for idx, row in zip(part.index, part.to_numpy(), strict=True)
        )
        return (
            f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>"
        )

    label = _METRIC_LABELS.get(metric, metric)
    n = min(N_TOP, len(ranked))
    return (
        f"<h2>Perturbations ({label} of {_esc(lead)}, mean over splits)</h2>"
        '<div class="cols">'
        f"<div><h3>Best predicted</h3>{table(ranked.head(n))}</div>"
        f"<div><h3>Worst predicted</h3>{table(ranked.tail(n).iloc[::-1])}</div>"
        "</div>"
    )


def _csv_link(per_perturbation: pd.DataFrame) -> str:
    if per_perturbation.empty or "perturbation" not in per_perturbation.columns:
        return ""
    keys = [c for c in ("model", "perturbation") if c in per_perturbation.columns]
    numeric = [
        c
        for c in per_perturbation.columns
        if c not in keys and c != "split" and pd.api.types.is_numeric_dtype(per_perturbation[c])
    ]
    means = per_perturbation.groupby(keys, sort=False)[numeric].mean().reset_index()
    data = means.to_csv(index=False, float_format="%.5g").encode("utf-8")
    if len(data) > MAX_EMBEDDED_CSV_BYTES:
        return (
            '<p class="note">The per-perturbation table is too large to embed '
            f"({len(data) / 1e6:.1f} MB) and is left out of this file; the evaluation's own "
            "per-perturbation table holds every score.</p>"
        )
    uri = "data:text/csv;base64," + base64.b64encode(data).decode("ascii")
    return (
        f'<p class="note"><a class="download" download="per_perturbation_means.csv" href="{uri}">'
        f"Download per-perturbation scores (mean over splits, {len(means):,} rows, CSV)</a></p>"
    )


def render_html_report(
    title: str,
    results: pd.DataFrame,
    per_perturbation: pd.DataFrame,
    figures: Mapping[str, Figure],
    settings: Mapping[str, Any],
) -> str:
    """The report's HTML text (see :func:`write_html_report`)."""
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    settings = dict(settings)
    transductive = settings.get("transductive")
    if transductive is None:
        badge = '<span class="badge warn">pretraining: transductive not recorded</span>'
    elif transductive:
        badge = (
            '<span class="badge">pretraining: transductive '
            "(representation fitted on train + test expression, never on labels)</span>"
        )
    else:
        badge = '<span class="badge">pretraining: inductive (training samples only)</span>'
    models = [str(m) for m in pd.unique(results["model"])] if "model" in results.columns else []
    n_pert = (
        per_perturbation["perturbation"].nunique()
        if "perturbation" in per_perturbation.columns
        else 0
    )
    n_splits = per_perturbation["split"].nunique() if "split" in per_perturbation.columns else 0
    task = settings.get("task")
    summary_bits = [f"{len(models)} models", f"{n_splits} splits", f"{n_pert:,} perturbations"]
    if task:
        summary_bits.insert(0, f"task: {task}")

    fig_html = [_figure_html(str(name), fig) for name, fig in figures.items()]

    run_info = {
        "date (UTC)": now.isoformat(),
        "leapscreen version": __version__,
        "transductive pretraining": "not recorded" if transductive is None else bool(transductive),
    }
    settings_rows = {
        k: v
        for k, v in settings.items()
        if k not in ("transductive", "provenance", "data_fingerprint")
    }
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>{_esc(title)}</h1>",
        f'<p class="meta">{_esc(" · ".join(summary_bits))} · leapscreen {_esc(__version__)} · '
        f"{_esc(now.strftime('%Y-%m-%d %H:%M UTC'))}</p>",
        f"<p>{badge}</p>",
        "<h2>Results (mean ± sd over splits)</h2>",
        _results_table(results, settings.get("k", settings.get("top_k")))
        if len(results)
        else "<p>No results.</p>",
        '<p class="note">Each metric is computed per perturbation across the test samples, '
        "averaged over perturbations within a split, then summarised as mean ± sd over splits. "
        "Best model per metric in bold; ↑ higher is better, ↓ lower is better.</p>",
    ]
    if fig_html:
        parts += ["<h2>Figures</h2>", '<div class="figures">', *fig_html, "</div>"]
    metric = "spearman" if "spearman" in per_perturbation.columns else None
    if metric is not None:
        parts.append(_top_tables(per_perturbation, models, metric))
    parts.append(_csv_link(per_perturbation))
    parts += [
        "<h2>Run</h2>",
        _kv_table(run_info),
        _provenance_html(settings),
        "<h2>Settings</h2>",
        _kv_table(settings_rows) if settings_rows else "<p>None recorded.</p>",
        f"<footer>Generated by leapscreen {_esc(__version__)}. "
        "This file is self-contained.</footer>",
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p)


def write_html_report(
    path: str | os.PathLike[str],
    title: str,
    results: pd.DataFrame,
    per_perturbation: pd.DataFrame,
    figures: Mapping[str, Figure],
    settings: Mapping[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write one self-contained HTML report (figures as base64 PNG, CSS inline, no external links).

    Parameters
    ----------
    path : str or Path
        Output file; its folder is created if needed.
    title : str
        Report title.
    results : pd.DataFrame
        Aggregated results (:func:`leapscreen.evaluate.aggregate`): ``model``, ``<metric>_mean``,
        ``<metric>_sd``, ``n_splits``, ``n_perturbations``.
    per_perturbation : pd.DataFrame
        Long table with ``model, split, perturbation`` and metric columns; summarised as best/worst
        perturbations and an embedded CSV of means over splits (when small enough).
    figures : dict of str -> Figure
        Figures to embed, captioned by their key.
    settings : dict
        Run settings, shown as a table; ``settings["transductive"]`` (bool) says whether the
        representation was pretrained on the test samples' expression too. Date and leapscreen
        version are added. ``settings["provenance"]`` (a JSON-like dict: input files and their
        sha256, response value, command line, version, ...) and ``settings["data_fingerprint"]``
        are shown in a "How this was made" section.
    overwrite : bool, default False
        Replace an existing file; otherwise an existing file raises :class:`InputError`.

    Returns
    -------
    Path
        The written file.
    """
    path = refuse_existing(
        path,
        overwrite,
        what="report file",
        fix="pass --overwrite (overwrite=True) to replace it, or choose another path",
    )
    text = render_html_report(title, results, per_perturbation, figures, settings)
    write_text_atomic(path, text)
    logger.info("wrote HTML report %s (%.1f kB)", path, len(text) / 1e3)
    return path
