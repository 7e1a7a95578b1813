"""DepMap readers: both expression layouts, gene effect / dependency, Model.csv; real data."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from leapscreen.data.depmap import (
    collapse_gene_columns,
    read_depmap_expression,
    read_depmap_gene_dependency,
    read_depmap_gene_effect,
    read_depmap_models,
    split_gene_label,
)
from leapscreen.errors import InputError

GENES = ["TSPAN6 (7105)", "TNMD (64102)", "DPM1 (8813)", "SCYL3 (57147)"]
MODELS = ["ACH-000001", "ACH-000002", "ACH-000003", "ACH-000005"]


def _log_values(n_rows: int, n_cols: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 12, size=(n_rows, n_cols)).round(6)


def write_wide_expression(path, values, models=MODELS, genes=GENES, first=""):
    """OmicsExpressionProteinCodingGenesTPMLogp1.csv layout: unnamed first column of ModelIDs."""
    df = pd.DataFrame(values, index=pd.Index(models, name=first or None), columns=genes)
    df.to_csv(path, index_label=first)


def write_long_expression(path, with_row_number=True):
    """OmicsExpressionTPMLogp1HumanProteinCodingGenes.csv layout (newer releases)."""
    values = _log_values(5, len(GENES), seed=3)
    meta = pd.DataFrame(
        {
            "SequencingID": ["CDS-a", "CDS-b", "CDS-c", "CDS-d", "CDS-e"],
            "ModelID": ["ACH-000001", "ACH-000001", "ACH-000002", "ACH-000003", "ACH-000003"],
            "IsDefaultEntryForModel": ["Yes", "No", "Yes", "No", "Yes"],
            "ModelConditionID": ["MC-1", "MC-2", "MC-3", "MC-4", "MC-5"],
            "IsDefaultEntryForMC": ["Yes", "Yes", "Yes", "Yes", "Yes"],
        }
    )
    df = pd.concat([meta, pd.DataFrame(values, columns=GENES)], axis=1)
    df.to_csv(path, index=with_row_number)
    return df


def test_split_gene_label():
    assert split_gene_label("TP53 (7157)") == ("TP53", 7157)
    assert split_gene_label("HLA-A (3105)") == ("HLA-A", 3105)
    assert split_gene_label("C1orf112") == ("C1orf112", None)


def test_wide_expression_layout(tmp_path):
    path = tmp_path / "OmicsExpressionProteinCodingGenesTPMLogp1.csv"
    values = _log_values(4, 4)
    write_wide_expression(path, values)
    out = read_depmap_expression(path)
    assert out.index.name == "ModelID" and out.index.tolist() == MODELS
    assert out.columns.tolist() == ["TSPAN6", "TNMD", "DPM1", "SCYL3"]
    assert out.dtypes.unique().tolist() == [np.float32]
    np.testing.assert_allclose(out.to_numpy(), values, rtol=1e-6)


@pytest.mark.parametrize("first", ["ModelID", "DepMap_ID"])
def test_wide_expression_named_id_column(tmp_path, first):
    path = tmp_path / "e.csv"
    write_wide_expression(path, _log_values(4, 4), first=first)
    assert read_depmap_expression(path).index.tolist() == MODELS


@pytest.mark.parametrize("with_row_number", [True, False])
def test_long_expression_keeps_default_entries(tmp_path, with_row_number):
    path = tmp_path / "OmicsExpressionTPMLogp1HumanProteinCodingGenes.csv"
    raw = write_long_expression(path, with_row_number)
    out = read_depmap_expression(path)
    assert out.index.tolist() == ["ACH-000001", "ACH-000002", "ACH-000003"]
    assert out.columns.tolist() == ["TSPAN6", "TNMD", "DPM1", "SCYL3"]
    # ACH-000003's default entry is CDS-e (row 4), not CDS-d
    expected = raw.loc[raw["SequencingID"] == "CDS-e", GENES].to_numpy()[0]
    np.testing.assert_allclose(out.loc["ACH-000003"].to_numpy(), expected, rtol=1e-6)


def test_long_expression_two_defaults_for_one_model(tmp_path):
    path = tmp_path / "long.csv"
    raw = write_long_expression(path)
    raw.loc[1, "IsDefaultEntryForModel"] = "Yes"
    raw.to_csv(path)
    with pytest.raises(InputError, match="ACH-000001"):
        read_depmap_expression(path)


def test_long_expression_without_any_default(tmp_path):
    path = tmp_path / "long.csv"
    raw = write_long_expression(path)
    raw["IsDefaultEntryForModel"] = "No"
    raw.to_csv(path)
    with pytest.raises(InputError, match="IsDefaultEntryForModel"):
        read_depmap_expression(path)


def test_duplicate_symbols_keep_highest_mean_expression(tmp_path, caplog):
    path = tmp_path / "e.csv"
    genes = ["A (1)", "DUP (20)", "B (2)", "DUP (10)", "DUP (30)"]
    values = np.array(
        [
            [1.0, 5.0, 2.0, 1.0, 3.0],
            [1.0, 7.0, 2.0, 1.0, 3.0],
            [1.0, 6.0, 2.0, 1.0, 3.0],
        ]
    )
    write_wide_expression(path, values, models=MODELS[:3], genes=genes)
    with caplog.at_level(logging.INFO, logger="leapscreen.data.depmap"):
        out = read_depmap_expression(path)
    assert out.columns.tolist() == ["A", "DUP", "B"]
    np.testing.assert_allclose(out["DUP"].to_numpy(), [5, 7, 6])  # the Entrez 20 column
    assert "2 gene columns" in caplog.text


def test_collapse_rules_ties_and_min_entrez():
    df = pd.DataFrame([[1.0, 1.0, 4.0]], columns=["X (30)", "X (10)", "X (20)"])
    # equal means between Entrez 30 and 10 -> max_mean picks 20 (highest); min_entrez picks 10
    assert collapse_gene_columns(df, "max_mean")["X"].iloc[0] == 4.0
    assert collapse_gene_columns(df, "min_entrez")["X"].iloc[0] == 1.0
    tie = pd.DataFrame([[2.0, 2.0]], columns=["Y (30)", "Y (10)"])
    kept = collapse_gene_columns(tie, "max_mean")
    assert kept.shape == (1, 1)


def test_expression_that_looks_like_tpm(tmp_path):
    path = tmp_path / "OmicsExpressionProteinCodingGenesTPM.csv"
    write_wide_expression(path, 2.0 ** _log_values(4, 4) * 40)
    with pytest.raises(InputError, match="looks like TPM, not log2"):
        read_depmap_expression(path)


def test_log_transform_option(tmp_path):
    path = tmp_path / "tpm.csv"
    logged = _log_values(4, 4)
    write_wide_expression(path, 2.0**logged - 1.0)
    out = read_depmap_expression(path, log_transform=True)
    np.testing.assert_allclose(out.to_numpy(), logged, atol=1e-4)


def test_log_transform_refuses_negative_values(tmp_path):
    path = tmp_path / "z.csv"
    write_wide_expression(path, _log_values(4, 4) - 6)
    with pytest.raises(InputError, match="negative"):
        read_depmap_expression(path, log_transform=True)


@pytest.mark.parametrize("first", ["ModelID", "DepMap_ID", ""])
def test_gene_effect(tmp_path, first):
    path = tmp_path / "CRISPRGeneEffect.csv"
    rng = np.random.default_rng(4)
    values = rng.normal(-0.3, 0.5, size=(4, 4))
    values[1, 2] = np.nan
    write_wide_expression(path, values, first=first)
    out = read_depmap_gene_effect(path)
    assert out.index.tolist() == MODELS and out.index.name == "ModelID"
    assert out.columns.tolist() == ["TSPAN6", "TNMD", "DPM1", "SCYL3"]
    assert np.isnan(out.iloc[1, 2]) and int(out.isna().sum().sum()) == 1
    np.testing.assert_allclose(out.to_numpy(), values, rtol=1e-6)


def test_gene_dependency_range(tmp_path):
    path = tmp_path / "CRISPRGeneDependency.csv"
    rng = np.random.default_rng(5)
    values = rng.uniform(0, 1, size=(4, 4))
    write_wide_expression(path, values, first="ModelID")
    out = read_depmap_gene_dependency(path)
    assert float(out.min().min()) >= 0 and float(out.max().max()) <= 1
    values[2, 1] = -0.73  # a Chronos score: wrong file
    write_wide_expression(path, values, first="ModelID")
    with pytest.raises(InputError, match="outside 0..1") as info:
        read_depmap_gene_dependency(path)
    assert info.value.column == "TNMD (64102)"
    assert "ACH-000003" in str(info.value) and "read_depmap_gene_effect" in info.value.fix


def test_gene_effect_non_numeric(tmp_path):
    path = tmp_path / "CRISPRGeneEffect.csv"
    path.write_text("ModelID,A (1),B (2)\nACH-000001,-0.1,0.2\nACH-000002,#N/A!,0.3\n")
    with pytest.raises(InputError, match="non-numeric") as info:
        read_depmap_gene_effect(path)
    assert info.value.column == "A (1)"


def test_models_file_in_real_format(tmp_path):
    path = tmp_path / "Model.csv"
    path.write_text(
        "ModelID,PatientID,CellLineName,StrippedCellLineName,OncotreeLineage,"
        "OncotreePrimaryDisease,OncotreeSubtype,CCLEName,SangerModelID,COSMICID\n"
        "ACH-000001,PT-1,NIH:OVCAR-3,NIHOVCAR3,Ovary/Fallopian Tube,Ovarian Epithelial Tumor,"
        "HGSOC,NIHOVCAR3_OVARY,SIDM00105,905933.0\n"
        "ACH-000002,PT-2,HL-60,HL60,,Acute Myeloid Leukemia,AML,"
        "HL60_HAEMATOPOIETIC_AND_LYMPHOID_TISSUE,,\n"
    )
    out = read_depmap_models(path)
    assert out.index.name == "ModelID"
    assert out.loc["ACH-000001", "lineage"] == "Ovary/Fallopian Tube"
    assert out.loc["ACH-000002", "lineage"] == "unknown"
    assert out.loc["ACH-000001", "COSMICID"] == 905933
    assert pd.isna(out.loc["ACH-000002", "COSMICID"])
    for col in ("primary_disease", "CellLineName", "StrippedCellLineName", "CCLEName"):
        assert col in out.columns
    assert "PatientID" not in out.columns
    assert "PatientID" in read_depmap_models(path, all_columns=True).columns


def test_models_duplicated_ids(tmp_path):
    path = tmp_path / "Model.csv"
    path.write_text("ModelID,OncotreeLineage\nACH-1,Lung\nACH-1,Skin\n")
    with pytest.raises(InputError, match="ACH-1"):
        read_depmap_models(path)


# ------------------------------------------------------------------ real data
def test_real_model_24q2(shared_data):
    models = read_depmap_models(shared_data / "depmap_metadata" / "Model_24Q2.csv")
    assert models.shape[0] == 1959
    a375 = models.loc["ACH-000219"]
    assert a375["CellLineName"] == "A-375" and a375["lineage"] == "Skin"
    assert a375["CCLEName"] == "A375_SKIN"
    assert models.loc["ACH-000001", "SangerModelID"] == "SIDM00105"
    assert models.loc["ACH-000001", "COSMICID"] == 905933
    assert int((models["lineage"] == "unknown").sum()) == 5  # 5 empty OncotreeLineage
    assert models["lineage"].value_counts().index[0] == "Lung"


def test_real_sample_info_19q2(shared_data):
    info = read_depmap_models(shared_data / "depmap_metadata" / "19Q2_sample_info.csv")
    assert info.shape[0] == 1714
    assert info.loc["ACH-000001", "CCLEName"] == "NIHOVCAR3_OVARY"
    assert info.loc["ACH-000001", "lineage"] == "ovary"


@pytest.fixture(scope="module")
def real_expression_in_depmap_layout(shared_data, tmp_path_factory):
    """Real CCLE 19Q2 log2(TPM+1) values written in the DepMap wide layout with Entrez IDs."""
    expr = pd.read_parquet(
        shared_data / "depmap_ccle19q2_expression" / "ccle19q2_log2tpm1_genes_x_407lines.parquet"
    ).T
    labels = pd.read_parquet(
        shared_data
        / "depmap_crispr"
        / "depmap_crispr_22Q1_oncodb_categorical_genes_x_lines_int8.parquet",
        columns=["HCC827_LUNG"],
    ).index
    entrez = {label.split(" (")[0]: label for label in labels}
    genes = [g for g in expr.columns if g in entrez][:400]
    sub = expr.iloc[:60][genes]
    path = tmp_path_factory.mktemp("depmap") / "OmicsExpressionProteinCodingGenesTPMLogp1.csv"
    out = sub.copy()
    out.columns = [entrez[g] for g in genes]
    out.index.name = None
    out.to_csv(path)
    return path, sub


def test_real_values_roundtrip_through_the_depmap_layout(real_expression_in_depmap_layout):
    path, sub = real_expression_in_depmap_layout
    out = read_depmap_expression(path)
    assert out.shape == sub.shape
    assert out.columns.tolist() == sub.columns.tolist()
    np.testing.assert_array_equal(out.to_numpy(), sub.to_numpy(dtype=np.float32))


def test_real_values_as_tpm_are_caught(real_expression_in_depmap_layout, tmp_path):
    path, sub = real_expression_in_depmap_layout
    tpm_path = tmp_path / "tpm.csv"
    pd.read_csv(path, index_col=0).pipe(lambda d: 2.0**d - 1.0).to_csv(tpm_path)
    with pytest.raises(InputError, match="looks like TPM"):
        read_depmap_expression(tpm_path)
    back = read_depmap_expression(tpm_path, log_transform=True)
    np.testing.assert_allclose(back.to_numpy(), sub.to_numpy(), atol=1e-3)
