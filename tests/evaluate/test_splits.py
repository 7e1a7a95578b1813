"""Invariants of the by-sample split generators."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from leapscreen.errors import InputError
from leapscreen.evaluate import (
    Split,
    kfold,
    make_splits,
    safe_name,
    transfer,
    unseen_lineage,
    unseen_samples,
)

SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def ids(n: int, prefix: str = "ACH-") -> np.ndarray:
    return np.array([f"{prefix}{i:06d}" for i in range(n)])


def assert_partition(split: Split, universe: np.ndarray) -> None:
    train, test = set(split.train), set(split.test)
    assert not train & test, "a sample is in both train and test"
    assert train | test == set(universe)
    assert len(train) == len(split.train) and len(test) == len(split.test)  # no duplicates
    assert split.info["n_train"] == split.n_train and split.info["n_test"] == split.n_test


# --- unseen samples ---------------------------------------------------------------------------


def test_unseen_samples_partition_and_sizes():
    sample_ids = ids(103)
    splits = unseen_samples(sample_ids, n_repeats=10, test_fraction=0.2, random_state=0)
    assert len(splits) == 10
    assert len({s.name for s in splits}) == 10
    for s in splits:
        assert_partition(s, sample_ids)
        assert s.n_test == round(0.2 * 103)
        assert SAFE.match(s.name)
    # repeats are different draws
    assert len({tuple(s.test) for s in splits}) == 10
    # input order kept within train/test
    order = {v: i for i, v in enumerate(sample_ids)}
    assert all(np.all(np.diff([order[v] for v in s.test]) > 0) for s in splits)


def test_unseen_samples_seeded():
    sample_ids = ids(50)
    a = unseen_samples(sample_ids, n_repeats=3, random_state=7)
    b = unseen_samples(sample_ids, n_repeats=3, random_state=7)
    c = unseen_samples(sample_ids, n_repeats=3, random_state=8)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.test, y.test)
        np.testing.assert_array_equal(x.train, y.train)
    assert any(not np.array_equal(x.test, z.test) for x, z in zip(a, c, strict=True))


def test_unseen_samples_every_sample_tested_over_many_repeats():
    sample_ids = ids(40)
    tested = np.concatenate([s.test for s in unseen_samples(sample_ids, n_repeats=60)])
    assert set(tested) == set(sample_ids)


def test_unseen_samples_bad_input():
    with pytest.raises(InputError, match="duplicated"):
        unseen_samples(["a", "b", "a", "c"])
    with pytest.raises(InputError, match="test_fraction"):
        unseen_samples(ids(10), test_fraction=1.2)
    with pytest.raises(InputError, match="random_state"):
        unseen_samples(ids(10), random_state=None)
    with pytest.raises(InputError, match="empty"):
        unseen_samples([])


# --- unseen lineage ---------------------------------------------------------------------------


def lineage_fixture():
    rng = np.random.default_rng(0)
    sample_ids = ids(200)
    choices = ["Lung", "CNS/Brain", "Esophagus/Stomach", "Bone Marrow", "Skin", "Ovary"]
    lineages = rng.choice(choices, size=200, p=[0.3, 0.2, 0.15, 0.15, 0.17, 0.03]).astype(object)
    lineages[:4] = np.nan
    lineages[4:8] = "unknown"
    return sample_ids, lineages


def test_unseen_lineage_holds_each_lineage_out():
    sample_ids, lineages = lineage_fixture()
    counts = pd.Series(lineages).value_counts()
    splits = unseen_lineage(sample_ids, lineages, min_samples=10)
    expected = sorted(c for c in counts.index if counts[c] >= 10 and c != "unknown")
    assert [s.info["lineage"] for s in splits] == expected
    assert "Ovary" not in expected  # too small: kept in training only
    lab = pd.Series(lineages, index=sample_ids)
    for s in splits:
        assert_partition(s, sample_ids)
        held = s.info["lineage"]
        assert set(lab[s.test]) == {held}
        assert held not in set(lab[s.train].dropna())
        assert s.n_test == counts[held]
        # missing / unknown lineages always train
        assert set(sample_ids[:8]) <= set(s.train)
        assert SAFE.match(s.name) and "/" not in s.name and " " not in s.name


def test_unseen_lineage_series_aligned_by_index():
    sample_ids, lineages = lineage_fixture()
    series = pd.Series(lineages, index=sample_ids).sample(frac=1.0, random_state=3)
    a = unseen_lineage(sample_ids, series, min_samples=10)
    b = unseen_lineage(sample_ids, lineages, min_samples=10)
    for x, y in zip(a, b, strict=True):
        assert x.name == y.name
        np.testing.assert_array_equal(x.test, y.test)


def test_unseen_lineage_safe_and_distinct_names():
    sample_ids = ids(30)
    lineages = np.array(["A/B"] * 10 + ["A B"] * 10 + ["../etc"] * 10)
    splits = unseen_lineage(sample_ids, lineages, min_samples=5)
    names = [s.name for s in splits]
    assert len(set(names)) == 3
    assert all(SAFE.match(n) and "/" not in n and ".." not in n for n in names)


def test_unseen_lineage_selection_and_errors():
    sample_ids, lineages = lineage_fixture()
    splits = unseen_lineage(sample_ids, lineages, min_samples=10, lineages_to_use=["CNS/Brain"])
    assert [s.info["lineage"] for s in splits] == ["CNS/Brain"]
    assert splits[0].name == "lineage-CNS_Brain"
    with pytest.raises(InputError, match="Atlantis"):
        unseen_lineage(sample_ids, lineages, lineages_to_use=["Atlantis"])
    with pytest.raises(InputError, match="min_samples"):
        unseen_lineage(sample_ids, lineages, min_samples=10_000)
    with pytest.raises(InputError, match="entries"):
        unseen_lineage(sample_ids, lineages[:-1])


def test_safe_name():
    assert safe_name("CNS/Brain") == "CNS_Brain"
    assert safe_name("Bladder/Urinary Tract") == "Bladder_Urinary_Tract"
    for text in ["../../etc/passwd", "", "/", " ", "äöü", ".hidden", "a" * 300, "x\\y:z*?"]:
        name = safe_name(text)
        assert SAFE.match(name), (text, name)
        assert len(name) <= 64
    assert safe_name("a" * 300) != safe_name("a" * 299)


# --- transfer ---------------------------------------------------------------------------------


def test_transfer_zero_shot():
    src, tgt = ids(50, "CL-"), ids(12, "PDX-")
    (s,) = transfer(src, tgt)
    np.testing.assert_array_equal(s.train, src)
    np.testing.assert_array_equal(s.test, tgt)
    with pytest.raises(InputError, match="both source and target"):
        transfer(src, np.concatenate([tgt, src[:2]]))


def sparse_responses(tgt: np.ndarray, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(len(tgt), 8))
    values[rng.random(values.shape) < 0.6] = np.nan
    values[:, 7] = np.nan
    values[:2, 7] = 1.0  # only 2 labelled target samples for the last perturbation
    return pd.DataFrame(values, index=tgt, columns=[f"drug{j}" for j in range(8)])


@pytest.mark.parametrize("k", [1, 3])
def test_transfer_few_shot_covers_every_perturbation(k):
    src, tgt = ids(40, "CL-"), ids(60, "PDX-")
    resp = sparse_responses(tgt)
    splits = transfer(src, tgt, few_shot_k=k, responses=resp, random_state=1, n_repeats=3)
    assert len(splits) == 3
    available = resp.notna().sum()
    for s in splits:
        assert not set(s.train) & set(s.test)
        moved = [x for x in s.train if x not in set(src)]
        assert set(src) <= set(s.train)
        assert set(moved) | set(s.test) == set(tgt)
        assert moved == s.info["few_shot_samples"]
        shots = resp.loc[moved].notna().sum()
        assert (shots >= np.minimum(k, available)).all()
        assert s.info["few_shot_short"] == (["drug7"] if k > 2 else [])
        # the rest of the labelled target samples stay in test
        assert (resp.loc[s.test].notna().sum() == available - shots).all()


def test_transfer_few_shot_dense_is_minimal_and_seeded():
    src, tgt = ids(20, "CL-"), ids(30, "PDX-")
    resp = pd.DataFrame(np.ones((30, 5)), index=tgt)
    a = transfer(src, tgt, few_shot_k=4, responses=resp, random_state=0)[0]
    b = transfer(src, tgt, few_shot_k=4, responses=resp, random_state=0)[0]
    c = transfer(src, tgt, few_shot_k=4, responses=resp, random_state=5)[0]
    assert len(a.info["few_shot_samples"]) == 4  # fully labelled: exactly k samples
    assert a.info["few_shot_samples"] == b.info["few_shot_samples"]
    assert a.info["few_shot_samples"] != c.info["few_shot_samples"]
    with pytest.raises(InputError, match="responses"):
        transfer(src, tgt, few_shot_k=2)
    with pytest.raises(InputError, match="absent"):
        transfer(src, tgt, few_shot_k=2, responses=resp.iloc[:-3])


# --- k-fold and presets -----------------------------------------------------------------------


def test_kfold_each_sample_tested_once():
    sample_ids = ids(23)
    splits = kfold(sample_ids, n_splits=5, random_state=2)
    tested = np.concatenate([s.test for s in splits])
    assert sorted(tested) == sorted(sample_ids)
    sizes = [s.n_test for s in splits]
    assert max(sizes) - min(sizes) <= 1
    for s in splits:
        assert_partition(s, sample_ids)
    again = kfold(sample_ids, n_splits=5, random_state=2)
    other = kfold(sample_ids, n_splits=5, random_state=3)
    assert all(np.array_equal(x.test, y.test) for x, y in zip(splits, again, strict=True))
    assert any(not np.array_equal(x.test, y.test) for x, y in zip(splits, other, strict=True))
    with pytest.raises(InputError, match="n_splits"):
        kfold(ids(3), n_splits=5)


def test_make_splits_presets():
    sample_ids, lineages = lineage_fixture()
    cl = make_splits("unseen-cell-lines", sample_ids)
    assert len(cl) == 10 and all(s.n_test == 40 for s in cl)
    assert [s.name for s in make_splits("kfold", sample_ids)] == [f"fold-{i}" for i in range(5)]
    lin = make_splits("unseen-lineage", sample_ids, lineages=lineages, min_samples=10)
    assert [s.name for s in lin] == [s.name for s in unseen_lineage(sample_ids, lineages, 10)]
    (tr,) = make_splits("transfer", source_ids=ids(5, "a"), target_ids=ids(3, "b"))
    assert tr.n_test == 3
    with pytest.raises(InputError, match="unknown evaluation task"):
        make_splits("leave-one-out", sample_ids)
    with pytest.raises(InputError, match="lineages"):
        make_splits("unseen-lineage", sample_ids)


def test_split_dict_round_trip():
    s = unseen_lineage(*lineage_fixture(), min_samples=10)[0]
    back = Split.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back.name == s.name and back.info == s.info
    np.testing.assert_array_equal(back.train.astype(str), s.train.astype(str))
    np.testing.assert_array_equal(back.test.astype(str), s.test.astype(str))
