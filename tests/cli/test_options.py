"""Options and config files are validated before any work (issue 9 section 3)."""

from __future__ import annotations

import json

import pytest

from leapscreen.models import model_names
from tests.cli.conftest import TINY, assert_clean_error, invoke

# (command-line tail, words the message must contain)
FIT_BAD = [
    (["--latent-dim", "0"], ["--latent-dim", ">= 1"]),
    (["--n-genes", "0"], ["--n-genes", ">= 1"]),
    (["--n-genes", "-5"], ["--n-genes", "-5"]),
    (["--seeds", "0"], ["--seeds", ">= 1"]),
    (["--min-labels", "-1"], ["--min-labels", ">= 0"]),
    (["--min-shared-samples", "0"], ["--min-shared-samples"]),
    (["--seed", "-3"], ["--seed"]),
    (["--device", "banana"], ["--device", "banana", "cpu"]),
    (["--model", "leap-ps-lasoo"], ["--model", "leap-ps-lasoo", "did you mean", "leap-ps-lasso"]),
    (["--duplicates", "sum"], ["--duplicates", "sum", "mean"]),
]


@pytest.mark.parametrize(("tail", "needles"), FIT_BAD, ids=[" ".join(t) for t, _ in FIT_BAD])
def test_fit_rejects_bad_numbers_before_reading(tail, needles, tmp_path):
    out = tmp_path / "m"
    # the responses file does not exist: the option error must come first (checked before reading)
    res = invoke(
        ["fit", "-x", tmp_path / "missing.csv", "-y", tmp_path / "nope.csv", "--out", out, *tail]
    )
    assert_clean_error(res, *needles)
    assert "missing.csv" not in res.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_device_cuda_without_cuda(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    res = invoke(["fit", "--data", "demo", "--device", "cuda", "--out", tmp_path / "m"])
    assert_clean_error(res, "--device", "cuda", "--device cpu")


EVAL_BAD = [
    (["--top-k", "0"], ["--top-k", ">= 1"]),
    (["--repeats", "0"], ["--repeats"]),
    (["--test-fraction", "1.5"], ["--test-fraction", "<= 1"]),
    (["--test-fraction", "0"], ["--test-fraction", "> 0"]),
    (["--seeds", "0"], ["--seeds"]),
    (["--latent-dim", "0"], ["--latent-dim"]),
    (["--models", "ridge,banana"], ["--models", "banana"]),
    (["--models", ","], ["--models", "names nothing"]),
    (["--task", "unseen-lines"], ["--task", "unseen-lines"]),
    (["--sensitive", "middle"], ["--sensitive", "low"]),
    (["--device", "banana"], ["--device", "banana"]),
    (["--task", "transfer"], ["--target"]),
]


@pytest.mark.parametrize(("tail", "needles"), EVAL_BAD, ids=[" ".join(t) for t, _ in EVAL_BAD])
def test_evaluate_rejects_bad_options_before_reading(tail, needles, tmp_path):
    out = tmp_path / "e"
    res = invoke(
        ["evaluate", "-x", tmp_path / "missing.csv", "-y", tmp_path / "n.csv", "--out", out, *tail]
    )
    assert_clean_error(res, *needles)
    assert not out.exists()


def test_model_help_lists_the_registry():
    res = invoke(["fit", "--help"])
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    for name in model_names()[:3]:
        assert name.split("-")[0] in text
    assert "<bool>" not in res.output  # flags take no value
    assert "<bool>" not in invoke(["predict", "--help"]).output
    assert "<bool>" not in invoke(["evaluate", "--help"]).output
    assert "--verbose" in invoke(["evaluate", "--help"]).output


def test_latent_dim_larger_than_genes_after_loading(screen_files, tmp_path):
    out = tmp_path / "m"
    res = invoke(
        [
            "fit",
            "--data",
            screen_files["dataset"],
            "--seeds",
            "1",
            "--n-genes",
            "50",
            "--latent-dim",
            "80",
            "--out",
            out,
        ]
    )
    assert_clean_error(res, "--latent-dim 80", "genes", "--latent-dim 50")
    assert not out.exists()
    res = invoke(
        [
            "fit",
            "--data",
            screen_files["dataset"],
            "--seeds",
            "1",
            "--n-genes",
            "100",
            "--latent-dim",
            "70",
            "--out",
            out,
        ]
    )
    assert_clean_error(res, "--latent-dim 70", "samples (60")
    assert not out.exists() and list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------- config


def _config(tmp_path, content, name="cfg.json"):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


CONFIG_BAD = [
    ({"sedes": 2}, ["sedes", "did you mean 'seeds'"]),
    ({"latentdim": 4}, ["latentdim", "latent_dim"]),
    ({"log_transform": "false"}, ["log_transform", "true or false"]),
    ({"seeds": "two"}, ["seeds", "integer", "'two'"]),
    ({"seeds": 1.5}, ["seeds", "integer"]),
    ({"seeds": True}, ["seeds", "integer"]),
    ({"seeds": 0}, ["--seeds", ">= 1"]),
    ({"model": "nope"}, ["--model", "nope"]),
    ({"quiet": True}, ["unknown config key 'quiet'"]),
    ("[1, 2]", ["list", "not a table of options"]),
    ({"seeds": "two", "mdoel": "x", "sedes": 1}, ["keys 'mdoel'", "'model'", "'sedes'"]),
    ("{seeds: 2", ["cannot parse", "JSON"]),
]


@pytest.mark.parametrize(("content", "needles"), CONFIG_BAD, ids=[str(c) for c, _ in CONFIG_BAD])
def test_fit_config_is_checked(content, needles, tmp_path):
    cfg = _config(tmp_path, content)
    out = tmp_path / "m"
    res = invoke(
        [
            "fit",
            "-x",
            tmp_path / "missing.csv",
            "-y",
            tmp_path / "n.csv",
            "--config",
            cfg,
            "--out",
            out,
        ]
    )
    assert_clean_error(res, str(cfg) if "--" not in needles[0] else "", *needles)
    assert not out.exists()


def test_toml_config_and_evaluate_config(tmp_path):
    cfg = _config(tmp_path, "seeds = 2\ntop_k = 0\n", "cfg.toml")
    res = invoke(
        [
            "evaluate",
            "-x",
            tmp_path / "m.csv",
            "-y",
            tmp_path / "n.csv",
            "--config",
            cfg,
            "--out",
            tmp_path / "e",
        ]
    )
    assert_clean_error(res, "--top-k")
    cfg = _config(tmp_path, {"top_kk": 3})
    res = invoke(["evaluate", "--data", "demo", "--config", cfg, "--out", tmp_path / "e"])
    assert_clean_error(res, "top_kk", "top_k", str(cfg))
    # a key of another command is not silently accepted
    cfg = _config(tmp_path, {"overwrite": True})
    res = invoke(["evaluate", "--data", "demo", "--config", cfg, "--out", tmp_path / "e"])
    assert_clean_error(res, "overwrite", "leapscreen evaluate")
    assert not (tmp_path / "e").exists()


def test_command_line_wins_over_config(screen_files, tmp_path):
    cfg = _config(
        tmp_path,
        {"model": "leap-ps-lasso", "seeds": 3, "latent_dim": 4, "n_genes": 40, "min_labels": 5},
    )
    out = tmp_path / "m"
    res = invoke(
        [
            "fit",
            "--data",
            screen_files["dataset"],
            "--config",
            cfg,
            "--model",
            "ridge",
            "--seeds",
            "1",
            "--out",
            out,
            "-q",
        ]
    )
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "leapscreen_model.json").read_text())
    assert (
        meta["metadata"]["model"] == "ridge"
    )  # typed --model wins (the config said leap-ps-lasso)
    assert meta["state"]["params"]["n_genes"] == 40  # untyped options come from the config
    # typing the default value explicitly also wins over the config
    cfg2 = _config(tmp_path, {"model": "ridge", "n_genes": 40, "min_labels": 5}, "c2.json")
    out2 = tmp_path / "m2"
    res = invoke(
        [
            "fit",
            "--data",
            screen_files["dataset"],
            "--config",
            cfg2,
            "--model",
            "leap-ps-lasso",
            *TINY,
            "--out",
            out2,
            "-q",
        ]
    )
    assert res.exit_code == 0, res.output
    meta = json.loads((out2 / "leapscreen_model.json").read_text())
    assert meta["metadata"]["model"] == "leap-ps-lasso"
    assert meta["state"]["params"]["n_genes"] == 50
