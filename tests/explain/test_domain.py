"""Applicability domain: distance to the training samples and unseen lineages (issue 11, section 4)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from leapscreen.data.simulate import simulate_screen
from leapscreen.ensemble import LEAP
from leapscreen.errors import InputError
from leapscreen.explain.domain import ApplicabilityDomain, normalise_lineages


@pytest.fixture(scope="module")
def fitted():
    data, _ = simulate_screen(
        n_samples=500, n_genes=200, n_perturbations=4, n_lineages=6, random_state=4
    )
    ids = data.expression.index
    train, test = ids[:350], ids[350:]
    model = LEAP(representation="genes", head="ridge", n_seeds=1, n_genes=150).fit(
        data.expression.loc[train],
        data.responses.loc[train],
        lineages=list(data.samples.loc[train, "lineage"]),
    )
    return data, train, test, model


def test_distance_and_percentile_agree_with_brute_force():
    rng = np.random.default_rng(0)
    X, new = rng.normal(size=(120, 15)), rng.normal(size=(7, 15))
    domain = ApplicabilityDomain(n_neighbors=5).fit(X)
    d_new = np.sort(cdist(new, X), axis=1)[:, :5].mean(axis=1)
    np.testing.assert_allclose(domain.distance(new), d_new)
    d_train = cdist(X, X)
    np.fill_diagonal(d_train, np.inf)  # leave one out
    reference = np.sort(np.sort(d_train, axis=1)[:, :5].mean(axis=1))
    np.testing.assert_allclose(domain.reference_, reference)
    np.testing.assert_allclose(domain.percentile(d_new), [(reference <= d).mean() for d in d_new])


def test_far_samples_score_higher_than_held_out_ones(fitted):
    data, _, test, model = fitted
    held_out = model.applicability(data.expression.loc[test])
    shifted = data.expression.loc[test] + 2.0 * data.expression.loc[test].std()
    far = model.applicability(shifted)
    assert (far["domain_distance"].to_numpy() > held_out["domain_distance"].to_numpy()).all()
    assert far["extrapolates"].all() and (far["domain_percentile"] == 1.0).all()
    assert "farther from the training samples" in far["domain_note"].iloc[0]
    # held-out samples of the training distribution: percentiles roughly uniform, few flagged
    pct = held_out["domain_percentile"].to_numpy()
    assert 0.3 < pct.mean() < 0.7
    assert held_out["extrapolates"].mean() < 0.08
    assert list(held_out.index) == list(test)


def test_unseen_lineage_is_flagged_and_unknown_is_not(fitted):
    data, _, test, model = fitted
    rows = data.expression.loc[test[:4]]
    seen = list(data.samples.loc[test[:4], "lineage"])
    lineages = ["Martian tissue", seen[1].upper(), "unknown", None]
    out = model.applicability(rows, lineages=lineages)
    assert out["lineage_seen"].tolist()[:2] == [False, True]
    assert out["lineage_seen"].isna().tolist() == [False, False, True, True]
    assert bool(out["extrapolates"].iloc[0])
    assert "lineage 'martian tissue' absent from training" in out["domain_note"].iloc[0]
    # without lineages nothing is said about them
    assert model.applicability(rows)["lineage_seen"].isna().all()
    with pytest.raises(InputError, match="lineage labels"):
        model.applicability(rows, lineages=["a"])


def test_lineages_and_training_matrix_survive_save_and_load(fitted, tmp_path):
    data, train, test, model = fitted
    np.testing.assert_array_equal(
        model.training_expression().to_numpy(), model.preprocess(data.expression.loc[train])
    )
    assert list(model.training_expression().index) == [str(i) for i in train]
    model.save(tmp_path / "m")
    loaded = LEAP.load(tmp_path / "m")
    lineages = ["Martian tissue", *data.samples.loc[test[1:6], "lineage"]]
    a = model.applicability(data.expression.loc[test[:6]], lineages=lineages)
    b = loaded.applicability(data.expression.loc[test[:6]], lineages=lineages)
    assert a.equals(b)
    np.testing.assert_array_equal(
        loaded.predict_preprocessed(loaded.preprocess(data.expression.loc[test])),
        model.predict_preprocessed(model.preprocess(data.expression.loc[test])),
    )


def test_parameters_and_normalised_labels():
    X = np.random.default_rng(1).normal(size=(20, 3))
    with pytest.raises(InputError, match="threshold"):
        ApplicabilityDomain(threshold=1.5).fit(X)
    with pytest.raises(InputError, match="n_neighbors"):
        ApplicabilityDomain(n_neighbors=0).fit(X)
    assert ApplicabilityDomain(n_neighbors=50).fit(X).n_neighbors_ == 19
    assert normalise_lineages([" Lung ", "NaN", float("nan"), "Skin"]).tolist() == [
        "lung",
        None,
        None,
        "skin",
    ]


def test_reconstruction_error_of_autoencoders(fitted):
    data, train, test, ridge = fitted
    assert "reconstruction_error" not in ridge.applicability(data.expression.loc[test[:3]])
    model = LEAP(
        representation="damae",
        head="ridge",
        n_seeds=2,
        latent_dim=8,
        n_genes=150,
        representation_params={"max_epochs": 20},
    ).fit(data.expression.loc[train], data.responses.loc[train])
    held_out = model.applicability(data.expression.loc[test])
    shifted = model.applicability(data.expression.loc[test] + 2.0 * data.expression.std())
    # held-out samples reconstruct about as well as the training ones; shifted ones far worse
    assert 0.7 < held_out["reconstruction_ratio"].median() < 1.5
    assert (shifted["reconstruction_ratio"] > 2.5 * held_out["reconstruction_ratio"]).all()
    # the two seeds' errors averaged: each member's error computed by hand in its aligned space
    Xz = model.preprocess(data.expression.loc[test[:5]]).astype(np.float64)
    by_hand = []
    for m in model.members_:
        rep = m.representation
        aligned = rep.aligner_.transform(Xz, np.full(5, rep.primary_source_, dtype=object))
        by_hand.append(((rep.reconstruct(Xz.astype(np.float32)) - aligned) ** 2).mean(axis=1))
    np.testing.assert_allclose(
        held_out["reconstruction_error"].iloc[:5], np.mean(by_hand, axis=0), rtol=1e-5
    )
