"""Named model presets, so that the CLI and the evaluation compare models by name on the same splits.

Every preset is a :class:`~leapscreen.ensemble.LEAP` configuration: the baselines are the same
pipeline with no representation ("genes") and a simple head, so preprocessing, missing-label handling,
saving and prediction are shared and the comparison is fair.
"""

from __future__ import annotations

from typing import Any

from leapscreen.ensemble import LEAP

MODEL_PRESETS: dict[str, dict[str, Any]] = {
    # per-perturbation training mean: the floor every model must beat
    "mean": {"representation": "genes", "head": "mean", "n_seeds": 1},
    # ridge on the preprocessed most-variant genes, alpha per perturbation by exact leave-one-out CV
    # (Spearman), then one fit on all labelled rows: the strong baseline. Genes are z-scored on the
    # training samples by the Preprocessor, so the head only centres: one kernel matrix serves every
    # missingness pattern. Leave-one-out is 3x faster than 5-fold here and scores the same.
    "ridge": {
        "representation": "genes",
        "head": "ridge",
        "n_seeds": 1,
        "head_params": {"standardize": False, "cv": "loo"},
    },
    # PS-LASSO on the preprocessed genes (no representation)
    "genes-ps-lasso": {"representation": "genes", "head": "ps-lasso", "n_seeds": 1},
    # PS-LASSO on PCA(latent_dim)
    "pca-ps-lasso": {"representation": "pca", "head": "ps-lasso", "n_seeds": 1},
    # single-representation model: one DAMAE seed + PS-LASSO (the paper's non-ensembled reference)
    "ps-lasso": {"representation": "damae", "head": "ps-lasso", "n_seeds": 1},
    # LEAP: 5 DAMAE seeds x 5 CV-fold PS-LASSO heads
    "leap-ps-lasso": {"representation": "damae", "head": "ps-lasso", "n_seeds": 5},
    "leap-ps-enet": {"representation": "damae", "head": "ps-enet", "n_seeds": 5},
    # LEAP across representation types: DAMAE seeds + PCA
    "leap-mixed": {"representation": ["damae", "pca"], "head": "ps-lasso", "n_seeds": 5},
}


def make_model(name: str, **overrides: Any) -> LEAP:
    """A fresh, unfitted model from a preset name, with parameters overridden.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_PRESETS`.
    **overrides
        LEAP constructor parameters (e.g. ``latent_dim``, ``n_genes``, ``random_state``, ``device``).
    """
    if name not in MODEL_PRESETS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_PRESETS)}")
    preset = MODEL_PRESETS[name]
    params = {**preset, **overrides}
    if preset["n_seeds"] == 1:
        # single-representation presets stay single whatever n_seeds is passed to all models
        params["n_seeds"] = 1
    return LEAP(**params)


def model_names() -> list[str]:
    """Every model name that :func:`make_model`, ``fit --model`` and ``evaluate --models`` accept."""
    return list(MODEL_PRESETS)
