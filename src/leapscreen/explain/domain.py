"""Applicability domain: how far a new sample lies from the samples a model was trained on.

The score of a sample is the mean Euclidean distance to its ``k`` nearest training samples in the
model's z-scored gene space (the space the model itself reads), turned into a percentile against
the same distance of every training sample to its ``k`` nearest *other* training samples (leave one
out). A held-out sample from the training distribution therefore gets a percentile that is roughly
uniform on [0, 1]; a percentile at or above ``threshold`` (default 0.99: farther than 99% of the
training samples are from their neighbours) means the model extrapolates. A lineage (tissue) absent
from training is flagged too, when the lineages are known.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_array, check_is_fitted

from leapscreen.errors import InputError

__all__ = [
    "ApplicabilityDomain",
    "UNKNOWN_LINEAGES",
    "normalise_lineages",
    "reconstruction_error",
]

#: lineage labels that mean "not known": never flagged as unseen
UNKNOWN_LINEAGES = frozenset({"", "unknown", "nan", "none", "na", "<unknown lineage>"})


def normalise_lineages(lineages: Any, n: int | None = None) -> np.ndarray | None:
    """Lineage labels as an object array of lower-case stripped strings; None for unknown ones.

    Parameters
    ----------
    lineages : sequence of str, pandas.Series, or None
    n : int, optional
        The number of samples the labels must match.
    """
    if lineages is None:
        return None
    values = list(lineages.tolist() if isinstance(lineages, (pd.Series, np.ndarray)) else lineages)
    if n is not None and len(values) != n:
        raise InputError(
            f"{len(values)} lineage labels for {n} samples",
            fix="give one lineage per sample (in the order of the expression rows)",
        )
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        text = "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip()
        out[i] = None if text.lower() in UNKNOWN_LINEAGES else text.lower()
    return out


class ApplicabilityDomain(BaseEstimator):
    """k-nearest-neighbour distance to the training samples, as a percentile of the training's own.

    Parameters
    ----------
    n_neighbors : int
        Neighbours averaged (fewer when the training set is smaller).
    threshold : float
        Percentile in (0, 1] at or above which a sample is flagged as extrapolating.

    Attributes
    ----------
    reference_ : numpy.ndarray of shape (n_train,)
        The training samples' leave-one-out mean distances to their neighbours, sorted.
    lineages_ : numpy.ndarray of str or None
        The known training lineages (lower case), sorted; None when none was given.
    n_neighbors_ : int
        Neighbours used.
    """

    def __init__(self, n_neighbors: int = 10, threshold: float = 0.99) -> None:
        self.n_neighbors = n_neighbors
        self.threshold = threshold

    def fit(self, X: np.ndarray, lineages: Sequence[str] | None = None) -> ApplicabilityDomain:
        """Index the training samples and compute their leave-one-out distances.

        Parameters
        ----------
        X : numpy.ndarray of shape (n_train, d)
            The training samples in the model's space (z-scored genes).
        lineages : sequence of str, optional
            The training samples' lineages.

        Returns
        -------
        ApplicabilityDomain
        """
        if not (0.0 < float(self.threshold) <= 1.0):
            raise InputError(
                f"threshold must lie in (0, 1], got {self.threshold!r}", fix="use e.g. 0.99"
            )
        if isinstance(self.n_neighbors, bool) or int(self.n_neighbors) < 1:
            raise InputError(
                f"n_neighbors must be an integer >= 1, got {self.n_neighbors!r}", fix="use e.g. 10"
            )
        X = check_array(X, dtype=np.float64)
        if X.shape[0] < 2:
            raise InputError("the applicability domain needs at least two training samples")
        self.n_neighbors_ = min(int(self.n_neighbors), X.shape[0] - 1)
        self.index_ = NearestNeighbors(n_neighbors=self.n_neighbors_ + 1).fit(X)
        dist, _ = self.index_.kneighbors(X)
        # the first neighbour of a training sample is itself (distance 0): left out
        self.reference_ = np.sort(dist[:, 1:].mean(axis=1))
        known = normalise_lineages(lineages, X.shape[0])
        seen = None if known is None else sorted({v for v in known if v is not None})
        self.lineages_ = np.asarray(seen, dtype=object) if seen else None
        return self

    def distance(self, X: np.ndarray) -> np.ndarray:
        """Mean distance of each sample to its ``n_neighbors_`` nearest training samples."""
        check_is_fitted(self, "reference_")
        X = check_array(X, dtype=np.float64)
        dist, _ = self.index_.kneighbors(X, n_neighbors=self.n_neighbors_)
        return dist.mean(axis=1)

    def percentile(self, distance: np.ndarray) -> np.ndarray:
        """Fraction of training samples whose leave-one-out distance is at most ``distance``."""
        check_is_fitted(self, "reference_")
        ref = self.reference_
        return np.searchsorted(ref, np.asarray(distance, dtype=np.float64), side="right") / len(ref)

    def assess(
        self,
        X: np.ndarray,
        lineages: Sequence[str] | None = None,
        index: Sequence[Any] | None = None,
    ) -> pd.DataFrame:
        """Per sample: distance, percentile, lineage seen or not, and whether it extrapolates.

        Parameters
        ----------
        X : numpy.ndarray of shape (n, d)
            New samples in the training space.
        lineages : sequence of str, optional
            Their lineages (unknown labels are not checked).
        index : sequence, optional
            Row labels of the result (the sample IDs).

        Returns
        -------
        pandas.DataFrame
            Columns ``domain_distance``, ``domain_percentile``, ``lineage_seen`` (True / False /
            NA when not known), ``extrapolates`` (bool) and ``domain_note`` (why, or "").
        """
        d = self.distance(X)
        pct = self.percentile(d)
        n = len(d)
        seen = pd.array([pd.NA] * n, dtype="boolean")
        given = normalise_lineages(lineages, n)
        if given is not None and self.lineages_ is not None:
            known = set(self.lineages_.tolist())
            seen = pd.array(
                [pd.NA if v is None else v in known for v in given.tolist()], dtype="boolean"
            )
        far = pct >= float(self.threshold)
        unseen = np.asarray(seen.fillna(True), dtype=bool) == False  # noqa: E712 - NA is not unseen
        notes = []
        for i in range(n):
            parts = []
            if far[i]:
                parts.append(f"farther from the training samples than {pct[i]:.1%} of them")
            if unseen[i]:
                parts.append(f"lineage '{given[i]}' absent from training")
            notes.append("; ".join(parts))
        return pd.DataFrame(
            {
                "domain_distance": d,
                "domain_percentile": pct,
                "lineage_seen": seen,
                "extrapolates": far | unseen,
                "domain_note": notes,
            },
            index=None if index is None else pd.Index(list(index), name="sample"),
        )


def reconstruction_error(representations: Sequence[Any], X: np.ndarray) -> np.ndarray | None:
    """Mean squared reconstruction error of each sample, averaged over the autoencoders.

    Parameters
    ----------
    representations : sequence of fitted representations
        Those with a ``reconstruct`` method are used (each object once); for a source-aligned one
        (``aligner_``) the reconstruction is compared with the aligned input of the primary source.
    X : numpy.ndarray of shape (n, d)
        Samples in the representations' input space (z-scored genes).

    Returns
    -------
    numpy.ndarray of shape (n,), or None when no representation reconstructs.
    """
    seen: set[int] = set()
    errors = []
    X = np.asarray(X, dtype=np.float32)
    for rep in representations:
        if id(rep) in seen or not callable(getattr(rep, "reconstruct", None)):
            continue
        seen.add(id(rep))
        target = X.astype(np.float64)
        aligner = getattr(rep, "aligner_", None)
        if aligner is not None:
            target = aligner.transform(target, np.full(len(X), rep.primary_source_, dtype=object))
        recon = np.asarray(rep.reconstruct(X), dtype=np.float64)
        errors.append(np.mean((recon - target) ** 2, axis=1))
    return np.mean(errors, axis=0) if errors else None
