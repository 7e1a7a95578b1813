"""Out-of-fold predictions of the heads: each labelled row is predicted by a model that did not see it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Lasso, Ridge

from leapscreen.heads import MeanHead, PSLassoHead, RidgeHead
from leapscreen.heads._cv import kfold_assignment


def _data(n=60, d=6, p=3, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, d))
    Y = Z @ rng.standard_normal((d, p)) + 0.5 * rng.standard_normal((n, p))
    Y[rng.random((n, p)) < 0.2] = np.nan
    return Z, Y


def test_ridge_loo_oof_is_the_refit_without_the_row():
    """cv='loo': the out-of-fold prediction of a row is ridge refitted without that row, its mean
    response (the intercept's share) replaced by the mean of all labelled rows."""
    Z, Y = _data()
    head = RidgeHead(cv="loo", standardize=False).fit(Z, Y)
    oof = head.out_of_fold_predictions()
    assert oof.shape == Y.shape
    for j in range(Y.shape[1]):
        rows = np.flatnonzero(~np.isnan(Y[:, j]))
        for i in rows[:5]:
            keep = rows[rows != i]
            m = Ridge(alpha=head.alpha_[j]).fit(Z[keep], Y[keep, j])
            expected = m.predict(Z[i : i + 1])[0] - Y[keep, j].mean() + Y[rows, j].mean()
            assert oof[i, j] == pytest.approx(expected, rel=1e-6, abs=1e-8)
        unlabelled = np.flatnonzero(np.isnan(Y[:, j]))
        np.testing.assert_allclose(oof[unlabelled, j], head.predict(Z[unlabelled])[:, j])


def test_ridge_kfold_oof_uses_the_model_of_the_other_folds():
    Z, Y = _data(seed=1)
    head = RidgeHead(cv=5, standardize=True, random_state=3).fit(Z, Y)
    oof = head.out_of_fold_predictions()
    for j in range(Y.shape[1]):
        mask = ~np.isnan(Y[:, j])
        fold = kfold_assignment(mask, 5, 3)
        for f in range(5):
            rows = np.flatnonzero(fold == f)
            shift = Y[mask, j].mean() - Y[mask & (fold != f), j].mean()
            np.testing.assert_allclose(
                oof[rows, j],
                Z[rows] @ head.coef_[f][:, j] + head.intercept_[f, j] + shift,
                atol=1e-10,
            )


def test_lasso_oof_matches_sklearn_fold_fits():
    """PS-LASSO: the out-of-fold prediction of fold f agrees with sklearn's Lasso fitted on the rest."""
    Z, Y = _data(seed=2)
    head = PSLassoHead(n_alphas=5, standardize=False, tol=1e-10, max_iter=100000, n_jobs=1)
    head.fit(Z, Y)
    oof = head.out_of_fold_predictions()
    j = 0
    mask = ~np.isnan(Y[:, j])
    fold = kfold_assignment(mask, 5, head.random_state)
    for f in range(5):
        tr, va = np.flatnonzero(mask & (fold != f)), np.flatnonzero(fold == f)
        m = Lasso(alpha=head.alpha_[j], tol=1e-12, max_iter=100000).fit(Z[tr], Y[tr, j])
        shift = Y[mask, j].mean() - Y[tr, j].mean()
        np.testing.assert_allclose(oof[va, j], m.predict(Z[va]) + shift, atol=1e-4)


def test_heavily_shrunk_oof_does_not_rank_backwards():
    """Pure noise, alpha huge: plain leave-one-out predictions (the mean of the other rows) rank
    the rows exactly backwards; the re-centred ones carry no such artefact."""
    rng = np.random.default_rng(5)
    Z, y = rng.standard_normal((50, 3)), rng.standard_normal(50)
    head = RidgeHead(cv="loo", alphas=[1e8]).fit(Z, y)
    naive = (y.sum() - y) / (y.size - 1)
    from scipy.stats import spearmanr

    assert spearmanr(naive, y)[0] == pytest.approx(-1.0)
    assert abs(spearmanr(head.out_of_fold_predictions()[:, 0], y)[0]) < 0.5


def test_mean_head_oof_and_loaded_heads():
    Z, Y = _data()
    head = MeanHead().fit(Z, Y)
    np.testing.assert_allclose(head.out_of_fold_predictions(), np.tile(np.nanmean(Y, 0), (60, 1)))
    from leapscreen.base import get_state, set_state

    state = get_state(RidgeHead(cv="loo").fit(Z, Y))
    loaded = set_state(RidgeHead, state, state.arrays, state.texts)
    assert loaded.out_of_fold_predictions() is None  # not saved with the model
    np.testing.assert_allclose(loaded.predict(Z), RidgeHead(cv="loo").fit(Z, Y).predict(Z))


def test_saved_state_holds_a_numeric_dataframe_parameter():
    """A head whose parameter is a plain DataFrame (pan descriptors) saves and loads it."""
    import pandas as pd

    from leapscreen.base import get_state, set_state
    from leapscreen.heads.pan import PanLightGBMHead

    pytest.importorskip("lightgbm")
    desc = pd.DataFrame(
        np.arange(6.0).reshape(3, 2),
        index=pd.Index(["p0", "p1", "p2"], name="perturbation"),
        columns=["d1", "d2"],
    )
    head = PanLightGBMHead(descriptors=desc)
    state = get_state(head)
    loaded = set_state(PanLightGBMHead, state, state.arrays, state.texts)
    pd.testing.assert_frame_equal(loaded.descriptors, desc)
    with pytest.raises(TypeError, match="non-numeric"):
        get_state(PanLightGBMHead(descriptors=desc.astype(str)))
