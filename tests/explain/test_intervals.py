"""Conformal prediction intervals from the heads' out-of-fold residuals (issue 11, section 4)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leapscreen.data.simulate import simulate_screen
from leapscreen.ensemble import LEAP
from leapscreen.errors import InputError
from leapscreen.explain.intervals import (
    ConformalCalibration,
    calibrate,
    check_coverage,
    conformal_quantiles,
    intervals,
    weighted_spread,
)

REPO_SRC = Path(__file__).resolve().parents[2] / "src"
RIDGE = {"representation": "genes", "head": "ridge", "n_seeds": 1}
RIDGE_PARAMS = {"standardize": False, "cv": "loo"}


def _ridge(**kw) -> LEAP:
    return LEAP(**RIDGE, n_genes=200, head_params=RIDGE_PARAMS, **kw)


@pytest.fixture(scope="module")
def screen():
    """700 simulated lines (10% of the labels missing): 400 to fit, 300 held out."""
    data, _ = simulate_screen(n_samples=700, n_genes=300, n_perturbations=20, random_state=0)
    ids = data.expression.index
    return data, ids[:400], ids[400:]


@pytest.fixture(scope="module")
def ridge_model(screen):
    data, train, _ = screen
    return _ridge().fit(data.expression.loc[train], data.responses.loc[train])


def _coverage(model, data, test, c, **kw) -> tuple[float, float]:
    pred, lo, up = model.predict_intervals(data.expression.loc[test], c, **kw)
    Y = data.responses.loc[test].to_numpy()
    ok = ~np.isnan(Y)
    inside = (Y >= lo.to_numpy()) & (Y <= up.to_numpy())
    return float(inside[ok].mean()), float((up - lo).to_numpy()[ok].mean())


def test_coverage_on_held_out_samples_is_nominal(screen, ridge_model):
    # ~5,400 labelled (sample, perturbation) pairs: the standard error of the coverage is ~0.6
    # points (the quantile of each of the 20 perturbations is random too), so +/- 3 points is
    # about 5 standard errors
    data, _, test = screen
    for c in (0.8, 0.9, 0.95):
        covered, _ = _coverage(ridge_model, data, test, c)
        assert abs(covered - c) <= 0.03, (c, covered)


def test_spread_normalised_coverage_is_nominal(screen):
    data, train, test = screen
    model = LEAP(
        representation=[("genes", ["ridge", "rr-ridge"])],
        n_seeds=1,
        n_genes=200,
        head_params={"standardize": False},
    ).fit(data.expression.loc[train], data.responses.loc[train])
    for c in (0.8, 0.9):
        covered, _ = _coverage(model, data, test, c, normalize=True)
        assert abs(covered - c) <= 0.03, (c, covered)


def test_intervals_widen_with_coverage_and_are_nested(screen, ridge_model):
    data, _, test = screen
    grid = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]
    previous = None
    for c in grid:
        pred, lo, up = ridge_model.predict_intervals(data.expression.loc[test[:20]], c)
        assert np.all(lo.to_numpy() <= pred.to_numpy()) and np.all(pred.to_numpy() <= up.to_numpy())
        if previous is not None:
            assert np.all(lo.to_numpy() <= previous[0]) and np.all(up.to_numpy() >= previous[1])
            assert np.mean(up.to_numpy() - lo.to_numpy()) > np.mean(previous[1] - previous[0])
        previous = (lo.to_numpy(), up.to_numpy())
    # the prediction is the model's own
    pred, _, _ = ridge_model.predict_intervals(data.expression.loc[test[:20]], 0.9)
    np.testing.assert_array_equal(
        pred.to_numpy(), ridge_model.predict(data.expression.loc[test[:20]]).to_numpy()
    )


def test_quantile_is_the_finite_sample_conformal_quantile():
    """crepes' Mondrian quantile = the ceil((n + 1) c)-th smallest score, per perturbation."""
    rng = np.random.default_rng(1)
    res = rng.standard_t(3, size=(60, 5))
    res[rng.random(res.shape) < 0.3] = np.nan
    res[:, 3] = np.nan
    res[:9, 3] = rng.normal(size=9)  # n = 9: c = 0.9 needs the 9th of 9 scores, 0.95 is inf
    cal = ConformalCalibration(res)
    for c in (0.5, 0.8, 0.9, 0.95, 0.99):
        q = conformal_quantiles(cal, c)
        for j in range(res.shape[1]):
            scores = np.sort(np.abs(res[:, j][~np.isnan(res[:, j])]))
            k = int(np.ceil(round((len(scores) + 1) * c, 9)))
            expected = np.inf if k > len(scores) else scores[k - 1]
            assert q[j] == expected, (c, j, q[j], expected)
    assert np.isfinite(conformal_quantiles(cal, 0.9)[3])
    assert np.isinf(conformal_quantiles(cal, 0.95)[3])


def test_calibration_is_the_weighted_combination_of_the_members_oof(screen):
    """Residuals = y - the members' out-of-fold predictions combined as the predictions are."""
    data, train, _ = screen
    X, Y = data.expression.loc[train[:200]], data.responses.loc[train[:200]]
    model = LEAP(
        representation=[("genes", ["ridge", "rr-ridge"])],
        n_seeds=1,
        n_genes=100,
        head_params={"standardize": False},
        combine="cv",
    ).fit(X, Y)
    oof = np.stack([m.head.out_of_fold_predictions() for m in model.members_])
    w = model.weights_  # groups x perturbations; here one member per group
    expected = Y.to_numpy() - np.einsum("mp,mnp->np", w, oof)
    cal = model.calibration_
    np.testing.assert_allclose(cal.residuals, expected, equal_nan=True)
    assert np.array_equal(np.isnan(cal.residuals), Y.isna().to_numpy())
    # the spread: the weighted standard deviation, by hand
    wn = w / w.sum(axis=0)
    mean = np.einsum("mp,mnp->np", wn, oof)
    sd = np.sqrt(np.einsum("mp,mnp->np", wn, (oof - mean) ** 2))
    np.testing.assert_allclose(weighted_spread(oof, w), sd, atol=1e-12)
    # the normalisation: the members' spread of their own predictions of the training rows
    assert cal.can_normalize
    members = np.stack([m.predict(model.preprocess(X)) for m in model.members_])
    spread = weighted_spread(members, w)
    labelled = np.where(Y.notna().to_numpy(), spread, np.nan)
    median = np.nanmedian(labelled, axis=0)
    # one member chosen alone for a perturbation: no spread, so that column is not normalised
    assert (median == 0).any() and (median > 0).any()
    np.testing.assert_allclose(cal.offset, np.where(median > 0, median, np.nan), rtol=1e-6)
    expected = np.where(median > 0, spread + median, 1.0)
    np.testing.assert_allclose(cal.sigmas, expected, rtol=1e-6)


def test_normalised_intervals_scale_with_the_spread():
    rng = np.random.default_rng(2)
    Y = rng.normal(size=(80, 3))
    oof = Y + rng.normal(size=(80, 3))
    spread = rng.uniform(0.5, 2.0, size=(80, 3))
    cal = calibrate(Y, oof, spread)
    np.testing.assert_allclose(cal.offset, np.median(spread, axis=0))
    pred = np.zeros((4, 3))
    new_spread = np.array([[0.0], [1.0], [2.0], [3.0]]) * np.ones((1, 3))
    lo, up = intervals(cal, pred, 0.9, new_spread, normalize=True)
    q = conformal_quantiles(cal, 0.9, normalize=True)
    np.testing.assert_allclose(up, q * (new_spread + cal.offset))
    np.testing.assert_allclose(lo, -up)
    # scores: |y - oof| / (spread + offset)
    scores = np.abs(Y - oof) / (spread + cal.offset)
    k = int(np.ceil(81 * 0.9))
    np.testing.assert_allclose(q, np.sort(scores, axis=0)[k - 1])


def test_one_member_cannot_normalise_and_bad_coverage_is_refused(screen, ridge_model):
    data, _, test = screen
    assert not ridge_model.calibration_.can_normalize
    with pytest.raises(InputError, match="at least two members"):
        ridge_model.predict_intervals(data.expression.loc[test[:3]], 0.9, normalize=True)
    for bad in (0, 1, 1.5, -0.1, "a", True, float("nan")):
        with pytest.raises(InputError, match="coverage"):
            check_coverage(bad)
        with pytest.raises(InputError, match="coverage"):
            ridge_model.predict_intervals(data.expression.loc[test[:3]], bad)


def test_nan_responses_and_too_few_labels(screen):
    data, train, test = screen
    Y = data.responses.loc[train].copy()
    Y.iloc[:, 0] = np.nan
    Y.iloc[:12, 0] = data.responses.loc[train].iloc[:12, 0].fillna(0.0)  # 12 labels only
    Y.iloc[::2, 1] = np.nan
    model = _ridge().fit(data.expression.loc[train], Y)
    n = model.calibration_.n_labelled
    np.testing.assert_array_equal(n, Y.notna().sum().to_numpy())
    _, lo, up = model.predict_intervals(data.expression.loc[test[:5]], 0.95)
    assert np.isinf(up.iloc[:, 0]).all()  # ceil(13 * 0.95) = 13 > 12 scores
    assert np.isfinite(up.iloc[:, 1:].to_numpy()).all()
    _, lo, up = model.predict_intervals(data.expression.loc[test[:5]], 0.9)
    assert np.isfinite(up.to_numpy()).all()  # ceil(13 * 0.9) = 12 <= 12


ROUND_TRIP = """
import json, sys
import numpy as np, pandas as pd
from leapscreen.ensemble import LEAP
model = LEAP.load(sys.argv[1])
X = pd.read_csv(sys.argv[2], index_col=0)
out = {}
for c in (0.5, 0.8, 0.9, 0.99):
    pred, lo, up = model.predict_intervals(X, c, normalize=True)
    out[str(c)] = [lo.to_numpy().tolist(), up.to_numpy().tolist()]
out["train"] = model.training_expression().to_numpy().tolist()
print(json.dumps(out))
"""


def test_save_load_round_trip_in_a_fresh_process(screen, tmp_path):
    data, train, test = screen
    model = LEAP(
        representation=[("genes", ["ridge", "rr-ridge"])],
        n_seeds=1,
        n_genes=80,
        head_params={"standardize": False},
    ).fit(data.expression.loc[train[:150]], data.responses.loc[train[:150]])
    model.save(tmp_path / "model")
    new = data.expression.loc[test[:6]]
    new.to_csv(tmp_path / "new.csv")
    res = subprocess.run(
        [sys.executable, "-c", ROUND_TRIP, str(tmp_path / "model"), str(tmp_path / "new.csv")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO_SRC), "PATH": "/usr/bin:/bin"},
    )
    assert res.returncode == 0, res.stderr[-2000:]
    loaded = json.loads(res.stdout)
    X = pd.read_csv(tmp_path / "new.csv", index_col=0)  # the same input as the fresh process
    for c in (0.5, 0.8, 0.9, 0.99):
        _, lo, up = model.predict_intervals(X, c, normalize=True)
        np.testing.assert_array_equal(np.array(loaded[str(c)][0], dtype=np.float32), lo.to_numpy())
        np.testing.assert_array_equal(np.array(loaded[str(c)][1], dtype=np.float32), up.to_numpy())
    np.testing.assert_array_equal(
        np.array(loaded["train"], dtype=np.float32), model.training_expression().to_numpy()
    )
