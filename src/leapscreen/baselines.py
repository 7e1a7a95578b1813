"""Baselines that use what a user knows besides expression: the lineage of each sample.

:class:`LineageMean` predicts, for a sample of lineage ``L`` and a perturbation ``j``, the mean
response to ``j`` of the training samples of lineage ``L`` (the *lineage x perturbation mean*). For
unseen cell lines of known tissue it is often a strong baseline: a model from expression that does
not beat it has learned little beyond the tissue of origin. A lineage with fewer than
``min_samples`` labelled training samples for ``j`` (or a lineage never seen in training, as in the
unseen-lineage task) is predicted by the perturbation's overall training mean.

It takes the sample metadata (a table with a ``lineage`` column, as
:class:`~leapscreen.data.dataset.ScreenData` holds) in ``fit`` and ``predict``; ``evaluate`` passes
it to every model whose ``fit`` / ``predict`` accept a ``samples`` argument.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from leapscreen import registry
from leapscreen.base import nan_r2
from leapscreen.errors import InputError

__all__ = ["LineageMean"]

UNKNOWN = "<unknown lineage>"


@registry.register_component
class LineageMean(RegressorMixin, BaseEstimator):
    """Mean response per (lineage, perturbation) over the training samples; no expression used.

    Parameters
    ----------
    lineage_column : str, default "lineage"
        Column of the sample metadata that holds the lineage (tissue) of each sample.
    min_samples : int, default 3
        Fewest labelled training samples of a lineage for its own mean to be used; below that the
        perturbation's overall training mean is predicted.

    Attributes
    ----------
    lineages_ : list of str
        Training lineages, in the row order of ``lineage_means_``.
    lineage_means_ : ndarray (n_lineages, p)
        Mean response of each lineage (NaN where fewer than ``min_samples`` labelled samples).
    overall_mean_ : ndarray (p,)
    lineage_counts_ : ndarray (n_lineages, p) of int
    perturbations_ : list of str
    """

    #: the prediction is not an affine map of the expression
    is_linear = False

    def __init__(self, lineage_column: str = "lineage", min_samples: int = 3) -> None:
        self.lineage_column = lineage_column
        self.min_samples = min_samples

    def _lineages(self, samples: Any, index: pd.Index, where: str) -> np.ndarray:
        if samples is None:
            raise InputError(
                f"LineageMean.{where} needs the sample metadata (the lineage of each sample)",
                fix=f"pass samples=<table with a {self.lineage_column!r} column> "
                "(leapscreen evaluate does this from the screen's sample table)",
            )
        frame = pd.DataFrame(samples)
        if self.lineage_column not in frame.columns:
            raise InputError(
                f"the sample metadata has no {self.lineage_column!r} column "
                f"(columns: {', '.join(map(str, frame.columns)) or 'none'})",
                fix="give the lineage of each sample (e.g. --samples with a 'lineage' column)",
            )
        missing = index.difference(frame.index)
        if len(missing):
            raise InputError(
                f"the sample metadata lacks {len(missing)} sample(s), e.g. {missing[0]!r}",
                fix="give metadata for every sample of the expression table",
            )
        values = frame.loc[index, self.lineage_column]
        return np.asarray(values.astype("string").fillna(UNKNOWN), dtype=object)

    def fit(self, expression: Any, responses: Any, samples: Any = None, **_: Any) -> LineageMean:
        """Store the (lineage, perturbation) means of the training responses (NaN = missing).

        Parameters
        ----------
        expression : pandas.DataFrame
            Training samples x genes (only its index is used: the samples).
        responses : pandas.DataFrame
            Samples x perturbations, NaN = not measured.
        samples : pandas.DataFrame
            Sample metadata indexed by sample ID, with the lineage column.
        **_ :
            The other fit arguments of the models (``sources``, ``unlabelled_expression``, ...),
            ignored.

        Returns
        -------
        self
        """
        m = self.min_samples
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise InputError(
                f"LineageMean: min_samples must be an integer >= 1, got {self.min_samples!r}",
                fix="use min_samples=3",
            )
        Y = pd.DataFrame(responses)
        index = expression.index if isinstance(expression, pd.DataFrame) else Y.index
        Y = Y.loc[index] if not Y.index.equals(index) else Y
        lineage = self._lineages(samples, index, "fit")
        values = Y.to_numpy(np.float64)
        labelled = ~np.isnan(values)
        filled = np.where(labelled, values, 0.0)
        names, codes = np.unique(lineage, return_inverse=True)
        onehot = np.zeros((names.size, lineage.size))
        onehot[codes, np.arange(lineage.size)] = 1.0
        counts = onehot @ labelled
        with np.errstate(invalid="ignore", divide="ignore"):
            means = (onehot @ filled) / counts
            overall = filled.sum(axis=0) / labelled.sum(axis=0)
        means[counts < self.min_samples] = np.nan
        self.lineages_ = [str(n) for n in names]
        self.lineage_means_ = means
        self.lineage_counts_ = counts.astype(np.int64)
        self.overall_mean_ = overall
        self.perturbations_ = [str(c) for c in Y.columns]
        self.n_features_in_ = int(np.shape(expression)[1])
        return self

    def predict(self, expression: Any, samples: Any = None) -> pd.DataFrame:
        """The training mean of each sample's lineage (the overall mean for unseen lineages).

        Returns
        -------
        pandas.DataFrame
            Samples x perturbations.
        """
        check_is_fitted(self, "lineage_means_")
        index = (
            expression.index
            if isinstance(expression, pd.DataFrame)
            else pd.RangeIndex(len(expression))
        )
        lineage = self._lineages(samples, index, "predict")
        row = {name: i for i, name in enumerate(self.lineages_)}
        pred = np.tile(self.overall_mean_, (lineage.size, 1))
        for i, name in enumerate(lineage):
            k = row.get(str(name))
            if k is not None:
                own = self.lineage_means_[k]
                pred[i] = np.where(np.isnan(own), self.overall_mean_, own)
        return pd.DataFrame(pred.astype(np.float32), index=index, columns=self.perturbations_)

    def score(self, X: Any, y: Any, sample_weight: Any = None, samples: Any = None) -> float:
        """NaN-aware mean R^2 over perturbations."""
        pred = self.predict(X, samples=samples)
        return nan_r2(np.asarray(y, dtype=np.float64), pred.to_numpy(np.float64))
