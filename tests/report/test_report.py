"""Figures and the self-contained HTML report."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from leapscreen import __version__
from leapscreen.errors import InputError
from leapscreen.evaluate import aggregate
from leapscreen.report import (
    plot_lineage_scores,
    plot_model_scatter,
    plot_score_distribution,
    write_html_report,
)

MODELS = ["LEAP", "single <rep>", "mean predictor"]
LINEAGES = ["Lung", "CNS/Brain", "Esophagus/Stomach", "Skin"]


@pytest.fixture(scope="module")
def per_split() -> pd.DataFrame:
    """Fake but plausible long table: 3 models x 4 lineage splits x 30 perturbations."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.0, 0.6, size=30)
    rows = []
    for lineage in LINEAGES:
        for m, model in enumerate(MODELS):
            shift = [0.08, 0.0, None][m]
            for j in range(30):
                if shift is None:
                    rho = 0.0
                else:
                    rho = base[j] + shift + rng.normal(scale=0.05)
                rows.append(
                    {
                        "model": model,
                        "split": "lineage-" + lineage.replace("/", "_"),
                        "perturbation": f"GENE{j}",
                        "spearman": rho,
                        "pearson": rho * 0.9,
                        "mse": 1.0 - rho / 2,
                        "r2": rho / 3,
                        "precision_at_k": 0.1 + rho / 2,
                        "n_test": 25,
                        "split_lineage": lineage,
                    }
                )
    return pd.DataFrame(rows)


def _tick_labels(ax, axis="x"):
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in ticks]


def test_score_distribution(per_split):
    fig = plot_score_distribution(per_split)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert _tick_labels(ax) == MODELS
    assert "30 perturbations" in ax.get_title()
    fig2 = plot_score_distribution(per_split, models=["mean predictor", "LEAP"])
    assert _tick_labels(fig2.axes[0]) == ["mean predictor", "LEAP"]
    with pytest.raises(ValueError, match="not in the results"):
        plot_score_distribution(per_split, models=["nope"])


def test_model_scatter_fraction_above(per_split):
    fig = plot_model_scatter(per_split, "single <rep>", "LEAP")
    per = per_split.groupby(["model", "perturbation"])["spearman"].mean().unstack("model")
    frac = float(np.mean(per["LEAP"] > per["single <rep>"]))
    title = fig.axes[0].get_title()
    assert f"{frac:.1%}" in title and "of 30 perturbations" in title
    # the diagonal is drawn
    lines = fig.axes[0].get_lines()
    assert any(np.allclose(line.get_xdata(), line.get_ydata()) for line in lines)


def test_lineage_scores(per_split):
    fig = plot_lineage_scores(per_split)
    ax = fig.axes[0]
    labels = _tick_labels(ax, "y")
    assert sorted(labels) == sorted(LINEAGES)  # original names, "/" included
    means = per_split[per_split["model"] == "LEAP"].groupby("split_lineage")["spearman"].mean()
    assert labels == list(means.sort_values().index)  # sorted by the first model
    assert len(ax.patches) == len(LINEAGES) * len(MODELS)
    # without a lineage column the split names are used
    fig2 = plot_lineage_scores(per_split.drop(columns="split_lineage"))
    assert "CNS_Brain" in _tick_labels(fig2.axes[0], "y")


def make_report(path: Path, per_split: pd.DataFrame, overwrite: bool = False) -> Path:
    results = aggregate(per_split)
    figures = {
        "Spearman by model": plot_score_distribution(per_split),
        "LEAP vs single representation": plot_model_scatter(per_split, "single <rep>", "LEAP"),
        "Spearman per held-out lineage": plot_lineage_scores(per_split),
    }
    settings = {"task": "unseen-lineage", "transductive": True, "k": 10, "seeds": [0, 1, 2, 3, 4]}
    return write_html_report(
        path, "LEAP <test> report", results, per_split, figures, settings, overwrite=overwrite
    )


def test_html_report_is_self_contained(per_split, tmp_path):
    path = make_report(tmp_path / "sub" / "report.html", per_split)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # no external resources
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", text, re.I)
    assert "<link" not in text and "<script" not in text and "@import" not in text
    # figures embedded
    assert text.count('src="data:image/png;base64,') == 3
    # the results table: mean ± sd per model and metric, escaped names
    assert '<table class="results">' in text
    results = aggregate(per_split).set_index("model")
    assert f"{results.loc['LEAP', 'spearman_mean']:.3f}" in text
    assert f"± {results.loc['LEAP', 'spearman_sd']:.3f}" in text
    assert "single &lt;rep&gt;" in text and "single <rep>" not in text
    assert "LEAP &lt;test&gt; report" in text
    assert "Precision@10" in text
    # settings, date, version, transductive flag
    assert "transductive" in text and __version__ in text
    assert re.search(r"\d{4}-\d{2}-\d{2}", text)
    assert "[0, 1, 2, 3, 4]" in text
    # nothing else left in the folder (atomic write through a temporary file)
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_html_report_refuses_to_overwrite(per_split, tmp_path):
    path = tmp_path / "report.html"
    path.write_text("keep me")
    with pytest.raises(InputError) as err:
        make_report(path, per_split)
    assert str(path) in str(err.value) and "--overwrite" in str(err.value)
    assert path.read_text() == "keep me"
    make_report(path, per_split, overwrite=True)
    assert path.read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")
def test_html_report_renders_in_chromium(per_split, tmp_path):
    path = make_report(tmp_path / "report.html", per_split)
    shot = tmp_path / "shot.png"
    cmd = [
        "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}",
        f"--screenshot={shot}", "--window-size=1300,1600", path.as_uri(),
    ]  # fmt: skip
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    if not shot.exists():
        pytest.skip("chromium could not render in this environment")
    from matplotlib.image import imread

    img = imread(shot)
    assert img.shape[0] == 1600 and img.shape[1] == 1300
    # not a blank page: plenty of non-white pixels
    non_white = (img[..., :3] < 0.9).any(axis=-1).mean()
    assert non_white > 0.02


@pytest.mark.parametrize("lead", ["mean predictor", "single <rep>"])
def test_best_and_worst_tables_rank_by_leap_not_by_the_first_model(per_split, tmp_path, lead):
    # the mean predictor (all zeros) listed first must not decide the ranking
    order = [lead, *[m for m in MODELS if m != lead]]
    ordered = pd.concat([per_split[per_split["model"] == m] for m in order], ignore_index=True)
    path = make_report(tmp_path / "report.html", ordered)
    text = path.read_text(encoding="utf-8")
    leap = ordered[ordered["model"] == "LEAP"].groupby("perturbation")["spearman"].mean()
    best_html = text.split("<h3>Best predicted</h3>")[1].split("</table>")[0]
    worst_html = text.split("<h3>Worst predicted</h3>")[1].split("</table>")[0]
    names = re.findall(r'<td class="name">([^<]+)</td>', best_html)
    assert names[0] == leap.idxmax()
    assert names == list(leap.sort_values(ascending=False).index[: len(names)])
    assert re.findall(r'<td class="name">([^<]+)</td>', worst_html)[0] == leap.idxmin()
    assert "(Spearman of LEAP, mean over splits)" in text
