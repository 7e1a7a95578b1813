"""Every head keeps the scikit-learn contract: estimator checks, clone, Pipeline, GridSearchCV,
1-D targets, refused complex input, and the generic saved state round-trips predictions."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from leapscreen import registry
from leapscreen.base import BaseHead, LinearHeadMixin, get_state, set_state
from leapscreen.errors import InputError
from leapscreen.heads import ElasticNetHead, MeanHead, PSLassoHead, RidgeHead
from tests.sklearn_expected import expected_failures


def small_heads() -> list[BaseHead]:
    """Fast instances of every head (all parameters at values the checks can afford)."""
    return [
        PSLassoHead(n_alphas=3, n_jobs=1),
        ElasticNetHead(n_alphas=3, n_jobs=1),
        RidgeHead(alphas=[0.1, 1.0, 10.0]),
        RidgeHead(cv="loo"),
        MeanHead(),
    ]


def make_data(n=70, d=8, p=4, missing=0.25, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, d)) * rng.uniform(0.5, 2.0, d) + rng.normal(0, 1, d)
    Y = Z @ rng.standard_normal((d, p)) + rng.standard_normal((n, p))
    Y[rng.random((n, p)) < missing] = np.nan
    return Z, Y


def mean_column_spearman(y_true, y_pred) -> float:  # noqa: ANN001
    """Mean over columns of the Spearman correlation on each column's labelled rows."""
    yt, yp = np.asarray(y_true, float), np.asarray(y_pred, float)
    if yt.ndim == 1:
        yt, yp = yt[:, None], yp[:, None]
    scores = []
    for j in range(yt.shape[1]):
        ok = ~np.isnan(yt[:, j])
        if ok.sum() > 2 and np.ptp(yp[ok, j]) > 0:
            scores.append(spearmanr(yt[ok, j], yp[ok, j])[0])
    return float(np.mean(scores))


@parametrize_with_checks(small_heads(), expected_failed_checks=expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("head", small_heads(), ids=lambda h: type(h).__name__)
def test_every_head_is_a_registered_base_head(head):
    assert isinstance(head, BaseHead)
    assert head.is_linear == isinstance(head, LinearHeadMixin)
    name = registry.name_of(head)
    assert name in registry.head_names()
    assert registry.get_entry("head", name).cls is type(head)


@pytest.mark.parametrize("name", registry.head_names())
def test_every_registered_head_keeps_the_contract(name):
    """Whatever the strategy: default-constructible, NaN-aware, out-of-fold predictions of the
    training rows (what LEAP's combine='cv' and the stacked head use), 1-D in -> 1-D out."""
    cls = registry.get_entry("head", name).cls
    assert issubclass(cls, BaseHead)
    Z, Y = make_data(n=60, d=5, p=2, missing=0.2, seed=4)
    head = cls().fit(Z, Y)
    if isinstance(inspect.getattr_static(cls, "is_linear"), property):  # a wrapper: as its base
        assert head.is_linear == bool(head.base_.is_linear)
    else:
        assert cls.is_linear == issubclass(cls, LinearHeadMixin)
    if head.is_linear:  # the linear form is the prediction
        assert np.allclose(Z @ head.coef_mean_ + head.intercept_mean_, head.predict(Z))
    pred = head.predict(Z)
    assert pred.shape == Y.shape and np.isfinite(pred).all()
    oof = head.out_of_fold_predictions()
    assert oof is not None and oof.shape == Y.shape and np.isfinite(oof).all()
    assert cls().fit(Z, Y[:, 0]).predict(Z).shape == (60,)


def test_registry_translates_leap_settings():
    ridge = registry.build("head", "ridge", n_folds=3, random_state=7, device="cuda")
    assert (ridge.cv, ridge.random_state) == (3, 7)
    lasso = registry.build("head", "ps-lasso", n_folds=4, random_state=2, device="torch-cpu")
    assert (lasso.n_folds, lasso.random_state, lasso.device) == (4, 2, "torch-cpu")
    assert registry.build("head", "ps-enet").l1_ratio == 0.5


def test_init_only_stores_parameters_and_fit_checks_them():
    head = PSLassoHead(n_alphas=-3, l1_ratio=7.0)  # no error yet
    assert head.get_params()["n_alphas"] == -3
    with pytest.raises(InputError, match="n_alphas"):
        head.fit(*make_data())
    with pytest.raises(InputError, match="cv"):
        RidgeHead(cv=1).fit(*make_data())


def test_clone_keeps_parameters_and_drops_the_fit():
    Z, Y = make_data()
    head = PSLassoHead(n_alphas=4, random_state=3).fit(Z, Y)
    copy = clone(head)
    assert copy.get_params() == head.get_params()
    assert not hasattr(copy, "coef_mean_")
    np.testing.assert_array_equal(copy.fit(Z, Y).predict(Z), head.predict(Z))


def test_pipeline_pca_then_head_on_missing_targets():
    Z, Y = make_data(d=12)
    pipe = Pipeline([("pca", PCA(5)), ("head", PSLassoHead())]).fit(Z, Y)
    pca = PCA(5).fit(Z)
    head = PSLassoHead().fit(pca.transform(Z), Y)
    np.testing.assert_allclose(pipe.predict(Z), head.predict(pca.transform(Z)), atol=1e-12)
    assert pipe.predict(Z).shape == Y.shape and np.isfinite(pipe.predict(Z)).all()


def test_grid_search_with_a_nan_aware_spearman_scorer():
    Z, Y = make_data(n=90, seed=2)
    assert np.isnan(Y).any()
    scorer = make_scorer(mean_column_spearman)
    grid = {"alphas": [[1e-2], [1e2], [1e4]]}
    cv = KFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(RidgeHead(cv=5), grid, scoring=scorer, cv=cv).fit(Z, Y)
    # the same scores computed by hand, fold by fold
    by_hand = []
    for params in search.cv_results_["params"]:
        folds = [
            mean_column_spearman(Y[va], RidgeHead(cv=5, **params).fit(Z[tr], Y[tr]).predict(Z[va]))
            for tr, va in cv.split(Z)
        ]
        by_hand.append(np.mean(folds))
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], by_hand, atol=1e-12)
    assert search.best_params_ == search.cv_results_["params"][int(np.argmax(by_hand))]
    assert np.isfinite(search.best_estimator_.predict(Z)).all()


@pytest.mark.parametrize("head", small_heads(), ids=lambda h: type(h).__name__)
def test_one_dimensional_y_gives_one_dimensional_predictions(head):
    Z, Y = make_data()
    col = Y[:, 1]
    pred = clone(head).fit(Z, col).predict(Z)
    assert pred.shape == (Z.shape[0],)
    two_d = clone(head).fit(Z, col[:, None]).predict(Z)
    assert two_d.shape == (Z.shape[0], 1)
    np.testing.assert_array_equal(pred, two_d[:, 0])


@pytest.mark.parametrize("head", small_heads(), ids=lambda h: type(h).__name__)
def test_complex_input_is_refused_not_cast(head):
    Z, Y = make_data()
    with pytest.raises(ValueError, match="Complex data not supported"):
        clone(head).fit(Z + 1j, Y)
    with pytest.raises(ValueError, match="Complex data not supported"):
        clone(head).fit(Z, Y + 0j)
    fitted = clone(head).fit(Z, Y)
    with pytest.raises(InputError, match="Complex data not supported"):
        fitted.predict(Z.astype(complex))


def test_validation_errors_are_input_errors_and_sklearn_errors():
    Z, Y = make_data()
    with pytest.raises(NotFittedError):
        RidgeHead().predict(Z)
    with pytest.raises(InputError, match="not fitted"):
        RidgeHead().predict(Z)
    with pytest.raises(InputError, match="infinite"):
        bad = Y.copy()
        bad[0, 0] = np.inf
        MeanHead().fit(Z, bad)
    with pytest.raises(InputError, match="target y is None"):
        MeanHead().fit(Z, None)


@pytest.mark.parametrize("one_d", [False, True])
@pytest.mark.parametrize("head", small_heads(), ids=lambda h: type(h).__name__)
def test_saved_state_round_trips_predictions_exactly(head, one_d):
    Z, Y = make_data(seed=4)
    Y[:, 2] = np.nan
    Y[:5, 2] = 1.0  # a fallback column
    fitted = clone(head).fit(Z, Y[:, 0] if one_d else Y)
    state = get_state(fitted)
    json.dumps(state)  # the JSON part is JSON (arrays are in state.arrays)
    assert all(isinstance(v, np.ndarray) for v in state.arrays.values())
    loaded = set_state(type(fitted), json.loads(json.dumps(state)), state.arrays, state.texts)
    assert loaded.get_params() == fitted.get_params()
    Znew = Z[::2] * 1.5 - 0.2
    np.testing.assert_array_equal(loaded.predict(Znew), fitted.predict(Znew))
    for attr in ("coef_mean_", "intercept_mean_", "fallback_", "n_train_", "alpha_", "cv_scores_"):
        if hasattr(fitted, attr):
            np.testing.assert_array_equal(getattr(loaded, attr), getattr(fitted, attr))
    np.testing.assert_array_equal(loaded.fallback_mask(), fitted.fallback_mask())


def test_solver_stats_are_plain_ints():
    head = PSLassoHead(n_alphas=3).fit(*make_data())
    assert head.solver_stats_ and all(type(v) is int for v in head.solver_stats_.values())


def test_importing_the_heads_loads_no_lapack_and_no_torch():
    code = (
        "import sys; import leapscreen.heads; from leapscreen.heads._solvers import _lapack; "
        "print('torch' in sys.modules, _lapack.dposv.cache_info().currsize, "
        "_lapack.potr.cache_info().currsize)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "0", "0"]


@pytest.mark.parametrize("head", small_heads(), ids=lambda h: type(h).__name__)
def test_each_listed_expected_failure_really_fails(head):
    from sklearn.utils import estimator_checks

    listed = expected_failures(head)
    assert listed, "every head accepts NaN targets, so at least that check is listed"
    for name in listed:
        with pytest.raises((AssertionError, ValueError, AttributeError)):
            getattr(estimator_checks, name)(type(head).__name__, clone(head))
