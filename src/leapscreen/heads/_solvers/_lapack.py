"""LAPACK routines called directly (ctypes, the GIL released), loaded on first use.

SciPy exports its LAPACK through a Cython table; :func:`dposv` and :func:`potr` take routines from
there once, check each on a tiny system and cache the result. Nothing is loaded or probed at import
time. Where a routine cannot be loaded (``None``), callers use numpy instead.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

__all__ = ["cholesky_solve_inplace", "dposv", "potr", "spd_inverse_into"]


def _lapack_function(name: str, n_args: int):  # noqa: ANN202 - a ctypes function or None
    """A LAPACK routine from SciPy's Cython table as a ctypes function (released GIL).

    Returns ``None`` where it cannot be loaded; callers then use numpy instead.
    """
    try:
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


@functools.cache
def dposv():  # noqa: ANN201 - a ctypes function or None
    """``dposv`` (Cholesky solve), checked on a tiny system; ``None`` if unavailable."""
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


@functools.cache
def potr():  # noqa: ANN201 - a pair of ctypes functions or None
    """(``dpotrf``, ``dpotri``): Cholesky factor and inverse, checked on a tiny matrix; or None."""
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


def cholesky_solve_inplace(M: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Solve SPD systems ``M[i] x = R[i]^T`` in place (``R`` of shape (b, r, s), C-contiguous).

    Returns a bool array of the systems that were not positive definite (left unsolved).
    """
    b, r, s = R.shape
    failed = np.zeros(b, dtype=bool)
    n, nrhs, info = ctypes.c_int(s), ctypes.c_int(r), ctypes.c_int(0)
    pn, pr, pi = ctypes.byref(n), ctypes.byref(nrhs), ctypes.byref(info)
    pa, pb = M.ctypes.data, R.ctypes.data
    step_a, step_b = s * s * 8, r * s * 8
    fn = dposv()
    for i in range(b):
        fn(b"L", pn, pr, pa + i * step_a, pn, pb + i * step_b, pn, pi)
        if info.value:
            failed[i] = True
            info.value = 0
    return failed


def spd_inverse_into(G_aug: np.ndarray, H_aug: np.ndarray, d: int, part: slice) -> None:
    """Invert the leading ``d x d`` blocks of ``G_aug[part]`` into ``H_aug[part]`` (Cholesky).

    Blocks that are not positive definite are left as NaN.
    """
    routines = potr()
    if routines is None:
        with np.errstate(all="ignore"):
            for s in range(part.start, part.stop):
                try:
                    H_aug[s, :d, :d] = np.linalg.inv(G_aug[s, :d, :d])
                except np.linalg.LinAlgError:
                    H_aug[s, :d, :d] = np.nan
        return
    potrf, potri = routines
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
