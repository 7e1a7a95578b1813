r"""Simulated screens with DepMap's structure and a known ground truth.

:func:`simulate_screen` draws expression and responses from the generative model below, at any
size (DepMap scale, 1,100 samples x 19,000 genes x 18,000 perturbations, takes seconds and about
1 GB), and returns a :class:`~leapscreen.data.dataset.ScreenData` with a :class:`SimulationTruth`
that holds every planted quantity. :func:`write_simulated` writes both in the formats
leapscreen's readers take; :func:`read_simulation_truth` reads the truth back.

Generative model
----------------
Indices: sample :math:`i = 1..n`, gene :math:`g = 1..G`, perturbation :math:`p = 1..P`,
programme :math:`k = 1..K`, lineage :math:`l = 1..L`; :math:`\lambda` is ``lineage_strength``.

*Lineages.* Proportions :math:`\pi \sim \mathrm{Dirichlet}(2 \cdot 1_L)`; every lineage gets
``min(2, n // L)`` samples, the others are drawn from :math:`\mathrm{Multinomial}(\pi)`, and the
labels are shuffled. :math:`l(i)` is the lineage of sample :math:`i`.

*Programme activities* (latent biological programmes, samples x programmes):

.. math:: A_{ik} = M_{l(i)k} + \varepsilon_{ik}, \quad M_{lk} \sim N(0, \lambda^2),
          \quad \varepsilon_{ik} \sim N(0, 1).

*Gene modules.* Programme :math:`k` loads on a module :math:`S_k` of ``module_size`` genes drawn
without replacement (modules may overlap), with loadings :math:`W_{kg} = s_{kg} u_{kg}`,
:math:`s_{kg} = +1` with probability 0.8 (else -1), :math:`u_{kg} \sim U(0.3, 1)`;
:math:`W_{kg} = 0` for :math:`g \notin S_k`.

*Gene parameters.* A gene is *silent* with probability 0.3: baseline
:math:`\mu_g \sim U(-2, 0.5)`, noise sd :math:`\sigma_g \sim \mathrm{LogNormal}(\ln 0.6, 0.4)`;
otherwise *expressed*: :math:`\mu_g \sim U(8, 13)` with probability 0.015 (very highly expressed
genes), else :math:`\mu_g \sim N(3.6, 1.8^2)` clipped to [0.5, 13], and
:math:`\sigma_g \sim \mathrm{LogNormal}(\ln 0.6, 0.5)`. Lineage effects on expression:
:math:`\Lambda_{lg} = \kappa_{lg} + m_{lg} \eta_{lg}`, with
:math:`\kappa_{lg} \sim N(0, (0.2\lambda)^2)`, marker indicators
:math:`m_{lg} \sim \mathrm{Bernoulli}(0.05)` and :math:`\eta_{lg} \sim N(0, (2\lambda)^2)`.

*Expression* (log2(TPM+1)-like: non-negative, 20-25% exact zeros, per-gene means from 0 to
about 13 and sds from 0 to about 4, as in DepMap):

.. math:: X_{ig} = \min\Big(x_{\max}, \max\Big(0,\; \mu_g + \Lambda_{l(i)g}
          + \sum_k A_{ik} W_{kg} + \sigma_g \epsilon_{ig}\Big)\Big),
          \quad \epsilon_{ig} \sim N(0, 1),

with :math:`x_{\max} = \log_2(10^6 + 1)` (a TPM cannot exceed a million), stored as float32.
The responses below are linear in this **stored** :math:`X` (after clipping and the cast to
float32), so least squares of the noise-free responses on the true drivers recovers the planted
coefficients exactly.

*Perturbation types.* Each perturbation is a *common essential* with probability
``frac_common_essential`` (default 0.1 for genes, 0 for drugs) and independently *null* (no
driver: a constant noise-free response) with probability ``frac_null``. Its target mean
:math:`m_p` and signal sd :math:`s_p` depend on ``kind`` (Chronos-like for genes, LN_IC50-like for
drugs):

======================  ===================================  =================================
kind / type             :math:`m_p`                          :math:`s_p`
======================  ===================================  =================================
gene, common essential  :math:`N(-1.3, 0.25^2)`, <= -0.6     :math:`0.05\,\mathrm{LN}(0, 0.3)`
gene, other             :math:`N(-0.1, 0.1^2)`               :math:`0.15\,\mathrm{LN}(0, 0.5)`
drug, broadly toxic     :math:`N(-2, 0.5^2)`                 :math:`0.3\,\mathrm{LN}(0, 0.3)`
drug, other             :math:`N(2.5, 1.5^2)`                :math:`0.8\,\mathrm{LN}(0, 0.4)`
======================  ===================================  =================================

(LN: log-normal.) *Drivers* (non-null perturbations only):
:math:`d_p = \min(1 + \mathrm{Poisson}(\bar d - 1), d_{\max})` driver genes :math:`D_p`
(:math:`\bar d` = ``mean_driver_genes``, :math:`d_{\max}` = ``max_driver_genes``), drawn uniformly
among the expressed genes (:math:`\mu_g > 1`), with raw coefficients
:math:`b_{gp} = \pm U(0.5, 1.5) / \mathrm{sd}_i(X_{ig})`; with probability
``frac_programme_driven`` one (or, with probability 0.3, two) programme drivers with
:math:`c_{kp} = \pm U(0.5, 1.5) / \mathrm{sd}_i(A_{ik})`; with probability
``frac_lineage_specific`` (and :math:`L > 1`) one lineage :math:`l_p` with a lineage-specific
effect :math:`e_{l_p p} = -U(1.5, 3)` (that lineage is more sensitive). The raw signal
:math:`R_{ip} = \sum_{g \in D_p} X_{ig} b_{gp} + \sum_k A_{ik} c_{kp} + e_{l(i)p}` is rescaled to
the target signal sd, :math:`f_p = s_p / \mathrm{sd}_i(R_{ip})`; the planted coefficients are
:math:`\beta_{gp} = f_p b_{gp}`, :math:`\gamma_{kp} = f_p c_{kp}`, :math:`\delta_{lp} = f_p e_{lp}`
and the intercept :math:`\alpha_p = m_p - f_p \,\mathrm{mean}_i(R_{ip})`. Then

.. math:: Y^*_{ip} = \alpha_p + \sum_g X_{ig}\beta_{gp} + \sum_k A_{ik}\gamma_{kp}
          + \delta_{l(i)p}

are the noise-free responses (mean :math:`m_p` and sd :math:`s_p` across samples exactly; a null
perturbation has :math:`Y^*_{ip} = \alpha_p = m_p`), and the observed responses are

.. math:: Y_{ip} = Y^*_{ip} + \tau_p z_{ip}, \quad \tau_p = \text{noise} \cdot s_p,
          \quad z_{ip} \sim N(0, 1),

so that :math:`\mathrm{corr}_i(Y, Y^*) \approx 1 / \sqrt{1 + \text{noise}^2}` for non-null
perturbations.

*Missing values* (NaN). Without blocks (default for genes), each entry is missing independently
with probability :math:`f` = ``frac_missing``. With blocks (default for drugs, screened in
campaigns), the samples are put in a random screening order; perturbation :math:`p` misses a
fraction :math:`q_p \sim \mathrm{Beta}(5 f, 5 (1 - f))` of the samples: a window of
:math:`\mathrm{round}(q_p n)` consecutive samples of that order, starting at a random position
(so perturbations whose windows overlap miss the same samples). Every perturbation keeps at least
one measured sample.

Seeds: the parts of the model draw from independent streams spawned from ``random_state``, so the
same seed gives identical output, and the expression does not depend on ``n_perturbations``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from leapscreen.data.dataset import ScreenData
from leapscreen.errors import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "SIMULATION_FORMAT_VERSION",
    "SimulationTruth",
    "existing_outputs",
    "planned_files",
    "read_simulation_truth",
    "simulate_screen",
    "write_simulated",
]

SIMULATION_FORMAT_VERSION = 1

#: DepMap file names written by ``write_simulated(format="depmap")``.
DEPMAP_EXPRESSION_FILE = "OmicsExpressionProteinCodingGenesTPMLogp1.csv"
DEPMAP_GENE_EFFECT_FILE = "CRISPRGeneEffect.csv"
DEPMAP_DRUG_FILE = "DrugResponse.csv"
DEPMAP_MODEL_FILE = "Model.csv"
H5AD_FILE = "screen.h5ad"
TRUTH_DIR = "truth"

# Fake Entrez IDs: distinct ranges for genes and perturbations.
_GENE_ENTREZ_BASE = 10_000_001
_PERT_ENTREZ_BASE = 20_000_001

# OncotreeLineage / OncotreePrimaryDisease pairs as in DepMap's Model.csv (most frequent first).
_LINEAGES = (
    ("Lung", "Non-Small Cell Lung Cancer"),
    ("Lymphoid", "Mature B-Cell Neoplasms"),
    ("CNS/Brain", "Diffuse Glioma"),
    ("Skin", "Melanoma"),
    ("Esophagus/Stomach", "Esophagogastric Adenocarcinoma"),
    ("Breast", "Invasive Breast Carcinoma"),
    ("Bowel", "Colorectal Adenocarcinoma"),
    ("Head and Neck", "Head and Neck Squamous Cell Carcinoma"),
    ("Myeloid", "Acute Myeloid Leukemia"),
    ("Bone", "Ewing Sarcoma"),
    ("Ovary/Fallopian Tube", "Ovarian Epithelial Tumor"),
    ("Pancreas", "Pancreatic Adenocarcinoma"),
    ("Kidney", "Renal Cell Carcinoma"),
    ("Peripheral Nervous System", "Neuroblastoma"),
    ("Soft Tissue", "Rhabdomyosarcoma"),
    ("Uterus", "Endometrial Carcinoma"),
    ("Bladder/Urinary Tract", "Bladder Urothelial Carcinoma"),
    ("Liver", "Hepatocellular Carcinoma"),
    ("Biliary Tract", "Cholangiocarcinoma"),
    ("Thyroid", "Well-Differentiated Thyroid Cancer"),
    ("Pleura", "Pleural Mesothelioma"),
    ("Cervix", "Cervical Squamous Cell Carcinoma"),
    ("Prostate", "Prostate Adenocarcinoma"),
    ("Eye", "Uveal Melanoma"),
)

# Response scales per kind: (mean loc, mean sd, mean cap, signal sd scale, signal sd log-sd)
_SCALES = {
    ("gene", True): (-1.3, 0.25, -0.6, 0.05, 0.3),
    ("gene", False): (-0.1, 0.1, None, 0.15, 0.5),
    ("drug", True): (-2.0, 0.5, None, 0.3, 0.3),
    ("drug", False): (2.5, 1.5, None, 0.8, 0.4),
}

_TRUTH_FILES = (
    "coefficients.parquet",
    "perturbations.parquet",
    "programme_coefficients.parquet",
    "lineage_effects.parquet",
    "noise_free_responses.parquet",
    "programme_activity.parquet",
    "gene_modules.parquet",
    "genes.parquet",
    "expression_lineage_effects.parquet",
    "samples.parquet",
    "simulation.json",
)

_EXPR_BLOCK = 2048  # genes per expression block
_LOG_TPM_MAX = float(np.log2(1e6 + 1.0))  # TPM sums to a million
_RESP_BLOCK = 2048  # perturbations per response block


# --------------------------------------------------------------------------------------- truth


@dataclass(repr=False)
class SimulationTruth:
    """Everything planted by :func:`simulate_screen` (see the module docstring for the model).

    Attributes
    ----------
    coef : scipy.sparse.csc_matrix
        genes x perturbations, float64: :math:`\\beta_{gp}`, on the stored expression scale
        (``data.expression``). Non-zero entries are the driver genes.
    intercept : pandas.Series
        :math:`\\alpha_p`, indexed by perturbation.
    programme_coef : pandas.DataFrame
        programmes x perturbations, :math:`\\gamma_{kp}` (mostly zero).
    lineage_coef : pandas.DataFrame
        lineages x perturbations, :math:`\\delta_{lp}`: lineage-specific response effects.
    noise_free : pandas.DataFrame
        samples x perturbations, float32: :math:`Y^*` (no noise, no missing values).
    noise_sd, signal_sd : pandas.Series
        :math:`\\tau_p` and :math:`s_p` per perturbation (the signal sd of a null perturbation is
        the scale its noise refers to; its noise-free response is constant).
    common_essential, null : pandas.Series
        bool per perturbation.
    programme_activity : pandas.DataFrame
        samples x programmes, :math:`A`.
    programme_loadings : scipy.sparse.csr_matrix
        programmes x genes, :math:`W`.
    gene_modules : dict of str to list of str
        The genes each programme loads on.
    expression_lineage_effects : pandas.DataFrame
        lineages x genes, float32: :math:`\\Lambda`.
    gene_mean, gene_noise_sd : pandas.Series
        :math:`\\mu_g` and :math:`\\sigma_g` per gene.
    sample_lineage : pandas.Series
        Lineage of each sample.
    params : dict
        The arguments of :func:`simulate_screen`.
    """

    coef: sp.csc_matrix
    intercept: pd.Series
    programme_coef: pd.DataFrame
    lineage_coef: pd.DataFrame
    noise_free: pd.DataFrame
    noise_sd: pd.Series
    signal_sd: pd.Series
    common_essential: pd.Series
    null: pd.Series
    programme_activity: pd.DataFrame
    programme_loadings: sp.csr_matrix
    gene_modules: dict[str, list[str]]
    expression_lineage_effects: pd.DataFrame
    gene_mean: pd.Series
    gene_noise_sd: pd.Series
    sample_lineage: pd.Series
    params: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"SimulationTruth(samples={self.noise_free.shape[0]}, genes={self.coef.shape[0]}, "
            f"perturbations={self.coef.shape[1]}, programmes={len(self.programmes)}, "
            f"lineages={len(self.lineages)}, driver_genes={self.coef.nnz}, "
            f"kind={self.params.get('kind')!r}, random_state={self.params.get('random_state')!r})"
        )

    @property
    def genes(self) -> pd.Index:
        """Gene names, in the row order of :attr:`coef`."""
        return self.gene_mean.index

    @property
    def perturbations(self) -> pd.Index:
        """Perturbation IDs, in the column order of :attr:`coef`."""
        return self.intercept.index

    @property
    def programmes(self) -> pd.Index:
        """Programme names."""
        return self.programme_activity.columns

    @property
    def lineages(self) -> pd.Index:
        """Lineage names."""
        return self.lineage_coef.index

    def driver_genes(self, perturbation: str) -> pd.Series:
        """The driver genes of one perturbation and their coefficients :math:`\\beta_{gp}`.

        Parameters
        ----------
        perturbation : str
            A perturbation ID.

        Returns
        -------
        pandas.Series
            Coefficients indexed by gene (empty for a null perturbation).
        """
        j = self._pert_pos(perturbation)
        col = self.coef[:, [j]].tocoo()
        order = np.argsort(col.row)
        return pd.Series(
            col.data[order], index=self.genes[col.row[order]], name=perturbation, dtype=np.float64
        )

    def driver_programmes(self, perturbation: str) -> pd.Series:
        """The programme drivers of one perturbation (non-zero :math:`\\gamma_{kp}`)."""
        self._pert_pos(perturbation)
        col = self.programme_coef[perturbation]
        return col[col != 0]

    def coefficients_long(self) -> pd.DataFrame:
        """Driver-gene coefficients as a long table: perturbation, gene, coefficient."""
        coo = self.coef.tocoo()
        order = np.lexsort((coo.row, coo.col))
        return pd.DataFrame(
            {
                "perturbation": self.perturbations[coo.col[order]].astype(str),
                "gene": self.genes[coo.row[order]].astype(str),
                "coefficient": coo.data[order],
            }
        )

    def _pert_pos(self, perturbation: str) -> int:
        try:
            return int(self.perturbations.get_loc(perturbation))
        except KeyError:
            raise InputError(
                f"unknown perturbation {perturbation!r}",
                fix="use an ID from SimulationTruth.perturbations (e.g. 'PERT00001')",
            ) from None


# ---------------------------------------------------------------------------------- validation


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(
            f"{name} must be an integer >= {minimum}, got {value!r}",
            fix=f"pass {name}={minimum} or more",
        )
    return int(value)


def _check_fraction(value: Any, name: str, upper_open: bool = False) -> float:
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = 0.0 <= value < 1.0 if upper_open else 0.0 <= value <= 1.0
    if not ok:
        bound = "[0, 1)" if upper_open else "[0, 1]"
        raise InputError(
            f"{name} must be a number in {bound}, got {value!r}", fix=f"pass {name} within {bound}"
        )
    return float(value)


def _id_names(prefix: str, n: int, width: int) -> list[str]:
    width = max(width, len(str(n)))
    return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]


def _lineage_names(n_lineages: int) -> tuple[list[str], list[str]]:
    names, diseases = [], []
    for i in range(n_lineages):
        if i < len(_LINEAGES):
            names.append(_LINEAGES[i][0])
            diseases.append(_LINEAGES[i][1])
        else:
            names.append(f"Lineage {i + 1}")
            diseases.append(f"Lineage {i + 1} Cancer")
    return names, diseases


# ----------------------------------------------------------------------------------- generator


def _assign_lineages(rng: np.random.Generator, n: int, n_lineages: int) -> np.ndarray:
    base = min(2, n // n_lineages)
    props = rng.dirichlet(np.full(n_lineages, 2.0))
    counts = np.full(n_lineages, base, dtype=np.int64)
    counts += rng.multinomial(n - base * n_lineages, props)
    labels = np.repeat(np.arange(n_lineages), counts)
    return rng.permutation(labels)


def _gene_parameters(
    rng: np.random.Generator, n_genes: int, n_lineages: int, strength: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    silent = rng.random(n_genes) < 0.3
    high = rng.random(n_genes) < 0.015
    mu = np.where(
        silent,
        rng.uniform(-2.0, 0.5, n_genes),
        np.where(
            high, rng.uniform(8.0, 13.0, n_genes), np.clip(rng.normal(3.6, 1.8, n_genes), 0.5, 13.0)
        ),
    )
    sigma = np.where(
        silent,
        rng.lognormal(np.log(0.6), 0.4, n_genes),
        rng.lognormal(np.log(0.6), 0.5, n_genes),
    )
    dense = rng.normal(0.0, 0.2 * strength, (n_lineages, n_genes))
    marker = rng.random((n_lineages, n_genes)) < 0.05
    shift = rng.normal(0.0, 2.0 * strength, (n_lineages, n_genes))
    lam = dense + np.where(marker, shift, 0.0)
    return mu.astype(np.float32), sigma.astype(np.float32), lam.astype(np.float32)


def _programme_loadings(
    rng: np.random.Generator, n_programmes: int, n_genes: int, module_size: int
) -> sp.csr_matrix:
    rows, cols, vals = [], [], []
    for k in range(n_programmes):
        genes = np.sort(rng.choice(n_genes, size=module_size, replace=False))
        sign = np.where(rng.random(module_size) < 0.8, 1.0, -1.0)
        rows.append(np.full(module_size, k))
        cols.append(genes)
        vals.append(sign * rng.uniform(0.3, 1.0, module_size))
    if n_programmes == 0:
        return sp.csr_matrix((0, n_genes), dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_programmes, n_genes),
        dtype=np.float32,
    )


def _expression(
    rng: np.random.Generator,
    lineage: np.ndarray,
    activity: np.ndarray,
    loadings: sp.csr_matrix,
    mu: np.ndarray,
    sigma: np.ndarray,
    lam: np.ndarray,
) -> np.ndarray:
    n = lineage.shape[0]
    n_genes = mu.shape[0]
    out = np.empty((n, n_genes), dtype=np.float32)
    w = loadings.tocsc()
    for start in range(0, n_genes, _EXPR_BLOCK):
        stop = min(start + _EXPR_BLOCK, n_genes)
        block = rng.standard_normal((n, stop - start), dtype=np.float32)
        block *= sigma[start:stop]
        block += mu[start:stop]
        block += lam[:, start:stop][lineage]
        if w.shape[0]:
            block += activity @ w[:, start:stop].toarray()
        np.clip(block, 0.0, _LOG_TPM_MAX, out=block)
        out[:, start:stop] = block
    return out


def _draw_distinct(rng: np.random.Generator, n_rows: int, n_choices: int, high: int) -> np.ndarray:
    """``n_rows`` x ``n_choices`` integers in [0, high), distinct within each row."""
    n_choices = min(n_choices, high)
    idx = rng.integers(0, high, size=(n_rows, n_choices))
    if n_choices > 1:
        srt = np.sort(idx, axis=1)
        bad = np.flatnonzero((np.diff(srt, axis=1) == 0).any(axis=1))
        for r in bad:
            idx[r] = rng.choice(high, size=n_choices, replace=False)
    return idx


def _signed_uniform(rng: np.random.Generator, size: Any, low: float, high: float) -> np.ndarray:
    sign = np.where(rng.random(size) < 0.5, -1.0, 1.0)
    return sign * rng.uniform(low, high, size)


def _missing_mask(
    rng: np.random.Generator,
    n: int,
    n_perturbations: int,
    frac_missing: float,
    block_missing: bool,
) -> np.ndarray:
    """Boolean samples x perturbations mask (True = missing); each column keeps one sample."""
    if frac_missing == 0.0:
        return np.zeros((n, n_perturbations), dtype=bool)
    if block_missing:
        conc = 5.0
        q = rng.beta(conc * frac_missing, conc * (1.0 - frac_missing), n_perturbations)
        k = np.minimum(np.rint(q * n).astype(np.int64), n - 1)
        start = rng.integers(0, n, n_perturbations)
        rank = np.empty(n, dtype=np.int64)
        rank[rng.permutation(n)] = np.arange(n)
        return ((rank[:, None] - start[None, :]) % n) < k[None, :]
    mask = np.empty((n, n_perturbations), dtype=bool)
    for start in range(0, n_perturbations, _RESP_BLOCK):
        stop = min(start + _RESP_BLOCK, n_perturbations)
        u = rng.random((n, stop - start), dtype=np.float32)
        block = u < frac_missing
        full = np.flatnonzero(block.all(axis=0))
        if full.size:  # keep at least one measured sample: the one with the largest draw
            block[np.argmax(u[:, full], axis=0), full] = False
        mask[:, start:stop] = block
    return mask


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
    n = _check_int(n_samples, "n_samples", 2)
    n_genes = _check_int(n_genes, "n_genes", 1)
    n_pert = _check_int(n_perturbations, "n_perturbations", 1)
    n_lin = _check_int(n_lineages, "n_lineages", 1)
    if n_lin > n:
        raise InputError(
            f"n_lineages ({n_lin}) exceeds n_samples ({n})", fix="ask for fewer lineages"
        )
    n_prog = _check_int(n_programmes, "n_programmes", 0)
    frac_missing = _check_fraction(frac_missing, "frac_missing", upper_open=True)
    if kind not in ("gene", "drug"):
        raise InputError(f"kind must be 'gene' or 'drug', got {kind!r}", fix="pass kind='gene'")
    if not isinstance(noise, (int, float, np.floating)) or not np.isfinite(noise) or noise < 0:
        raise InputError(f"noise must be a finite number >= 0, got {noise!r}", fix="pass noise=1")
    if frac_common_essential is None:
        frac_common_essential = 0.1 if kind == "gene" else 0.0
    frac_ce = _check_fraction(frac_common_essential, "frac_common_essential")
    frac_null = _check_fraction(frac_null, "frac_null")
    frac_prog = _check_fraction(frac_programme_driven, "frac_programme_driven")
    frac_lin = _check_fraction(frac_lineage_specific, "frac_lineage_specific")
    if not mean_driver_genes >= 1:
        raise InputError(
            f"mean_driver_genes must be >= 1, got {mean_driver_genes!r}",
            fix="pass mean_driver_genes=1.5",
        )
    max_drivers = _check_int(max_driver_genes, "max_driver_genes", 1)
    if module_size is None:
        module_size = max(5, round(0.02 * n_genes))
    module_size = min(_check_int(module_size, "module_size", 1), n_genes)
    if block_missing is None:
        block_missing = kind == "drug"
    if not lineage_strength >= 0:
        raise InputError(
            f"lineage_strength must be >= 0, got {lineage_strength!r}",
            fix="pass lineage_strength=1",
        )
    params = {
        "n_samples": n,
        "n_genes": n_genes,
        "n_perturbations": n_pert,
        "n_lineages": n_lin,
        "n_programmes": n_prog,
        "frac_missing": frac_missing,
        "kind": kind,
        "noise": float(noise),
        "random_state": None if random_state is None else int(random_state),
        "frac_common_essential": frac_ce,
        "frac_null": frac_null,
        "frac_programme_driven": frac_prog,
        "frac_lineage_specific": frac_lin,
        "mean_driver_genes": float(mean_driver_genes),
        "max_driver_genes": max_drivers,
        "module_size": module_size,
        "block_missing": bool(block_missing),
        "lineage_strength": float(lineage_strength),
        "name": name,
    }
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

    # ---- samples, programmes, expression
    lineage = _assign_lineages(rng_lin, n, n_lin)
    m_prog = rng_prog.normal(0.0, lineage_strength, (n_lin, n_prog))
    activity = (m_prog[lineage] + rng_prog.standard_normal((n, n_prog))).astype(np.float32)
    loadings = _programme_loadings(rng_prog, n_prog, n_genes, module_size)
    mu, sigma, lam = _gene_parameters(rng_gene, n_genes, n_lin, lineage_strength)
    X = _expression(rng_expr, lineage, activity, loadings, mu, sigma, lam)
    logger.info("simulated expression: %d samples x %d genes", n, n_genes)

    # ---- perturbation types, targets and drivers
    ce = rng_pert.random(n_pert) < frac_ce
    null = rng_pert.random(n_pert) < frac_null
    target_mean = np.empty(n_pert)
    target_sd = np.empty(n_pert)
    for flag in (True, False):
        sel = ce == flag
        loc, scale, cap, sd_scale, sd_log = _SCALES[(kind, flag)]
        target_mean[sel] = rng_pert.normal(loc, scale, sel.sum())
        if cap is not None:
            target_mean[sel] = np.minimum(target_mean[sel], cap)
        target_sd[sel] = sd_scale * rng_pert.lognormal(0.0, sd_log, sel.sum())

    expressed = np.flatnonzero(mu > 1.0)
    if expressed.size == 0:
        expressed = np.arange(n_genes)
    n_drv = np.minimum(1 + rng_pert.poisson(mean_driver_genes - 1.0, n_pert), max_drivers)
    n_drv = np.minimum(n_drv, expressed.size)
    n_drv[null] = 0
    cand = expressed[_draw_distinct(rng_pert, n_pert, int(n_drv.max(initial=1)), expressed.size)]
    keep = np.arange(cand.shape[1])[None, :] < n_drv[:, None]
    drv_pert, drv_slot = np.nonzero(keep)
    drv_gene = cand[drv_pert, drv_slot]
    uniq, inverse = np.unique(drv_gene, return_inverse=True)
    drv_sd = X[:, uniq].std(axis=0, dtype=np.float64)[inverse]
    raw_b = _signed_uniform(rng_pert, drv_gene.size, 0.5, 1.5)
    raw_b = np.divide(raw_b, drv_sd, out=np.zeros_like(raw_b), where=drv_sd > 0)
    b_raw = sp.csc_matrix((raw_b, (drv_gene, drv_pert)), shape=(n_genes, n_pert))
    b_raw.sum_duplicates()

    c_raw = np.zeros((n_prog, n_pert))
    if n_prog:
        prog_sd = activity.std(axis=0, dtype=np.float64)
        has_prog = (rng_pert.random(n_pert) < frac_prog) & ~null
        two = rng_pert.random(n_pert) < 0.3
        picks = _draw_distinct(rng_pert, n_pert, 2, n_prog)
        vals = _signed_uniform(rng_pert, picks.shape, 0.5, 1.5)
        for slot in range(picks.shape[1]):
            sel = has_prog & (two if slot == 1 else True)
            cols = np.flatnonzero(sel)
            k = picks[cols, slot]
            c_raw[k, cols] = vals[cols, slot] / np.where(prog_sd[k] > 0, prog_sd[k], np.inf)
    e_raw = np.zeros((n_lin, n_pert))
    if n_lin > 1:
        has_lin = (rng_pert.random(n_pert) < frac_lin) & ~null
        which = rng_pert.integers(0, n_lin, n_pert)
        size = -rng_pert.uniform(1.5, 3.0, n_pert)
        cols = np.flatnonzero(has_lin)
        e_raw[which[cols], cols] = size[cols]

    # ---- responses, in blocks of perturbations
    mask = _missing_mask(rng_miss, n, n_pert, frac_missing, bool(block_missing))
    noise_free = np.empty((n, n_pert), dtype=np.float32)
    observed = np.empty((n, n_pert), dtype=np.float32)
    scale = np.zeros(n_pert)
    intercept = target_mean.copy()
    used_genes = np.unique(b_raw.indices)
    X_used = X[:, used_genes].astype(np.float64)
    b_used = b_raw[used_genes, :].tocsc()
    activity64 = activity.astype(np.float64)
    for start in range(0, n_pert, _RESP_BLOCK):
        stop = min(start + _RESP_BLOCK, n_pert)
        sl = slice(start, stop)
        raw = np.asarray((b_used[:, sl].T @ X_used.T).T)
        if n_prog:
            raw += activity64 @ c_raw[:, sl]
        raw += e_raw[lineage, sl]
        sd = raw.std(axis=0)
        f = np.divide(target_sd[sl], sd, out=np.zeros(stop - start), where=sd > 1e-12)
        center = raw.mean(axis=0)
        scale[sl] = f
        intercept[sl] = target_mean[sl] - f * center
        y_star = target_mean[sl] + f * (raw - center)
        noise_free[:, sl] = y_star
        y_star += (noise * target_sd[sl]) * rng_noise.standard_normal(
            (n, stop - start), dtype=np.float32
        )
        y_star[mask[:, sl]] = np.nan
        observed[:, sl] = y_star
    null_eff = scale == 0  # no driver, or a signal that happened to be constant
    coef = b_raw.copy()
    coef.data = coef.data * np.repeat(scale, np.diff(coef.indptr))
    coef.eliminate_zeros()
    gamma = c_raw * scale
    delta = e_raw * scale
    logger.info("simulated responses: %d perturbations (%s)", n_pert, kind)

    # ---- labels and packaging
    sample_ids = _id_names("SIM-", n, 6)
    genes = _id_names("GENE", n_genes, 5)
    perts = _id_names("PERT", n_pert, 5)
    programmes = _id_names("PROG", n_prog, 2)
    lin_names, diseases = _lineage_names(n_lin)
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


# --------------------------------------------------------------------------------------- writing


def _csv_header(names: list[str]) -> str:
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(names)
    return buf.getvalue()


def _write_wide_csv(path: Path, first: str, ids: list[str], values: np.ndarray, columns: list[str]):
    """Write samples x features as CSV fast (pyarrow), NaN as empty fields; header unquoted."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    arrays = [pa.array(ids, type=pa.string())]
    arrays += [pa.array(values[:, j], from_pandas=True) for j in range(values.shape[1])]
    table = pa.Table.from_arrays(arrays, names=[f"c{j}" for j in range(len(arrays))])
    with open(path, "wb") as fh:
        fh.write(_csv_header([first, *columns]).encode())
        pacsv.write_csv(
            table,
            fh,
            write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed"),
        )


def _write_parquet(path: Path, df: pd.DataFrame) -> None:
    df.to_parquet(path)


def _depmap_writers(data: ScreenData, truth_kind: str) -> dict[str, Callable[[Path], None]]:
    genes = [str(g) for g in data.genes]
    gene_cols = [f"{g} ({_GENE_ENTREZ_BASE + j})" for j, g in enumerate(genes)]
    ids = [str(s) for s in data.sample_ids]
    perts = [str(p) for p in data.perturbation_ids]
    expr = data.expression.to_numpy(dtype=np.float32)
    resp = data.responses.to_numpy(dtype=np.float32)

    def expression(path: Path) -> None:
        _write_wide_csv(path, "", ids, expr, gene_cols)

    def responses(path: Path) -> None:
        if truth_kind == "gene":
            cols = [f"{p} ({_PERT_ENTREZ_BASE + j})" for j, p in enumerate(perts)]
        else:
            cols = perts
        _write_wide_csv(path, "ModelID", ids, resp, cols)

    def models(path: Path) -> None:
        meta = data.samples
        table = pd.DataFrame(
            {
                "ModelID": ids,
                "CellLineName": [f"SIMCELL{i + 1}" for i in range(len(ids))],
                "OncotreeLineage": meta["lineage"].to_numpy(),
                "OncotreePrimaryDisease": meta["primary_disease"].to_numpy()
                if "primary_disease" in meta
                else "unknown",
            }
        )
        table.to_csv(path, index=False)

    resp_file = DEPMAP_GENE_EFFECT_FILE if truth_kind == "gene" else DEPMAP_DRUG_FILE
    return {DEPMAP_EXPRESSION_FILE: expression, resp_file: responses, DEPMAP_MODEL_FILE: models}


def _truth_writers(truth: SimulationTruth) -> dict[str, Callable[[Path], None]]:
    perts = truth.perturbations.astype(str)

    def long_nonzero(frame: pd.DataFrame, what: str, value: str) -> pd.DataFrame:
        arr = frame.to_numpy()
        r, c = np.nonzero(arr)
        order = np.lexsort((r, c))
        r, c = r[order], c[order]
        return pd.DataFrame(
            {
                "perturbation": frame.columns[c].astype(str),
                what: frame.index[r].astype(str),
                value: arr[r, c],
            }
        )

    pert_table = pd.DataFrame(
        {
            "perturbation": perts,
            "intercept": truth.intercept.to_numpy(),
            "signal_sd": truth.signal_sd.to_numpy(),
            "noise_sd": truth.noise_sd.to_numpy(),
            "common_essential": truth.common_essential.to_numpy(bool),
            "null": truth.null.to_numpy(bool),
            "n_driver_genes": np.diff(truth.coef.indptr),
        }
    )
    w = truth.programme_loadings.tocoo()
    modules = pd.DataFrame(
        {
            "programme": truth.programmes[w.row].astype(str),
            "gene": truth.genes[w.col].astype(str),
            "loading": w.data.astype(np.float64),
        }
    )
    genes = pd.DataFrame(
        {
            "gene": truth.genes.astype(str),
            "mean": truth.gene_mean.to_numpy(),
            "noise_sd": truth.gene_noise_sd.to_numpy(),
        }
    )
    samples = pd.DataFrame(
        {"sample_id": truth.sample_lineage.index.astype(str), "lineage": truth.sample_lineage}
    ).reset_index(drop=True)
    noise_free = truth.noise_free.copy()
    noise_free.index = noise_free.index.astype(str).rename("sample_id")
    activity = truth.programme_activity.copy()
    activity.index = activity.index.astype(str).rename("sample_id")
    lam = truth.expression_lineage_effects.T.copy()  # genes x lineages
    lam.index = lam.index.astype(str).rename("gene")
    meta = {
        "format": "leapscreen.SimulationTruth",
        "format_version": SIMULATION_FORMAT_VERSION,
        "params": truth.params,
        "lineages": [str(x) for x in truth.lineages],
        "programmes": [str(x) for x in truth.programmes],
    }

    def js(path: Path) -> None:
        path.write_text(json.dumps(meta, indent=2))

    def pq(df: pd.DataFrame) -> Callable[[Path], None]:
        return lambda path: _write_parquet(path, df)

    t = TRUTH_DIR
    return {
        f"{t}/coefficients.parquet": pq(truth.coefficients_long()),
        f"{t}/perturbations.parquet": pq(pert_table),
        f"{t}/programme_coefficients.parquet": pq(
            long_nonzero(truth.programme_coef, "programme", "coefficient")
        ),
        f"{t}/lineage_effects.parquet": pq(long_nonzero(truth.lineage_coef, "lineage", "effect")),
        f"{t}/noise_free_responses.parquet": pq(noise_free),
        f"{t}/programme_activity.parquet": pq(activity),
        f"{t}/gene_modules.parquet": pq(modules),
        f"{t}/genes.parquet": pq(genes),
        f"{t}/expression_lineage_effects.parquet": pq(lam),
        f"{t}/samples.parquet": pq(samples),
        f"{t}/simulation.json": js,
    }


def _atomic(path: Path, writer: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        writer(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def planned_files(format: str, kind: str) -> list[str]:
    """Files (relative to the output directory) that :func:`write_simulated` writes.

    For ``format="parquet"`` the data files are those of :meth:`ScreenData.write_parquet` and are
    not listed; the truth files always are.
    """
    files = []
    if format == "depmap":
        resp = DEPMAP_GENE_EFFECT_FILE if kind == "gene" else DEPMAP_DRUG_FILE
        files += [DEPMAP_EXPRESSION_FILE, resp, DEPMAP_MODEL_FILE]
    elif format == "h5ad":
        files.append(H5AD_FILE)
    return files + [f"{TRUTH_DIR}/{name}" for name in _TRUTH_FILES]


def existing_outputs(out_dir: str | os.PathLike, format: str, kind: str) -> list[str]:
    """The files of :func:`planned_files` that already exist in ``out_dir``."""
    out = Path(out_dir)
    return [rel for rel in planned_files(format, kind) if (out / rel).exists()]


def write_simulated(
    data: ScreenData,
    truth: SimulationTruth,
    out_dir: str | os.PathLike,
    format: Literal["depmap", "parquet", "h5ad"] = "depmap",
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write a simulated screen and its ground truth in a format leapscreen's readers take.

    Layout of ``out_dir``:

    * ``format="depmap"``: ``OmicsExpressionProteinCodingGenesTPMLogp1.csv`` (first column the
      sample IDs, unnamed; gene columns ``SYMBOL (ENTREZ)`` with fake Entrez IDs),
      ``CRISPRGeneEffect.csv`` (first column ``ModelID``, same column convention; for drugs
      ``DrugResponse.csv`` with plain perturbation IDs), ``Model.csv`` (``ModelID``,
      ``CellLineName``, ``OncotreeLineage``, ``OncotreePrimaryDisease``); missing values are empty
      fields;
    * ``format="parquet"``: the directory of :meth:`ScreenData.write_parquet` (read it back with
      :meth:`ScreenData.read_parquet` on ``out_dir``);
    * ``format="h5ad"``: ``screen.h5ad`` (:meth:`ScreenData.write_h5ad`);
    * always ``truth/``: ``coefficients.parquet`` (perturbation, gene, coefficient),
      ``noise_free_responses.parquet`` (samples x perturbations), ``perturbations.parquet``
      (intercept, signal_sd, noise_sd, common_essential, null, n_driver_genes),
      ``programme_coefficients.parquet``, ``lineage_effects.parquet``,
      ``programme_activity.parquet``, ``gene_modules.parquet``, ``genes.parquet``,
      ``expression_lineage_effects.parquet``, ``samples.parquet`` and ``simulation.json``;
      :func:`read_simulation_truth` reads them back.

    Every file is written to a temporary name and moved into place (:func:`os.replace`). Existing
    files are checked before anything is written.

    Parameters
    ----------
    data, truth
        The output of :func:`simulate_screen`.
    out_dir : str or PathLike
        Destination directory (created if needed).
    format : {"depmap", "parquet", "h5ad"}
        Format of the screen data.
    overwrite : bool
        Replace existing files; without it an existing file is an :class:`InputError`.

    Returns
    -------
    dict of str to Path
        Relative name -> path of every file written.

    Raises
    ------
    InputError
        Unknown format, ``out_dir`` is a file, or a file exists and ``overwrite`` is False.
    """
    out = Path(out_dir)
    if format not in ("depmap", "parquet", "h5ad"):
        raise InputError(
            f"unknown format {format!r}; expected 'depmap', 'parquet' or 'h5ad'",
            path=out,
            fix="pass format='depmap', 'parquet' or 'h5ad' (--format on the command line)",
        )
    if out.exists() and not out.is_dir():
        raise InputError(
            "exists and is not a directory", path=out, fix="choose a directory path for the output"
        )
    kind = str(truth.params.get("kind", "gene"))
    writers: dict[str, Callable[[Path], None]] = {}
    staged: Path | None = None
    out.mkdir(parents=True, exist_ok=True)
    try:
        if format == "depmap":
            writers.update(_depmap_writers(data, kind))
        elif format == "h5ad":
            writers[H5AD_FILE] = lambda path: data.write_h5ad(path, overwrite=True)
        else:  # parquet: stage the directory, then move its files in place
            staged = Path(tempfile.mkdtemp(dir=out, prefix=".parquet-"))
            data.write_parquet(staged, overwrite=True)
            for item in sorted(staged.iterdir()):
                writers[item.name] = _mover(item)
        writers.update(_truth_writers(truth))
        existing = [rel for rel in writers if (out / rel).exists()]
        if existing and not overwrite:
            raise InputError(
                f"refusing to overwrite {len(existing)} existing file(s): "
                + ", ".join(existing[:5])
                + (" ..." if len(existing) > 5 else ""),
                path=out / existing[0],
                fix="pass overwrite=True (--overwrite) or choose another output directory",
            )
        written: dict[str, Path] = {}
        for rel, writer in writers.items():
            target = out / rel
            if target.is_dir():
                shutil.rmtree(target)
            _atomic(target, writer)
            written[rel] = target
            logger.debug("wrote %s", target)
        logger.info("wrote %d files to %s", len(written), out)
        return written
    finally:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)


def _mover(source: Path) -> Callable[[Path], None]:
    def move(tmp: Path) -> None:
        os.replace(source, tmp)

    return move


# --------------------------------------------------------------------------------------- reading


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
    meta_path = d / "simulation.json"
    if not meta_path.is_file():
        raise InputError(
            "no simulation truth here (simulation.json missing)",
            path=d,
            fix="give the directory written by write_simulated / leapscreen simulate",
        )
    meta = json.loads(meta_path.read_text())
    if meta.get("format_version", 0) > SIMULATION_FORMAT_VERSION:
        raise InputError(
            f"simulation truth format {meta.get('format_version')} is newer than this leapscreen "
            f"reads ({SIMULATION_FORMAT_VERSION})",
            path=meta_path,
            fix="upgrade leapscreen",
        )

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
