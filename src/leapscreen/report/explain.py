"""One self-contained HTML page of an explanation (``leapscreen explain``).

Per perturbation: the student's fidelity, the chosen (penalty, threshold) and the Meinshausen-Bühlmann
bound, the selection proportions of the top features with the threshold, the calibration heat map,
the top pathways, one sample's features pushing its prediction up or down and, for a linear model,
the agreement of the exact gene-level coefficients with the stable selection. Figures are embedded
as base64 PNG and the CSS inline: the file needs nothing else.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leapscreen._version import __version__
from leapscreen.persist.atomic import refuse_existing, write_text_atomic
from leapscreen.report.explain_figures import (
    plot_calibration,
    plot_contributions,
    plot_pathways,
    plot_selection_proportions,
)
from leapscreen.report.html import _CSS, _esc, _figure_html, _fmt, _kv_table, _provenance_html

__all__ = [
    "Explanation",
    "attribution_agreement",
    "render_explain_report",
    "write_explain_report",
]

logger = logging.getLogger(__name__)

#: Features listed in the per-perturbation table and drawn in the proportion figure.
N_FEATURES = 25
#: Pathways listed and drawn.
N_PATHWAYS = 10
#: Perturbations drawn with figures (the others get their numbers and tables only).
MAX_FIGURED = 24
#: Fidelity below which the page warns that the student explains the model poorly.
LOW_FIDELITY = 0.5

_EXTRA_CSS = """
nav.toc { font-size: 0.9rem; margin: 6px 0 0; }
nav.toc a { color: var(--accent); margin-right: 12px; text-decoration: none; }
section.pert { margin-top: 36px; }
.facts { display: flex; flex-wrap: wrap; gap: 10px; margin: 6px 0 12px; }
.fact { border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; background: #fbfcfd; }
.fact b { display: block; font-size: 1.05rem; }
.fact span { color: var(--muted); font-size: 0.8rem; }
.fact.warn { border-color: #f0b46a; background: #fff7ec; }
.up { color: #c0392b; font-weight: 600; }
.down { color: #2b6cb0; font-weight: 600; }
.figures { align-items: flex-start; }
td.genes { text-align: left; white-space: normal; max-width: 420px; font-size: 0.8rem; }
"""


@dataclass
class Explanation:
    """What the page shows of one perturbation.

    Parameters
    ----------
    perturbation : str
        The perturbation's name.
    stability : object
        A stability-selection result with ``penalties``, ``thresholds``, ``proportions``,
        ``scores``, ``penalty_index``, ``threshold``, ``pfer_bound``, ``selected`` and
        ``n_samples`` (:class:`leapscreen.explain.stability.StabilityResult`).
    features : pd.DataFrame
        The feature table: ``feature, proportion, sign, mean_coef, selected``.
    fidelity : float
        Pearson r of the student with the model on held-out samples.
    feature_kind : str, default "genes"
        What the features are ("genes", "pathways (mean z-score)", ...).
    pathways : pd.DataFrame, optional
        Enrichment of the stable genes: ``pathway, size, overlap, genes, p, q``.
    contributions : pd.Series, optional
        One sample's push per feature (feature -> contribution).
    sample : str, optional
        That sample's ID.
    prediction : float, optional
        The model's prediction for that sample.
    attributions : pd.DataFrame, optional
        Linear models: ``gene, coefficient, coefficient_z`` (exact, from the collapsed model).
    agreement : mapping, optional
        :func:`attribution_agreement` of the exact coefficients with the stable selection.
    """

    perturbation: str
    stability: Any
    features: pd.DataFrame
    fidelity: float
    feature_kind: str = "genes"
    pathways: pd.DataFrame | None = None
    contributions: pd.Series | None = None
    sample: str | None = None
    prediction: float | None = None
    attributions: pd.DataFrame | None = None
    agreement: Mapping[str, Any] | None = field(default=None)

    @property
    def n_selected(self) -> int:
        """Number of stable features."""
        return int(np.asarray(self.features["selected"], bool).sum())


def attribution_agreement(
    exact_z: pd.Series, features: pd.DataFrame, k: int | None = None
) -> dict[str, Any]:
    """How well the stable selection agrees with a linear model's exact gene coefficients.

    Parameters
    ----------
    exact_z : pd.Series
        Gene -> exact coefficient of the collapsed model per standard deviation of the gene (the
        scale the student's features are on).
    features : pd.DataFrame
        The feature table (``feature, proportion, sign, mean_coef, selected``).
    k : int, optional
        Size of the top sets compared; default: the number of stable genes, at least 10 (and at
        most the number of genes).

    Returns
    -------
    dict
        ``spearman`` (rank correlation of |exact coefficient| with the selection proportion over
        all genes), ``k``, ``top_k_overlap`` (genes in both top-k sets: by |exact coefficient|
        and by selection proportion), ``top_k_fraction`` (overlap / k) and ``sign_agreement``
        (fraction of the stable genes whose mean coefficient has the exact coefficient's sign;
        NaN with no stable gene).
    """
    from scipy.stats import spearmanr

    table = features.set_index("feature")
    genes = [g for g in table.index if g in exact_z.index]
    if not genes:
        raise ValueError("the exact coefficients and the feature table share no gene")
    a = exact_z.loc[genes].to_numpy(float)
    prop = table.loc[genes, "proportion"].to_numpy(float)
    selected = table.loc[genes, "selected"].to_numpy(bool)
    n = len(genes)
    if k is None:
        k = max(int(selected.sum()), 10)
    k = int(min(max(k, 1), n))
    if np.ptp(np.abs(a)) == 0 or np.ptp(prop) == 0:
        rho = float("nan")
    else:
        rho = float(spearmanr(np.abs(a), prop).statistic)
    # ties broken by gene order, so the sets are deterministic
    top_exact = set(np.argsort(-np.abs(a), kind="mergesort")[:k])
    top_stable = set(np.argsort(-prop, kind="mergesort")[:k])
    overlap = len(top_exact & top_stable)
    coef = table.loc[genes, "mean_coef"].to_numpy(float)
    if selected.any():
        signs = float(np.mean(np.sign(coef[selected]) == np.sign(a[selected])))
    else:
        signs = float("nan")
    return {
        "spearman": rho,
        "k": k,
        "top_k_overlap": overlap,
        "top_k_fraction": overlap / k,
        "sign_agreement": signs,
    }


# -------------------------------------------------------------------------------------- pieces


def _arrow(sign: Any) -> str:
    s = float(sign)
    if s > 0:
        return '<span class="up">↑</span>'
    if s < 0:
        return '<span class="down">↓</span>'
    return "·"


def _fact(label: str, value: str, warn: bool = False) -> str:
    cls = "fact warn" if warn else "fact"
    return f'<div class="{cls}"><b>{_esc(value)}</b><span>{_esc(label)}</span></div>'


def _table(
    head: Sequence[str], rows: Sequence[Sequence[Any]], name_cols: int = 1, text_last: bool = False
) -> str:
    """An HTML table of already-escaped cells; the first ``name_cols`` columns (and the last with
    ``text_last``) left-aligned. A cell given as ``(class, html)`` gets that CSS class."""
    th = "".join(
        f'<th class="name">{_esc(h)}</th>'
        if i < name_cols or (text_last and i == len(head) - 1)
        else f"<th>{_esc(h)}</th>"
        for i, h in enumerate(head)
    )
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            if isinstance(cell, tuple):  # (class, html)
                cells.append(f'<td class="{cell[0]}">{cell[1]}</td>')
            elif i < name_cols:
                cells.append(f'<td class="name">{cell}</td>')
            else:
                cells.append(f"<td>{cell}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="table-wrap"><table><thead><tr>{th}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _top_features(ex: Explanation) -> list[tuple[str, float]]:
    table = ex.features
    chosen = table[np.asarray(table["selected"], bool)]
    chosen = chosen.sort_values("proportion", ascending=False, kind="mergesort")
    return list(zip(chosen["feature"].astype(str), chosen["sign"].astype(float), strict=True))


def _summary_table(explanations: Sequence[Explanation]) -> str:
    linear = any(ex.agreement is not None for ex in explanations)
    head = [
        "perturbation",
        "fidelity r",
        "stable",
        "penalty",
        "threshold",
        "MB bound",
        "samples",
    ]
    if linear:
        head += ["exact vs stable: Spearman", "top-k overlap"]
    head.append("top stable features")
    rows = []
    for i, ex in enumerate(explanations):
        st = ex.stability
        top = _top_features(ex)[:8]
        top_html = ", ".join(f"{_esc(f)}{_arrow(s)}" for f, s in top) or "–"
        warn = not np.isfinite(ex.fidelity) or ex.fidelity < LOW_FIDELITY
        row: list[Any] = [
            f'<a href="#p{i}">{_esc(ex.perturbation)}</a>',
            (("best" if not warn else "name"), _esc(_fmt(float(ex.fidelity)))),
            _esc(_fmt(ex.n_selected)),
            _esc(_fmt(float(st.penalties[st.penalty_index]))),
            _esc(_fmt(float(st.threshold), 2)),
            _esc(_fmt(float(st.pfer_bound), 2)),
            _esc(_fmt(int(st.n_samples))),
        ]
        if linear:
            ag = ex.agreement or {}
            row += [
                _esc(_fmt(ag.get("spearman"))),
                _esc(f"{ag['top_k_overlap']}/{ag['k']}") if ag else "–",
            ]
        row.append(("genes", top_html))
        rows.append(row)
    return _table(head, rows, text_last=True)


def _features_table(ex: Explanation) -> str:
    table = ex.features.sort_values("proportion", ascending=False, kind="mergesort")
    table = table.head(N_FEATURES)
    exact = None
    if ex.attributions is not None:
        exact = ex.attributions.set_index("gene")["coefficient_z"]
    head = ["feature", "proportion", "sign", "mean coefficient", "selected"]
    if exact is not None:
        head.append("exact coefficient (per SD)")
    rows = []
    for f, p, s, c, sel in zip(
        table["feature"],
        table["proportion"],
        table["sign"],
        table["mean_coef"],
        table["selected"],
        strict=True,
    ):
        row = [
            _esc(f),
            _esc(_fmt(float(p), 2)),
            _arrow(s),
            _esc(_fmt(float(c) + 0.0)),
            _esc(_fmt(bool(sel))),
        ]
        if exact is not None:
            row.append(_esc(_fmt(float(exact[f]))) if f in exact.index else "–")
        rows.append(row)
    return _table(head, rows)


def _pathways_table(pathways: pd.DataFrame) -> str:
    top = pathways[pathways["overlap"] > 0] if "overlap" in pathways.columns else pathways
    top = top.sort_values("q", kind="mergesort").head(N_PATHWAYS)
    rows = []
    for _, r in top.iterrows():
        genes = str(r.get("genes", "") or "").split(";")
        genes = [g for g in genes if g]
        shown = ", ".join(genes[:12]) + (f" (+{len(genes) - 12})" if len(genes) > 12 else "")
        rows.append(
            [
                _esc(r["pathway"]),
                _esc(_fmt(r.get("size"))),
                _esc(_fmt(r.get("overlap"))),
                _esc(_fmt(float(r["p"]))),
                _esc(_fmt(float(r["q"]))),
                ("genes", _esc(shown)),
            ]
        )
    head = ["pathway", "size", "overlap", "p", "q", "stable genes in the set"]
    return _table(head, rows, text_last=True)


def _figures(ex: Explanation) -> list[str]:
    st = ex.stability
    figures = [
        _figure_html(
            "Selection proportions (dashed: the chosen threshold)",
            plot_selection_proportions(ex.features, float(st.threshold), n_top=N_FEATURES),
        ),
        _figure_html(
            "Calibration (★ the chosen pair)",
            plot_calibration(
                st.penalties, st.thresholds, st.scores, int(st.penalty_index), float(st.threshold)
            ),
        ),
    ]
    if ex.pathways is not None and len(ex.pathways):
        figures.append(_figure_html("Top pathways", plot_pathways(ex.pathways, n_top=N_PATHWAYS)))
    if ex.contributions is not None:
        pred = "" if ex.prediction is None else f" (predicted {_fmt(float(ex.prediction))})"
        figures.append(
            _figure_html(
                f"Sample {ex.sample}{pred}: features pushing the prediction up or down",
                plot_contributions(ex.contributions, title=f"Sample {ex.sample}{pred}"),
            )
        )
    return figures


def _section(i: int, ex: Explanation, response: str | None, with_figures: bool = True) -> str:
    st = ex.stability
    penalty = float(st.penalties[st.penalty_index])
    low = not np.isfinite(ex.fidelity) or ex.fidelity < LOW_FIDELITY
    facts = [
        _fact("fidelity (Pearson r, held-out samples)", _fmt(float(ex.fidelity)), warn=low),
        _fact(f"stable {ex.feature_kind}", _fmt(ex.n_selected)),
        _fact("chosen penalty", _fmt(penalty)),
        _fact("chosen threshold", _fmt(float(st.threshold), 2)),
        _fact("MB bound on E[false selections]", _fmt(float(st.pfer_bound), 2)),
        _fact("samples", _fmt(int(st.n_samples))),
    ]
    if ex.agreement is not None:
        ag = ex.agreement
        facts.append(_fact("exact vs stable: Spearman", _fmt(ag.get("spearman"))))
        facts.append(_fact(f"top-{ag['k']} overlap", f"{ag['top_k_overlap']}/{ag['k']}"))
    parts = [
        f'<section class="pert" id="p{i}"><h2>{_esc(ex.perturbation)}</h2>',
        '<div class="facts">' + "".join(facts) + "</div>",
    ]
    if low:
        parts.append(
            '<p><span class="badge warn">low fidelity</span>the sparse student reproduces the '
            "model's predictions poorly on held-out samples: its features explain only part of "
            "what the model does; read them with care.</p>"
        )
    if with_figures:
        parts += ['<div class="figures">', *_figures(ex), "</div>"]
    else:
        parts.append(
            f'<p class="note">Figures are drawn for the first {MAX_FIGURED} perturbations only '
            "(the page stays small); the tables below and the CSV files hold everything.</p>"
        )
    what = f"the predicted {response}" if response else "the predicted response"
    parts.append(
        f'<p class="note">↑ raises {_esc(what)}, ↓ lowers it. Proportions are over random '
        "half-subsamples at the chosen penalty; a feature is stable when its proportion reaches "
        "the threshold.</p>"
    )
    tables = [f"<div><h3>Top {_esc(ex.feature_kind)}</h3>{_features_table(ex)}</div>"]
    if ex.pathways is not None:
        if len(ex.pathways):
            tables.append(
                "<div><h3>Pathways enriched among the stable genes</h3>"
                f"{_pathways_table(ex.pathways)}</div>"
            )
        else:
            tables.append(
                '<div><h3>Pathways</h3><p class="note">No gene set holds enough stable genes to '
                "be tested.</p></div>"
            )
    parts.append('<div class="cols">' + "".join(tables) + "</div>")
    parts.append("</section>")
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------ page


def render_explain_report(
    title: str, explanations: Sequence[Explanation], settings: Mapping[str, Any]
) -> str:
    """The page's HTML text (see :func:`write_explain_report`)."""
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    settings = dict(settings)
    response = settings.get("response")
    kind = explanations[0].feature_kind if explanations else "features"
    n_samples = max((int(ex.stability.n_samples) for ex in explanations), default=0)
    bits = [f"{len(explanations)} perturbation(s)", f"features: {kind}", f"{n_samples:,} samples"]
    if settings.get("n_subsamples") is not None:
        bits.append(f"{settings['n_subsamples']} subsamples")
    toc = "".join(
        f'<a href="#p{i}">{_esc(ex.perturbation)}</a>' for i, ex in enumerate(explanations)
    )
    run_info = {"date (UTC)": now.isoformat(), "leapscreen version": __version__}
    rows = {k: v for k, v in settings.items() if k not in ("provenance", "data_fingerprint")}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title>",
        f"<style>{_CSS}{_EXTRA_CSS}</style></head><body><main>",
        f"<h1>{_esc(title)}</h1>",
        f'<p class="meta">{_esc(" · ".join(bits))} · leapscreen {_esc(__version__)} · '
        f"{_esc(now.strftime('%Y-%m-%d %H:%M UTC'))}</p>",
        f'<nav class="toc">{toc}</nav>' if len(explanations) > 1 else "",
        "<h2>Summary</h2>",
        _summary_table(explanations) if explanations else "<p>Nothing explained.</p>",
        '<p class="note">A sparse linear student is fitted to the model\'s own predictions '
        "(distillation) and its features are chosen by calibrated stability selection. Fidelity "
        "is the student's Pearson correlation with the model on held-out samples: the features "
        "explain the model only as far as the student reproduces it. The MB bound is the "
        "Meinshausen–Bühlmann upper bound on the expected number of falsely selected features at "
        "the chosen (penalty, threshold)."
        + (
            " Exact vs stable: rank agreement (Spearman) of the collapsed linear model's |gene "
            "coefficients| with the selection proportions, and the overlap of their top-k genes."
            if any(ex.agreement is not None for ex in explanations)
            else ""
        )
        + "</p>",
        *[_section(i, ex, response, i < MAX_FIGURED) for i, ex in enumerate(explanations)],
        "<h2>Run</h2>",
        _kv_table(run_info),
        _provenance_html(settings),
        "<h2>Settings</h2>",
        _kv_table(rows) if rows else "<p>None recorded.</p>",
        f"<footer>Generated by leapscreen {_esc(__version__)}. "
        "This file is self-contained.</footer>",
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p)


def write_explain_report(
    path: str | os.PathLike[str],
    title: str,
    explanations: Sequence[Explanation],
    settings: Mapping[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write the explanation page: one self-contained HTML file, atomically.

    Parameters
    ----------
    path : str or Path
        Output file; its folder is created if needed.
    title : str
        Page title.
    explanations : sequence of Explanation
        One per perturbation, in display order.
    settings : dict
        Run settings shown as a table (``response`` names the predicted value;
        ``provenance`` is shown in a "How this was made" section).
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
    text = render_explain_report(title, explanations, settings)
    write_text_atomic(path, text)
    logger.info("wrote explanation page %s (%.1f kB)", path, len(text) / 1e3)
    return path
