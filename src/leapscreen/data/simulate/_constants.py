"""Constants of the simulator: file names, DepMap lineages, response scales, block sizes."""

from __future__ import annotations

import numpy as np

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
