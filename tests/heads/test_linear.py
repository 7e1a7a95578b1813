"""Baseline heads: MeanHead, RidgeHead (vs scikit-learn brute force), ElasticNetHead."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from leapscreen.errors import InputError
from leapscreen.heads import ElasticNetHead, MeanHead, PSLassoHead, RidgeHead, kfold_assignment


def make_data(n=80, d=10, p=4, missing=0.2, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0, d) + rng.normal(0, 2, d)
    Y = Z @ rng.standard_normal((d, p)) + 3.0 * rng.standard_normal((n, p)) - 1.0
    Y[rng.random((n, p)) < missing] = np.nan
    Y[:, 0] = Z @ rng.standard_normal(d) + rng.standard_normal(n)
    return Z, Y


def test_mean_head_uses_labelled_rows_only(caplog):
    Z, Y = make_data()
    Y[:, 3] = np.nan
    with caplog.at_level(logging.WARNING, logger="leapscreen.heads.linear"):
        head = MeanHead().fit(Z, Y)
    assert "no labelled row" in caplog.text
    expected = [np.mean(Y[~np.isnan(Y[:, j]), j]) for j in range(3)]
    np.testing.assert_allclose(head.intercept_mean_[:3], expected, rtol=1e-12)
    assert np.isnan(head.intercept_mean_[3])
    pred = head.predict(Z[:5])
    assert pred.shape == (5, 4)
    np.testing.assert_allclose(pred[:, :3], np.tile(expected, (5, 1)), rtol=1e-12)
    np.testing.assert_array_equal(head.coef_mean_, 0.0)
    assert head.n_train_.tolist() == (~np.isnan(Y)).sum(0).tolist()


@pytest.mark.parametrize(
    ("scoring", "standardize"), [("spearman", True), ("mse", True), ("spearman", False)]
)
@pytest.mark.parametrize("extra_features", [0, 90])  # d < n and d > n
def test_ridge_matches_sklearn_brute_force(scoring, standardize, extra_features):
    Z, Y = make_data()
    rng = np.random.default_rng(1)
    Z = np.hstack([Z, rng.standard_normal((Z.shape[0], extra_features))])
    head = RidgeHead(scoring=scoring, standardize=standardize).fit(Z, Y)
    grid = head.alphas_
    for j in range(Y.shape[1]):
        lab = ~np.isnan(Y[:, j])
        fold = kfold_assignment(lab, 5, 0)
        cv = np.zeros(grid.size)
        models = {}
        for a_i, alpha in enumerate(grid):
            for f in range(5):
                tr, va = lab & (fold != f), fold == f
                scaler = StandardScaler(with_std=standardize).fit(Z[tr])
                model = Ridge(alpha=alpha).fit(scaler.transform(Z[tr]), Y[tr, j])
                pred = model.predict(scaler.transform(Z[va]))
                if scoring == "spearman":
                    cv[a_i] += spearmanr(pred, Y[va, j])[0] / 5
                else:
                    cv[a_i] -= np.mean((pred - Y[va, j]) ** 2) / 5
                coef = model.coef_ / scaler.scale_ if standardize else model.coef_
                models[a_i, f] = (coef, model.intercept_ - coef @ scaler.mean_)
        np.testing.assert_allclose(head.cv_scores_[:, j], cv, rtol=1e-9, atol=1e-9)
        best = max(i for i in range(grid.size) if cv[i] >= cv.max() - 1e-12)  # ties: larger
        assert head.alpha_[j] == grid[best]
        for f in range(5):
            coef, icpt = models[best, f]
            np.testing.assert_allclose(head.coef_[f][:, j], coef, atol=1e-8)
            np.testing.assert_allclose(head.intercept_[f, j], icpt, atol=1e-8)
    np.testing.assert_allclose(
        head.predict(Z), Z @ head.coef_mean_ + head.intercept_mean_, atol=1e-10
    )


def test_ridge_missing_column_equals_fit_alone_and_falls_back():
    Z, Y = make_data(p=3, missing=0.3, seed=4)
    Y[:, 2] = np.nan
    Y[:6, 2] = 1.0 + np.arange(6)
    head = RidgeHead().fit(Z, Y)
    alone = RidgeHead().fit(Z, Y[:, [1]])
    np.testing.assert_allclose(head.coef_[:, :, 1], alone.coef_[:, :, 0], atol=1e-12)
    assert head.fallback_.tolist() == [False, False, True]
    np.testing.assert_allclose(head.predict(Z)[:, 2], 3.5)


def test_elastic_net_head_is_ps_lasso_with_half_l1():
    Z, Y = make_data()
    enet = ElasticNetHead().fit(Z, Y)
    assert enet.l1_ratio == 0.5
    ref = PSLassoHead(l1_ratio=0.5).fit(Z, Y)
    np.testing.assert_array_equal(enet.coef_mean_, ref.coef_mean_)
    np.testing.assert_allclose(
        enet.predict(Z), Z @ enet.coef_mean_ + enet.intercept_mean_, atol=1e-6
    )


def test_bad_parameters_are_reported():
    Z, Y = make_data()
    with pytest.raises(InputError, match="alphas"):
        RidgeHead(alphas=[-1.0, 1.0]).fit(Z, Y)
    with pytest.raises(InputError, match="scoring"):
        RidgeHead(scoring="r2").fit(Z, Y)
    with pytest.raises(InputError, match="not fitted"):
        MeanHead().predict(Z)
    with pytest.raises(InputError, match="2-D"):
        MeanHead().fit(Z[:, 0], Y)


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("extra_features", [0, 90])  # d < n and d > n
def test_ridge_loo_matches_sklearn_leave_one_out(standardize, extra_features):
    Z, Y = make_data(n=40, missing=0.2, seed=2)
    rng = np.random.default_rng(3)
    Z = np.hstack([Z, rng.standard_normal((Z.shape[0], extra_features))])
    head = RidgeHead(cv="loo", standardize=standardize, scoring="mse").fit(Z, Y)
    grid = head.alphas_
    assert head.coef_.shape == (1, Z.shape[1], Y.shape[1])
    for j in range(Y.shape[1]):
        rows = np.flatnonzero(~np.isnan(Y[:, j]))
        scaler = StandardScaler(with_std=standardize).fit(Z[rows])
        Xs = scaler.transform(Z[rows])
        cv = np.zeros(grid.size)
        for a_i, alpha in enumerate(grid):
            for i in range(rows.size):
                rest = np.delete(np.arange(rows.size), i)
                model = Ridge(alpha=alpha).fit(Xs[rest], Y[rows[rest], j])
                cv[a_i] -= (model.predict(Xs[[i]])[0] - Y[rows[i], j]) ** 2 / rows.size
        np.testing.assert_allclose(head.cv_scores_[:, j], cv, rtol=1e-8, atol=1e-10)
        best = max(i for i in range(grid.size) if cv[i] >= cv.max() - 1e-12)
        assert head.alpha_[j] == grid[best]
        model = Ridge(alpha=grid[best]).fit(Xs, Y[rows, j])
        coef = model.coef_ / scaler.scale_ if standardize else model.coef_
        np.testing.assert_allclose(head.coef_mean_[:, j], coef, atol=1e-8)
        np.testing.assert_allclose(
            head.intercept_mean_[j], model.intercept_ - coef @ scaler.mean_, atol=1e-8
        )


def test_ridge_loo_spearman_picks_like_kfold_on_easy_data():
    Z, Y = make_data(n=120, missing=0.1, seed=5)
    loo = RidgeHead(cv="loo").fit(Z, Y)
    assert np.isfinite(loo.cv_scores_).all()
    # the strong linear signal of column 0 is found by both criteria
    pred = loo.predict(Z)
    lab = ~np.isnan(Y[:, 0])
    assert spearmanr(pred[lab, 0], Y[lab, 0])[0] > 0.9
    with pytest.raises(InputError, match="loo"):
        RidgeHead(cv="lo").fit(Z, Y)
