"""Evaluation: seeded by-sample splits and per-perturbation metrics."""

from leapscreen.evaluate.cache import data_fingerprint
from leapscreen.evaluate.metrics import (
    METRICS,
    aggregate,
    pearson_by_column,
    precision_at_k,
    score_perturbations,
    spearman_by_column,
    split_means,
)
from leapscreen.evaluate.splits import (
    TASKS,
    Split,
    kfold,
    make_splits,
    safe_name,
    transfer,
    unseen_lineage,
    unseen_samples,
)

__all__ = [
    "METRICS",
    "TASKS",
    "Split",
    "aggregate",
    "data_fingerprint",
    "kfold",
    "make_splits",
    "pearson_by_column",
    "precision_at_k",
    "safe_name",
    "score_perturbations",
    "spearman_by_column",
    "split_means",
    "transfer",
    "unseen_lineage",
    "unseen_samples",
]
