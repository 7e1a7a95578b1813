"""Prediction heads: per-perturbation models from a representation to the responses.

Every head is a scikit-learn regressor (:class:`leapscreen.base.BaseHead`): ``fit(Z, Y)`` with
``Y`` NaN where not measured (1-D ``y`` gives 1-D predictions) and ``predict(Z)``. The linear heads
(:class:`leapscreen.base.LinearHeadMixin`) expose ``coef_mean_`` (d x p) and ``intercept_mean_``
(p,), so that the fitted head is one linear map. Importing this package registers the heads under
their names ("ps-lasso", "ps-enet", "ridge", "mean"; see :mod:`leapscreen.registry`).

Layers: :mod:`._solvers` (batched solvers, LAPACK helpers), :mod:`._cv` (the per-perturbation CV
engine every head shares: label groups, folds, scoring, tie and fallback rules), the estimators
(:mod:`.lasso`, :mod:`.linear`).
"""

from leapscreen.heads._cv import kfold_assignment, spearman_columns
from leapscreen.heads.boosting import PSLightGBMHead
from leapscreen.heads.knn import PSKNNHead
from leapscreen.heads.lasso import PSLassoHead
from leapscreen.heads.linear import ElasticNetHead, MeanHead, RidgeHead
from leapscreen.heads.mlp import PSMLPHead
from leapscreen.heads.multitask import ReducedRankRidgeHead, StackedHead
from leapscreen.heads.pan import PanLightGBMHead, PanMLPHead, PanTDNNHead
from leapscreen.heads.targets import NormalScoresHead

__all__ = [
    "ElasticNetHead",
    "MeanHead",
    "NormalScoresHead",
    "PSKNNHead",
    "PSLightGBMHead",
    "PSLassoHead",
    "PSMLPHead",
    "PanLightGBMHead",
    "PanMLPHead",
    "PanTDNNHead",
    "ReducedRankRidgeHead",
    "RidgeHead",
    "StackedHead",
    "kfold_assignment",
    "spearman_columns",
]
