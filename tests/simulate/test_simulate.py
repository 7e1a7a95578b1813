"""The simulator: planted ground truth is recoverable, seeds reproduce, files round-trip."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from leapscreen.data.dataset import ScreenData
from leapscreen.data.simulate import (
    SimulationTruth,
    planned_files,
    read_simulation_truth,
    simulate_screen,
    write_simulated,
)
from leapscreen.errors import InputError

LOG_TPM_MAX = np.log2(1e6 + 1)


@pytest.fixture(scope="module")
def sim() -> tuple[ScreenData, SimulationTruth]:
    return simulate_screen(
        n_samples=160, n_genes=600, n_perturbations=80, n_lineages=6, random_state=3
    )


def _eta2(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Fraction of each column's variance explained by the groups (between / total)."""
    total = ((values - values.mean(0)) ** 2).sum(0)
    means = pd.DataFrame(values).groupby(groups).transform("mean").to_numpy()
    between = ((means - values.mean(0)) ** 2).sum(0)
    keep = total > 1e-8
    return between[keep] / total[keep]


# ----------------------------------------------------------------------------- shapes, labels


def test_shapes_dtypes_and_labels(sim):
    data, truth = sim
    assert (data.n_samples, data.n_genes, data.n_perturbations) == (160, 600, 80)
    assert (data.expression.dtypes == np.float32).all()
    assert (data.responses.dtypes == np.float32).all()
    assert data.sample_ids[0] == "SIM-000001" and data.sample_ids[-1] == "SIM-000160"
    assert data.genes[0] == "GENE00001" and data.genes[-1] == "GENE00600"
    assert data.perturbation_ids[0] == "PERT00001"
    assert {"lineage", "source"} <= set(data.samples.columns)
    assert data.samples["lineage"].nunique() == 6
    assert "CNS/Brain" in set(data.samples["lineage"])  # DepMap-like names, "/" included
    assert (data.perturbations["kind"] == "gene").all()
    assert data.perturbations["common_essential"].dtype == bool
    assert data.dropped == []  # nothing lost in ScreenData's alignment

    assert isinstance(truth.coef, sp.csc_matrix) and truth.coef.shape == (600, 80)
    assert truth.noise_free.shape == (160, 80) and truth.noise_free.dtypes.iloc[0] == np.float32
    assert truth.programme_activity.shape == (160, 20)
    assert truth.programme_loadings.shape == (20, 600)
    assert list(truth.noise_free.index) == list(data.sample_ids)
    assert list(truth.perturbations) == list(data.perturbation_ids)
    assert truth.common_essential.equals(
        data.perturbations["common_essential"].rename("common_essential")
    )
    # modules match the loadings
    for k, genes in truth.gene_modules.items():
        row = truth.programme_loadings[truth.programmes.get_loc(k)]
        assert sorted(genes) == sorted(truth.genes[row.indices])
        assert len(genes) == 12  # default module size: 2% of 600 genes


def test_driver_accessors_agree(sim):
    _, truth = sim
    long = truth.coefficients_long()
    assert list(long.columns) == ["perturbation", "gene", "coefficient"]
    assert len(long) == truth.coef.nnz
    p = long["perturbation"].iloc[0]
    drivers = truth.driver_genes(p)
    expected = long[long["perturbation"] == p].set_index("gene")["coefficient"]
    pd.testing.assert_series_equal(drivers, expected, check_names=False, check_index_type=False)
    nulls = truth.null[truth.null].index
    assert len(nulls) > 0 and all(truth.driver_genes(q).empty for q in nulls)
    with pytest.raises(InputError, match="unknown perturbation"):
        truth.driver_genes("NOPE")


# ------------------------------------------------------------------------------ ground truth


def test_least_squares_recovers_planted_coefficients(sim):
    data, truth = sim
    X = data.expression.to_numpy(dtype=np.float64)
    A = truth.programme_activity.to_numpy(dtype=np.float64)
    lineage = data.samples["lineage"].to_numpy()
    n_checked = 0
    for j, p in enumerate(truth.perturbations):
        if truth.null[p]:
            continue
        genes = truth.coef[:, [j]].indices
        progs = np.flatnonzero(truth.programme_coef[p].to_numpy())
        lins = truth.lineages[truth.lineage_coef[p].to_numpy() != 0]
        onehot = (lineage[:, None] == np.asarray(lins, dtype=object)[None, :]).astype(float)
        design = np.hstack([X[:, genes], A[:, progs], onehot, np.ones((len(X), 1))])
        y = truth.noise_free[p].to_numpy(dtype=np.float64)
        sol, *_ = np.linalg.lstsq(design, y, rcond=None)
        planted = np.concatenate(
            [
                truth.coef[:, [j]].toarray().ravel()[genes],
                truth.programme_coef[p].to_numpy()[progs],
                truth.lineage_coef.loc[lins, p].to_numpy(),
                [truth.intercept[p]],
            ]
        )
        scale = truth.signal_sd[p]
        # float32 storage of Y*: errors are ~1e-7 of the response scale
        np.testing.assert_allclose(design @ sol, y, atol=1e-5 * max(scale, 1.0))
        np.testing.assert_allclose(sol, planted, rtol=1e-5)
        n_checked += 1
    assert n_checked >= 60


def test_noise_free_is_the_documented_linear_model(sim):
    data, truth = sim
    X = data.expression.to_numpy(dtype=np.float64)
    lin_pos = truth.lineages.get_indexer(data.samples["lineage"])
    y = (
        truth.intercept.to_numpy()
        + (truth.coef.T @ X.T).T
        + truth.programme_activity.to_numpy(np.float64) @ truth.programme_coef.to_numpy()
        + truth.lineage_coef.to_numpy()[lin_pos]
    )
    np.testing.assert_allclose(y, truth.noise_free.to_numpy(np.float64), atol=2e-5)
    # signal sd planted exactly; nulls are constant
    sd = truth.noise_free.to_numpy(np.float64).std(axis=0)
    live = ~truth.null.to_numpy()
    np.testing.assert_allclose(sd[live], truth.signal_sd.to_numpy()[live], rtol=1e-4)
    np.testing.assert_allclose(sd[~live], 0.0, atol=1e-6)


def test_noisy_responses_correlate_at_the_planted_signal_to_noise():
    noise = 0.5
    data, truth = simulate_screen(
        n_samples=400,
        n_genes=300,
        n_perturbations=60,
        noise=noise,
        frac_missing=0.0,
        random_state=11,
    )
    y = data.responses.to_numpy(np.float64)
    y_star = truth.noise_free.to_numpy(np.float64)
    live = ~truth.null.to_numpy()
    corr = np.array([np.corrcoef(y[:, j], y_star[:, j])[0, 1] for j in np.flatnonzero(live)])
    assert abs(corr.mean() - 1 / np.sqrt(1 + noise**2)) < 0.01
    resid_sd = (y - y_star).std(axis=0)
    np.testing.assert_allclose(resid_sd, truth.noise_sd.to_numpy(), rtol=0.15)
    # no noise: responses are the noise-free ones
    data0, truth0 = simulate_screen(n_samples=50, n_genes=100, n_perturbations=10, noise=0.0)
    observed = data0.responses.to_numpy()
    mask = ~np.isnan(observed)
    np.testing.assert_array_equal(observed[mask], truth0.noise_free.to_numpy()[mask])


def test_common_essentials_strongly_negative_with_little_variance():
    data, truth = simulate_screen(n_samples=200, n_genes=300, n_perturbations=300, random_state=5)
    ce = data.perturbations["common_essential"].to_numpy()
    assert 15 <= ce.sum() <= 50  # 10% of 300
    y = data.responses.to_numpy(np.float64)
    means, sds = np.nanmean(y, axis=0), np.nanstd(y, axis=0)
    assert means[ce].max() <= -0.5 and np.median(means[ce]) < -1.0
    assert np.median(np.abs(means[~ce])) < 0.2
    assert sds[ce].max() < np.median(sds[~ce])
    # drugs: none by default, LN_IC50-like scale
    drug, drug_truth = simulate_screen(n_samples=60, n_genes=100, n_perturbations=40, kind="drug")
    assert not drug.perturbations["common_essential"].any()
    assert (drug.perturbations["kind"] == "drug").all()
    assert np.nanmean(drug.responses.to_numpy()) > 1.0


# ------------------------------------------------------------------------------- expression


def test_expression_is_log_tpm_like(sim):
    data, _ = sim
    X = data.expression.to_numpy()
    assert X.min() == 0.0 and X.max() <= LOG_TPM_MAX
    assert 0.1 < (X == 0).mean() < 0.35  # many lowly expressed genes
    means, sds = X.mean(0), X.std(0)
    assert 0.2 < np.mean(means < 0.5) < 0.45  # DepMap 19Q2: 26% of genes below 0.5
    assert 1.5 < np.median(means) < 4.5 and np.quantile(means, 0.99) > 7
    assert 0.4 < np.median(sds) < 1.0  # DepMap 19Q2: 0.73


def test_lineage_explains_expression_variance(sim):
    data, _ = sim
    X = data.expression.to_numpy(np.float64)
    lineage = data.samples["lineage"].to_numpy()
    eta = _eta2(X, lineage)
    shuffled = _eta2(X, np.random.default_rng(0).permutation(lineage))
    assert eta.mean() > 0.15
    assert shuffled.mean() < 0.06
    flat, _ = simulate_screen(
        n_samples=160,
        n_genes=600,
        n_perturbations=5,
        n_lineages=6,
        random_state=3,
        lineage_strength=0.0,
    )
    eta_flat = _eta2(flat.expression.to_numpy(np.float64), flat.samples["lineage"].to_numpy())
    assert eta_flat.mean() < 0.06


def test_programmes_make_coexpressed_modules(sim):
    data, truth = sim
    X = data.expression.to_numpy(np.float64)
    k = truth.programmes[0]
    genes = truth.gene_modules[k]
    loadings = truth.programme_loadings[0, truth.genes.get_indexer(genes)].toarray().ravel()
    corr = [
        np.corrcoef(X[:, truth.genes.get_loc(g)], truth.programme_activity[k])[0, 1] for g in genes
    ]
    # genes follow the sign of their loading
    assert np.mean(np.sign(corr) == np.sign(loadings)) >= 0.8
    varying = np.flatnonzero(X.std(axis=0) > 0)
    outside = np.setdiff1d(varying, truth.genes.get_indexer(genes))[:50]
    corr_out = [np.corrcoef(X[:, g], truth.programme_activity[k])[0, 1] for g in outside]
    assert np.mean(np.abs(corr)) > 2 * np.mean(np.abs(corr_out))


# ------------------------------------------------------------------------ seeds, missingness


def test_same_seed_same_output_and_different_seed_differs():
    kwargs = dict(n_samples=40, n_genes=150, n_perturbations=30)
    a, ta = simulate_screen(**kwargs, random_state=7)
    b, tb = simulate_screen(**kwargs, random_state=7)
    c, _ = simulate_screen(**kwargs, random_state=8)
    pd.testing.assert_frame_equal(a.expression, b.expression)
    pd.testing.assert_frame_equal(a.responses, b.responses)
    pd.testing.assert_frame_equal(a.samples, b.samples)
    assert (ta.coef != tb.coef).nnz == 0
    pd.testing.assert_frame_equal(ta.noise_free, tb.noise_free)
    assert not np.array_equal(a.expression.to_numpy(), c.expression.to_numpy())
    # the expression does not depend on how many perturbations are drawn
    d, _ = simulate_screen(**{**kwargs, "n_perturbations": 5}, random_state=7)
    pd.testing.assert_frame_equal(a.expression, d.expression)


def test_missing_fraction_close_to_requested():
    data, _ = simulate_screen(
        n_samples=200, n_genes=100, n_perturbations=200, frac_missing=0.3, random_state=2
    )
    miss = data.responses.isna().to_numpy()
    assert abs(miss.mean() - 0.3) < 0.01
    per_pert = miss.mean(axis=0)
    assert per_pert.std() < 0.06  # independent entries: binomial sd 0.032
    none, _ = simulate_screen(n_samples=30, n_genes=50, n_perturbations=10, frac_missing=0.0)
    assert not none.responses.isna().to_numpy().any()


def test_drug_missingness_comes_in_blocks():
    data, _ = simulate_screen(
        n_samples=200,
        n_genes=100,
        n_perturbations=300,
        frac_missing=0.4,
        kind="drug",
        random_state=4,
    )
    miss = data.responses.isna().to_numpy()
    assert abs(miss.mean() - 0.4) < 0.04
    per_pert = miss.mean(axis=0)
    assert per_pert.std() > 3 * np.sqrt(0.4 * 0.6 / 200)  # far more spread than independent
    assert (miss.sum(axis=0) < 200).all()  # every drug keeps a measured sample
    # blocks: two drugs that share missing samples share many of them
    overlap = (miss[:, :, None] & miss[:, None, :]).sum(0)
    assert overlap.max() > 0.9 * np.sort(miss.sum(0))[-2]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_programmes": 0},
        {"n_lineages": 1},
        {"n_genes": 1},
        {"n_samples": 2, "n_lineages": 2},
        {"frac_null": 1.0},
        {"kind": "drug", "frac_missing": 0.9},
    ],
)
def test_edge_sizes_keep_the_contract(kwargs):
    args = {"n_samples": 20, "n_genes": 30, "n_perturbations": 7, **kwargs}
    data, truth = simulate_screen(**args)
    assert data.n_perturbations == 7 and data.dropped == []
    assert (data.responses.notna().sum(axis=0) >= 1).all()
    X = data.expression.to_numpy(np.float64)
    lin_pos = truth.lineages.get_indexer(data.samples["lineage"])
    y = (
        truth.intercept.to_numpy()
        + (truth.coef.T @ X.T).T
        + truth.programme_activity.to_numpy(np.float64) @ truth.programme_coef.to_numpy()
        + truth.lineage_coef.to_numpy()[lin_pos]
    )
    np.testing.assert_allclose(y, truth.noise_free.to_numpy(np.float64), atol=2e-5)


def test_bad_arguments_raise_input_error():
    with pytest.raises(InputError, match="kind"):
        simulate_screen(kind="protein")
    with pytest.raises(InputError, match="frac_missing"):
        simulate_screen(frac_missing=1.0)
    with pytest.raises(InputError, match="n_lineages"):
        simulate_screen(n_samples=5, n_lineages=6)
    with pytest.raises(InputError, match="n_genes"):
        simulate_screen(n_genes=0)


# ---------------------------------------------------------------------------------- writing


@pytest.fixture(scope="module")
def small() -> tuple[ScreenData, SimulationTruth]:
    return simulate_screen(n_samples=40, n_genes=120, n_perturbations=25, frac_missing=0.2)


def test_depmap_format_round_trip(small, tmp_path):
    from leapscreen.data.depmap import (
        read_depmap_expression,
        read_depmap_gene_effect,
        read_depmap_models,
    )

    data, truth = small
    written = write_simulated(data, truth, tmp_path, format="depmap")
    assert set(written) == set(planned_files("depmap", "gene"))
    header = (tmp_path / "OmicsExpressionProteinCodingGenesTPMLogp1.csv").open().readline()
    assert header.startswith(",GENE00001 (")  # DepMap's wide layout: unnamed ID column
    assert (tmp_path / "CRISPRGeneEffect.csv").open().readline().startswith("ModelID,PERT00001 (")

    expr = read_depmap_expression(tmp_path / "OmicsExpressionProteinCodingGenesTPMLogp1.csv")
    assert list(expr.index) == list(data.sample_ids) and list(expr.columns) == list(data.genes)
    np.testing.assert_allclose(expr.to_numpy(), data.expression.to_numpy(), rtol=1e-6)
    effect = read_depmap_gene_effect(tmp_path / "CRISPRGeneEffect.csv")
    assert list(effect.columns) == list(data.perturbation_ids)
    np.testing.assert_array_equal(np.isnan(effect.to_numpy()), data.responses.isna().to_numpy())
    np.testing.assert_allclose(
        effect.to_numpy(), data.responses.to_numpy(), rtol=1e-6, atol=1e-7, equal_nan=True
    )
    models = read_depmap_models(tmp_path / "Model.csv")
    assert models.loc[data.sample_ids, "lineage"].tolist() == data.samples["lineage"].tolist()
    assert models["primary_disease"].notna().all()

    back = read_simulation_truth(tmp_path)
    assert (back.coef != truth.coef).nnz == 0
    pd.testing.assert_frame_equal(back.noise_free, truth.noise_free, check_names=False)
    pd.testing.assert_series_equal(back.intercept, truth.intercept)
    pd.testing.assert_frame_equal(back.programme_coef, truth.programme_coef)
    pd.testing.assert_frame_equal(back.lineage_coef, truth.lineage_coef, check_names=False)
    assert back.gene_modules == truth.gene_modules
    assert back.params == truth.params
    long = pd.read_parquet(tmp_path / "truth" / "coefficients.parquet")
    assert list(long.columns) == ["perturbation", "gene", "coefficient"]
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]  # no temp files left


def test_drug_depmap_format(tmp_path):
    data, truth = simulate_screen(n_samples=30, n_genes=50, n_perturbations=8, kind="drug")
    written = write_simulated(data, truth, tmp_path)
    assert "DrugResponse.csv" in written and "CRISPRGeneEffect.csv" not in written
    back = pd.read_csv(tmp_path / "DrugResponse.csv", index_col="ModelID")
    np.testing.assert_allclose(back.to_numpy(), data.responses.to_numpy(), rtol=1e-6)


@pytest.mark.parametrize("fmt", ["parquet", "h5ad"])
def test_parquet_and_h5ad_round_trip(small, tmp_path, fmt):
    data, truth = small
    write_simulated(data, truth, tmp_path, format=fmt)
    if fmt == "parquet":
        back = ScreenData.read_parquet(tmp_path)
    else:
        back = ScreenData.read_h5ad(tmp_path / "screen.h5ad")
    pd.testing.assert_frame_equal(back.expression, data.expression, check_names=False)
    pd.testing.assert_frame_equal(back.responses, data.responses, check_names=False)
    assert back.samples["lineage"].tolist() == data.samples["lineage"].tolist()
    assert read_simulation_truth(tmp_path / "truth").coef.nnz == truth.coef.nnz
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_refuses_to_overwrite_unless_asked(small, tmp_path):
    data, truth = small
    write_simulated(data, truth, tmp_path, format="depmap")
    target = tmp_path / "CRISPRGeneEffect.csv"
    stamp = target.stat().st_mtime_ns
    other, other_truth = simulate_screen(
        n_samples=40, n_genes=120, n_perturbations=25, random_state=1
    )
    with pytest.raises(InputError, match="refusing to overwrite") as err:
        write_simulated(other, other_truth, tmp_path, format="depmap")
    assert "OmicsExpressionProteinCodingGenesTPMLogp1.csv" in str(err.value)
    assert target.stat().st_mtime_ns == stamp  # nothing touched
    write_simulated(other, other_truth, tmp_path, format="depmap", overwrite=True)
    back = pd.read_csv(target, index_col=0)
    np.testing.assert_allclose(back.to_numpy(), other.responses.to_numpy(), rtol=1e-6)
    # parquet staging respects the same rule
    with pytest.raises(InputError, match="refusing"):
        write_simulated(other, other_truth, tmp_path, format="parquet")
    assert not (tmp_path / "expression.parquet").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(InputError, match="format"):
        write_simulated(other, other_truth, tmp_path / "new", format="excel")


# -------------------------------------------------------------------------------------- CLI


def _app():
    import typer

    from leapscreen.cli.simulate import simulate_command

    app = typer.Typer()
    app.command("simulate")(simulate_command)

    @app.command("other")
    def other() -> None:  # a second command keeps "simulate" a sub-command
        """Unused."""

    return app


def test_cli_simulate_writes_and_refuses(tmp_path):
    from typer.testing import CliRunner

    runner = CliRunner()
    out = tmp_path / "sim"
    args = [
        "simulate",
        "--out",
        str(out),
        "--samples",
        "30",
        "--genes",
        "80",
        "--perturbations",
        "12",
        "--lineages",
        "3",
        "--seed",
        "2",
    ]
    result = runner.invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert "30 x 80" in result.stdout
    effect = pd.read_csv(out / "CRISPRGeneEffect.csv", index_col=0)
    assert effect.shape == (30, 12)
    data, _ = simulate_screen(
        n_samples=30, n_genes=80, n_perturbations=12, n_lineages=3, random_state=2
    )
    np.testing.assert_allclose(effect.to_numpy(), data.responses.to_numpy(), rtol=1e-6)

    again = runner.invoke(_app(), args)
    assert again.exit_code == 2
    assert "refusing to overwrite" in again.stderr
    assert runner.invoke(_app(), [*args, "--overwrite", "--quiet"]).exit_code == 0

    bad = runner.invoke(_app(), ["simulate", "--out", str(tmp_path / "x"), "--kind", "rna"])
    assert bad.exit_code == 2 and "--kind" in bad.stderr
    bad = runner.invoke(_app(), ["simulate", "--out", str(tmp_path / "x"), "--frac-missing", "1.5"])
    assert bad.exit_code == 2 and "frac_missing" in bad.stderr
    quiet = runner.invoke(
        _app(),
        [
            "simulate",
            "--out",
            str(tmp_path / "q"),
            "--samples",
            "20",
            "--genes",
            "30",
            "--perturbations",
            "4",
            "--format",
            "parquet",
            "--quiet",
        ],
    )
    assert quiet.exit_code == 0 and quiet.stdout == ""
    assert ScreenData.read_parquet(tmp_path / "q").n_samples == 20
    assert os.path.isfile(Path(tmp_path / "q" / "truth" / "simulation.json"))
