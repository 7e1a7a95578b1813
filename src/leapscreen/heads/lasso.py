"""PS-LASSO: one cross-validated LASSO (or elastic net) per perturbation, all solved together.

The estimator reproduces the reference procedure of LEAP (see ``LEAP-METHOD.md`` section 2.3):
for every perturbation (a column of ``Y``), over that perturbation's labelled rows only,

* the rows are split into ``n_folds`` folds (a seeded shuffle, then contiguous chunks of the sizes
  :class:`sklearn.model_selection.KFold` uses; see :func:`~leapscreen.heads._cv.kfold_assignment`);
* the alpha grid has ``n_alphas`` values log-spaced from ``eps * alpha_max`` to ``alpha_max``, where
  ``alpha_max = max|X^T (y - mean y)| / (n * l1_ratio)`` on the labelled rows (standardised features
  when ``standardize=True``), exactly as scikit-learn defines it;
* each fold model minimises scikit-learn's objective
  ``(1/2n) ||y - Xw - b||^2 + alpha * l1_ratio * ||w||_1 + 0.5 * alpha * (1 - l1_ratio) * ||w||^2``
  with an unpenalised intercept, on features z-scored with the fold's own training rows;
* alpha is chosen by the mean validation Spearman correlation over the folds (ties go to the smaller
  alpha, a constant prediction scores 0: :func:`~leapscreen.heads._cv.choose_alpha`);
* the ``n_folds`` fold models at the chosen alpha are kept and their predictions averaged, which is
  one linear map (``coef_mean_``, ``intercept_mean_``).

How it is fast: the fold problems of all perturbations that share a missingness pattern share one
Gram matrix per fold, and all of them are solved at once along the path by the solver layer
(:mod:`leapscreen.heads._solvers`: an active-set path solver, finished where needed by
scikit-learn's coordinate descent). The folds, the scoring, the tie rule and the fallback rule are
the CV engine every head shares (:mod:`leapscreen.heads._cv`).

Linear algebra runs in a few threads of single-threaded BLAS (``n_jobs``), which also keeps it fast
on a busy machine where multi-threaded BLAS stalls.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np
from threadpoolctl import threadpool_limits

from leapscreen.base import BaseHead, LinearHeadMixin
from leapscreen.errors import InputError
from leapscreen.heads._cv import Preference, fallback_columns, label_groups, linear_out_of_fold
from leapscreen.heads._solvers._linalg import _default_jobs, _Workers
from leapscreen.heads._solvers.cv_path import PathCV, plan_batches, solve_groups
from leapscreen.registry import register_head

logger = logging.getLogger(__name__)

__all__ = ["PSLassoHead"]


@register_head("ps-lasso")
class PSLassoHead(LinearHeadMixin, BaseHead):
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

    #: which alpha wins a tie of mean CV scores (see :func:`leapscreen.heads._cv.choose_alpha`):
    #: the smaller, as LEAP's reference procedure; the path solver visits the grid in that order
    alpha_tie: ClassVar[Preference] = "smaller"

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
                from leapscreen.heads._solvers._torch import check_device

                check_device(self.device)
            except Exception as exc:  # noqa: BLE001 - any torch failure means the device is unusable
                raise bad(
                    f"device {self.device!r} is not usable ({exc})", "use device='cpu'"
                ) from None
        if np.dtype(self.dtype).kind != "f":
            raise bad(f"dtype must be a floating type, got {self.dtype!r}", "use numpy.float64")

    # -- fit -------------------------------------------------------------------------------------
    def _settings(self) -> PathCV:
        return PathCV(
            n_folds=int(self.n_folds),
            n_alphas=int(self.n_alphas),
            eps=float(self.eps),
            l1_ratio=float(self.l1_ratio),
            standardize=bool(self.standardize),
            tol=float(self.tol),
            max_iter=int(self.max_iter),
            random_state=self.random_state,
            device=self.device,
            n_substeps=int(self.n_substeps),
        )

    def fit(self, Z: Any, Y: Any) -> PSLassoHead:
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
        Z, Y = self._validate_fit(Z, Y)
        n, d = Z.shape
        p = Y.shape[1]
        k = int(self.n_folds)
        out_dtype = np.dtype(self.dtype)
        labelled = ~np.isnan(Y)
        z_mean = Z.mean(axis=0)
        Zc = Z - z_mean
        fallback, y_mean, n_lab = fallback_columns(Y, labelled, 2 * k, logger)

        out = {
            "coef": np.zeros((k, d, p)),
            "intercept": np.tile(y_mean, (k, 1)),
            "alphas": np.full((self.n_alphas, p), np.nan),
            "scores": np.full((self.n_alphas, p), np.nan),
            "chosen": np.full(p, np.nan),
        }
        groups = label_groups(labelled, np.flatnonzero(~fallback))
        self.solver_stats_ = {"solves": 0, "fallback": 0, "unconverged": 0, "groups": len(groups)}

        n_jobs = _default_jobs() if self.n_jobs is None else int(self.n_jobs)
        batches = plan_batches(list(groups.values()), n_jobs, k, d)
        # independent batches run side by side, each single-threaded; a lone batch gets the
        # threads for its own linear algebra instead
        outer = max(1, min(n_jobs, len(batches)))
        inner = max(1, n_jobs // outer)

        settings = self._settings()

        def run(batch: list[list[int]]) -> dict[str, int]:
            workers = _Workers(inner)
            try:
                return solve_groups(settings, batch, Zc, Y, labelled, out, workers)
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
        self._oof = linear_out_of_fold(
            Z, Y, coef, intercept, np.flatnonzero(~fallback), self.random_state
        )
        return self
