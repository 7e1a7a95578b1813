"""Gene selection, log transform and per-gene z-scoring, fitted on the training expression only.

The statistics (selected genes, means, scales) are learnt once, on the training samples, and never
refitted on new data: one new sample alone maps to the values it would get inside a large batch.
Genes of the model that the new samples lack are imputed with the training mean, so they contribute
z = 0, and a warning gives their number; too few genes in common is an error that says what to do.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from leapscreen.errors import InputError

logger = logging.getLogger(__name__)

#: ``log_transform="auto"`` treats the input as un-logged (TPM, counts) when every observed value is
#: >= 0 and the largest exceeds this bound. log2(TPM + 1) cannot exceed log2(1e6 + 1) ~ 19.9 and
#: ln(1 + TPM) ~ 13.8, while TPM or counts of a real transcriptome always have values far above 50.
AUTO_LOG_MAX = 50.0
#: Largest value log2(TPM + 1) can take (TPM sums to a million): new data of a model fitted on
#: un-logged values whose maximum stays below this is taken for already-logged data.
LOGGED_MAX = float(np.log2(1e6 + 1.0)) + 0.5

_STATE_FORMAT = "leapscreen.Preprocessor/1"


def looks_unlogged(values: np.ndarray) -> bool:
    """Whether expression values look un-logged (TPM or counts) rather than log-scale.

    Parameters
    ----------
    values : np.ndarray
        Expression values, any shape; NaN entries are ignored.

    Returns
    -------
    bool
        True when every finite value is >= 0 and the largest exceeds :data:`AUTO_LOG_MAX`.
    """
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return False
    return bool(finite.min() >= 0.0 and finite.max() > AUTO_LOG_MAX)


def _numeric_frame(X: Any, what: str) -> pd.DataFrame:
    """Check that ``X`` is a non-empty numeric samples x genes DataFrame with unique gene names."""
    if not isinstance(X, pd.DataFrame):
        raise InputError(
            f"{what} must be a pandas DataFrame (samples x genes, columns = gene names), "
            f"got {type(X).__name__}",
            fix="pass the expression as a DataFrame whose columns are gene symbols",
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise InputError(
            f"{what} is empty ({X.shape[0]} samples x {X.shape[1]} genes)",
            fix="check that the expression file was read with samples as rows and genes as columns",
        )
    bad = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    if bad:
        raise InputError(
            f"{what} has {len(bad)} non-numeric gene column(s), e.g. {[str(b) for b in bad[:3]]}",
            column=str(bad[0]),
            fix="keep only numeric expression columns (sample annotations go in a separate table)",
        )
    return X


class Preprocessor:
    """Select genes, optionally log-transform, and z-score each gene with training statistics.

    Parameters
    ----------
    n_genes : int or None, default 5000
        Number of most-variant genes (variance on the training expression, after the log transform)
        to keep; ``None`` keeps every gene with a finite variance. Ignored when ``genes`` is given.
    genes : sequence of str, optional
        Fixed gene list to use instead of the variance selection; it is intersected with the genes
        of the training expression (order of ``genes`` kept). Fewer than ``min_coverage`` of them
        present is an error.
    log_transform : bool or "auto", default False
        Apply ln(1 + x) before scaling (for TPM or counts). ``"auto"`` does so when the training
        values look un-logged: all >= 0 and the maximum above 50 (see :func:`looks_unlogged`).
    min_coverage : float, default 0.8
        Smallest fraction of the model's genes that new samples (or the training data, for a given
        ``genes`` list) must contain.

    Attributes
    ----------
    genes_ : list of str
        The model's genes, in output column order.
    mean_, scale_ : np.ndarray of float64
        Per-gene training mean and standard deviation (ddof=0) in the logged space; zero-variance
        genes get scale 1.
    log_transform_ : bool
        Whether ln(1 + x) is applied.
    input_range_ : tuple of float or None
        Smallest and largest finite training value as given (before the log), from which
        :meth:`transform` recognises new data on the other scale (TPM for a model fitted on
        log-scale values, or the reverse). ``None`` for states saved before it existed (no check).
    """

    def __init__(
        self,
        n_genes: int | None = 5000,
        genes: Sequence[str] | None = None,
        log_transform: bool | str = False,
        min_coverage: float = 0.8,
    ) -> None:
        self.n_genes = n_genes
        self.genes = genes
        self.log_transform = log_transform
        self.min_coverage = min_coverage

    # ------------------------------------------------------------------ fitting
    def _check_params(self) -> None:
        if self.log_transform not in (True, False, "auto"):
            raise ValueError(
                f"log_transform must be True, False or 'auto', got {self.log_transform!r}"
            )
        if self.n_genes is not None and (not isinstance(self.n_genes, int | np.integer)):
            raise ValueError(f"n_genes must be an int or None, got {self.n_genes!r}")
        if self.n_genes is not None and self.n_genes < 1:
            raise ValueError(f"n_genes must be >= 1, got {self.n_genes}")
        if not 0.0 <= float(self.min_coverage) <= 1.0:
            raise ValueError(f"min_coverage must lie in [0, 1], got {self.min_coverage}")

    def fit(self, X: pd.DataFrame, y: Any = None) -> Preprocessor:
        """Learn the genes, the log decision and the per-gene mean/scale from training expression.

        Parameters
        ----------
        X : pd.DataFrame
            Training expression, samples x genes (columns = gene names). NaN allowed.
        y : ignored

        Returns
        -------
        Preprocessor
            ``self``.
        """
        self._check_params()
        X = _numeric_frame(X, "training expression")
        if X.columns.has_duplicates:
            dup = X.columns[X.columns.duplicated()].unique()
            raise InputError(
                f"training expression has {len(dup)} duplicated gene column(s), "
                f"e.g. {[str(d) for d in dup[:3]]}",
                column=str(dup[0]),
                fix="aggregate or drop duplicated genes before fitting",
            )
        values = X.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isinf(values).any():
            raise InputError(
                "training expression contains infinite values",
                fix="replace them with NaN (treated as missing) or fix the upstream computation",
            )
        if self.log_transform == "auto":
            log = looks_unlogged(values)
            logger.info("log_transform='auto': input %s", "looks un-logged" if log else "is logged")
        else:
            log = bool(self.log_transform)
        finite = values[np.isfinite(values)]
        input_range = (float(finite.min()), float(finite.max())) if finite.size else None
        if log:
            values = self._log(values, "training expression")
        columns = [str(c) for c in X.columns]

        n_obs = np.sum(np.isfinite(values), axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(values, axis=0)
            var = np.nanvar(values, axis=0)
        usable = n_obs > 0

        if self.genes is not None:
            wanted = list(dict.fromkeys(str(g) for g in self.genes))
            position = {g: i for i, g in enumerate(columns)}
            idx = [position[g] for g in wanted if g in position and usable[position[g]]]
            coverage = len(idx) / max(len(wanted), 1)
            if not idx or coverage < self.min_coverage:
                raise InputError(
                    f"only {len(idx)} of the {len(wanted)} requested genes were found in the "
                    f"training expression ({coverage:.0%}; at least "
                    f"{self.min_coverage:.0%} needed)",
                    fix="check that genes are named the same way in both (symbols vs "
                    "'SYMBOL (ENTREZID)' vs Ensembl IDs), or pass a gene list matching the data",
                )
            if len(idx) < len(wanted):
                warnings.warn(
                    f"{len(wanted) - len(idx)} of the {len(wanted)} requested genes are absent "
                    "from the training expression and were dropped",
                    stacklevel=2,
                )
            sel = np.asarray(idx, dtype=np.int64)
        else:
            order = np.argsort(-np.where(usable, var, -np.inf), kind="stable")
            order = order[usable[order]]
            n_keep = len(order) if self.n_genes is None else min(int(self.n_genes), len(order))
            if self.n_genes is not None and n_keep < self.n_genes:
                logger.info("only %d genes available; keeping all of them", n_keep)
            sel = order[:n_keep]

        scale = np.sqrt(var[sel])
        tiny = 1e-12 * np.maximum(1.0, np.abs(mean[sel]))
        scale = np.where(~np.isfinite(scale) | (scale <= tiny), 1.0, scale)

        self.genes_ = [columns[i] for i in sel]
        self.mean_ = mean[sel].astype(np.float64)
        self.scale_ = scale.astype(np.float64)
        self.log_transform_ = log
        self.input_range_ = input_range
        self.n_features_in_ = len(columns)
        return self

    def fit_transform(self, X: pd.DataFrame, y: Any = None) -> np.ndarray:
        """Fit on ``X`` and return its z-scores (see :meth:`transform`)."""
        return self.fit(X).transform(X)

    # ------------------------------------------------------------------ transforming
    @staticmethod
    def _log(values: np.ndarray, what: str) -> np.ndarray:
        finite = values[np.isfinite(values)]
        if finite.size and finite.min() < 0:
            raise InputError(
                f"{what} has negative values (min {finite.min():.3g}) but the model applies "
                "ln(1 + x), which expects un-logged TPM or counts",
                fix="pass un-logged values, or fit with log_transform=False for logged data",
            )
        return np.log1p(values)

    def _check_fitted(self) -> None:
        if not hasattr(self, "genes_"):
            raise RuntimeError("this Preprocessor is not fitted yet; call fit() first")

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Z-score new expression with the training statistics.

        Parameters
        ----------
        X : pd.DataFrame
            Expression, samples x genes; columns are matched to :attr:`genes_` by name, extra
            columns are ignored. Missing genes and NaN entries are imputed with the training mean
            (z = 0); a warning gives the number of missing genes.

        Returns
        -------
        np.ndarray of float32, shape (n_samples, len(genes_))

        Raises
        ------
        InputError
            When fewer than ``min_coverage`` of the model's genes are present.
        """
        self._check_fitted()
        X = _numeric_frame(X, "expression")
        n_model = len(self.genes_)
        cols = pd.Index([str(c) for c in X.columns])
        present_mask = np.asarray(pd.Index(self.genes_).isin(cols))
        n_present = int(present_mask.sum())
        coverage = n_present / n_model
        if coverage < self.min_coverage:
            raise InputError(
                f"only {n_present} of the model's {n_model} genes were found in the expression "
                f"({coverage:.0%}; at least {self.min_coverage:.0%} needed)",
                fix="name genes as in the training data (e.g. symbols vs 'SYMBOL (ENTREZID)' vs "
                "Ensembl IDs), check that samples are rows and genes are columns, or retrain on "
                "the genes this data set measures",
            )
        if n_present < n_model:
            warnings.warn(
                f"{n_model - n_present} of the model's {n_model} genes are missing from the "
                "expression; they were imputed with the training mean (z = 0)",
                stacklevel=2,
            )
        if cols.has_duplicates:
            dup = cols[cols.duplicated()].unique()
            dup = [d for d in dup if d in set(self.genes_)]
            if dup:
                raise InputError(
                    f"expression has duplicated columns for {len(dup)} of the model's genes, "
                    f"e.g. {dup[:3]}",
                    column=str(dup[0]),
                    fix="aggregate or drop duplicated genes",
                )
            keep = ~cols.duplicated()
            X = X.loc[:, keep]
            cols = cols[keep]
        frame = X.set_axis(cols, axis=1).reindex(columns=self.genes_)
        values = frame.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isinf(values).any():
            raise InputError(
                "expression contains infinite values",
                fix="replace them with NaN (imputed with the training mean) or fix the source",
            )
        n_nan = int(np.isnan(values[:, present_mask]).sum())
        if n_nan:
            logger.info("imputing %d missing expression value(s) with the training mean", n_nan)
        self._check_scale(values[:, present_mask])
        if self.log_transform_:
            values = self._log(values, "expression")
        values = np.where(np.isnan(values), self.mean_, values)
        z = (values - self.mean_) / self.scale_
        return z.astype(np.float32)

    def _check_scale(self, values: np.ndarray) -> None:
        """Raise :class:`InputError` when ``values`` are on the other scale than the training's."""
        train = getattr(self, "input_range_", None)
        finite = values[np.isfinite(values)]
        if train is None or finite.size == 0:
            return
        t_min, t_max = train
        n_min, n_max = float(finite.min()), float(finite.max())
        trained_logged = not (t_min >= 0.0 and t_max > AUTO_LOG_MAX)
        # an order of magnitude beyond the training range: a shift or a new batch is not that
        far_above = n_max > max(AUTO_LOG_MAX, 10.0 * max(t_max, 1.0))
        if not self.log_transform_ and trained_logged and n_min >= 0.0 and far_above:
            raise InputError(
                f"the expression looks like un-logged TPM or counts (values {n_min:.4g} .. "
                f"{n_max:.4g}) but the model was fitted on log-scale expression (values "
                f"{t_min:.4g} .. {t_max:.4g}) and applies no log transform",
                fix="pass log2(TPM+1) values (e.g. DepMap OmicsExpression...TPMLogp1), or refit "
                "the model on TPM with --log-transform",
            )
        far_below = n_max < min(LOGGED_MAX, 0.1 * t_max)
        if self.log_transform_ and t_max > AUTO_LOG_MAX and n_min >= 0.0 and far_below:
            raise InputError(
                f"the expression looks already log-transformed (values {n_min:.4g} .. "
                f"{n_max:.4g}) but the model was fitted on un-logged TPM (values up to "
                f"{t_max:.4g}) and applies ln(1 + x) itself",
                fix="pass the un-logged TPM values (the model logs them), or refit on logged "
                "expression without --log-transform",
            )

    def affine_(self) -> tuple[np.ndarray, np.ndarray]:
        """The scaling as an affine map of the logged expression.

        Returns
        -------
        scale_inv, shift : np.ndarray of float64, shape (len(genes_),)
            ``z = x_logged * scale_inv + shift``, i.e. ``(x_logged - mean_) / scale_``.
        """
        self._check_fitted()
        scale_inv = 1.0 / self.scale_
        return scale_inv, -self.mean_ * scale_inv

    # ------------------------------------------------------------------ persistence
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able parameters and numpy arrays from which :meth:`from_state` rebuilds this."""
        self._check_fitted()
        params = {
            "format": _STATE_FORMAT,
            "n_genes": None if self.n_genes is None else int(self.n_genes),
            "genes": None if self.genes is None else [str(g) for g in self.genes],
            "log_transform": self.log_transform,
            "min_coverage": float(self.min_coverage),
            "genes_": list(self.genes_),
            "log_transform_": bool(self.log_transform_),
            "n_features_in_": int(self.n_features_in_),
        }
        input_range = getattr(self, "input_range_", None)
        if input_range is not None:
            params["input_range_"] = [float(input_range[0]), float(input_range[1])]
        arrays = {"mean": self.mean_.copy(), "scale": self.scale_.copy()}
        return params, arrays

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Preprocessor:
        """Rebuild a fitted :class:`Preprocessor` from :meth:`get_state` output."""
        if params.get("format") != _STATE_FORMAT:
            raise ValueError(f"not a Preprocessor state (format {params.get('format')!r})")
        obj = cls(
            n_genes=params["n_genes"],
            genes=params["genes"],
            log_transform=params["log_transform"],
            min_coverage=params["min_coverage"],
        )
        obj.genes_ = list(params["genes_"])
        obj.mean_ = np.asarray(arrays["mean"], dtype=np.float64)
        obj.scale_ = np.asarray(arrays["scale"], dtype=np.float64)
        if obj.mean_.shape != (len(obj.genes_),) or obj.scale_.shape != obj.mean_.shape:
            raise ValueError("Preprocessor state arrays do not match its gene list")
        obj.log_transform_ = bool(params["log_transform_"])
        obj.n_features_in_ = int(params.get("n_features_in_", len(obj.genes_)))
        rng = params.get("input_range_")  # absent from states saved before it existed
        if rng is not None:
            if len(rng) != 2 or not all(np.isfinite(float(v)) for v in rng):
                raise ValueError(f"Preprocessor state has a bad input_range_ {rng!r}")
            obj.input_range_ = (float(rng[0]), float(rng[1]))
        else:
            obj.input_range_ = None
        return obj

    def __repr__(self) -> str:
        fitted = f", {len(self.genes_)} genes fitted" if hasattr(self, "genes_") else ""
        return (
            f"Preprocessor(n_genes={self.n_genes}, "
            f"genes={'None' if self.genes is None else '...'}, "
            f"log_transform={self.log_transform!r}, min_coverage={self.min_coverage}{fitted})"
        )


__all__ = ["AUTO_LOG_MAX", "LOGGED_MAX", "Preprocessor", "looks_unlogged"]
