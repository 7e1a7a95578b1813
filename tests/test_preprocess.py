"""Preprocessor: gene selection, log transform and z-scoring fitted on training samples only."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler

from leapscreen.errors import InputError
from leapscreen.preprocess import Preprocessor, looks_unlogged


def _frame(n: int = 40, d: int = 30, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sd = np.linspace(0.2, 3.0, d)
    rng.shuffle(sd)
    values = rng.normal(5.0, 1.0, size=(n, d)) * sd + rng.normal(0, 2, size=d)
    return pd.DataFrame(
        values, index=[f"S{i}" for i in range(n)], columns=[f"G{j}" for j in range(d)]
    )


def test_selects_most_variant_training_genes_and_matches_standard_scaler():
    X = _frame()
    pp = Preprocessor(n_genes=10).fit(X)
    expected = X.var(ddof=0).sort_values(ascending=False).index[:10].tolist()
    assert pp.genes_ == expected
    Z = pp.transform(X)
    assert Z.dtype == np.float32 and Z.shape == (40, 10)
    ref = StandardScaler().fit_transform(X[expected].to_numpy())
    np.testing.assert_allclose(Z, ref, atol=1e-5)


def test_statistics_come_from_training_only_and_single_sample_is_meaningful():
    X = _frame()
    train, new = X.iloc[:30], X.iloc[30:] * 3.0 + 7.0
    pp = Preprocessor(n_genes=12).fit(train)
    mean, scale, genes = pp.mean_.copy(), pp.scale_.copy(), list(pp.genes_)
    batch = pp.transform(new)
    np.testing.assert_array_equal(pp.mean_, mean)
    np.testing.assert_array_equal(pp.scale_, scale)
    assert pp.genes_ == genes
    np.testing.assert_allclose(batch, (new[genes].to_numpy() - mean) / scale, rtol=1e-5)
    for i in range(len(new)):
        one = pp.transform(new.iloc[[i]])
        np.testing.assert_array_equal(one[0], batch[i])
        assert np.abs(one).max() > 1.0  # not the all-zeros of a refitted scaler


def test_columns_are_matched_by_name():
    X = _frame()
    pp = Preprocessor(n_genes=8).fit(X)
    shuffled = X[X.columns[::-1]].assign(EXTRA=1.0)
    np.testing.assert_array_equal(pp.transform(shuffled), pp.transform(X))


def test_missing_genes_are_imputed_with_training_mean_and_counted():
    X = _frame()
    pp = Preprocessor(n_genes=10).fit(X)
    dropped = pp.genes_[:2]
    with pytest.warns(UserWarning, match=r"2 of the model's 10 genes are missing"):
        Z = pp.transform(X.drop(columns=dropped))
    np.testing.assert_array_equal(Z[:, :2], 0.0)
    np.testing.assert_allclose(Z[:, 2:], pp.transform(X)[:, 2:])


def test_nan_entries_are_imputed_with_training_mean():
    X = _frame()
    pp = Preprocessor(n_genes=10).fit(X)
    new = X.iloc[:5].copy()
    new.loc["S1", pp.genes_[3]] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Z = pp.transform(new)
    assert Z[1, 3] == 0.0
    assert np.isfinite(Z).all()


def test_low_coverage_is_an_input_error_naming_the_counts():
    X = _frame()
    pp = Preprocessor(n_genes=10, min_coverage=0.8).fit(X)
    with pytest.raises(InputError, match=r"only 7 of the model's 10 genes") as err:
        pp.transform(X.drop(columns=pp.genes_[:3]))
    assert err.value.fix
    renamed = X.rename(columns=lambda c: f"{c} (123)")
    with pytest.raises(InputError, match=r"only 0 of the model's 10 genes"):
        pp.transform(renamed)


def test_log_auto_detection():
    rng = np.random.default_rng(1)
    tpm = pd.DataFrame(rng.lognormal(2.0, 2.0, size=(20, 15)) * 10, columns=list("ABCDEFGHIJKLMNO"))
    assert tpm.to_numpy().max() > 50
    logged = np.log2(tpm + 1)
    zscored = (logged - logged.mean()) / logged.std()
    assert looks_unlogged(tpm.to_numpy())
    assert not looks_unlogged(logged.to_numpy())
    assert not looks_unlogged(zscored.to_numpy())
    pp = Preprocessor(n_genes=None, log_transform="auto").fit(tpm)
    assert pp.log_transform_ is True
    ref = StandardScaler().fit_transform(np.log1p(tpm[pp.genes_].to_numpy()))
    np.testing.assert_allclose(pp.transform(tpm), ref, atol=1e-5)
    assert Preprocessor(log_transform="auto").fit(logged).log_transform_ is False
    assert Preprocessor(log_transform="auto").fit(zscored).log_transform_ is False


def test_log_transform_rejects_negative_values():
    X = _frame()
    pp = Preprocessor(n_genes=5, log_transform=True).fit(X.abs())
    with pytest.raises(InputError, match="negative"):
        pp.transform(X - 100.0)


def test_zero_variance_genes_get_unit_scale():
    X = _frame().assign(CONST=4.0)
    pp = Preprocessor(n_genes=None).fit(X)
    j = pp.genes_.index("CONST")
    assert pp.genes_[-1] == "CONST" and pp.scale_[j] == 1.0
    assert np.isfinite(pp.transform(X)).all()


def test_given_gene_list_is_intersected_in_order_or_rejected():
    X = _frame()
    genes = ["G5", "G1", "G9", "G3", "NOPE"]
    with pytest.warns(UserWarning, match="1 of the 5 requested genes"):
        pp = Preprocessor(genes=genes, min_coverage=0.5).fit(X)
    assert pp.genes_ == ["G5", "G1", "G9", "G3"]
    with pytest.raises(InputError, match="only 1 of the 3 requested genes"):
        Preprocessor(genes=["G1", "X", "Y"]).fit(X)


def test_affine_map_and_state_round_trip():
    rng = np.random.default_rng(2)
    tpm = pd.DataFrame(rng.lognormal(3.0, 1.5, size=(25, 12)), columns=[f"g{i}" for i in range(12)])
    pp = Preprocessor(n_genes=6, log_transform=True).fit(tpm)
    scale_inv, shift = pp.affine_()
    logged = np.log1p(tpm[pp.genes_].to_numpy())
    np.testing.assert_allclose(pp.transform(tpm), logged * scale_inv + shift, rtol=1e-5, atol=1e-5)
    params, arrays = pp.get_state()
    params = json.loads(json.dumps(params))
    back = Preprocessor.from_state(params, {k: np.array(v) for k, v in arrays.items()})
    assert back.genes_ == pp.genes_ and back.log_transform_ is True
    np.testing.assert_array_equal(back.transform(tpm), pp.transform(tpm))


def test_bad_inputs():
    with pytest.raises(InputError, match="DataFrame"):
        Preprocessor().fit(np.zeros((3, 3)))
    X = _frame().assign(lineage="lung")
    with pytest.raises(InputError, match="non-numeric"):
        Preprocessor().fit(X)
    with pytest.raises(RuntimeError, match="not fitted"):
        Preprocessor().transform(_frame())


def _tpm(n: int = 30, d: int = 40, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.lognormal(2.0, 1.8, size=(n, d)) * 20
    return pd.DataFrame(
        values, index=[f"S{i}" for i in range(n)], columns=[f"G{j}" for j in range(d)]
    )


def test_tpm_given_to_a_log_scale_model_is_refused():
    tpm = _tpm()
    logged = np.log2(tpm + 1.0)
    pp = Preprocessor(n_genes=None).fit(logged)
    pp.transform(logged.iloc[:1])  # same scale: fine
    with pytest.raises(InputError, match="un-logged TPM") as err:
        pp.transform(tpm.iloc[:2])
    assert "--log-transform" in str(err.value)


def test_logged_data_given_to_a_tpm_model_is_refused():
    tpm = _tpm()
    pp = Preprocessor(n_genes=None, log_transform=True).fit(tpm)
    pp.transform(tpm.iloc[:1])
    with pytest.raises(InputError, match="already log-transformed"):
        pp.transform(np.log2(tpm.iloc[:3] + 1.0))


def test_input_range_round_trips_and_old_states_still_load():
    X = _frame().abs() + 1.0
    pp = Preprocessor(n_genes=10).fit(X)
    params, arrays = pp.get_state()
    assert params["input_range_"] == [float(X.min().min()), float(X.max().max())]
    json.dumps(params)
    again = Preprocessor.from_state(params, arrays)
    assert again.input_range_ == pp.input_range_
    old = {k: v for k, v in params.items() if k != "input_range_"}  # saved before the field
    legacy = Preprocessor.from_state(old, arrays)
    assert legacy.input_range_ is None
    np.testing.assert_array_equal(legacy.transform(X), pp.transform(X))
    legacy.transform(X * 1000)  # an old model: no scale check, same numbers as before
    with pytest.raises(InputError, match="un-logged"):
        again.transform(X * 1000)
    with pytest.raises(ValueError, match="input_range_"):
        Preprocessor.from_state({**params, "input_range_": [0.0]}, arrays)
