"""Steps 5-6 of ``simulate_screen``: rescaled responses with noise, and which are missing.

:func:`simulate_responses` rescales each perturbation's raw signal to its target mean and sd (the
noise-free ``Y*``), adds noise and blanks the entries of :func:`missing_mask`;
:func:`planted_coefficients` gives the coefficients on the stored scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from leapscreen.data.simulate._constants import _RESP_BLOCK
from leapscreen.data.simulate.drivers import Drivers, PerturbationTypes

__all__ = ["Responses", "missing_mask", "planted_coefficients", "simulate_responses"]


@dataclass
class Responses:
    """Noise-free and observed responses (samples x perturbations), scale ``f_p``, intercepts."""

    noise_free: np.ndarray
    observed: np.ndarray
    scale: np.ndarray
    intercept: np.ndarray


def missing_mask(
    rng: np.random.Generator,
    n: int,
    n_perturbations: int,
    frac_missing: float,
    block_missing: bool,
) -> np.ndarray:
    """Boolean samples x perturbations mask (True = missing); each column keeps one sample."""
    if frac_missing == 0.0:
        return np.zeros((n, n_perturbations), dtype=bool)
    if block_missing:
        conc = 5.0
        q = rng.beta(conc * frac_missing, conc * (1.0 - frac_missing), n_perturbations)
        k = np.minimum(np.rint(q * n).astype(np.int64), n - 1)
        start = rng.integers(0, n, n_perturbations)
        rank = np.empty(n, dtype=np.int64)
        rank[rng.permutation(n)] = np.arange(n)
        return ((rank[:, None] - start[None, :]) % n) < k[None, :]
    mask = np.empty((n, n_perturbations), dtype=bool)
    for start in range(0, n_perturbations, _RESP_BLOCK):
        stop = min(start + _RESP_BLOCK, n_perturbations)
        u = rng.random((n, stop - start), dtype=np.float32)
        block = u < frac_missing
        full = np.flatnonzero(block.all(axis=0))
        if full.size:  # keep at least one measured sample: the one with the largest draw
            block[np.argmax(u[:, full], axis=0), full] = False
        mask[:, start:stop] = block
    return mask


def simulate_responses(
    rng: np.random.Generator,
    X: np.ndarray,
    activity: np.ndarray,
    lineage: np.ndarray,
    drivers: Drivers,
    types: PerturbationTypes,
    noise: float,
    mask: np.ndarray,
) -> Responses:
    """``Y* = alpha + X beta + A gamma + delta_l``, then ``Y = Y* + tau z`` with NaN where masked."""
    n = X.shape[0]
    n_prog = activity.shape[1]
    n_pert = types.target_mean.shape[0]
    target_mean, target_sd = types.target_mean, types.target_sd
    b_raw, c_raw, e_raw = drivers.b_raw, drivers.c_raw, drivers.e_raw
    noise_free = np.empty((n, n_pert), dtype=np.float32)
    observed = np.empty((n, n_pert), dtype=np.float32)
    scale = np.zeros(n_pert)
    intercept = target_mean.copy()
    used_genes = np.unique(b_raw.indices)
    X_used = X[:, used_genes].astype(np.float64)
    b_used = b_raw[used_genes, :].tocsc()
    activity64 = activity.astype(np.float64)
    for start in range(0, n_pert, _RESP_BLOCK):
        stop = min(start + _RESP_BLOCK, n_pert)
        sl = slice(start, stop)
        raw = np.asarray((b_used[:, sl].T @ X_used.T).T)
        if n_prog:
            raw += activity64 @ c_raw[:, sl]
        raw += e_raw[lineage, sl]
        sd = raw.std(axis=0)
        f = np.divide(target_sd[sl], sd, out=np.zeros(stop - start), where=sd > 1e-12)
        center = raw.mean(axis=0)
        scale[sl] = f
        intercept[sl] = target_mean[sl] - f * center
        y_star = target_mean[sl] + f * (raw - center)
        noise_free[:, sl] = y_star
        y_star += (noise * target_sd[sl]) * rng.standard_normal((n, stop - start), dtype=np.float32)
        y_star[mask[:, sl]] = np.nan
        observed[:, sl] = y_star
    return Responses(noise_free, observed, scale, intercept)


def planted_coefficients(
    drivers: Drivers, scale: np.ndarray
) -> tuple[sp.csc_matrix, np.ndarray, np.ndarray]:
    """``beta = f b`` (sparse, explicit zeros removed), ``gamma = f c`` and ``delta = f e``."""
    coef = drivers.b_raw.copy()
    coef.data = coef.data * np.repeat(scale, np.diff(coef.indptr))
    coef.eliminate_zeros()
    return coef, drivers.c_raw * scale, drivers.e_raw * scale
