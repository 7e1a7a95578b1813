"""Multi-task heads: reduced-rank ridge (rr-ridge) and the stacked head (stacked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from leapscreen import registry
from leapscreen.base import BaseHead, get_state, set_state
from leapscreen.data.simulate import simulate_screen
from leapscreen.ensemble import LEAP
from leapscreen.errors import InputError
from leapscreen.heads import MeanHead, PSLassoHead, ReducedRankRidgeHead, RidgeHead, StackedHead
from leapscreen.heads._cv import kfold_assignment
from tests.sklearn_expected import expected_failures

RANKS = (1, 2, 3, 4, 5, 6, 8, 10, 20, None)


def mean_spearman(Y: np.ndarray, P: np.ndarray) -> float:
    """Mean over columns of the Spearman correlation on each column's labelled rows."""
    scores = []
    for j in range(Y.shape[1]):
        ok = ~np.isnan(Y[:, j])
        scores.append(spearmanr(Y[ok, j], P[ok, j])[0])
    return float(np.mean(scores))


def low_rank(n=100, n_test=200, d=50, p=60, rank=3, noise=1.0, missing=0.2, seed=0):
    """Y = Z B + noise with B (d x p) of rank ``rank``; training rows with NaN."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n + n_test, d))
    B = rng.standard_normal((d, rank)) @ rng.standard_normal((rank, p)) / np.sqrt(d)
    Y = Z @ B + noise * rng.standard_normal((n + n_test, p))
    Ytr = Y[:n].copy()
    # five missingness patterns (drug screens miss in blocks; also keeps ridge fast)
    masks = rng.random((5, n)) < missing
    Ytr[masks[rng.integers(0, 5, p)].T] = np.nan
    return Z[:n], Ytr, Z[n:], Y[n:]


def independent(n=150, n_test=200, d=30, p=10, noise=1.0, seed=1):
    """Perturbations that share nothing: independent coefficients and noise."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n + n_test, d))
    Y = Z @ (rng.standard_normal((d, p)) / np.sqrt(d)) + noise * rng.standard_normal(
        (n + n_test, p)
    )
    Ytr = Y[:n].copy()
    Ytr[rng.random(Ytr.shape) < 0.15] = np.nan
    return Z[:n], Ytr, Z[n:], Y[n:]


@pytest.fixture(scope="module")
def planted():
    Z, Y, Zt, Yt = low_rank()
    ridge = RidgeHead(cv="loo").fit(Z, Y)
    rr = ReducedRankRidgeHead(ranks=RANKS).fit(Z, Y)
    return Z, Y, Zt, Yt, ridge, rr


# ------------------------------------------------------------------------ reduced-rank ridge


def test_rr_ridge_beats_ridge_on_a_low_rank_signal_and_finds_the_rank(planted):
    Z, Y, Zt, Yt, ridge, rr = planted
    s_ridge = mean_spearman(Yt, ridge.predict(Zt))
    s_rr = mean_spearman(Yt, rr.predict(Zt))
    assert s_rr > s_ridge + 0.08, (s_rr, s_ridge)
    assert np.all(rr.rank_ == rr.rank_[0]) and 2 <= rr.rank_[0] <= 5
    assert rr.is_linear and rr.coef_mean_.shape == (Z.shape[1], Y.shape[1])
    # the map is rank-limited: the centred coefficient matrix has rank <= the chosen rank
    sv = np.linalg.svd(rr.coef_mean_, compute_uv=False)
    assert sv[rr.rank_[0]] < 1e-8 * sv[0]


def test_rr_ridge_per_perturbation_ranks(planted):
    Z, Y, Zt, Yt, ridge, _ = planted
    rr = ReducedRankRidgeHead(ranks=RANKS, per_perturbation=True).fit(Z, Y)
    assert mean_spearman(Yt, rr.predict(Zt)) > mean_spearman(Yt, ridge.predict(Zt)) + 0.05
    assert np.median(rr.rank_) <= 6


@pytest.mark.parametrize("cv", ["loo", 5])
def test_full_rank_is_ridge_exactly(cv):
    Z, Y, Zt, _ = low_rank(n=60, p=12, seed=3)
    ridge = RidgeHead(cv=cv).fit(Z, Y)
    for ranks in [(None,), (500,)]:
        rr = ReducedRankRidgeHead(ranks=ranks, cv=cv).fit(Z, Y)
        np.testing.assert_array_equal(rr.predict(Zt), ridge.predict(Zt))
        np.testing.assert_array_equal(rr.out_of_fold_predictions(), ridge.out_of_fold_predictions())
        np.testing.assert_array_equal(rr.alpha_, ridge.alpha_)
        assert (rr.rank_ == 12).all()


@pytest.mark.parametrize("d", [20, 120])  # primal and kernel forms of the fold refits
def test_rr_cv_scores_and_oof_match_an_independent_computation(d):
    """The rank CV by hand: row folds, each column's ridge refitted (scikit-learn) at ridge's
    penalty on its labelled training rows, SVD of the fold models' fitted training rows,
    validation rows predicted by the fold models, projected, scored on labelled rows only."""
    Z, Y, _, _ = low_rank(n=70, d=d, p=15, seed=5, missing=0.3)
    ranks = (1, 3, None)
    rr = ReducedRankRidgeHead(ranks=ranks, n_folds=4, random_state=2).fit(Z, Y)
    ridge = RidgeHead(cv="loo", random_state=2).fit(Z, Y)
    Xg = StandardScaler().fit_transform(Z)  # features z-scored on all rows: no label
    fold = kfold_assignment(np.ones(len(Z), bool), 4, 2)
    total = np.zeros((3, Y.shape[1]))
    by_hand_oof = np.zeros((3, *Y.shape))
    for f in range(4):
        tr, va = fold != f, fold == f
        P = np.column_stack(
            [
                Ridge(alpha=ridge.alpha_[j])
                .fit(Xg[tr & ~np.isnan(Y[:, j])], Y[tr & ~np.isnan(Y[:, j]), j])
                .predict(Xg)
                for j in range(Y.shape[1])
            ]
        )
        m = P[tr].mean(0)
        Vt = np.linalg.svd(P[tr] - m)[2]
        for i, r in enumerate([1, 3, 15]):
            V = Vt[:r].T
            pred = m + (P[va] - m) @ V @ V.T
            by_hand_oof[i][va] = pred
            for j in range(Y.shape[1]):
                ok = ~np.isnan(Y[va, j])
                total[i, j] += spearmanr(pred[ok, j], Y[va][ok, j])[0] / 4
    np.testing.assert_allclose(rr.cv_scores_, total, atol=1e-9)
    best = int(np.argmax(total.mean(1)))
    assert best < 2 and rr.rank_[0] == [1, 3, 15][best]  # a reduced rank, so the OOF is projected
    lab = ~np.isnan(Y)
    oof = rr.out_of_fold_predictions()
    np.testing.assert_allclose(oof[lab], by_hand_oof[best][lab], atol=1e-9)
    # unlabelled entries: the head's own prediction
    np.testing.assert_allclose(oof[~lab], rr.predict(Z)[~lab], atol=1e-10)
    # the final map: ridge's fitted values projected on their own top singular vectors
    F = ridge.predict(Z)
    Vt = np.linalg.svd(F - F.mean(0))[2][: rr.rank_[0]]
    expected = F.mean(0) + (ridge.predict(Z[:7]) - F.mean(0)) @ Vt.T @ Vt
    np.testing.assert_allclose(rr.predict(Z[:7]), expected, atol=1e-9)


def test_rr_ridge_reproducible_and_fallbacks():
    Z, Y, Zt, _ = low_rank(n=60, p=12, seed=4)
    Y[:, 5] = np.nan
    Y[:4, 5] = 2.0  # too few labels: the training mean
    a = ReducedRankRidgeHead(ranks=(2, 4, None), random_state=1).fit(Z, Y)
    b = ReducedRankRidgeHead(ranks=(2, 4, None), random_state=1).fit(Z, Y)
    np.testing.assert_array_equal(a.predict(Zt), b.predict(Zt))
    np.testing.assert_array_equal(a.cv_scores_, b.cv_scores_)
    c = ReducedRankRidgeHead(ranks=(2, 4, None), random_state=2).fit(Z, Y)
    assert not np.array_equal(a.cv_scores_, c.cv_scores_)  # other folds
    assert a.fallback_[5] and a.rank_[5] == 0
    np.testing.assert_array_equal(a.predict(Zt)[:, 5], 2.0)
    np.testing.assert_array_equal(a.out_of_fold_predictions()[:, 5], 2.0)
    assert np.isnan(a.cv_scores_[:, 5]).all() and not np.isnan(a.cv_scores_[:, :5]).any()


def test_leap_with_rr_ridge_collapses_exactly():
    data, _ = simulate_screen(n_samples=90, n_genes=120, n_perturbations=10, random_state=2)
    train, test = data.sample_ids[:70], data.sample_ids[70:]
    model = LEAP(representation="pca", head="rr-ridge", n_seeds=2, latent_dim=8, n_genes=100)
    model.fit(data.expression.loc[train], data.responses.loc[train])
    assert model.is_linear
    assert all(isinstance(m.head, ReducedRankRidgeHead) for m in model.members_)
    collapsed = model.predict(data.expression.loc[test])
    layered = model.predict(data.expression.loc[test], layered=True)
    np.testing.assert_allclose(collapsed.to_numpy(), layered.to_numpy(), atol=1e-6, rtol=0)


# ------------------------------------------------------------------------ stacked head


def test_stacked_borrows_from_a_perturbation_with_the_same_response():
    """Column 0 has 20 labels and equals column 1 (fully labelled): the stack learns it from 1."""
    Z, Y, Zt, Yt = independent(seed=2)
    rng = np.random.default_rng(0)
    Y[:, 0] = Y[:, 1]
    Yt[:, 0] = Yt[:, 1]
    lab = np.flatnonzero(~np.isnan(Y[:, 0]))
    Y[np.setdiff1d(np.arange(len(Y)), rng.choice(lab, 20, replace=False)), 0] = np.nan
    stack = StackedHead().fit(Z, Y)
    base = stack.base_
    assert isinstance(base, RidgeHead) and base.cv == 5  # the default first level: 5-fold ridge
    s_base = spearmanr(Yt[:, 0], base.predict(Zt)[:, 0])[0]
    s_stack = spearmanr(Yt[:, 0], stack.predict(Zt)[:, 0])[0]
    assert s_stack > s_base + 0.1, (s_stack, s_base)
    assert np.isfinite(stack.alpha_[0])  # the stack, not the first level, for column 0
    # and the whole is at least as good as the base
    assert mean_spearman(Yt, stack.predict(Zt)) > mean_spearman(Yt, base.predict(Zt))


def test_stacked_is_not_worse_when_perturbations_share_nothing():
    Z, Y, Zt, Yt = independent(seed=3)
    stack = StackedHead().fit(Z, Y)
    base = stack.base_
    s_base, s_stack = mean_spearman(Yt, base.predict(Zt)), mean_spearman(Yt, stack.predict(Zt))
    assert s_base > 0.3  # there is a signal to lose
    assert s_stack > s_base - 0.01, (s_stack, s_base)
    # a perturbation that keeps its first level: exactly the base's predictions, shifted
    kept = np.flatnonzero(np.isinf(stack.alpha_))
    assert kept.size
    diff = stack.predict(Zt)[:, kept] - base.predict(Zt)[:, kept]
    np.testing.assert_allclose(diff - diff[0], 0.0, atol=1e-10)


@pytest.fixture(scope="module")
def stacked_fit():
    Z, Y, Zt, Yt = low_rank(n=80, p=8, d=20, seed=6, noise=1.5)
    return Z, Y, Zt, StackedHead(min_gain=0.0).fit(Z, Y)


def test_stacked_second_level_matches_sklearn_ridge_and_brute_force_loo(stacked_fit):
    Z, Y, Zt, stack = stacked_fit
    oof1 = stack.base_.out_of_fold_predictions()
    stacked_cols = np.flatnonzero(np.isfinite(stack.alpha_))
    assert stacked_cols.size
    j = int(stacked_cols[0])
    rows = np.flatnonzero(~np.isnan(Y[:, j]))
    X = oof1[rows][:, stack.inputs_]
    scaler = StandardScaler().fit(X)
    target = Y[rows, j] - oof1[rows, j]
    model = Ridge(alpha=stack.alpha_[j]).fit(scaler.transform(X), target)
    np.testing.assert_allclose(stack.W_[:, j], model.coef_ / scaler.scale_, atol=1e-9)
    pred = oof1[:, j] + stack.stack_intercept_[j] + oof1[:, stack.inputs_] @ stack.W_[:, j]
    np.testing.assert_allclose(
        pred[rows], oof1[rows, j] + model.predict(scaler.transform(X)), atol=1e-9
    )
    # leave-one-out predictions: the second level refitted without the row (same scaling)
    for i in range(4):
        keep = np.delete(np.arange(rows.size), i)
        m = Ridge(alpha=stack.alpha_[j]).fit(scaler.transform(X[keep]), target[keep])
        expected = oof1[rows[i], j] + m.predict(scaler.transform(X[i : i + 1]))[0]
        assert stack.out_of_fold_predictions()[rows[i], j] == pytest.approx(expected, abs=1e-9)
    # prediction: first level on the new samples, then the second level
    P = stack.base_.predict(Zt)
    expected = P + stack.stack_intercept_ + P[:, stack.inputs_] @ stack.W_
    np.testing.assert_allclose(stack.predict(Zt), expected, atol=1e-12)


def test_stacked_ignores_rows_without_labels(stacked_fit):
    """Samples with no label at all change nothing (each second level sees its labelled rows;
    the leave-one-out first level has no folds that the extra rows could move)."""
    Z, Y, Zt, _ = stacked_fit
    rng = np.random.default_rng(9)
    Z2 = np.vstack([Z, rng.standard_normal((15, Z.shape[1])) * 5])
    Y2 = np.vstack([Y, np.full((15, Y.shape[1]), np.nan)])
    make = lambda: StackedHead(base=RidgeHead(cv="loo", standardize=False), min_gain=0.0)  # noqa: E731
    one, two = make().fit(Z, Y), make().fit(Z2, Y2)
    np.testing.assert_allclose(two.predict(Zt), one.predict(Zt), atol=1e-8)
    np.testing.assert_array_equal(two.alpha_, one.alpha_)
    np.testing.assert_allclose(
        two.out_of_fold_predictions()[: len(Z)], one.out_of_fold_predictions(), atol=1e-8
    )


def test_stacked_reproducible_other_bases_and_oof_requirement(stacked_fit):
    Z, Y, Zt, stack = stacked_fit
    np.testing.assert_array_equal(
        StackedHead(min_gain=0.0).fit(Z, Y).predict(Zt), stack.predict(Zt)
    )
    lasso = StackedHead(base=PSLassoHead(n_alphas=3, n_jobs=1)).fit(Z, Y)
    assert isinstance(lasso.base_, PSLassoHead) and np.isfinite(lasso.predict(Zt)).all()
    assert lasso.out_of_fold_predictions().shape == Y.shape
    flat = StackedHead(base=MeanHead()).fit(Z, Y)  # constant first level: nothing to stack on
    np.testing.assert_allclose(flat.predict(Zt), np.tile(np.nanmean(Y, 0), (len(Zt), 1)))

    class NoOOF(BaseHead):
        def fit(self, Z, Y):  # noqa: ANN001, ANN202, N803
            Zv, Yv = self._validate_fit(Z, Y)
            self.mean_ = np.nanmean(Yv, 0)
            return self

        def predict(self, Z):  # noqa: ANN001, ANN202, N803
            return np.tile(self.mean_, (len(self._validate_predict(Z)), 1))

    with pytest.raises(InputError, match="out-of-fold"):
        StackedHead(base=NoOOF()).fit(Z, Y)


def test_bad_parameters_are_input_errors_raised_in_fit():
    Z, Y, _, _ = low_rank(n=40, p=4)
    cases = [
        (ReducedRankRidgeHead(ranks=(0, None)), "ranks"),
        (ReducedRankRidgeHead(ranks=()), "ranks"),
        (ReducedRankRidgeHead(n_folds=1), "n_folds"),
        (ReducedRankRidgeHead(cv=1), "cv"),
        (StackedHead(alphas=[-1.0]), "alphas"),
        (StackedHead(min_gain=-0.1), "min_gain"),
        (StackedHead(base="ridge"), "base"),
    ]
    for head, word in cases:
        with pytest.raises(InputError, match=word):
            head.fit(Z, Y)


# ------------------------------------------------------------------------ contract, persistence


def contract_heads() -> list[BaseHead]:
    return [ReducedRankRidgeHead(ranks=(1, 2, None)), StackedHead(alphas=[1.0, 100.0])]


@parametrize_with_checks(contract_heads(), expected_failed_checks=expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("head", contract_heads(), ids=lambda h: type(h).__name__)
def test_registered_one_d_and_saved_state(head):
    name = registry.name_of(head)
    assert name in ("rr-ridge", "stacked") and registry.get_entry("head", name).cls is type(head)
    Z, Y, Zt, _ = low_rank(n=60, p=6, d=10, seed=7)
    Y[:, 2] = np.nan
    Y[:5, 2] = 1.0  # a fallback column
    col = clone(head).fit(Z, Y[:, 1]).predict(Zt)
    assert col.shape == (len(Zt),)
    np.testing.assert_array_equal(col, clone(head).fit(Z, Y[:, [1]]).predict(Zt)[:, 0])
    fitted = clone(head).fit(Z, Y)
    state = get_state(fitted)
    loaded = set_state(type(fitted), json.loads(json.dumps(state)), state.arrays, state.texts)
    np.testing.assert_array_equal(loaded.predict(Zt), fitted.predict(Zt))
    np.testing.assert_array_equal(loaded.fallback_mask(), fitted.fallback_mask())
    assert loaded.out_of_fold_predictions() is None  # not saved


def test_leap_round_trip_in_a_fresh_process(tmp_path):
    data, _ = simulate_screen(n_samples=80, n_genes=100, n_perturbations=8, random_state=4)
    train, test = data.sample_ids[:60], data.sample_ids[60:]
    expected, paths = {}, {}
    for head in ("rr-ridge", "stacked"):
        model = LEAP(representation="pca", head=head, n_seeds=2, latent_dim=6, n_genes=80)
        model.fit(data.expression.loc[train], data.responses.loc[train])
        paths[head] = tmp_path / head
        model.save(paths[head])
        expected[head] = model.predict(data.expression.loc[test])
        for f in paths[head].glob("*.npz"):
            with np.load(f, allow_pickle=False) as z:
                assert all(z[k].dtype != object for k in z.files)
        assert not list(paths[head].glob("*.pkl"))
    new = tmp_path / "new.parquet"
    data.expression.loc[test].to_parquet(new)
    code = (
        "import sys, pandas as pd; from leapscreen.ensemble import LEAP\n"
        "x = pd.read_parquet(sys.argv[1])\n"
        "for path, out in zip(sys.argv[2::2], sys.argv[3::2]):\n"
        "    LEAP.load(path).predict(x).to_parquet(out)\n"
    )
    args = []
    for head in paths:
        args += [str(paths[head]), str(tmp_path / f"{head}.parquet")]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", code, str(new), *args], check=True, env=env)
    for head in paths:
        fresh = pd.read_parquet(tmp_path / f"{head}.parquet")
        np.testing.assert_allclose(fresh.to_numpy(), expected[head].to_numpy(), atol=1e-6)
