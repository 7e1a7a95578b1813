"""Every representation keeps the scikit-learn contract: estimator checks, clone, Pipeline, one
fit signature (``y`` never becomes source labels), refused complex input, no torch on import, and
the generic saved state (:func:`leapscreen.base.get_state`) round-trips transforms on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from leapscreen import registry
from leapscreen.base import BaseRepresentation, get_state, set_state
from leapscreen.represent import (
    DAMAE,
    Autoencoder,
    IdentityRepresentation,
    MaskedAutoencoder,
    PCARepresentation,
    RBFKernelRepresentation,
)
from tests.sklearn_expected import expected_failures

FAST = dict(latent_dim=2, max_epochs=2, patience=1, batch_size=8)


def small_representations() -> list[BaseRepresentation]:
    """Fast instances of every representation (the checks fit each a few dozen times)."""
    return [
        PCARepresentation(n_components=2),
        Autoencoder(**FAST),
        Autoencoder(hidden_dims=(3,), **FAST),
        MaskedAutoencoder(**FAST),
        DAMAE(**FAST),
        DAMAE(align="combat", **FAST),
        IdentityRepresentation(),
        RBFKernelRepresentation(),
    ]


@parametrize_with_checks(small_representations(), expected_failed_checks=expected_failures)
def test_scikit_learn_estimator_checks(estimator, check):  # noqa: ANN001
    check(estimator)


def _expression(n=90, d=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)) @ rng.standard_normal((3, d)) + 0.3 * rng.standard_normal(
        (n, d)
    )
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32)


@pytest.mark.parametrize("rep", small_representations(), ids=lambda r: type(r).__name__)
def test_clone_gives_an_unfitted_equal_estimator(rep):  # noqa: ANN001
    X = _expression()
    fitted = clone(rep).fit(X)
    copy = clone(fitted)
    assert copy.get_params() == rep.get_params()
    with pytest.raises(NotFittedError):
        copy.transform(X)
    np.testing.assert_array_equal(copy.fit(X).transform(X), fitted.transform(X))


def test_pca_then_ridge_in_a_pipeline():
    X = _expression()
    y = X[:, :3] @ np.array([1.0, -2.0, 0.5]) + 0.1
    pipe = Pipeline([("rep", PCARepresentation(n_components=3)), ("ridge", Ridge(alpha=1e-3))])
    pred = pipe.fit(X, y).predict(X)
    rep = PCARepresentation(n_components=3).fit(X)
    direct = Ridge(alpha=1e-3).fit(rep.transform(X), y).predict(rep.transform(X))
    np.testing.assert_allclose(pred, direct, rtol=1e-6, atol=1e-6)
    assert np.corrcoef(pred, y)[0, 1] > 0.9


def test_damae_in_a_pipeline_never_takes_y_as_sources():
    X = _expression()
    y = np.where(np.arange(len(X)) % 2 == 0, 1.0, -1.0)  # two "labels" that would split sources
    pipe = Pipeline([("rep", DAMAE(**FAST, random_state=3)), ("ridge", Ridge())]).fit(X, y)
    rep = pipe.named_steps["rep"]
    assert rep.aligner_.sources_ == ["screen"]
    alone = DAMAE(**FAST, random_state=3).fit(X)
    np.testing.assert_array_equal(rep.transform(X), alone.transform(X))
    as_sources = DAMAE(**FAST, random_state=3).fit(X, sources=y)
    assert len(as_sources.aligner_.sources_) == 2


def test_one_fit_signature_and_unlabelled_rows_are_pooled():
    X, extra = _expression(seed=1), _expression(n=30, seed=2)
    for rep in small_representations():
        rep.fit(X, None, sources=["a"] * len(X), X_unlabelled=extra, sources_unlabelled=["b"] * 30)
        assert rep.transform(X).dtype == np.float32
    # ae / mae / pca pool the unlabelled rows exactly like np.vstack (what LEAP did before)
    for make in (lambda: PCARepresentation(n_components=3), lambda: Autoencoder(**FAST)):
        a = make().fit(X, X_unlabelled=extra)
        b = make().fit(np.vstack([X, extra]))
        np.testing.assert_array_equal(a.transform(X), b.transform(X))
    d = DAMAE(**FAST).fit(X, X_unlabelled=extra)
    assert d.n_pooled_ == 120 and d.aligner_.sources_ == ["screen", "extra"]
    with pytest.raises(ValueError, match="same genes"):
        PCARepresentation(n_components=2).fit(X, X_unlabelled=extra[:, :5])


@pytest.mark.parametrize("rep", small_representations(), ids=lambda r: type(r).__name__)
def test_complex_input_is_refused(rep):  # noqa: ANN001
    X = _expression().astype(np.complex128) + 1j
    with pytest.raises(ValueError, match="[Cc]omplex"):
        rep.fit(X)


@pytest.mark.parametrize("rep", small_representations(), ids=lambda r: type(r).__name__)
def test_generic_state_round_trip_transforms_identically_on_cpu(rep):  # noqa: ANN001
    X = _expression()
    rep = clone(rep).fit(X, X_unlabelled=_expression(n=20, seed=5))
    state = get_state(rep)
    tree = json.loads(json.dumps(state))  # the JSON part really is JSON
    back = set_state(type(rep), tree, state.arrays, state.texts, params={"device": "cpu"})
    assert type(back) is type(rep) and back.get_params() == rep.get_params()
    np.testing.assert_array_equal(back.transform(X), rep.transform(X))
    if rep.is_linear:
        for a, b in zip(back.linear_map(), rep.linear_map(), strict=True):
            np.testing.assert_array_equal(a, b)
    if isinstance(rep, Autoencoder):
        assert back.history_ == rep.history_ and back.n_epochs_ == rep.n_epochs_
        assert all(p.device.type == "cpu" for p in back.net_.parameters())
        # weights of another architecture are refused, not half-loaded
        bad = dict(state.arrays)
        key = next(k for k in bad if k.endswith("encoder.0.weight"))
        bad[key] = bad[key][:, :-1]
        with pytest.raises(ValueError, match="shape"):
            set_state(type(rep), tree, bad, state.texts)


def test_registered_names_and_leap_settings():
    assert set(registry.representation_names()) >= {"damae", "mae", "ae", "pca", "genes"}
    pca = registry.build("representation", "pca", latent_dim=7, random_state=4, device="cuda")
    assert pca.get_params() == {"n_components": 7, "random_state": 4, "svd_solver": "auto"}
    damae = registry.build("representation", "damae", latent_dim=5, random_state=2, device="cpu")
    assert isinstance(damae, DAMAE) and damae.latent_dim == 5 and damae.random_state == 2
    assert isinstance(registry.build("representation", "genes"), IdentityRepresentation)
    assert not IdentityRepresentation.seeded and PCARepresentation.is_linear
    assert Autoencoder().is_linear and not Autoencoder(hidden_dims=(4,)).is_linear


def test_identity_is_the_genes():
    X = _expression()
    rep = IdentityRepresentation().fit(X)
    W, b = rep.linear_map()
    np.testing.assert_array_equal(rep.transform(X), X)
    np.testing.assert_array_equal(X @ W + b, X)


def test_importing_representations_does_not_import_torch():
    code = (
        "import sys, leapscreen.represent, leapscreen.registry as r; "
        "names = r.representation_names(); "
        "from leapscreen.represent import PCARepresentation, IdentityRepresentation; "
        "import numpy as np; PCARepresentation(n_components=2).fit(np.eye(5)).transform(np.eye(5)); "
        "assert 'damae' in names, names; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_model_trained_on_a_gpu_loads_and_transforms_on_the_cpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the CPU round trip above covers the loading path")
    X = _expression()
    rep = DAMAE(**FAST, device="cuda").fit(X)
    state = get_state(rep)
    back = set_state(DAMAE, state, state.arrays, state.texts, params={"device": "cpu"})
    assert back.device == "cpu" and all(p.device.type == "cpu" for p in back.net_.parameters())
    np.testing.assert_allclose(back.transform(X), rep.transform(X), rtol=1e-4, atol=1e-5)
