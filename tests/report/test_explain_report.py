"""The explanation page (report/explain.py) on hand-made stability results."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from leapscreen.errors import InputError
from leapscreen.report.explain import (
    Explanation,
    attribution_agreement,
    render_explain_report,
    write_explain_report,
)


@dataclass
class FakeStability:
    """The attributes the page reads of a StabilityResult."""

    penalties: np.ndarray
    thresholds: np.ndarray
    proportions: np.ndarray
    scores: np.ndarray
    penalty_index: int
    threshold: float
    pfer_bound: float
    selected: np.ndarray
    mean_coef: np.ndarray
    n_samples: int


def _fake(features: list[str], seed: int, penalty_index: int = 7, threshold: float = 0.74):
    rng = np.random.default_rng(seed)
    n_pen, n_thr, n_feat = 12, 9, len(features)
    penalties = np.geomspace(1.0, 0.01, n_pen)
    thresholds = np.linspace(0.55, 0.95, n_thr)
    proportions = np.sort(rng.uniform(0, 1, (n_pen, n_feat)), axis=0)
    scores = rng.normal(size=(n_pen, n_thr))
    scores[0, :2] = np.nan  # not allowed pairs
    selected = proportions[penalty_index] >= threshold
    coef = rng.normal(size=n_feat) * selected
    st = FakeStability(
        penalties,
        thresholds,
        proportions,
        scores,
        penalty_index,
        threshold,
        1.37,
        selected,
        coef,
        321,
    )
    table = pd.DataFrame(
        {
            "feature": features,
            "proportion": proportions[penalty_index],
            "sign": np.sign(coef).astype(int),
            "mean_coef": coef,
            "selected": selected,
        }
    ).sort_values("proportion", ascending=False)
    return st, table


def _explanation(name="Nutlin-3a (-)", features=None, seed=0, **kw) -> Explanation:
    features = features or [f"G{i}" for i in range(40)]
    st, table = _fake(features, seed)
    pathways = pd.DataFrame(
        {
            "pathway": ["HALLMARK_P53_PATHWAY", "HALLMARK_APOPTOSIS", "REACTOME_<b>X</b>"],
            "size": [200, 160, 30],
            "overlap": [6, 3, 1],
            "genes": ["MDM2;CDKN1A;G1", "G2;G3;G4", "G5"],
            "p": [1e-8, 1e-3, 0.4],
            "q": [3e-7, 0.015, 0.6],
        }
    )
    contrib = pd.Series(np.linspace(-1, 1, len(features)), index=features)
    return Explanation(
        perturbation=name,
        stability=st,
        features=table,
        fidelity=0.91,
        pathways=pathways,
        contributions=contrib,
        sample="LINE_7",
        prediction=2.5,
        **kw,
    )


def test_page_shows_the_chosen_pair_fidelity_and_bound():
    ex = _explanation()
    html = render_explain_report("explain test", [ex], {"n_subsamples": 100})
    st = ex.stability
    assert "Nutlin-3a (-)" in html
    assert f"{st.penalties[st.penalty_index]:.3f}" in html  # the chosen penalty
    assert "0.74" in html  # the chosen threshold
    assert "1.37" in html  # the MB bound
    assert "0.910" in html  # the fidelity
    assert "321" in html  # samples
    assert "HALLMARK_P53_PATHWAY" in html
    assert "LINE_7" in html
    # every selected feature is listed in the table, none of the unselected ones is marked stable
    top = ex.features[ex.features["selected"]]["feature"]
    for f in top.head(5):
        assert f">{f}<" in html
    assert html.count("<section") == 1
    assert "low fidelity" not in html


def test_page_is_self_contained_and_figures_are_pngs():
    html = render_explain_report("t", [_explanation(), _explanation("Dabrafenib", seed=1)], {})
    # no external resource: every src / href is a data URI or an in-page anchor
    for attr in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert attr.startswith(("data:", "#")), attr
    assert "<script" not in html and "<link" not in html
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(uris) == 8  # proportions, calibration, pathways, contributions x 2
    for u in uris:
        assert base64.b64decode(u)[:8] == b"\x89PNG\r\n\x1a\n"
    assert html.count("<section") == 2
    assert 'href="#p1"' in html  # the table of contents links the second section


def test_names_are_escaped():
    evil = ["<script>alert(1)</script>", "A&B", 'q"uote'] + [f"G{i}" for i in range(20)]
    ex = _explanation(name="<img src=x onerror=alert(1)>", features=evil)
    ex.features.loc[ex.features["feature"] == evil[0], ["proportion", "selected"]] = [1.0, True]
    html = render_explain_report("<title>", [ex], {"note": "<b>bold</b>"})
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "REACTOME_&lt;b&gt;X&lt;/b&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "A&amp;B" in html


def test_low_fidelity_is_flagged():
    ex = _explanation()
    ex.fidelity = 0.2
    html = render_explain_report("t", [ex], {})
    assert "low fidelity" in html


def test_linear_agreement_columns_appear_only_with_attributions():
    ex = _explanation()
    genes = ex.features["feature"].tolist()
    exact = pd.Series(np.arange(len(genes), dtype=float), index=genes)
    ex.attributions = pd.DataFrame({"gene": genes, "coefficient": exact, "coefficient_z": exact})
    ex.agreement = attribution_agreement(exact, ex.features)
    html = render_explain_report("t", [ex], {})
    assert "exact vs stable: Spearman" in html
    assert "exact coefficient (per SD)" in html
    plain = render_explain_report("t", [_explanation()], {})
    assert "exact vs stable: Spearman" not in plain


def test_attribution_agreement_known_answers():
    genes = [f"G{i}" for i in range(30)]
    rng = np.random.default_rng(0)
    exact = pd.Series(rng.normal(size=30), index=genes)
    # proportions a monotone function of |exact|: perfect rank agreement, top-k identical
    prop = np.abs(exact.to_numpy()) / np.abs(exact.to_numpy()).max()
    table = pd.DataFrame(
        {
            "feature": genes,
            "proportion": prop,
            "sign": np.sign(exact.to_numpy()),
            "mean_coef": exact.to_numpy(),
            "selected": prop >= 0.6,
        }
    )
    ag = attribution_agreement(exact, table, k=5)
    assert ag["spearman"] == pytest.approx(1.0)
    assert ag["top_k_overlap"] == 5 and ag["top_k_fraction"] == 1.0
    assert ag["sign_agreement"] == 1.0
    # reversed proportions: rank correlation -1, no overlap of the top 5, against scipy
    table["proportion"] = 1.0 - prop
    ag = attribution_agreement(exact, table, k=5)
    assert ag["spearman"] == pytest.approx(spearmanr(np.abs(exact), 1 - prop).statistic)
    assert ag["spearman"] == pytest.approx(-1.0)
    assert ag["top_k_overlap"] == 0
    # flipped signs of the student: no sign agreement; default k = max(stable, 10)
    table["proportion"] = prop
    table["mean_coef"] = -exact.to_numpy()
    ag = attribution_agreement(exact, table)
    assert ag["sign_agreement"] == 0.0
    assert ag["k"] == max(int((prop >= 0.6).sum()), 10)


def test_write_refuses_to_overwrite_and_writes_atomically(tmp_path):
    path = tmp_path / "explain.html"
    write_explain_report(path, "t", [_explanation()], {})
    first = path.read_text(encoding="utf-8")
    assert first.startswith("<!DOCTYPE html>")
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_explain_report(path, "t", [_explanation()], {})
    assert path.read_text(encoding="utf-8") == first
    write_explain_report(path, "second", [_explanation()], {}, overwrite=True)
    assert "<title>second</title>" in path.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["explain.html"]  # no temp file left


def test_figures_only_for_the_first_perturbations(monkeypatch):
    import leapscreen.report.explain as rep

    monkeypatch.setattr(rep, "MAX_FIGURED", 1)
    html = render_explain_report("t", [_explanation(), _explanation("Dabrafenib", seed=1)], {})
    assert len(re.findall(r'src="data:image/png', html)) == 4  # the first one's four figures
    assert html.count("<section") == 2  # the second still has its numbers and tables
    assert "Figures are drawn for the first 1 perturbations only" in html
