"""Constants shared by the simulator's steps: truth format, DepMap lineages, scales, blocks."""

from __future__ import annotations

import numpy as np

SIMULATION_FORMAT_VERSION = 1

TRUTH_DIR = "truth"

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

_EXPR_BLOCK = 2048  # genes per expression block
_LOG_TPM_MAX = float(np.log2(1e6 + 1.0))  # TPM sums to a million
_RESP_BLOCK = 2048  # perturbations per response block
