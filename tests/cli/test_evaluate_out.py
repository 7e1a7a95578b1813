"""`evaluate --out` never writes among the user's files; it resumes in its own directory."""

from __future__ import annotations

from typer.testing import CliRunner

from leapscreen.cli import app

ARGS = ["evaluate", "--data", "demo", "--models", "mean", "--repeats", "1", "--n-genes", "50"]


def test_refuses_a_directory_of_user_files(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "results.csv").write_text("my own results\n")
    result = CliRunner().invoke(app, [*ARGS, "--out", str(out)])
    assert result.exit_code != 0
    assert "--out" in result.output and "Traceback" not in result.output
    assert (out / "results.csv").read_text() == "my own results\n"
    assert sorted(p.name for p in out.iterdir()) == ["results.csv"]


def test_writes_then_resumes_in_its_own_directory(tmp_path):
    out = tmp_path / "eval"
    first = CliRunner().invoke(app, [*ARGS, "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert (out / "results.csv").is_file() and (out / "cache" / "settings.json").is_file()
    again = CliRunner().invoke(app, [*ARGS, "--out", str(out)])
    assert again.exit_code == 0, again.output
