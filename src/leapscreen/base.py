"""The scikit-learn contract of leapscreen's parts: heads, representations and their saved state.

* :class:`BaseHead` - a multi-output regressor from a representation ``Z`` to the responses ``Y``
  where NaN in ``Y`` means "not measured". 1-D ``y`` gives 1-D predictions. ``score`` is the
  NaN-aware mean R^2 over perturbations (scikit-learn's R^2 when nothing is missing).
* :class:`LinearHeadMixin` - ``predict`` for heads that are one linear map
  ``Z @ coef_mean_ + intercept_mean_``; such heads set ``is_linear = True``.
* :class:`BaseRepresentation` - a transformer with one fit signature for all,
  ``fit(X, y=None, *, sources=None, X_unlabelled=None, sources_unlabelled=None)``: ``y`` is accepted
  and ignored (representations never see labels), so a representation works inside a ``Pipeline``.
* :func:`get_state` / :func:`set_state` - what persistence stores of any estimator: its constructor
  parameters, its fitted attributes (names ending in ``_``) and, through two hooks, state that is
  not a fitted attribute (torch weights as arrays; text models such as a LightGBM booster)::

      def _extra_state(self) -> tuple[dict[str, ndarray], dict[str, str]]: ...
      def _load_extra_state(self, arrays: dict[str, ndarray], texts: dict[str, str]) -> None: ...

Estimators validate their input with scikit-learn's helpers (``validate_data``, ``check_array``,
``check_is_fitted``), so errors and ``NotFittedError`` are the ones scikit-learn users know.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

__all__ = [
    "BaseHead",
    "BaseRepresentation",
    "EstimatorState",
    "LinearHeadMixin",
    "get_state",
    "nan_r2",
    "set_state",
]


def nan_r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over columns of R^2 on each column's non-missing rows (NaN in ``y_true`` = missing).

    Columns with fewer than two labelled rows or a constant truth are left out. Equals
    :func:`sklearn.metrics.r2_score` (uniform average) when nothing is missing.
    """
    yt = np.asarray(y_true, dtype=np.float64)
    yp = np.asarray(y_pred, dtype=np.float64)
    if yt.ndim == 1:
        yt, yp = yt[:, None], yp.reshape(-1, 1)
    scores = []
    for j in range(yt.shape[1]):
        ok = ~np.isnan(yt[:, j])
        if ok.sum() < 2:
            continue
        t, p = yt[ok, j], yp[ok, j]
        ss_tot = ((t - t.mean()) ** 2).sum()
        if ss_tot <= 0:
            continue
        scores.append(1.0 - ((t - p) ** 2).sum() / ss_tot)
    return float(np.mean(scores)) if scores else float("nan")


class BaseHead(RegressorMixin, BaseEstimator):
    """Base of every head: multi-output, NaN-aware targets, scikit-learn validation.

    Subclasses implement ``fit`` (calling :meth:`_validate_fit` first and ending with
    :meth:`_set_output_shape`) and ``predict`` (calling :meth:`_validate_predict` and returning
    through :meth:`_shape_output`).
    """

    #: whether the fitted head is one linear map ``Z @ coef_mean_ + intercept_mean_``
    is_linear: ClassVar[bool] = False

    def __sklearn_tags__(self):  # noqa: ANN204 - sklearn's Tags object
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _validate_fit(self, Z: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
        """``Z`` as finite float64 (n, d); ``Y`` as float64 (n, p), NaN allowed, no infinities."""
        Zv = validate_data(self, Z, reset=True, dtype=np.float64, ensure_min_samples=1)
        Yv = check_array(
            Y,
            dtype=np.float64,
            ensure_all_finite="allow-nan",
            ensure_2d=False,
            input_name="Y",
            ensure_min_samples=1,
        )
        if Yv.ndim not in (1, 2):
            raise ValueError(f"Y must be 1-D or 2-D (samples x perturbations), got {Yv.ndim}-D")
        self._y_1d_ = Yv.ndim == 1
        if Yv.ndim == 1:
            Yv = Yv[:, None]
        if Yv.shape[0] != Zv.shape[0]:
            raise ValueError(
                f"Found input variables with inconsistent numbers of samples: "
                f"[{Zv.shape[0]}, {Yv.shape[0]}] (Z has {Zv.shape[0]} rows, Y {Yv.shape[0]})"
            )
        return Zv, Yv

    def _validate_predict(self, Z: Any) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, Z, reset=False, dtype=np.float64)

    def _shape_output(self, pred: np.ndarray) -> np.ndarray:
        """1-D predictions when the head was fitted on a 1-D ``y``."""
        if getattr(self, "_y_1d_", False) and pred.ndim == 2 and pred.shape[1] == 1:
            return pred[:, 0]
        return pred

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """NaN-aware mean R^2 over perturbations (see :func:`nan_r2`)."""
        if sample_weight is not None:
            return super().score(X, y, sample_weight=sample_weight)
        return nan_r2(y, self.predict(X))

    def fallback_mask(self) -> np.ndarray:
        """Boolean per perturbation: predicted by its training mean (too few labels, constant)."""
        check_is_fitted(self)
        fb = getattr(self, "fallback_", None)
        if fb is None:
            return np.zeros(len(np.atleast_1d(self.intercept_mean_)), dtype=bool)
        return np.asarray(fb, dtype=bool)


class LinearHeadMixin:
    """``predict`` for heads that collapse to one linear map ``Z @ coef_mean_ + intercept_mean_``."""

    is_linear: ClassVar[bool] = True

    def predict(self, Z: Any) -> np.ndarray:
        """Predict every perturbation: ``Z @ coef_mean_ + intercept_mean_`` (the mean fold model).

        Parameters
        ----------
        Z : array of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_perturbations), or (n_samples,) after a 1-D fit, in
        the head's ``dtype`` (float64 if it has none)
        """
        Zv = self._validate_predict(Z)  # type: ignore[attr-defined]
        out = Zv @ self.coef_mean_.astype(np.float64) + self.intercept_mean_.astype(np.float64)
        out = out.astype(np.dtype(getattr(self, "dtype", np.float64)), copy=False)
        return self._shape_output(out)  # type: ignore[attr-defined]


class BaseRepresentation(TransformerMixin, BaseEstimator):
    """Base of every representation of the preprocessed expression.

    ``fit(X, y=None, *, sources=None, X_unlabelled=None, sources_unlabelled=None)``: ``sources`` are
    the source (dataset / domain) labels of the rows of ``X``; ``X_unlabelled`` extra samples pooled
    into the fit (their expression only). ``y`` is ignored. Linear representations set
    ``is_linear`` and provide ``linear_map() -> (W, b)`` with ``transform(X) == X @ W + b``.
    """

    #: whether the fitted representation is the affine map ``X @ W + b``
    is_linear: ClassVar[bool] = False

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        sources: Any = None,
        X_unlabelled: Any = None,
        sources_unlabelled: Any = None,
    ) -> BaseRepresentation:  # pragma: no cover - the interface
        raise NotImplementedError

    def linear_map(self) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - the interface
        raise NotImplementedError(f"{type(self).__name__} is not linear")


# ---------------------------------------------------------------------------------- saved state

_TUPLE = "__tuple__"
_DTYPE = "__dtype__"


def _encode(value: Any, where: str) -> Any:
    """A JSON-able form of a parameter / fitted attribute value (tuples and dtypes tagged)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (type, np.dtype)) and not isinstance(value, type(BaseEstimator)):
        try:
            return {_DTYPE: np.dtype(value).name}
        except TypeError:
            pass
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"cannot save {where}: dictionary keys must be strings")
        return {k: _encode(v, where) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot save {where} of type {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_TUPLE}:
            return tuple(_decode(v) for v in value[_TUPLE])
        if set(value) == {_DTYPE}:
            return np.dtype(value[_DTYPE]).type
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class EstimatorState(dict):
    """What is saved of an estimator: ``{"class", "params", "attributes"}`` + arrays + texts.

    The dict itself is JSON-able; ``arrays`` (name -> ndarray) and ``texts`` (name -> str) are kept
    beside it as attributes.
    """

    arrays: dict[str, np.ndarray]
    texts: dict[str, str]


def get_state(estimator: BaseEstimator) -> EstimatorState:
    """Capture an estimator's constructor parameters, fitted ``*_`` attributes and extra state.

    Arrays (including fitted ndarrays) go to ``state.arrays``; scalars, strings and lists of them
    to the JSON part; anything else (an object array, an arbitrary object) raises ``TypeError``.
    """
    name = type(estimator).__name__
    params = {
        k: _encode(v, f"{name} parameter {k!r}")
        for k, v in estimator.get_params(deep=False).items()
    }
    attributes: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for key, value in vars(estimator).items():
        if not key.endswith("_") or key.startswith("__"):
            continue
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                raise TypeError(f"cannot save object array {name}.{key}")
            arrays[key] = value
        else:
            attributes[key] = _encode(value, f"{name}.{key}")
    texts: dict[str, str] = {}
    hook = getattr(estimator, "_extra_state", None)
    if hook is not None:
        extra_arrays, extra_texts = hook()
        for key, value in extra_arrays.items():
            arr = np.asarray(value)
            if arr.dtype == object:
                raise TypeError(f"cannot save object array {name} extra state {key!r}")
            arrays[f"extra:{key}"] = arr
        texts.update(extra_texts)
    state = EstimatorState(
        {"class": name, "params": params, "attributes": attributes, "texts": sorted(texts)}
    )
    state.arrays = arrays
    state.texts = texts
    return state


def set_state(
    cls: type,
    state: dict[str, Any],
    arrays: dict[str, np.ndarray],
    texts: dict[str, str] | None = None,
    *,
    params: dict[str, Any] | None = None,
) -> Any:
    """Rebuild an estimator saved by :func:`get_state`.

    ``params`` overrides constructor parameters (e.g. ``device``). Unknown parameters raise
    ``ValueError`` (from ``set_params``) so that a damaged or foreign file is not half-loaded.
    """
    obj = cls()
    saved = {k: _decode(v) for k, v in state["params"].items()}
    valid = obj.get_params(deep=False)
    unknown = sorted(set(saved) - set(valid))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for {cls.__name__}")
    saved.update({k: v for k, v in (params or {}).items() if k in valid})
    obj.set_params(**saved)
    for key, value in state["attributes"].items():
        setattr(obj, key, _decode(value))
    extra: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        if key.startswith("extra:"):
            extra[key[len("extra:") :]] = value
        else:
            setattr(obj, key, value)
    hook = getattr(obj, "_load_extra_state", None)
    if hook is not None:
        hook(extra, dict(texts or {}))
    return obj

