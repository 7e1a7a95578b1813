"""Damaged, foreign or hostile model directories: each is refused with a clear error, never a traceback."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leapscreen.data.simulate import simulate_screen
from leapscreen.ensemble import LEAP
from leapscreen.errors import ModelFormatError
from leapscreen.persist.model import ARRAYS_FILE, META_FILE, sha256_file


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    data, _ = simulate_screen(n_samples=60, n_genes=80, n_perturbations=4, random_state=2)
    model = LEAP(representation="pca", n_seeds=2, latent_dim=4, n_genes=50)
    model.fit(data.expression, data.responses)
    path = tmp_path_factory.mktemp("saved") / "model"
    model.save(path)
    return path, data


@pytest.fixture
def copy(saved, tmp_path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(saved[0], target)
    return target


def meta_of(path: Path) -> dict:
    return json.loads((path / META_FILE).read_text())


def write_meta(path: Path, meta) -> None:  # noqa: ANN001 - any JSON value
    (path / META_FILE).write_text(json.dumps(meta))


def refused(path: Path, *words: str) -> str:
    with pytest.raises(ModelFormatError) as info:
        LEAP.load(path)
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message, message
    return message


def test_intact_model_loads(saved):
    path, data = saved
    model = LEAP.load(path)
    assert model.predict(data.expression.iloc[:3]).shape == (3, 4)


@pytest.mark.parametrize("key", ["members", "state", "sha256", "arrays", "genes"])
def test_missing_keys(copy, key):
    meta = meta_of(copy)
    del meta[key]
    write_meta(copy, meta)
    refused(copy, META_FILE, key)


def test_missing_state_parts(copy):
    meta = meta_of(copy)
    del meta["state"]["attributes"]["members_"]
    write_meta(copy, meta)
    refused(copy, META_FILE)
    meta = meta_of(copy)
    del meta["state"]["params"]
    write_meta(copy, meta)
    refused(copy, META_FILE)


def test_json_list_not_utf8_truncated(copy):
    write_meta(copy, [1, 2])
    refused(copy, "JSON list")
    (copy / META_FILE).write_bytes(b"\xff\xfe{\x00")
    refused(copy, "UTF-8")
    original = json.dumps(meta_of_original := {"format": "leapscreen.LEAP"})
    (copy / META_FILE).write_text(original[:-5])
    refused(copy, "not valid JSON")
    assert meta_of_original


def test_unknown_parameter(copy):
    meta = meta_of(copy)
    meta["state"]["params"]["n_seedz"] = 3
    write_meta(copy, meta)
    refused(copy, "unknown parameter", "n_seedz")


def test_unknown_class(copy):
    meta = meta_of(copy)
    member = meta["state"]["attributes"]["members_"][0]["__object__"]
    member["fields"]["head"]["__object__"]["class"] = "os.system"
    write_meta(copy, meta)
    refused(copy, "unknown class")


def test_array_shape_in_index_mismatch(copy):
    meta = meta_of(copy)
    key = next(iter(meta["arrays"]))
    meta["arrays"][key]["shape"] = [7, 7, 7]
    write_meta(copy, meta)
    refused(copy, ARRAYS_FILE, "shape")


def rewrite_arrays(path: Path, change) -> None:  # noqa: ANN001
    """Rewrite arrays.npz with ``change(dict)`` applied, index and checksum updated (a careful forger)."""
    with np.load(path / ARRAYS_FILE) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    np.savez(path / ARRAYS_FILE, **arrays)
    meta = meta_of(path)
    for entry in meta["arrays"].values():
        if entry["name"] in arrays:
            entry["shape"] = list(arrays[entry["name"]].shape)
            entry["dtype"] = arrays[entry["name"]].dtype.str
    meta["sha256"][ARRAYS_FILE] = sha256_file(path / ARRAYS_FILE)
    write_meta(path, meta)


def test_wrong_array_shapes_that_agree_with_the_index(copy):
    meta = meta_of(copy)
    coef = meta["arrays"]["gene_coef_"]["name"]
    rewrite_arrays(copy, lambda a: a.__setitem__(coef, a[coef][:-3]))
    refused(copy, "wrong shape")


def test_member_arrays_that_do_not_fit(copy):
    meta = meta_of(copy)
    key = next(k for k in meta["arrays"] if "components_" in k or "coef_mean_" in k)
    name = meta["arrays"][key]["name"]
    rewrite_arrays(copy, lambda a: a.__setitem__(name, a[name][..., :-1]))
    refused(copy, "member")


def test_gene_and_perturbation_lists_must_match(copy):
    meta = meta_of(copy)
    meta["genes"] = meta["genes"][::-1]
    write_meta(copy, meta)
    refused(copy, "genes")
    meta["genes"] = meta["genes"][::-1]
    meta["perturbations"] = meta["perturbations"][:-1]
    write_meta(copy, meta)
    refused(copy, "perturbations")


def test_truncated_and_non_zip_npz(copy):
    data = (copy / ARRAYS_FILE).read_bytes()
    for damaged in (data[: len(data) // 2], b"not a zip file at all"):
        (copy / ARRAYS_FILE).write_bytes(damaged)
        meta = meta_of(copy)
        meta["sha256"][ARRAYS_FILE] = sha256_file(copy / ARRAYS_FILE)
        write_meta(copy, meta)
        message = refused(copy, ARRAYS_FILE)
        assert "pickle" not in message


def test_object_arrays_refused(copy):
    meta = meta_of(copy)
    name = next(iter(meta["arrays"].values()))["name"]
    with np.load(copy / ARRAYS_FILE) as data:
        arrays = {k: data[k] for k in data.files}
    arrays[name] = np.array([{"evil": 1}], dtype=object)
    np.savez(copy / ARRAYS_FILE, **arrays)  # (np.savez pickles object arrays)
    meta["sha256"][ARRAYS_FILE] = sha256_file(copy / ARRAYS_FILE)
    write_meta(copy, meta)
    refused(copy, "object arrays")


def test_checksum_mismatch_and_missing_checksum(copy):
    meta = meta_of(copy)
    meta["sha256"][ARRAYS_FILE] = "0" * 64
    write_meta(copy, meta)
    refused(copy, "checksum")
    del meta["sha256"][ARRAYS_FILE]
    write_meta(copy, meta)
    refused(copy, "no sha256")


@pytest.mark.parametrize("name", ["/etc/passwd", "../../etc/passwd", "..", "sub/x.txt"])
def test_file_names_outside_the_directory(copy, name):
    meta = meta_of(copy)
    meta["texts"] = {"booster": name}
    meta["sha256"][name] = "0" * 64
    write_meta(copy, meta)
    refused(copy, "outside the model directory")


def test_symlink_out_of_the_directory(copy, tmp_path):
    outside = tmp_path / "elsewhere.npz"
    shutil.move(copy / ARRAYS_FILE, outside)
    (copy / ARRAYS_FILE).symlink_to(outside)
    refused(copy, "outside the model directory")


@pytest.mark.parametrize("version", [0, "2", 99, True, None, 1.5])
def test_format_versions(copy, version):
    meta = meta_of(copy)
    meta["format_version"] = version
    write_meta(copy, meta)
    with pytest.raises(ModelFormatError, match="format.version|upgrade"):
        LEAP.load(copy)


def test_cli_reports_damage_without_traceback(copy, saved, tmp_path):
    from leapscreen.cli import app

    (copy / ARRAYS_FILE).write_bytes(b"garbage")
    expr = tmp_path / "expr.csv"
    saved[1].expression.iloc[:3].to_csv(expr)
    result = CliRunner().invoke(
        app, ["predict", str(copy), str(expr), "--out", str(tmp_path / "p.csv")]
    )
    assert result.exit_code != 0
    assert "Traceback" not in result.output and ARRAYS_FILE in result.output
    assert not (tmp_path / "p.csv").exists()


def test_no_pickle_in_a_saved_model(saved):
    path = saved[0]
    with zipfile.ZipFile(path / ARRAYS_FILE) as zf:
        for name in zf.namelist():
            with zf.open(name) as fh:
                header = fh.read(200)
            assert b"'descr': '|O'" not in header
    np.load(path / ARRAYS_FILE, allow_pickle=False)


def test_text_states_in_one_file_and_format_2_still_read(tmp_path):
    """Text states (boosters) go into one texts.json; a format-2 directory (one file per text)
    still loads; a texts.json that lacks a text or is not JSON is refused by name."""
    pytest.importorskip("lightgbm")
    from leapscreen.heads import PSLightGBMHead
    from leapscreen.persist.model import TEXTS_FILE

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.standard_normal((40, 12)), columns=[f"g{i}" for i in range(12)])
    Y = pd.DataFrame(X.to_numpy()[:, :2] @ rng.standard_normal((2, 2)), columns=["a", "b"])
    head = PSLightGBMHead(cv=2, n_jobs=1)  # 2 perturbations x 2 folds: 4 boosters
    model = LEAP(representation="genes", head=head, n_seeds=1, n_genes=12).fit(X, Y)
    saved = model.save(tmp_path / "m")
    files = sorted(p.name for p in saved.iterdir())
    assert TEXTS_FILE in files and not [f for f in files if f.startswith("text_")]
    meta = json.loads((saved / "leapscreen_model.json").read_text())
    assert set(meta["texts"].values()) == {TEXTS_FILE} and len(meta["texts"]) == 4
    np.testing.assert_array_equal(
        LEAP.load(saved).predict(X).to_numpy(), model.predict(X).to_numpy()
    )
    # the same model in format 2: one plain file per text
    old = tmp_path / "old"
    shutil.copytree(saved, old)
    bundle = json.loads((old / TEXTS_FILE).read_text())
    (old / TEXTS_FILE).unlink()
    del meta["sha256"][TEXTS_FILE]
    for i, key in enumerate(sorted(meta["texts"])):
        name = f"text_{i:03d}.txt"
        (old / name).write_text(bundle[key])
        meta["texts"][key] = name
        meta["sha256"][name] = hashlib.sha256(bundle[key].encode()).hexdigest()
    meta["format_version"] = 2
    (old / "leapscreen_model.json").write_text(json.dumps(meta))
    np.testing.assert_array_equal(LEAP.load(old).predict(X).to_numpy(), model.predict(X).to_numpy())
    # a bundle without one of its texts
    broken = tmp_path / "broken"
    shutil.copytree(saved, broken)
    bundle.pop(sorted(bundle)[0])
    (broken / TEXTS_FILE).write_text(json.dumps(bundle))
    meta = json.loads((broken / "leapscreen_model.json").read_text())
    meta["sha256"][TEXTS_FILE] = hashlib.sha256((broken / TEXTS_FILE).read_bytes()).hexdigest()
    (broken / "leapscreen_model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="lacks the text"):
        LEAP.load(broken)
