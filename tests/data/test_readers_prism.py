"""PRISM Repurposing readers on files written in the 19Q4 release formats."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leapscreen.data.prism import (
    PRISM_SECONDARY_COLUMNS,
    parse_prism_column,
    read_prism_primary,
    read_prism_secondary,
    screen_priority,
)
from leapscreen.errors import InputError

BRD_A = "BRD-A00077618-236-07-6"
BRD_B = "BRD-K99999999-001-01-1"


def _secondary_row(broad, depmap, screen, auc, ic50, name, passed=True):
    row = dict.fromkeys(PRISM_SECONDARY_COLUMNS, np.nan)
    row.update(
        broad_id=broad,
        depmap_id=depmap,
        ccle_name=f"{depmap}_TISSUE",
        screen_id=screen,
        upper_limit=1,
        lower_limit=0.1,
        slope=-1.2,
        r2=0.9,
        auc=auc,
        ec50=ic50 * 0.8,
        ic50=ic50,
        name=name,
        moa="MEK inhibitor" if name == "trametinib" else "EGFR inhibitor",
        target="MAP2K1, MAP2K2" if name == "trametinib" else "EGFR",
        passed_str_profiling=passed,
        row_name=f"{depmap}::{broad}::{screen}",
    )
    return row


def write_secondary(path):
    rows = [
        # compound A measured in HTS002 and MTS005: HTS002 wins
        _secondary_row(BRD_A, "ACH-000001", "HTS002", 0.40, 0.01, "trametinib"),
        _secondary_row(BRD_A, "ACH-000002", "HTS002", 0.60, 0.20, "trametinib"),
        _secondary_row(BRD_A, "ACH-000001", "MTS005", 0.10, 0.001, "trametinib"),
        _secondary_row(BRD_A, "ACH-000003", "MTS005", 0.20, 0.002, "trametinib"),
        # compound B only in MTS005 and MTS010: MTS010 (more recent) wins
        _secondary_row(BRD_B, "ACH-000001", "MTS005", 0.90, 5.0, "erlotinib"),
        _secondary_row(BRD_B, "ACH-000002", "MTS010", 0.70, 2.0, "erlotinib"),
        _secondary_row(BRD_B, "ACH-000003", "MTS010", 0.50, 1.0, "erlotinib", passed=False),
    ]
    pd.DataFrame(rows, columns=list(PRISM_SECONDARY_COLUMNS)).to_csv(path, index=False)


def test_screen_priority():
    order = sorted(["MTS005", "MTS010", "HTS002", "MTS006", "XYZ1"], key=screen_priority)
    assert order == ["HTS002", "MTS010", "MTS006", "MTS005", "XYZ1"]


def test_secondary_one_screen_per_compound(tmp_path):
    path = tmp_path / "secondary-screen-dose-response-curve-parameters.csv"
    write_secondary(path)
    auc, compounds = read_prism_secondary(path)
    assert auc.index.name == "depmap_id"
    assert auc.dtypes.unique().tolist() == [np.float32]
    # A: HTS002 only -> ACH-000003 (MTS005 only) is not measured;
    # B: MTS010 only; ACH-000003 failed STR profiling -> dropped: no row left for ACH-000003
    assert auc.index.tolist() == ["ACH-000001", "ACH-000002"]
    assert auc.loc["ACH-000001", BRD_A] == pytest.approx(0.40)
    assert auc.loc["ACH-000002", BRD_B] == pytest.approx(0.70)
    assert np.isnan(auc.loc["ACH-000001", BRD_B])
    assert compounds.loc[BRD_A, "screen_id"] == "HTS002"
    assert compounds.loc[BRD_A, "screens_available"] == "HTS002;MTS005"
    assert compounds.loc[BRD_B, "screen_id"] == "MTS010"
    assert compounds.loc[BRD_A, "name"] == "trametinib"
    assert compounds.loc[BRD_A, "moa"] == "MEK inhibitor"
    assert set(compounds["kind"]) == {"drug"}


def test_secondary_given_screen_and_values(tmp_path):
    path = tmp_path / "s.csv"
    write_secondary(path)
    ic50, _ = read_prism_secondary(path, value="ic50", screen_id="MTS005")
    assert ic50.loc["ACH-000003", BRD_A] == pytest.approx(0.002)
    assert ic50.loc["ACH-000001", BRD_B] == pytest.approx(5.0)
    aac, _ = read_prism_secondary(path, value="aac")
    assert aac.loc["ACH-000001", BRD_A] == pytest.approx(0.60)
    kept, _ = read_prism_secondary(path, drop_failed_str=False)
    assert kept.loc["ACH-000003", BRD_B] == pytest.approx(0.50)
    by_name, comp = read_prism_secondary(path, perturbation_id="name")
    assert sorted(by_name.columns) == ["erlotinib", "trametinib"]
    assert comp.loc["trametinib", "broad_id"] == BRD_A


def test_secondary_bad_inputs(tmp_path):
    path = tmp_path / "s.csv"
    write_secondary(path)
    with pytest.raises(InputError, match="MTS999") as info:
        read_prism_secondary(path, screen_id="MTS999")
    assert "HTS002" in str(info.value)
    with pytest.raises(InputError, match="unknown PRISM response value"):
        read_prism_secondary(path, value="lfc")
    df = pd.read_csv(path).drop(columns="depmap_id")
    df.to_csv(path, index=False)
    with pytest.raises(InputError, match="depmap_id"):
        read_prism_secondary(path)


def test_parse_column():
    parsed = parse_prism_column(f"{BRD_A}::2.5::HTS")
    assert parsed == {"broad_id": BRD_A, "dose": 2.5, "screen_id": "HTS"}
    assert np.isnan(parse_prism_column("weird")["dose"])


def write_primary(path):
    cols = [f"{BRD_A}::2.5::HTS", f"{BRD_B}::2.5::HTS", f"{BRD_B}::0.61::MTS004"]
    values = np.array([[-1.2, 0.1, np.nan], [-2.5, 0.3, -0.2], [-0.4, -0.1, 0.05]])
    df = pd.DataFrame(values, index=["ACH-000001", "ACH-000002", "ACH-000003"], columns=cols)
    df.to_csv(path)  # first column unnamed, as in the release
    return df


def test_primary_without_info(tmp_path):
    path = tmp_path / "primary-screen-replicate-collapsed-logfold-change.csv"
    raw = write_primary(path)
    lfc, treatments = read_prism_primary(path)
    assert lfc.index.name == "depmap_id" and lfc.shape == (3, 3)
    np.testing.assert_allclose(lfc.to_numpy(), raw.to_numpy(), equal_nan=True)
    assert treatments.loc[f"{BRD_B}::0.61::MTS004", "dose"] == pytest.approx(0.61)
    assert treatments.loc[f"{BRD_B}::0.61::MTS004", "screen_id"] == "MTS004"
    assert treatments.loc[f"{BRD_A}::2.5::HTS", "broad_id"] == BRD_A


def test_primary_with_treatment_info(tmp_path):
    path = tmp_path / "lfc.csv"
    write_primary(path)
    info = tmp_path / "primary-screen-replicate-collapsed-treatment-info.csv"
    pd.DataFrame(
        {
            "column_name": [f"{BRD_A}::2.5::HTS", f"{BRD_B}::2.5::HTS"],
            "broad_id": [BRD_A, BRD_B],
            "name": ["trametinib", "erlotinib"],
            "dose": [2.5, 2.5],
            "screen_id": ["HTS", "HTS"],
            "moa": ["MEK inhibitor", "EGFR inhibitor"],
            "target": ["MAP2K1", "EGFR"],
        }
    ).to_csv(info, index=False)
    _, treatments = read_prism_primary(path, treatment_info=info)
    assert treatments.loc[f"{BRD_A}::2.5::HTS", "name"] == "trametinib"
    assert treatments.loc[f"{BRD_B}::2.5::HTS", "moa"] == "EGFR inhibitor"
    # not in the info file: parsed values stay, no name
    missing = treatments.loc[f"{BRD_B}::0.61::MTS004"]
    assert missing["broad_id"] == BRD_B and pd.isna(missing["name"])


def test_primary_non_numeric(tmp_path):
    path = tmp_path / "lfc.csv"
    path.write_text(f",{BRD_A}::2.5::HTS\nACH-000001,-1.2\nACH-000002,oops\n")
    with pytest.raises(InputError, match="'oops'") as info:
        read_prism_primary(path)
    assert info.value.column == f"{BRD_A}::2.5::HTS"
