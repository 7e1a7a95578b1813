"""PCARepresentation: agreement with scikit-learn and the exact linear map."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.decomposition import PCA

from leapscreen.base import get_state, set_state
from leapscreen.represent.pca import PCARepresentation


def _data(n=80, d=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)) @ rng.normal(size=(5, d)) * 2 + rng.normal(size=(n, d)) + 3.0


def test_linear_map_matches_sklearn_pca_transform():
    X = _data()
    rep = PCARepresentation(n_components=10, svd_solver="full").fit(X)
    ref = PCA(n_components=10, svd_solver="full").fit(X)
    W, b = rep.linear_map()
    assert W.shape == (40, 10) and b.shape == (10,)
    np.testing.assert_allclose(X @ W + b, ref.transform(X), atol=1e-8)
    np.testing.assert_allclose(rep.transform(X), ref.transform(X), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rep.explained_variance_, ref.explained_variance_)
    new = _data(seed=1)
    np.testing.assert_allclose(rep.transform(new), new @ W + b, rtol=1e-5, atol=1e-5)


def test_components_are_capped_with_a_warning():
    X = _data(n=12, d=40)
    with pytest.warns(UserWarning, match="using 11"):
        rep = PCARepresentation(n_components=256).fit(X)
    assert rep.transform(X).shape == (12, 11)


def test_state_round_trip_and_errors():
    X = _data()
    rep = PCARepresentation(n_components=6, random_state=3).fit(X)
    state = get_state(rep)
    back = set_state(PCARepresentation, json.loads(json.dumps(state)), state.arrays)
    np.testing.assert_array_equal(back.transform(X), rep.transform(X))
    with pytest.raises(ValueError, match="shape"):
        rep.transform(X[:, :10])
    with pytest.raises(RuntimeError, match="not fitted"):
        PCARepresentation().transform(X)
