"""PS-LASSO's cross-validation on the path: fold problems of missingness groups, solved and scored.

For every missingness group (perturbations with the same labelled rows) and fold, the Gram matrix
of the fold's training rows (z-scored with those rows) is formed once from sufficient statistics,
and every (perturbation, fold) problem of a batch of groups is solved along the alpha path by
:class:`~leapscreen.heads._solvers.path._PathSolver`. At each alpha the fold models are scored on
their validation rows (Spearman) and the running choice of alpha is updated with the shared tie rule
(:class:`~leapscreen.heads._cv.RunningBest`, ties to the smaller alpha).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from leapscreen.heads._cv import RunningBest, corr_of_ranks, kfold_assignment, rank_average
from leapscreen.heads._solvers._linalg import _PAD, _checked_inverse, _Workers
from leapscreen.heads._solvers.path import _PathSolver

__all__ = ["PathCV", "plan_batches", "solve_groups"]


@dataclass(frozen=True)
class PathCV:
    """The settings of one PS-LASSO fit that its fold problems need (checked by the head)."""

    n_folds: int
    n_alphas: int
    eps: float
    l1_ratio: float
    standardize: bool
    tol: float
    max_iter: int
    random_state: int | None
    device: str
    n_substeps: int


@dataclass
class _Slot:
    """One (missingness group, fold): its training statistics and validation rows."""

    targets: np.ndarray  # perturbation indices of the group (q,)
    fold: int
    mean: np.ndarray  # (d,) feature means of the training rows (centred-Z space)
    scale: np.ndarray  # (d,) feature scales (1 where constant or not standardised)
    keep: np.ndarray  # (d,) bool: feature varies in the training rows
    y_mean: np.ndarray  # (q,) training response means
    Xv: np.ndarray  # (n_val, d) standardised validation features
    yv: np.ndarray  # (n_val, q) validation responses


class _Sums:
    """Sufficient statistics of a set of rows: n, sum x, X'X, X'y, sum y, sum y^2."""

    def __init__(self, X: np.ndarray, Y: np.ndarray) -> None:
        self.n = X.shape[0]
        self.sx = X.sum(axis=0)
        self.xx = X.T @ X
        self.xy = X.T @ Y
        self.sy = Y.sum(axis=0)
        self.yy = np.einsum("ij,ij->j", Y, Y)

    def minus(self, other: _Sums) -> _Sums:
        out = object.__new__(_Sums)
        out.n = self.n - other.n
        out.sx = self.sx - other.sx
        out.xx = self.xx - other.xx
        out.xy = self.xy - other.xy
        out.sy = self.sy - other.sy
        out.yy = self.yy - other.yy
        return out

    def y_mean(self) -> np.ndarray:
        return self.sy / self.n

    def standardised(
        self, standardize: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Feature mean, scale, non-constant mask; Gram ``G``, ``X'y`` (rows = targets) and the
        response variance, all of the z-scored (or centred) features, divided by n.

        Constant features become decoupled unit coordinates with ``X'y = 0``, so their coefficient
        is exactly 0.
        """
        n = self.n
        mean = self.sx / n
        cov = self.xx / n - np.outer(mean, mean)
        var = np.maximum(np.diag(cov), 0.0)
        keep = np.sqrt(var) > 1e-12 * np.maximum(1.0, np.abs(mean))
        scale = np.where(keep & standardize, np.sqrt(var), 1.0)
        G = cov / np.outer(scale, scale)
        ym = self.sy / n
        C = ((self.xy / n - np.outer(mean, ym)) / scale[:, None]).T
        yy = np.maximum(self.yy / n - ym**2, 0.0)
        if not keep.all():
            drop = ~keep
            G[drop, :] = 0.0
            G[:, drop] = 0.0
            G[drop, drop] = 1.0
            C[:, drop] = 0.0
        return mean, scale, keep, G, C, yy


def plan_batches(
    groups: list[list[int]], n_jobs: int, n_folds: int, d: int
) -> list[list[list[int]]]:
    """Cut the missingness groups into independent batches.

    Large groups (>= 64 perturbations) are split into ``n_jobs`` parts so that every thread gets
    work; small groups are pooled, at most ~256 MiB of Gram matrices and inverses per batch, and
    spread over at least ``n_jobs`` batches.
    """
    batches: list[list[list[int]]] = []
    small = []
    for cols in sorted(groups, key=len, reverse=True):
        if len(cols) >= 64:
            parts = max(1, min(n_jobs, len(cols) // 32))
            for chunk in np.array_split(np.asarray(cols), parts):
                batches.append([chunk.tolist()])
        else:
            small.append(cols)
    if small:
        limit = max(1, (2**25) // (2 * n_folds * (d + _PAD) ** 2))
        size = max(1, min(limit, -(-len(small) // n_jobs)))
        for a in range(0, len(small), size):
            batches.append(small[a : a + size])
    return batches


def solve_groups(
    settings: PathCV,
    groups: list[list[int]],
    Zc: np.ndarray,
    Y: np.ndarray,
    labelled: np.ndarray,
    out: dict[str, np.ndarray],
    workers: _Workers,
) -> dict[str, int]:
    """Solve every fold problem of the perturbations in ``groups`` (lists of same-mask
    columns) along the path, choose each perturbation's alpha and write its fold models into
    ``out`` (arrays ``coef`` (k, d, p), ``intercept`` (k, p), ``alphas`` and ``scores``
    (n_alphas, p), ``chosen`` (p,)); returns the solver's counts."""
    k = int(settings.n_folds)
    d = Zc.shape[1]
    l1 = float(settings.l1_ratio)
    ratios = np.logspace(0.0, math.log10(float(settings.eps)), int(settings.n_alphas))

    G = np.zeros((len(groups) * k, d + _PAD, d + _PAD))
    n_train = np.zeros(len(groups) * k, dtype=np.int64)
    G[:, np.arange(d, d + _PAD), np.arange(d, d + _PAD)] = 1.0

    def build(g: int) -> tuple[np.ndarray, list[_Slot], list[np.ndarray], list[np.ndarray]]:
        # sums over all labelled rows once; each fold's training sums are those minus the
        # fold's validation rows (half the work of summing every training set)
        cols = np.asarray(groups[g])
        mask = labelled[:, cols[0]]
        lab = np.flatnonzero(mask)
        full = _Sums(Zc[lab], Y[lab][:, cols])
        mean, scale, keep, G_all, c_all, _ = full.standardised(settings.standardize)
        amax = np.abs(c_all).max(axis=1) / l1
        fold = kfold_assignment(mask, k, settings.random_state)
        slots, cs, yys = [], [], []
        for f in range(k):
            va = np.flatnonzero(fold == f)
            train = full.minus(_Sums(Zc[va], Y[va][:, cols]))
            mean, scale, keep, Gf, C, yy = train.standardised(settings.standardize)
            G[g * k + f, :d, :d] = Gf
            n_train[g * k + f] = train.n
            cs.append(C)
            yys.append(yy)
            slots.append(
                _Slot(
                    targets=cols,
                    fold=f,
                    mean=mean,
                    scale=scale,
                    keep=keep,
                    y_mean=train.y_mean(),
                    Xv=np.where(keep, (Zc[va] - mean) / scale, 0.0),
                    yv=Y[va][:, cols],
                )
            )
        return amax, slots, cs, yys

    built = workers.map(build, list(range(len(groups))))
    amax = np.concatenate([b[0] for b in built])
    slots = [slot for b in built for slot in b[1]]
    C = np.concatenate([c for b in built for c in b[2]], axis=0)
    yy = np.concatenate([v for b in built for v in b[3]])
    target_parts = [np.asarray(cols) for cols in groups]
    del built
    slot_of_col = np.repeat(np.arange(len(slots)), [s.targets.size for s in slots])
    targets = np.concatenate(target_parts)  # perturbation of each target (group-major)
    tpos = {int(t): i for i, t in enumerate(targets)}
    target_of_col = np.array([tpos[int(t)] for s in slots for t in s.targets])
    amax_col = amax[target_of_col]

    inverse = _checked_inverse(G, d, workers) if l1 >= 1.0 else None
    solver = _PathSolver(
        G,
        C,
        yy,
        slot_of_col,
        l1_ratio=l1,
        tol=float(settings.tol),
        max_iter=int(settings.max_iter),
        inverse=inverse,
        device=settings.device,
        workers=workers,
        n_rows=n_train,
    )
    score_sum = np.zeros((ratios.size, amax.size))
    best = RunningBest(amax.size)  # the path runs from the largest alpha to the preferred smallest
    best_W = np.zeros_like(C)
    nsub = int(settings.n_substeps)
    # validation scoring is batched over slots with the same (n_val, q)
    shape_groups: dict[tuple[int, int], list[int]] = {}
    for i, s in enumerate(slots):
        shape_groups.setdefault((s.Xv.shape[0], s.targets.size), []).append(i)
    col_start = np.concatenate([[0], np.cumsum([s.targets.size for s in slots])])
    scoring = []
    for (_, q), members in shape_groups.items():
        Xv = np.stack([slots[i].Xv for i in members])
        yv_rank = rank_average(np.stack([slots[i].yv for i in members]))
        colidx = np.stack([np.arange(col_start[i], col_start[i] + q) for i in members])
        scoring.append((Xv, yv_rank, colidx))

    for a_i, r in enumerate(ratios):
        if a_i > 0 and nsub > 1:
            prev = ratios[a_i - 1]
            for t in range(1, nsub):
                sub = prev * (r / prev) ** (t / nsub)
                solver.advance(amax_col * sub, final=False)
        solver.advance(amax_col * r, final=True)
        col_scores = np.zeros(C.shape[0])
        for Xv, yv_rank, colidx in scoring:
            Wg = solver.W[colidx]  # (g, q, d)
            pred = np.matmul(Xv, Wg.transpose(0, 2, 1))  # (g, n_val, q)
            col_scores[colidx] = corr_of_ranks(rank_average(pred), yv_rank)
        np.add.at(score_sum[a_i], target_of_col, col_scores)
        mean_score = score_sum[a_i] / k
        # ties (see RunningBest) go to the later, smaller alpha
        col_better = best.update(a_i, mean_score)[target_of_col]
        best_W[col_better] = solver.W[col_better]

    out["alphas"][:, targets] = ratios[:, None] * amax[None, :]
    out["scores"][:, targets] = score_sum / k
    out["chosen"][targets] = amax * ratios[best.index]
    for i, s in enumerate(slots):
        cols_i = np.arange(col_start[i], col_start[i + 1])
        w_raw = np.where(s.keep, best_W[cols_i] / s.scale, 0.0)  # (q, d)
        out["coef"][s.fold][:, s.targets] = w_raw.T
        out["intercept"][s.fold, s.targets] = s.y_mean - w_raw @ s.mean
    return {
        "solves": int(solver.n_solves),
        "fallback": int(solver.n_fallback),
        "unconverged": int(solver.n_unconverged),
    }
