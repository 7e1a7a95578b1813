"""Autoencoder, MaskedAutoencoder and DAMAE: corruption, determinism, linear map, training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from leapscreen.base import get_state, set_state
from leapscreen.represent.autoencoder import DAMAE, Autoencoder, MaskedAutoencoder, vime_corrupt


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models run fastest, and robustly on a busy machine, on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


SMALL = dict(latent_dim=6, lr=1e-2, batch_size=32, max_epochs=30, patience=5)


def _low_rank(n=200, d=40, rank=4, noise=0.3, seed=0):
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(rank, d))
    X = rng.normal(size=(n, rank)) @ basis + noise * rng.normal(size=(n, d))
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32)


def test_vime_corruption_statistics():
    n, d, p = 50, 4000, 0.3
    x = (torch.arange(n * d, dtype=torch.float64).reshape(n, d) + 0.5).float()
    out, mask = vime_corrupt(x, p, torch.Generator().manual_seed(0))
    frac = mask.float().mean().item()
    assert abs(frac - p) < 4 * np.sqrt(p * (1 - p) / (n * d))
    assert torch.equal(out[~mask], x[~mask])
    # every value still belongs to its own gene (column) but comes from another row
    donor_row = torch.round((out - 0.5 - torch.arange(d)) / d).long()
    col = torch.round(out - 0.5).long() % d
    assert torch.equal(col, torch.arange(d).expand(n, d))
    rows = torch.arange(n).unsqueeze(1).expand(n, d)
    assert (donor_row[mask] != rows[mask]).all()
    assert torch.equal(donor_row[~mask], rows[~mask])
    # donors are spread over the other rows (uniform offsets 1..n-1)
    counts = torch.bincount((donor_row[mask] - rows[mask]) % n, minlength=n)[1:].float()
    assert counts.min() > 0.7 * counts.mean()
    same, none = vime_corrupt(x, 0.0, torch.Generator())
    assert torch.equal(same, x) and not none.any()


def test_same_seed_same_output_different_seed_differs():
    X = _low_rank()
    a = MaskedAutoencoder(random_state=1, **SMALL).fit(X)
    b = MaskedAutoencoder(random_state=1, **SMALL).fit(X)
    c = MaskedAutoencoder(random_state=2, **SMALL).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert a.history_ == b.history_
    za, zc = a.transform(X), c.transform(X)
    assert np.abs(za - zc).mean() > 0.1 * np.abs(za).mean()


def test_linear_map_equals_transform():
    X = _low_rank()
    model = Autoencoder(random_state=0, **SMALL).fit(X)
    assert model.is_linear
    W, b = model.linear_map()
    Z = model.transform(X)
    assert Z.dtype == np.float32 and Z.shape == (200, 6)
    np.testing.assert_allclose(X @ W + b, Z, atol=1e-5 * max(1.0, np.abs(Z).max()))


def test_training_reduces_loss_and_beats_mean_predictor_on_held_out_data():
    X = _low_rank(n=300)
    train, test = X[:240], X[240:]
    model = MaskedAutoencoder(random_state=0, **SMALL).fit(train)
    hist = model.history_
    assert hist["train"][-1] < 0.6 * hist["train"][0]
    assert hist["refit"][-1] < 0.6 * hist["refit"][0]
    assert min(hist["val"]) < 0.6 * hist["val"][0]
    mse_model = np.mean((model.reconstruct(test) - test) ** 2)
    mse_mean = np.mean((train.mean(0) - test) ** 2)
    assert mse_model < 0.3 * mse_mean


def test_early_stopping_picks_best_epoch_and_retrain_uses_it():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 50)).astype(np.float32)  # pure noise: validation loss soon rises
    model = Autoencoder(
        latent_dim=30, lr=3e-2, batch_size=8, max_epochs=200, patience=4, random_state=0
    ).fit(X)
    val = model.history_["val"]
    assert model.stopped_early_ and len(val) < 200
    assert model.best_epoch_ == int(np.argmin(val)) + 1
    assert len(val) == model.best_epoch_ + 4
    assert model.n_epochs_ == model.best_epoch_ == len(model.history_["refit"])
    kept = Autoencoder(
        latent_dim=30, lr=3e-2, batch_size=8, max_epochs=200, patience=4, retrain=False
    ).fit(X)
    assert kept.history_["refit"] == [] and kept.n_epochs_ == kept.best_epoch_


def test_state_round_trip_is_identical():
    X = _low_rank()
    for model in (
        MaskedAutoencoder(random_state=4, noise_std=0.1, **SMALL).fit(X),
        Autoencoder(hidden_dims=(12,), random_state=0, **SMALL).fit(X),
    ):
        state = get_state(model)
        params, arrays = json.loads(json.dumps(state)), state.arrays
        assert all(isinstance(v, np.ndarray) for v in arrays.values())
        back = set_state(type(model), params, arrays, state.texts, params={"device": "cpu"})
        np.testing.assert_array_equal(back.transform(X), model.transform(X))
        assert back.history_ == model.history_ and back.best_epoch_ == model.best_epoch_


def test_hidden_layers_are_not_linear():
    X = _low_rank()
    model = Autoencoder(hidden_dims=(16,), random_state=0, **SMALL).fit(X)
    assert not model.is_linear
    assert model.transform(X).shape == (200, 6)
    with pytest.raises(ValueError, match="affine"):
        model.linear_map()


def test_damae_pools_aligned_sources_and_stays_linear_per_source():
    X = _low_rank(n=150, seed=1)
    rng = np.random.default_rng(7)
    other = _low_rank(n=100, seed=2) * 2.0 + rng.normal(0, 3, X.shape[1]).astype(np.float32)
    model = DAMAE(random_state=0, **SMALL).fit(
        X, X_unlabelled=other, sources_unlabelled=["cohort"] * 100
    )
    assert model.n_pooled_ == 250 and model.primary_source_ == "screen"
    assert model.aligner_.sources_ == ["screen", "cohort"]
    W, b = model.linear_map()
    Z = model.transform(X)
    np.testing.assert_allclose(X @ W + b, Z, atol=1e-5 * max(1.0, np.abs(Z).max()))
    W2, b2 = model.linear_map(source="cohort")
    Z2 = model.transform(other, sources=["cohort"] * 100)
    np.testing.assert_allclose(other @ W2 + b2, Z2, atol=1e-5 * max(1.0, np.abs(Z2).max()))
    # each source is standardised, so both have mean 0 per gene: identical latent means
    np.testing.assert_allclose(Z.mean(0), Z2.mean(0), atol=1e-4 * max(1.0, np.abs(Z).max()))
    raw = other @ W + b  # the cohort mis-read with the screen alignment
    assert np.abs(raw.mean(0) - Z.mean(0)).max() > 0.1 * np.abs(Z).std()
    one = model.transform(X[[3]])
    np.testing.assert_allclose(one[0], Z[3], rtol=1e-5, atol=1e-6)
    state = get_state(model)
    back = set_state(DAMAE, json.loads(json.dumps(state)), state.arrays, state.texts)
    np.testing.assert_array_equal(back.transform(other, ["cohort"] * 100), Z2)


def test_damae_with_combat_alignment_is_affine_per_source():
    X = _low_rank(n=120, seed=3)
    other = _low_rank(n=80, seed=4) + 2.0
    model = DAMAE(align="combat", random_state=1, **SMALL).fit(
        X, X_unlabelled=other, sources_unlabelled=["cohort"] * 80
    )
    for data, source in ((X, "screen"), (other, "cohort")):
        W, b = model.linear_map(source=source)
        Z = model.transform(data, sources=[source] * len(data))
        np.testing.assert_allclose(data @ W + b, Z, atol=1e-5 * max(1.0, np.abs(Z).max()))


def test_input_validation():
    X = _low_rank()
    with pytest.raises(ValueError, match="NaN"):
        Autoencoder(**SMALL).fit(np.where(X > 2, np.nan, X))
    with pytest.raises(ValueError, match="mask_prob"):
        Autoencoder(mask_prob=1.5).fit(X)
    model = Autoencoder(**SMALL).fit(X)
    with pytest.raises(ValueError, match="genes"):
        model.transform(X[:, :5])
    with pytest.raises(RuntimeError, match="not fitted"):
        Autoencoder().transform(X)
    with pytest.raises(ValueError, match="same genes"):
        DAMAE(**SMALL).fit(X, X_unlabelled=X[:, :10])
