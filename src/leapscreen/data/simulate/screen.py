"""The simulator's entry point: :func:`simulate_screen` runs the steps of the generative model.

0. check the arguments (:mod:`.params`); 1-2. lineage structure and programmes
(:mod:`.structure`); 3. gene parameters and expression (:mod:`.expression`); 4. perturbation
types, targets and drivers (:mod:`.drivers`); 5. missingness and 6. responses (:mod:`.responses`);
7. packaging as :class:`ScreenData` and :class:`SimulationTruth` (here). Each step draws from its
own stream spawned from ``random_state``.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from leapscreen.data.dataset import ScreenData
from leapscreen.data.simulate.drivers import PerturbationTypes, draw_drivers, perturbation_types
from leapscreen.data.simulate.expression import gene_parameters, simulate_expression
from leapscreen.data.simulate.params import check_params
from leapscreen.data.simulate.responses import (
    Responses,
    missing_mask,
    planted_coefficients,
    simulate_responses,
)
from leapscreen.data.simulate.structure import (
    assign_lineages,
    draw_programmes,
    id_names,
    lineage_names,
)
from leapscreen.data.simulate.truth import SimulationTruth

logger = logging.getLogger(__name__)

__all__ = ["simulate_screen"]


def simulate_screen(
    n_samples: int = 300,
    n_genes: int = 2000,
    n_perturbations: int = 100,
    n_lineages: int = 8,
    n_programmes: int = 20,
    frac_missing: float = 0.1,
    kind: Literal["gene", "drug"] = "gene",
    noise: float = 1.0,
    random_state: int | None = 0,
    *,
    frac_common_essential: float | None = None,
    frac_null: float = 0.1,
    frac_programme_driven: float = 0.5,
    frac_lineage_specific: float = 0.2,
    mean_driver_genes: float = 1.5,
    max_driver_genes: int = 5,
    module_size: int | None = None,
    block_missing: bool | None = None,
    lineage_strength: float = 1.0,
    name: str = "simulated",
) -> tuple[ScreenData, SimulationTruth]:
    """Simulate a perturbation screen with DepMap's structure and a known ground truth.

    The generative model (equations) is in the module docstring of
    :mod:`leapscreen.data.simulate`.

    Parameters
    ----------
    n_samples, n_genes, n_perturbations : int
        Sizes (at least 2, 1 and 1).
    n_lineages : int
        Number of lineages (tissues), 1 to ``n_samples``; named as DepMap's ``OncotreeLineage``.
    n_programmes : int
        Latent biological programmes (co-expressed gene modules); 0 for none.
    frac_missing : float
        Expected fraction of missing responses, in [0, 1).
    kind : {"gene", "drug"}
        Gene knock-outs (Chronos-like scale, 10% common essentials) or drugs (LN_IC50-like scale,
        missing values in blocks).
    noise : float
        Noise sd relative to each perturbation's signal sd (>= 0); the noisy and noise-free
        responses then correlate at about ``1 / sqrt(1 + noise**2)``.
    random_state : int or None
        Seed; the same seed gives identical output. None draws fresh entropy.
    frac_common_essential : float, optional
        Fraction of common-essential (gene) or broadly toxic (drug) perturbations: strongly
        negative mean, little variance. Default 0.1 for genes, 0 for drugs.
    frac_null : float
        Fraction of perturbations without any driver (constant noise-free response).
    frac_programme_driven : float
        Fraction of non-null perturbations with a programme driver.
    frac_lineage_specific : float
        Fraction of non-null perturbations with a lineage-specific effect.
    mean_driver_genes : float
        Mean number of driver genes per non-null perturbation (>= 1).
    max_driver_genes : int
        Largest number of driver genes of one perturbation.
    module_size : int, optional
        Genes per programme module; default ``max(5, round(0.02 * n_genes))`` (at most
        ``n_genes``).
    block_missing : bool, optional
        Missing values as per-perturbation blocks of samples (drug-like); default True for drugs.
    lineage_strength : float
        Scale of the lineage effects on expression and programmes (>= 0).
    name : str
        Name of the ScreenData (and the ``source`` of its samples).

    Returns
    -------
    data : ScreenData
        ``expression`` (samples x genes, float32, log2(TPM+1)-like), ``responses`` (float32, NaN =
        missing), ``samples`` (``lineage``, ``source``, ``primary_disease``) and
        ``perturbations`` (``kind``, ``common_essential``).
    truth : SimulationTruth
        The planted coefficients, programmes, lineage effects and noise-free responses.

    Raises
    ------
    InputError
        An argument out of range.
    """
    params = check_params(
        n_samples,
        n_genes,
        n_perturbations,
        n_lineages,
        n_programmes,
        frac_missing,
        kind,
        noise,
        random_state,
        frac_common_essential,
        frac_null,
        frac_programme_driven,
        frac_lineage_specific,
        mean_driver_genes,
        max_driver_genes,
        module_size,
        block_missing,
        lineage_strength,
        name,
    )
    n, n_genes, n_pert = params["n_samples"], params["n_genes"], params["n_perturbations"]
    n_lin, n_prog = params["n_lineages"], params["n_programmes"]
    seq = np.random.SeedSequence(random_state)
    (
        rng_lin,
        rng_prog,
        rng_gene,
        rng_expr,
        rng_pert,
        rng_noise,
        rng_miss,
    ) = (np.random.default_rng(s) for s in seq.spawn(7))

    # 1-2. lineage structure and programmes; 3. expression
    lineage = assign_lineages(rng_lin, n, n_lin)
    activity, loadings = draw_programmes(
        rng_prog, lineage, n_lin, n_prog, n_genes, params["module_size"], lineage_strength
    )
    mu, sigma, lam = gene_parameters(rng_gene, n_genes, n_lin, lineage_strength)
    X = simulate_expression(rng_expr, lineage, activity, loadings, mu, sigma, lam)
    logger.info("simulated expression: %d samples x %d genes", n, n_genes)

    # 4. perturbation types, targets and drivers
    types = perturbation_types(
        rng_pert, n_pert, kind, params["frac_common_essential"], params["frac_null"]
    )
    drivers = draw_drivers(rng_pert, X, mu, activity, types.null, n_lin, params)

    # 5. missingness; 6. responses and the planted coefficients on the stored scale
    mask = missing_mask(rng_miss, n, n_pert, params["frac_missing"], params["block_missing"])
    resp = simulate_responses(rng_noise, X, activity, lineage, drivers, types, noise, mask)
    coef, gamma, delta = planted_coefficients(drivers, resp.scale)
    logger.info("simulated responses: %d perturbations (%s)", n_pert, kind)
    expr = (X, lineage, activity, loadings, mu, sigma, lam)
    return _package(params, expr, types, resp, (coef, gamma, delta), noise)


def _package(
    params: dict[str, Any],
    expr: tuple[Any, ...],
    types: PerturbationTypes,
    resp: Responses,
    planted: tuple[sp.csc_matrix, np.ndarray, np.ndarray],
    noise: float,
) -> tuple[ScreenData, SimulationTruth]:
    """Step 7: IDs and names, the :class:`ScreenData` and the :class:`SimulationTruth`."""
    X, lineage, activity, loadings, mu, sigma, lam = expr
    coef, gamma, delta = planted
    n, n_genes, n_pert = params["n_samples"], params["n_genes"], params["n_perturbations"]
    n_lin, n_prog = params["n_lineages"], params["n_programmes"]
    kind, name = params["kind"], params["name"]
    ce, target_sd = types.common_essential, types.target_sd
    observed, noise_free, intercept = resp.observed, resp.noise_free, resp.intercept
    null_eff = resp.scale == 0  # no driver, or a signal that happened to be constant

    sample_ids = id_names("SIM-", n, 6)
    genes = id_names("GENE", n_genes, 5)
    perts = id_names("PERT", n_pert, 5)
    programmes = id_names("PROG", n_prog, 2)
    lin_names, diseases = lineage_names(n_lin)
    s_index = pd.Index(sample_ids, name="sample_id")
    g_index = pd.Index(genes, name="gene")
    p_index = pd.Index(perts, name="perturbation_id")
    k_index = pd.Index(programmes, name="programme")
    l_index = pd.Index(lin_names, name="lineage")
    sample_lineage = pd.Series(np.asarray(lin_names, dtype=object)[lineage], index=s_index)
    samples = pd.DataFrame(
        {
            "lineage": sample_lineage.to_numpy(),
            "source": name,
            "primary_disease": np.asarray(diseases, dtype=object)[lineage],
        },
        index=s_index,
    )
    pert_meta = pd.DataFrame({"kind": kind, "common_essential": ce}, index=p_index)
    data = ScreenData(
        pd.DataFrame(X, index=s_index, columns=g_index),
        pd.DataFrame(observed, index=s_index, columns=p_index),
        samples=samples,
        perturbations=pert_meta,
        name=name,
        keep_unlabelled=True,
        perturbation_kind=kind,
    )
    csr_w = loadings.tocsr()
    modules = {
        programmes[k]: [genes[g] for g in csr_w.indices[csr_w.indptr[k] : csr_w.indptr[k + 1]]]
        for k in range(n_prog)
    }
    truth = SimulationTruth(
        coef=coef,
        intercept=pd.Series(intercept, index=p_index, name="intercept"),
        programme_coef=pd.DataFrame(gamma, index=k_index, columns=p_index),
        lineage_coef=pd.DataFrame(delta, index=l_index, columns=p_index),
        noise_free=pd.DataFrame(noise_free, index=s_index, columns=p_index),
        noise_sd=pd.Series(noise * target_sd, index=p_index, name="noise_sd"),
        signal_sd=pd.Series(target_sd, index=p_index, name="signal_sd"),
        common_essential=pd.Series(ce, index=p_index, name="common_essential"),
        null=pd.Series(null_eff, index=p_index, name="null"),
        programme_activity=pd.DataFrame(activity, index=s_index, columns=k_index),
        programme_loadings=csr_w,
        gene_modules=modules,
        expression_lineage_effects=pd.DataFrame(lam, index=l_index, columns=g_index),
        gene_mean=pd.Series(mu, index=g_index, name="mean"),
        gene_noise_sd=pd.Series(sigma, index=g_index, name="noise_sd"),
        sample_lineage=sample_lineage.rename("lineage"),
        params=params,
    )
    return data, truth
