"""Batched dense linear algebra of the path solver, on a few threads of single-threaded BLAS.

* :class:`_Workers` - the threads (each runs single-threaded BLAS / LAPACK);
* :func:`_gather_solve` - principal sub-systems ``G[S, S] x = b_S`` of many problems at once,
  padded to common sizes so that they batch (numpy / LAPACK, or a torch device);
* :func:`_slot_matmul` - ``X[i] @ mats[slot[i]]`` for many problems sharing a few matrices;
* :func:`_checked_inverse` - inverses of the Gram matrices, NaN where unreliable.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from leapscreen.heads._solvers._buckets import (
    _PAD,
    _Bucket,
    _padded_index,
    _padded_rhs,
    _scatter_padded,
)
from leapscreen.heads._solvers._lapack import cholesky_solve_inplace, dposv, spd_inverse_into

_GATHER_LIMIT = 2**25  # elements gathered at once when products need one matrix per problem


class _Workers:
    """A few threads for the heavy numpy calls, each running single-threaded BLAS/LAPACK.

    Splitting the work ourselves (instead of multi-threaded BLAS) keeps many small and medium
    products efficient, and avoids the collapse of spinning BLAS threads on a busy machine.
    """

    def __init__(self, n_jobs: int) -> None:
        self.n = max(1, int(n_jobs))
        self.pool = (
            ThreadPoolExecutor(self.n, thread_name_prefix="leapscreen") if self.n > 1 else None
        )

    def map(self, fn, items: list) -> list:  # noqa: ANN001 - any callable
        if self.pool is None or len(items) < 2:
            return [fn(item) for item in items]
        return list(self.pool.map(fn, items))

    def chunks(self, size: int, minimum: int = 1) -> list[slice]:
        """Split ``range(size)`` into at most ``n`` contiguous parts of at least ``minimum``."""
        parts = max(1, min(self.n, size // max(1, minimum)))
        bounds = np.linspace(0, size, parts + 1).round().astype(int)
        return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None


def _default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _solve_stack(M: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Solve ``M[i] x = R[i]^T`` for SPD ``M`` (b, s, s) and ``R`` (b, r, s); returns (b, r, s).

    Singular systems give NaN rows. ``M`` and ``R`` are overwritten.
    """
    b, r, s = R.shape
    if s > 16 and M.flags.c_contiguous and R.flags.c_contiguous and dposv() is not None:
        failed = cholesky_solve_inplace(M, R)
        if failed.any():
            R[failed] = np.nan
        return R
    try:
        return np.linalg.solve(M, R.transpose(0, 2, 1)).transpose(0, 2, 1)
    except np.linalg.LinAlgError:
        out = np.full(R.shape, np.nan)
        for i in range(b):
            try:
                out[i] = np.linalg.solve(M[i], R[i].T).T
            except np.linalg.LinAlgError:
                pass
        return out


_SCRATCH = threading.local()


def _scratch(size: int) -> np.ndarray:
    """A float64 work buffer of at least ``size`` elements, reused by the calling thread (fresh
    large allocations cost page faults every time)."""
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.size < size:
        buf = np.empty(max(size, 1 << 20))
        _SCRATCH.buf = buf
    return buf[:size]


def _gather_blocks(mats: np.ndarray, slot: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``mats[slot[i]][idx[i]][:, idx[i]]`` for every problem i, as a (b, s, s) array.

    Whole rows are copied first (contiguous), then the columns are picked from them, a few
    problems at a time: several times faster than one three-index fancy gather. The result lives
    in the thread's scratch buffer (valid until the thread's next call).
    """
    m, D, _ = mats.shape
    b, s = idx.shape
    flat_rows = mats.reshape(m * D, D)
    out = _scratch(b * s * s).reshape(b, s, s)
    step = 16
    offsets = (np.arange(step * s) * D)[:, None]
    for a in range(0, b, step):
        e = min(b, a + step)
        rows = np.take(flat_rows, (slot[a:e, None] * D + idx[a:e]).ravel(), axis=0)
        cols = np.repeat(idx[a:e], s, axis=0)
        np.take(rows.ravel(), offsets[: (e - a) * s] + cols, out=out[a:e].reshape((e - a) * s, s))
    return out


def _gather_solve_part(mats: np.ndarray, d: int, bucket: _Bucket) -> np.ndarray:
    """Gather, solve and scatter one bucket of equally padded problems (see ``_gather_solve``)."""
    slot, sets, sizes, ps, rhs, shift = bucket
    idx = _padded_index(sets, sizes, d, ps)
    M = _gather_blocks(mats, slot, idx)
    if shift is not None:
        diag = np.arange(ps)
        M[:, diag, diag] += shift[:, None]
    x = _solve_stack(M, np.ascontiguousarray(_padded_rhs(rhs, idx)))
    return _scatter_padded(x, idx, d)


def _gather_solve(
    mats: np.ndarray,
    slot: np.ndarray,
    sets: np.ndarray,
    rhs: np.ndarray,
    shift: np.ndarray | None,
    device: str,
    workers: _Workers,
) -> np.ndarray:
    """Solve the principal sub-systems ``mats[slot][S, S] x_S = rhs_S`` of many problems.

    Parameters
    ----------
    mats : (m, d + _PAD, d + _PAD) symmetric positive definite matrices, the last ``_PAD``
        coordinates being an identity block (dummy coordinates used for padding);
    slot : (b,) which matrix each problem uses; sets : (b, d) bool index sets S;
    rhs : (b, r, d) right-hand sides (only entries in S are used);
    shift : (b,) or None, added to the diagonal of each sub-system.

    Returns
    -------
    (b, r, d) solutions, zero outside S (NaN for singular systems).
    """
    b, r, d = rhs.shape
    out = np.zeros((b, r, d))
    sizes = sets.sum(axis=1)
    pads = np.minimum(-(-sizes // _PAD) * _PAD, d)
    order = np.argsort(pads, kind="stable")
    cuts = np.flatnonzero(np.diff(pads[order])) + 1
    jobs = []
    for sel in np.split(order, cuts):
        ps = int(pads[sel[0]])
        if ps == 0:
            continue
        # jobs of bounded size: their matrices stay in cache-sized scratch buffers
        per_job = max(16, min(256, (1 << 21) // (ps * ps)))
        for a in range(0, sel.size, per_job):
            jobs.append((sel[a : a + per_job], ps))

    def run(job: tuple[np.ndarray, int]) -> np.ndarray:
        part, ps = job
        sh = None if shift is None else shift[part]
        bucket = _Bucket(slot[part], sets[part], sizes[part], ps, rhs[part], sh)
        if device != "cpu":
            from leapscreen.heads._solvers._torch import gather_solve_torch

            return gather_solve_torch(mats, d, bucket, device)
        return _gather_solve_part(mats, d, bucket)

    results = workers.map(run, jobs) if device == "cpu" else [run(job) for job in jobs]
    for (part, _), res in zip(jobs, results, strict=True):
        out[part] = res
    return out


def _slot_matmul(
    mats: np.ndarray, slot: np.ndarray, X: np.ndarray, workers: _Workers
) -> np.ndarray:
    """``out[i] = X[i] @ mats[slot[i]]`` for X of shape (b, r, d); ``slot`` must be non-decreasing.

    Problems sharing a matrix are multiplied in one GEMM (split over the workers); problems that
    are (nearly) alone with their matrix are multiplied in gathered batches of bounded size.
    """
    b, r, d = X.shape
    out = np.empty_like(X)
    if b == 0:
        return out
    cuts = np.flatnonzero(np.diff(slot)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [b]])
    long = (ends - starts) >= 8
    tasks: list[tuple[str, np.ndarray | slice, int]] = []  # (kind, columns, first slot)
    for a, e in zip(starts[long], ends[long], strict=True):
        for part in workers.chunks(e - a, minimum=64):
            tasks.append(("gemm", slice(a + part.start, a + part.stop), int(slot[a])))
    if not long.all():
        # short segments: runs of consecutive columns whose slots are consecutive too (one
        # column per matrix, as for unique missingness patterns) multiply without any copy
        rest = np.concatenate(
            [np.arange(a, e) for a, e in zip(starts[~long], ends[~long], strict=True)]
        )
        brk = np.flatnonzero((np.diff(rest) != 1) | (np.diff(slot[rest]) != 1)) + 1
        run_starts = np.concatenate([[0], brk])
        run_ends = np.concatenate([brk, [rest.size]])
        gathered = []
        for a, e in zip(run_starts, run_ends, strict=True):
            if e - a >= 4:
                c0 = int(rest[a])
                for part in workers.chunks(e - a, minimum=16):
                    first = c0 + part.start
                    tasks.append(("run", slice(first, c0 + part.stop), int(slot[first])))
            else:
                gathered.append(rest[a:e])
        if gathered:
            rest = np.concatenate(gathered)
            step = max(1, min(_GATHER_LIMIT // (d * d), -(-rest.size // workers.n)))
            for a in range(0, rest.size, step):
                tasks.append(("gather", rest[a : a + step], -1))

    def run(task: tuple[str, np.ndarray | slice, int]) -> None:
        kind, where, s = task
        if kind == "gemm":
            block = X[where]
            out[where] = (block.reshape(-1, d) @ mats[s]).reshape(block.shape)
        elif kind == "run":
            count = where.stop - where.start
            out[where] = np.matmul(X[where], mats[s : s + count])
        else:
            out[where] = np.matmul(X[where], mats[slot[where]])

    workers.map(run, tasks)
    return out


def _checked_inverse(G_aug: np.ndarray, d: int, workers: _Workers) -> np.ndarray:
    """Inverse of every (augmented) Gram matrix; NaN where singular or too ill-conditioned.

    The check multiplies back a random vector (O(d^2) per matrix instead of O(d^3)).
    """
    m = G_aug.shape[0]
    H_aug = np.empty_like(G_aug)
    workers.map(lambda part: spd_inverse_into(G_aug, H_aug, d, part), workers.chunks(m))
    G, H = G_aug[:, :d, :d], H_aug[:, :d, :d]
    with np.errstate(all="ignore"):
        v = np.random.default_rng(0).standard_normal((m, d, 1))
        back = np.matmul(G, np.matmul(H, v))
        err = np.abs(back - v).max(axis=(1, 2)) / np.abs(v).max(axis=(1, 2))
    H[~(err < 1e-8)] = np.nan
    return H_aug
