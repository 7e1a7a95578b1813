"""LEAP ensemble: exact linear collapse, new-sample prediction, missing genes, accuracy on simulated data."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from leapscreen.data.simulate import simulate_screen
from leapscreen.ensemble import LEAP
from leapscreen.errors import InputError
from leapscreen.models import make_model

FAST_AE = {"max_epochs": 40, "patience": 5}


@pytest.fixture(scope="module")
def sim():
    data, truth = simulate_screen(
        n_samples=160,
        n_genes=300,
        n_perturbations=12,
        n_lineages=4,
        n_programmes=6,
        frac_missing=0.15,
        kind="gene",
        noise=0.5,
        random_state=3,
    )
    train = data.sample_ids[:120]
    test = data.sample_ids[120:]
    return data, truth, train, test


@pytest.fixture(scope="module")
def fitted(sim):
    data, _, train, _ = sim
    model = LEAP(
        representation="damae",
        n_seeds=3,
        latent_dim=16,
        n_genes=200,
        representation_params=FAST_AE,
        random_state=0,
    )
    return model.fit(data.expression.loc[train], data.responses.loc[train])


def test_collapse_agrees_with_layered(sim, fitted):
    data, _, _, test = sim
    assert fitted.is_linear and fitted.gene_coef_.shape == (200, data.n_perturbations)
    collapsed = fitted.predict(data.expression.loc[test])
    layered = fitted.predict(data.expression.loc[test], layered=True)
    np.testing.assert_allclose(collapsed.to_numpy(), layered.to_numpy(), atol=1e-5, rtol=0)
    # and the gene-level map applies to the logged expression directly
    genes = fitted.preprocessor_.genes_
    direct = data.expression.loc[test, genes].to_numpy(np.float64) @ fitted.gene_coef_
    np.testing.assert_allclose(direct + fitted.gene_intercept_, layered.to_numpy(), atol=1e-4)


def test_mixed_representations_collapse(sim):
    data, _, train, test = sim
    model = LEAP(
        representation=["damae", "pca"],
        n_seeds=2,
        latent_dim=8,
        n_genes=150,
        representation_params=FAST_AE,
    ).fit(data.expression.loc[train], data.responses.loc[train])
    assert len(model.members_) == 4
    a = model.predict(data.expression.loc[test])
    b = model.predict(data.expression.loc[test], layered=True)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), atol=1e-5)


def test_single_sample_equals_batch(sim, fitted):
    data, _, _, test = sim
    batch = fitted.predict(data.expression.loc[test])
    one = fitted.predict(data.expression.loc[[test[5]]])
    np.testing.assert_allclose(one.to_numpy()[0], batch.loc[test[5]].to_numpy(), atol=1e-6)


def test_missing_genes_imputed_with_training_mean(sim, fitted):
    data, _, _, test = sim
    genes = fitted.preprocessor_.genes_
    expr = data.expression.loc[test]
    dropped = expr.drop(columns=genes[:10])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pred = fitted.predict(dropped)
    assert any("10" in str(w.message) for w in caught)
    # imputing the training mean by hand gives the same prediction
    filled = expr.copy()
    filled[genes[:10]] = fitted.preprocessor_.mean_[:10]
    np.testing.assert_allclose(pred.to_numpy(), fitted.predict(filled).to_numpy(), atol=1e-5)
    with pytest.raises(InputError):
        fitted.predict(expr.drop(columns=genes[:150]))


def test_leap_learns_planted_signal_and_beats_mean(sim):
    data, truth, train, test = sim
    y_test = data.responses.loc[test]
    scores = {}
    for name in ("mean", "leap-ps-lasso"):
        model = make_model(
            name, latent_dim=16, n_genes=200, n_seeds=3, representation_params=FAST_AE
        )
        model.fit(data.expression.loc[train], data.responses.loc[train])
        pred = model.predict(data.expression.loc[test])
        rho = []
        for p in data.perturbation_ids:
            ok = y_test[p].notna()
            if pred.loc[ok, p].nunique() > 1:
                rho.append(spearmanr(y_test.loc[ok, p], pred.loc[ok, p])[0])
            else:
                rho.append(0.0)
        scores[name] = float(np.mean(rho))
    assert scores["mean"] == 0.0
    assert scores["leap-ps-lasso"] > 0.3


def test_seeds_reproduce(sim):
    data, _, train, test = sim
    kw = dict(
        representation="damae",
        n_seeds=2,
        latent_dim=8,
        n_genes=100,
        representation_params=FAST_AE,
        random_state=7,
    )
    a = LEAP(**kw).fit(data.expression.loc[train], data.responses.loc[train])
    b = LEAP(**kw).fit(data.expression.loc[train], data.responses.loc[train])
    pd.testing.assert_frame_equal(
        a.predict(data.expression.loc[test]), b.predict(data.expression.loc[test])
    )
