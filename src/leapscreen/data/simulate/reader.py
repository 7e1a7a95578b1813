"""Reading back the ground truth written by :func:`~leapscreen.data.simulate.write_simulated`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from leapscreen.data._io import read_json_stamp
from leapscreen.data.simulate._constants import SIMULATION_FORMAT_VERSION, TRUTH_DIR
from leapscreen.data.simulate.truth import SimulationTruth
from leapscreen.errors import InputError

__all__ = ["read_simulation_truth"]


def read_simulation_truth(directory: str | os.PathLike) -> SimulationTruth:
    """Read the ``truth/`` folder written by :func:`write_simulated`.

    Parameters
    ----------
    directory : str or PathLike
        The output directory of :func:`write_simulated`, or its ``truth`` folder.

    Returns
    -------
    SimulationTruth
    """
    d = Path(directory)
    if (d / TRUTH_DIR / "simulation.json").is_file():
        d = d / TRUTH_DIR
    writer = "write_simulated / leapscreen simulate (its truth folder)"
    meta = read_json_stamp(d / "simulation.json", SIMULATION_FORMAT_VERSION, writer)

    def read(name: str) -> pd.DataFrame:
        path = d / name
        if not path.is_file():
            raise InputError(f"missing {name}", path=d, fix="write the truth again")
        return pd.read_parquet(path)

    pert = read("perturbations.parquet")
    genes = read("genes.parquet")
    p_index = pd.Index(pert["perturbation"].astype(str), name="perturbation_id")
    g_index = pd.Index(genes["gene"].astype(str), name="gene")
    k_index = pd.Index(meta["programmes"], name="programme", dtype=object)
    l_index = pd.Index(meta["lineages"], name="lineage", dtype=object)

    coefs = read("coefficients.parquet")
    coef = sp.csc_matrix(
        (
            coefs["coefficient"].to_numpy(np.float64),
            (g_index.get_indexer(coefs["gene"]), p_index.get_indexer(coefs["perturbation"])),
        ),
        shape=(len(g_index), len(p_index)),
    )

    def dense_from_long(name: str, what: str, value: str, index: pd.Index) -> pd.DataFrame:
        table = read(name)
        arr = np.zeros((len(index), len(p_index)))
        arr[index.get_indexer(table[what]), p_index.get_indexer(table["perturbation"])] = table[
            value
        ].to_numpy()
        return pd.DataFrame(arr, index=index, columns=p_index)

    modules = read("gene_modules.parquet")
    rows = k_index.get_indexer(modules["programme"])
    cols = g_index.get_indexer(modules["gene"])
    loadings = sp.csr_matrix(
        (modules["loading"].to_numpy(np.float32), (rows, cols)),
        shape=(len(k_index), len(g_index)),
    )
    gene_modules = {
        k: [g_index[c] for c in loadings.indices[loadings.indptr[i] : loadings.indptr[i + 1]]]
        for i, k in enumerate(k_index)
    }
    noise_free = read("noise_free_responses.parquet").astype(np.float32)
    noise_free.columns = p_index
    activity = read("programme_activity.parquet").astype(np.float32)
    activity.columns = k_index
    lam = read("expression_lineage_effects.parquet").T.astype(np.float32)
    lam.index = l_index
    lam.columns = g_index
    samples = read("samples.parquet")
    s_index = pd.Index(samples["sample_id"].astype(str), name="sample_id")
    return SimulationTruth(
        coef=coef,
        intercept=pd.Series(pert["intercept"].to_numpy(), index=p_index, name="intercept"),
        programme_coef=dense_from_long(
            "programme_coefficients.parquet", "programme", "coefficient", k_index
        ),
        lineage_coef=dense_from_long("lineage_effects.parquet", "lineage", "effect", l_index),
        noise_free=noise_free,
        noise_sd=pd.Series(pert["noise_sd"].to_numpy(), index=p_index, name="noise_sd"),
        signal_sd=pd.Series(pert["signal_sd"].to_numpy(), index=p_index, name="signal_sd"),
        common_essential=pd.Series(
            pert["common_essential"].to_numpy(bool), index=p_index, name="common_essential"
        ),
        null=pd.Series(pert["null"].to_numpy(bool), index=p_index, name="null"),
        programme_activity=activity,
        programme_loadings=loadings,
        gene_modules=gene_modules,
        expression_lineage_effects=lam,
        gene_mean=pd.Series(genes["mean"].to_numpy(np.float32), index=g_index, name="mean"),
        gene_noise_sd=pd.Series(
            genes["noise_sd"].to_numpy(np.float32), index=g_index, name="noise_sd"
        ),
        sample_lineage=pd.Series(
            samples["lineage"].astype(str).to_numpy(), index=s_index, name="lineage"
        ),
        params=dict(meta.get("params", {})),
    )
