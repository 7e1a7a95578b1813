"""Low-level table reading: formats, delimiters and every kind of bad input, and atomic writes."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from leapscreen.data._io import (
    check_log_scale,
    read_header,
    read_table,
    sniff_delimiter,
    write_atomic,
)
from leapscreen.errors import InputError

IDS = ["ACH-000001", "ACH-000002", "ACH-000003"]


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        rng.uniform(0, 12, size=(3, 4)).round(3),
        index=pd.Index(IDS, name="ModelID"),
        columns=["TP53 (7157)", "KRAS (3845)", "EGFR (1956)", "MYC (4609)"],
    )


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".csv.gz", ".tsv.gz", ".txt", ".parquet"])
def test_read_matrix_every_format_gives_the_same_values(tmp_path, suffix):
    df = _frame()
    path = tmp_path / f"m{suffix}"
    if suffix == ".parquet":
        df.to_parquet(path)
    else:
        sep = "," if ".csv" in suffix else "\t"
        df.to_csv(path, sep=sep)
    out = read_table(path, index_col="ModelID", expected="matrix")
    assert out.dtypes.unique().tolist() == [np.float32]
    assert out.index.tolist() == IDS
    assert out.columns.tolist() == df.columns.tolist()
    np.testing.assert_allclose(out.to_numpy(), df.to_numpy(), rtol=1e-6)


def test_tab_file_named_csv_is_sniffed(tmp_path):
    path = tmp_path / "tabs.csv"
    _frame().to_csv(path, sep="\t")
    assert sniff_delimiter(path) == "\t"
    out = read_table(path, expected="matrix")
    assert out.shape == (3, 4)


def test_quoted_commas_do_not_fool_the_sniffer(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('id,comment,x\nA,"a, b, c",1\nB,"d, e",2\n')
    assert sniff_delimiter(path) == ","
    assert read_table(path).shape == (2, 3)


def test_unnamed_first_column_is_the_index(tmp_path):
    path = tmp_path / "m.csv"
    df = _frame()
    df.index.name = None
    df.to_csv(path)  # header starts with an empty field, as in DepMap files
    assert read_header(path)[0] == ""
    out = read_table(path, index_col=("ModelID", "DepMap_ID"), expected="matrix")
    assert out.index.tolist() == IDS and out.index.name is None


def test_r_style_header_without_row_name_field(tmp_path):
    path = tmp_path / "r.tsv"
    path.write_text("g1\tg2\nS1\t1\t2\nS2\t3\t4\n")
    out = read_table(path, expected="matrix")
    assert out.index.tolist() == ["S1", "S2"]
    assert out.loc["S2", "g2"] == 4


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found") as info:
        read_table(tmp_path / "nope.csv")
    assert "nope.csv" in str(info.value) and info.value.fix


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(InputError, match="directory"):
        read_table(tmp_path)


def test_semicolon_file_is_refused_with_a_fix(tmp_path):
    path = tmp_path / "eu.csv"
    path.write_text("ModelID;TP53;KRAS\nACH-000001;1,5;2,5\nACH-000002;3,5;4,5\n")
    with pytest.raises(InputError, match="semicolon") as info:
        read_table(path, expected="matrix")
    assert "comma-separated" in info.value.fix


def test_single_column_where_many_expected(tmp_path):
    path = tmp_path / "spaces.csv"
    path.write_text("ModelID TP53 KRAS\nACH-000001 1.5 2.5\n")
    with pytest.raises(InputError, match="only one column") as info:
        read_table(path, expected="matrix")
    assert "spaces" in str(info.value)


def test_missing_id_column_lists_the_columns_found(tmp_path):
    path = tmp_path / "m.csv"
    _frame().rename_axis("sample").to_csv(path)
    with pytest.raises(InputError) as info:
        read_table(path, index_col="ModelID", expected="matrix")
    msg = str(info.value)
    assert info.value.column == "ModelID"
    assert "'sample'" in msg and "TP53 (7157)" in msg


def test_missing_required_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="no column 'c'") as info:
        read_table(path, required=["a", "c"])
    assert info.value.column == "c"


def test_non_numeric_value_names_column_row_and_value(tmp_path):
    path = tmp_path / "m.csv"
    df = _frame().astype(object)
    df.loc["ACH-000002", "KRAS (3845)"] = "n.d."
    df.to_csv(path)
    with pytest.raises(InputError) as info:
        read_table(path, expected="matrix")
    msg = str(info.value)
    assert info.value.column == "KRAS (3845)"
    assert "'n.d.'" in msg and "ACH-000002" in msg


def test_na_tokens_are_missing_not_errors(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("ModelID,a,b\nACH-1,1,NA\nACH-2,,3\nACH-3,NaN,4\n")
    out = read_table(path, expected="matrix")
    assert int(out.isna().sum().sum()) == 3


def test_duplicated_sample_ids_give_examples(tmp_path):
    path = tmp_path / "m.csv"
    df = _frame()
    df.index = ["ACH-000001", "ACH-000002", "ACH-000001"]
    df.to_csv(path)
    with pytest.raises(InputError, match="more than once") as info:
        read_table(path, expected="matrix")
    assert "ACH-000001" in str(info.value)


def test_duplicated_column_names_are_refused(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("ModelID,TP53,TP53\nACH-1,1,2\n")
    with pytest.raises(InputError, match="column names occur more than once") as info:
        read_table(path, expected="matrix")
    assert info.value.column == "TP53"


def test_empty_ids_are_refused(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("ModelID,a\nACH-1,1\n,2\n")
    with pytest.raises(InputError, match="empty ID"):
        read_table(path, expected="matrix")


def test_ragged_rows(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("ModelID,a,b\nACH-1,1,2\nACH-2,1,2,3,4\n")
    with pytest.raises(InputError, match="same number of fields"):
        read_table(path, expected="matrix")


def test_broken_parquet_and_gzip(tmp_path):
    bad = tmp_path / "x.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="parquet"):
        read_table(bad)
    badgz = tmp_path / "x.csv.gz"
    badgz.write_bytes(b"plain text, not gzip")
    with pytest.raises(InputError):
        read_table(badgz)


def test_spreadsheet_is_refused(tmp_path):
    path = tmp_path / "x.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(InputError, match="spreadsheet") as info:
        read_table(path)
    assert "CSV" in info.value.fix


def test_log_expression_accepts_log_and_refuses_tpm(tmp_path):
    rng = np.random.default_rng(1)
    log = pd.DataFrame(
        rng.gamma(1.5, 2.0, size=(20, 200)).clip(0, 17), index=[f"S{i}" for i in range(20)]
    )
    log.columns = [f"G{j}" for j in range(200)]
    ok = tmp_path / "log.csv"
    log.to_csv(ok)
    read_table(ok, expected="log_expression")
    tpm = tmp_path / "tpm.csv"
    (2.0**log - 1).to_csv(tpm)
    with pytest.raises(InputError, match="looks like TPM") as info:
        read_table(tpm, expected="log_expression")
    assert "--log-transform" in info.value.fix and "log_transform=True" in info.value.fix


def test_log_check_heavy_tail_below_the_max_threshold():
    # linear values that never exceed 50 but are very right-skewed
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.uniform(0, 0.5, 10_000), rng.uniform(30, 49, 20)])
    with pytest.raises(InputError, match="heavy right tail"):
        check_log_scale(values, None)
    # z-scored data (negative values) are not judged by the tail
    check_log_scale(rng.standard_normal(5000), None)


def test_write_atomic_refuses_overwrite_and_cleans_up(tmp_path):
    dest = tmp_path / "sub" / "out.csv.gz"
    write_atomic(dest, lambda p: _frame().to_csv(p))
    assert dest.exists()
    with gzip.open(dest, "rt") as fh:  # the suffix drove compression: .gz
        assert fh.readline().startswith("ModelID")
    with pytest.raises(InputError, match="refusing to overwrite") as info:
        write_atomic(dest, lambda p: p.write_text("x"))
    assert "overwrite=True" in info.value.fix
    before = dest.read_bytes()

    def failing(p):
        p.write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(dest, failing, overwrite=True)
    assert dest.read_bytes() == before  # untouched
    assert sorted(x.name for x in dest.parent.iterdir()) == ["out.csv.gz"]  # no temp left
    write_atomic(dest, lambda p: p.write_text("new"), overwrite=True)
    assert dest.read_text() == "new"


def test_parquet_index_conventions(tmp_path):
    # an unnamed string index holds the IDs
    named = pd.DataFrame(np.ones((3, 2)), index=["a", "b", "c"], columns=["x", "y"])
    named.to_parquet(tmp_path / "a.parquet")
    out = read_table(tmp_path / "a.parquet", expected="matrix")
    assert out.index.tolist() == ["a", "b", "c"] and out.columns.tolist() == ["x", "y"]
    # an unnamed integer index (rows filtered) is not a feature column
    filtered = pd.DataFrame({"ModelID": ["a", "b", "c"], "x": [1.0, 2.0, 3.0]}).iloc[[0, 2]]
    filtered.to_parquet(tmp_path / "b.parquet")
    out = read_table(tmp_path / "b.parquet", index_col="ModelID", expected="matrix")
    assert out.columns.tolist() == ["x"] and out.index.tolist() == ["a", "c"]
