"""Composable LEAP: estimator objects, clone, scikit-learn tools, mixed members, a one-file head."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from typer.testing import CliRunner

from leapscreen import registry
from leapscreen.data.simulate import simulate_screen
from leapscreen.ensemble import LEAP
from leapscreen.evaluate.metrics import spearman_by_column
from leapscreen.heads import PSLassoHead, RidgeHead
from leapscreen.models import make_model, model_names
from leapscreen.represent import PCARepresentation
from tests.model.knn_head_plugin import PluginKNNHead


def mean_spearman(y_true, y_pred) -> float:  # noqa: ANN001
    """NaN-aware mean over perturbations of the per-column Spearman correlation."""
    return float(np.nanmean(spearman_by_column(np.asarray(y_true), np.asarray(y_pred))))


spearman_scorer = make_scorer(mean_spearman)


@pytest.fixture(scope="module")
def sim():
    data, _ = simulate_screen(
        n_samples=120, n_genes=150, n_perturbations=6, frac_missing=0.2, noise=0.5, random_state=4
    )
    return data


def small(**kw):
    return LEAP(**{"representation": "pca", "n_seeds": 2, "latent_dim": 6, "n_genes": 100, **kw})


def test_clone_and_params_roundtrip():
    model = LEAP(representation=PCARepresentation(n_components=5), head=PSLassoHead(n_alphas=4))
    copy = clone(model)
    assert copy.get_params(deep=False).keys() == model.get_params(deep=False).keys()
    assert copy.head is not model.head and copy.head.n_alphas == 4
    assert model.get_params()["head__n_alphas"] == 4  # nested parameters, as GridSearchCV uses


def test_objects_equal_names(sim):
    X, Y = sim.expression.iloc[:90], sim.responses.iloc[:90]
    by_name = small(head="ps-lasso").fit(X, Y)
    by_object = small(head=PSLassoHead(), representation=PCARepresentation(n_components=6))
    by_object.fit(X, Y)
    pd.testing.assert_frame_equal(
        by_name.predict(sim.expression), by_object.predict(sim.expression)
    )
    # each member is a clone with its own seed
    assert [m.seed for m in by_object.members_] == [0, 1]
    assert by_object.members_[0].representation is not by_object.members_[1].representation


def test_mixed_members_predict_through_members(sim):
    X, Y = sim.expression.iloc[:90], sim.responses.iloc[:90]
    mixed = small(head=["ps-lasso", PluginKNNHead(n_neighbors=3)]).fit(X, Y)
    assert [m.head_kind for m in mixed.members_] == ["ps-lasso", "plugin-knn"] * 2
    assert not mixed.is_linear and mixed.gene_coef_ is None
    members = mixed.predict_members(sim.expression)
    np.testing.assert_allclose(mixed.predict(sim.expression).to_numpy(), members.mean(axis=0), 1e-6)
    with pytest.raises(ValueError, match="linear"):
        mixed.gene_attributions(mixed.perturbations_[0])


def test_cross_val_score_and_grid_search_with_missing_targets(sim):
    X, Y = sim.expression, sim.responses
    assert Y.isna().to_numpy().any()
    scores = cross_val_score(
        small(n_seeds=1, head="ridge"),
        X,
        Y,
        cv=KFold(3, shuffle=True, random_state=0),
        scoring=spearman_scorer,
    )
    assert scores.shape == (3,) and np.all(np.isfinite(scores)) and scores.mean() > 0.2
    grid = GridSearchCV(
        small(n_seeds=1, head=RidgeHead()),
        {"head__alphas": [[1e-3], [1e6]]},
        scoring=spearman_scorer,
        cv=KFold(3, shuffle=True, random_state=0),
    ).fit(X, Y)
    assert grid.best_params_ == {"head__alphas": [1e-3]}  # a huge penalty cannot win on signal


def test_arrays_in_arrays_out_and_1d(sim):
    X = sim.expression.to_numpy()[:90]
    y = sim.responses.iloc[:90, 0].to_numpy()
    model = small(n_seeds=1, head="ridge").fit(X, y)
    pred = model.predict(X)
    assert isinstance(pred, np.ndarray) and pred.shape == (90,)


def test_unknown_names_are_clear():
    with pytest.raises(ValueError, match="did you mean 'ps-lasso'"):
        LEAP(head="ps-laso").fit(pd.DataFrame(np.ones((4, 2))), pd.DataFrame(np.ones((4, 1))))
    with pytest.raises(ValueError, match="accepted by no head"):
        small(head_params={"n_alpha": 3}).fit(
            pd.DataFrame(np.ones((4, 2))), pd.DataFrame(np.ones((4, 1)))
        )


def test_one_file_head_everywhere(sim, tmp_path):
    """The head of knn_head_plugin.py fits, ensembles, saves, loads and is a model name."""
    assert registry.get_entry("head", "plugin-knn").cls is PluginKNNHead
    assert {"plugin-knn", "leap-plugin-knn"} <= set(model_names())
    X, Y = sim.expression.iloc[:90], sim.responses.iloc[:90]
    model = make_model(
        "leap-plugin-knn", n_seeds=2, latent_dim=6, n_genes=100, representation="pca"
    ).fit(X, Y)
    assert len(model.members_) == 2 and not model.is_linear
    new = sim.expression.iloc[90:]
    truth = sim.responses.iloc[90:].to_numpy()
    assert mean_spearman(truth, model.predict(new).to_numpy()) > 0.1  # the planted signal
    model.save(tmp_path / "m")
    back = LEAP.load(tmp_path / "m")
    pd.testing.assert_frame_equal(back.predict(new), model.predict(new))

    from leapscreen.cli import app

    sim.write_parquet(tmp_path / "data")
    result = CliRunner().invoke(
        app,
        [
            "fit",
            "--data",
            str(tmp_path / "data"),
            "--model",
            "leap-plugin-knn",
            "--seeds",
            "2",
            "--latent-dim",
            "4",
            "--n-genes",
            "60",
            "--out",
            str(tmp_path / "cli-model"),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert LEAP.load(tmp_path / "cli-model").members_[0].head_kind == "plugin-knn"
    result = CliRunner().invoke(
        app,
        ["evaluate", "--data", str(tmp_path / "data"), "--models", "mean,leap-plugin-knn",
         "--seeds", "2", "--latent-dim", "4", "--n-genes", "60", "--repeats", "1",
         "--min-labels", "10", "--out", str(tmp_path / "eval"), "-q"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(tmp_path / "eval" / "results.csv")
    assert set(scores["model"]) == {"mean", "leap-plugin-knn"}


def test_fallback_warning_names_the_perturbations(caplog):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(40, 20)), columns=[f"g{i}" for i in range(20)])
    Y = pd.DataFrame(rng.normal(size=(40, 3)), columns=["Nutlin-3a", "Rare", "Flat"])
    Y.loc[Y.index[5:], "Rare"] = np.nan
    Y["Flat"] = 1.0
    with caplog.at_level("WARNING"):
        model = small(latent_dim=3, n_genes=15).fit(X, Y)
    assert model.fallback_perturbations() == ["Rare", "Flat"]
    assert "Rare, Flat" in caplog.text and "column" not in caplog.text
