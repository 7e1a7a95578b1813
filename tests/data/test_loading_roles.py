"""loading: the role comes from the argument; gene lists; the predict-time scale contract."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from leapscreen.data.genesets import read_gene_list
from leapscreen.data.loading import load_expression, load_responses, load_samples, load_screen
from leapscreen.errors import InputError
from tests.data import bad_inputs as B


def test_gene_list_one_per_line_or_a_column(tmp_path):
    plain = tmp_path / "genes.txt"
    plain.write_text("# my panel\nTP53\n\nKRAS (3845)\nTP53\n  EGFR \n")
    assert read_gene_list(plain) == ["TP53", "KRAS", "EGFR"]
    table = tmp_path / "genes.csv"
    table.write_text("rank,Gene_Symbol,score\n1,MYC,0.5\n2,BRAF,0.4\n")
    assert read_gene_list(table) == ["MYC", "BRAF"]
    gz = tmp_path / "genes.tsv.gz"
    gz.write_bytes(gzip.compress(b"gene\tweight\nA1\t1\nA2\t2\n"))
    assert read_gene_list(gz) == ["A1", "A2"]
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(InputError, match="no gene") as err:
        read_gene_list(empty)
    assert "empty.txt" in str(err.value)


def test_expression_role_is_kept_whatever_the_values(tmp_path):
    """Negative (centred) and 0..1 expression is expression; 0..1 responses are responses."""
    df = B.log_expression()
    centred = B.write_wide(tmp_path / "c.csv", df - df.mean())
    out = load_expression(centred)
    assert out.shape == (B.N_SAMPLES, B.N_GENES) and float(out.min().min()) < 0
    probs = B.write_wide(tmp_path / "p.csv", B.gene_effect().abs() / 10, "ModelID")
    resp, _, kind = load_responses(probs)
    assert kind == "gene" and float(resp.max().max()) <= 1
    assert list(resp.columns[:2]) == ["P0", "P1"]


def test_predict_contract_log_transform_none_skips_the_scale_check(tmp_path):
    tpm = B.write_wide(tmp_path / "tpm.csv", B.tpm_expression())
    with pytest.raises(InputError, match="TPM"):
        load_expression(tpm)
    raw = load_expression(tpm, log_transform=None)  # the model checks the scale
    same = load_expression(tpm, log_transform=True)  # values unchanged: the model logs them
    np.testing.assert_array_equal(raw.to_numpy(), same.to_numpy())
    assert float(raw.max().max()) > 1000


def test_negative_values_with_log_transform(tmp_path):
    df = B.log_expression() - 5
    path = B.write_wide(tmp_path / "neg.csv", df)
    with pytest.raises(InputError, match="cannot log-transform negative") as err:
        load_expression(path, log_transform=True)
    assert "neg.csv" in str(err.value)


def test_sample_table_without_lineage_and_generic_ids(tmp_path):
    path = tmp_path / "samples.tsv"
    pd.DataFrame({"patient": ["p1", "p2"], "age": [40, 50]}).to_csv(path, sep="\t", index=False)
    meta = load_samples(path)
    assert list(meta.index) == ["p1", "p2"] and set(meta["lineage"]) == {"unknown"}
    dup = tmp_path / "dup.csv"
    dup.write_text("patient,tissue\np1,lung\np1,skin\n")
    with pytest.raises(InputError, match="more than once"):
        load_samples(dup)


def test_min_shared_samples_is_checked(tmp_path):
    expr = B.write_wide(tmp_path / "e.csv", B.log_expression())
    resp = B.write_wide(tmp_path / "r.csv", B.gene_effect(), "ModelID")
    assert load_screen(expr, resp, min_shared_samples=B.N_SAMPLES).n_samples == B.N_SAMPLES
    with pytest.raises(InputError, match="--min-shared-samples"):
        load_screen(expr, resp, min_shared_samples=0)


def test_responses_mapped_through_model_csv(tmp_path):
    """GDSC-like responses keyed by cell-line names join DepMap expression through Model.csv."""
    expr = B.write_wide(tmp_path / "e.csv", B.log_expression())
    models = B.write_models(tmp_path / "Model.csv")
    long = tmp_path / "long.csv"
    g = B.gdsc_long()
    names = dict(zip(B.IDS, [f"L{i}" for i in range(B.N_SAMPLES)], strict=True))
    g["CELL_LINE_NAME"] = g["SANGER_MODEL_ID"].map(names)
    g.drop(columns=["SANGER_MODEL_ID"]).to_csv(long, index=False)
    data = load_screen(expr, long, models, value="AAC")
    assert data.n_samples == B.N_SAMPLES and data.n_perturbations == B.N_PERTS
    assert float(data.responses.max().max()) <= 0.8 + 1e-6


def test_real_small_demo_files_load_with_their_lineages(shared_data):
    d = shared_data / "small_demo"
    data = load_screen(
        d / "essentiality_demo_expression_ccle19q2_log2tpm1.csv",
        d / "essentiality_demo_gene_effect_chronos.csv",
        d / "essentiality_demo_lines.csv",
    )
    assert (data.n_samples, data.n_genes, data.n_perturbations) == (43, 2000, 500)
    counts = data.samples["lineage"].value_counts()
    assert "unknown" not in counts.index and len(counts) == 2  # liver and neuroblastoma lines
    drugs = load_screen(
        d / "drug_demo_expression_gdsc_zscored.csv", d / "drug_demo_gdsc2_auc.csv"
    )  # z-scored (negative) expression stays expression
    assert (drugs.n_samples, drugs.n_perturbations) == (150, 12)


def test_identical_new_samples_load_but_constant_training_expression_does_not(tmp_path):
    row = B.log_expression().iloc[[0, 0]]
    row.index = ["new-1", "new-2"]
    path = B.write_wide(tmp_path / "new.csv", row)
    assert load_expression(path).shape == (2, B.N_GENES)  # predict: fine
    resp = B.write_wide(tmp_path / "r.csv", B.gene_effect(), "ModelID")
    flat = B.write_wide(tmp_path / "flat.csv", B.log_expression() * 0 + 1.5)
    with pytest.raises(InputError, match="does not vary") as err:
        load_screen(flat, resp)
    assert "flat.csv" in str(err.value)
