"""evaluate_models: a cache keyed by the data values, reused across --repeats; estimators as models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from leapscreen.data.dataset import ScreenData
from leapscreen.data.simulate import simulate_screen
from leapscreen.ensemble import LEAP
from leapscreen.errors import InputError
from leapscreen.evaluate.cache import data_fingerprint
from leapscreen.evaluate.run import _fresh, evaluate_models
from leapscreen.evaluate.splits import unseen_samples

PARAMS = {"n_genes": 60, "latent_dim": 4, "random_state": 0}


@pytest.fixture(scope="module")
def screen() -> ScreenData:
    data, _ = simulate_screen(
        n_samples=100, n_genes=80, n_perturbations=4, n_lineages=2, random_state=3
    )
    return data


def _shuffled(data: ScreenData, seed: int = 0) -> ScreenData:
    """Same IDs, shapes and names; the response rows permuted (no signal left)."""
    perm = np.random.default_rng(seed).permutation(data.n_samples)
    responses = pd.DataFrame(
        data.responses.to_numpy()[perm], index=data.responses.index, columns=data.responses.columns
    )
    return ScreenData(data.expression, responses, samples=data.samples, name=data.name)


def _scores(result, model: str) -> pd.DataFrame:
    part = result.per_perturbation[result.per_perturbation["model"] == model]
    return part.drop(columns="model").reset_index(drop=True)


def test_fingerprint_follows_the_values(screen):
    fp = data_fingerprint(screen)
    assert fp.startswith("sha256:") and fp == data_fingerprint(screen)
    assert data_fingerprint(_shuffled(screen)) != fp
    # one changed expression value, one renamed sample, one new missing label: all change it
    expr = screen.expression.copy()
    expr.iloc[3, 5] += 1.0
    assert data_fingerprint(ScreenData(expr, screen.responses, samples=screen.samples)) != fp
    renamed = screen.expression.rename(index={screen.sample_ids[0]: "other"})
    resp = screen.responses.rename(index={screen.sample_ids[0]: "other"})
    assert data_fingerprint(ScreenData(renamed, resp)) != fp
    resp = screen.responses.copy()
    resp.iloc[0, 0] = np.nan
    assert data_fingerprint(ScreenData(screen.expression, resp, samples=screen.samples)) != fp
    extra = screen.expression.iloc[:5]
    assert data_fingerprint(screen, extra) != fp
    # the caller's frames are not written to
    before = screen.responses.to_numpy().copy()
    data_fingerprint(screen)
    np.testing.assert_array_equal(screen.responses.to_numpy(), before)


def test_shuffled_responses_do_not_reuse_the_cache(screen, tmp_path):
    splits = unseen_samples(screen.sample_ids, n_repeats=2, random_state=0)
    first = evaluate_models(
        screen, ["mean", "ridge"], splits, model_params=PARAMS, cache_dir=tmp_path
    )
    assert first.n_cached == 0 and first.data_fingerprint == data_fingerprint(screen)
    ridge = first.summary.set_index("model").loc["ridge", "spearman_mean"]
    assert ridge > 0.25  # the simulated signal is learnable

    shuffled = evaluate_models(
        _shuffled(screen), ["mean", "ridge"], splits, model_params=PARAMS, cache_dir=tmp_path
    )
    assert shuffled.n_cached == 0
    assert shuffled.data_fingerprint != first.data_fingerprint
    assert shuffled.summary.set_index("model").loc["ridge", "spearman_mean"] < ridge - 0.15

    again = evaluate_models(
        screen, ["mean", "ridge"], splits, model_params=PARAMS, cache_dir=tmp_path
    )
    assert again.n_cached == 4 and bool(again.timings["cached"].all())
    pd.testing.assert_frame_equal(again.summary, first.summary)
    pd.testing.assert_frame_equal(again.per_perturbation, first.per_perturbation)


def test_more_repeats_reuse_the_splits_done(screen, tmp_path):
    two = unseen_samples(screen.sample_ids, n_repeats=2, random_state=5)
    three = unseen_samples(screen.sample_ids, n_repeats=3, random_state=5)
    for a, b in zip(two, three[:2], strict=True):
        assert a.name == b.name
        np.testing.assert_array_equal(a.train, b.train)
        np.testing.assert_array_equal(a.test, b.test)
    # names and membership do not depend on the total (width stays 2 digits past 100 repeats)
    many = unseen_samples(screen.sample_ids, n_repeats=101, random_state=5)
    assert many[0].name == "repeat-00" and many[100].name == "repeat-100"
    np.testing.assert_array_equal(many[2].test, three[2].test)

    first = evaluate_models(screen, ["mean", "ridge"], two, model_params=PARAMS, cache_dir=tmp_path)
    more = evaluate_models(
        screen, ["mean", "ridge"], three, model_params=PARAMS, cache_dir=tmp_path
    )
    assert more.n_cached == 4
    cached = more.timings.set_index(["model", "split"])["cached"]
    assert bool(cached.xs("repeat-02", level="split").eq(False).all())
    assert bool(cached.drop("repeat-02", level="split").all())
    old = more.per_perturbation[more.per_perturbation["split"] != "repeat-02"]
    pd.testing.assert_frame_equal(old.reset_index(drop=True), first.per_perturbation)
    # and a model added later reuses the others
    plus = evaluate_models(
        screen, ["mean", "ridge", "genes-ps-lasso"], two, model_params=PARAMS, cache_dir=tmp_path
    )
    assert plus.n_cached == 4 and len(plus.timings) == 6


def test_other_settings_are_refused_with_real_options(screen, tmp_path):
    splits = unseen_samples(screen.sample_ids, n_repeats=1, random_state=0)
    evaluate_models(screen, ["mean"], splits, model_params=PARAMS, cache_dir=tmp_path)
    with pytest.raises(InputError, match="other settings") as err:
        evaluate_models(
            screen, ["mean"], splits, model_params={**PARAMS, "random_state": 1}, cache_dir=tmp_path
        )
    assert "--out" in str(err.value) and "--cache" not in str(err.value)
    # a cache of another layout (an older leapscreen) is refused, not trusted
    old = tmp_path / "old"
    old.mkdir()
    (old / "settings.json").write_text(json.dumps({"key": "0123456789abcdef", "settings": {}}))
    with pytest.raises(InputError, match="another version") as err:
        evaluate_models(screen, ["mean"], splits, model_params=PARAMS, cache_dir=old)
    assert str(old) in str(err.value)


def test_split_errors_name_the_cli_options():
    with pytest.raises(InputError) as err:
        unseen_samples(["a", "b", "c"], n_repeats=0)
    assert "--repeats" in str(err.value)
    with pytest.raises(InputError) as err:
        unseen_samples(["a", "b", "c"], test_fraction=1.5)
    assert "--test-fraction" in str(err.value)


def test_estimator_scores_like_the_equivalent_preset(screen, tmp_path):
    splits = unseen_samples(screen.sample_ids, n_repeats=2, random_state=1)
    ridge = LEAP(
        representation="genes",
        head="ridge",
        n_seeds=1,
        n_genes=60,
        head_params={"standardize": False, "cv": "loo"},
    )
    pca = LEAP(representation="pca", head="ps-lasso", n_seeds=1, latent_dim=4, n_genes=60)
    result = evaluate_models(
        screen,
        ["ridge", ("my-ridge", ridge), "pca-ps-lasso", ("my-pca", pca)],
        splits,
        model_params=PARAMS,
        cache_dir=tmp_path,
    )
    assert list(result.summary["model"]) == ["ridge", "my-ridge", "pca-ps-lasso", "my-pca"]
    pd.testing.assert_frame_equal(_scores(result, "my-ridge"), _scores(result, "ridge"))
    pd.testing.assert_frame_equal(_scores(result, "my-pca"), _scores(result, "pca-ps-lasso"))
    assert not hasattr(ridge, "members_")  # the caller's object is never fitted
    assert "my-ridge" in result.settings["model_specs"]

    # a mapping works too; the same estimator is found in the cache, a changed parameter is not
    same = evaluate_models(screen, {"my-pca": pca}, splits, model_params=PARAMS, cache_dir=tmp_path)
    assert same.n_cached == 2
    changed = evaluate_models(
        screen,
        {
            "my-pca": LEAP(
                representation="pca", head="ps-lasso", n_seeds=1, latent_dim=3, n_genes=60
            )
        },
        splits,
        model_params=PARAMS,
        cache_dir=tmp_path,
    )
    assert changed.n_cached == 0
    assert not _scores(changed, "my-pca").equals(_scores(result, "my-pca"))


def test_nested_estimator_params_are_keyed(screen, tmp_path):
    from leapscreen.heads.linear import RidgeHead

    splits = unseen_samples(screen.sample_ids, n_repeats=1, random_state=1)

    def leap(head):
        return LEAP(representation="genes", head=head, n_seeds=1, n_genes=40)

    a = evaluate_models(screen, {"m": leap(RidgeHead())}, splits, cache_dir=tmp_path)
    b = evaluate_models(screen, {"m": leap(RidgeHead(cv="loo"))}, splits, cache_dir=tmp_path)
    c = evaluate_models(screen, {"m": leap(RidgeHead())}, splits, cache_dir=tmp_path)
    assert (a.n_cached, b.n_cached, c.n_cached) == (0, 0, 1)


class _ColumnMean:
    """A plain estimator (fit(X, y) only, ndarray predictions) that clone cannot copy."""

    def __init__(self, shrink: float = 0.0) -> None:
        self.shrink = float(shrink) + 0.0  # a float copy: sklearn's clone refuses such objects

    def get_params(self, deep: bool = True) -> dict:
        return {"shrink": self.shrink}

    def set_params(self, **params):
        self.__dict__.update(params)
        return self

    def fit(self, X, y):
        self.mean_ = np.nanmean(np.asarray(y, dtype=np.float64), axis=0) * (1 - self.shrink)
        return self

    def predict(self, X):
        return np.tile(self.mean_, (len(X), 1))


def test_plain_estimator_and_fresh_fallback(screen):
    est = _ColumnMean()
    fresh = _fresh(est)
    assert type(fresh) is _ColumnMean and fresh is not est and fresh.shrink == est.shrink
    splits = unseen_samples(screen.sample_ids, n_repeats=2, random_state=0)
    result = evaluate_models(screen, ["mean", ("colmean", est)], splits, model_params=PARAMS)
    mine, preset = _scores(result, "colmean"), _scores(result, "mean")
    np.testing.assert_allclose(mine["mse"], preset["mse"], rtol=1e-6)
    assert not hasattr(est, "mean_")
    with pytest.raises(InputError, match="unlabelled_expression"):
        evaluate_models(screen, [("colmean", est)], splits, transductive=True)


def test_model_list_is_checked(screen):
    splits = unseen_samples(screen.sample_ids, n_repeats=1)
    with pytest.raises(InputError, match="unknown model 'banana'"):
        evaluate_models(screen, ["mean", "banana"], splits)
    with pytest.raises(InputError, match="more than once"):
        evaluate_models(screen, ["mean", ("mean", LEAP())], splits)
    with pytest.raises(InputError, match="not a model name or an estimator"):
        evaluate_models(screen, {"x": 3}, splits)
    with pytest.raises(InputError, match="no model"):
        evaluate_models(screen, [], splits)


def test_provenance_is_recorded(screen, tmp_path):
    splits = unseen_samples(screen.sample_ids, n_repeats=1)
    prov = {
        "inputs": {"expression": {"path": "x.csv", "sha256": "ab" * 32}},
        "value": "LN_IC50",
        "command": ["leapscreen", "evaluate", "--out", "o"],
        "version": "1.2.3",
    }
    result = evaluate_models(screen, ["mean"], splits, provenance=prov, cache_dir=tmp_path)
    assert result.provenance == prov and result.settings["provenance"] == prov
    # provenance is not part of the cache key: the same run with other notes resumes
    again = evaluate_models(screen, ["mean"], splits, provenance={"note": "x"}, cache_dir=tmp_path)
    assert again.n_cached == 1
    with pytest.raises(InputError, match="JSON"):
        evaluate_models(screen, ["mean"], splits, provenance={"bad": object()})
