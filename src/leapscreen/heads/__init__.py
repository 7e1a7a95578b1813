"""Prediction heads: per-perturbation models from a representation to the responses.

Every head has ``fit(Z, Y)`` (``Y`` with NaN = missing) and ``predict(Z)``, and exposes
``coef_mean_`` (d x p) and ``intercept_mean_`` (p,) so that the fitted head is one linear map.
"""

from leapscreen.heads.lasso import PSLassoHead, kfold_assignment, spearman_columns
from leapscreen.heads.linear import ElasticNetHead, MeanHead, RidgeHead

__all__ = [
    "ElasticNetHead",
    "MeanHead",
    "PSLassoHead",
    "RidgeHead",
    "kfold_assignment",
    "spearman_columns",
]
