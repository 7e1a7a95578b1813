"""PS-LASSO: one cross-validated LASSO (or elastic net) per perturbation, all solved together.

The estimator reproduces the reference procedure of LEAP (see ``LEAP-METHOD.md`` section 2.3):
for every perturbation (a column of ``Y``), over that perturbation's labelled rows only,

* the rows are split into ``n_folds`` folds (a seeded shuffle, then contiguous chunks of the sizes
  :class:`sklearn.model_selection.KFold` uses; see :func:`kfold_assignment`);
* the alpha grid has ``n_alphas`` values log-spaced from ``eps * alpha_max`` to ``alpha_max``, where
  ``alpha_max = max|X^T (y - mean y)| / (n * l1_ratio)`` on the labelled rows (standardised features
  when ``standardize=True``), exactly as scikit-learn defines it;
* each fold model minimises scikit-learn's objective
  ``(1/2n) ||y - Xw - b||^2 + alpha * l1_ratio * ||w||_1 + 0.5 * alpha * (1 - l1_ratio) * ||w||^2``
  with an unpenalised intercept, on features z-scored with the fold's own training rows;
* alpha is chosen by the mean validation Spearman correlation over the folds (ties go to the smaller
  alpha, a constant prediction scores 0);
* the ``n_folds`` fold models at the chosen alpha are kept and their predictions averaged, which is
  one linear map (``coef_mean_``, ``intercept_mean_``).

How it is fast: the fold problems of all perturbations that share a missingness pattern share one
Gram matrix per fold, and all of them are solved at once. The solver is a primal-dual active-set
(semismooth Newton) method with a block-principal-pivoting safeguard, run along the decreasing alpha
path with a linear predictor between path points; each iteration is a batch of small dense solves
(one per problem, of the size of the active set or of its complement) plus shared matrix products.
Solutions satisfy the optimality (KKT) conditions to rounding error. Problems the active-set
iteration does not settle (typically fewer training rows than features and a tiny alpha) are
re-solved from the previous path point through finer intermediate alphas, and the few left after
that are finished by scikit-learn's own coordinate descent on the Gram matrix (the reference
algorithm, stopping at a duality gap ``<= tol * ||y - mean y||^2 / n``).

Linear algebra runs in a few threads of single-threaded BLAS (``n_jobs``), which also keeps it fast
on a busy machine where multi-threaded BLAS stalls.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from leapscreen.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["PSLassoHead", "kfold_assignment", "spearman_columns", "validate_xy", "validate_x"]

_PAD = 8  # solve sizes are padded to a multiple of this, so that problems can be batched
_MAX_PDAS_ROUNDS = 40  # active-set iterations per path point before refinement / fallback
_REFINE_STEPS = 8  # intermediate alphas when re-solving unsettled problems
_REFINE_DEPTH = 2  # nested refinements before scikit-learn's coordinate descent takes over
_BACKUP = 3  # block-pivoting: full exchanges allowed without progress before single exchanges
_GATHER_LIMIT = 2**25  # elements gathered at once when products need one matrix per problem
_TIE = 1e-12  # CV scores this close are ties


# ----------------------------------------------------------------------------------------------
# validation, folds and scoring (shared with the other heads)
# ----------------------------------------------------------------------------------------------


def validate_x(Z: object, name: str = "Z", n_features: int | None = None) -> np.ndarray:
    """Check a feature matrix: 2-D, numeric, finite; returned as float64.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_features)
        The representation (latent) of the samples.
    name : str
        Name used in error messages.
    n_features : int, optional
        Expected number of columns (for ``predict``).

    Returns
    -------
    numpy.ndarray
        ``Z`` as a float64 array.
    """
    try:
        arr = np.asarray(Z, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{name} must be a numeric matrix ({exc})",
            fix="pass a float array of samples x features",
        ) from None
    if arr.ndim != 2:
        raise InputError(
            f"{name} must be 2-D (samples x features), got {arr.ndim}-D",
            fix="reshape it to (n_samples, n_features)",
        )
    if not np.isfinite(arr).all():
        raise InputError(
            f"{name} contains NaN or infinite values", fix="impute or drop them before fitting"
        )
    if n_features is not None and arr.shape[1] != n_features:
        raise InputError(
            f"{name} has {arr.shape[1]} features but the head was fitted on {n_features}",
            fix="use the same representation as in fit",
        )
    return arr


def validate_xy(Z: object, Y: object) -> tuple[np.ndarray, np.ndarray, bool]:
    """Check ``Z`` (finite) and ``Y`` (NaN = missing, no infinities) for a head's ``fit``.

    Returns
    -------
    Z : numpy.ndarray of shape (n, d), float64
    Y : numpy.ndarray of shape (n, p), float64
    was_1d : bool
        Whether ``Y`` was given as a vector.
    """
    Zv = validate_x(Z)
    try:
        Yv = np.asarray(Y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"Y must be a numeric matrix ({exc})", fix="pass responses as floats, NaN for missing"
        ) from None
    was_1d = Yv.ndim == 1
    if was_1d:
        Yv = Yv[:, None]
    if Yv.ndim != 2:
        raise InputError(
            f"Y must be 2-D (samples x perturbations), got {Yv.ndim}-D",
            fix="reshape it to (n_samples, n_perturbations)",
        )
    if Yv.shape[0] != Zv.shape[0]:
        raise InputError(
            f"Z has {Zv.shape[0]} rows but Y has {Yv.shape[0]}",
            fix="align the responses to the samples of the representation",
        )
    if np.isinf(Yv).any():
        raise InputError("Y contains infinite values", fix="use NaN for missing responses")
    return Zv, Yv, was_1d


def kfold_assignment(labelled: np.ndarray, n_folds: int, random_state: int | None) -> np.ndarray:
    """Fold of every labelled row of one perturbation (-1 for unlabelled rows).

    The rows are shuffled with ``numpy.random.default_rng(random_state).permutation(n)`` (the same
    permutation for every perturbation), the labelled ones are taken in that order and cut into
    ``n_folds`` contiguous chunks of the sizes :class:`sklearn.model_selection.KFold` uses (the
    first ``m % n_folds`` folds get one more row). Perturbations with the same missingness pattern
    therefore share their folds, and fully observed perturbations all share the same folds.

    Parameters
    ----------
    labelled : numpy.ndarray of bool, shape (n,)
        Which rows have a response.
    n_folds : int
        Number of folds.
    random_state : int or None
        Seed of the shuffle.

    Returns
    -------
    numpy.ndarray of int, shape (n,)
    """
    labelled = np.asarray(labelled, dtype=bool)
    n = labelled.shape[0]
    perm = np.random.default_rng(random_state).permutation(n)
    order = perm[labelled[perm]]
    m = order.size
    sizes = np.full(n_folds, m // n_folds)
    sizes[: m % n_folds] += 1
    fold = np.full(n, -1, dtype=np.int64)
    fold[order] = np.repeat(np.arange(n_folds), sizes)
    return fold


def _rank_average(X: np.ndarray) -> np.ndarray:
    """Ranks (1-based, ties averaged) along axis -2 of ``X`` (..., n, k)."""
    Xt = np.ascontiguousarray(np.swapaxes(X, -1, -2)).reshape(-1, X.shape[-2])  # (rows, n)
    n = Xt.shape[1]
    order = np.argsort(Xt, axis=1, kind="stable")
    xs = np.take_along_axis(Xt, order, axis=1)
    ranks = np.empty_like(Xt)
    plain = np.broadcast_to(np.arange(1.0, n + 1.0), order.shape)
    np.put_along_axis(ranks, order, plain, axis=1)
    tied = np.flatnonzero((xs[:, 1:] == xs[:, :-1]).any(axis=1)) if n > 1 else np.zeros(0, int)
    if tied.size:
        # average the ranks within runs of equal values (rows with ties only)
        xt = xs[tied]
        new = np.ones(xt.shape, dtype=bool)
        new[:, 1:] = xt[:, 1:] != xt[:, :-1]
        end = np.ones(xt.shape, dtype=bool)
        end[:, :-1] = new[:, 1:]
        pos = np.arange(n, dtype=np.float64)
        first = np.maximum.accumulate(np.where(new, pos, 0.0), axis=1)
        last = np.minimum.accumulate(np.where(end, pos, n - 1.0)[:, ::-1], axis=1)[:, ::-1]
        fixed = np.empty_like(xt)
        np.put_along_axis(fixed, order[tied], (first + last) / 2.0 + 1.0, axis=1)
        ranks[tied] = fixed
    shape = X.shape[:-2] + (X.shape[-1], n)
    return np.swapaxes(ranks.reshape(shape), -1, -2)


def _corr_of_ranks(ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    ra = ra - ra.mean(axis=-2, keepdims=True)
    rb = rb - rb.mean(axis=-2, keepdims=True)
    num = (ra * rb).sum(axis=-2)
    den = np.sqrt((ra * ra).sum(axis=-2) * (rb * rb).sum(axis=-2))
    n = ra.shape[-2]
    # ranks are integers or half-integers: a column is constant exactly when its sum of squares
    # is (almost) zero; anything above 1e-9 * n^3 is a real spread
    ok = den > 1e-9 * max(n, 1) ** 3
    return np.where(ok, num / np.where(ok, den, 1.0), 0.0)


def spearman_columns(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Spearman correlation of each column of ``pred`` with the same column of ``truth``.

    Ties get average ranks (as :func:`scipy.stats.spearmanr`); a constant column scores 0. Leading
    dimensions are batch dimensions: arrays of shape (..., n, k) give scores of shape (..., k).

    Parameters
    ----------
    pred, truth : numpy.ndarray of shape (..., n, k)
        Predictions and observed values (no NaN).

    Returns
    -------
    numpy.ndarray of shape (..., k)
    """
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    return _corr_of_ranks(_rank_average(pred), _rank_average(truth))


# ----------------------------------------------------------------------------------------------
# batched linear algebra
# ----------------------------------------------------------------------------------------------


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


def _lapack_function(name: str, n_args: int):  # noqa: ANN202 - a ctypes function or None
    """A LAPACK routine from SciPy's Cython table as a ctypes function (released GIL).

    Returns ``None`` where it cannot be loaded; callers then use numpy instead.
    """
    try:
        import ctypes

        import scipy.linalg.cython_lapack as cython_lapack

        capsule = cython_lapack.__pyx_capi__[name]
        get_name = ctypes.pythonapi.PyCapsule_GetName
        get_name.restype = ctypes.c_char_p
        get_name.argtypes = [ctypes.py_object]
        get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
        get_pointer.restype = ctypes.c_void_p
        get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        address = get_pointer(capsule, get_name(capsule))
        signature = ctypes.CFUNCTYPE(None, ctypes.c_char_p, *([ctypes.c_void_p] * (n_args - 1)))
        return signature(address)
    except Exception:  # noqa: BLE001 - any failure means: use numpy instead
        return None


def _load_dposv():  # noqa: ANN202
    """``dposv`` (Cholesky solve), checked on a tiny system."""
    import ctypes

    fn = _lapack_function("dposv", 8)
    if fn is None:
        return None
    try:
        a = np.array([[4.0, 1.0], [1.0, 3.0]])
        rhs = np.array([[1.0, 2.0]])
        n, nrhs, info = ctypes.c_int(2), ctypes.c_int(1), ctypes.c_int(0)
        ref = ctypes.byref
        fn(b"L", ref(n), ref(nrhs), a.ctypes.data, ref(n), rhs.ctypes.data, ref(n), ref(info))
        if info.value != 0 or not np.allclose(rhs[0], [1.0 / 11.0, 7.0 / 11.0]):
            return None
        return fn
    except Exception:  # noqa: BLE001
        return None


def _load_inverse():  # noqa: ANN202
    """(``dpotrf``, ``dpotri``): Cholesky factor and inverse, checked on a tiny matrix."""
    import ctypes

    potrf, potri = _lapack_function("dpotrf", 5), _lapack_function("dpotri", 5)
    if potrf is None or potri is None:
        return None
    try:
        a = np.array([[4.0, 1.0], [1.0, 3.0]])
        n, info = ctypes.c_int(2), ctypes.c_int(0)
        ref = ctypes.byref
        potrf(b"L", ref(n), a.ctypes.data, ref(n), ref(info))
        potri(b"L", ref(n), a.ctypes.data, ref(n), ref(info))
        # column-major lower = row-major upper
        if info.value != 0 or not np.allclose(np.triu(a), np.triu([[3.0, -1.0], [-1.0, 4.0]]) / 11):
            return None
        return potrf, potri
    except Exception:  # noqa: BLE001
        return None


_DPOSV = _load_dposv()
_POTR = _load_inverse()


def _cholesky_solve_inplace(M: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Solve SPD systems ``M[i] x = R[i]^T`` in place (``R`` of shape (b, r, s), C-contiguous).

    Returns a bool array of the systems that were not positive definite (left unsolved).
    """
    import ctypes

    b, r, s = R.shape
    failed = np.zeros(b, dtype=bool)
    n, nrhs, info = ctypes.c_int(s), ctypes.c_int(r), ctypes.c_int(0)
    pn, pr, pi = ctypes.byref(n), ctypes.byref(nrhs), ctypes.byref(info)
    pa, pb = M.ctypes.data, R.ctypes.data
    step_a, step_b = s * s * 8, r * s * 8
    fn = _DPOSV
    for i in range(b):
        fn(b"L", pn, pr, pa + i * step_a, pn, pb + i * step_b, pn, pi)
        if info.value:
            failed[i] = True
            info.value = 0
    return failed


def _solve_stack(M: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Solve ``M[i] x = R[i]^T`` for SPD ``M`` (b, s, s) and ``R`` (b, r, s); returns (b, r, s).

    Singular systems give NaN rows. ``M`` and ``R`` are overwritten.
    """
    b, r, s = R.shape
    if _DPOSV is not None and s > 16 and M.flags.c_contiguous and R.flags.c_contiguous:
        failed = _cholesky_solve_inplace(M, R)
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


def _padded_index(sets: np.ndarray, sizes: np.ndarray, d: int, ps: int) -> np.ndarray:
    """Coordinates of each problem's active set, padded to ``ps`` columns.

    Padded positions point at distinct dummy coordinates d, d+1, ... (identity rows, zero rhs).
    """
    rows, cols = np.nonzero(sets)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pos = np.arange(rows.size) - np.repeat(starts, sizes)
    idx = d + np.arange(ps)[None, :] - sizes[:, None]
    idx[rows, pos] = cols
    return idx


def _gather_solve_part(
    mats: np.ndarray,
    d: int,
    slot: np.ndarray,
    sets: np.ndarray,
    sizes: np.ndarray,
    ps: int,
    rhs: np.ndarray,
    shift: np.ndarray | None,
) -> np.ndarray:
    """Gather, solve and scatter one bucket of equally padded problems (see ``_gather_solve``)."""
    nb, r, _ = rhs.shape
    idx = _padded_index(sets, sizes, d, ps)
    M = _gather_blocks(mats, slot, idx)
    if shift is not None:
        diag = np.arange(ps)
        M[:, diag, diag] += shift[:, None]
    padded = np.concatenate([rhs, np.zeros((nb, r, _PAD))], axis=2)
    rr = np.take_along_axis(padded, np.broadcast_to(idx[:, None, :], (nb, r, ps)), axis=2)
    x = _solve_stack(M, np.ascontiguousarray(rr))
    out = np.zeros((nb, r, d + _PAD))
    np.put_along_axis(out, np.broadcast_to(idx[:, None, :], (nb, r, ps)), x, axis=2)
    return out[:, :, :d]


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
        if device != "cpu":
            return _gather_solve_torch(
                mats, d, slot[part], sets[part], sizes[part], ps, rhs[part], sh, device
            )
        return _gather_solve_part(mats, d, slot[part], sets[part], sizes[part], ps, rhs[part], sh)

    results = workers.map(run, jobs) if device == "cpu" else [run(job) for job in jobs]
    for (part, _), res in zip(jobs, results, strict=True):
        out[part] = res
    return out


def _gather_solve_torch(
    mats: np.ndarray,
    d: int,
    slot: np.ndarray,
    sets: np.ndarray,
    sizes: np.ndarray,
    ps: int,
    rhs: np.ndarray,
    shift: np.ndarray | None,
    device: str,
) -> np.ndarray:
    """``_gather_solve_part`` with the gather and the solve on a torch device."""
    import torch

    nb, r, _ = rhs.shape
    idx = _padded_index(sets, sizes, d, ps)
    device = _torch_device(device)
    key = (id(mats), device)
    cached = _TORCH_CACHE.get(key)
    if cached is None or cached[0] is not mats:
        _TORCH_CACHE.clear()
        cached = (mats, torch.as_tensor(mats, device=device))
        _TORCH_CACHE[key] = cached
    mt = cached[1]
    it = torch.as_tensor(idx, device=device)
    st = torch.as_tensor(slot, device=device)
    M = mt[st[:, None, None], it[:, :, None], it[:, None, :]]
    if shift is not None:
        diag = torch.arange(ps, device=device)
        M[:, diag, diag] += torch.as_tensor(shift, device=device)[:, None]
    padded = np.concatenate([rhs, np.zeros((nb, r, _PAD))], axis=2)
    rr = np.take_along_axis(padded, np.broadcast_to(idx[:, None, :], (nb, r, ps)), axis=2)
    x, info = torch.linalg.solve_ex(M, torch.as_tensor(rr, device=device).transpose(1, 2))
    x = x.transpose(1, 2).cpu().numpy()
    x[info.cpu().numpy() != 0] = np.nan
    out = np.zeros((nb, r, d + _PAD))
    np.put_along_axis(out, np.broadcast_to(idx[:, None, :], (nb, r, ps)), x, axis=2)
    return out[:, :, :d]


_TORCH_CACHE: dict = {}


def _torch_device(device: str) -> str:
    """Torch device of a ``device`` argument (``"torch-cpu"`` runs the torch path on the CPU)."""
    return "cpu" if device == "torch-cpu" else device


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


# ----------------------------------------------------------------------------------------------
# the path solver
# ----------------------------------------------------------------------------------------------


def _duality_gap(
    W: np.ndarray, D: np.ndarray, C: np.ndarray, yy: np.ndarray, a1: np.ndarray, a2: np.ndarray
) -> np.ndarray:
    """Duality gap of the Gram-form problem (scikit-learn's formula, divided by n).

    ``D = c - G w - a2 w`` must be the exact negative gradient of the smooth part at ``W``.
    """
    wc = np.einsum("ij,ij->i", W, C)
    ww = np.einsum("ij,ij->i", W, W)
    wgw = wc - np.einsum("ij,ij->i", W, D) - a2 * ww
    r2 = np.maximum(yy - 2.0 * wc + wgw, 0.0)
    dual_norm = np.abs(D).max(axis=1) if D.shape[1] else np.zeros(len(W))
    const = np.where(dual_norm > a1, a1 / np.where(dual_norm > 0, dual_norm, 1.0), 1.0)
    gap = 0.5 * r2 * (1.0 + const**2) + a1 * np.abs(W).sum(axis=1) - const * (yy - wc)
    gap += 0.5 * a2 * (1.0 + const**2) * ww
    return gap


def _row_ranks(score: np.ndarray) -> np.ndarray:
    """0-based rank of every entry within its row (ascending, stable)."""
    order = np.argsort(score, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(score.shape[1]), order.shape), 1)
    return rank


class _PathSolver:
    """Solutions of many Gram-form LASSO / elastic-net problems along decreasing alphas.

    Problem ``i`` minimises ``0.5 w'G w - c'w + a1 |w|_1 + 0.5 a2 |w|^2`` with ``G = mats[slot[i]]``
    and ``c = C[i]``; this is scikit-learn's objective on centred data divided by ``n`` (up to a
    constant).
    """

    def __init__(
        self,
        G: np.ndarray,
        C: np.ndarray,
        yy: np.ndarray,
        slot: np.ndarray,
        *,
        l1_ratio: float,
        tol: float,
        max_iter: int,
        inverse: np.ndarray | None,
        device: str,
        workers: _Workers,
        n_rows: np.ndarray | None = None,
    ) -> None:
        self.workers = workers
        d = C.shape[1]
        self.G_aug = G  # (m, d + _PAD, d + _PAD): the Gram matrices plus an identity block
        self.G = G[:, :d, :d]
        self.H_aug = inverse
        self.H = None if inverse is None else inverse[:, :d, :d]
        # H c of every problem (used by the complement solves)
        self.HC = (
            None if inverse is None else _slot_matmul(self.H, slot, C[:, None, :], workers)[:, 0]
        )
        self.C = C
        self.yy = yy
        self.slot = slot
        self.l1_ratio = l1_ratio
        self.lasso = l1_ratio >= 1.0
        self.tol = tol
        self.max_iter = max_iter
        self.device = device
        n, d = C.shape
        self.d = d
        self.diag = np.einsum("mii->mi", self.G)[slot]
        # training rows per slot; at most n - 1 nonzero coefficients (rank of the centred rows)
        self.n_rows = np.full(G.shape[0], 10 * d) if n_rows is None else np.asarray(n_rows)
        self.max_active = np.clip(self.n_rows - 1, 1, d)
        self.has_inverse = (
            np.zeros(G.shape[0], dtype=bool)
            if inverse is None
            else np.isfinite(self.H).all(axis=(1, 2))
        )
        self.W = np.zeros((n, d))
        self.D = C.copy()
        self.U = np.zeros((n, d))
        self.GU = np.zeros((n, d))
        self.S = np.zeros((n, d), dtype=np.int8)
        self.direction = np.ones(n, dtype=bool)  # U, GU are the exact path direction for (A, S)
        # w = 0 is the exact solution down to this alpha
        self.alpha = np.abs(C).max(axis=1, initial=0.0) / l1_ratio
        self.anchor = self._state(np.arange(n))  # state at the last final path point
        self.depth = 0
        self.n_solves = 0
        self.n_fallback = 0
        self.n_unconverged = 0

    # -- pieces --------------------------------------------------------------------------------
    def _split(self, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return alpha * self.l1_ratio, alpha * (1.0 - self.l1_ratio)

    def _honest_dual(self, cols: np.ndarray, W: np.ndarray, a2: np.ndarray) -> np.ndarray:
        GW = _slot_matmul(self.G, self.slot[cols], W[:, None, :], self.workers)[:, 0]
        return self.C[cols] - GW - a2[:, None] * W

    def _solve_sets(
        self, cols: np.ndarray, S: np.ndarray, a1: np.ndarray, a2: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Exact solution for fixed active sets and signs (one batched solve per problem)."""
        d = self.d
        A = S != 0
        Sf = S.astype(np.float64)
        C = self.C[cols]
        slot = self.slot[cols]
        n_act = A.sum(axis=1)
        comp = self.lasso & self.has_inverse[slot] & (n_act > d - n_act)
        W = np.zeros((cols.size, d))
        D = np.zeros((cols.size, d))
        U = np.zeros((cols.size, d))
        GU = np.zeros((cols.size, d))
        ii = np.flatnonzero(~comp)
        if ii.size:
            rhs = (C[ii] - a1[ii, None] * Sf[ii])[:, None, :]
            if self.lasso:
                rhs = np.concatenate([rhs, Sf[ii][:, None, :]], axis=1)
            shift = None if self.lasso else a2[ii]
            X = _gather_solve(self.G_aug, slot[ii], A[ii], rhs, shift, self.device, self.workers)
            GX = _slot_matmul(self.G, slot[ii], X, self.workers)
            W[ii] = X[:, 0]
            D[ii] = C[ii] - GX[:, 0] - a2[ii, None] * X[:, 0]
            if self.lasso:
                U[ii] = X[:, 1]
                GU[ii] = GX[:, 1]
        ii = np.flatnonzero(comp)
        if ii.size:
            # w = H (b - v~) with b = c - a1 s~ and v~ supported on the inactive set I, chosen so
            # that w_I = 0: v_I = H_II^{-1} (H b)_I; likewise for the direction u = G_AA^{-1} s_A.
            Ai = A[ii]
            Hs = _slot_matmul(self.H, slot[ii], Sf[ii][:, None, :], self.workers)[:, 0]
            T = np.empty((ii.size, 2, d))
            T[:, 0] = self.HC[cols[ii]] - a1[ii, None] * Hs
            T[:, 1] = Hs
            V = _gather_solve(self.H_aug, slot[ii], ~Ai, T, None, self.device, self.workers)
            X = (T - _slot_matmul(self.H, slot[ii], V, self.workers)) * Ai[:, None, :]
            W[ii] = X[:, 0]
            U[ii] = X[:, 1]
            D[ii] = np.where(Ai, a1[ii, None] * Sf[ii], V[:, 0])
            GU[ii] = np.where(Ai, Sf[ii], -V[:, 1])
        self.n_solves += cols.size
        return W, D, U, GU

    def _kkt(
        self, S: np.ndarray, W: np.ndarray, D: np.ndarray, a1: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Infeasible coordinates of each problem (sign or dual violations)."""
        A = S != 0
        lim = a1[:, None] * (1.0 + 1e-9)
        sign_bad = A & ((S * W <= 0) | (np.abs(D - a1[:, None] * S) > 1e-9 * a1[:, None]))
        dual_bad = ~A & (np.abs(D) > lim)
        bad = sign_bad | dual_bad
        return bad, bad.sum(axis=1)

    def _cap_active(
        self, new: np.ndarray, S: np.ndarray, W: np.ndarray, D: np.ndarray, cols: np.ndarray
    ) -> None:
        """Keep active sets within the rank of the Gram matrix (fewer rows than features).

        A LASSO solution needs at most ``n - 1`` nonzero coefficients: entering coordinates beyond
        that (the ones with the smallest gradients) are held back, so that sub-systems stay
        solvable; when no room is left, the strongest entering coordinate swaps with the active
        coordinate of smallest magnitude. Modifies ``new`` in place.
        """
        cap = self.max_active[self.slot[cols]]
        over = np.flatnonzero((new != 0).sum(axis=1) > cap)
        if not over.size:
            return
        rows = new[over]
        entering = (rows != 0) & (S[over] == 0)
        staying = (rows != 0) & (S[over] != 0)
        room = cap[over] - staying.sum(axis=1)
        allowed = np.maximum(room, np.minimum(1, entering.sum(axis=1)))
        score = np.where(entering, np.abs(D[over]), -1.0)
        rank = _row_ranks(-score)
        rows[entering & (rank >= allowed[:, None])] = 0.0
        # make room by dropping the smallest staying coefficients
        excess = np.maximum(allowed - room, 0)
        weight = np.where(staying, np.abs(W[over]) * np.sqrt(self.diag[cols[over]]), np.inf)
        rows[staying & (_row_ranks(weight) < excess[:, None])] = 0.0
        new[over] = rows

    # -- the driver ----------------------------------------------------------------------------
    def advance(self, alpha: np.ndarray, final: bool) -> None:
        """Move every problem to ``alpha`` (not larger than the previous one).

        ``final=False`` is an intermediate point: one active-set step is taken and the state is used
        as a warm start. ``final=True`` iterates to convergence.
        """
        a1, a2 = self._split(alpha)
        old1 = self.alpha * self.l1_ratio
        A = self.S != 0
        if self.lasso:
            pred = self.direction.copy()
            delta = np.where(pred, old1 - a1, 0.0)[:, None]
            self.W = np.where(A, self.W + delta * self.U, 0.0)
            self.D = np.where(A & pred[:, None], a1[:, None] * self.S, self.D - delta * self.GU)
            honest = np.flatnonzero(~pred)
        else:
            honest = np.arange(alpha.size)
        if honest.size:
            self.D[honest] = self._honest_dual(honest, self.W[honest], a2[honest])
        self.alpha = alpha.copy()

        cols = np.arange(alpha.size)
        failed: list[np.ndarray] = []
        best = np.full(alpha.size, np.iinfo(np.int64).max)
        backup = np.full(alpha.size, _BACKUP)
        rounds = 0
        while cols.size:
            S = self.S[cols]
            W = self.W[cols]
            D = self.D[cols]
            # active-set iterates are accepted on the exact optimality conditions only (the
            # tolerance applies to the final check and to the coordinate-descent fallback)
            bad, n_bad = self._kkt(S, W, D, a1[cols])
            keep = n_bad > 0
            cols, S, W, D, bad, n_bad = (
                cols[keep],
                S[keep],
                W[keep],
                D[keep],
                bad[keep],
                n_bad[keep],
            )
            if not cols.size or rounds >= (_MAX_PDAS_ROUNDS if final else 1):
                break
            rounds += 1
            c1 = a1[cols]
            improved = n_bad < best[cols]
            best[cols] = np.where(improved, n_bad, best[cols])
            backup[cols] = np.where(improved, _BACKUP, backup[cols] - 1)
            # exchange every infeasible coordinate: wrong-signed ones leave the active set,
            # violated inactive ones enter it with the sign of their gradient
            new = np.where(bad, np.where(S != 0, 0.0, np.sign(D)), S.astype(np.float64))
            single = np.flatnonzero(backup[cols] < 0)
            if single.size:
                # Murty-style: flip only the infeasible coordinate of largest index
                j = self.d - 1 - np.argmax(bad[single, ::-1], axis=1)
                rows = S[single].astype(np.float64)
                was_active = rows[np.arange(single.size), j] != 0
                rows[np.arange(single.size), j] = np.where(was_active, 0.0, np.sign(D[single, j]))
                new[single] = rows
            self._cap_active(new, S, W, D, cols)
            new_s = new.astype(np.int8)
            Wn, Dn, Un, GUn = self._solve_sets(cols, new_s, c1, a2[cols])
            broken = ~np.isfinite(Wn).all(axis=1)
            self.S[cols] = new_s
            self.W[cols] = np.where(broken[:, None], W, Wn)
            self.D[cols] = Dn
            self.U[cols] = Un
            self.GU[cols] = GUn
            self.direction[cols] = self.lasso & ~broken
            if broken.any():
                # singular sub-system: keep the previous point
                bcols = cols[broken]
                self.S[bcols] = np.sign(self.W[bcols]).astype(np.int8)
                self.D[bcols] = self._honest_dual(bcols, self.W[bcols], a2[bcols])
                self.direction[bcols] = False
                cols = cols[~broken]
                failed.append(bcols)
        if final:
            failed.append(cols)
            stuck = np.unique(np.concatenate(failed))
            if stuck.size and self.depth < _REFINE_DEPTH:
                self._refine(stuck, alpha)
            self._finalise(a1, a2)
            self.anchor = self._state(np.arange(alpha.size))

    def _state(self, cols: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "W": self.W[cols],
            "D": self.D[cols],
            "U": self.U[cols],
            "GU": self.GU[cols],
            "S": self.S[cols],
            "direction": self.direction[cols],
            "alpha": self.alpha[cols],
        }

    def _refine(self, cols: np.ndarray, alpha: np.ndarray) -> None:
        """Re-solve problems the active-set iteration did not settle, from the previous path
        point, through ``_REFINE_STEPS`` closer intermediate alphas (finer continuation)."""
        child = object.__new__(_PathSolver)
        child.__dict__.update(self.__dict__)
        child.C, child.yy, child.slot = self.C[cols], self.yy[cols], self.slot[cols]
        child.diag = self.diag[cols]
        child.HC = None if self.HC is None else self.HC[cols]
        for key, value in self.anchor.items():
            setattr(child, key, value[cols].copy())
        child.anchor = child._state(np.arange(cols.size))
        child.depth = self.depth + 1
        child.n_solves = child.n_fallback = child.n_unconverged = 0
        start = np.maximum(child.alpha, alpha[cols])
        for t in range(1, _REFINE_STEPS + 1):
            frac = t / _REFINE_STEPS
            child.advance(start ** (1 - frac) * alpha[cols] ** frac, final=True)
        for key, value in child._state(np.arange(cols.size)).items():
            getattr(self, key)[cols] = value
        self.n_solves += child.n_solves
        self.n_fallback += child.n_fallback
        self.n_unconverged += child.n_unconverged

    def _finalise(self, a1: np.ndarray, a2: np.ndarray) -> None:
        """Check every problem with a freshly computed gradient; coordinate descent for the rest."""
        every = np.arange(a1.size)
        D = self._honest_dual(every, self.W, a2)
        _, n_bad = self._kkt(self.S, self.W, D, a1)
        gap = _duality_gap(self.W, D, self.C, self.yy, a1, a2)
        ok = (n_bad == 0) | (gap <= max(self.tol, 1e-12) * self.yy)
        self.D = D
        if not ok.all() and self.depth == 0:
            self._fallback(np.flatnonzero(~ok), a1, a2)

    def _fallback(self, cols: np.ndarray, a1: np.ndarray, a2: np.ndarray) -> None:
        """Finish problems the active-set iteration did not settle with scikit-learn's own
        coordinate descent on the Gram matrix (the reference algorithm, tol and max_iter)."""
        self.n_fallback += cols.size
        W, conv = _sklearn_gram_cd(
            self.G,
            self.slot[cols],
            self.n_rows[self.slot[cols]],
            self.C[cols],
            self.yy[cols],
            np.stack([self.W[cols], self.anchor["W"][cols]], axis=1),
            a1[cols] + a2[cols],
            self.l1_ratio,
            max(self.tol, 1e-12),
            self.max_iter,
        )
        self.n_unconverged += int((~conv).sum())
        self.W[cols] = W
        self.S[cols] = np.sign(W).astype(np.int8)
        self.D[cols] = self._honest_dual(cols, W, a2[cols])
        self.U[cols] = 0.0
        self.GU[cols] = 0.0
        self.direction[cols] = False


def _sklearn_gram_cd(
    G: np.ndarray,
    slot: np.ndarray,
    n_rows: np.ndarray,
    C: np.ndarray,
    yy: np.ndarray,
    starts: np.ndarray,
    alpha: np.ndarray,
    l1_ratio: float,
    tol: float,
    max_iter: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Problem by problem, scikit-learn's Gram-based coordinate descent (``enet_path`` with a
    precomputed Gram matrix and X'y), warm-started from the better of the candidate ``starts``.

    Only ``n``, the Gram matrix, ``X'y`` and ``y'y`` enter that solver, so the design and the
    response are passed as placeholders of the right size and norm.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import enet_path

    b, _, d = starts.shape
    W = np.zeros((b, d))
    conv = np.zeros(b, dtype=bool)
    for i in range(b):
        g = G[slot[i]]
        a1, a2 = alpha[i] * l1_ratio, alpha[i] * (1.0 - l1_ratio)
        cand = starts[i]
        with np.errstate(all="ignore"):
            obj = (
                0.5 * np.einsum("kd,de,ke->k", cand, g, cand)
                - cand @ C[i]
                + a1 * np.abs(cand).sum(axis=1)
                + 0.5 * a2 * (cand**2).sum(axis=1)
            )
        start = cand[int(np.argmin(np.where(np.isfinite(obj), obj, np.inf)))]
        if not np.isfinite(start).all():
            start = np.zeros(d)
        n = int(n_rows[i])
        y = np.zeros(n)
        y[0] = np.sqrt(max(yy[i], 0.0) * n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            _, coefs, _, n_iter = enet_path(
                np.zeros((n, d)),
                y,
                l1_ratio=l1_ratio,
                alphas=[alpha[i]],
                precompute=np.ascontiguousarray(g) * n,
                Xy=C[i] * n,
                coef_init=start.copy(),
                tol=tol,
                max_iter=max_iter,
                check_input=False,
                return_n_iter=True,
            )
        W[i] = coefs[:, 0]
        conv[i] = n_iter[0] < max_iter
    return W, conv


# ----------------------------------------------------------------------------------------------
# problem assembly
# ----------------------------------------------------------------------------------------------


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


def _plan_batches(
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


# ----------------------------------------------------------------------------------------------
# the estimator
# ----------------------------------------------------------------------------------------------


class LinearPredictMixin:
    """``predict`` for heads that collapse to one linear map ``Z @ coef_mean_ + intercept_mean_``."""

    coef_mean_: np.ndarray
    intercept_mean_: np.ndarray
    n_features_in_: int

    def predict(self, Z: np.ndarray) -> np.ndarray:
        """Predict every perturbation: ``Z @ coef_mean_ + intercept_mean_`` (the mean fold model).

        Parameters
        ----------
        Z : array of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_perturbations), in the head's ``dtype`` (float64 if
        it has none)
        """
        if not hasattr(self, "coef_mean_"):
            raise InputError(
                f"this {type(self).__name__} is not fitted yet", fix="call fit(Z, Y) first"
            )
        Zv = validate_x(Z, n_features=self.n_features_in_)
        out = Zv @ self.coef_mean_.astype(np.float64) + self.intercept_mean_.astype(np.float64)
        return out.astype(np.dtype(getattr(self, "dtype", np.float64)), copy=False)


class PSLassoHead(LinearPredictMixin):
    """Perturbation-specific cross-validated LASSO (LEAP's default head), all perturbations at once.

    Parameters
    ----------
    n_alphas : int, default 10
        Number of alphas on the path.
    eps : float, default 1e-3
        Smallest alpha as a fraction of ``alpha_max``.
    n_folds : int, default 5
        Number of cross-validation folds (per perturbation, over its labelled rows).
    l1_ratio : float, default 1.0
        Elastic-net mixing (1 = LASSO), as in :class:`sklearn.linear_model.ElasticNet`.
    standardize : bool, default True
        Z-score the features within each fold with that fold's training rows; coefficients are
        mapped back to the raw feature space.
    tol : float, default 1e-6
        Tolerance on the duality gap, ``gap <= tol * ||y - mean y||^2 / n`` (scikit-learn's rule),
        for problems the active-set solver does not settle exactly (they are finished by
        scikit-learn's coordinate descent). Active-set solutions satisfy the optimality (KKT)
        conditions to rounding error.
    max_iter : int, default 1000
        Maximum epochs of the coordinate-descent fallback (scikit-learn's meaning; rarely used).
    random_state : int or None, default 0
        Seed of the fold shuffle.
    device : str, default "cpu"
        ``"cpu"`` runs in numpy (the reference path); a torch device (e.g. ``"cuda"``) runs the
        batched gathers and solves there (``"torch-cpu"``: the torch path on the CPU).
    dtype : numpy dtype, default float64
        Dtype of the fitted coefficients and predictions (the fit itself is float64).
    n_substeps : int, default 2
        Path points per alpha interval (intermediate points only warm-start the next one).
    n_jobs : int or None, default None
        Threads for the heavy linear algebra (None: the CPUs available to the process). BLAS
        itself runs single-threaded inside each.

    Attributes
    ----------
    coef_ : ndarray (n_folds, d, p)
        Fold models at the chosen alpha, in the raw feature space.
    intercept_ : ndarray (n_folds, p)
    coef_mean_ : ndarray (d, p)
    intercept_mean_ : ndarray (p,)
        Mean of the fold models: ``predict(Z) == Z @ coef_mean_ + intercept_mean_``.
    alpha_ : ndarray (p,)
        Chosen alpha (NaN for fallbacks).
    alphas_ : ndarray (n_alphas, p)
        Alpha grid of every perturbation (decreasing).
    cv_scores_ : ndarray (n_alphas, p)
        Mean validation Spearman correlation over folds.
    n_train_ : ndarray (p,)
        Labelled rows of every perturbation.
    fallback_ : ndarray (p,) of bool
        Perturbations predicted by their training mean (too few labels, or constant response).
    solver_stats_ : dict
        ``solves`` (active-set sub-problem solves), ``fallback`` (fold problems finished by
        coordinate descent), ``unconverged`` (of those, not within ``tol`` after ``max_iter``),
        ``groups`` (distinct missingness patterns).
    """

    def __init__(
        self,
        n_alphas: int = 10,
        eps: float = 1e-3,
        n_folds: int = 5,
        l1_ratio: float = 1.0,
        standardize: bool = True,
        tol: float = 1e-6,
        max_iter: int = 1000,
        random_state: int | None = 0,
        device: str = "cpu",
        dtype: type | str = np.float64,
        n_substeps: int = 2,
        n_jobs: int | None = None,
    ) -> None:
        self.n_alphas = n_alphas
        self.eps = eps
        self.n_folds = n_folds
        self.l1_ratio = l1_ratio
        self.standardize = standardize
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.n_substeps = n_substeps
        self.n_jobs = n_jobs

    # -- parameter checks ------------------------------------------------------------------------
    def _check_params(self) -> None:
        def bad(what: str, fix: str) -> InputError:
            return InputError(f"{type(self).__name__}: {what}", fix=fix)

        if not (isinstance(self.n_alphas, (int, np.integer)) and self.n_alphas >= 1):
            raise bad(f"n_alphas must be a positive integer, got {self.n_alphas!r}", "use e.g. 10")
        if not (0 < float(self.eps) <= 1):
            raise bad(f"eps must be in (0, 1], got {self.eps!r}", "use e.g. 1e-3")
        if not (isinstance(self.n_folds, (int, np.integer)) and self.n_folds >= 2):
            raise bad(f"n_folds must be an integer >= 2, got {self.n_folds!r}", "use e.g. 5")
        if not (0 < float(self.l1_ratio) <= 1):
            raise bad(f"l1_ratio must be in (0, 1], got {self.l1_ratio!r}", "use 1.0 for LASSO")
        if not (float(self.tol) >= 0):
            raise bad(f"tol must be >= 0, got {self.tol!r}", "use e.g. 1e-6")
        if not (isinstance(self.max_iter, (int, np.integer)) and self.max_iter >= 1):
            raise bad(f"max_iter must be a positive integer, got {self.max_iter!r}", "use 1000")
        if not (isinstance(self.n_substeps, (int, np.integer)) and self.n_substeps >= 1):
            raise bad(f"n_substeps must be a positive integer, got {self.n_substeps!r}", "use 2")
        if self.n_jobs is not None and not (
            isinstance(self.n_jobs, (int, np.integer)) and self.n_jobs >= 1
        ):
            raise bad(f"n_jobs must be None or a positive integer, got {self.n_jobs!r}", "use None")
        if not isinstance(self.device, str):
            raise bad(f"device must be a string, got {self.device!r}", "use 'cpu' or 'cuda'")
        if self.device != "cpu":
            try:
                import torch

                torch.empty(1, device=_torch_device(self.device))
            except Exception as exc:  # noqa: BLE001 - any torch failure means the device is unusable
                raise bad(
                    f"device {self.device!r} is not usable ({exc})", "use device='cpu'"
                ) from None
        if np.dtype(self.dtype).kind != "f":
            raise bad(f"dtype must be a floating type, got {self.dtype!r}", "use numpy.float64")

    # -- fit -------------------------------------------------------------------------------------
    def fit(self, Z: np.ndarray, Y: np.ndarray) -> PSLassoHead:
        """Fit one cross-validated model per column of ``Y``.

        Parameters
        ----------
        Z : array of shape (n_samples, n_features)
            Representation of the samples (finite).
        Y : array of shape (n_samples, n_perturbations) or (n_samples,)
            Responses, NaN where not measured.

        Returns
        -------
        self
        """
        self._check_params()
        Z, Y, _ = validate_xy(Z, Y)
        n, d = Z.shape
        p = Y.shape[1]
        k = int(self.n_folds)
        out_dtype = np.dtype(self.dtype)
        labelled = ~np.isnan(Y)
        n_lab = labelled.sum(axis=0)
        z_mean = Z.mean(axis=0)
        Zc = Z - z_mean

        y_mean = np.array([Y[labelled[:, j], j].mean() if n_lab[j] else np.nan for j in range(p)])
        spread = np.array([np.ptp(Y[labelled[:, j], j]) if n_lab[j] else 0.0 for j in range(p)])
        too_few = n_lab < 2 * k
        constant = ~too_few & (spread <= 1e-12 * np.maximum(1.0, np.abs(np.nan_to_num(y_mean))))
        fallback = too_few | constant
        if too_few.any():
            logger.warning(
                "%d perturbation(s) have fewer than %d labelled rows; predicting their training "
                "mean (e.g. column %d)",
                int(too_few.sum()),
                2 * k,
                int(np.flatnonzero(too_few)[0]),
            )
        if constant.any():
            logger.warning(
                "%d perturbation(s) have a constant response; predicting it (e.g. column %d)",
                int(constant.sum()),
                int(np.flatnonzero(constant)[0]),
            )

        out = {
            "coef": np.zeros((k, d, p)),
            "intercept": np.tile(y_mean, (k, 1)),
            "alphas": np.full((self.n_alphas, p), np.nan),
            "scores": np.full((self.n_alphas, p), np.nan),
            "chosen": np.full(p, np.nan),
        }
        groups: dict[bytes, list[int]] = {}
        for j in np.flatnonzero(~fallback):
            groups.setdefault(np.packbits(labelled[:, j]).tobytes(), []).append(int(j))
        self.solver_stats_ = {"solves": 0, "fallback": 0, "unconverged": 0, "groups": len(groups)}

        n_jobs = _default_jobs() if self.n_jobs is None else int(self.n_jobs)
        batches = _plan_batches(list(groups.values()), n_jobs, k, d)
        # independent batches run side by side, each single-threaded; a lone batch gets the
        # threads for its own linear algebra instead
        outer = max(1, min(n_jobs, len(batches)))
        inner = max(1, n_jobs // outer)

        def run(batch: list[list[int]]) -> dict[str, int]:
            workers = _Workers(inner)
            try:
                return self._fit_batch(batch, Zc, Y, labelled, out, workers)
            finally:
                workers.close()

        with threadpool_limits(1, user_api="blas"):
            if outer > 1:
                with ThreadPoolExecutor(outer, thread_name_prefix="leapscreen-batch") as pool:
                    batch_stats = list(pool.map(run, batches))
            else:
                batch_stats = [run(batch) for batch in batches]
        for st in batch_stats:
            for key, value in st.items():
                self.solver_stats_[key] += value
        if self.solver_stats_["unconverged"]:
            logger.warning(
                "%d fold problem(s) did not reach tol=%g within max_iter=%d",
                self.solver_stats_["unconverged"],
                self.tol,
                self.max_iter,
            )

        coef = out["coef"]
        # intercepts for the raw (uncentred) feature space
        intercept = out["intercept"] - np.einsum("d,kdp->kp", z_mean, coef)
        self.coef_ = coef.astype(out_dtype)
        self.intercept_ = intercept.astype(out_dtype)
        self.coef_mean_ = coef.mean(axis=0).astype(out_dtype)
        self.intercept_mean_ = intercept.mean(axis=0).astype(out_dtype)
        self.alpha_ = out["chosen"]
        self.alphas_ = out["alphas"]
        self.cv_scores_ = out["scores"]
        self.n_train_ = n_lab.astype(np.int64)
        self.fallback_ = fallback
        self.n_features_in_ = d
        return self

    def _fit_batch(
        self,
        groups: list[list[int]],
        Zc: np.ndarray,
        Y: np.ndarray,
        labelled: np.ndarray,
        out: dict[str, np.ndarray],
        workers: _Workers,
    ) -> dict[str, int]:
        """Solve every fold problem of the perturbations in ``groups`` (lists of same-mask
        columns) and write the chosen models into ``out``."""
        k = int(self.n_folds)
        d = Zc.shape[1]
        l1 = float(self.l1_ratio)
        ratios = np.logspace(0.0, math.log10(float(self.eps)), int(self.n_alphas))

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
            mean, scale, keep, G_all, c_all, _ = full.standardised(self.standardize)
            amax = np.abs(c_all).max(axis=1) / l1
            fold = kfold_assignment(mask, k, self.random_state)
            slots, cs, yys = [], [], []
            for f in range(k):
                va = np.flatnonzero(fold == f)
                train = full.minus(_Sums(Zc[va], Y[va][:, cols]))
                mean, scale, keep, Gf, C, yy = train.standardised(self.standardize)
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
            tol=float(self.tol),
            max_iter=int(self.max_iter),
            inverse=inverse,
            device=self.device,
            workers=workers,
            n_rows=n_train,
        )
        score_sum = np.zeros((ratios.size, amax.size))
        best_score = np.full(amax.size, -np.inf)
        best_index = np.zeros(amax.size, dtype=np.int64)
        best_W = np.zeros_like(C)
        nsub = int(self.n_substeps)
        # validation scoring is batched over slots with the same (n_val, q)
        shape_groups: dict[tuple[int, int], list[int]] = {}
        for i, s in enumerate(slots):
            shape_groups.setdefault((s.Xv.shape[0], s.targets.size), []).append(i)
        col_start = np.concatenate([[0], np.cumsum([s.targets.size for s in slots])])
        scoring = []
        for (_, q), members in shape_groups.items():
            Xv = np.stack([slots[i].Xv for i in members])
            yv_rank = _rank_average(np.stack([slots[i].yv for i in members]))
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
                col_scores[colidx] = _corr_of_ranks(_rank_average(pred), yv_rank)
            np.add.at(score_sum[a_i], target_of_col, col_scores)
            mean_score = score_sum[a_i] / k
            # ties (within 1e-12) go to the later, smaller alpha
            better = mean_score >= best_score - _TIE * np.maximum(1.0, np.abs(best_score))
            best_score = np.where(better, np.maximum(mean_score, best_score), best_score)
            best_index = np.where(better, a_i, best_index)
            col_better = better[target_of_col]
            best_W[col_better] = solver.W[col_better]

        out["alphas"][:, targets] = ratios[:, None] * amax[None, :]
        out["scores"][:, targets] = score_sum / k
        out["chosen"][targets] = amax * ratios[best_index]
        for i, s in enumerate(slots):
            cols_i = np.arange(col_start[i], col_start[i + 1])
            w_raw = np.where(s.keep, best_W[cols_i] / s.scale, 0.0)  # (q, d)
            out["coef"][s.fold][:, s.targets] = w_raw.T
            out["intercept"][s.fold, s.targets] = s.y_mean - w_raw @ s.mean
        return {
            "solves": solver.n_solves,
            "fallback": solver.n_fallback,
            "unconverged": solver.n_unconverged,
        }


def _spd_inverse_into(G_aug: np.ndarray, H_aug: np.ndarray, d: int, part: slice) -> None:
    """Invert the leading ``d x d`` blocks of ``G_aug[part]`` into ``H_aug[part]`` (Cholesky).

    Blocks that are not positive definite are left as NaN.
    """
    import ctypes

    if _POTR is None:
        with np.errstate(all="ignore"):
            for s in range(part.start, part.stop):
                try:
                    H_aug[s, :d, :d] = np.linalg.inv(G_aug[s, :d, :d])
                except np.linalg.LinAlgError:
                    H_aug[s, :d, :d] = np.nan
        return
    potrf, potri = _POTR
    lda = G_aug.shape[1]
    n, ld, info = ctypes.c_int(d), ctypes.c_int(lda), ctypes.c_int(0)
    pn, pl, pi = ctypes.byref(n), ctypes.byref(ld), ctypes.byref(info)
    H_aug[part] = G_aug[part]
    step = lda * lda * 8
    base = H_aug.ctypes.data
    failed = []
    for s in range(part.start, part.stop):
        ptr = base + s * step
        potrf(b"L", pn, ptr, pl, pi)
        if info.value == 0:
            potri(b"L", pn, ptr, pl, pi)
        if info.value != 0:
            failed.append(s)
            info.value = 0
    # LAPACK filled the lower triangle in column-major order, i.e. the upper one here
    lower = np.tril_indices(d, -1)
    for s in range(part.start, part.stop):
        H_aug[s][lower] = H_aug[s].T[lower]
    if failed:
        H_aug[failed, :d, :d] = np.nan


def _checked_inverse(G_aug: np.ndarray, d: int, workers: _Workers) -> np.ndarray:
    """Inverse of every (augmented) Gram matrix; NaN where singular or too ill-conditioned.

    The check multiplies back a random vector (O(d^2) per matrix instead of O(d^3)).
    """
    m = G_aug.shape[0]
    H_aug = np.empty_like(G_aug)
    workers.map(lambda part: _spd_inverse_into(G_aug, H_aug, d, part), workers.chunks(m))
    G, H = G_aug[:, :d, :d], H_aug[:, :d, :d]
    with np.errstate(all="ignore"):
        v = np.random.default_rng(0).standard_normal((m, d, 1))
        back = np.matmul(G, np.matmul(H, v))
        err = np.abs(back - v).max(axis=(1, 2)) / np.abs(v).max(axis=(1, 2))
    H[~(err < 1e-8)] = np.nan
    return H_aug
