"""Per-prediction intervals: conformal calibration on the out-of-fold residuals of LEAP's heads.

Every head of a LEAP member predicts each training row once by a fold model that did not see it
(:meth:`leapscreen.base.BaseHead.out_of_fold_predictions`). Combined across members exactly as the
ensemble combines its predictions, they give one out-of-fold prediction ``oof[i, j]`` per labelled
(sample, perturbation) pair, and so a conformity score per pair:

* absolute: ``|y - oof|``;
* normalised by the ensemble's spread (only with >= 2 members): ``|y - oof| / sigma`` with
  ``sigma = spread + median(spread)``, where ``spread`` is the (weighted) standard deviation of the
  members' predictions of the row - on the training rows for the calibration, on the new samples
  for their intervals - and the median is over the perturbation's labelled training rows (a floor,
  so that members that happen to agree do not give a zero-width interval). The spread of the
  members' *out-of-fold* predictions is not used: fold models differ about twice as much as the
  full members do on new samples, and normalising by it undercovers by 5-10 points.

Absolute scores are the default, and the only kind ``leapscreen predict --intervals`` writes: on
simulated screens both kinds cover nominally, but on held-out GDSC2 lines (``leap-ridges``, 3 splits,
``benchmarks/intervals_coverage.py``) the absolute intervals cover 0.792 / 0.895 / 0.948 at
0.8 / 0.9 / 0.95, while the spread-normalised ones cover only 0.724 / 0.841 / 0.909 (there the
members agree more on their own training rows than on new lines) at hardly smaller widths. The
members' spread is not exchangeable between training rows and new samples in general; use
``normalize=True`` only where its coverage was checked.

For a new sample and perturbation ``j`` the interval at coverage ``c`` is ``pred +/- q_j * sigma``
where ``q_j`` is the ``ceil((n_j + 1) c)``-th smallest of the ``n_j`` scores of ``j``'s labelled
training rows (the finite-sample split-conformal quantile; infinite when ``ceil((n_j + 1) c) > n_j``).
Quantiles are per perturbation: a Mondrian conformal regressor with the perturbation as category,
computed by :class:`crepes.ConformalRegressor`.

Caveat: the preprocessing (gene selection, z-scoring) and the representations are fitted on all
training rows, labels never; only the heads are cross-fitted. The out-of-fold residuals may therefore
be slightly optimistic; ``benchmarks/intervals_coverage.py`` measures the coverage on held-out lines.
What is saved is :class:`ConformalCalibration` (arrays only): any coverage can be asked of a loaded
model.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from leapscreen.errors import InputError

__all__ = [
    "ConformalCalibration",
    "calibrate",
    "check_coverage",
    "conformal_quantiles",
    "intervals",
    "weighted_spread",
]

#: spread normalisation when the caller does not choose (see benchmarks/intervals_coverage.py)
DEFAULT_NORMALIZE = False


@dataclass
class ConformalCalibration:
    """What the intervals of a fitted model are computed from (saved with the model).

    Attributes
    ----------
    residuals : numpy.ndarray of shape (n_train, p)
        ``y - oof`` of the training rows; NaN where the row is not labelled for the perturbation
        (or no out-of-fold prediction exists).
    sigmas : numpy.ndarray of shape (n_train, p) or None
        The normalisation ``spread + offset`` of each training row (None: fewer than two members).
    offset : numpy.ndarray of shape (p,) or None
        The floor added to the spread: the median out-of-fold spread of the perturbation's labelled
        rows. NaN where it is zero (the members agree everywhere): that perturbation is not
        normalised (sigma = 1).
    """

    residuals: np.ndarray
    sigmas: np.ndarray | None = None
    offset: np.ndarray | None = None

    @property
    def n_labelled(self) -> np.ndarray:
        """Calibration rows per perturbation, shape (p,)."""
        return np.sum(np.isfinite(self.residuals), axis=0)

    @property
    def can_normalize(self) -> bool:
        """Whether spread-normalised intervals are available (>= 2 members)."""
        return self.sigmas is not None and self.offset is not None

    def check(self, n_train: int, n_perturbations: int) -> str | None:
        """What is wrong with the arrays' shapes (a damaged model), or None."""
        if np.shape(self.residuals) != (n_train, n_perturbations):
            return f"conformal residuals of shape {np.shape(self.residuals)}"
        if self.sigmas is not None and np.shape(self.sigmas) != np.shape(self.residuals):
            return f"conformal sigmas of shape {np.shape(self.sigmas)}"
        if self.offset is not None and np.shape(self.offset) != (n_perturbations,):
            return f"conformal offsets of shape {np.shape(self.offset)}"
        return None


def weighted_spread(predictions: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted standard deviation across members.

    Parameters
    ----------
    predictions : numpy.ndarray of shape (m, n, p)
        Each member's predictions.
    weights : numpy.ndarray of shape (m, p)
        Each member's weight per perturbation (as the ensemble combines them); normalised here.

    Returns
    -------
    numpy.ndarray of shape (n, p)
    """
    P = np.asarray(predictions, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum(axis=0)
    w = w / np.where(total > 0, total, 1.0)
    mean = np.einsum("mp,mnp->np", w, P)
    var = np.einsum("mp,mnp->np", w, (P - mean[None]) ** 2)
    return np.sqrt(np.maximum(var, 0.0))


def calibrate(
    Y: np.ndarray, oof: np.ndarray, spread: np.ndarray | None = None
) -> ConformalCalibration:
    """The calibration of a fitted ensemble from its out-of-fold predictions.

    Parameters
    ----------
    Y : numpy.ndarray of shape (n, p)
        Training responses, NaN = not measured.
    oof : numpy.ndarray of shape (n, p)
        The ensemble's out-of-fold predictions of the training rows (combined over members).
    spread : numpy.ndarray of shape (n, p), optional
        The members' spread of their predictions of the training rows (:func:`weighted_spread`);
        None with one member.

    Returns
    -------
    ConformalCalibration
    """
    Y = np.asarray(Y, dtype=np.float64)
    oof = np.asarray(oof, dtype=np.float64)
    if Y.shape != oof.shape:
        raise ValueError(f"responses {Y.shape} and out-of-fold predictions {oof.shape} differ")
    residuals = Y - oof
    residuals[~np.isfinite(residuals)] = np.nan
    if spread is None:
        return ConformalCalibration(residuals)
    spread = np.asarray(spread, dtype=np.float64)
    labelled = np.isfinite(residuals)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        offset = np.nanmedian(np.where(labelled, spread, np.nan), axis=0)
    offset[~(np.isfinite(offset) & (offset > 0))] = np.nan
    return ConformalCalibration(residuals, _sigmas(spread, offset), offset)


def _sigmas(spread: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """``spread + offset`` per column; 1 in the columns without an offset (not normalised)."""
    spread = np.where(np.isfinite(spread), spread, 0.0)
    return np.where(np.isfinite(offset)[None, :], spread + np.nan_to_num(offset)[None, :], 1.0)


def check_coverage(coverage: float, option: str = "coverage") -> float:
    """``coverage`` as a float in (0, 1), else :class:`InputError` naming ``option``."""
    try:
        value = float(coverage)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(coverage, bool) or not (0.0 < value < 1.0):
        raise InputError(
            f"{option} must be a fraction strictly between 0 and 1, got {coverage!r}",
            fix=f"use e.g. {option} 0.9 for 90% intervals",
        )
    return value


def _regressor(calibration: ConformalCalibration, normalize: bool):  # noqa: ANN202 - crepes
    from crepes import ConformalRegressor

    res = calibration.residuals
    rows, cols = np.nonzero(np.isfinite(res))
    sigmas = calibration.sigmas[rows, cols] if normalize else None
    return ConformalRegressor().fit(res[rows, cols], sigmas=sigmas, bins=cols), cols


def conformal_quantiles(
    calibration: ConformalCalibration, coverage: float, normalize: bool = DEFAULT_NORMALIZE
) -> np.ndarray:
    """The conformal quantile ``q_j`` of every perturbation (inf: too few calibration rows).

    Parameters
    ----------
    calibration : ConformalCalibration
    coverage : float
        Nominal coverage in (0, 1).
    normalize : bool
        Quantiles of the spread-normalised scores (needs ``calibration.can_normalize``).

    Returns
    -------
    numpy.ndarray of shape (p,)
        Half-widths for a unit sigma: the interval of perturbation ``j`` is ``pred +/- q_j * sigma``.
    """
    coverage = check_coverage(coverage)
    normalize = _check_normalize(calibration, normalize)
    p = calibration.residuals.shape[1]
    q = np.full(p, np.inf)
    if not np.isfinite(calibration.residuals).any():
        return q
    regressor, cols = _regressor(calibration, normalize)
    present = np.unique(cols)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # too few rows: inf, reported by the caller
        half = regressor.predict_int(
            np.zeros(len(present)),
            sigmas=np.ones(len(present)) if normalize else None,
            bins=present,
            # crepes takes the int((1 - c)(n + 1))-th largest score; a hair below c keeps that
            # integer exact where (1 - c)(n + 1) is a whole number (0.1 * 10 = 0.99999...)
            confidence=coverage - 1e-12,
        )
    q[present] = half[:, 1]
    return q


def _check_normalize(calibration: ConformalCalibration, normalize: bool) -> bool:
    if normalize and not calibration.can_normalize:
        raise InputError(
            "spread-normalised intervals need an ensemble of at least two members",
            fix="leave out the spread normalisation (normalize=False; no --spread)",
        )
    return bool(normalize)


def intervals(
    calibration: ConformalCalibration,
    pred: np.ndarray,
    coverage: float,
    spread: np.ndarray | None = None,
    normalize: bool = DEFAULT_NORMALIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the predictions ``pred`` at ``coverage``.

    Parameters
    ----------
    calibration : ConformalCalibration
    pred : numpy.ndarray of shape (n, p)
        The ensemble's predictions of new samples.
    coverage : float
        Nominal coverage in (0, 1).
    spread : numpy.ndarray of shape (n, p), optional
        The members' spread of these predictions (needed when ``normalize``).
    normalize : bool
        Scale the half-width by ``spread + offset`` (see the module docstring).

    Returns
    -------
    lower, upper : numpy.ndarray of shape (n, p)
        ``-inf`` / ``inf`` for perturbations with too few calibration rows for ``coverage``.
    """
    pred = np.asarray(pred, dtype=np.float64)
    q = conformal_quantiles(calibration, coverage, normalize)
    half = np.broadcast_to(q, pred.shape)
    if _check_normalize(calibration, normalize):
        if spread is None or np.shape(spread) != pred.shape:
            raise ValueError("normalised intervals need the members' spread of the predictions")
        sig = _sigmas(np.asarray(spread, dtype=np.float64), calibration.offset)
        with np.errstate(invalid="ignore"):
            half = np.where(np.isinf(half), np.inf, half * sig)
    return pred - half, pred + half
