"""``leapscreen data summary`` with the options of issue 9 and the reader holes it fixed.

Each test runs the command through typer's CliRunner and checks the exit code, that an error names
the file and says what to do, and that no traceback is printed.
"""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from tests.data import bad_inputs as B

runner = CliRunner()


@pytest.fixture(scope="module")
def root() -> typer.Typer:
    from leapscreen.cli.data import app

    top = typer.Typer()
    top.add_typer(app, name="data")
    return top


def flat(text: str) -> str:
    return " ".join(text.split())


def summary(root, *args):
    res = runner.invoke(root, ["data", "summary", "-q", *map(str, args)])
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res


def fails(res, path, *fragments):
    assert res.exit_code == 2, res.output
    err = flat(res.stderr)
    assert err.startswith("error:") and str(path.name) in err, err
    for fragment in fragments:
        assert fragment in err, err


def test_value_chooses_the_gdsc_response(root, tmp_path):
    path = tmp_path / "gdsc.csv"
    B.gdsc_long().to_csv(path, index=False)
    default = summary(root, path)
    assert default.exit_code == 0 and "gdsc_fitted" in default.stdout
    auc = summary(root, path, "--value", "AAC")
    assert auc.exit_code == 0 and f"{B.N_SAMPLES} samples x {B.N_PERTS} perturbations" in auc.stdout
    fails(summary(root, path, "--value", "IC90"), path, "IC90", "--value")


def test_long_table_columns_and_duplicate_rule(root, tmp_path):
    path = tmp_path / "long.csv"
    df = pd.DataFrame(
        {"line": ["a", "a", "b", "c"], "cpd": ["x", "x", "x", "y"], "resp": [1.0, 3.0, 2.0, 4.0]}
    )
    df.to_csv(path, index=False)
    args = ("--sample-column", "line", "--perturbation-column", "cpd", "--value-column", "resp")
    ok = summary(root, path, *args)
    assert ok.exit_code == 0, ok.output
    assert "long_table, 3 samples x 2 perturbations" in flat(ok.stdout)
    fails(summary(root, path, *args, "--duplicates", "error"), path, "more than once", "a / x")
    bad = summary(root, path, *args, "--duplicates", "sum")
    assert bad.exit_code == 2 and "--duplicates" in flat(bad.stderr)
    fails(
        summary(
            root,
            path,
            "--sample-column",
            "line",
            "--perturbation-column",
            "cpd",
            "--value-column",
            "nope",
            "--duplicates",
            "first",
        ),
        path,
        "no column 'nope'",
        "columns found: line, cpd, resp",
        "--value-column",
    )


def test_encoding_option_reads_latin1(root, tmp_path):
    path = B.write_models(tmp_path / "Model.csv", encoding="latin-1")
    fails(summary(root, path), path, "--encoding latin-1")
    ok = summary(root, path, "--encoding", "latin-1")
    assert ok.exit_code == 0 and "depmap_models" in ok.stdout
    unknown = summary(root, path, "--encoding", "klingon")
    assert unknown.exit_code == 2 and "klingon" in flat(unknown.stderr)


def test_log_transform_reads_depmap_tpm(root, tmp_path):
    path = B.write_wide(tmp_path / "tpm.csv", B.tpm_expression())
    fails(summary(root, path), path, "TPM", "--log-transform")
    ok = runner.invoke(root, ["data", "summary", str(path), "--log-transform"])
    assert ok.exit_code == 0, ok.output
    out = flat(ok.stdout)
    assert "depmap_expression" in out
    hi = float(out.split("values │ ")[1].split(" .. ")[1].split()[0])
    assert hi < 20  # log2(TPM + 1) of at most a million


@pytest.mark.parametrize(
    "write, fragments",
    [
        (lambda p: p.write_text(""), ("empty",)),
        (lambda p: p.write_text("sample,G0 (1),G1 (2)\n"), ()),
        (lambda p: pd.DataFrame({"s": ["a"], "G": [[1, 2]]}).to_parquet(p), ("nested",)),
        (lambda p: p.write_bytes(b"\x00\xff\xfe garbage \x80"), ()),
        (lambda p: p.write_text("a;b;c\n1;2;3\n4;5;6\n"), ("semicolon",)),
        (lambda p: p.write_text("a b c\nx 1 2\ny 3 4\n"), ("spaces",)),
    ],
    ids=["empty", "header_only", "nested_parquet", "binary", "semicolon", "spaces"],
)
def test_bad_files_fail_cleanly(root, tmp_path, write, fragments):
    path = tmp_path / ("bad.parquet" if "parquet" in str(write.__code__.co_names) else "bad.csv")
    write(path)
    res = summary(root, path)
    if res.exit_code == 0:  # a header-only table is a valid (empty) table for a summary
        assert "0 samples" in res.stdout or "0 identifiers" in res.stdout, res.stdout
        return
    fails(res, path, *fragments)


def test_gzip_without_suffix_and_huge_header(root, tmp_path):
    df = B.log_expression()
    gz = tmp_path / "expr.csv"
    gz.write_bytes(gzip.compress(df.to_csv().encode()))
    res = summary(root, gz)
    assert res.exit_code == 0, res.output
    assert f"{B.N_SAMPLES} samples x {B.N_GENES} genes" in res.stdout
    long = tmp_path / "long_header.csv"
    name = "G" * (9 * 2**20)
    long.write_text(f"sample,{name},G2\na,1.5,2\nb,2.5,3\n")
    res = summary(root, long)
    assert res.exit_code == 0, res.output[-300:]
    assert "2 samples x 2 features" in res.stdout
    assert "empty" not in res.output


def test_non_ach_rows_in_depmap_layout(root, tmp_path):
    df = B.log_expression([f"PDX-{i}" for i in range(B.N_SAMPLES)])
    path = B.write_wide(tmp_path / "pdx.csv", df)
    res = summary(root, path)
    assert res.exit_code == 0 and f"{B.N_SAMPLES} samples x {B.N_GENES}" in res.stdout
    assert np.isfinite(df.to_numpy()).all()


def test_generic_tpm_matrix_gets_a_scale_note(root, tmp_path):
    df = B.tpm_expression([f"ORG-{i}" for i in range(B.N_SAMPLES)])
    df.columns = B.GENES
    path = B.write_wide(tmp_path / "tpm.csv", df, "sample")
    res = runner.invoke(root, ["data", "summary", str(path)])
    assert res.exit_code == 0, res.output
    assert "un-logged TPM" in flat(res.stdout) and "--log-transform" in flat(res.stdout)
    logged = B.write_wide(tmp_path / "log.csv", B.log_expression(), "sample")
    res = runner.invoke(root, ["data", "summary", str(logged)])
    assert res.exit_code == 0 and "un-logged" not in flat(res.stdout)


def test_model_csv_without_lineage_is_sample_metadata(root, tmp_path):
    path = B.write_models(tmp_path / "Model.csv", lineage=False)
    res = summary(root, path)
    assert res.exit_code == 0, res.output
    assert "depmap_models" in res.stdout and "numeric matrix" not in res.output
    notes = tmp_path / "patients.csv"
    pd.DataFrame({"patient": ["p1", "p2"], "site": ["liver", "bone"], "stage": ["I", "II"]}).to_csv(
        notes, index=False
    )
    res = summary(root, notes)
    assert res.exit_code == 0 and "samples, 2 samples" in flat(res.stdout)


def test_header_only_expression_blamed_on_itself(root, tmp_path):
    """With an empty expression file the responses are not blamed (and no traceback)."""
    expr = tmp_path / "expr.csv"
    expr.write_text("," + ",".join(B.GENE_LABELS) + "\n")
    effect = B.write_wide(tmp_path / "effect.csv", B.gene_effect(), "ModelID")
    res = summary(root, expr, effect)
    assert res.exit_code == 0, res.output
    assert f"{expr}: " in res.stdout and "0 samples" in res.stdout
