"""Gene sets: GMT, MSigDB JSON bundle, membership matrices; the real MSigDB files."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import scipy.sparse as sp

from leapscreen.data.genesets import (
    filter_gene_sets,
    gene_set_matrix,
    read_gene_sets,
    read_gmt,
    read_msigdb_json,
)
from leapscreen.errors import InputError

GMT = (
    "HALLMARK_A\thttp://www.gsea-msigdb.org/A\tTP53\tMDM2\tCDKN1A\tTP53\n"
    "\n"
    "HALLMARK_B\tdesc\tMYC\tMAX\t\tNPM1\n"
)


def test_read_gmt(tmp_path):
    path = tmp_path / "h.gmt"
    path.write_text(GMT)
    sets = read_gmt(path)
    assert list(sets) == ["HALLMARK_A", "HALLMARK_B"]
    assert sets["HALLMARK_A"] == ["TP53", "MDM2", "CDKN1A"]  # repeat removed, order kept
    assert sets["HALLMARK_B"] == ["MYC", "MAX", "NPM1"]  # empty field skipped
    gz = tmp_path / "h.gmt.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(GMT)
    assert read_gmt(gz) == sets


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("SET desc TP53 MDM2\n", "tab-separated"),
        ("SET\tdesc\n", "field"),
        ("A\td\tX\nA\td\tY\n", "occurs twice"),
        ("", "no gene set"),
    ],
)
def test_read_gmt_bad(tmp_path, text, match):
    path = tmp_path / "bad.gmt"
    path.write_text(text)
    with pytest.raises(InputError, match=match):
        read_gmt(path)


def test_read_msigdb_json(tmp_path):
    bundle = {
        "CHIANG_LIVER_CANCER_SUBCLASS_PROLIFERATION_UP": {
            "collection": "C2:CGP",
            "systematicName": "M1",
            "geneSymbols": ["TOP2A", "MKI67", "TOP2A"],
        },
        "HALLMARK_APOPTOSIS": {"collection": "H", "geneSymbols": ["CASP3", "BAX"]},
        "REACTOME_X": {"collection": "C2:CP:REACTOME", "geneSymbols": ["A", "B"]},
    }
    path = tmp_path / "msigdb.v2023.2.Hs.json"
    path.write_text(json.dumps(bundle))
    sets = read_msigdb_json(path)
    assert len(sets) == 3
    assert sets["CHIANG_LIVER_CANCER_SUBCLASS_PROLIFERATION_UP"] == ["TOP2A", "MKI67"]
    assert list(read_msigdb_json(path, collection="C2:CGP")) == [
        "CHIANG_LIVER_CANCER_SUBCLASS_PROLIFERATION_UP"
    ]
    assert len(read_msigdb_json(path, collection="C2")) == 2
    assert read_gene_sets(path) == sets
    with pytest.raises(InputError, match="collection"):
        read_msigdb_json(path, collection="C7")
    path.write_text(json.dumps({"X": {"genes": ["A"]}}))
    with pytest.raises(InputError, match="geneSymbols"):
        read_msigdb_json(path)
    path.write_text("{not json")
    with pytest.raises(InputError, match="JSON"):
        read_msigdb_json(path)


def test_gene_set_matrix_and_filter():
    sets = {"S1": ["A", "B", "Z"], "S2": ["C"], "S3": ["B", "C", "D"]}
    genes = ["D", "C", "B", "A"]
    mat = gene_set_matrix(sets, genes)
    assert sp.issparse(mat) and mat.shape == (4, 3)
    expected = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(mat.toarray(), expected)
    frame = gene_set_matrix(sets, genes, as_frame=True)
    assert frame.index.tolist() == genes and frame.columns.tolist() == ["S1", "S2", "S3"]
    assert frame.loc["B", "S3"] == 1
    kept = filter_gene_sets(sets, genes, min_size=2)
    assert kept == {"S1": ["A", "B"], "S3": ["B", "C", "D"]}
    with pytest.raises(InputError, match="more than once"):
        gene_set_matrix(sets, ["A", "A"])


def test_real_msigdb_files(shared_data):
    hallmark = read_gmt(shared_data / "gene_sets" / "msigdb_hallmark.gmt")
    reactome = read_gmt(shared_data / "gene_sets" / "msigdb_reactome.gmt")
    cgp = read_gmt(shared_data / "gene_sets" / "msigdb_c2_cgp_prep4deepdep.gmt")
    assert (len(hallmark), len(reactome), len(cgp)) == (50, 1635, 3115)  # README
    assert np.median([len(v) for v in cgp.values()]) == 53  # README: median 53 genes
    assert "TP53" in hallmark["HALLMARK_P53_PATHWAY"]
    assert "JUNB" in hallmark["HALLMARK_TNFA_SIGNALING_VIA_NFKB"]
    # membership over 5,000 of the CGP genes: every column sums to its overlap with them
    genes = sorted({g for v in cgp.values() for g in v})[:5000]
    mat = gene_set_matrix(cgp, genes)
    universe = set(genes)
    sizes = np.asarray(mat.sum(axis=0)).ravel()
    expected = [sum(g in universe for g in v) for v in cgp.values()]
    np.testing.assert_array_equal(sizes, expected)
