"""ScreenData: alignment, drop report, subsetting, filters and round trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leapscreen.data.dataset import ScreenData
from leapscreen.errors import InputError


def _tables(seed: int = 0):
    rng = np.random.default_rng(seed)
    samples = [f"S{i}" for i in range(12)]
    expr = pd.DataFrame(rng.normal(size=(12, 5)), index=samples, columns=list("ABCDE"))
    resp = pd.DataFrame(rng.normal(size=(10, 3)), index=samples[2:], columns=["d1", "d2", "d3"])
    resp.loc["S5", "d1"] = np.nan
    resp.loc["S3", :] = np.nan  # measured nowhere: dropped as unlabelled
    resp.loc["X9"] = [1.0, 2.0, 3.0]  # no expression
    resp["d4"] = np.nan  # never measured
    meta = pd.DataFrame({"lineage": ["lung"] * 6 + ["skin"] * 5 + [None]}, index=samples)
    return expr, resp, meta


def test_alignment_and_drop_report():
    expr, resp, meta = _tables()
    data = ScreenData(expr, resp, samples=meta, name="toy", perturbation_kind="drug")
    # S0, S1 have no responses; S3 all NaN; X9 no expression; d4 never measured
    assert list(data.sample_ids) == [f"S{i}" for i in (2, 4, 5, 6, 7, 8, 9, 10, 11)]
    assert list(data.perturbation_ids) == ["d1", "d2", "d3"]
    assert data.expression.dtype == np.float32 if hasattr(data.expression, "dtype") else True
    assert (data.expression.dtypes == np.float32).all()
    reasons = {(d["what"], d["reason"]): d for d in data.dropped}
    assert reasons[("samples", "have responses but no expression")]["examples"] == ["X9"]
    assert reasons[("samples", "have expression but no measured response")]["n"] == 3
    assert reasons[("perturbations", "have no measured response in the kept samples")]["n"] == 1
    assert data.samples.loc["S11", "lineage"] == "unknown"
    assert (data.samples["source"] == "toy").all()
    assert (data.perturbations["kind"] == "drug").all()
    # values are carried unchanged
    np.testing.assert_allclose(
        data.responses.loc["S7"].to_numpy(), resp.loc["S7", ["d1", "d2", "d3"]].to_numpy(), 1e-6
    )
    assert np.isnan(data.responses.loc["S5", "d1"])


def test_too_few_shared_samples_is_a_clear_error():
    expr, resp, _ = _tables()
    resp.index = [f"other{i}" for i in range(len(resp))]
    with pytest.raises(InputError, match="only 0 samples have both"):
        ScreenData(expr, resp, min_shared_samples=5, paths={"responses": "r.csv"})


def test_duplicated_sample_ids_rejected():
    expr, resp, _ = _tables()
    expr.index = ["S0"] * 2 + list(expr.index[2:])
    with pytest.raises(InputError, match="duplicated sample IDs"):
        ScreenData(expr, resp, paths={"expression": "e.csv"})


def test_subset_and_filter():
    expr, resp, meta = _tables()
    data = ScreenData(expr, resp, samples=meta)
    lung = data.subset(lineages=["lung"])
    assert set(lung.samples["lineage"]) == {"lung"}
    assert lung.n_samples == 3  # S2, S4, S5 (S0, S1, S3 dropped)
    sub = data.subset(samples=["S9", "S2"], perturbations=["d3"])
    assert list(sub.sample_ids) == ["S9", "S2"] and list(sub.perturbation_ids) == ["d3"]
    filt = data.filter_perturbations(min_labels=9)
    assert list(filt.perturbation_ids) == ["d2", "d3"]  # d1 has 8 labels
    assert any("fewer than 9" in d["reason"] for d in filt.dropped)
    with pytest.raises(InputError):
        data.subset(samples=["nope"])


@pytest.mark.parametrize("fmt", ["h5ad", "parquet"])
def test_round_trip(tmp_path, fmt):
    expr, resp, meta = _tables()
    data = ScreenData(expr, resp, samples=meta, name="toy", perturbation_kind="gene")
    if fmt == "h5ad":
        path = data.write_h5ad(tmp_path / "d.h5ad")
        back = ScreenData.read_h5ad(path)
        with pytest.raises(InputError, match="never overwrites"):
            data.write_h5ad(path)
    else:
        path = data.write_parquet(tmp_path / "d")
        back = ScreenData.read_parquet(path)
        with pytest.raises(InputError, match="not empty"):
            data.write_parquet(path)
    pd.testing.assert_frame_equal(back.expression, data.expression, check_names=False)
    pd.testing.assert_frame_equal(back.responses, data.responses, check_names=False)
    assert list(back.samples["lineage"]) == list(data.samples["lineage"])
    assert list(back.perturbations["kind"]) == ["gene"] * 3
    assert back.name == "toy"
    assert len(back.dropped) == len(data.dropped)


def test_summary_is_json_able():
    import json

    expr, resp, meta = _tables()
    s = ScreenData(expr, resp, samples=meta).summary()
    json.dumps(s)
    assert s["n_samples"] == 9 and s["n_perturbations"] == 3
    assert s["lineages"] == {"lung": 3, "skin": 5, "unknown": 1}
