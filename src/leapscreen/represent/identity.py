"""The genes themselves as the representation (the "raw genes" baseline): the identity map."""

from __future__ import annotations

from typing import Any

import numpy as np

from leapscreen.base import BaseRepresentation
from leapscreen.registry import register_representation
from leapscreen.represent._common import PooledFitMixin, check_fitted, validate_input

__all__ = ["IdentityRepresentation"]


@register_representation("genes")
class IdentityRepresentation(PooledFitMixin, BaseRepresentation):
    """The preprocessed genes themselves; linear (``W`` the identity, ``b`` zero), no seed.

    ``fit`` records the number of genes; ``y``, sources and unlabelled samples change nothing.

    Attributes
    ----------
    n_features_in_ : int
        Number of genes.
    n_features_ : int
        The same (the name used before this followed scikit-learn's contract).
    """

    is_linear = True
    seeded = False

    def _fit_matrix(self, X: np.ndarray) -> None:
        self.n_features_ = int(X.shape[1])

    def transform(self, X: Any) -> np.ndarray:
        """``X`` itself, as float32."""
        return validate_input(self, X, reset=False, dtype=np.float32)

    def linear_map(self) -> tuple[np.ndarray, np.ndarray]:
        """``(I, 0)`` in float32."""
        check_fitted(self)
        n = int(self.n_features_in_)
        return np.eye(n, dtype=np.float32), np.zeros(n, np.float32)
