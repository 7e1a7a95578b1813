"""predict output safety and perturbation choice; inspect; provenance; quiet output (issue 9)."""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from leapscreen.cli import model as cli_model
from tests.cli.conftest import REPO_SRC, assert_clean_error, invoke


def _predict(model, new, out, *extra):
    return invoke(["predict", model, new, "--out", out, "-q", *extra])


def test_gzip_by_final_suffix(fitted_model, screen_files, tmp_path):
    for name, sep in (("p.csv.gz", ","), ("p.tsv.gz", "\t")):
        out = tmp_path / name
        res = _predict(fitted_model, screen_files["new"], out)
        assert res.exit_code == 0, res.output
        assert out.read_bytes()[:2] == b"\x1f\x8b"  # really gzip, not plain text
        with gzip.open(out, "rt") as fh:
            table = pd.read_csv(fh, sep=sep)
        assert list(table.columns) == ["sample", "perturbation", "value", "fallback_to_mean"]
        assert len(table) == 4 * len(screen_files["perturbations"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv.gz", "p.tsv.gz"]
    res = _predict(fitted_model, screen_files["new"], tmp_path / "p.xlsx")
    assert_clean_error(res, "p.xlsx", "unknown output format", ".csv.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv.gz", "p.tsv.gz"]


def test_disk_full_cleans_up_and_keeps_the_old_file(
    fitted_model, screen_files, tmp_path, monkeypatch
):
    out = tmp_path / "p.csv"
    out.write_text("the user's previous predictions\n")

    def full_disk(table, tmp, path):
        Path(tmp).write_text("partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cli_model, "_write_to", full_disk)
    res = _predict(fitted_model, screen_files["new"], out, "--overwrite")
    assert_clean_error(res, str(out), "disk is full", "nothing was written")
    assert out.read_text() == "the user's previous predictions\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]  # no temp file left


def test_file_size_limit_in_a_real_process(fitted_model, screen_files, tmp_path):
    """RLIMIT_FSIZE makes the write fail with EFBIG: a clean message, no temp file, old file kept."""
    out = tmp_path / "p.csv"
    out.write_text("old\n")
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))\n"
        "from leapscreen.cli import main\n"
        "sys.argv = ['leapscreen'] + sys.argv[1:]\n"
        "main()\n"
    )
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(REPO_SRC))
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "predict",
            str(fitted_model),
            str(screen_files["new"]),
            "--out",
            str(out),
            "--overwrite",
            "-q",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert "Traceback" not in text and "file-size limit" in text and str(out) in text
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]


def test_perturbations_case_insensitive_and_unknown(fitted_model, screen_files, tmp_path):
    first, second = screen_files["perturbations"][:2]
    out = tmp_path / "p.csv"
    res = _predict(
        fitted_model,
        screen_files["new"],
        out,
        "--perturbations",
        f"{first.upper()}, {second.lower()}",
    )
    assert res.exit_code == 0, res.output
    assert sorted(pd.read_csv(out)["perturbation"].unique()) == sorted([first, second])
    res = _predict(
        fitted_model,
        screen_files["new"],
        tmp_path / "q.csv",
        "--perturbations",
        f"{first},NOT_A_GENE",
    )
    assert_clean_error(res, "--perturbations", "NOT_A_GENE", "leapscreen inspect")
    res = _predict(fitted_model, screen_files["new"], tmp_path / "q.csv", "--perturbations", ",")
    assert_clean_error(res, "--perturbations", "names nothing")
    res = _predict(fitted_model, screen_files["new"], tmp_path / "q.csv", "--device", "banana")
    assert_clean_error(res, "--device", "banana")
    assert not (tmp_path / "q.csv").exists()


def test_fallback_column(fitted_model, screen_files, tmp_path, monkeypatch):
    from leapscreen.ensemble import LEAP

    victim = screen_files["perturbations"][1]
    monkeypatch.setattr(LEAP, "fallback_perturbations", lambda self: [victim], raising=False)
    out = tmp_path / "p.csv"
    res = invoke(["predict", fitted_model, screen_files["new"], "--out", out])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert set(table.loc[table["fallback_to_mean"], "perturbation"]) == {victim}
    assert victim in res.output and "training mean" in res.output


def test_inspect(fitted_model, screen_files):
    res = invoke(["inspect", fitted_model, "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["kind"] == "leap-ps-lasso"
    assert info["members"] == [
        {
            "representation": "damae",
            "head": "ps-lasso",
            "seed": 0,
            "fit_seconds": info["members"][0]["fit_seconds"],
        }
    ]
    assert info["n_genes"] == 50
    assert [p["perturbation"] for p in info["perturbations"]] == screen_files["perturbations"]
    labels = pd.read_csv(screen_files["responses"], index_col=0).notna().sum()
    assert [p["n_labels"] for p in info["perturbations"]] == [
        int(labels[p]) for p in screen_files["perturbations"]
    ]
    assert all(p["cv_score"] is None or -1 <= p["cv_score"] <= 1 for p in info["perturbations"])
    assert any(p["cv_score"] is not None for p in info["perturbations"])
    assert info["settings"]["latent_dim"] == 4 and len(info["training_fingerprint"]) == 64
    assert info["leapscreen_version"]
    prov = info["provenance"]
    assert "fit" in prov["command_line"] and "--latent-dim" in prov["command_line"]
    res = invoke(["inspect", fitted_model])
    assert res.exit_code == 0 and "made by" in res.output and "damae" in res.output


def test_inspect_bad_dirs(tmp_path):
    res = invoke(["inspect", tmp_path])
    assert_clean_error(res, "not a leapscreen model")
    res = invoke(["inspect", tmp_path / "nope"])
    assert_clean_error(res, "not found")


def test_provenance_records_files_and_hashes(screen_files, tmp_path):
    out = tmp_path / "m"
    res = invoke(
        [
            "fit",
            "-x",
            screen_files["expression"],
            "-y",
            screen_files["responses"],
            "--seeds",
            "1",
            "--latent-dim",
            "4",
            "--n-genes",
            "50",
            "--min-labels",
            "5",
            "--out",
            out,
        ]
    )
    assert res.exit_code == 0, res.output
    # by default no INFO chatter
    assert "INFO" not in res.output
    meta = json.loads((out / "leapscreen_model.json").read_text())
    prov = meta["metadata"]["provenance"]
    inputs = {i["option"]: i for i in prov["inputs"]}
    for option in ("--expression", "--responses"):
        path = screen_files[option.lstrip("-")]
        assert inputs[option]["name"] == path.name
        assert inputs[option]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert prov["leapscreen_version"] and isinstance(prov["command_line"], list)
    assert "value" in prov


def test_warnings_are_one_clean_line(capsys):
    import warnings

    from leapscreen.cli._common import setup_logging

    setup_logging(quiet=False)
    warnings.warn("column 'X' has few labels\n  and more", UserWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert "warning: column 'X' has few labels and more" in " ".join(err.split())
    assert "warnings.warn" not in err and ".py:" not in err


def test_fit_summary_names_fallbacks(screen_files, tmp_path, monkeypatch):
    from leapscreen.ensemble import LEAP
    from tests.cli.conftest import TINY

    victim = screen_files["perturbations"][2]
    monkeypatch.setattr(LEAP, "fallback_perturbations", lambda self: [victim], raising=False)
    out = tmp_path / "m"
    res = invoke(["fit", "--data", screen_files["dataset"], *TINY, "--out", out])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert victim in text and "training mean" in text and "--min-labels" in text
    meta = json.loads((out / "leapscreen_model.json").read_text())
    assert meta["metadata"]["fallback_perturbations"] == [victim]
    info = json.loads(invoke(["inspect", out, "--json"]).output)
    assert [p["perturbation"] for p in info["perturbations"] if p["fallback_to_mean"]] == [victim]
