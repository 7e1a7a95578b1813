"""PSLassoHead: agreement with scikit-learn / scipy, missing data, collapse, seeds, fallbacks."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.linear_model import ElasticNet, ElasticNetCV, Lasso, LassoCV
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

from leapscreen.errors import InputError
from leapscreen.heads import PSLassoHead, kfold_assignment, spearman_columns
from leapscreen.heads._solvers import path as lasso_module  # the solver moved out of lasso.py


def make_data(n=90, d=12, p=5, missing=0.2, seed=0):
    """Correlated features with offsets and scales, sparse signals, some NaN responses."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, d)) @ (np.eye(d) + 0.4 * rng.standard_normal((d, d)))
    Z = Z * rng.uniform(0.5, 3.0, d) + rng.normal(0.0, 3.0, d)
    B = rng.standard_normal((d, p)) * (rng.random((d, p)) < 0.4)
    Y = Z @ B + rng.standard_normal((n, p)) * 2.0 + 5.0
    Y[rng.random((n, p)) < missing] = np.nan
    Y[:, 0] = Z @ B[:, 0] + rng.standard_normal(n)  # fully observed
    return Z, Y


def fold_rows(Y, j, n_folds=5, seed=0):
    lab = ~np.isnan(Y[:, j])
    return lab, kfold_assignment(lab, n_folds, seed)


def sklearn_fold_model(Z, y, tr, alpha, l1_ratio, standardize):
    """scikit-learn's solution on the fold's training rows, mapped back to raw features."""
    scaler = StandardScaler(with_std=standardize).fit(Z[tr])
    if l1_ratio == 1.0:
        model = Lasso(alpha=alpha, tol=1e-10, max_iter=200_000)
    else:
        model = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-10, max_iter=200_000)
    model.fit(scaler.transform(Z[tr]), y[tr])
    coef = model.coef_ / scaler.scale_ if standardize else model.coef_
    return coef, model.intercept_ - coef @ scaler.mean_, model, scaler


def brute_force_cv(Z, y, grid, fold, l1_ratio, standardize):
    """The reference CV: scikit-learn fits on every fold x alpha, scipy Spearman, mean."""
    lab = ~np.isnan(y)
    cv = np.zeros(grid.size)
    for a_i, alpha in enumerate(grid):
        for f in range(fold.max() + 1):
            tr, va = lab & (fold != f), fold == f
            _, _, model, scaler = sklearn_fold_model(Z, y, tr, alpha, l1_ratio, standardize)
            pred = model.predict(scaler.transform(Z[va]))
            rho = spearmanr(pred, y[va])[0] if np.ptp(pred) > 0 else 0.0
            cv[a_i] += rho / (fold.max() + 1)
    best = max(i for i in range(grid.size) if cv[i] >= cv.max() - 1e-12)  # ties: smaller alpha
    return cv, best


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_fold_models_match_sklearn(standardize, l1_ratio):
    Z, Y = make_data()
    head = PSLassoHead(l1_ratio=l1_ratio, standardize=standardize, tol=1e-12).fit(Z, Y)
    for j in range(Y.shape[1]):
        lab, fold = fold_rows(Y, j)
        for f in range(5):
            coef, icpt, _, _ = sklearn_fold_model(
                Z, Y[:, j], lab & (fold != f), head.alpha_[j], l1_ratio, standardize
            )
            np.testing.assert_allclose(head.coef_[f][:, j], coef, atol=1e-5, rtol=0)
            np.testing.assert_allclose(head.intercept_[f, j], icpt, atol=1e-5, rtol=0)


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_alpha_grid_is_sklearns(l1_ratio):
    Z, Y = make_data(missing=0.3)
    head = PSLassoHead(l1_ratio=l1_ratio).fit(Z, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for j in range(Y.shape[1]):
            lab = ~np.isnan(Y[:, j])
            Xs = StandardScaler().fit_transform(Z[lab])
            if l1_ratio == 1.0:
                ref = LassoCV(alphas=10, eps=1e-3, cv=2).fit(Xs, Y[lab, j]).alphas_
            else:
                ref = ElasticNetCV(l1_ratio=l1_ratio, alphas=10, eps=1e-3, cv=2)
                ref = ref.fit(Xs, Y[lab, j]).alphas_
            np.testing.assert_allclose(head.alphas_[:, j], ref, rtol=1e-12)
            assert head.alpha_[j] in head.alphas_[:, j]


@pytest.mark.parametrize(("l1_ratio", "standardize"), [(1.0, True), (0.5, True), (1.0, False)])
def test_cv_choice_equals_brute_force(l1_ratio, standardize):
    Z, Y = make_data(n=70, d=8, p=4, seed=3)
    head = PSLassoHead(l1_ratio=l1_ratio, standardize=standardize, tol=1e-12).fit(Z, Y)
    for j in range(Y.shape[1]):
        _, fold = fold_rows(Y, j)
        cv, best = brute_force_cv(Z, Y[:, j], head.alphas_[:, j], fold, l1_ratio, standardize)
        np.testing.assert_allclose(head.cv_scores_[:, j], cv, atol=1e-8)
        assert head.alpha_[j] == head.alphas_[best, j]


def test_missing_responses_are_handled_per_column():
    Z, Y = make_data(p=4, missing=0.35, seed=5)
    full = PSLassoHead(tol=1e-12).fit(Z, Y)
    for j in range(Y.shape[1]):
        alone = PSLassoHead(tol=1e-12).fit(Z, Y[:, [j]])
        np.testing.assert_allclose(alone.coef_[:, :, 0], full.coef_[:, :, j], atol=1e-9)
        np.testing.assert_allclose(alone.cv_scores_[:, 0], full.cv_scores_[:, j], atol=1e-12)
        assert full.n_train_[j] == (~np.isnan(Y[:, j])).sum()
    # NaNs of other columns never leak: column 0 (complete) is unchanged when others lose rows
    Y2 = Y.copy()
    Y2[:40, 1:] = np.nan
    other = PSLassoHead(tol=1e-12).fit(Z, Y2)
    np.testing.assert_allclose(other.coef_[:, :, 0], full.coef_[:, :, 0], atol=1e-12)
    for head in (full, other):
        assert np.isfinite(head.coef_).all() and np.isfinite(head.intercept_).all()
        assert np.isfinite(head.predict(Z)).all()


def test_identical_masks_share_folds_and_results_match_separate_fits():
    Z, Y = make_data(p=3, missing=0.0, seed=7)
    Y[::4, 1:] = np.nan  # columns 1 and 2 share a missingness pattern
    head = PSLassoHead(tol=1e-12).fit(Z, Y)
    assert head.solver_stats_["groups"] == 2
    for j in (1, 2):
        alone = PSLassoHead(tol=1e-12).fit(Z, Y[:, j])
        np.testing.assert_allclose(alone.coef_[:, :, 0], head.coef_[:, :, j], atol=1e-9)


def test_prediction_is_the_linear_collapse_of_the_fold_models():
    Z, Y = make_data(missing=0.25)
    head = PSLassoHead().fit(Z, Y)
    Znew = np.random.default_rng(9).standard_normal((13, Z.shape[1])) * 3
    pred = head.predict(Znew)
    np.testing.assert_allclose(pred, Znew @ head.coef_mean_ + head.intercept_mean_, atol=1e-6)
    folds = np.mean([Znew @ head.coef_[f] + head.intercept_[f] for f in range(5)], axis=0)
    np.testing.assert_allclose(pred, folds, atol=1e-6)
    assert head.coef_.shape == (5, Z.shape[1], Y.shape[1])
    assert head.intercept_.shape == (5, Y.shape[1])
    assert head.alphas_.shape == head.cv_scores_.shape == (10, Y.shape[1])


def test_seeds_reproduce_and_matter():
    Z, Y = make_data(missing=0.2)
    a = PSLassoHead(random_state=4).fit(Z, Y)
    b = PSLassoHead(random_state=4, n_jobs=1).fit(Z, Y)
    c = PSLassoHead(random_state=5).fit(Z, Y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.cv_scores_, b.cv_scores_)
    assert not np.allclose(a.cv_scores_, c.cv_scores_)


def test_fallback_for_few_labels_and_constant_response(caplog):
    Z, Y = make_data(p=3, missing=0.0)
    Y[:, 1] = np.nan
    Y[:7, 1] = np.arange(7.0)  # 7 labels < 2 * n_folds
    Y[:, 2] = 4.0  # constant
    with caplog.at_level(logging.WARNING, logger="leapscreen.heads.lasso"):
        head = PSLassoHead().fit(Z, Y)
    assert head.fallback_.tolist() == [False, True, True]
    assert "fewer than 10 labelled rows" in caplog.text and "constant" in caplog.text
    np.testing.assert_array_equal(head.coef_[:, :, 1:], 0.0)
    pred = head.predict(Z)
    np.testing.assert_allclose(pred[:, 1], 3.0)
    np.testing.assert_allclose(pred[:, 2], 4.0)
    assert np.isnan(head.alpha_[1:]).all() and not np.isnan(head.alpha_[0])


def test_more_features_than_rows_still_solves_the_problem():
    rng = np.random.default_rng(11)
    Z = rng.standard_normal((40, 60))
    Y = Z[:, :3] @ np.array([[2.0], [-1.0], [1.0]]) + 0.5 * rng.standard_normal((40, 1))
    head = PSLassoHead(tol=1e-10, standardize=False).fit(Z, Y)
    lab, fold = fold_rows(Y, 0)
    for f in range(5):
        tr = lab & (fold != f)
        _, _, model, scaler = sklearn_fold_model(Z, Y[:, 0], tr, head.alpha_[0], 1.0, False)

        def objective(w, b, model=model, tr=tr):
            r = Y[tr, 0] - Z[tr] @ w - b
            return r @ r / (2 * tr.sum()) + head.alpha_[0] * np.abs(w).sum()

        ref = objective(model.coef_, model.intercept_ - model.coef_ @ scaler.mean_)
        ours = objective(head.coef_[f][:, 0], head.intercept_[f, 0])
        assert ours <= ref + 1e-7 * max(1.0, abs(ref))


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_fallback_solver_matches_sklearn(monkeypatch, l1_ratio):
    # no active-set rounds at all: every fold problem is finished by the fallback
    monkeypatch.setattr(lasso_module, "_MAX_PDAS_ROUNDS", 0)
    monkeypatch.setattr(lasso_module, "_REFINE_DEPTH", 0)
    Z, Y = make_data(p=3, missing=0.2, seed=8)
    head = PSLassoHead(l1_ratio=l1_ratio, tol=1e-12, max_iter=100_000).fit(Z, Y)
    assert head.solver_stats_["fallback"] > 0 and head.solver_stats_["unconverged"] == 0
    for j in range(Y.shape[1]):
        lab, fold = fold_rows(Y, j)
        for f in range(5):
            coef, icpt, _, _ = sklearn_fold_model(
                Z, Y[:, j], lab & (fold != f), head.alpha_[j], l1_ratio, True
            )
            np.testing.assert_allclose(head.coef_[f][:, j], coef, atol=1e-5, rtol=0)


def test_spearman_columns_matches_scipy_with_ties_and_constants():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, (30, 6)).astype(float)  # many ties
    b = rng.standard_normal((30, 6)).round(1)
    a[:, 5] = 2.0  # constant column
    got = spearman_columns(a, b)
    for k in range(5):
        assert got[k] == pytest.approx(spearmanr(a[:, k], b[:, k])[0], abs=1e-12)
    assert got[5] == 0.0
    batched = spearman_columns(np.stack([a, b]), np.stack([b, a]))
    np.testing.assert_allclose(batched[0], got, atol=1e-12)


def test_kfold_assignment_follows_kfold_sizes_and_masks():
    n = 23
    full = kfold_assignment(np.ones(n, bool), 5, 0)
    sizes = np.bincount(full)
    ref = [len(te) for _, te in KFold(5).split(np.zeros(n))]
    assert sizes.tolist() == ref
    lab = np.ones(n, bool)
    lab[[2, 5, 11]] = False
    part = kfold_assignment(lab, 5, 0)
    assert (part[~lab] == -1).all() and sorted(np.bincount(part[lab])) == sorted([4, 4, 4, 4, 4])
    np.testing.assert_array_equal(part, kfold_assignment(lab.copy(), 5, 0))
    assert not np.array_equal(full, kfold_assignment(np.ones(n, bool), 5, 1))


def test_torch_solve_path_matches_numpy():
    torch = pytest.importorskip("torch")
    del torch
    rng = np.random.default_rng(1)
    m, d, b = 2, 20, 9
    A = rng.standard_normal((m, d, 3 * d))
    G = A @ A.transpose(0, 2, 1) / (3 * d)
    G_aug = np.zeros((m, d + lasso_module._PAD, d + lasso_module._PAD))
    G_aug[:, :d, :d] = G
    G_aug[:, np.arange(d, d + 8), np.arange(d, d + 8)] = 1.0
    slot = np.sort(rng.integers(0, m, b))
    sets = rng.random((b, d)) < 0.6
    rhs = rng.standard_normal((b, 2, d))
    workers = lasso_module._Workers(2)
    ours = lasso_module._gather_solve(G_aug, slot, sets, rhs, None, "cpu", workers)
    torch_cpu = lasso_module._gather_solve(G_aug, slot, sets, rhs, None, "torch-cpu", workers)
    workers.close()
    np.testing.assert_allclose(ours, torch_cpu, atol=1e-10)
    for i in range(b):
        s = np.flatnonzero(sets[i])
        np.testing.assert_allclose(
            G[slot[i]][np.ix_(s, s)] @ ours[i, 0, s], rhs[i, 0, s], atol=1e-9
        )
        assert (ours[i, :, ~sets[i]] == 0).all()


def test_bad_input_is_reported():
    Z, Y = make_data()
    with pytest.raises(InputError, match="rows"):
        PSLassoHead().fit(Z[:-1], Y)
    with pytest.raises(InputError, match="NaN or infinite"):
        bad = Z.copy()
        bad[0, 0] = np.nan
        PSLassoHead().fit(bad, Y)
    with pytest.raises(InputError, match="l1_ratio"):
        PSLassoHead(l1_ratio=0.0).fit(Z, Y)
    with pytest.raises(InputError, match="not fitted"):
        PSLassoHead().predict(Z)
    head = PSLassoHead().fit(Z, Y)
    with pytest.raises(InputError, match="features"):
        head.predict(Z[:, :-1])
