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

import dataclasses
import inspect
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from leapscreen.errors import InputError

__all__ = [
    "BaseHead",
    "BaseRepresentation",
    "HeadInputError",
    "HeadNotFittedError",
    "EstimatorState",
    "LinearHeadMixin",
    "get_state",
    "has_parameter",
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


def has_parameter(method: Any, name: str) -> bool:
    """``method`` declares a parameter called ``name`` (``**kwargs`` alone does not count)."""
    try:
        return name in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


class HeadInputError(InputError):
    """Bad input to a head's ``fit`` or ``predict`` (a ``ValueError``)."""


class HeadNotFittedError(InputError, NotFittedError):
    """``predict`` before ``fit`` (scikit-learn's ``NotFittedError`` too)."""


def _translate(exc: ValueError, fitted: bool) -> HeadInputError:
    """scikit-learn's validation error, with what it means for a head and what to do."""
    text = str(exc)
    if "inconsistent numbers of samples" in text:
        return HeadInputError(text, fix="align the responses to the samples of the representation")
    if "Input Y contains" in text:
        return HeadInputError(
            f"Y contains infinite values ({text})", fix="use NaN for missing responses"
        )
    if "NaN" in text or "infinity" in text:
        return HeadInputError(
            f"Z contains NaN or infinite values ({text})", fix="impute or drop them before fitting"
        )
    if "Expected 2D array" in text:
        return HeadInputError(
            f"Z must be 2-D (samples x features): {text}",
            fix="reshape it to (n_samples, n_features)",
        )
    if fitted and "features" in text:
        return HeadInputError(text, fix="use the same representation as in fit")
    return HeadInputError(
        text, fix="pass Z as numbers (samples x features) and Y as numbers, NaN for missing"
    )


class BaseHead(RegressorMixin, BaseEstimator):
    """Base of every head: multi-output, NaN-aware targets, scikit-learn validation.

    Subclasses implement ``fit`` (calling :meth:`_validate_fit` first) and ``predict`` (calling
    :meth:`_validate_predict` and returning through :meth:`_shape_output`, which gives 1-D
    predictions after a 1-D fit).
    """

    #: whether the fitted head is one linear map ``Z @ coef_mean_ + intercept_mean_``
    is_linear: ClassVar[bool] = False
    #: False for heads that ignore the features (the mean predictor): LEAP fits one such member
    uses_features: ClassVar[bool] = True

    def __sklearn_tags__(self):  # noqa: ANN204 - sklearn's Tags object
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _validate_fit(self, Z: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
        """``Z`` as finite float64 (n, d); ``Y`` as float64 (n, p), NaN allowed, no infinities.

        scikit-learn's validation errors come back as :class:`HeadInputError` (an ``InputError``,
        hence a ``ValueError``) with a fix added, so the CLI shows them as clean messages.
        """
        if Y is None:
            raise HeadInputError(
                f"{type(self).__name__} requires y to be passed, but the target y is None",
                fix="pass the responses Y (samples x perturbations, NaN = missing)",
            )
        try:
            return self._check_fit_arrays(Z, Y)
        except ValueError as exc:
            if isinstance(exc, InputError):
                raise
            raise _translate(exc, fitted=False) from exc

    def _check_fit_arrays(self, Z: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
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
        """``Z`` checked against the fit; :class:`HeadNotFittedError` before ``fit``."""
        try:
            check_is_fitted(self)
        except NotFittedError as exc:
            raise HeadNotFittedError(
                f"this {type(self).__name__} is not fitted yet", fix="call fit(Z, Y) first"
            ) from exc
        try:
            return validate_data(self, Z, reset=False, dtype=np.float64)
        except ValueError as exc:
            raise _translate(exc, fitted=True) from exc

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

    def out_of_fold_predictions(self) -> np.ndarray | None:
        """Out-of-fold predictions of the training rows from the last ``fit``, or None.

        Shape (n_train, p), float64. For a row labelled for perturbation ``j``: the prediction of the
        fold model that did not see the row (the exact leave-one-out prediction for ``cv="loo"``),
        at the chosen hyper-parameters, with that model's mean response replaced by the mean of all
        labelled rows (a constant per perturbation). Without that, the intercept of a model fitted
        without the row (the mean of the other rows) is anti-correlated with the row's own label,
        which ranks strongly shrunk predictions backwards. For a row not labelled for ``j`` (never
        used for it): the head's prediction. For a fallback perturbation: its training mean.

        LEAP uses them to choose combination weights without test samples, the stacked head as its
        second-level input. They are not saved with the model (a loaded head returns None).
        """
        check_is_fitted(self)
        return getattr(self, "_oof", None)

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

    Subclasses implement one fit signature,
    ``fit(X, y=None, *, sources=None, X_unlabelled=None, sources_unlabelled=None)``: ``sources`` are
    the source (dataset / domain) labels of the rows of ``X``; ``X_unlabelled`` extra samples pooled
    into the fit (their expression only). ``y`` is ignored. Linear representations set
    ``is_linear`` and provide ``linear_map() -> (W, b)`` with ``transform(X) == X @ W + b``.
    """

    #: whether the fitted representation is the affine map ``X @ W + b``
    is_linear: ClassVar[bool] = False
    #: False for representations that do not depend on a seed (the genes): LEAP fits one seed
    seeded: ClassVar[bool] = True

    def linear_map(self) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - the interface
        raise NotImplementedError(f"{type(self).__name__} is not linear")


# ---------------------------------------------------------------------------------- saved state
#
# A state is a JSON tree plus a flat table of arrays and one of texts. In the tree an ndarray is
# {"__array__": key}, a nested estimator {"__object__": {...}}, an object already written elsewhere
# in the same tree {"__ref__": path}, a tuple {"__tuple__": [...]}, a dtype {"__dtype__": name},
# and an array of strings {"__strings__": [...]}. Nothing is ever pickled.


class EstimatorState(dict):
    """What is saved of an estimator: ``{"class", "params", "attributes", ...}`` (JSON-able).

    ``arrays`` (key -> ndarray) and ``texts`` (key -> str) are kept beside it as attributes.
    """

    arrays: dict[str, np.ndarray]
    texts: dict[str, str]


class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.texts: dict[str, str] = {}
        self.seen: dict[int, str] = {}

    def value(self, value: Any, key: str, where: str) -> Any:
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "biufc":
                self.arrays[key] = value
                return {"__array__": key}
            if value.dtype.kind in "OUS" and all(isinstance(v, str) for v in value.ravel()):
                return {"__strings__": [str(v) for v in value.ravel()], "shape": list(value.shape)}
            raise TypeError(f"cannot save {where}: an array of dtype {value.dtype}")
        if type(value) is pd.DataFrame:  # a numeric table with string labels (descriptors, ...)
            values = value.to_numpy()
            if values.dtype.kind not in "biuf":
                raise TypeError(f"cannot save {where}: a DataFrame with non-numeric values")
            self.arrays[key] = values
            return {
                "__frame__": key,
                "index": [str(i) for i in value.index],
                "columns": [str(c) for c in value.columns],
                "names": [
                    None if n is None else str(n) for n in (value.index.name, value.columns.name)
                ],
            }
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.dtype) or (
            isinstance(value, type) and issubclass(value, np.generic)
        ):
            return {"__dtype__": np.dtype(value).name}
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, tuple):
            return {"__tuple__": [self.value(v, f"{key}.{i}", where) for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.value(v, f"{key}.{i}", where) for i, v in enumerate(value)]
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError(f"cannot save {where}: dictionary keys must be strings")
            return {k: self.value(v, f"{key}.{k}", where) for k, v in value.items()}
        if _is_object(value):
            if id(value) in self.seen:
                return {"__ref__": self.seen[id(value)]}
            self.seen[id(value)] = key
            return {"__object__": self.obj(value, key)}
        raise TypeError(f"cannot save {where} of type {type(value).__name__}")

    def obj(self, obj: Any, path: str) -> dict[str, Any]:
        name = type(obj).__name__
        prefix = f"{path}/" if path else ""
        if dataclasses.is_dataclass(obj):
            fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
            return {
                "class": name,
                "fields": {
                    k: self.value(v, f"{prefix}{k}", f"{name}.{k}") for k, v in fields.items()
                },
            }
        if not hasattr(obj, "get_params"):  # a part with its own get_state / from_state
            legacy_params, legacy_arrays = obj.get_state()
            for k, v in legacy_arrays.items():
                self.arrays[f"{prefix}state:{k}"] = np.asarray(v)
            return {
                "class": name,
                "state": self.value(legacy_params, f"{prefix}state", name),
                "state_arrays": sorted(legacy_arrays),
            }
        params = {
            k: self.value(v, f"{prefix}param:{k}", f"{name} parameter {k!r}")
            for k, v in obj.get_params(deep=False).items()
        }
        attributes = {
            k: self.value(v, f"{prefix}{k}", f"{name}.{k}")
            for k, v in vars(obj).items()
            if k.endswith("_") and not k.startswith("__")
        }
        texts = []
        hook = getattr(obj, "_extra_state", None)
        if hook is not None:
            extra_arrays, extra_texts = hook()
            for k, v in extra_arrays.items():
                arr = np.asarray(v)
                if arr.dtype.kind not in "biufc":
                    raise TypeError(f"cannot save {name} extra state {k!r} of dtype {arr.dtype}")
                self.arrays[f"{prefix}extra:{k}"] = arr
            for k, v in extra_texts.items():
                self.texts[f"{prefix}{k}"] = str(v)
                texts.append(k)
        return {"class": name, "params": params, "attributes": attributes, "texts": sorted(texts)}


def _is_object(value: Any) -> bool:
    if isinstance(value, type):
        return False
    return (
        hasattr(value, "get_params")
        or dataclasses.is_dataclass(value)
        or (hasattr(value, "get_state") and hasattr(type(value), "from_state"))
    )


class _Decoder:
    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        texts: dict[str, str],
        resolve: Any,
        overrides: dict[str, Any],
    ) -> None:
        self.arrays, self.texts, self.resolve, self.overrides = arrays, texts, resolve, overrides
        self.seen: dict[str, Any] = {}

    def value(self, value: Any, key: str) -> Any:
        if isinstance(value, list):
            return [self.value(v, f"{key}.{i}") for i, v in enumerate(value)]
        if not isinstance(value, dict):
            return value
        if set(value) == {"__array__"}:
            name = value["__array__"]
            if name not in self.arrays:
                raise ValueError(f"array {name!r} is missing")
            return self.arrays[name]
        if set(value) == {"__frame__", "index", "columns", "names"}:
            name = value["__frame__"]
            if name not in self.arrays:
                raise ValueError(f"array {name!r} is missing")
            values = self.arrays[name]
            index_name, columns_name = value["names"]
            if values.shape != (len(value["index"]), len(value["columns"])):
                raise ValueError(f"table {name!r} does not match its labels")
            return pd.DataFrame(
                values,
                index=pd.Index(value["index"], name=index_name),
                columns=pd.Index(value["columns"], name=columns_name),
            )
        if set(value) == {"__strings__", "shape"}:
            return np.array(value["__strings__"], dtype=object).reshape(value["shape"])
        if set(value) == {"__tuple__"}:
            return tuple(self.value(v, f"{key}.{i}") for i, v in enumerate(value["__tuple__"]))
        if set(value) == {"__dtype__"}:
            return np.dtype(value["__dtype__"]).type
        if set(value) == {"__ref__"}:
            if value["__ref__"] not in self.seen:
                raise ValueError(f"reference to unknown object {value['__ref__']!r}")
            return self.seen[value["__ref__"]]
        if set(value) == {"__object__"}:
            obj = self.obj(value["__object__"], key)
            self.seen[key] = obj
            return obj
        return {k: self.value(v, f"{key}.{k}") for k, v in value.items()}

    def obj(self, state: dict[str, Any], path: str, cls: type | None = None) -> Any:
        if not isinstance(state, dict) or "class" not in state:
            raise ValueError("an object entry without a class")
        cls = cls or self.resolve(state["class"])
        prefix = f"{path}/" if path else ""
        if "fields" in state:
            fields = {k: self.value(v, f"{prefix}{k}") for k, v in state["fields"].items()}
            return cls(**fields)
        if "state_arrays" in state:
            legacy = {}
            for k in state["state_arrays"]:
                if f"{prefix}state:{k}" not in self.arrays:
                    raise ValueError(f"array {prefix}state:{k!r} is missing")
                legacy[k] = self.arrays[f"{prefix}state:{k}"]
            return cls.from_state(self.value(state["state"], f"{prefix}state"), legacy)
        obj = cls()
        valid = obj.get_params(deep=False)
        saved = {k: self.value(v, f"{prefix}param:{k}") for k, v in state["params"].items()}
        unknown = sorted(set(saved) - set(valid))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown} for {cls.__name__}")
        saved.update({k: v for k, v in self.overrides.items() if k in valid})
        obj.set_params(**saved)
        for k, v in state["attributes"].items():
            setattr(obj, k, self.value(v, f"{prefix}{k}"))
        hook = getattr(obj, "_load_extra_state", None)
        if hook is not None:
            extra = {
                k[len(prefix) + len("extra:") :]: v
                for k, v in self.arrays.items()
                if k.startswith(f"{prefix}extra:")
            }
            texts = {k: self.texts[f"{prefix}{k}"] for k in state.get("texts", [])}
            hook(extra, texts)
        return obj


def _default_resolve(class_name: str) -> type:
    from leapscreen.registry import class_by_name

    return class_by_name(class_name)


def get_state(estimator: Any) -> EstimatorState:
    """Capture an estimator's constructor parameters, fitted ``*_`` attributes and extra state.

    Numeric arrays anywhere go to ``state.arrays``; nested estimators (in parameters or fitted
    attributes) are captured the same way, recursively; scalars, strings, lists and dicts of them
    go to the JSON part; anything else (object arrays, arbitrary objects) raises ``TypeError``.
    """
    enc = _Encoder()
    enc.seen[id(estimator)] = ""
    state = EstimatorState(enc.obj(estimator, ""))
    state.arrays = enc.arrays
    state.texts = enc.texts
    return state


def set_state(
    cls: type,
    state: dict[str, Any],
    arrays: dict[str, np.ndarray],
    texts: dict[str, str] | None = None,
    *,
    params: dict[str, Any] | None = None,
    resolve: Any = None,
) -> Any:
    """Rebuild an estimator saved by :func:`get_state`.

    ``params`` overrides constructor parameters wherever an estimator accepts them (e.g.
    ``device``). Nested classes are looked up with ``resolve(class_name)`` (default: the registry).
    Unknown parameters raise ``ValueError`` so that a damaged or foreign state is not half-loaded.
    """
    dec = _Decoder(dict(arrays), dict(texts or {}), resolve or _default_resolve, dict(params or {}))
    return dec.obj(state, "", cls=cls)
