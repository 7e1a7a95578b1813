"""PS-LightGBM: a non-linear planted signal, the CV choice, early stopping on the inner split only,
NaN handling, out-of-fold predictions, reproducibility, text-format persistence in a fresh process
(no pickle), the optional dependency, bad parameters, and the fast grid against the reference."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

pytest.importorskip("lightgbm")

from leapscreen import registry  # noqa: E402
from leapscreen.base import get_state, set_state  # noqa: E402
from leapscreen.errors import InputError  # noqa: E402
from leapscreen.heads import MeanHead, PSLightGBMHead, RidgeHead, kfold_assignment  # noqa: E402
from leapscreen.heads.boosting import REFERENCE_GRID, import_lightgbm  # noqa: E402
from tests.sklearn_expected import expected_failures  # noqa: E402

#: one cheap candidate for the tests that are not about the grids
TINY = [{"learning_rate": 0.2, "n_estimators": 30, "num_leaves": 7, "colsample_bytree": 0.8}]


def make_data(n=150, d=6, p=3, missing=0.2, noise=0.3, seed=0):
    """Non-linear responses (a step and a bump); column 0 fully observed."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, d))
    Y = np.stack(
        [
            (Z[:, j] > 0.3).astype(float) + np.exp(-(Z[:, j + 1] ** 2)) + noise * rng.normal(size=n)
            for j in range(p)
        ],
        axis=1,
    )
    Y[:, 1:][rng.random((n, p - 1)) < missing] = np.nan
    return Z, Y


def mean_spearman(truth, pred) -> float:  # noqa: ANN001
    scores = []
    for j in range(truth.shape[1]):
        ok = ~np.isnan(truth[:, j])
        scores.append(spearmanr(pred[ok, j], truth[ok, j])[0])
    return float(np.mean(scores))


@parametrize_with_checks(
    [PSLightGBMHead(grid=TINY, cv=3, n_jobs=1)], expected_failed_checks=expected_failures
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_listed_expected_failures_really_fail():
    head = PSLightGBMHead(grid=TINY, cv=3, n_jobs=1)
    listed = expected_failures(head)
    assert listed
    for name in listed:
        with pytest.raises((AssertionError, ValueError, AttributeError)):
            getattr(estimator_checks, name)(type(head).__name__, clone(head))


def test_registered_with_leap_settings():
    head = registry.build("head", "ps-lightgbm", n_folds=4, random_state=3, latent_dim=9)
    assert isinstance(head, PSLightGBMHead) and (head.cv, head.random_state) == (4, 3)


def test_nonlinear_signal_beats_the_mean_and_ridge():
    Z, Y = make_data(n=260)
    tr, te = slice(0, 180), slice(180, None)
    head = PSLightGBMHead(n_jobs=1).fit(Z[tr], Y[tr])
    pred = head.predict(Z[te])
    rho = mean_spearman(Y[te], pred)
    assert rho > 0.5
    assert rho > mean_spearman(Y[te], RidgeHead().fit(Z[tr], Y[tr]).predict(Z[te])) + 0.05
    err = np.nanmean((pred - Y[te]) ** 2)
    assert err < 0.6 * np.nanmean((MeanHead().fit(Z[tr], Y[tr]).predict(Z[te]) - Y[te]) ** 2)


def test_cv_choice_early_stopping_and_out_of_fold_predictions():
    Z, Y = make_data(seed=1)
    Y[:, 2] = np.nan
    Y[:4, 2] = 2.0  # too few labels: a fallback
    grid = [dict(TINY[0], n_estimators=200), dict(TINY[0], learning_rate=0.01)]
    head = PSLightGBMHead(grid=grid, cv=3, early_stopping_rounds=5, n_jobs=1).fit(Z, Y)
    assert head.fallback_.tolist() == [False, False, True]
    assert head.cv_scores_.shape == (2, 3) and np.isnan(head.cv_scores_[:, 2]).all()
    for j in (0, 1):
        assert head.candidate_[j] == int(np.argmax(head.cv_scores_[:, j]))
    # early stopping: at the high learning rate the boosters stop well before 200 trees
    chosen_fast = head.candidate_ == 0
    assert (head.n_estimators_[:, chosen_fast[:2].nonzero()[0]] < 200).all()
    assert (head.n_estimators_[:, :2] >= 1).all() and (head.n_estimators_[:, 2] == 0).all()
    oof = head.out_of_fold_predictions()
    full = head.predict(Z)
    for j in (0, 1):
        mask = ~np.isnan(Y[:, j])
        fold = kfold_assignment(mask, 3, 0)
        for f in range(3):
            rows = fold == f
            booster = head._boosters[j][f]
            expected = booster.predict(Z[rows], num_iteration=int(head.n_estimators_[f, j]))
            np.testing.assert_allclose(oof[rows, j], expected, rtol=1e-12)
        np.testing.assert_array_equal(oof[~mask, j], full[~mask, j])
        np.testing.assert_allclose(
            full[:, j],
            np.mean(
                [
                    b.predict(Z, num_iteration=int(it))
                    for b, it in zip(head._boosters[j], head.n_estimators_[:, j], strict=True)
                ],
                axis=0,
            ),
            rtol=1e-12,
        )
    np.testing.assert_array_equal(oof[:, 2], 2.0)
    np.testing.assert_array_equal(full[:, 2], 2.0)


def test_validation_fold_never_reaches_its_booster():
    """Labels of fold f change nothing in fold f's booster: not in training, not in early stopping."""
    Z, Y = make_data(seed=2)
    y = Y[:, 0]
    head = PSLightGBMHead(grid=TINY, cv=3, n_jobs=1).fit(Z, y)
    fold = kfold_assignment(np.ones(y.size, bool), 3, 0)
    y2 = y.copy()
    y2[fold == 1] = np.random.default_rng(0).normal(0, 5, (fold == 1).sum())
    again = PSLightGBMHead(grid=TINY, cv=3, n_jobs=1).fit(Z, y2)
    assert head._boosters[0][1].model_to_string() == again._boosters[0][1].model_to_string()
    np.testing.assert_array_equal(again._oof[fold == 1], head._oof[fold == 1])
    assert head._boosters[0][0].model_to_string() != again._boosters[0][0].model_to_string()


def test_unlabelled_rows_are_not_used():
    Z, Y = make_data(seed=3)
    y = Y[:, 1]
    other = np.isnan(y)
    Z2 = Z.copy()
    Z2[other] = np.random.default_rng(4).normal(0, 10, (other.sum(), Z.shape[1]))
    Zq = np.random.default_rng(5).standard_normal((20, Z.shape[1]))
    a = PSLightGBMHead(grid=TINY, cv=3, n_jobs=1).fit(Z, y)
    b = PSLightGBMHead(grid=TINY, cv=3, n_jobs=1).fit(Z2, y)
    np.testing.assert_array_equal(a.predict(Zq), b.predict(Zq))


def test_same_seed_same_predictions():
    Z, Y = make_data(seed=4)
    a = PSLightGBMHead(grid=TINY, cv=3, random_state=7).fit(Z, Y)
    b = PSLightGBMHead(grid=TINY, cv=3, random_state=7).fit(Z, Y)
    np.testing.assert_array_equal(a.predict(Z), b.predict(Z))
    np.testing.assert_array_equal(a.n_estimators_, b.n_estimators_)
    c = PSLightGBMHead(grid=TINY, cv=3, random_state=8).fit(Z, Y)
    assert not np.array_equal(a.predict(Z), c.predict(Z))


@pytest.mark.parametrize("one_d", [False, True])
def test_saved_state_round_trip_in_text_format(one_d):
    Z, Y = make_data(seed=5)
    Y[:, 2] = np.nan
    Y[:3, 2] = 1.0  # a fallback: no booster
    head = PSLightGBMHead(grid=TINY, cv=3).fit(Z, Y[:, 0] if one_d else Y)
    state = get_state(head)
    assert not any("booster" in k for k in state.arrays)  # boosters are texts, not arrays
    p = 1 if one_d else 2
    assert len(state.texts) == 3 * p
    assert all(t.startswith("tree\nversion=v4") for t in state.texts.values())
    loaded = set_state(PSLightGBMHead, json.loads(json.dumps(state)), state.arrays, state.texts)
    Zq = Z[::3] * 1.5 - 0.3
    np.testing.assert_array_equal(loaded.predict(Zq), head.predict(Zq))


def test_leap_round_trip_in_a_fresh_process(tmp_path):
    from leapscreen.data.simulate import simulate_screen
    from leapscreen.ensemble import LEAP

    data, _ = simulate_screen(n_samples=90, n_genes=120, n_perturbations=4, random_state=1)
    model = LEAP(
        representation="pca",
        head="ps-lightgbm",
        head_params={"grid": TINY},
        n_seeds=2,
        latent_dim=6,
        n_genes=100,
    )
    model.fit(data.expression.iloc[:70], data.responses.iloc[:70])
    path = tmp_path / "model"
    model.save(path)
    new = data.expression.iloc[70:]
    new.to_parquet(tmp_path / "new.parquet")
    out = tmp_path / "pred.parquet"
    code = (
        "import pandas as pd; from leapscreen.ensemble import LEAP;"
        f"m = LEAP.load({str(path)!r});"
        f"m.predict(pd.read_parquet({str(tmp_path / 'new.parquet')!r})).to_parquet({str(out)!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    pd.testing.assert_frame_equal(pd.read_parquet(out), model.predict(new))
    files = [f for f in path.rglob("*") if f.is_file()]
    assert not [f for f in files if f.suffix in (".pkl", ".pickle", ".joblib", ".pt")]
    for f in path.glob("*.npz"):
        with np.load(f, allow_pickle=False) as z:
            assert all(z[k].dtype != object for k in z.files)
    # the boosters: LightGBM's own text format, all in one texts.json
    texts = list(json.loads((path / "texts.json").read_text()).values())
    assert texts and all(t.startswith("tree\nversion=v4") for t in texts)


def test_missing_lightgbm_is_a_clear_input_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # import lightgbm -> ImportError
    with pytest.raises(InputError, match=r'pip install "leapscreen\[lightgbm\]"'):
        import_lightgbm()
    with pytest.raises(InputError, match="lightgbm"):
        PSLightGBMHead(grid=TINY).fit(*make_data())


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"grid": "slow"}, "grid"),
        ({"grid": []}, "grid"),
        ({"grid": [{"n_estimators": 0}]}, "n_estimators"),
        ({"cv": 1}, "cv"),
        ({"early_stopping_rounds": 0}, "early_stopping_rounds"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"max_bin": 1}, "max_bin"),
        ({"random_state": "a"}, "random_state"),
        ({"n_jobs": -3}, "n_jobs"),
    ],
)
def test_bad_parameters_are_input_errors(params, needle):
    head = PSLightGBMHead(**params)
    with pytest.raises(InputError, match=needle):
        head.fit(*make_data())


def test_fast_grid_scores_as_well_as_the_reference():
    """On a small non-linear problem the fast default is within 0.03 of LEAP's reference grid."""
    Z, Y = make_data(n=250, d=8, p=1, noise=0.5, seed=6)
    tr, te = slice(0, 150), slice(150, None)
    fast = PSLightGBMHead(grid="fast", cv=3).fit(Z[tr], Y[tr])
    ref = PSLightGBMHead(grid="reference", cv=3).fit(Z[tr], Y[tr])
    assert len(ref.candidates_) == len(REFERENCE_GRID) == 10
    s_fast = mean_spearman(Y[te], fast.predict(Z[te]))
    s_ref = mean_spearman(Y[te], ref.predict(Z[te]))
    assert s_fast > s_ref - 0.03, (s_fast, s_ref)
