"""Model directories: round trip in a fresh process, damaged / foreign directories, no pickle."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from leapscreen.data.simulate import simulate_screen
from leapscreen.ensemble import LEAP
from leapscreen.errors import InputError, ModelFormatError
from leapscreen.persist.model import ARRAYS_FILE, FORMAT_VERSION


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory):
    data, _ = simulate_screen(n_samples=90, n_genes=120, n_perturbations=6, random_state=1)
    model = LEAP(
        representation=["damae", "pca"],
        n_seeds=2,
        latent_dim=8,
        n_genes=100,
        representation_params={"max_epochs": 20, "patience": 3},
    )
    model.fit(data.expression.iloc[:70], data.responses.iloc[:70])
    path = tmp_path_factory.mktemp("m") / "model"
    model.save(path)
    return model, data, path


def test_round_trip_in_fresh_process(model_and_data, tmp_path):
    model, data, path = model_and_data
    new = data.expression.iloc[70:]
    expr_file = tmp_path / "new.parquet"
    new.to_parquet(expr_file)
    out = tmp_path / "pred.parquet"
    code = (
        "import pandas as pd; from leapscreen.ensemble import LEAP;"
        f"m = LEAP.load({str(path)!r});"
        f"p = m.predict(pd.read_parquet({str(expr_file)!r}));"
        f"q = m.predict(pd.read_parquet({str(expr_file)!r}), layered=True);"
        f"p.to_parquet({str(out)!r}); assert abs(p - q).to_numpy().max() < 1e-5"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        env={"CUDA_VISIBLE_DEVICES": "", **__import__("os").environ},
    )
    fresh = pd.read_parquet(out)
    np.testing.assert_allclose(fresh.to_numpy(), model.predict(new).to_numpy(), atol=1e-6)


def test_no_pickle_and_metadata(model_and_data):
    model, _, path = model_and_data
    meta = json.loads((path / "leapscreen_model.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["genes"] == list(
        model.preprocessor_.genes_
    )
    assert meta["training_fingerprint"] == model.fingerprint_
    for f in path.glob("*.npz"):
        with np.load(f, allow_pickle=False) as z:
            for k in z.files:
                assert z[k].dtype != object
    assert not list(path.glob("*.pkl")) and not list(path.glob("*.pt"))


def test_refuses_overwrite(model_and_data):
    model, _, path = model_and_data
    with pytest.raises(InputError, match="never overwrites"):
        model.save(path)


def test_damaged_and_foreign_directories(model_and_data, tmp_path):
    import shutil

    _, _, path = model_and_data
    broken = tmp_path / "broken"
    shutil.copytree(path, broken)
    (broken / ARRAYS_FILE).write_bytes(b"garbage")
    with pytest.raises(ModelFormatError, match="checksum"):
        LEAP.load(broken)
    (broken / ARRAYS_FILE).unlink()
    with pytest.raises(ModelFormatError, match="missing"):
        LEAP.load(broken)
    with pytest.raises(ModelFormatError, match="not a leapscreen model"):
        LEAP.load(tmp_path)
    foreign = tmp_path / "foreign"
    shutil.copytree(path, foreign)
    meta = json.loads((foreign / "leapscreen_model.json").read_text())
    meta["format_version"] = 99
    (foreign / "leapscreen_model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="upgrade"):
        LEAP.load(foreign)
