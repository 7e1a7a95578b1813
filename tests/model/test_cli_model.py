"""`leapscreen fit` / `predict` / `evaluate` through the CLI, including bad input (exit 2, no traceback)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from leapscreen.cli import app
from leapscreen.data.simulate import simulate_screen

runner = CliRunner()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    data, _ = simulate_screen(
        n_samples=80, n_genes=150, n_perturbations=5, n_lineages=3, random_state=2
    )
    path = tmp_path_factory.mktemp("d") / "sim"
    data.write_parquet(path)
    return data, path


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    path = tmp_path_factory.mktemp("c") / "cfg.json"
    path.write_text(json.dumps({"seeds": 2, "latent_dim": 8, "n_genes": 100}))
    return path


def test_fit_predict_round_trip(dataset, config, tmp_path):
    data, path = dataset
    model_dir = tmp_path / "model"
    res = runner.invoke(
        app,
        [
            "fit",
            "--data",
            str(path),
            "--config",
            str(config),
            "--out",
            str(model_dir),
            "--min-labels",
            "5",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    new = tmp_path / "new.csv"
    data.expression.iloc[:3].to_csv(new)
    out = tmp_path / "pred.csv"
    res = runner.invoke(app, ["predict", str(model_dir), str(new), "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    # issue 9: predict's long output says which perturbations fell back to the training mean
    assert list(table.columns) == ["sample", "perturbation", "value", "fallback_to_mean"]
    assert len(table) == 3 * data.n_perturbations
    before = out.read_bytes()
    res = runner.invoke(app, ["predict", str(model_dir), str(new), "--out", str(out)])
    assert res.exit_code == 2 and "never overwrites" in res.output
    assert out.read_bytes() == before  # the user's file is untouched
    res = runner.invoke(
        app, ["predict", str(model_dir), str(new), "--out", str(out), "--overwrite", "--wide", "-q"]
    )
    assert res.exit_code == 0
    assert pd.read_csv(out).shape == (3, data.n_perturbations + 1)


def test_predict_bad_inputs(dataset, tmp_path):
    _, path = dataset
    res = runner.invoke(
        app, ["predict", str(tmp_path), str(tmp_path / "x.csv"), "--out", str(tmp_path / "p.csv")]
    )
    assert res.exit_code == 2 and "not a leapscreen model" in res.output
    assert "Traceback" not in res.output


def test_fit_bad_inputs(tmp_path):
    res = runner.invoke(
        app,
        [
            "fit",
            "--expression",
            str(tmp_path / "missing.csv"),
            "--responses",
            str(tmp_path / "r.csv"),
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert res.exit_code == 2 and "missing.csv" in res.output
    res = runner.invoke(app, ["fit", "--out", str(tmp_path / "m")])
    assert res.exit_code == 2 and "no training data" in res.output


def test_evaluate_resumes_from_cache(dataset, tmp_path):
    _, path = dataset
    out = tmp_path / "eval"
    args = [
        "evaluate",
        "--data",
        str(path),
        "--models",
        "mean,ridge,leap-ps-lasso",
        "--repeats",
        "2",
        "--seeds",
        "2",
        "--latent-dim",
        "8",
        "--n-genes",
        "100",
        "--min-labels",
        "5",
        "--out",
        str(out),
        "-q",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    first = pd.read_csv(out / "results.csv")
    assert set(first["model"]) == {"mean", "ridge", "leap-ps-lasso"}
    assert (out / "report.html").is_file() and any((out / "figures").iterdir())
    # a finished (model, split) is not refitted: delete one cached result, rerun, same numbers
    cached = sorted((out / "cache").rglob("*.scores.parquet"))
    assert len(cached) == 6
    cached[0].unlink()
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    timings = pd.read_csv(out / "timings.csv")
    assert timings["cached"].sum() == 5
    assert "5 of 6 (model, split) results" in (out / "report.html").read_text(encoding="utf-8")
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), first)
    # other settings in the same directory are refused, not mixed in
    res = runner.invoke(app, [*args[:-3], "--seed", "1", "--out", str(out), "-q"])
    assert res.exit_code == 2 and "other settings" in res.output


def test_version_and_help():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and "leapscreen" in res.output
    res = runner.invoke(app, ["--help"])
    for command in ("data", "simulate", "fit", "predict", "evaluate", "demo"):
        assert command in res.output
