"""The lineage x perturbation mean baseline: known answers, fallbacks, NaN, evaluate and the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leapscreen.baselines import LineageMean
from leapscreen.cli import app
from leapscreen.data.simulate import simulate_screen
from leapscreen.errors import InputError
from leapscreen.evaluate.run import evaluate_models
from leapscreen.evaluate.splits import unseen_lineage, unseen_samples
from leapscreen.models import make_model, model_names


def _toy():
    ids = [f"s{i}" for i in range(7)]
    expr = pd.DataFrame(np.zeros((7, 2)), index=ids, columns=["g1", "g2"])
    resp = pd.DataFrame(
        {
            "d1": [1.0, 3.0, np.nan, 10.0, 20.0, 30.0, 5.0],
            "d2": [2.0, 2.0, 2.0, np.nan, 4.0, 8.0, 0.0],
        },
        index=ids,
    )
    samples = pd.DataFrame({"lineage": ["a", "a", "a", "b", "b", "b", "c"]}, index=ids)
    return expr, resp, samples


def test_known_answer_and_fallbacks():
    expr, resp, samples = _toy()
    model = LineageMean(min_samples=2).fit(expr, resp, samples=samples)
    new = pd.DataFrame(np.zeros((4, 2)), index=["x", "y", "z", "w"], columns=["g1", "g2"])
    meta = pd.DataFrame({"lineage": ["a", "b", "c", "never-seen"]}, index=new.index)
    pred = model.predict(new, samples=meta)
    overall = resp.mean()  # pandas skips NaN
    # a: d1 from 2 labelled (1, 3) -> 2; d2 from 3 -> 2
    assert pred.loc["x"].tolist() == pytest.approx([2.0, 2.0])
    # b: d1 mean of 10, 20, 30; d2 only 2 labelled (4, 8) -> 6
    assert pred.loc["y"].tolist() == pytest.approx([20.0, 6.0])
    # c has one sample (< min_samples): overall means; so has an unseen lineage
    assert pred.loc["z"].tolist() == pytest.approx(overall.tolist())
    assert pred.loc["w"].tolist() == pytest.approx(overall.tolist())
    # min_samples=3: lineage b's d2 (2 labels) falls back too
    strict = LineageMean(min_samples=3).fit(expr, resp, samples=samples)
    assert strict.predict(new, samples=meta).loc["y", "d2"] == pytest.approx(overall["d2"])


def test_garbage_behind_nan_changes_nothing_and_errors_are_clean():
    expr, resp, samples = _toy()
    base = LineageMean(min_samples=1).fit(expr, resp, samples=samples).lineage_means_
    again = LineageMean(min_samples=1).fit(expr, resp.fillna(np.nan), samples=samples)
    np.testing.assert_array_equal(base, again.lineage_means_)
    with pytest.raises(InputError, match="sample metadata"):
        LineageMean().fit(expr, resp)
    with pytest.raises(InputError, match="no 'lineage' column"):
        LineageMean().fit(expr, resp, samples=samples.rename(columns={"lineage": "tissue"}))
    with pytest.raises(InputError, match="lacks 1 sample"):
        LineageMean().fit(expr, resp, samples=samples.iloc[1:])
    with pytest.raises(InputError, match="min_samples"):
        LineageMean(min_samples=0).fit(expr, resp, samples=samples)
    assert LineageMean(lineage_column="tissue").fit(
        expr, resp, samples=samples.rename(columns={"lineage": "tissue"})
    ).lineages_ == ["a", "b", "c"]


@pytest.fixture(scope="module")
def screen():
    data, _ = simulate_screen(
        n_samples=160, n_genes=60, n_perturbations=5, n_lineages=4, random_state=2
    )
    return data


def test_evaluate_passes_the_lineage_and_it_carries_signal(screen):
    """On the simulator (lineage drives part of the response) the lineage mean beats the mean for
    unseen lines, and equals it on an unseen lineage (no own lineage to average)."""
    assert "lineage-mean" in model_names() and "lineage-mean" not in model_names(
        with_baselines=False
    )
    assert isinstance(make_model("lineage-mean", n_seeds=3), LineageMean)
    splits = unseen_samples(screen.sample_ids, n_repeats=2, random_state=0)
    result = evaluate_models(screen, ["mean", "lineage-mean"], splits)
    summary = result.summary.set_index("model")
    assert summary.loc["lineage-mean", "spearman_mean"] > 0.1
    # every model's score against the lineage baseline, split by split
    assert summary.loc["lineage-mean", "spearman_minus_lineage-mean_mean"] == 0
    assert summary.loc["mean", "spearman_minus_lineage-mean_mean"] == pytest.approx(
        -summary.loc["lineage-mean", "spearman_mean"], abs=1e-9
    )
    assert summary.loc["lineage-mean", "splits_ahead_of_lineage-mean"] == 0
    first = str(screen.samples["lineage"].iloc[0])
    held = unseen_lineage(
        screen.sample_ids, screen.samples["lineage"], min_samples=5, lineages_to_use=[first]
    )
    result = evaluate_models(screen, ["mean", "lineage-mean"], held)
    per = result.per_perturbation.pivot_table(index="perturbation", columns="model", values="mse")
    np.testing.assert_allclose(per["lineage-mean"], per["mean"], rtol=1e-5)


def test_cli_fit_refuses_it_and_evaluate_runs_it(tmp_path, screen):
    screen.write_parquet(tmp_path / "data")
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "fit",
            "--data",
            str(tmp_path / "data"),
            "--model",
            "lineage-mean",
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert res.exit_code != 0 and "evaluation baseline" in res.output
    assert not (tmp_path / "m").exists()
    res = runner.invoke(
        app,
        [
            "evaluate",
            "--data",
            str(tmp_path / "data"),
            "--models",
            "mean,lineage-mean",
            "--repeats",
            "1",
            "--out",
            str(tmp_path / "e"),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    results = pd.read_csv(tmp_path / "e" / "results.csv")
    assert set(results["model"]) == {"mean", "lineage-mean"}
