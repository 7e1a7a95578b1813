"""Per-source alignment of pooled expression before representation learning.

Every method maps the samples of one source (data set, platform, batch) with a per-gene affine
map ``x_aligned = x * scale + shift``, so an aligned linear encoder stays affine per source.

- ``"standardize"``: each source's genes are z-scored with that source's own mean and standard
  deviation (ddof=0; zero-variance genes get scale 1), so every source has mean 0 / sd 1 per gene.
- ``"combat"``: ComBat location/scale correction (Johnson, Li & Rabinovic, Biostatistics 2007)
  without covariates: genes are standardised with the grand mean and the pooled within-source
  variance, per-source gene shifts (gamma) and variance ratios (delta) are shrunk with the
  parametric empirical Bayes priors (normal for gamma, inverse gamma for delta, fitted per source
  across genes by the method of moments), and removed. Output stays on the pooled scale.
  ``empirical_bayes=False`` gives the plain location/scale estimates (no shrinkage).
- ``"none"``: identity.

Unseen sources at transform time (rule): when the new source brings at least
``min_source_samples`` samples, its own statistics are used (``"standardize"``: its per-gene mean
and sd; ``"combat"``: its gamma/delta, estimated against the fitted pooled standardisation and
shrunk with priors fitted on its own genes). With fewer samples its statistics are too noisy, so the
reference is used instead: ``"standardize"`` applies the pooled statistics of all training samples,
``"combat"`` leaves the samples unchanged (no batch effect can be estimated; they are taken to be
on the pooled scale already). With ``"standardize"`` the same rule applies to training sources
smaller than ``min_source_samples``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from leapscreen.registry import register_component

logger = logging.getLogger(__name__)

#: Label given to every sample when no sources are passed.
DEFAULT_SOURCE = "default"

_METHODS = ("standardize", "combat", "none")
_STATE_FORMAT = "leapscreen.SourceAligner/1"


def _as_matrix(X: Any) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (samples x genes), got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinite values; impute them before alignment")
    return X


def as_labels(
    sources: Sequence[Any] | np.ndarray | None, n: int, default: str = DEFAULT_SOURCE
) -> np.ndarray:
    """Source labels as an object array of str (``default`` for all when none are given)."""
    if sources is None:
        return np.full(n, default, dtype=object)
    labels = np.asarray([str(s) for s in np.asarray(sources, dtype=object).ravel()], dtype=object)
    if labels.shape[0] != n:
        raise ValueError(f"sources has {labels.shape[0]} labels for {n} samples")
    return labels


def _std(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Standard deviation (ddof=0) with zero (or non-finite) entries replaced by 1."""
    sd = values.std(axis=axis)
    mean = np.abs(values.mean(axis=axis))
    return np.where(~np.isfinite(sd) | (sd <= 1e-12 * np.maximum(1.0, mean)), 1.0, sd)


def combat_shrink(
    gamma_hat: np.ndarray,
    delta_hat: np.ndarray | None,
    n: int,
    sum_z: np.ndarray,
    sum_z2: np.ndarray,
    *,
    max_iter: int = 1000,
    tol: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray]:
    """Parametric empirical Bayes estimates of one batch's gene shifts and variance ratios.

    Parameters
    ----------
    gamma_hat : np.ndarray, shape (d,)
        Per-gene mean of the standardised data in the batch.
    delta_hat : np.ndarray or None, shape (d,)
        Per-gene variance (ddof=1) of the standardised data in the batch; ``None`` for a batch of
        one sample (mean-only correction, delta = 1).
    n : int
        Number of samples in the batch.
    sum_z, sum_z2 : np.ndarray, shape (d,)
        Per-gene sums of the standardised values and of their squares over the batch.
    max_iter, tol : int, float
        Fixed-point iterations and relative convergence tolerance (as in Johnson et al. 2007).

    Returns
    -------
    gamma_star, delta_star : np.ndarray, shape (d,)
        Posterior estimates of the additive and multiplicative batch effects.
    """
    gamma_bar = float(gamma_hat.mean())
    tau2 = float(gamma_hat.var(ddof=1)) if gamma_hat.size > 1 else 0.0
    if delta_hat is None:
        gamma_star = (tau2 * n * gamma_hat + gamma_bar) / (tau2 * n + 1.0)
        return gamma_star, np.ones_like(gamma_hat)
    v = float(delta_hat.mean())
    s2 = float(delta_hat.var(ddof=1)) if delta_hat.size > 1 else 0.0
    if s2 <= 0.0 or v <= 0.0:
        # No spread in the variance estimates: no inverse-gamma prior can be fitted; keep them.
        gamma_star = (tau2 * n * gamma_hat + delta_hat * gamma_bar) / (tau2 * n + delta_hat)
        return gamma_star, np.maximum(delta_hat, 1e-12)
    a_prior = (2.0 * s2 + v * v) / s2
    b_prior = (v * s2 + v**3) / s2
    gamma_old = gamma_hat.copy()
    delta_old = np.maximum(delta_hat, 1e-12)
    for _ in range(max_iter):
        gamma_new = (tau2 * n * gamma_hat + delta_old * gamma_bar) / (tau2 * n + delta_old)
        sum2 = sum_z2 - 2.0 * gamma_new * sum_z + n * gamma_new**2
        delta_new = (0.5 * np.maximum(sum2, 0.0) + b_prior) / (n / 2.0 + a_prior - 1.0)
        change = max(
            float(np.max(np.abs(gamma_new - gamma_old) / np.maximum(np.abs(gamma_old), 1e-12))),
            float(np.max(np.abs(delta_new - delta_old) / delta_old)),
        )
        gamma_old, delta_old = gamma_new, delta_new
        if change < tol:
            break
    return gamma_old, delta_old


@register_component
class SourceAligner:
    """Align samples of several sources gene by gene (standardise per source or ComBat).

    Parameters
    ----------
    method : {"standardize", "combat", "none"}, default "standardize"
        Alignment; see the module docstring.
    min_source_samples : int, default 10
        Smallest number of samples of a source (unseen at transform time; or, for
        ``"standardize"``, any training source) whose own statistics are used; smaller ones get
        the reference map (see the module docstring).
    empirical_bayes : bool, default True
        ``"combat"`` only: shrink the per-source estimates (False: plain location/scale).
    max_iter, tol : int, float
        ``"combat"`` only: empirical Bayes fixed-point iterations and tolerance.

    Attributes
    ----------
    sources_ : list of str
        Training sources, in order of the rows of ``scale_`` and ``shift_``.
    n_samples_ : list of int
        Training samples per source.
    scale_, shift_ : np.ndarray, shape (n_sources, n_genes)
        Per-source affine maps, ``x_aligned = x * scale + shift``.
    ref_scale_, ref_shift_ : np.ndarray, shape (n_genes,)
        Map for samples of small unseen sources.
    grand_mean_, pooled_sd_ : np.ndarray, shape (n_genes,)
        ``"combat"`` only: the pooled standardisation (alpha, sigma of Johnson et al.).
    gamma_star_, delta_star_ : np.ndarray, shape (n_sources, n_genes)
        ``"combat"`` only: the fitted additive and multiplicative batch effects.
    """

    def __init__(
        self,
        method: str = "standardize",
        min_source_samples: int = 10,
        empirical_bayes: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
    ) -> None:
        self.method = method
        self.min_source_samples = min_source_samples
        self.empirical_bayes = empirical_bayes
        self.max_iter = max_iter
        self.tol = tol

    # ------------------------------------------------------------------ fitting
    def fit(
        self, X: np.ndarray, sources: Sequence[Any] | np.ndarray | None = None
    ) -> SourceAligner:
        """Estimate the per-source maps.

        Parameters
        ----------
        X : np.ndarray, shape (n_samples, n_genes)
            Pooled expression (finite values).
        sources : sequence, optional
            Source label of each sample (converted to str); all one source when omitted.

        Returns
        -------
        SourceAligner
            ``self``.
        """
        if self.method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {self.method!r}")
        if int(self.min_source_samples) < 2:
            raise ValueError("min_source_samples must be >= 2")
        X = _as_matrix(X)
        labels = as_labels(sources, X.shape[0])
        if X.shape[0] < 1:
            raise ValueError("X has no samples")
        names = list(dict.fromkeys(labels.tolist()))
        rows = {s: np.flatnonzero(labels == s) for s in names}
        d = X.shape[1]
        Xd = X.astype(np.float64, copy=False)

        self.sources_ = names
        self.n_samples_ = [int(rows[s].size) for s in names]
        self.n_features_in_ = d
        scale = np.ones((len(names), d))
        shift = np.zeros((len(names), d))

        if self.method == "none":
            self.ref_scale_, self.ref_shift_ = np.ones(d), np.zeros(d)
        elif self.method == "standardize":
            ref_mean = Xd.mean(axis=0)
            ref_sd = _std(Xd)
            self.ref_scale_, self.ref_shift_ = 1.0 / ref_sd, -ref_mean / ref_sd
            for k, s in enumerate(names):
                part = Xd[rows[s]]
                if part.shape[0] >= self.min_source_samples:
                    sd = _std(part)
                    scale[k], shift[k] = 1.0 / sd, -part.mean(axis=0) / sd
                else:
                    logger.info(
                        "source %r has %d sample(s) (< %d): using the pooled statistics",
                        s,
                        part.shape[0],
                        self.min_source_samples,
                    )
                    scale[k], shift[k] = self.ref_scale_, self.ref_shift_
        else:
            self._fit_combat(Xd, names, rows, scale, shift)
        self.scale_, self.shift_ = scale, shift
        return self

    def _fit_combat(
        self,
        X: np.ndarray,
        names: list[str],
        rows: dict[str, np.ndarray],
        scale: np.ndarray,
        shift: np.ndarray,
    ) -> None:
        n_total, d = X.shape
        means = np.stack([X[rows[s]].mean(axis=0) for s in names])
        counts = np.array([rows[s].size for s in names], dtype=np.float64)
        alpha = counts @ means / n_total
        resid2 = np.zeros(d)
        for k, s in enumerate(names):
            resid2 += ((X[rows[s]] - means[k]) ** 2).sum(axis=0)
        sigma = np.sqrt(resid2 / n_total)
        sigma = np.where(sigma <= 1e-12 * np.maximum(1.0, np.abs(alpha)), 1.0, sigma)
        self.grand_mean_, self.pooled_sd_ = alpha, sigma
        self.ref_scale_, self.ref_shift_ = np.ones(d), np.zeros(d)
        gammas = np.zeros((len(names), d))
        deltas = np.ones((len(names), d))
        for k, s in enumerate(names):
            gammas[k], deltas[k] = self._combat_batch(X[rows[s]])
            scale[k], shift[k] = self._combat_affine(gammas[k], deltas[k])
        self.gamma_star_, self.delta_star_ = gammas, deltas

    def _combat_batch(self, part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gamma*, delta* of one batch against the fitted pooled standardisation."""
        z = (part - self.grand_mean_) / self.pooled_sd_
        n = z.shape[0]
        gamma_hat = z.mean(axis=0)
        delta_hat = z.var(axis=0, ddof=1) if n > 1 else None
        if not self.empirical_bayes:
            if delta_hat is None:
                return gamma_hat, np.ones_like(gamma_hat)
            return gamma_hat, np.where(delta_hat <= 1e-12, 1.0, delta_hat)
        return combat_shrink(
            gamma_hat,
            delta_hat,
            n,
            z.sum(axis=0),
            (z * z).sum(axis=0),
            max_iter=self.max_iter,
            tol=self.tol,
        )

    def _combat_affine(self, gamma: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # y* = sigma (z - gamma) / sqrt(delta) + alpha with z = (y - alpha) / sigma
        root = np.sqrt(delta)
        return 1.0 / root, self.grand_mean_ - (self.grand_mean_ + self.pooled_sd_ * gamma) / root

    def fit_transform(
        self, X: np.ndarray, sources: Sequence[Any] | np.ndarray | None = None
    ) -> np.ndarray:
        """Fit on ``X`` and return it aligned."""
        return self.fit(X, sources).transform(X, sources)

    # ------------------------------------------------------------------ transforming
    def _check_fitted(self) -> None:
        if not hasattr(self, "scale_"):
            raise RuntimeError("this SourceAligner is not fitted yet; call fit() first")

    def _default_labels(self, sources: Any, n: int) -> np.ndarray:
        if sources is None:
            if len(self.sources_) != 1:
                raise ValueError(
                    f"the aligner was fitted on {len(self.sources_)} sources; pass the source "
                    "label of each sample"
                )
            return np.full(n, self.sources_[0], dtype=object)
        return as_labels(sources, n)

    def affine(self, source: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The per-gene map ``x_aligned = x * scale + shift`` of a fitted source.

        Parameters
        ----------
        source : str, optional
            A training source; omitted: the only one (error if several). An unseen name gives
            the reference map (what a small unseen source gets).

        Returns
        -------
        scale, shift : np.ndarray of float64, shape (n_genes,)
        """
        self._check_fitted()
        if source is None:
            source = self._default_labels(None, 1)[0]
        source = str(source)
        if source in self.sources_:
            k = self.sources_.index(source)
            return self.scale_[k].copy(), self.shift_[k].copy()
        return self.ref_scale_.copy(), self.ref_shift_.copy()

    def transform(
        self, X: np.ndarray, sources: Sequence[Any] | np.ndarray | None = None
    ) -> np.ndarray:
        """Align samples with their source's map (unseen sources: see the module docstring).

        Parameters
        ----------
        X : np.ndarray, shape (n_samples, n_genes)
        sources : sequence, optional
            Source label of each sample; may be omitted when one source was fitted.

        Returns
        -------
        np.ndarray, shape (n_samples, n_genes)
            Float array of the input's float dtype (float64 for integer input).
        """
        self._check_fitted()
        X = _as_matrix(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} genes, the aligner was fitted on {self.n_features_in_}"
            )
        labels = self._default_labels(sources, X.shape[0])
        out = np.empty(X.shape, dtype=np.float64)
        for s in dict.fromkeys(labels.tolist()):
            idx = np.flatnonzero(labels == s)
            part = X[idx].astype(np.float64, copy=False)
            scale, shift = self._unseen_or_known(s, part)
            out[idx] = part * scale + shift
        return out.astype(X.dtype, copy=False)

    def _unseen_or_known(self, source: str, part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if source in self.sources_ or self.method == "none":
            return self.affine(source)
        if part.shape[0] < self.min_source_samples:
            logger.info(
                "unseen source %r with %d sample(s) (< %d): using the reference map",
                source,
                part.shape[0],
                self.min_source_samples,
            )
            return self.ref_scale_, self.ref_shift_
        if self.method == "standardize":
            sd = _std(part)
            return 1.0 / sd, -part.mean(axis=0) / sd
        gamma, delta = self._combat_batch(part)
        return self._combat_affine(gamma, delta)

    # ------------------------------------------------------------------ persistence
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able parameters and numpy arrays from which :meth:`from_state` rebuilds this."""
        self._check_fitted()
        params = {
            "format": _STATE_FORMAT,
            "method": self.method,
            "min_source_samples": int(self.min_source_samples),
            "empirical_bayes": bool(self.empirical_bayes),
            "max_iter": int(self.max_iter),
            "tol": float(self.tol),
            "sources_": list(self.sources_),
            "n_samples_": list(self.n_samples_),
            "n_features_in_": int(self.n_features_in_),
        }
        arrays = {
            "scale": self.scale_,
            "shift": self.shift_,
            "ref_scale": self.ref_scale_,
            "ref_shift": self.ref_shift_,
        }
        if self.method == "combat":
            arrays.update(
                grand_mean=self.grand_mean_,
                pooled_sd=self.pooled_sd_,
                gamma_star=self.gamma_star_,
                delta_star=self.delta_star_,
            )
        return params, {k: np.array(v, copy=True) for k, v in arrays.items()}

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> SourceAligner:
        """Rebuild a fitted :class:`SourceAligner` from :meth:`get_state` output."""
        if params.get("format") != _STATE_FORMAT:
            raise ValueError(f"not a SourceAligner state (format {params.get('format')!r})")
        obj = cls(
            method=params["method"],
            min_source_samples=params["min_source_samples"],
            empirical_bayes=params["empirical_bayes"],
            max_iter=params["max_iter"],
            tol=params["tol"],
        )
        obj.sources_ = list(params["sources_"])
        obj.n_samples_ = list(params["n_samples_"])
        obj.n_features_in_ = int(params["n_features_in_"])
        obj.scale_ = np.asarray(arrays["scale"], dtype=np.float64)
        obj.shift_ = np.asarray(arrays["shift"], dtype=np.float64)
        obj.ref_scale_ = np.asarray(arrays["ref_scale"], dtype=np.float64)
        obj.ref_shift_ = np.asarray(arrays["ref_shift"], dtype=np.float64)
        if obj.method == "combat":
            obj.grand_mean_ = np.asarray(arrays["grand_mean"], dtype=np.float64)
            obj.pooled_sd_ = np.asarray(arrays["pooled_sd"], dtype=np.float64)
            obj.gamma_star_ = np.asarray(arrays["gamma_star"], dtype=np.float64)
            obj.delta_star_ = np.asarray(arrays["delta_star"], dtype=np.float64)
        if obj.scale_.shape != (len(obj.sources_), obj.n_features_in_):
            raise ValueError("SourceAligner state arrays do not match its sources and genes")
        return obj


__all__ = ["DEFAULT_SOURCE", "SourceAligner", "combat_shrink"]
