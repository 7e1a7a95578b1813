"""NormalScoresHead: a head fitted on per-perturbation normal scores, mapped back affinely."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm, rankdata
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.utils.estimator_checks import parametrize_with_checks

from leapscreen import registry
from leapscreen.base import get_state, set_state
from leapscreen.data.simulate import simulate_screen
from leapscreen.ensemble import LEAP
from leapscreen.errors import InputError
from leapscreen.evaluate.metrics import spearman_by_column
from leapscreen.heads import NormalScoresHead, PSKNNHead, RidgeHead
from leapscreen.heads.targets import normal_scores
from tests.sklearn_expected import expected_failures


def heavy_tailed(n=160, d=12, p=5, seed=0):
    """A linear signal whose responses carry a few huge outliers (extrapolated IC50s)."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n + 80, d))
    Y = Z @ rng.standard_normal((d, p)) + rng.standard_normal((n + 80, p))
    wild = rng.random(Y.shape) < 0.06
    Y_obs = np.where(wild, Y + rng.choice([-1, 1], Y.shape) * rng.uniform(30, 60, Y.shape), Y)
    return Z[:n], Y_obs[:n], Z[n:], Y[n:]


def test_normal_scores_match_a_direct_computation():
    rng = np.random.default_rng(1)
    Y = rng.normal(size=(30, 3))
    Y[:4, 1] = np.nan
    Y[5:9, 2] = Y[4, 2]  # ties
    G = normal_scores(Y)
    for j in range(3):
        ok = ~np.isnan(Y[:, j])
        expected = norm.ppf((rankdata(Y[ok, j]) - 0.5) / ok.sum())
        np.testing.assert_allclose(G[ok, j], expected, atol=1e-12)
        assert np.isnan(G[~ok, j]).all()
    np.testing.assert_array_equal(normal_scores(np.ones((5, 1))), 0.0)


def test_is_the_base_on_normal_scores_mapped_back():
    Z, Y, Zt, _ = heavy_tailed()
    Y[:10, 2] = np.nan
    head = NormalScoresHead(RidgeHead(alphas=[5.0], cv="loo", standardize=False)).fit(Z, Y)
    G = normal_scores(Y)
    for j in range(Y.shape[1]):
        ok = ~np.isnan(Y[:, j])
        ref = Ridge(alpha=5.0).fit(Z[ok], G[ok, j]).predict(Zt)
        mean, sd = Y[ok, j].mean(), Y[ok, j].std()
        np.testing.assert_allclose(head.predict(Zt)[:, j], mean + sd * ref, atol=1e-8)
    # linear base -> linear head, whose linear form is its prediction
    assert head.is_linear
    np.testing.assert_allclose(Zt @ head.coef_mean_ + head.intercept_mean_, head.predict(Zt))
    assert not NormalScoresHead(PSKNNHead()).fit(Z, Y).is_linear
    # out-of-fold predictions are the base's, on the response scale
    oof = head.out_of_fold_predictions()
    base_oof = head.base_.out_of_fold_predictions()
    np.testing.assert_allclose(oof, head.y_mean_ + head.y_scale_ * base_oof)


def test_outliers_hurt_it_less_than_ridge_on_the_raw_responses():
    wins = []
    for seed in range(3):
        Z, Y, Zt, Yt = heavy_tailed(seed=seed)
        raw = RidgeHead(cv="loo", standardize=False).fit(Z, Y).predict(Zt)
        ns = NormalScoresHead().fit(Z, Y).predict(Zt)
        wins.append(np.mean(spearman_by_column(Yt, ns)) - np.mean(spearman_by_column(Yt, raw)))
    assert min(wins) > 0.02, wins


def test_fallbacks_reproducible_saved_state_and_bad_base():
    Z, Y, Zt, _ = heavy_tailed(p=4)
    Y[:, 3] = 7.0  # constant: the training mean
    a = NormalScoresHead().fit(Z, Y)
    np.testing.assert_array_equal(a.fallback_, [False, False, False, True])
    np.testing.assert_allclose(a.predict(Zt)[:, 3], 7.0)
    np.testing.assert_array_equal(a.predict(Zt), clone(a).fit(Z, Y).predict(Zt))
    state = get_state(a)
    loaded = set_state(NormalScoresHead, json.loads(json.dumps(state)), state.arrays, state.texts)
    np.testing.assert_array_equal(loaded.predict(Zt), a.predict(Zt))
    assert loaded.is_linear and loaded.out_of_fold_predictions() is None
    assert registry.name_of(a) == "normal-scores"
    assert NormalScoresHead().fit(Z, Y[:, 0]).predict(Zt).shape == (len(Zt),)
    with pytest.raises(InputError, match="base must be a leapscreen head"):
        NormalScoresHead(base=Ridge()).fit(Z, Y)


@parametrize_with_checks(
    [NormalScoresHead(RidgeHead(alphas=[0.1, 1.0, 10.0]))], expected_failed_checks=expected_failures
)
def test_sklearn_estimator_checks(estimator, check):  # noqa: ANN001
    check(estimator)


def test_leap_collapses_exactly_and_round_trips_in_a_fresh_process(tmp_path):
    data, _ = simulate_screen(n_samples=80, n_genes=100, n_perturbations=8, random_state=4)
    train, test = data.sample_ids[:60], data.sample_ids[60:]
    model = LEAP(
        representation=[("genes", ["rr-ridge", NormalScoresHead()])], n_seeds=1, n_genes=80
    ).fit(data.expression.loc[train], data.responses.loc[train])
    assert model.is_linear
    x = data.expression.loc[test]
    expected = model.predict(x)
    np.testing.assert_allclose(expected, model.predict(x, layered=True), atol=1e-5)
    model.save(tmp_path / "m")
    x.to_parquet(tmp_path / "x.parquet")
    code = (
        "import sys, pandas as pd; from leapscreen.ensemble import LEAP\n"
        "LEAP.load(sys.argv[1]).predict(pd.read_parquet(sys.argv[2])).to_parquet(sys.argv[3])\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    args = [str(tmp_path / "m"), str(tmp_path / "x.parquet"), str(tmp_path / "p.parquet")]
    subprocess.run([sys.executable, "-c", code, *args], check=True, env=env, timeout=120)
    np.testing.assert_allclose(pd.read_parquet(tmp_path / "p.parquet"), expected, atol=1e-6)
