"""`leapscreen predict --intervals`: bounds, the applicability domain, clean errors (issue 11)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leapscreen.data.simulate import simulate_screen
from leapscreen.ensemble import LEAP
from tests.cli.conftest import assert_clean_error, invoke


@pytest.fixture(scope="module")
def ridges(tmp_path_factory):
    """A two-member linear model fitted through the CLI, and new samples: 5 lines + 1 far away."""
    data, _ = simulate_screen(
        n_samples=90, n_genes=100, n_perturbations=3, n_lineages=3, random_state=5
    )
    root = tmp_path_factory.mktemp("intervals")
    train = data.subset(samples=data.sample_ids[:80])
    train.write_parquet(root / "dataset")
    new = data.expression.iloc[80:86].copy()
    new.iloc[5] += 4.0 * data.expression.std()  # far outside the training data
    new.to_csv(root / "new.csv")
    meta = data.samples.iloc[80:86].copy()
    meta.iloc[0, meta.columns.get_loc("lineage")] = "Martian"
    meta.to_csv(root / "meta.csv")
    out = root / "model"
    res = invoke(
        ["fit", "--data", root / "dataset", "--model", "leap-ridges", "--n-genes", "60"]
        + ["--min-labels", "5", "--out", out, "-q"]
    )
    assert res.exit_code == 0, res.output
    return out, root, new


def test_long_layout_and_domain(ridges, tmp_path):
    model_dir, root, new = ridges
    res = invoke(
        ["predict", model_dir, root / "new.csv", "--out", tmp_path / "p.csv", "--intervals"]
        + ["--samples", root / "meta.csv"]
    )
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "p.csv")
    assert list(table.columns) == [
        "sample",
        "perturbation",
        "value",
        "lower",
        "upper",
        "fallback_to_mean",
        "domain_percentile",
        "extrapolates",
        "lineage_seen",
    ]
    assert len(table) == 6 * 3
    assert (table["lower"] <= table["value"]).all() and (table["value"] <= table["upper"]).all()
    # the same numbers as the Python API, at the default coverage 0.9
    model = LEAP.load(model_dir)
    pred, lo, up = model.predict_intervals(new, 0.9)
    wide_lo = table.pivot(index="sample", columns="perturbation", values="lower")
    np.testing.assert_allclose(wide_lo.loc[pred.index, pred.columns].to_numpy(), lo, rtol=1e-6)
    per_sample = table.groupby("sample", sort=False).first()
    assert per_sample["extrapolates"].tolist() == [True, False, False, False, False, True]
    assert per_sample["lineage_seen"].tolist()[:2] == [False, True]
    assert per_sample["domain_percentile"].iloc[5] == 1.0
    out = " ".join(res.output.split())
    assert "2 of 6 sample(s) lie outside the training data" in out
    assert "lineage 'martian' absent from training" in out


def test_wide_layout_and_coverage(ridges, tmp_path):
    model_dir, root, _ = ridges
    widths = {}
    for c in ("0.8", "0.95"):
        out = tmp_path / f"w{c}.csv"
        res = invoke(
            ["predict", model_dir, root / "new.csv", "--out", out, "--intervals", "--wide"]
            + ["--coverage", c, "-q"]
        )
        assert res.exit_code == 0, res.output
        table = pd.read_csv(out)
        perts = [p for p in table.columns if f"{p}_lower" in table.columns]
        assert len(perts) == 3
        assert list(table.columns[:3]) == ["sample", "domain_percentile", "extrapolates"]
        assert list(table.columns[3:6]) == [perts[0], f"{perts[0]}_lower", f"{perts[0]}_upper"]
        widths[c] = np.mean([table[f"{p}_upper"] - table[f"{p}_lower"] for p in perts])
    assert widths["0.95"] > widths["0.8"]


def test_bad_coverage_and_options_without_intervals(ridges, tmp_path):
    model_dir, root, _ = ridges
    base = ["predict", model_dir, root / "new.csv", "--out", tmp_path / "x.csv"]
    for bad in ("1.5", "0", "-0.2"):
        res = invoke([*base, "--intervals", "--coverage", bad])
        assert_clean_error(res, "--coverage", "between 0 and 1", "--coverage 0.9")
    res = invoke([*base, "--coverage", "0.8"])
    assert_clean_error(res, "--coverage", "--intervals")
    res = invoke([*base, "--samples", root / "meta.csv"])
    assert_clean_error(res, "--samples", "--intervals")
    assert not (tmp_path / "x.csv").exists()
