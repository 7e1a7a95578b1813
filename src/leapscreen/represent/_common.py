"""Validation shared by the representations: scikit-learn's helpers, with messages naming genes."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = [
    "PooledFitMixin",
    "RepresentationNotFittedError",
    "check_fitted",
    "stack_unlabelled",
    "validate_input",
]


class RepresentationNotFittedError(NotFittedError, RuntimeError):
    """scikit-learn's :class:`~sklearn.exceptions.NotFittedError`, also a ``RuntimeError``.

    ``RuntimeError`` is what the representations raised before they followed scikit-learn's
    contract; callers catching either keep working.
    """


def check_fitted(estimator: Any) -> None:
    """``check_is_fitted`` raising :class:`RepresentationNotFittedError`."""
    try:
        check_is_fitted(estimator)
    except NotFittedError as exc:
        raise RepresentationNotFittedError(str(exc)) from None


def validate_input(
    estimator: Any, X: Any, *, reset: bool, dtype: Any, ensure_min_features: int = 1
) -> np.ndarray:
    """``X`` as a finite, real 2-D array of ``dtype`` (samples x genes), via ``validate_data``.

    With ``reset=False`` the number of genes must match the fit; the error says so in scikit-learn's
    words ("X has 5 features, but ... is expecting 40 features as input") and names the genes.
    """
    if not reset:
        check_fitted(estimator)
        shape = getattr(X, "shape", ())
        expected = int(estimator.n_features_in_)
        if len(shape) == 2 and shape[1] != expected:
            raise ValueError(
                f"X has {shape[1]} features, but {type(estimator).__name__} is expecting "
                f"{expected} features as input: got shape {tuple(shape)}, the model was fitted "
                f"on {expected} genes"
            )
    return validate_data(
        estimator,
        X,
        reset=reset,
        dtype=dtype,
        ensure_min_samples=2 if reset else 1,
        ensure_min_features=ensure_min_features,
    )


def stack_unlabelled(estimator: Any, X: np.ndarray, X_unlabelled: Any) -> np.ndarray:
    """``X`` with the unlabelled samples appended (same genes), validated like ``X``."""
    if X_unlabelled is None:
        return X
    from sklearn.utils.validation import check_array

    extra = check_array(
        X_unlabelled, dtype=X.dtype, ensure_min_samples=0, input_name="X_unlabelled"
    )
    if extra.shape[1] != X.shape[1]:
        raise ValueError(
            f"X_unlabelled has {extra.shape[1]} genes but X has {X.shape[1]}; map it onto the "
            "same genes first (e.g. with the fitted Preprocessor)"
        )
    return np.concatenate([X, extra]) if extra.shape[0] else X


class PooledFitMixin:
    """One ``fit`` for the representations: validate ``X``, then ``_fit_validated``.

    By default sources are ignored and the pooled matrix ``np.vstack([X, X_unlabelled])`` (what
    LEAP fitted these on before the representations shared one signature) goes to
    ``_fit_matrix``; ``y`` is always ignored. Every representation outputs float32, whatever the
    input dtype (declared in the tags).
    """

    #: dtype the input is validated to
    _fit_dtype: Any = np.float32
    #: fewest genes a fit accepts
    _min_features: int = 1

    def __sklearn_tags__(self):  # noqa: ANN204 - sklearn's Tags object
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.transformer_tags.preserves_dtype = []  # always float32
        return tags

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        sources: Any = None,
        X_unlabelled: Any = None,
        sources_unlabelled: Any = None,
    ) -> Any:
        """Fit on ``X`` with the unlabelled samples pooled (``y`` and source labels are ignored).

        Parameters
        ----------
        X : array of shape (n_samples, n_genes)
            Scaled expression.
        y : ignored
            Representations never see the responses (accepted for ``Pipeline``).
        sources, sources_unlabelled : sequence, optional
            Source labels of the rows of ``X`` and ``X_unlabelled``; only
            :class:`~leapscreen.represent.DAMAE` uses them (the others ignore them).
        X_unlabelled : array of shape (m, n_genes), optional
            Extra samples (expression only) fitted on together with ``X``.

        Returns
        -------
        self
        """
        Xv = validate_input(
            self, X, reset=True, dtype=self._fit_dtype, ensure_min_features=self._min_features
        )
        self._fit_validated(Xv, sources, X_unlabelled, sources_unlabelled)
        return self

    def _fit_validated(
        self, X: np.ndarray, sources: Any, X_unlabelled: Any, sources_unlabelled: Any
    ) -> None:
        """Fit on the validated ``X``: here the pooled matrix (a subclass may use the sources)."""
        self._fit_matrix(stack_unlabelled(self, X, X_unlabelled))  # type: ignore[attr-defined]
