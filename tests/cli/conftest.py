"""Small data for CLI tests: a simulated screen (parquet dataset + CSV files) and one fitted model."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from leapscreen.cli import app
from leapscreen.data.simulate import simulate_screen

REPO_SRC = Path(__file__).resolve().parents[2] / "src"
TINY = ["--seeds", "1", "--latent-dim", "4", "--n-genes", "50", "--min-labels", "5"]


def invoke(args: list[str]):
    """Run the CLI in-process; stderr and stdout together in ``res.output``."""
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_clean_error(res, *needles: str) -> None:
    """Exit 2, no traceback, no uncaught exception, and every needle in the message."""
    out = res.output
    assert res.exit_code == 2, (res.exit_code, out, res.exception)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in out
    for needle in needles:
        assert needle.lower() in out.lower(), (needle, out)


@pytest.fixture(scope="session")
def screen_files(tmp_path_factory) -> dict[str, Path]:
    """A simulated screen as a leapscreen dataset directory and as expression / responses CSVs."""
    data, _ = simulate_screen(
        n_samples=60, n_genes=120, n_perturbations=5, n_lineages=3, random_state=3
    )
    root = tmp_path_factory.mktemp("screen")
    data.write_parquet(root / "dataset")
    data.expression.to_csv(root / "expression.csv")
    data.responses.to_csv(root / "responses.csv")
    data.expression.iloc[:4].to_csv(root / "new.csv")
    return {
        "dataset": root / "dataset",
        "expression": root / "expression.csv",
        "responses": root / "responses.csv",
        "new": root / "new.csv",
        "perturbations": [str(p) for p in data.perturbation_ids],
    }


@pytest.fixture(scope="session")
def fitted_model(screen_files, tmp_path_factory) -> Path:
    """One tiny model fitted through the CLI (shared; tests must not modify it)."""
    out = tmp_path_factory.mktemp("model") / "model"
    res = invoke(["fit", "--data", screen_files["dataset"], *TINY, "--out", out, "-q"])
    assert res.exit_code == 0, res.output
    return out
