"""RBF kernel features: a ridge on them is scikit-learn's KernelRidge with the centred kernel."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.kernel_ridge import KernelRidge
from sklearn.metrics.pairwise import rbf_kernel

from leapscreen.data.simulate import simulate_screen
from leapscreen.ensemble import LEAP
from leapscreen.errors import InputError
from leapscreen.evaluate.metrics import spearman_by_column
from leapscreen.heads import RidgeHead
from leapscreen.represent import RBFKernelRepresentation


def data(n=70, d=15, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n + 20, d)).astype(np.float32)
    y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 - X[:, 2] * X[:, 3] + 0.1 * rng.normal(size=n + 20)
    return X[:n], y[:n], X[n:], y[n:]


def centred(K_new, K_fit):
    col = K_fit.mean(axis=0)
    return K_new - K_new.mean(axis=1, keepdims=True) - col[None, :] + col.mean()


@pytest.mark.parametrize("alpha", [0.3, 3.0])
def test_ridge_on_the_features_is_kernel_ridge(alpha):
    X, y, Xt, _ = data()
    rep = RBFKernelRepresentation(gamma_scale=2.0).fit(X)
    F, Ft = rep.transform(X), rep.transform(Xt)
    assert F.dtype == np.float32 and F.shape[0] == len(X)
    K = rbf_kernel(X.astype(float), gamma=rep.gamma_)
    np.testing.assert_allclose(F.astype(float) @ F.T, centred(K, K), atol=1e-5)
    head = RidgeHead(alphas=[alpha], cv="loo", standardize=False).fit(F, y)
    kr = KernelRidge(alpha=alpha, kernel="precomputed").fit(centred(K, K), y - y.mean())
    Kt = rbf_kernel(Xt.astype(float), X.astype(float), gamma=rep.gamma_)
    np.testing.assert_allclose(head.predict(Ft), kr.predict(centred(Kt, K)) + y.mean(), atol=1e-5)


def test_non_linear_signal_beats_a_linear_ridge_and_is_deterministic():
    X, y, Xt, yt = data(n=300, d=6, seed=3)
    lin = RidgeHead(cv="loo").fit(X, y).predict(Xt)
    rep = RBFKernelRepresentation(gamma_scale=1.0).fit(X)
    krr = RidgeHead(cv="loo", standardize=False).fit(rep.transform(X), y).predict(rep.transform(Xt))
    assert spearman_by_column(yt, krr) > spearman_by_column(yt, lin) + 0.2
    again = RBFKernelRepresentation(gamma_scale=1.0).fit(X).transform(Xt)
    np.testing.assert_array_equal(again, rep.transform(Xt))
    assert rep.gamma_ == pytest.approx(1.0 / 6)


def test_bad_parameters_and_leap_member(tmp_path):
    X, y, _, _ = data()
    for bad in (0, -1.0, float("nan"), "wide"):
        with pytest.raises(InputError, match="gamma_scale must be a positive number"):
            RBFKernelRepresentation(gamma_scale=bad).fit(X)
    sim, _ = simulate_screen(n_samples=70, n_genes=60, n_perturbations=5, random_state=1)
    train, test = sim.sample_ids[:55], sim.sample_ids[55:]
    model = LEAP(representation=[("rbf", ["ridge"])], n_seeds=3, n_genes=50)
    model.fit(sim.expression.loc[train], sim.responses.loc[train])
    assert len(model.members_) == 1 and not model.is_linear  # no seed: one member
    pred = model.predict(sim.expression.loc[test])
    model.save(tmp_path / "m")
    np.testing.assert_allclose(LEAP.load(tmp_path / "m").predict(sim.expression.loc[test]), pred)
