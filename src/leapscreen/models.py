"""Named models: the presets (data) and the names generated from the registry.

Every model is a :class:`~leapscreen.ensemble.LEAP` configuration: the baselines are the same
pipeline with no representation ("genes") and a simple head, so preprocessing, missing-label handling,
saving and prediction are shared and the comparison is fair.

Besides the presets below, every registered head ``H`` (see :mod:`leapscreen.registry`) gives two
names: ``H`` (one DAMAE seed + H: the single-representation model) and ``leap-H`` (5 DAMAE seeds x H),
unless a preset already uses the name. A head added in one file with ``@register_head("ps-knn")`` is
therefore ``fit --model leap-ps-knn`` and ``evaluate --models ps-knn,leap-ps-knn`` with no other edit.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator, clone

from leapscreen import registry
from leapscreen.baselines import LineageMean
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
    # LEAP across strategies on the genes: ridge with 5-fold CV (its 5 fold models averaged) and
    # reduced-rank ridge, the plain mean of the two; one linear map. The best combination of
    # BENCHMARKS.md ("LEAP across strategies") for its cost.
    "leap-ridges": {
        "representation": [("genes", ["ridge", "rr-ridge"])],
        "n_seeds": 1,
        "head_params": {"standardize": False},
    },
    # LEAP across strategies and representations: reduced-rank ridge on the genes, and kernel
    # ridge (RBF kernel features of the genes) fitted on the normal scores of each perturbation's
    # responses; the plain mean of the two. Ahead of ridge on every GDSC2 split (BENCHMARKS.md,
    # "LEAP across strategies") at about 2x its fit time. Not linear (no gene coefficients).
    "leap-kernel": {
        "representation": [("genes", ["rr-ridge"]), ("rbf", ["normal-scores"])],
        "n_seeds": 1,
        "head_params": {"standardize": False},
    },
}


#: models that are not LEAP configurations: name -> class (built with its defaults). They need more
#: than expression (the lineage of the samples), so ``evaluate`` offers them, ``fit`` does not.
BASELINES: dict[str, type[BaseEstimator]] = {
    # per-(lineage, perturbation) training mean: what the tissue of origin alone predicts
    "lineage-mean": LineageMean,
}


def _generated() -> dict[str, dict[str, Any]]:
    """``H`` and ``leap-H`` for every registered head ``H`` not already a preset name."""
    out: dict[str, dict[str, Any]] = {}
    for head in registry.head_names():
        if not getattr(registry.get_entry("head", head).cls, "uses_features", True):
            continue  # a head that ignores the features has no representation to ensemble
        for name, n_seeds in ((head, 1), (f"leap-{head}", 5)):
            if name not in MODEL_PRESETS and name not in BASELINES:
                out[name] = {"representation": "damae", "head": head, "n_seeds": n_seeds}
    return out


def model_presets() -> dict[str, dict[str, Any]]:
    """Every named model: the presets, then the names generated from the registry."""
    return {**MODEL_PRESETS, **_generated()}


def model_names(with_baselines: bool = True) -> list[str]:
    """Every model name that :func:`make_model` and ``evaluate --models`` accept.

    ``with_baselines=False`` leaves out :data:`BASELINES` (they need the samples' lineage at
    prediction time): the names ``fit --model`` accepts.
    """
    names = list(model_presets())
    return [*names, *BASELINES] if with_baselines else names


def make_model(name: str | BaseEstimator, **overrides: Any) -> BaseEstimator:
    """A fresh, unfitted model from a name or an estimator, with parameters overridden.

    Parameters
    ----------
    name : str or estimator
        One of :func:`model_names`, or an estimator (e.g. a configured :class:`LEAP`), which is
        cloned; overrides it does not accept are ignored.
    **overrides
        LEAP constructor parameters (e.g. ``latent_dim``, ``n_genes``, ``random_state``, ``device``).
    """
    if isinstance(name, BaseEstimator):
        model = clone(name)
        own = model.get_params(deep=False)
        return model.set_params(**{k: v for k, v in overrides.items() if k in own})
    if name in BASELINES:
        model = BASELINES[name]()
        own = model.get_params(deep=False)
        return model.set_params(**{k: v for k, v in overrides.items() if k in own})
    presets = model_presets()
    if name not in presets:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(model_names())}")
    preset = presets[name]
    params = {**preset, **overrides}
    if preset["n_seeds"] == 1:
        # single-representation presets stay single whatever n_seeds is passed to all models
        params["n_seeds"] = 1
    return LEAP(**params)
