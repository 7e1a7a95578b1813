"""Readers of gene sets (GMT, MSigDB JSON) and perturbation descriptor tables: good files in every
format, bad files refused with an InputError that names the file, the problem and the fix."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from leapscreen.data.genesets import (
    read_descriptor_table,
    read_gene_sets,
    read_gmt,
    read_msigdb_json,
)
from leapscreen.errors import InputError
from leapscreen.heads.pan import gene_set_descriptors


def write(path, text: str):
    path.write_text(text)
    return path


# ------------------------------------------------------------------ descriptor tables


def test_descriptor_table_csv_tsv_gz_parquet(tmp_path):
    expected = pd.DataFrame(
        {"d1": [1.0, 3.0], "d2": [2.0, -4.5]}, index=pd.Index(["A1BG (1)", "TP53"])
    )
    csv = write(tmp_path / "d.csv", "id,d1,d2\nA1BG (1),1,2\nTP53,3,-4.5\n")
    tsv = write(tmp_path / "d.tsv", "id\td1\td2\nA1BG (1)\t1\t2\nTP53\t3\t-4.5\n")
    gz = tmp_path / "d.csv.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(csv.read_text())
    parquet = tmp_path / "d.parquet"
    expected.rename_axis("id").to_parquet(parquet)
    for path in (csv, tsv, gz, parquet):
        table = read_descriptor_table(path)
        assert table.dtypes.unique().tolist() == [np.dtype(np.float64)]
        pd.testing.assert_frame_equal(table, expected, check_names=False)


def test_descriptor_table_named_id_column(tmp_path):
    path = write(tmp_path / "d.csv", "d1,drug,d2\n1,X,2\n3,Y,4\n")
    table = read_descriptor_table(path, index_col="drug")
    assert list(table.index) == ["X", "Y"] and list(table.columns) == ["d1", "d2"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,d1\nA,1\nA,2\n", "more than once"),
        ("id,d1\nA,foo\n", "non-numeric value 'foo'"),
        ("id,d1,d2\nA,1,\nB,2,3\n", "missing or infinite"),
        ("id\nA\nB\n", "only one column"),
        ("", "empty"),
        ("id;d1\nA;1\n", "semicolon"),
    ],
)
def test_bad_descriptor_tables_name_the_file(tmp_path, text, message):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(InputError, match=message) as info:
        read_descriptor_table(path)
    assert str(path) in str(info.value) and info.value.fix


def test_missing_descriptor_file(tmp_path):
    with pytest.raises(InputError, match="file not found") as info:
        read_descriptor_table(tmp_path / "nope.csv")
    assert "nope.csv" in str(info.value)


def test_descriptor_table_feeds_a_pan_head(tmp_path):
    """A table read from disk is what the heads take (numbers, string IDs)."""
    from leapscreen.heads.pan.descriptors import as_descriptor_frame

    path = write(tmp_path / "d.csv", "gene,a,b\nG1,0.5,1\nG2,1.5,-1\n")
    frame = as_descriptor_frame(read_descriptor_table(path))
    assert frame.shape == (2, 2) and list(frame.index) == ["G1", "G2"]


# ------------------------------------------------------------------ GMT and MSigDB JSON


GMT = "SET_A\tdesc\tTP53\tMDM2\tCDKN1A\nSET_B\thttp://x\tMYC\tMAX\tTP53\n"


def test_gmt_and_json_give_the_same_descriptors(tmp_path):
    gmt = write(tmp_path / "s.gmt", GMT)
    bundle = {
        "SET_A": {"geneSymbols": ["TP53", "MDM2", "CDKN1A"], "collection": "C2:CGP"},
        "SET_B": {"geneSymbols": ["MYC", "MAX", "TP53"], "collection": "C2:CGP"},
        "SET_H": {"geneSymbols": ["EGFR"], "collection": "H"},
    }
    js = write(tmp_path / "s.json", json.dumps(bundle))
    assert read_gene_sets(gmt) == read_msigdb_json(js, collection="C2")
    assert read_gene_sets(js)["SET_H"] == ["EGFR"]
    a = gene_set_descriptors(read_gmt(gmt))
    b = gene_set_descriptors(read_msigdb_json(js, collection="C2:CGP"))
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SET_A desc TP53 MDM2\n", "tab-separated"),
        ("SET_A\tdesc\t\t\n", "has no genes"),
        ("SET_A\td\tTP53\nSET_A\td\tMYC\n", "occurs twice"),
        ("# only a comment\n\n", "no gene set found"),
    ],
)
def test_bad_gmt_files_name_the_file(tmp_path, text, message):
    path = write(tmp_path / "bad.gmt", text)
    with pytest.raises(InputError, match=message) as info:
        read_gmt(path)
    assert str(path) in str(info.value)


def test_binary_gmt_refused(tmp_path):
    path = tmp_path / "bad.gmt"
    path.write_bytes(b"\xff\xfe\x00\x81\x9f" * 20)
    with pytest.raises(InputError, match="GMT text file") as info:
        read_gmt(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "cannot be read as JSON"),
        ("[1, 2]", "not an object of gene sets"),
        ('{"S": {"genes": ["A"]}}', "no 'geneSymbols'"),
        ('{"S": {"geneSymbols": ["A"], "collection": "H"}}', "no gene set found"),
    ],
)
def test_bad_msigdb_json_names_the_file(tmp_path, text, message):
    path = write(tmp_path / "bad.json", text)
    with pytest.raises(InputError, match=message) as info:
        read_msigdb_json(path, collection="C2")
    assert str(path) in str(info.value)


def test_missing_gene_set_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_gene_sets(tmp_path / "nope.gmt")
