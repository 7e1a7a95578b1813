"""`leapscreen evaluate` resumes only on the same data, and more --repeats reuse the splits done."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leapscreen.cli import app
from leapscreen.data.dataset import ScreenData
from leapscreen.data.simulate import simulate_screen

runner = CliRunner()


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    data, _ = simulate_screen(
        n_samples=100, n_genes=80, n_perturbations=4, n_lineages=2, random_state=3
    )
    root = tmp_path_factory.mktemp("d")
    data.write_parquet(root / "real")
    perm = np.random.default_rng(0).permutation(data.n_samples)
    responses = pd.DataFrame(
        data.responses.to_numpy()[perm], index=data.responses.index, columns=data.responses.columns
    )
    ScreenData(data.expression, responses, samples=data.samples, name=data.name).write_parquet(
        root / "shuffled"
    )
    return root / "real", root / "shuffled"


def _evaluate(data, out, repeats=2):
    args = ["evaluate", "--data", str(data), "--models", "mean,ridge", "--repeats", str(repeats)]
    args += ["--n-genes", "60", "--min-labels", "5", "--out", str(out), "-q"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    results = pd.read_csv(out / "results.csv").set_index("model")
    return results, pd.read_csv(out / "timings.csv")


def test_shuffled_responses_are_not_served_from_the_cache(datasets, tmp_path):
    real, shuffled = datasets
    out = tmp_path / "eval"
    first, timings = _evaluate(real, out)
    assert not timings["cached"].any()
    second, timings = _evaluate(shuffled, out)
    assert not timings["cached"].any()
    assert second.loc["ridge", "spearman_mean"] < first.loc["ridge", "spearman_mean"] - 0.15
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "How this was made" in report and "data fingerprint" in report
    third, timings = _evaluate(real, out)
    assert timings["cached"].all()
    pd.testing.assert_frame_equal(third, first)


def test_more_repeats_reuse_the_first(datasets, tmp_path):
    real, _ = datasets
    out = tmp_path / "eval"
    two, _ = _evaluate(real, out, repeats=2)
    three, timings = _evaluate(real, out, repeats=3)
    cached = timings.set_index("split")["cached"]
    assert cached.drop("repeat-02").all() and not cached.loc["repeat-02"].any()
    assert int(timings["cached"].sum()) == 4
    per_pert = pd.read_parquet(out / "per_perturbation.parquet")
    assert set(per_pert["split"]) == {"repeat-00", "repeat-01", "repeat-02"}
