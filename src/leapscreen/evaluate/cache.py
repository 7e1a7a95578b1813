"""Keys and storage of the evaluation cache: what a cached (model, split) result belongs to.

A cached result is reused only when everything it depends on is the same: the data *values*
(:func:`data_fingerprint`: expression, responses, sample / gene / perturbation IDs, sample sources),
the split's membership (:func:`split_key`), the model (:func:`model_key`: a preset name with its
parameters, or an estimator's class and ``get_params()``) and the run settings. Each result is stored
under a file name carrying its key, so results of other data never mix in and a split already done
is found again whatever the number of splits of the run (``--repeats 2`` then ``--repeats 3`` reuses
the first two).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leapscreen.data.dataset import ScreenData
from leapscreen.errors import InputError
from leapscreen.evaluate.splits import Split, safe_name

__all__ = [
    "CACHE_VERSION",
    "ResultCache",
    "data_fingerprint",
    "entry_key",
    "model_key",
    "split_key",
]

#: Version of the cache layout; a cache written with another layout is refused.
CACHE_VERSION = 2

#: Settings that do not belong in the run key: each cached entry is keyed by its own model, split
#: and data, so adding a model or a split (``--repeats``) or changing the data reuses what matches.
_PER_ENTRY = (
    "models",
    "splits",
    "per_model_params",
    "dataset",
    "n_samples",
    "n_perturbations",
    "data_fingerprint",
    "provenance",
    "model_specs",
)


def _hash_ids(h: Any, label: str, ids: Iterable[Any]) -> None:
    text = "\x1f".join(str(x) for x in ids)
    h.update(f"\x1e{label}:{len(text)}:".encode())
    h.update(text.encode("utf-8", "surrogatepass"))


def _hash_values(h: Any, label: str, frame: pd.DataFrame) -> None:
    # column-major: the layout pandas keeps a single-dtype frame in, so usually no copy is made
    values = np.asfortranarray(frame.to_numpy(dtype=np.float32, na_value=np.nan))
    missing = np.isnan(values)
    if missing.any():  # one NaN bit pattern: "not measured" hashes the same (on a copy)
        values = np.asfortranarray(np.where(missing, np.float32(np.nan), values))
    h.update(f"\x1e{label}:{values.shape}:".encode())
    if values.size:
        h.update(memoryview(values.T).cast("B"))  # the float32 bytes, without a copy


def data_fingerprint(data: ScreenData, unlabelled_expression: pd.DataFrame | None = None) -> str:
    """A digest of the data values an evaluation depends on.

    The float32 bytes of the expression and responses (NaN kept as "not measured"), the sample,
    gene and perturbation IDs in order, the sample sources, and the extra unlabelled expression if
    any. Shuffled responses, a changed value or a renamed sample all give another fingerprint.

    Parameters
    ----------
    data : ScreenData
        The screen.
    unlabelled_expression : pandas.DataFrame, optional
        Extra unlabelled samples pooled into the pretraining.

    Returns
    -------
    str
        ``sha256:`` and 16 hex digits.
    """
    h = hashlib.sha256()
    _hash_ids(h, "samples", data.sample_ids)
    _hash_ids(h, "genes", data.genes)
    _hash_ids(h, "perturbations", data.perturbation_ids)
    if "source" in data.samples.columns:
        _hash_ids(h, "sources", data.samples["source"].reindex(data.sample_ids))
    _hash_values(h, "expression", data.expression)
    _hash_values(h, "responses", data.responses)
    if unlabelled_expression is not None:
        _hash_ids(h, "unlabelled_samples", unlabelled_expression.index)
        _hash_ids(h, "unlabelled_genes", unlabelled_expression.columns)
        _hash_values(h, "unlabelled_expression", unlabelled_expression)
    return "sha256:" + h.hexdigest()[:16]


def split_key(split: Split) -> str:
    """A digest of a split's membership: its training and test sample IDs, in order."""
    h = hashlib.sha256()
    _hash_ids(h, "train", split.train)
    _hash_ids(h, "test", split.test)
    return h.hexdigest()[:16]


def _param_repr(value: Any) -> str:
    """A stable text for a parameter value (arrays by their bytes, not their elided repr)."""
    if isinstance(value, np.ndarray):
        digest = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()[:16]
        return f"ndarray({value.dtype},{value.shape},{digest})"
    if isinstance(value, Mapping):
        items = sorted((str(k), _param_repr(v)) for k, v in value.items())
        return "{" + ", ".join(f"{k!r}: {v}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        inner = ", ".join(_param_repr(v) for v in value)
        return f"{type(value).__name__}[{inner}]"
    return repr(value)


def model_key(spec: str | Any, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What identifies a model in the cache.

    Parameters
    ----------
    spec : str or estimator
        A preset name, or an estimator (keyed by its class and ``get_params()``, nested objects
        included, so a changed parameter is never served a stale result).
    params : dict, optional
        For a preset name: the per-model parameters given on top of the run's model parameters.

    Returns
    -------
    dict
        JSON-ready.
    """
    if isinstance(spec, str):
        return {"preset": spec, "params": _param_repr(dict(params or {}))}
    cls = type(spec)
    try:
        own = spec.get_params(deep=True)
    except TypeError:
        own = spec.get_params()
    return {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "params": [[str(k), _param_repr(v)] for k, v in sorted(own.items(), key=lambda kv: kv[0])],
    }


def entry_key(run_key: str, fingerprint: str, model: Mapping[str, Any], split: str) -> str:
    """The key of one cached (model, split) result."""
    text = json.dumps(
        {"run": run_key, "data": fingerprint, "model": model, "split": split}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_key(settings: Mapping[str, Any]) -> str:
    """The key of the run settings shared by every entry (models, splits and data excluded)."""
    shared = {k: v for k, v in settings.items() if k not in _PER_ENTRY}
    text = json.dumps(shared, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ResultCache:
    """A directory of (model, split) results, each under a file name carrying its key.

    Parameters
    ----------
    directory : str or Path
        The cache directory (created if absent).
    settings : dict
        The run settings; a directory written with other shared settings (seed, model parameters,
        metric settings, ...) is refused rather than mixed in.
    """

    def __init__(self, directory: str | Path, settings: Mapping[str, Any]) -> None:
        self.directory = Path(directory)
        self.run_key = run_key(settings)
        self._check(settings)

    def _check(self, settings: Mapping[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = self.directory / "settings.json"
        if stamp.is_file():
            try:
                old = json.loads(stamp.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                old = None
            if not isinstance(old, dict) or old.get("cache_version") != CACHE_VERSION:
                raise InputError(
                    "the cache directory was written by another version of leapscreen (or is "
                    "damaged), so its results cannot be checked against this data",
                    path=self.directory,
                    fix="use a new --out directory, or delete this cache directory to recompute",
                )
            if old.get("key") != self.run_key:
                raise InputError(
                    "the cache directory holds results of a run with other settings",
                    path=self.directory,
                    fix="use a new --out directory, or rerun with the same settings to resume",
                )
            return
        shared = {k: v for k, v in settings.items() if k not in _PER_ENTRY}
        tmp = stamp.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {"cache_version": CACHE_VERSION, "key": self.run_key, "settings": shared},
                indent=2,
                default=str,
            ),
            encoding="utf-8",
        )
        tmp.replace(stamp)

    def paths(self, model: str, split: str, key: str) -> tuple[Path, Path]:
        """Scores and predictions files of one entry."""
        folder, stem = self.directory / safe_name(model), f"{safe_name(split)}-{key}"
        return folder / f"{stem}.scores.parquet", folder / f"{stem}.predictions.parquet"

    def load(self, model: str, split: str, key: str) -> pd.DataFrame | None:
        """The cached scores of one entry, or None when absent."""
        scores_path, _ = self.paths(model, split, key)
        if not scores_path.is_file():
            return None
        return pd.read_parquet(scores_path)

    def save(
        self, model: str, split: str, key: str, scores: pd.DataFrame, predictions: pd.DataFrame
    ) -> None:
        """Write one entry (scores last, so a scores file means the entry is complete)."""
        scores_path, pred_path = self.paths(model, split, key)
        scores_path.parent.mkdir(parents=True, exist_ok=True)
        for frame, path in ((predictions, pred_path), (scores, scores_path)):
            tmp = path.with_name(path.name + ".tmp")
            frame.to_parquet(tmp)
            tmp.replace(path)
