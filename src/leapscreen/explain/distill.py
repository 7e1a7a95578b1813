"""Distillation: a sparse linear student of any model's predictions, with its fidelity.

:func:`distill` takes the teacher's predictions over a large set of samples (the training samples
plus any unlabelled expression), splits the samples once into a fit part and a held-out part
(``holdout``, seeded), and for every perturbation

1. runs calibrated stability selection (:func:`~leapscreen.explain.stability.stability_selection`)
   of the teacher's predictions on the features, on the fit part only;
2. fits the *student*: an ordinary least-squares refit of the teacher on the stably selected
   features (standardised with the fit part's mean and sd), on the fit part (minimum-norm
   least squares where the features are collinear). The refit is chosen over the LASSO at the
   chosen penalty because the LASSO's shrinkage would lower fidelity and make the contributions
   depend on the penalty; the selection itself is the stability selection's;
3. scores the student's *fidelity*: the Pearson correlation between student and teacher on the
   held-out part (NaN when nothing is selected or the teacher is constant there).

No held-out sample enters the selection or the refit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from leapscreen.errors import InputError
from leapscreen.explain.stability import StabilityResult, stability_selection

__all__ = ["FEATURE_KINDS", "Distillation", "distill"]

FEATURE_KINDS = ("genes", "pathways (mean z-score)", "pathways (PCA score)")


@dataclass(repr=False)
class Distillation:
    """A distilled sparse student of a teacher's predictions (one per perturbation).

    Attributes
    ----------
    features : list of str
        The F feature names (genes or pathways).
    perturbations : list of str
        The P perturbations.
    feature_kind : str
        One of :data:`FEATURE_KINDS`.
    stability : list of StabilityResult
        One per perturbation (fitted on the fit part).
    fidelity : numpy.ndarray
        (P,) Pearson r of student vs teacher on the held-out samples.
    student_coef : numpy.ndarray
        (F, P) the student's coefficients on the standardised features (zero where not selected).
    student_intercept : numpy.ndarray
        (P,)
    feature_mean, feature_scale : numpy.ndarray
        (F,) the standardisation of the features (fit part).
    fit_index, holdout_index : numpy.ndarray
        Row positions of the fit and held-out samples.
    """

    features: list[str]
    perturbations: list[str]
    feature_kind: str
    stability: list[StabilityResult]
    fidelity: np.ndarray
    student_coef: np.ndarray
    student_intercept: np.ndarray
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    fit_index: np.ndarray | None = None
    holdout_index: np.ndarray | None = None

    def __repr__(self) -> str:
        return (
            f"Distillation(features={len(self.features)}, perturbations={len(self.perturbations)}, "
            f"feature_kind={self.feature_kind!r}, "
            f"median_fidelity={np.nanmedian(self.fidelity) if self.fidelity.size else np.nan:.3f})"
        )

    def _column(self, perturbation: int | str) -> int:
        if isinstance(perturbation, str):
            try:
                return self.perturbations.index(perturbation)
            except ValueError:
                raise InputError(
                    f"unknown perturbation {perturbation!r}",
                    fix="use one of Distillation.perturbations",
                ) from None
        j = int(perturbation)
        if not 0 <= j < len(self.perturbations):
            raise InputError(
                f"perturbation index {j} out of range (0..{len(self.perturbations) - 1})",
                fix="pass a valid column index",
            )
        return j

    def standardise(self, X: np.ndarray) -> np.ndarray:
        """Features standardised as the student sees them: ``(X - mean) / scale``."""
        return (np.asarray(X, dtype=np.float64) - self.feature_mean) / self.feature_scale

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The student's predictions, (n, P)."""
        return self.standardise(np.atleast_2d(X)) @ self.student_coef + self.student_intercept

    def contributions(self, x_row: np.ndarray, j: int | str) -> np.ndarray:
        """One sample's push per feature on the student's prediction of perturbation ``j``.

        ``student_coef[:, j] * (x_row - feature_mean) / feature_scale``; they sum to the
        student's prediction minus its intercept.

        Parameters
        ----------
        x_row : numpy.ndarray
            (F,) the sample's features (same scale as the ``X`` given to :func:`distill`).
        j : int or str
            Perturbation index or name.

        Returns
        -------
        numpy.ndarray
            (F,) contributions (zero for features the student does not use).
        """
        col = self._column(j)
        x = np.asarray(x_row, dtype=np.float64).ravel()
        if x.size != self.feature_mean.size:
            raise InputError(
                f"x_row has {x.size} features, the student has {self.feature_mean.size}",
                fix="pass the sample's features in the order of Distillation.features",
            )
        return self.student_coef[:, col] * self.standardise(x)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / den) if den > 0 else float("nan")


def distill(
    X: np.ndarray,
    teacher: np.ndarray,
    *,
    features: Sequence[str],
    perturbations: Sequence[str],
    feature_kind: str = "genes",
    holdout: float = 0.25,
    n_subsamples: int = 100,
    n_penalties: int = 50,
    random_state: int = 0,
    **stability_options,
) -> Distillation:
    """Distil a teacher's predictions into sparse linear students, one per perturbation.

    Parameters
    ----------
    X : array-like
        (n, F) the samples to distil over (training + extra), on the features the explanation
        uses (e.g. the model's preprocessed genes, or pathway scores).
    teacher : array-like
        (n, P) the teacher's predictions for those samples (NaN entries are left out of that
        perturbation's fit).
    features, perturbations : sequence of str
        Names of the F columns of ``X`` and of the P columns of ``teacher``.
    feature_kind : str, default "genes"
        One of :data:`FEATURE_KINDS` (recorded for the report).
    holdout : float, default 0.25
        Fraction of samples held out to measure fidelity.
    n_subsamples, n_penalties : int
        Passed to :func:`~leapscreen.explain.stability.stability_selection`.
    random_state : int, default 0
        Seed of the split and of the subsamples.
    **stability_options
        Further options of :func:`~leapscreen.explain.stability.stability_selection`
        (``thresholds``, ``pfer_max``, ``penalty_ratio``).

    Returns
    -------
    Distillation
    """
    X = np.asarray(X, dtype=np.float64)
    T = np.asarray(teacher, dtype=np.float64)
    if T.ndim == 1:
        T = T[:, None]
    features = [str(f) for f in features]
    perturbations = [str(p) for p in perturbations]
    if X.ndim != 2 or X.shape[0] != T.shape[0]:
        raise InputError(
            f"X {X.shape} and teacher {T.shape} must have the same rows",
            fix="pass the teacher's predictions for the rows of X",
        )
    if len(features) != X.shape[1] or len(perturbations) != T.shape[1]:
        raise InputError(
            f"got {len(features)} feature and {len(perturbations)} perturbation names for "
            f"X {X.shape} and teacher {T.shape}",
            fix="pass one name per column",
        )
    if feature_kind not in FEATURE_KINDS:
        raise InputError(
            f"feature_kind must be one of {FEATURE_KINDS}, got {feature_kind!r}",
            fix="pass feature_kind='genes'",
        )
    if not 0.0 < holdout < 1.0:
        raise InputError(f"holdout must be in (0, 1), got {holdout!r}", fix="pass 0.25")
    n = X.shape[0]
    n_hold = int(round(holdout * n))
    if n_hold < 3 or n - n_hold < 12:
        raise InputError(
            f"{n} samples are too few to distil with holdout={holdout}",
            fix="pass more samples (training plus unlabelled expression)",
        )
    rng = np.random.default_rng(random_state)
    perm = rng.permutation(n)
    hold = np.sort(perm[:n_hold])
    fit = np.sort(perm[n_hold:])

    Xf = X[fit]
    mean = Xf.mean(axis=0)
    sd = Xf.std(axis=0)
    scale = np.where(sd > 0, sd, 1.0)
    Zf = (Xf - mean) / scale
    Zh = (X[hold] - mean) / scale

    stab = stability_selection(
        Zf,
        T[fit],
        n_subsamples=n_subsamples,
        n_penalties=n_penalties,
        random_state=random_state,
        **stability_options,
    )
    F, P = X.shape[1], T.shape[1]
    coef = np.zeros((F, P))
    intercept = np.zeros(P)
    fidelity = np.full(P, np.nan)
    for j, res in enumerate(stab):
        lab = ~np.isnan(T[fit, j])
        t = T[fit, j][lab]
        sel = np.flatnonzero(res.selected)
        intercept[j] = t.mean()
        if sel.size:
            A = Zf[lab][:, sel]
            a_mean = A.mean(axis=0)
            beta, *_ = np.linalg.lstsq(A - a_mean, t - t.mean(), rcond=None)
            coef[sel, j] = beta
            intercept[j] = t.mean() - a_mean @ beta
            hl = ~np.isnan(T[hold, j])
            if hl.sum() >= 3:
                pred = Zh[hl] @ coef[:, j] + intercept[j]
                fidelity[j] = _pearson(pred, T[hold, j][hl])
    return Distillation(
        features=features,
        perturbations=perturbations,
        feature_kind=feature_kind,
        stability=stab,
        fidelity=fidelity,
        student_coef=coef,
        student_intercept=intercept,
        feature_mean=mean,
        feature_scale=scale,
        fit_index=fit,
        holdout_index=hold,
    )
