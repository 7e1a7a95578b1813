"""Step 4 of ``simulate_screen``: perturbation types, response targets and the planted drivers.

:func:`perturbation_types` draws which perturbations are common essential / null and their target
mean and signal sd; :func:`draw_drivers` the raw driver coefficients on genes ``b``, programmes
``c`` and lineages ``e`` (rescaled to the targets in :mod:`.responses`). Both draw from the
perturbation stream, in this order, so the output of a seed never changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from leapscreen.data.simulate._constants import _SCALES

__all__ = ["Drivers", "PerturbationTypes", "draw_drivers", "perturbation_types"]


@dataclass
class PerturbationTypes:
    """Per perturbation: common essential, null (no driver), target mean and signal sd."""

    common_essential: np.ndarray
    null: np.ndarray
    target_mean: np.ndarray
    target_sd: np.ndarray


@dataclass
class Drivers:
    """Raw (not yet rescaled) driver coefficients: genes x P (sparse), K x P and L x P."""

    b_raw: sp.csc_matrix
    c_raw: np.ndarray
    e_raw: np.ndarray


def _draw_distinct(rng: np.random.Generator, n_rows: int, n_choices: int, high: int) -> np.ndarray:
    """``n_rows`` x ``n_choices`` integers in [0, high), distinct within each row."""
    n_choices = min(n_choices, high)
    idx = rng.integers(0, high, size=(n_rows, n_choices))
    if n_choices > 1:
        srt = np.sort(idx, axis=1)
        bad = np.flatnonzero((np.diff(srt, axis=1) == 0).any(axis=1))
        for r in bad:
            idx[r] = rng.choice(high, size=n_choices, replace=False)
    return idx


def _signed_uniform(rng: np.random.Generator, size: Any, low: float, high: float) -> np.ndarray:
    sign = np.where(rng.random(size) < 0.5, -1.0, 1.0)
    return sign * rng.uniform(low, high, size)


def perturbation_types(
    rng: np.random.Generator, n_pert: int, kind: str, frac_ce: float, frac_null: float
) -> PerturbationTypes:
    """Common-essential and null flags, then target means and signal sds (see ``_SCALES``)."""
    ce = rng.random(n_pert) < frac_ce
    null = rng.random(n_pert) < frac_null
    target_mean = np.empty(n_pert)
    target_sd = np.empty(n_pert)
    for flag in (True, False):
        sel = ce == flag
        loc, scale, cap, sd_scale, sd_log = _SCALES[(kind, flag)]
        target_mean[sel] = rng.normal(loc, scale, sel.sum())
        if cap is not None:
            target_mean[sel] = np.minimum(target_mean[sel], cap)
        target_sd[sel] = sd_scale * rng.lognormal(0.0, sd_log, sel.sum())
    return PerturbationTypes(ce, null, target_mean, target_sd)


def _gene_drivers(
    rng: np.random.Generator,
    X: np.ndarray,
    mu: np.ndarray,
    null: np.ndarray,
    mean_driver_genes: float,
    max_drivers: int,
) -> sp.csc_matrix:
    """Driver genes among the expressed ones, ``b = +-U(0.5, 1.5) / sd(X_g)``."""
    n_genes = mu.shape[0]
    n_pert = null.shape[0]
    expressed = np.flatnonzero(mu > 1.0)
    if expressed.size == 0:
        expressed = np.arange(n_genes)
    n_drv = np.minimum(1 + rng.poisson(mean_driver_genes - 1.0, n_pert), max_drivers)
    n_drv = np.minimum(n_drv, expressed.size)
    n_drv[null] = 0
    cand = expressed[_draw_distinct(rng, n_pert, int(n_drv.max(initial=1)), expressed.size)]
    keep = np.arange(cand.shape[1])[None, :] < n_drv[:, None]
    drv_pert, drv_slot = np.nonzero(keep)
    drv_gene = cand[drv_pert, drv_slot]
    uniq, inverse = np.unique(drv_gene, return_inverse=True)
    drv_sd = X[:, uniq].std(axis=0, dtype=np.float64)[inverse]
    raw_b = _signed_uniform(rng, drv_gene.size, 0.5, 1.5)
    raw_b = np.divide(raw_b, drv_sd, out=np.zeros_like(raw_b), where=drv_sd > 0)
    b_raw = sp.csc_matrix((raw_b, (drv_gene, drv_pert)), shape=(n_genes, n_pert))
    b_raw.sum_duplicates()
    return b_raw


def _programme_drivers(
    rng: np.random.Generator, activity: np.ndarray, null: np.ndarray, frac_prog: float
) -> np.ndarray:
    """One (or, with probability 0.3, two) programme drivers, ``c = +-U(0.5, 1.5) / sd(A_k)``."""
    n_prog = activity.shape[1]
    n_pert = null.shape[0]
    c_raw = np.zeros((n_prog, n_pert))
    if n_prog:
        prog_sd = activity.std(axis=0, dtype=np.float64)
        has_prog = (rng.random(n_pert) < frac_prog) & ~null
        two = rng.random(n_pert) < 0.3
        picks = _draw_distinct(rng, n_pert, 2, n_prog)
        vals = _signed_uniform(rng, picks.shape, 0.5, 1.5)
        for slot in range(picks.shape[1]):
            sel = has_prog & (two if slot == 1 else True)
            cols = np.flatnonzero(sel)
            k = picks[cols, slot]
            c_raw[k, cols] = vals[cols, slot] / np.where(prog_sd[k] > 0, prog_sd[k], np.inf)
    return c_raw


def _lineage_drivers(
    rng: np.random.Generator, n_lin: int, null: np.ndarray, frac_lin: float
) -> np.ndarray:
    """One more sensitive lineage per lineage-specific perturbation, ``e = -U(1.5, 3)``."""
    n_pert = null.shape[0]
    e_raw = np.zeros((n_lin, n_pert))
    if n_lin > 1:
        has_lin = (rng.random(n_pert) < frac_lin) & ~null
        which = rng.integers(0, n_lin, n_pert)
        size = -rng.uniform(1.5, 3.0, n_pert)
        cols = np.flatnonzero(has_lin)
        e_raw[which[cols], cols] = size[cols]
    return e_raw


def draw_drivers(
    rng: np.random.Generator,
    X: np.ndarray,
    mu: np.ndarray,
    activity: np.ndarray,
    null: np.ndarray,
    n_lin: int,
    params: dict[str, Any],
) -> Drivers:
    """Gene, programme and lineage drivers of the non-null perturbations (in that order)."""
    b_raw = _gene_drivers(rng, X, mu, null, params["mean_driver_genes"], params["max_driver_genes"])
    c_raw = _programme_drivers(rng, activity, null, params["frac_programme_driven"])
    e_raw = _lineage_drivers(rng, n_lin, null, params["frac_lineage_specific"])
    return Drivers(b_raw, c_raw, e_raw)
