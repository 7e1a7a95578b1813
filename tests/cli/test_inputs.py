"""Data-loading options reach the readers through fit / evaluate (issue 9 section 2, CLI parts)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.cli.conftest import assert_clean_error, invoke

SMALL = ["--seeds", "1", "--latent-dim", "4", "--n-genes", "50", "--min-labels", "5"]


@pytest.fixture(scope="module")
def depmap_tpm(tmp_path_factory):
    """A DepMap-layout simulated screen, with its expression also as linear TPM."""
    root = tmp_path_factory.mktemp("depmap")
    res = invoke(
        [
            "simulate",
            "--out",
            root / "sim",
            "--samples",
            "60",
            "--genes",
            "120",
            "--perturbations",
            "5",
            "--lineages",
            "3",
            "-q",
        ]
    )
    assert res.exit_code == 0, res.output
    sim = root / "sim"
    logged = sim / "OmicsExpressionProteinCodingGenesTPMLogp1.csv"
    expr = pd.read_csv(logged, index_col=0)
    tpm = np.expm1(expr.clip(lower=0) * np.log(2)) * 20 + 5  # linear TPM-like, large values
    tpm_path = root / "OmicsExpressionProteinCodingGenesTPM.csv"
    tpm.to_csv(tpm_path)
    return {
        "logged": logged,
        "tpm": tpm_path,
        "responses": sim / "CRISPRGeneEffect.csv",
        "samples": sim / "Model.csv",
        "root": root,
    }


def test_log_transform_on_depmap_layout_tpm(depmap_tpm, tmp_path):
    out = tmp_path / "m"
    res = invoke(
        ["fit", "-x", depmap_tpm["tpm"], "-y", depmap_tpm["responses"], *SMALL, "--out", out]
    )
    assert_clean_error(res, "--log-transform")
    assert not out.exists()
    res = invoke(
        [
            "fit",
            "-x",
            depmap_tpm["tpm"],
            "-y",
            depmap_tpm["responses"],
            *SMALL,
            "--log-transform",
            "--out",
            out,
            "-q",
        ]
    )
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "leapscreen_model.json").read_text())
    assert meta["state"]["params"]["log_transform"] is True
    # predict with the model's own transform: TPM in, sensible predictions out
    pred = tmp_path / "p.csv"
    res = invoke(["predict", out, depmap_tpm["tpm"], "--out", pred, "-q"])
    assert res.exit_code == 0, res.output
    values = pd.read_csv(pred)["value"]
    resp = pd.read_csv(depmap_tpm["responses"], index_col=0).to_numpy()
    assert values.notna().all()
    assert values.abs().max() < 10 * np.nanmax(np.abs(resp))  # not the -277..244 of raw TPM


def test_genes_file_and_min_shared_samples(depmap_tpm, tmp_path):
    expr = pd.read_csv(depmap_tpm["logged"], index_col=0, nrows=1)
    symbols = [c.split(" (")[0] for c in expr.columns[:30]]
    genes = tmp_path / "genes.txt"
    genes.write_text("\n".join(symbols) + "\n")
    out = tmp_path / "m"
    res = invoke(
        [
            "fit",
            "-x",
            depmap_tpm["logged"],
            "-y",
            depmap_tpm["responses"],
            *SMALL,
            "--genes",
            genes,
            "--out",
            out,
            "-q",
        ]
    )
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "leapscreen_model.json").read_text())
    assert meta["genes"] == symbols  # the user's list, not the 50 most variant
    empty = tmp_path / "none.txt"
    empty.write_text("# nothing\n")
    res = invoke(
        [
            "fit",
            "-x",
            depmap_tpm["logged"],
            "-y",
            depmap_tpm["responses"],
            *SMALL,
            "--genes",
            empty,
            "--out",
            tmp_path / "m2",
        ]
    )
    assert_clean_error(res, "none.txt")
    assert not (tmp_path / "m2").exists()
    res = invoke(
        [
            "fit",
            "-x",
            depmap_tpm["logged"],
            "-y",
            depmap_tpm["responses"],
            *SMALL,
            "--min-shared-samples",
            "1000",
            "--out",
            tmp_path / "m3",
        ]
    )
    assert_clean_error(res)
    assert "1000" in res.output and not (tmp_path / "m3").exists()


def test_value_option_reaches_the_demo(tmp_path):
    out = tmp_path / "m"
    res = invoke(["fit", "--data", "demo", "--value", "AUC", "--model", "mean", "--out", out, "-q"])
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "leapscreen_model.json").read_text())
    assert meta["metadata"]["provenance"]["value"] == "AUC"
    assert "AUC" in json.dumps(meta["metadata"]["dataset"])
    res = invoke(
        ["fit", "--data", "demo", "--value", "IC90", "--model", "mean", "--out", tmp_path / "m2"]
    )
    assert_clean_error(res, "IC90")


def test_evaluate_passes_options_and_provenance(depmap_tpm, tmp_path):
    out = tmp_path / "e"
    res = invoke(
        [
            "evaluate",
            "-x",
            depmap_tpm["tpm"],
            "-y",
            depmap_tpm["responses"],
            "--log-transform",
            "--models",
            "mean,ridge",
            "--repeats",
            "1",
            "--n-genes",
            "50",
            "--min-labels",
            "5",
            "--out",
            out,
            "-q",
        ]
    )
    assert res.exit_code == 0, res.output
    assert (out / "results.csv").is_file()
    html = (out / "report.html").read_text(encoding="utf-8")
    import inspect

    from leapscreen.evaluate.run import evaluate_models

    if "provenance" in inspect.signature(evaluate_models).parameters:
        assert depmap_tpm["tpm"].name in html
