"""A new head in one file: per-perturbation k-nearest neighbours, registered with one line."""

from __future__ import annotations

import numpy as np

from leapscreen.base import BaseHead
from leapscreen.registry import register_head


@register_head("plugin-knn")
class PluginKNNHead(BaseHead):
    """Each perturbation: mean response of the k nearest training samples labelled for it."""

    def __init__(self, n_neighbors: int = 5) -> None:
        self.n_neighbors = n_neighbors

    def fit(self, Z, Y):  # noqa: ANN001, ANN201
        Zv, Yv = self._validate_fit(Z, Y)
        if int(self.n_neighbors) < 1:
            raise ValueError(f"n_neighbors must be >= 1, got {self.n_neighbors}")
        self.Z_, self.Y_ = Zv, Yv
        n_lab = (~np.isnan(Yv)).sum(axis=0)
        self.fallback_ = n_lab < 1
        return self

    def predict(self, Z):  # noqa: ANN001, ANN201
        Zv = self._validate_predict(Z)
        dist = ((Zv[:, None, :] - self.Z_[None, :, :]) ** 2).sum(axis=2)
        order = np.argsort(dist, axis=1, kind="stable")
        out = np.full((Zv.shape[0], self.Y_.shape[1]), np.nan)
        for j in range(self.Y_.shape[1]):
            labelled = ~np.isnan(self.Y_[:, j])
            if not labelled.any():
                continue
            near = order  # training rows by distance, for every test row
            keep = labelled[near]
            k = min(int(self.n_neighbors), int(labelled.sum()))
            rank = np.cumsum(keep, axis=1)
            chosen = keep & (rank <= k)
            vals = np.where(chosen, self.Y_[near, j], 0.0)
            out[:, j] = vals.sum(axis=1) / k
        return self._shape_output(out)
