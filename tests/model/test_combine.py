"""LEAP's combination rules: greedy weights on out-of-fold predictions, exact collapse, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leapscreen.combine import greedy_weights
from leapscreen.ensemble import LEAP
from leapscreen.errors import InputError


def test_greedy_weights_pick_the_informative_group_per_perturbation():
    rng = np.random.default_rng(0)
    n, p = 120, 4
    Y = rng.standard_normal((n, p))
    good_for_first_two = Y + 0.3 * rng.standard_normal((n, p))
    good_for_first_two[:, 2:] = rng.standard_normal((n, 2))
    good_for_last_two = Y + 0.3 * rng.standard_normal((n, p))
    good_for_last_two[:, :2] = rng.standard_normal((n, 2))
    oof = np.stack([good_for_first_two, good_for_last_two])
    w = greedy_weights(oof, Y)
    np.testing.assert_allclose(w.sum(axis=0), 1.0)
    assert (w[0, :2] >= 0.8).all() and (w[1, 2:] >= 0.8).all()
    # one vector for all: the two groups are equally useful overall, both columns get the same
    g = greedy_weights(oof, Y, per_perturbation=False)
    assert np.allclose(g, g[:, :1]) and np.allclose(g.sum(axis=0), 1.0)


def test_greedy_weights_use_labelled_rows_only():
    rng = np.random.default_rng(1)
    Y = rng.standard_normal((80, 3))
    oof = np.stack([Y + rng.standard_normal(Y.shape), rng.standard_normal(Y.shape)])
    Y[rng.random(Y.shape) < 0.3] = np.nan
    w = greedy_weights(oof, Y)
    # the predictions of unlabelled rows are never scored: garbage there changes nothing
    changed = oof.copy()
    changed[:, np.isnan(Y)] = 1e6
    np.testing.assert_array_equal(greedy_weights(changed, Y), w)
    few = np.full((80, 1), np.nan)
    few[:2, 0] = [1.0, 2.0]  # fewer than three labels: equal weights
    np.testing.assert_allclose(greedy_weights(oof[:, :, :1], few), 0.5)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(2)
    n, g = 90, 30
    X = pd.DataFrame(rng.standard_normal((n, g)), columns=[f"g{i}" for i in range(g)])
    Y = pd.DataFrame(
        X.to_numpy()[:, :3] @ rng.standard_normal((3, 3)) + 0.5 * rng.standard_normal((n, 3)),
        columns=["a", "b", "c"],
    )
    Y.iloc[:20, 1] = np.nan
    return X, Y


def test_cv_weights_in_leap_are_exact_and_saved(data, tmp_path):
    X, Y = data
    model = LEAP(
        representation="genes", head=["ridge", "mean"], n_seeds=1, n_genes=30, combine="cv"
    )
    model.fit(X, Y)
    assert model.groups_ == ["genes + ridge", "genes + mean"]
    assert model.weights_.shape == (2, 3) and np.allclose(model.weights_.sum(axis=0), 1.0)
    assert (model.weights_[0] > 0.5).all()  # the signal is linear: ridge carries the weight
    # still one linear map: the collapsed prediction equals the weighted members
    np.testing.assert_allclose(
        model.predict(X).to_numpy(), model.predict(X, layered=True).to_numpy(), rtol=1e-4, atol=1e-4
    )
    members = model.predict_members(X)
    manual = np.einsum("mp,mnp->np", model._member_weights(), members)
    np.testing.assert_allclose(model.predict(X, layered=True).to_numpy(), manual, rtol=1e-5)
    model.save(tmp_path / "m")
    loaded = LEAP.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.weights_, model.weights_)
    np.testing.assert_array_equal(loaded.predict(X).to_numpy(), model.predict(X).to_numpy())


def test_mean_rule_unchanged_and_bad_rules_refused(data):
    X, Y = data
    plain = LEAP(representation="pca", head="ridge", n_seeds=2, latent_dim=4, n_genes=30).fit(X, Y)
    assert plain.weights_ is None
    np.testing.assert_allclose(
        plain.predict(X, layered=True).to_numpy(),
        plain.predict_members(X).mean(axis=0),
        rtol=1e-6,
    )
    with pytest.raises(InputError, match="combine must be one of"):
        LEAP(combine="best", representation="genes", head="ridge").fit(X, Y)


def test_representation_head_pairs(data):
    """Pairs bind heads to one representation: no cross product, groups in order, exact collapse."""
    X, Y = data
    model = LEAP(
        representation=[("genes", "ridge"), ("pca", ["ridge", "mean"])],
        n_seeds=2,
        latent_dim=4,
        n_genes=30,
        combine="cv-global",
    ).fit(X, Y)
    kinds = [(m.kind, m.head_kind, m.group) for m in model.members_]
    # genes is not seeded (one member); pca gets two seeds, each with both of its heads
    assert kinds == [
        ("genes", "ridge", 0),
        ("pca", "ridge", 1),
        ("pca", "mean", 2),
        ("pca", "ridge", 1),
        ("pca", "mean", 2),
    ]
    assert model.groups_ == ["genes + ridge", "pca + ridge", "pca + mean"]
    assert np.allclose(model.weights_, model.weights_[:, :1])  # one vector for all
    np.testing.assert_allclose(
        model.predict(X).to_numpy(), model.predict(X, layered=True).to_numpy(), rtol=1e-4, atol=1e-4
    )
    with pytest.raises(InputError, match="two parts"):
        LEAP(representation=[("genes", "ridge", "x")]).fit(X, Y)


def test_leap_ridges_preset_is_the_mean_of_its_two_strategies(data):
    from leapscreen.heads import ReducedRankRidgeHead, RidgeHead
    from leapscreen.models import make_model, model_names

    X, Y = data
    assert "leap-ridges" in model_names(with_baselines=False)
    model = make_model("leap-ridges", n_genes=30).fit(X, Y)
    assert [m.head_kind for m in model.members_] == ["ridge", "rr-ridge"]
    assert model.is_linear and model.gene_coef_ is not None
    Xz = model.preprocessor_.transform(X)
    ridge = RidgeHead(cv=5, standardize=False).fit(Xz, Y.to_numpy())
    rr = ReducedRankRidgeHead(cv="loo", standardize=False, n_folds=5).fit(Xz, Y.to_numpy())
    expected = (ridge.predict(Xz) + rr.predict(Xz)) / 2
    np.testing.assert_allclose(model.predict(X).to_numpy(), expected, rtol=1e-4, atol=1e-5)


def test_leap_kernel_preset_is_rr_ridge_and_kernel_ridge_on_normal_scores(data):
    from leapscreen.heads import NormalScoresHead, ReducedRankRidgeHead, RidgeHead
    from leapscreen.models import make_model, model_names
    from leapscreen.represent import RBFKernelRepresentation

    X, Y = data
    assert "leap-kernel" in model_names(with_baselines=False)
    model = make_model("leap-kernel", n_genes=30).fit(X, Y)
    assert [(m.kind, m.head_kind) for m in model.members_] == [
        ("genes", "rr-ridge"),
        ("rbf", "normal-scores"),
    ]
    assert not model.is_linear
    Xz = model.preprocessor_.transform(X)
    rr = ReducedRankRidgeHead(cv="loo", standardize=False, n_folds=5).fit(Xz, Y.to_numpy())
    rep = RBFKernelRepresentation().fit(Xz)
    krr = NormalScoresHead(RidgeHead(cv="loo", standardize=False)).fit(rep.transform(Xz), Y)
    expected = (rr.predict(Xz) + krr.predict(rep.transform(Xz))) / 2
    np.testing.assert_allclose(model.predict(X).to_numpy(), expected, rtol=1e-4, atol=1e-4)
