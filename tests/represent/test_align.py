"""SourceAligner: per-source standardisation and ComBat (Johnson et al. 2007)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from leapscreen.represent.align import SourceAligner


def _batches(sizes=(60, 40, 50), d=200, seed=0, scale_sd=0.3):
    """Shared biology plus a planted per-batch, per-gene shift and scale."""
    rng = np.random.default_rng(seed)
    base_mean = rng.normal(0, 1, d)
    Xs, labels = [], []
    for k, n in enumerate(sizes):
        shift = rng.normal(0, 1.5, d)
        scale = np.exp(rng.normal(0, scale_sd, d))
        Xs.append(base_mean + rng.normal(0, 1, (n, d)) * scale + shift)
        labels += [f"b{k}"] * n
    return np.vstack(Xs), np.array(labels)


def _batch_mean_gap(X, labels):
    """Mean over genes of the largest minus smallest batch mean."""
    means = np.stack([X[labels == s].mean(axis=0) for s in np.unique(labels)])
    return float(np.mean(means.max(axis=0) - means.min(axis=0)))


def test_standardize_gives_mean_zero_sd_one_per_source():
    X, labels = _batches()
    Z = SourceAligner("standardize").fit_transform(X, labels)
    for s in np.unique(labels):
        part = Z[labels == s]
        np.testing.assert_allclose(part.mean(axis=0), 0.0, atol=1e-10)
        np.testing.assert_allclose(part.std(axis=0), 1.0, atol=1e-10)


def test_standardize_unseen_sources_own_statistics_or_pooled_reference():
    X, labels = _batches()
    al = SourceAligner("standardize", min_source_samples=10).fit(X, labels)
    rng = np.random.default_rng(5)
    new = rng.normal(3.0, 2.0, (30, X.shape[1]))
    Z = al.transform(new, ["new"] * 30)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, atol=1e-10)
    few = al.transform(new[:3], ["new"] * 3)
    expected = (new[:3] - X.mean(axis=0)) / X.std(axis=0)
    np.testing.assert_allclose(few, expected, atol=1e-10)
    # one sample of a known source gets exactly the row of the batch transform
    one = al.transform(X[[5]], ["b0"])
    np.testing.assert_allclose(one[0], al.transform(X, labels)[5])


def test_combat_removes_planted_batch_shift():
    X, labels = _batches()
    before = _batch_mean_gap(X, labels)
    Z = SourceAligner("combat").fit_transform(X, labels)
    after = _batch_mean_gap(Z, labels)
    assert after < 0.1 * before
    # output stays on the pooled scale (grand mean preserved)
    np.testing.assert_allclose(Z.mean(axis=0), X.mean(axis=0), atol=0.1)


def test_combat_location_scale_without_shrinkage_is_exact():
    X, labels = _batches()
    al = SourceAligner("combat", empirical_bayes=False).fit(X, labels)
    Z = al.transform(X, labels)
    # every batch gets the grand mean and the pooled within-batch sd (ddof=1 inside batches)
    grand = X.mean(axis=0)
    resid = np.concatenate([X[labels == s] - X[labels == s].mean(axis=0) for s in al.sources_])
    pooled_sd = np.sqrt((resid**2).mean(axis=0))
    for s in al.sources_:
        part = Z[labels == s]
        np.testing.assert_allclose(part.mean(axis=0), grand, atol=1e-9)
        np.testing.assert_allclose(part.std(axis=0, ddof=1), pooled_sd, rtol=1e-9)


def test_combat_empirical_bayes_matches_location_scale_when_shrinkage_is_negligible():
    # large batches: the priors weigh little against 1,000+ samples per batch
    X, labels = _batches(sizes=(1500, 1000), d=1000, seed=3)
    eb = SourceAligner("combat").fit(X, labels)
    ls = SourceAligner("combat", empirical_bayes=False).fit(X, labels)
    assert np.max(np.abs(eb.gamma_star_ - ls.gamma_star_)) < 0.01
    ratio = np.abs(eb.delta_star_ / ls.delta_star_ - 1.0)
    assert np.median(ratio) < 0.01 and np.quantile(ratio, 0.99) < 0.06
    corrected_eb, corrected_ls = eb.transform(X, labels), ls.transform(X, labels)
    rel = np.linalg.norm(corrected_eb - corrected_ls) / np.linalg.norm(corrected_ls - X)
    assert rel < 0.01


def test_combat_estimates_are_the_fixed_point_of_the_posterior_equations():
    X, labels = _batches(sizes=(12, 8, 30), d=300, seed=4)
    al = SourceAligner("combat", tol=1e-10).fit(X, labels)
    Zs = (X - al.grand_mean_) / al.pooled_sd_
    for k, s in enumerate(al.sources_):
        z = Zs[labels == s]
        n = z.shape[0]
        g_hat, d_hat = z.mean(axis=0), z.var(axis=0, ddof=1)
        g_bar, t2 = g_hat.mean(), g_hat.var(ddof=1)
        v, s2 = d_hat.mean(), d_hat.var(ddof=1)
        a, b = (2 * s2 + v**2) / s2, (v * s2 + v**3) / s2
        g, d = al.gamma_star_[k], al.delta_star_[k]
        np.testing.assert_allclose(g, (n * t2 * g_hat + d * g_bar) / (n * t2 + d), rtol=1e-6)
        np.testing.assert_allclose(
            d, (0.5 * ((z - g) ** 2).sum(axis=0) + b) / (n / 2 + a - 1), rtol=1e-6
        )
        # small batches are shrunk towards the prior mean
        assert np.abs(g - g_bar).mean() < np.abs(g_hat - g_bar).mean()


def test_combat_unseen_source_with_enough_samples_is_corrected_small_one_left_as_is():
    X, labels = _batches()
    al = SourceAligner("combat", min_source_samples=10).fit(X, labels)
    rng = np.random.default_rng(9)
    new = X[labels == "b0"][:40] + rng.normal(0, 2, X.shape[1])
    Z = al.transform(new, ["new"] * 40)
    ref = al.transform(X, labels)[labels == "b0"][:40]
    assert np.abs(Z.mean(0) - ref.mean(0)).mean() < 0.2 * np.abs(new.mean(0) - ref.mean(0)).mean()
    np.testing.assert_array_equal(al.transform(new[:4], ["new"] * 4), new[:4])


def test_affine_none_and_state_round_trip():
    X, labels = _batches(sizes=(20, 15), d=50)
    for method in ("standardize", "combat", "none"):
        al = SourceAligner(method).fit(X, labels)
        Z = al.transform(X, labels)
        scale, shift = al.affine("b1")
        np.testing.assert_allclose(Z[labels == "b1"], X[labels == "b1"] * scale + shift)
        params, arrays = al.get_state()
        back = SourceAligner.from_state(json.loads(json.dumps(params)), arrays)
        np.testing.assert_array_equal(back.transform(X, labels), Z)
        if method == "none":
            np.testing.assert_array_equal(Z, X)


def test_input_validation():
    X, labels = _batches(sizes=(20, 15), d=10)
    with pytest.raises(ValueError, match="method"):
        SourceAligner("quantile").fit(X, labels)
    with pytest.raises(ValueError, match="labels"):
        SourceAligner().fit(X, labels[:-1])
    al = SourceAligner().fit(X, labels)
    with pytest.raises(ValueError, match="pass the source"):
        al.transform(X)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        al.transform(bad, labels)
