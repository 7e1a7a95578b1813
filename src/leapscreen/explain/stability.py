r"""Calibrated stability selection with the LASSO, one perturbation (column of ``Y``) at a time.

Procedure
---------
*Standardisation.* The features are z-scored once, over all rows of ``X`` (constant features get
scale 1 and are never selected).

*Subsamples.* ``K`` random permutations of all rows are drawn once from ``random_state``. For
subsample ``k``, perturbation ``p`` uses the first :math:`\lfloor n_p / 2 \rfloor` of its own
:math:`n_p` labelled rows (non-NaN responses) in the order of permutation ``k``: a uniformly random
half of its labelled rows, and perturbations labelled on the same rows get the same halves.

*Penalty grid.* ``n_penalties`` values, geometric from :math:`\lambda_{\max} = \max_j |x_j' y| / n_p`
(centred, on the full labelled rows of the perturbation; the smallest penalty that selects nothing
there) down to ``penalty_ratio`` times it. The LASSO objective is scikit-learn's,
:math:`\frac{1}{2m}\|y - \beta_0 - X\beta\|^2 + \lambda \|\beta\|_1` on the ``m`` rows of a
subsample (intercept unpenalised). Each subsample's path stops before the first penalty whose
solution has more than a cap of nonzero coefficients (a quarter of the labelled rows, and with
``pfer_max`` three times the largest mean count any threshold allows); later subsamples stop
there too, so the grid of a result may be shorter than ``n_penalties``.

*Solver.* Each subsample's path is solved exactly (to the optimality conditions) by a working-set
method: scikit-learn's coordinate descent (Gram form) on a small set of candidate features, then
the gradient of every feature at every penalty of the path (one matrix product); features that
violate the optimality conditions join the set and the path is solved again from the first
penalty where a violation occurred. The set starts from the features active in the previous
subsample plus the largest marginal correlations, so that usually one or two rounds suffice.

*Selection proportions.* :math:`\hat\Pi_j(\lambda)` = fraction of the ``K`` subsamples whose
solution at :math:`\lambda` has :math:`\beta_j \ne 0`; :math:`H_j(\lambda) = K\hat\Pi_j(\lambda)`
the selection count.

*Calibrated stability score* (Bodinier et al., "Automated calibration for stability selection in
penalised regression and graphical models", JRSS-C 2023; the score of the R package ``sharp``,
implemented here from the published formula). With :math:`q(\lambda)` the mean number of selected
features per subsample and ``N`` features, under the null of uniform selection every count is
:math:`\mathrm{Binomial}(K, q(\lambda)/N)` with distribution function ``F``. For a threshold
:math:`\pi \in (0.5, 1)` a feature is *stably selected* if :math:`H_j \ge K\pi`, *stably excluded*
if :math:`H_j \le K(1-\pi)` and *unstable* otherwise, and

.. math:: L_{\lambda,\pi} = \prod_{j=1}^N
          P_{\rm sel}^{\,1[H_j \ge K\pi]}\;
          P_{\rm uns}^{\,1[K(1-\pi) < H_j < K\pi]}\;
          P_{\rm exc}^{\,1[H_j \le K(1-\pi)]},

with :math:`P_{\rm sel} = P(H \ge K\pi) = 1 - F(\lceil K\pi \rceil - 1)`,
:math:`P_{\rm exc} = P(H \le K(1-\pi)) = F(\lfloor K(1-\pi) \rfloor)` and
:math:`P_{\rm uns} = 1 - P_{\rm sel} - P_{\rm exc}` (for integer :math:`K\pi`, as with the default
``K = 100`` and thresholds on a 0.01 grid, these are exactly the published
:math:`1 - F(K\pi - 1)`, :math:`F(K(1-\pi))` and their complement). The score is
:math:`S(\lambda, \pi) = -\log L_{\lambda,\pi} = -\sum_c N_c \log P_c` over the three categories
(no multinomial coefficient, as published); higher means less compatible with uniform selection,
i.e. more stable. The probabilities are summed from binomial log-probabilities (no cancellation).

*Choice.* :math:`(\lambda, \pi)` maximising ``S`` over the grid (ties: the larger penalty, then
the lower threshold). With ``pfer_max``, pairs whose Meinshausen-Buehlmann bound
:math:`q(\lambda)^2 / ((2\pi - 1) N)` on the expected number of false selections exceeds it are not
allowed (score NaN). The bound at the chosen pair is reported either way. The default thresholds
are sharp's ``StabilityScore`` default, 0.60 to 0.90 by 0.01.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import logsumexp
from scipy.stats import binom

from leapscreen.errors import InputError

__all__ = [
    "DEFAULT_THRESHOLDS",
    "StabilityResult",
    "choose_pair",
    "mb_bound",
    "stability_score",
    "stability_selection",
]

DEFAULT_THRESHOLDS = np.round(np.arange(0.60, 0.905, 0.01), 2)
_MIN_LABELLED = 6  # a perturbation needs this many labelled rows (subsamples of 3)
_INIT_TOP = 32  # largest marginal correlations in the first working set
_CAP_FACTOR = (
    1.0  # the grid ends where the mean count exceeds this many times the largest allowed q
)
_KKT_SLACK = 1e-4  # relative slack on |gradient| <= penalty (float32 gradients)
_TOL = 1e-10  # the path solver's tolerance (its solutions satisfy the KKT conditions exactly)
_BATCH = 200  # problems solved together (Gram matrices of at most ~264^2 each)
_WINDOW = 2  # violations within this many penalties of the first one join a working set
_PILOTS = 4  # subsamples per perturbation solved first; their active features seed the others
_GRAD_BATCH = 16  # problems whose gradients are formed together


@dataclass(repr=False)
class StabilityResult:
    """Stability selection of one perturbation (one column of ``Y``).

    Attributes
    ----------
    penalties : numpy.ndarray
        (L,) the penalty grid, descending.
    thresholds : numpy.ndarray
        (T,) selection-proportion thresholds, ascending in (0.5, 1).
    proportions : numpy.ndarray
        (L, F) float32, selection proportion of every feature at every penalty.
    scores : numpy.ndarray
        (L, T) calibrated stability score (higher = more stable; NaN = not allowed by
        ``pfer_max``).
    penalty_index : int
        The chosen penalty (row of ``proportions`` / ``scores``).
    threshold : float
        The chosen threshold.
    pfer_bound : float
        Meinshausen-Buehlmann upper bound on the expected number of falsely selected features at
        the chosen pair, :math:`q^2 / ((2\\pi - 1) N)`.
    selected : numpy.ndarray
        (F,) bool: proportion at the chosen penalty >= the chosen threshold.
    mean_coef : numpy.ndarray
        (F,) mean LASSO coefficient (on the z-scored features) over all subsamples at the chosen
        penalty (zeros included).
    n_samples : int
        Labelled samples used (each subsample has ``n_samples // 2``).
    n_selected_mean : numpy.ndarray
        (L,) mean number of selected features per subsample, :math:`q(\\lambda)`.
    """

    penalties: np.ndarray
    thresholds: np.ndarray
    proportions: np.ndarray
    scores: np.ndarray
    penalty_index: int
    threshold: float
    pfer_bound: float
    selected: np.ndarray
    mean_coef: np.ndarray
    n_samples: int
    n_selected_mean: np.ndarray | None = None

    def __repr__(self) -> str:
        return (
            f"StabilityResult(features={self.proportions.shape[1]}, "
            f"penalties={self.penalties.size}, penalty={self.penalty:.4g}, "
            f"threshold={self.threshold:.2f}, selected={int(self.selected.sum())}, "
            f"pfer_bound={self.pfer_bound:.3g}, n_samples={self.n_samples})"
        )

    @property
    def penalty(self) -> float:
        """The chosen penalty."""
        return float(self.penalties[self.penalty_index])

    @property
    def chosen_proportions(self) -> np.ndarray:
        """(F,) selection proportions at the chosen penalty."""
        return np.asarray(self.proportions[self.penalty_index], dtype=np.float64)

    def table(self, feature_names: Sequence[str]) -> pd.DataFrame:
        """One row per feature at the chosen penalty, most often selected first.

        Parameters
        ----------
        feature_names : sequence of str
            The F feature names, in column order of ``X``.

        Returns
        -------
        pandas.DataFrame
            Columns ``feature``, ``proportion``, ``sign`` (+1 / -1 / 0, of the mean coefficient),
            ``mean_coef``, ``selected``; sorted by proportion (descending), then by
            ``|mean_coef|`` (descending).
        """
        names = list(feature_names)
        if len(names) != self.selected.size:
            raise InputError(
                f"got {len(names)} feature names for {self.selected.size} features",
                fix="pass the names of the columns of X, in order",
            )
        frame = pd.DataFrame(
            {
                "feature": names,
                "proportion": self.chosen_proportions,
                "sign": np.sign(self.mean_coef).astype(int),
                "mean_coef": self.mean_coef,
                "selected": self.selected,
            }
        )
        frame["_abs"] = np.abs(self.mean_coef)
        frame = frame.sort_values(["proportion", "_abs"], ascending=False, kind="stable")
        return frame.drop(columns="_abs").reset_index(drop=True)


# ------------------------------------------------------------------------------ the score


def _as_thresholds(thresholds: Sequence[float] | np.ndarray | None) -> np.ndarray:
    if thresholds is None:
        return DEFAULT_THRESHOLDS.copy()
    t = np.asarray(thresholds, dtype=np.float64).ravel()
    if t.size == 0 or not np.all((t > 0.5) & (t < 1.0)):
        raise InputError(
            "thresholds must be numbers in (0.5, 1)",
            fix="pass thresholds such as numpy.arange(0.6, 0.91, 0.01)",
        )
    return np.unique(t)


def _category_log_probs(
    q_over_n: np.ndarray, n_subsamples: int, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Log-probabilities of the three categories under Binomial(K, q/N), shape (L, T) each, and
    the integer count limits: selected means count >= hi, excluded means count <= lo."""
    K = int(n_subsamples)
    hi = np.ceil(K * thresholds - 1e-9).astype(int)  # count >= K pi
    lo = np.floor(K * (1.0 - thresholds) + 1e-9).astype(int)  # count <= K (1 - pi)
    k = np.arange(K + 1)
    with np.errstate(divide="ignore"):
        logpmf = binom.logpmf(k[None, :], K, np.clip(q_over_n, 0.0, 1.0)[:, None])  # (L, K + 1)
    L, T = q_over_n.size, thresholds.size
    log_sel = np.empty((L, T))
    log_exc = np.empty((L, T))
    log_uns = np.empty((L, T))
    for t in range(T):
        log_sel[:, t] = logsumexp(logpmf[:, hi[t] :], axis=1)
        log_exc[:, t] = logsumexp(logpmf[:, : lo[t] + 1], axis=1)
        mid = logpmf[:, lo[t] + 1 : hi[t]]
        log_uns[:, t] = logsumexp(mid, axis=1) if mid.shape[1] else -np.inf
    return log_sel, log_uns, log_exc, hi, lo


def stability_score(
    counts: np.ndarray, n_subsamples: int, thresholds: Sequence[float] | np.ndarray | None = None
) -> np.ndarray:
    """The calibrated stability score of selection counts (see the module docstring).

    Parameters
    ----------
    counts : numpy.ndarray
        (L, F) or (F,) selection counts :math:`H_j(\\lambda)` (integers in ``[0, K]``).
    n_subsamples : int
        ``K``.
    thresholds : array-like, optional
        Thresholds in (0.5, 1); default 0.60 to 0.90 by 0.01.

    Returns
    -------
    numpy.ndarray
        (L, T) scores :math:`-\\log L_{\\lambda,\\pi}` (a 1-D ``counts`` gives L = 1).
    """
    H = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    t = _as_thresholds(thresholds)
    K = int(n_subsamples)
    if K < 1 or np.any(H < 0) or np.any(H > K):
        raise InputError("counts must lie in [0, n_subsamples]", fix="pass selection counts")
    N = H.shape[1]
    q = H.sum(axis=1) / K
    log_sel, log_uns, log_exc, hi, lo = _category_log_probs(q / N, K, t)
    Hr = np.rint(H)
    n_sel = (Hr[:, :, None] >= hi[None, None, :]).sum(axis=1)
    n_exc = (Hr[:, :, None] <= lo[None, None, :]).sum(axis=1)
    n_uns = N - n_sel - n_exc
    with np.errstate(invalid="ignore"):
        terms = [
            np.where(n > 0, n * lp, 0.0)
            for n, lp in ((n_sel, log_sel), (n_uns, log_uns), (n_exc, log_exc))
        ]
    return -(terms[0] + terms[1] + terms[2])


def mb_bound(n_selected_mean: np.ndarray, n_features: int, thresholds: np.ndarray) -> np.ndarray:
    """Meinshausen-Buehlmann bound :math:`q^2 / ((2\\pi - 1) N)`, shape (L, T)."""
    q = np.asarray(n_selected_mean, dtype=np.float64)[:, None]
    t = np.asarray(thresholds, dtype=np.float64)[None, :]
    return q**2 / ((2.0 * t - 1.0) * n_features)


def choose_pair(scores: np.ndarray, bounds: np.ndarray) -> tuple[int, int]:
    """Row and column of the best allowed score (ties: first row, then first column); where
    nothing is allowed, the pair with the smallest bound (the largest penalty on ties)."""
    ok = np.isfinite(scores)
    if ok.any():
        best = np.where(ok, scores, -np.inf)
        flat = int(np.argmax(best))  # first maximum in row-major order
        return divmod(flat, scores.shape[1])
    flat = int(np.argmin(bounds))
    return divmod(flat, scores.shape[1])


# ----------------------------------------------------------------------------- the solver


@dataclass
class _Problem:
    """One (perturbation, subsample) LASSO path and its working set."""

    pert: int  # position of the perturbation in the chunk
    k: int  # subsample
    rows: np.ndarray  # labelled rows of the subsample (sorted)
    yc: np.ndarray  # centred responses on those rows
    grid: np.ndarray  # the perturbation's penalties
    S: np.ndarray  # working set (sorted feature indices)
    coef: np.ndarray | None = None  # (L, |S|) solutions on the working set


def _gradients(Z32: np.ndarray, problems: list[_Problem], residuals: list[np.ndarray]) -> list:
    """``|Z[rows]' r| / m`` of every feature for each problem's residual columns (float32).

    Residuals of centred fits sum to zero, so the centring of ``Z[rows]`` cancels.
    """
    out = []
    for prob, R in zip(problems, residuals, strict=True):
        block = Z32[prob.rows]
        out.append(np.abs(block.T @ R.astype(np.float32)) / np.float32(prob.rows.size))
    return out


def _violators(g: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Features violating ``|gradient| <= penalty`` on the path (``g`` (F, L)), as a sequential
    path would meet them: those whose first violation lies within ``_WINDOW`` penalties of the
    first violation of all (later ones are mostly artefacts of the missing features)."""
    bad = g > grid[None, :] * (1.0 + _KKT_SLACK)
    hit = np.flatnonzero(bad.any(axis=1))
    if not hit.size:
        return hit
    first = np.argmax(bad[hit], axis=1)
    return hit[first <= first.min() + _WINDOW]


def _solve_batch(Z: np.ndarray, problems: list[_Problem], L: np.ndarray, workers) -> None:
    """Paths of many problems on their working sets at once (the project's batched active-set
    path solver), written into ``problem.coef`` for the first ``L[problem.pert]`` penalties."""
    from threadpoolctl import threadpool_limits

    from leapscreen.heads._solvers._linalg import _PAD, _checked_inverse
    from leapscreen.heads._solvers.path import _PathSolver

    B = len(problems)
    sizes = np.array([p.S.size for p in problems])
    d = int(-(-max(int(sizes.max()), 1) // _PAD) * _PAD)
    G = np.zeros((B, d + _PAD, d + _PAD))
    G[:, np.arange(d, d + _PAD), np.arange(d, d + _PAD)] = 1.0
    C = np.zeros((B, d))
    yy = np.zeros(B)
    n_rows = np.zeros(B, dtype=np.int64)
    for b, prob in enumerate(problems):
        s, m = prob.S.size, prob.rows.size
        Xs = Z[np.ix_(prob.rows, prob.S)]
        Xs -= Xs.mean(axis=0)
        G[b, :s, :s] = Xs.T @ Xs / m
        G[b, np.arange(s, d), np.arange(s, d)] = 1.0  # dummy coordinates: never enter
        C[b, :s] = Xs.T @ prob.yc / m
        yy[b] = prob.yc @ prob.yc / m
        n_rows[b] = m
    with threadpool_limits(1, user_api="blas"):
        inverse = _checked_inverse(G, d, workers)
    solver = _PathSolver(
        G,
        C,
        yy,
        np.arange(B),
        l1_ratio=1.0,
        tol=_TOL,
        max_iter=10_000,
        inverse=inverse,
        device="cpu",
        workers=workers,
        n_rows=n_rows,
    )
    lengths = np.array([L[p.pert] for p in problems])
    grids = np.stack([p.grid for p in problems])
    out = np.zeros((B, int(lengths.max()), d))
    with threadpool_limits(1, user_api="blas"):
        for li in range(int(lengths.max())):
            alpha = grids[np.arange(B), np.minimum(li, lengths - 1)]
            solver.advance(np.minimum(alpha, solver.alpha), final=True)
            out[:, li] = solver.W
    for b, prob in enumerate(problems):
        prob.coef = out[b, : lengths[b], : prob.S.size].copy()


def _solve_chunk(
    Z: np.ndarray,
    Z32: np.ndarray,
    problems: list[_Problem],
    caps: np.ndarray,
    L: np.ndarray,
    workers,
) -> None:
    """Exact paths of all problems of a chunk: working sets grow until no feature outside them
    violates the optimality conditions at any penalty kept; the grid of a perturbation ends
    before the first penalty where its subsamples select more than ``caps`` features on average
    (``L`` is updated in place)."""
    pending = problems
    while pending:
        for a in range(0, len(pending), _BATCH):
            _solve_batch(Z, pending[a : a + _BATCH], L, workers)
        for pert in {p.pert for p in pending}:
            mine = [p for p in problems if p.pert == pert and p.coef is not None]
            width = min(p.coef.shape[0] for p in mine)
            mean_nnz = np.mean([(p.coef[:width] != 0).sum(axis=1) for p in mine], axis=0)
            over = np.flatnonzero(mean_nnz > caps[pert])
            if over.size:
                L[pert] = max(1, min(L[pert], int(over[0])))
        residuals = []
        for p in pending:
            p.coef = p.coef[: L[p.pert]]
            Xs = Z[np.ix_(p.rows, p.S)]
            Xs -= Xs.mean(axis=0)
            residuals.append(p.yc[:, None] - Xs @ p.coef.T)
        still = []
        for a in range(0, len(pending), _GRAD_BATCH):
            part = pending[a : a + _GRAD_BATCH]
            for p, g in zip(
                part, _gradients(Z32, part, residuals[a : a + _GRAD_BATCH]), strict=True
            ):
                g[p.S] = 0.0
                new = _violators(g, p.grid[: L[p.pert]])
                if new.size:
                    p.S = np.union1d(p.S, new).astype(np.intp)
                    p.coef = None
                    still.append(p)
        pending = still


# ----------------------------------------------------------------------------- the driver


def _check_inputs(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise InputError(
            f"X must be (samples, features) and Y (samples, perturbations) with the same rows; "
            f"got {X.shape} and {Y.shape}",
            fix="pass aligned matrices",
        )
    if X.shape[1] < 1:
        raise InputError("X has no features", fix="pass at least one feature column")
    if not np.isfinite(X).all():
        raise InputError("X has missing or infinite values", fix="impute or drop them first")
    if np.isinf(Y).any():
        raise InputError("Y has infinite values", fix="use NaN for unlabelled entries")
    n_lab = (~np.isnan(Y)).sum(axis=0)
    short = np.flatnonzero(n_lab < _MIN_LABELLED)
    if short.size:
        raise InputError(
            f"{short.size} perturbation(s) have fewer than {_MIN_LABELLED} labelled samples "
            f"(first: column {int(short[0])}, {int(n_lab[short[0]])} labelled)",
            fix="drop those perturbations before stability selection",
        )
    return X, Y


def _zscore(X: np.ndarray) -> np.ndarray:
    mean = X.mean(axis=0)
    sd = X.std(axis=0)
    return (X - mean) / np.where(sd > 0, sd, 1.0)


def penalty_grid(
    Z: np.ndarray, y: np.ndarray, n_penalties: int, penalty_ratio: float
) -> np.ndarray:
    """Geometric grid from :math:`\\max_j |z_j' y| / n` (centred) down to ``penalty_ratio`` times
    it, descending; all zeros where ``y`` is constant."""
    zc = Z - Z.mean(axis=0)
    lam_max = float(np.abs(zc.T @ (y - y.mean())).max()) / y.size
    return lam_max * np.geomspace(1.0, penalty_ratio, n_penalties)


def _chunks(P: int, K: int) -> list[np.ndarray]:
    per = max(1, _BATCH // max(K, 1))
    return [np.arange(a, min(P, a + per)) for a in range(0, P, per)]


def stability_selection(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    n_subsamples: int = 100,
    n_penalties: int = 50,
    thresholds: Sequence[float] | np.ndarray | None = None,
    pfer_max: float | None = 1.0,
    penalty_ratio: float = 0.01,
    random_state: int = 0,
    n_jobs: int | None = None,
) -> list[StabilityResult]:
    """Calibrated stability selection of the features of ``X`` for every column of ``Y``.

    Parameters
    ----------
    X : array-like
        (n, F) features (finite).
    Y : array-like
        (n, P) responses, NaN where unlabelled (a 1-D ``Y`` is one perturbation). Each column
        uses only its labelled rows.
    n_subsamples : int, default 100
        ``K``, random half-subsamples of the labelled rows.
    n_penalties : int, default 50
        Length of the penalty grid (before the dense end is cut, see the module docstring).
    thresholds : array-like, optional
        Selection-proportion thresholds in (0.5, 1); default 0.60 to 0.90 by 0.01 (sharp's
        ``StabilityScore`` default).
    pfer_max : float or None, default 1.0
        Only (penalty, threshold) pairs with a Meinshausen-Buehlmann bound at most this are
        allowed (sharp's constrained calibration); ``None`` lets the score choose freely. The
        default constrains because with many more features than samples the unconstrained score
        keeps growing towards the dense end of the path (many features with intermediate
        proportions are themselves unlikely under uniform selection), where the bound is
        useless.
    penalty_ratio : float, default 0.01
        Smallest penalty of the grid, relative to the largest.
    random_state : int, default 0
        Seed of the subsamples (same seed, same result).
    n_jobs : int, optional
        Threads of the path solver (default: the CPUs available).

    Returns
    -------
    list of StabilityResult
        One per column of ``Y``.
    """
    from leapscreen.heads._solvers._linalg import _default_jobs, _Workers

    X, Y = _check_inputs(X, Y)
    t = _as_thresholds(thresholds)
    K = int(n_subsamples)
    if K < 2:
        raise InputError(f"n_subsamples must be >= 2, got {n_subsamples!r}", fix="pass 100")
    if int(n_penalties) < 1:
        raise InputError(f"n_penalties must be >= 1, got {n_penalties!r}", fix="pass 50")
    if not 0.0 < penalty_ratio < 1.0:
        raise InputError(f"penalty_ratio must be in (0, 1), got {penalty_ratio!r}", fix="pass 0.01")
    if pfer_max is not None and not pfer_max > 0:
        raise InputError(f"pfer_max must be > 0, got {pfer_max!r}", fix="pass e.g. 1 or 5")
    n, F = X.shape
    P = Y.shape[1]
    n_pen = int(n_penalties)
    Z = _zscore(X)
    Z32 = Z.astype(np.float32)
    max_selected = None
    if pfer_max is not None:
        # the largest q any threshold allows: q^2 / ((2 pi - 1) N) <= pfer_max
        max_selected = float(np.sqrt(pfer_max * (2.0 * t.max() - 1.0) * F))
    rng = np.random.default_rng(random_state)
    ranks = np.argsort(np.stack([rng.permutation(n) for _ in range(K)]), axis=1)  # (K, n)
    workers = _Workers(_default_jobs() if n_jobs is None else int(n_jobs))
    results: list[StabilityResult] = []
    try:
        for cols in _chunks(P, K):
            results.extend(
                _run_chunk(
                    Z,
                    Z32,
                    Y,
                    cols,
                    ranks,
                    n_pen,
                    penalty_ratio,
                    t,
                    pfer_max,
                    max_selected,
                    workers,
                )
            )
    finally:
        workers.close()
    return results


def _run_chunk(
    Z,
    Z32,
    Y,
    cols,
    ranks,
    n_pen,
    penalty_ratio,
    thresholds,
    pfer_max,
    max_selected,
    workers,
) -> list[StabilityResult]:
    """Stability selection of the perturbations ``cols`` (solved together)."""
    K = ranks.shape[0]
    F = Z.shape[1]
    grids, caps, n_lab = [], [], []
    problems: list[_Problem] = []
    for i, col in enumerate(cols):
        y_all = Y[:, col]
        labelled = np.flatnonzero(~np.isnan(y_all))
        half = labelled.size // 2
        grid = penalty_grid(Z[labelled], y_all[labelled], n_pen, penalty_ratio)
        cap = max(1, half // 2)
        if max_selected is not None:
            cap = min(cap, max(1, int(np.ceil(_CAP_FACTOR * max_selected))))
        grids.append(grid)
        caps.append(cap)
        n_lab.append(labelled.size)
        if grid[0] <= 0:
            continue  # constant responses: nothing is ever selected
        for k in range(K):
            order = np.argsort(ranks[k, labelled], kind="stable")
            rows = np.sort(labelled[order[:half]])
            y = y_all[rows]
            problems.append(_Problem(i, k, rows, y - y.mean(), grid, np.zeros(0, dtype=np.intp)))
    L = np.array([n_pen if g[0] > 0 else 1 for g in grids])
    if problems:
        # first working sets: the largest marginal correlations of each subsample; the pilot
        # subsamples of each perturbation are solved first, and the features active in any of
        # them join the working sets of the others
        for a in range(0, len(problems), _GRAD_BATCH):
            part = problems[a : a + _GRAD_BATCH]
            grads = _gradients(Z32, part, [p.yc[:, None] for p in part])
            for p, g in zip(part, grads, strict=True):
                top = min(F, _INIT_TOP)
                p.S = np.sort(np.argpartition(-g[:, 0], top - 1)[:top]).astype(np.intp)
        caps_arr = np.asarray(caps, dtype=np.float64)
        pilots = [p for p in problems if p.k < _PILOTS]
        rest = [p for p in problems if p.k >= _PILOTS]
        _solve_chunk(Z, Z32, pilots, caps_arr, L, workers)
        seeds: dict[int, np.ndarray] = {}
        for p in pilots:
            active = p.S[(p.coef != 0).any(axis=0)]
            seeds[p.pert] = np.union1d(seeds.get(p.pert, active), active)
        for p in rest:
            p.S = np.union1d(p.S, seeds.get(p.pert, p.S)).astype(np.intp)
        _solve_chunk(Z, Z32, rest, caps_arr, L, workers)
    out = []
    for i in range(len(cols)):
        Li = int(L[i])
        counts = np.zeros((Li, F), dtype=np.int32)
        coef_sum = np.zeros((Li, F))
        for p in problems:
            if p.pert != i:
                continue
            c = p.coef[:Li]
            counts[:, p.S] += c != 0
            coef_sum[:, p.S] += c
        out.append(_finish(grids[i][:Li], counts, coef_sum, K, thresholds, pfer_max, n_lab[i]))
    return out


def _finish(
    grid: np.ndarray,
    counts: np.ndarray,
    coef_sum: np.ndarray,
    K: int,
    thresholds: np.ndarray,
    pfer_max: float | None,
    n_lab: int,
) -> StabilityResult:
    F = counts.shape[1]
    q = counts.sum(axis=1) / K
    scores = stability_score(counts, K, thresholds)
    bounds = mb_bound(q, F, thresholds)
    if pfer_max is not None:
        scores = np.where(bounds <= pfer_max, scores, np.nan)
    li, ti = choose_pair(scores, bounds)
    threshold = float(thresholds[ti])
    return StabilityResult(
        penalties=grid,
        thresholds=thresholds.copy(),
        proportions=(counts / K).astype(np.float32),
        scores=scores,
        penalty_index=int(li),
        threshold=threshold,
        pfer_bound=float(bounds[li, ti]),
        selected=counts[li] >= np.ceil(K * threshold - 1e-9),
        mean_coef=coef_sum[li] / K,
        n_samples=int(n_lab),
        n_selected_mean=q,
    )
