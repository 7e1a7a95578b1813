"""The path solver: many Gram-form LASSO / elastic-net problems along decreasing alphas at once.

The solver is a primal-dual active-set (semismooth Newton) method with a block-principal-pivoting
safeguard, run along the decreasing alpha path with a linear predictor between path points; each
iteration is a batch of small dense solves (one per problem, of the size of the active set or of its
complement) plus shared matrix products. Solutions satisfy the optimality (KKT) conditions to
rounding error. Problems the active-set iteration does not settle (typically fewer training rows
than features and a tiny alpha) are re-solved from the previous path point through finer
intermediate alphas, and the few left after that are finished by scikit-learn's own coordinate
descent on the Gram matrix (the reference algorithm, stopping at a duality gap
``<= tol * ||y - mean y||^2 / n``).
"""

from __future__ import annotations

import numpy as np

from leapscreen.heads._solvers._linalg import _PAD, _gather_solve, _slot_matmul, _Workers

__all__ = ["_PathSolver"]

_MAX_PDAS_ROUNDS = 40  # active-set iterations per path point before refinement / fallback
_REFINE_STEPS = 8  # intermediate alphas when re-solving unsettled problems
_REFINE_DEPTH = 2  # nested refinements before scikit-learn's coordinate descent takes over
_BACKUP = 3  # block-pivoting: full exchanges allowed without progress before single exchanges


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
        if G.shape[1:] != (d + _PAD, d + _PAD):
            raise ValueError(f"Gram matrices must be padded to {d + _PAD} coordinates")
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
