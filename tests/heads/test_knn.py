"""PS-KNN: agreement with scikit-learn's KNeighborsRegressor, the CV choice, NaN handling,
out-of-fold predictions, the planted signal, reproducibility, saved state, bad parameters."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.metrics import pairwise_distances as sk_pairwise
from sklearn.neighbors import KNeighborsRegressor
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from leapscreen import registry
from leapscreen.base import get_state, set_state
from leapscreen.errors import InputError
from leapscreen.heads import MeanHead, PSKNNHead, kfold_assignment
from leapscreen.heads.knn import pairwise_distances
from tests.sklearn_expected import expected_failures


def make_data(n=90, d=6, p=3, missing=0.25, seed=0):
    """A non-linear response (distance from a centre) in every column; column 0 fully observed."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, d)) * rng.uniform(0.5, 2.0, d)
    Y = np.stack([-np.abs(Z[:, j]) + 0.3 * rng.standard_normal(n) for j in range(p)], axis=1)
    Y[:, 1:][rng.random((n, p - 1)) < missing] = np.nan
    return Z, Y


def fold_models_by_sklearn(Z, y, fold, k, metric, weights, Zq):
    """Mean over folds of KNeighborsRegressor fitted on the labelled rows outside each fold."""
    folds = int(fold.max()) + 1
    preds = []
    for f in range(folds):
        tr = (fold >= 0) & (fold != f)
        model = KNeighborsRegressor(k, metric=metric, weights=weights, algorithm="brute")
        preds.append(model.fit(Z[tr], y[tr]).predict(Zq))
    return np.mean(preds, axis=0)


@parametrize_with_checks(
    [PSKNNHead(n_neighbors_grid=(3, 5), cv=3, n_jobs=1)],
    expected_failed_checks=expected_failures,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_listed_expected_failures_really_fail():
    head = PSKNNHead(n_neighbors_grid=(3, 5), cv=3, n_jobs=1)
    listed = expected_failures(head)
    assert listed
    for name in listed:
        with pytest.raises((AssertionError, ValueError, AttributeError)):
            getattr(estimator_checks, name)(type(head).__name__, clone(head))


def test_registered_with_leap_settings():
    head = registry.build("head", "ps-knn", n_folds=4, random_state=3, device="cuda")
    assert isinstance(head, PSKNNHead) and (head.cv, head.random_state) == (4, 3)


@pytest.mark.parametrize("metric", ["euclidean", "correlation"])
def test_distances_match_sklearn(metric):
    rng = np.random.default_rng(1)
    A, B = rng.standard_normal((7, 5)), rng.standard_normal((9, 5))
    np.testing.assert_allclose(
        pairwise_distances(A, B, metric), sk_pairwise(A, B, metric=metric), atol=1e-10
    )


@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("metric", ["euclidean", "correlation"])
def test_fixed_k_and_metric_match_kneighbors_regressor(metric, weights):
    """The fold models at a fixed (k, metric) are KNeighborsRegressor on each training fold."""
    Z, Y = make_data()
    Zq = np.random.default_rng(5).standard_normal((25, Z.shape[1]))
    head = PSKNNHead(n_neighbors_grid=[7], metrics=[metric], weights=weights, cv=4).fit(Z, Y)
    pred = head.predict(Zq)
    for j in (0, 1):  # column 0 without NaN, column 1 with: neighbours among its labelled rows
        mask = ~np.isnan(Y[:, j])
        fold = kfold_assignment(mask, 4, 0)
        np.testing.assert_array_equal(head.fold_[:, j], fold)
        expected = fold_models_by_sklearn(Z, Y[:, j], fold, 7, metric, weights, Zq)
        np.testing.assert_allclose(pred[:, j], expected, rtol=1e-10, atol=1e-12)
    assert set(head.metric_) == {metric} and set(head.n_neighbors_) == {7}


def test_cv_scores_are_the_mean_validation_spearman_and_the_best_is_chosen():
    Z, Y = make_data(seed=2)
    head = PSKNNHead(n_neighbors_grid=(3, 8, 15), cv=3, random_state=1).fit(Z, Y)
    assert head.cv_scores_.shape == (6, 3) and len(head.settings_) == 6
    j = 2
    mask = ~np.isnan(Y[:, j])
    fold = kfold_assignment(mask, 3, 1)
    for s, (metric, k) in enumerate(head.settings_):
        per_fold = []
        for f in range(3):
            tr, va = (fold >= 0) & (fold != f), fold == f
            model = KNeighborsRegressor(k, metric=metric, algorithm="brute").fit(Z[tr], Y[tr, j])
            # neighbour sets shared by two queries are ties (not one rounding error apart)
            per_fold.append(spearmanr(np.round(model.predict(Z[va]), 9), Y[va, j])[0])
        assert head.cv_scores_[s, j] == pytest.approx(np.mean(per_fold), abs=1e-10)
    for col in range(3):
        best = int(np.argmax(head.cv_scores_[:, col]))
        assert (head.metric_[col], head.n_neighbors_[col]) == head.settings_[best]


def test_out_of_fold_predictions():
    Z, Y = make_data(seed=3)
    Y[:, 2] = np.nan
    Y[:4, 2] = 1.0  # too few labels: a fallback column
    head = PSKNNHead(cv=3).fit(Z, Y)
    oof = head.out_of_fold_predictions()
    assert oof.shape == Y.shape and oof.dtype == np.float64
    full = head.predict(Z)
    for j in (0, 1):
        mask = ~np.isnan(Y[:, j])
        fold = head.fold_[:, j]
        k, metric = int(head.n_neighbors_[j]), head.metric_[j]
        for f in range(3):
            tr, va = (fold >= 0) & (fold != f), fold == f
            model = KNeighborsRegressor(k, metric=metric, algorithm="brute").fit(Z[tr], Y[tr, j])
            np.testing.assert_allclose(oof[va, j], model.predict(Z[va]), atol=1e-12)
        np.testing.assert_array_equal(oof[~mask, j], full[~mask, j])
    assert head.fallback_.tolist() == [False, False, True]
    np.testing.assert_array_equal(oof[:, 2], 1.0)
    np.testing.assert_array_equal(full[:, 2], 1.0)


def test_validation_labels_never_reach_their_own_fold_model():
    """Changing the labels of one fold leaves that fold's out-of-fold predictions unchanged."""
    Z, Y = make_data(seed=4)
    head = PSKNNHead(n_neighbors_grid=[5], metrics=["euclidean"], cv=3).fit(Z, Y)
    rows = head.fold_[:, 0] == 1
    Y2 = Y.copy()
    Y2[rows, 0] += np.random.default_rng(0).normal(0, 5, rows.sum())
    again = PSKNNHead(n_neighbors_grid=[5], metrics=["euclidean"], cv=3).fit(Z, Y2)
    np.testing.assert_array_equal(again._oof[rows, 0], head._oof[rows, 0])
    assert not np.allclose(again._oof[~rows, 0], head._oof[~rows, 0])


def test_unlabelled_rows_are_not_used():
    """The features of rows unlabelled for a column do not change its model."""
    Z, Y = make_data(seed=5)
    y = Y[:, 1]
    other = np.isnan(y)
    Z2 = Z.copy()
    Z2[other] = np.random.default_rng(9).normal(0, 10, (other.sum(), Z.shape[1]))
    Zq = np.random.default_rng(6).standard_normal((20, Z.shape[1]))
    a = PSKNNHead(cv=3).fit(Z, y)
    b = PSKNNHead(cv=3).fit(Z2, y)
    np.testing.assert_array_equal(a.predict(Zq), b.predict(Zq))
    np.testing.assert_array_equal(a.cv_scores_, b.cv_scores_)


def test_planted_signal_beats_the_mean_predictor():
    """Unseen samples of the simulator: positive Spearman and lower error than the training mean."""
    from leapscreen.data.simulate import simulate_screen
    from leapscreen.represent import PCARepresentation

    data, _ = simulate_screen(
        n_samples=260, n_genes=300, n_perturbations=12, noise=0.5, random_state=3
    )
    X = np.log1p(data.expression.to_numpy())
    X = (X - X[:200].mean(0)) / (X[:200].std(0) + 1e-9)
    rep = PCARepresentation(n_components=12).fit(X[:200])
    Z = rep.transform(X)
    Y = data.responses.to_numpy()
    head = PSKNNHead().fit(Z[:200], Y[:200])
    pred, base = head.predict(Z[200:]), MeanHead().fit(Z[:200], Y[:200]).predict(Z[200:])
    truth = Y[200:]
    rho, mse, mse0 = [], [], []
    for j in range(truth.shape[1]):
        ok = ~np.isnan(truth[:, j])
        rho.append(spearmanr(pred[ok, j], truth[ok, j])[0])
        mse.append(np.mean((pred[ok, j] - truth[ok, j]) ** 2))
        mse0.append(np.mean((base[ok, j] - truth[ok, j]) ** 2))
    assert np.nanmean(rho) > 0.2
    assert np.mean(mse) < 0.95 * np.mean(mse0)


def test_same_seed_same_predictions_and_seed_changes_folds():
    Z, Y = make_data(seed=6)
    a = PSKNNHead(cv=3, random_state=11).fit(Z, Y)
    b = PSKNNHead(cv=3, random_state=11).fit(Z, Y)
    np.testing.assert_array_equal(a.predict(Z), b.predict(Z))
    np.testing.assert_array_equal(a._oof, b._oof)
    c = PSKNNHead(cv=3, random_state=12).fit(Z, Y)
    assert not np.array_equal(a.fold_, c.fold_)


@pytest.mark.parametrize("one_d", [False, True])
def test_saved_state_round_trip(one_d):
    Z, Y = make_data(seed=7)
    head = PSKNNHead(cv=3, weights="distance").fit(Z, Y[:, 1] if one_d else Y)
    state = get_state(head)
    loaded = set_state(PSKNNHead, json.loads(json.dumps(state)), state.arrays, state.texts)
    Zq = Z[::3] * 1.3 + 0.1
    np.testing.assert_array_equal(loaded.predict(Zq), head.predict(Zq))
    assert loaded.predict(Zq).shape == head.predict(Zq).shape
    assert list(loaded.metric_) == list(head.metric_)


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"n_neighbors_grid": [0, 5]}, "n_neighbors_grid"),
        ({"n_neighbors_grid": []}, "n_neighbors_grid"),
        ({"n_neighbors_grid": [2.5]}, "n_neighbors_grid"),
        ({"metrics": ["cosine"]}, "metrics"),
        ({"metrics": []}, "metrics"),
        ({"weights": "gaussian"}, "weights"),
        ({"cv": 1}, "cv"),
        ({"n_jobs": 0}, "n_jobs"),
    ],
)
def test_bad_parameters_are_input_errors(params, needle):
    head = PSKNNHead(**params)  # __init__ only stores
    with pytest.raises(InputError, match=needle):
        head.fit(*make_data())
