"""`leapscreen explain`: tables, the self-contained page, refusing to overwrite, bad options."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli.conftest import TINY, assert_clean_error, invoke

FAST = ["--subsamples", "20", "--penalties", "10", "-q"]
#: Planted drivers of the linear screen: P1 = 2 G01 - 1.5 G02 + noise; P2 = G03 + G04 + noise.
DRIVERS = {"P1": {"G01": 1, "G02": -1}, "P2": {"G03": 1, "G04": 1}}


@pytest.fixture(scope="module")
def linear_screen(tmp_path_factory) -> dict[str, Path]:
    """A screen with a sparse linear truth, a ridge model fitted on it and a gene-set file."""
    rng = np.random.default_rng(0)
    n, g = 120, 60
    genes = [f"G{i:02d}" for i in range(1, g + 1)]
    samples = [f"LINE_{i:03d}" for i in range(n)]
    X = rng.normal(size=(n, g)) + 5.0
    Xc = X - X.mean(0)
    y1 = 2 * Xc[:, 0] - 1.5 * Xc[:, 1] + 0.3 * rng.normal(size=n)
    y2 = Xc[:, 2] + Xc[:, 3] + 0.3 * rng.normal(size=n)
    root = tmp_path_factory.mktemp("linear")
    pd.DataFrame(X, index=samples, columns=genes).to_csv(root / "expression.csv")
    resp = pd.DataFrame({"P1": y1, "P2": y2, "P3": rng.normal(size=n)}, index=samples)
    resp.iloc[:5, 0] = np.nan  # NaN responses are fine
    resp.to_csv(root / "responses.csv")
    extra = pd.DataFrame(rng.normal(size=(15, g)) + 5.0, columns=genes)
    extra.index = [f"NEW_{i}" for i in range(15)]
    extra.to_csv(root / "extra.csv")
    gmt = root / "sets.gmt"
    lines = [
        "DRIVERS_P1\tna\tG01\tG02\tG10\tG11\tG12\tG13",
        "DRIVERS_P2\tna\tG03\tG04\tG20\tG21\tG22",
        "BACKGROUND\tna\t" + "\t".join(genes[30:50]),
        "TOO_SMALL\tna\tG01\tG02",
    ]
    gmt.write_text("\n".join(lines) + "\n")
    model = root / "ridge"
    res = invoke(
        [
            "fit",
            "-x",
            root / "expression.csv",
            "-y",
            root / "responses.csv",
            "--model",
            "ridge",
            "--n-genes",
            str(g),
            "--min-labels",
            "5",
            "--out",
            model,
            "-q",
        ]
    )
    assert res.exit_code == 0, res.output
    return {"model": model, "gmt": gmt, "extra": root / "extra.csv", "root": root}


@pytest.fixture(scope="module")
def linear_run(linear_screen, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "explained"
    res = invoke(
        [
            "explain",
            linear_screen["model"],
            "-p",
            "P1",
            "-p",
            "p2",  # any case
            "--gene-sets",
            linear_screen["gmt"],
            "--expression",
            linear_screen["extra"],
            "--sample",
            "NEW_3",
            "--out",
            out,
            *FAST,
        ]
    )
    assert res.exit_code == 0, res.output
    return out


def _external_refs(html: str) -> list[str]:
    return [
        a for a in re.findall(r'(?:src|href)="([^"]*)"', html) if not a.startswith(("data:", "#"))
    ]


def test_files_and_columns(linear_run):
    names = sorted(p.name for p in linear_run.iterdir())
    assert names == [
        "attributions",
        "explain.html",
        "explain.json",
        "features",
        "pathways",
        "summary.csv",
    ]
    for sub in ("features", "pathways", "attributions"):
        assert sorted(p.name for p in (linear_run / sub).iterdir()) == ["P1.csv", "P2.csv"]
    feats = pd.read_csv(linear_run / "features" / "P1.csv")
    assert list(feats.columns) == ["feature", "proportion", "sign", "mean_coef", "selected"]
    assert len(feats) == 60 and feats["proportion"].between(0, 1).all()
    paths = pd.read_csv(linear_run / "pathways" / "P1.csv")
    assert {"pathway", "overlap", "p", "q"} <= set(paths.columns)
    summary = pd.read_csv(linear_run / "summary.csv")
    assert list(summary["perturbation"]) == ["P1", "P2"]
    for col in ("fidelity", "n_selected", "penalty", "threshold", "pfer_bound", "n_samples"):
        assert col in summary.columns
    # training (120) + extra (15) samples, of which the student holds some out for fidelity
    meta = json.loads((linear_run / "explain.json").read_text())
    assert meta["format"] == "leapscreen.explain"
    assert meta["settings"]["extra samples (--expression)"] == 15
    assert meta["settings"]["training samples"] == 120


def test_planted_drivers_are_stable_with_their_signs(linear_run):
    summary = pd.read_csv(linear_run / "summary.csv").set_index("perturbation")
    for pert, drivers in DRIVERS.items():
        feats = pd.read_csv(linear_run / "features" / f"{pert}.csv").set_index("feature")
        for gene, sign in drivers.items():
            assert feats.loc[gene, "selected"], (pert, gene)
            assert feats.loc[gene, "sign"] == sign, (pert, gene)
        # a linear teacher with a sparse truth is reproduced by the sparse student
        assert summary.loc[pert, "fidelity"] > 0.9
        # the exact coefficients of the ridge model put the planted drivers on top
        attr = pd.read_csv(linear_run / "attributions" / f"{pert}.csv")
        assert set(attr["gene"].head(2)) == set(drivers)
        assert summary.loc[pert, "exact_spearman"] > 0.3
        assert summary.loc[pert, "exact_sign_agreement"] >= 0.5


def test_pathway_overlaps_match_the_stable_genes(linear_run, linear_screen):
    from leapscreen.data.genesets import read_gene_sets

    sets = read_gene_sets(linear_screen["gmt"])
    for pert in DRIVERS:
        feats = pd.read_csv(linear_run / "features" / f"{pert}.csv")
        stable = set(feats.loc[feats["selected"], "feature"])
        paths = pd.read_csv(linear_run / "pathways" / f"{pert}.csv").set_index("pathway")
        assert "TOO_SMALL" not in paths.index  # fewer than 5 genes
        for name, row in paths.iterrows():
            assert row["overlap"] == len(stable & set(sets[name])), name
        assert paths.index[0] == f"DRIVERS_{pert}"  # the planted set is the most enriched
        assert (paths["q"] >= paths["p"] - 1e-12).all()


def test_page_is_self_contained(linear_run):
    html = (linear_run / "explain.html").read_text(encoding="utf-8")
    assert _external_refs(html) == []
    assert "<script" not in html
    assert html.count('<section class="pert"') == 2
    assert "NEW_3" in html  # the sample broken down
    assert "exact vs stable: Spearman" in html
    assert "DRIVERS_P1" in html


def test_same_seed_same_tables(linear_run, linear_screen, tmp_path):
    out = tmp_path / "again"
    res = invoke(
        [
            "explain",
            linear_screen["model"],
            "-p",
            "P1",
            "--gene-sets",
            linear_screen["gmt"],
            "--expression",
            linear_screen["extra"],
            "--out",
            out,
            *FAST,
        ]
    )
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(
        pd.read_csv(out / "features" / "P1.csv"), pd.read_csv(linear_run / "features" / "P1.csv")
    )


def test_pathway_features(fitted_model, screen_files, tmp_path):
    """The CLI's LEAP (linear DAMAE + PS-LASSO): pathway scores as the student's features."""
    pert = screen_files["perturbations"][0]
    genes = pd.read_csv(screen_files["expression"], index_col=0).columns
    gmt = tmp_path / "sets.gmt"
    gmt.write_text(
        "\n".join(f"SET{i}\tna\t" + "\t".join(genes[i * 10 : i * 10 + 10]) for i in range(12))
        + "\n"
    )
    out = tmp_path / "pw"
    res = invoke(
        [
            "explain",
            fitted_model,
            "-p",
            pert,
            "--gene-sets",
            gmt,
            "--features",
            "pathways",
            "--pathway-score",
            "pca",
            "--out",
            out,
            *FAST,
        ]
    )
    assert res.exit_code == 0, res.output
    feats = pd.read_csv(next((out / "features").iterdir()))
    assert set(feats["feature"]) <= {f"SET{i}" for i in range(12)}
    assert not (out / "pathways").exists()  # the features are the pathways
    # a linear model: its exact gene coefficients are written, but not compared with pathways
    assert (out / "attributions").is_dir()
    assert "exact_spearman" not in pd.read_csv(out / "summary.csv").columns
    html = (out / "explain.html").read_text(encoding="utf-8")
    assert "pathways (PCA score)" in html and _external_refs(html) == []


def test_nonlinear_model_has_no_exact_coefficients(screen_files, tmp_path):
    model = tmp_path / "knn"
    res = invoke(
        ["fit", "--data", screen_files["dataset"], *TINY, "--model", "ps-knn", "--out", model, "-q"]
    )
    assert res.exit_code == 0, res.output
    out = tmp_path / "knn_explained"
    pert = screen_files["perturbations"][1]
    res = invoke(["explain", model, "-p", pert, "--out", out, *FAST])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == [
        "explain.html",
        "explain.json",
        "features",
        "summary.csv",
    ]
    summary = pd.read_csv(out / "summary.csv")
    assert "exact_spearman" not in summary.columns
    assert -1.0 <= summary.loc[0, "fidelity"] <= 1.0 or np.isnan(summary.loc[0, "fidelity"])
    html = (out / "explain.html").read_text(encoding="utf-8")
    assert "exact vs stable" not in html and _external_refs(html) == []


def test_refuses_to_overwrite(linear_screen, linear_run, tmp_path):
    before = {p: p.read_bytes() for p in linear_run.rglob("*") if p.is_file()}
    args = ["explain", linear_screen["model"], "-p", "P3", "--out", linear_run, *FAST]
    res = invoke(args)
    assert_clean_error(res, "never overwrites", "--overwrite")
    assert {p: p.read_bytes() for p in linear_run.rglob("*") if p.is_file()} == before
    # a directory of the user's is never replaced, even with --overwrite
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep")
    res = invoke(["explain", linear_screen["model"], "-p", "P3", "--out", user, "--overwrite"])
    assert_clean_error(res, "does not hold", "notes.txt")
    assert (user / "notes.txt").read_text() == "keep" and len(list(user.iterdir())) == 1
    # an earlier explain output is replaced with --overwrite (copy it so the shared run stays)
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(linear_run, copy)
    res = invoke(
        ["explain", linear_screen["model"], "-p", "P3", "--out", copy, "--overwrite", *FAST]
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (copy / "features").iterdir()) == ["P3.csv"]
    assert not (copy / "pathways").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy", "mine"]  # no temp dir left


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["-p", "P9"], ["--perturbation", "P9", "not in the model", "inspect"]),
        (["-p", "P"], ["--perturbation", "did you mean"]),
        ([], ["no perturbation", "--perturbation NAME"]),
        (["-p", "P1", "--all-perturbations"], ["both given"]),
        (["-p", "P1", "--gene-sets", "missing.gmt"], ["--gene-sets", "not found", "missing.gmt"]),
        (["-p", "P1", "--features", "pathways"], ["--features pathways", "--gene-sets"]),
        (["-p", "P1", "--features", "gens"], ["--features", "did you mean 'genes'"]),
        (["-p", "P1", "--pathway-score", "max"], ["--pathway-score", "mean, pca"]),
        (["-p", "P1", "--subsamples", "3"], ["--subsamples", ">= 10"]),
        (["-p", "P1", "--sample", "NOPE"], ["--sample", "NOPE", "LINE_000"]),
        (["-p", "P1", "--expression", "missing.csv"], ["--expression", "not found"]),
    ],
)
def test_bad_options_are_clean_errors(linear_screen, tmp_path, extra, needles):
    out = tmp_path / "out"
    extra = [str(tmp_path / e) if e.startswith("missing") else e for e in extra]
    res = invoke(["explain", linear_screen["model"], *extra, "--out", out, "-q"])
    assert_clean_error(res, *needles)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, no lock left


def test_gene_sets_without_model_genes_and_missing_model(linear_screen, tmp_path):
    gmt = tmp_path / "other.gmt"
    gmt.write_text("OTHER\tna\tA1\tA2\tA3\tA4\tA5\tA6\n")
    res = invoke(
        ["explain", linear_screen["model"], "-p", "P1", "--gene-sets", gmt, "--out", tmp_path / "o"]
    )
    assert_clean_error(res, "--gene-sets", "none of its 1 gene sets", "gene symbols")
    res = invoke(["explain", tmp_path / "nomodel", "-p", "P1", "--out", tmp_path / "o2"])
    assert_clean_error(res, "model directory not found")
