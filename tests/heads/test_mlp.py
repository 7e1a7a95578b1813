"""PS-MLP: per-perturbation networks trained as one batched network (heads/mlp.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.utils.estimator_checks import parametrize_with_checks

from leapscreen import registry
from leapscreen.base import get_state, set_state
from leapscreen.errors import InputError
from leapscreen.heads import MeanHead, RidgeHead
from leapscreen.heads._cv import kfold_assignment
from leapscreen.heads._mlp_train import (
    _Adam,
    _Config,
    _fmix,
    _fmix_torch,
    _fold_scaling,
    _forward_numpy,
    _init_weights,
    _train,
)
from leapscreen.heads.mlp import PSMLPHead
from tests.sklearn_expected import expected_failures

torch = pytest.importorskip("torch")

FAST = {"max_epochs": 40, "patience": 5, "batch_size": 32}


def fast_head(**params) -> PSMLPHead:
    return PSMLPHead(**{**FAST, **params})


def nonlinear_data(n=260, d=6, missing=0.15, seed=0):
    """Column 0: a sine and a square; 1: an interaction; 2: linear; 3: pure noise."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0, d) + rng.normal(0, 2, d)
    S = (Z - Z.mean(0)) / Z.std(0)
    Y = np.stack(
        [
            np.sin(2 * S[:, 0]) + S[:, 1] ** 2,
            S[:, 2] * S[:, 3],
            S @ rng.standard_normal(d),
            np.zeros(n),
        ],
        axis=1,
    )
    Y = 3.0 * Y + rng.standard_normal(Y.shape) + 5.0
    Y[rng.random(Y.shape) < missing] = np.nan
    return Z, Y


def column_spearman(Y, P):
    out = []
    for j in range(Y.shape[1]):
        ok = ~np.isnan(Y[:, j])
        out.append(spearmanr(Y[ok, j], P[ok, j])[0] if np.ptp(P[ok, j]) > 0 else 0.0)
    return np.array(out)


@pytest.fixture(scope="module")
def fitted():
    Z, Y = nonlinear_data()
    head = fast_head(learning_rates=(1e-2,), hidden_layers=((16,), (16, 16))).fit(Z[:200], Y[:200])
    return head, Z, Y


def test_recovers_a_nonlinear_signal_and_matches_ridge_on_a_linear_one(fitted):
    head, Z, Y = fitted
    test = slice(200, None)
    mlp = column_spearman(Y[test], head.predict(Z[test]))
    ridge = column_spearman(Y[test], RidgeHead().fit(Z[:200], Y[:200]).predict(Z[test]))
    mean = MeanHead().fit(Z[:200], Y[:200]).predict(Z[test])
    # the mean predictor scores 0 everywhere; ridge cannot see the sine / square / interaction
    assert np.ptp(mean, axis=0).max() == 0
    assert mlp[0] > 0.5 and mlp[1] > 0.4, mlp
    assert mlp[0] > ridge[0] + 0.3 and mlp[1] > ridge[1] + 0.3, (mlp, ridge)
    assert mlp[2] > 0.9 and mlp[2] > ridge[2] - 0.05, (mlp, ridge)
    mse = np.nanmean((Y[test] - head.predict(Z[test])) ** 2, axis=0)
    mse_mean = np.nanmean((Y[test] - mean) ** 2, axis=0)
    assert (mse[:3] < 0.8 * mse_mean[:3]).all()
    assert head.cv_scores_.shape == (2, 4) and set(head.setting_) <= {0, 1}
    assert (head.best_epoch_ >= 1).all() and (head.best_epoch_ <= FAST["max_epochs"]).all()


def test_out_of_fold_predictions_come_from_the_fold_model_that_left_the_row_out(fitted):
    head, Z, Y = fitted
    Zt, Yt = Z[:200], Y[:200]
    oof = head.out_of_fold_predictions()
    assert oof.shape == Yt.shape and oof.dtype == np.float64 and np.isfinite(oof).all()
    k = head.n_folds_
    full = head.predict(Zt)
    for cols, layers in (m for m in head._models if m is not None):
        per_model = _forward_numpy(layers, Zt).reshape(len(Zt), cols.size, k)
        for i, j in enumerate(cols):
            lab = ~np.isnan(Yt[:, j])
            fold = kfold_assignment(lab, k, head.random_state)
            y_all = Yt[lab, j].mean()
            for f in range(k):
                rows = fold == f
                # the fold model, its training mean replaced by the mean of all labelled rows
                shift = y_all - Yt[lab & (fold != f), j].mean()
                np.testing.assert_allclose(oof[rows, j], per_model[rows, i, f] + shift, atol=1e-4)
                assert not np.allclose(oof[rows, j], full[rows, j], atol=1e-6)
            np.testing.assert_allclose(oof[~lab, j], full[~lab, j], atol=1e-4)
    # out of fold is worse than in sample on the noise column (it has nothing to fit)
    assert abs(column_spearman(Yt, oof)[3]) < 0.3


def test_missing_labels_and_other_columns_do_not_reach_a_column():
    Z, Y = nonlinear_data(n=150, seed=3)
    params = {"learning_rates": (1e-2,), "hidden_layers": ((8,),), "max_epochs": 25}
    base = fast_head(**params).fit(Z, Y)
    rng = np.random.default_rng(9)
    Z2, Y2 = Z.copy(), Y.copy()
    # other columns' labels replaced by garbage (same missingness), and the inputs of the rows
    # column 0 does not label replaced too: column 0 must not move at all
    for j in (1, 2, 3):
        lab = ~np.isnan(Y[:, j])
        Y2[lab, j] = rng.normal(0, 100, lab.sum())
    unlab0 = np.isnan(Y[:, 0])
    assert unlab0.sum() > 5
    Z2[unlab0] = rng.normal(0, 50, (unlab0.sum(), Z.shape[1]))
    other = fast_head(**params).fit(Z2, Y2)
    Znew = nonlinear_data(n=40, seed=4)[0]
    # equal up to float32 rounding: the batch shrinks as the other columns' networks stop, and
    # BLAS may round a product of another shape differently (garbage of scale 100 that reached
    # column 0 would move it by far more)
    np.testing.assert_allclose(other.predict(Znew)[:, 0], base.predict(Znew)[:, 0], rtol=1e-5)
    np.testing.assert_allclose(other.cv_scores_[:, 0], base.cv_scores_[:, 0], atol=1e-6)
    np.testing.assert_array_equal(other.best_epoch_[:, 0], base.best_epoch_[:, 0])
    assert not np.allclose(other.predict(Znew)[:, 2], base.predict(Znew)[:, 2])
    # a column without any label, one with too few: the training mean (NaN without labels)
    Y3 = Y.copy()
    Y3[:, 1] = np.nan
    Y3[5:, 3] = np.nan
    head = fast_head(**params).fit(Z, Y3)
    pred = head.predict(Znew)
    assert np.isnan(pred[:, 1]).all() and head.fallback_[[1, 3]].all()
    np.testing.assert_allclose(pred[:, 3], np.nanmean(Y3[:, 3]))
    np.testing.assert_allclose(head.out_of_fold_predictions()[:, 3], np.nanmean(Y3[:, 3]))


def test_same_seed_same_predictions_other_seed_other_predictions():
    from leapscreen.heads._parallel import progress_callback

    Z, Y = nonlinear_data(n=120, seed=5)
    params = {"learning_rates": (1e-2, 1e-3), "hidden_layers": ((8,),), "max_epochs": 15}
    seen = []
    with progress_callback(lambda message, done, total: seen.append((message, done, total))):
        a = fast_head(random_state=3, **params).fit(Z, Y).predict(Z)
    assert seen == [("PS-MLP", 2, 4), ("PS-MLP", 4, 4)]  # one report per setting trained
    b = fast_head(random_state=3, **params).fit(Z, Y).predict(Z)
    c = fast_head(random_state=4, **params).fit(Z, Y).predict(Z)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def _overfitting_problem(n=60, d=20, m=6, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, d))
    target = (Z[:, :1] + rng.standard_normal((n, m))).astype(np.float32)
    val = np.zeros((n, m), dtype=bool)
    val[:15] = True
    train = ~val
    mu, sd = np.zeros((m, d)), np.ones((m, d))
    keys = np.arange(m, dtype=np.uint32) * np.uint32(977)
    return Z, target, train, val, mu, sd, keys


def test_early_stopping_keeps_the_best_inner_validation_epoch():
    Z, target, train, val, mu, sd, keys = _overfitting_problem()
    cfg = _Config((64,), 1e-2, 0.0, 60, 15, 16, 0.0, "cpu")
    out = _train(Z, target, train, val, mu, sd, keys, np.zeros(keys.size, int), 1, 2, cfg)
    hist = out.history
    n_run = hist.shape[0]
    for m in range(keys.size):
        seen = hist[:, m][~np.isnan(hist[:, m])]
        assert out.best_loss[m] == pytest.approx(seen.min(), rel=1e-6)
        assert out.best_epoch[m] == int(np.nanargmin(hist[:, m])) + 1
    # these networks overfit: the kept epoch is not the last one they trained
    last = [np.flatnonzero(~np.isnan(hist[:, m]))[-1] + 1 for m in range(keys.size)]
    assert (out.best_epoch < np.array(last)).all() and n_run < 60
    # the kept weights give exactly the best loss seen (recomputed independently in numpy)
    layers = _fold_scaling(out.weights, mu, sd, np.zeros(keys.size), np.ones(keys.size))
    pred = _forward_numpy(layers, Z)
    loss = (((pred - target) ** 2) * val).sum(0) / val.sum(0)
    np.testing.assert_allclose(loss, out.best_loss, rtol=1e-4)
    # the weights of each network's last epoch were worse on its inner validation rows
    final = hist[np.array(last) - 1, np.arange(keys.size)]
    assert (final > loss * (1 + 1e-3)).all()


def test_hash_and_adam_agree_with_independent_implementations():
    x = np.random.default_rng(0).integers(0, 2**32, 1000, dtype=np.uint64).astype(np.uint32)
    t = torch.from_numpy(x.view(np.int32).copy())
    np.testing.assert_array_equal(_fmix_torch(t).numpy().view(np.uint32), _fmix(x))
    w = _init_weights(np.arange(50, dtype=np.uint32), 9, (7,))
    assert w[0].shape == (9, 50, 7) and np.abs(w[0]).max() <= 1 / 3 and abs(w[0].mean()) < 0.02
    assert np.std(w[0]) == pytest.approx((1 / 3) / np.sqrt(3), rel=0.05)  # U(-1/3, 1/3)
    torch.manual_seed(0)
    params = [torch.randn(30, 3, requires_grad=True), torch.randn(4, requires_grad=True)]
    ref = [p.detach().clone().requires_grad_(True) for p in params]
    manual = [p.detach().clone().requires_grad_(True) for p in params]
    ours, theirs = _Adam(params, 1e-2, 0.01), torch.optim.Adam(ref, lr=1e-2, weight_decay=0.01)
    plain = _Adam(manual, 1e-2, 0.01, fused=False)
    for _ in range(15):
        for ps, opt in ((params, ours), (ref, theirs), (manual, plain)):
            sum((p**3).sum() for p in ps).backward()
            opt.step()
        theirs.zero_grad()
    for a, b, c in zip(params, ref, manual, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(c, b, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"learning_rates": ()}, "learning_rates"),
        ({"learning_rates": (0.01, -1.0)}, "learning_rates"),
        ({"hidden_layers": (20, 20)}, "hidden_layers"),
        ({"hidden_layers": ((20, 0),)}, "hidden_layers"),
        ({"dropout": 1.0}, "dropout"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"patience": 2.5}, "patience"),
        ({"batch_size": True}, "batch_size"),
        ({"weight_decay": -1e-3}, "weight_decay"),
        ({"validation_fraction": 0.0}, "validation_fraction"),
        ({"cv": 1}, "cv"),
        ({"random_state": "zero"}, "random_state"),
        ({"device": "warp-drive"}, "device"),
    ],
)
def test_bad_parameters_are_input_errors_naming_the_parameter(params, name):
    head = PSMLPHead(**params)  # no error yet: __init__ only stores
    with pytest.raises(InputError, match=name) as err:
        head.fit(*nonlinear_data(n=30))
    assert "fix:" in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_unavailable_cuda_is_an_input_error():
    with pytest.raises(InputError, match="CUDA"):
        PSMLPHead(device="cuda").fit(*nonlinear_data(n=30))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_matches_cpu():
    Z, Y = nonlinear_data(n=150, seed=6)
    params = {"learning_rates": (1e-2,), "hidden_layers": ((8,),), "max_epochs": 20}
    cpu = fast_head(**params).fit(Z, Y)
    gpu = fast_head(device="cuda", **params).fit(Z, Y)
    # the same random numbers (hash-based) on both devices: only rounding differs
    np.testing.assert_allclose(gpu.predict(Z), cpu.predict(Z), atol=0.05 * np.nanstd(Y))


def test_registered_and_leap_settings_reach_it():
    head = registry.build("head", "ps-mlp", n_folds=3, random_state=7, device="cpu")
    assert isinstance(head, PSMLPHead) and (head.cv, head.random_state) == (3, 7)
    assert "leap-ps-mlp" in __import__("leapscreen.models", fromlist=["x"]).model_names()


def test_importing_the_module_does_not_import_torch():
    code = "import sys, leapscreen.heads.mlp; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_saved_state_round_trips_exactly(fitted):
    head, Z, _ = fitted
    state = get_state(head)
    json.dumps(state)
    assert state.arrays and all(a.dtype != object for a in state.arrays.values())
    loaded = set_state(PSMLPHead, json.loads(json.dumps(state)), state.arrays, state.texts)
    np.testing.assert_array_equal(loaded.predict(Z), head.predict(Z))
    assert loaded.out_of_fold_predictions() is None
    broken = dict(state.arrays)
    key = next(k for k in broken if k.endswith(".0"))
    broken[key] = broken[key][:-1]
    with pytest.raises(ValueError, match="shape"):
        set_state(PSMLPHead, state, broken, state.texts)


def test_leap_with_ps_mlp_round_trips_in_a_fresh_process(tmp_path):
    from leapscreen.data.simulate import simulate_screen
    from leapscreen.ensemble import LEAP

    data, _ = simulate_screen(n_samples=90, n_genes=60, n_perturbations=4, random_state=2)
    head = fast_head(learning_rates=(1e-2,), hidden_layers=((8,),), max_epochs=15)
    model = LEAP(representation="pca", head=head, latent_dim=6, n_genes=50)
    model.fit(data.expression.iloc[:70], data.responses.iloc[:70])
    path = tmp_path / "model"
    model.save(path)
    new = data.expression.iloc[70:]
    new.to_parquet(tmp_path / "new.parquet")
    code = (
        "import pandas as pd; from leapscreen.ensemble import LEAP;"
        f"m = LEAP.load({str(path)!r});"
        f"m.predict(pd.read_parquet({str(tmp_path / 'new.parquet')!r}))"
        f".to_parquet({str(tmp_path / 'pred.parquet')!r})"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    import pandas as pd

    fresh = pd.read_parquet(tmp_path / "pred.parquet")
    np.testing.assert_array_equal(fresh.to_numpy(), model.predict(new).to_numpy())
    assert not list(path.glob("*.pkl")) and not list(path.glob("*.pt"))


@parametrize_with_checks(
    [PSMLPHead(learning_rates=(1e-2,), hidden_layers=((8,),), max_epochs=30, batch_size=32)],
    expected_failed_checks=expected_failures,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
