"""Run several models on the same splits, score them per perturbation, cache results, resume.

For each split and each model: fit on the training samples only (preprocessing, gene selection, the
representations and the heads all see training samples only, unless ``transductive=True``, where the
representation pretraining also sees the expression — never the labels — of the test samples, as the
reference does), predict the test samples, and score every perturbation on its labelled test samples.

Models are preset names (:func:`leapscreen.models.make_model`) or estimator objects (e.g. a configured
:class:`~leapscreen.ensemble.LEAP`), each fitted as a fresh ``sklearn.base.clone`` per split.

Each (model, split) result (test predictions and per-perturbation scores) is written to the cache
directory as soon as it is done, under a key of the data values, the split's membership, the model and
the settings (see :mod:`leapscreen.evaluate.cache`); a second run with the same cache skips what is
there, so an interrupted evaluation resumes where it stopped, more repeats reuse the splits already done,
and other data never reuses a stale result. A cache written with other settings is refused rather than
mixed in.
"""

from __future__ import annotations

import inspect
import json
import logging
import resource
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from leapscreen.base import has_parameter
from leapscreen.data.dataset import ScreenData
from leapscreen.errors import InputError
from leapscreen.evaluate.cache import (
    ResultCache,
    data_fingerprint,
    entry_key,
    model_key,
    split_key,
)
from leapscreen.evaluate.metrics import aggregate, paired_difference, score_perturbations
from leapscreen.evaluate.splits import Split
from leapscreen.models import make_model, model_names

logger = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]

#: A model: a preset name, or an estimator with ``fit`` / ``predict`` / ``get_params``.
ModelSpec = Any


@dataclass
class EvaluationResult:
    """What an evaluation produced.

    Attributes
    ----------
    per_perturbation : pandas.DataFrame
        One row per (model, split, perturbation) with spearman, pearson, mse, r2, precision_at_k, n_test.
    summary : pandas.DataFrame
        Mean over perturbations within a split, then mean ± sd over splits, one row per model.
    timings : pandas.DataFrame
        Fit + predict seconds per (model, split); ``cached`` is True where the result came from the
        cache.
    settings : dict
        The settings of the run (task, models, transductive, seeds, ``data_fingerprint``,
        ``provenance``, ...).
    """

    per_perturbation: pd.DataFrame
    summary: pd.DataFrame
    timings: pd.DataFrame
    settings: dict[str, Any]

    @property
    def n_cached(self) -> int:
        """How many (model, split) results came from the cache."""
        if "cached" not in self.timings.columns:
            return 0
        return int(self.timings["cached"].sum())

    @property
    def data_fingerprint(self) -> str | None:
        """Digest of the data values evaluated (see :func:`~leapscreen.evaluate.cache.data_fingerprint`)."""
        return self.settings.get("data_fingerprint")

    @property
    def provenance(self) -> dict[str, Any] | None:
        """What the caller recorded about how the run was made (inputs, command line, ...)."""
        return self.settings.get("provenance")


def _is_estimator(obj: Any) -> bool:
    return all(callable(getattr(obj, attr, None)) for attr in ("fit", "predict", "get_params"))


def _resolve_models(
    models: Sequence[ModelSpec | tuple[str, ModelSpec]] | Mapping[str, ModelSpec] | str,
) -> list[tuple[str, ModelSpec]]:
    """``[(label, preset name or estimator), ...]``, checked: known presets, unique labels."""
    if isinstance(models, str):
        models = [models]
    pairs: list[tuple[str, ModelSpec]] = []
    if isinstance(models, Mapping):
        items = list(models.items())
    else:
        items = []
        for entry in models:
            if isinstance(entry, str):
                items.append((entry, entry))
            elif isinstance(entry, tuple | list) and len(entry) == 2 and isinstance(entry[0], str):
                items.append((entry[0], entry[1]))
            else:
                raise InputError(
                    f"models entry {entry!r} is neither a model name nor a (name, estimator) pair",
                    fix="pass preset names, (name, estimator) pairs, or a dict name -> estimator",
                )
    known = set(model_names())
    for label, spec in items:
        if not isinstance(label, str) or not label.strip():
            raise InputError(
                f"model name {label!r} is not a non-empty string",
                fix="name every model (it labels the results)",
            )
        if isinstance(spec, str):
            if spec not in known:
                raise InputError(
                    f"unknown model {spec!r}", fix=f"choose from {', '.join(model_names())}"
                )
        elif not _is_estimator(spec):
            raise InputError(
                f"model {label!r} is a {type(spec).__name__}, not a model name or an estimator "
                "with fit, predict and get_params",
                fix="pass a preset name or an estimator such as leapscreen.ensemble.LEAP(...)",
            )
        pairs.append((label, spec))
    labels = [label for label, _ in pairs]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise InputError(f"model names {dup} are given more than once", fix="name each model once")
    if not pairs:
        raise InputError("no model to evaluate", fix="pass at least one model name or estimator")
    return pairs


def _fresh(estimator: Any) -> Any:
    """An unfitted copy of an estimator: ``sklearn.base.clone``, else its class rebuilt from params."""
    try:
        return clone(estimator)
    except (TypeError, RuntimeError, AttributeError):
        return type(estimator)(**estimator.get_params(deep=False))


def _accepts(method: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return True
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _spec_text(spec: ModelSpec) -> str:
    return spec if isinstance(spec, str) else repr(spec)


def _check_provenance(provenance: dict[str, Any] | None) -> dict[str, Any] | None:
    if provenance is None:
        return None
    if not isinstance(provenance, Mapping):
        raise InputError(
            f"provenance must be a dict, got {type(provenance).__name__}",
            fix="pass e.g. {'inputs': {...}, 'command': [...], 'version': '...'}",
        )
    try:
        return json.loads(json.dumps(dict(provenance)))
    except (TypeError, ValueError) as err:
        raise InputError(
            f"provenance is not JSON-serialisable ({err})",
            fix="record paths, hashes and options as strings, numbers, lists or dicts",
        ) from None


def _predictions_frame(pred: Any, test: ScreenData) -> pd.DataFrame:
    """The model's test predictions as samples x perturbations, in the test data's order."""
    if isinstance(pred, pd.DataFrame):
        if list(pred.columns) != list(test.perturbation_ids) and set(pred.columns) == set(
            test.perturbation_ids
        ):
            pred = pred[list(test.perturbation_ids)]
        return pred
    values = np.asarray(pred, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.shape != (test.n_samples, test.n_perturbations):
        raise InputError(
            f"the model predicted an array of shape {values.shape} for {test.n_samples} test "
            f"samples x {test.n_perturbations} perturbations",
            fix="make predict return one row per sample and one column per perturbation",
        )
    return pd.DataFrame(values, index=test.sample_ids, columns=test.perturbation_ids)


def evaluate_models(
    data: ScreenData,
    models: Sequence[ModelSpec | tuple[str, ModelSpec]] | Mapping[str, ModelSpec],
    splits: Sequence[Split],
    *,
    model_params: dict[str, Any] | None = None,
    per_model_params: dict[str, dict[str, Any]] | None = None,
    transductive: bool = False,
    unlabelled_expression: pd.DataFrame | None = None,
    sensitive: str = "low",
    top_k: int = 10,
    cache_dir: str | Path | None = None,
    settings: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
    provenance: dict[str, Any] | None = None,
) -> EvaluationResult:
    """Fit and score several models on the same splits.

    Parameters
    ----------
    data : ScreenData
        The screen (all samples of all splits).
    models : sequence or mapping
        The models, in result order: preset names (see :func:`leapscreen.models.model_names`),
        ``(name, estimator)`` pairs, or a mapping name -> estimator or preset name. A preset is
        built per split by ``make_model(preset, **model_params, **per_model_params[name])``; an
        estimator (e.g. ``LEAP(representation="pca", head="ridge")``) is fitted as a fresh
        ``sklearn.base.clone`` per split, with the same fit arguments as a preset
        (``fit(expression, responses, unlabelled_expression=..., sources=...,
        unlabelled_sources=...)``, those its ``fit`` accepts), and is not given ``model_params``.
    splits : sequence of Split
        Sample-level splits (train / test sample IDs).
    model_params : dict, optional
        LEAP parameters applied to every preset model (e.g. ``latent_dim``, ``n_genes``).
    per_model_params : dict, optional
        Extra parameters per preset model, keyed by the model's name.
    transductive : bool
        Let the representation pretraining see the test samples' expression (never their labels).
    unlabelled_expression : pandas.DataFrame, optional
        Extra unlabelled samples pooled into the representation pretraining.
    sensitive : {"low", "high"}
        Which end of the response scale means sensitive (for precision at k).
    top_k : int
        k of the precision-at-k ranking metric.
    cache_dir : str or Path, optional
        Where to cache each (model, split) result, so that a rerun resumes. An entry is reused only
        for the same data values (``data_fingerprint``), the same split membership, the same model
        (preset and parameters, or estimator class and ``get_params()``) and the same settings; a
        directory written with other settings is refused.
    settings : dict, optional
        Extra settings recorded with the results (and in the cache key).
    progress : callable, optional
        ``progress(message, done, total)`` after each (model, split).
    provenance : dict, optional
        How the run was made, as the caller knows it (input files with their sha256, the response
        value, the full command line, the package version, ...); JSON-serialisable. Recorded in
        ``settings["provenance"]`` and shown in the HTML report; not part of the cache key.

    Returns
    -------
    EvaluationResult
        ``n_cached`` says how many (model, split) results came from the cache.
    """
    model_params = dict(model_params or {})
    per_model_params = dict(per_model_params or {})
    resolved = _resolve_models(models)
    provenance = _check_provenance(provenance)
    if (transductive or unlabelled_expression is not None) and not all(
        _accepts(spec.fit, "unlabelled_expression")
        for _, spec in resolved
        if not isinstance(spec, str)
    ):
        raise InputError(
            "an estimator's fit takes no unlabelled_expression, so it cannot use transductive "
            "pretraining or extra unlabelled samples",
            fix="evaluate it with transductive=False (no --transductive) and no unlabelled samples",
        )
    fingerprint = data_fingerprint(data, unlabelled_expression)
    run_settings = {
        "dataset": data.name,
        "n_samples": data.n_samples,
        "n_perturbations": data.n_perturbations,
        "models": [label for label, _ in resolved],
        "splits": [s.name for s in splits],
        "model_params": model_params,
        "per_model_params": per_model_params,
        "transductive": bool(transductive),
        "sensitive": sensitive,
        "top_k": top_k,
        **(settings or {}),
        "data_fingerprint": fingerprint,
    }
    if any(not isinstance(spec, str) for _, spec in resolved):
        run_settings["model_specs"] = {label: _spec_text(spec) for label, spec in resolved}
    if provenance is not None:
        run_settings["provenance"] = provenance
    cache = ResultCache(cache_dir, run_settings) if cache_dir is not None else None
    model_keys = {
        label: model_key(spec, per_model_params.get(label) if isinstance(spec, str) else None)
        for label, spec in resolved
    }

    rows: list[pd.DataFrame] = []
    timings: list[dict[str, Any]] = []
    total = len(resolved) * len(splits)
    done = 0
    for split in splits:
        train = data.subset(samples=split.train)
        test = data.subset(samples=split.test)
        membership = split_key(split)
        for name, spec in resolved:
            done += 1
            key = ""
            if cache is not None:
                key = entry_key(cache.run_key, fingerprint, model_keys[name], membership)
                cached = cache.load(name, split.name, key)
                if cached is not None:
                    rows.append(cached)
                    timings.append(
                        {
                            "model": name,
                            "split": split.name,
                            "seconds": float(cached.attrs.get("seconds", np.nan)),
                            "cached": True,
                        }
                    )
                    if progress is not None:
                        progress(f"{name} / {split.name} (cached)", done, total)
                    continue
            t0 = time.perf_counter()
            if isinstance(spec, str):
                model = make_model(spec, **model_params, **per_model_params.get(name, {}))
            else:
                model = _fresh(spec)
            extra, extra_sources = unlabelled_expression, None
            if unlabelled_expression is not None:
                extra_sources = ["unlabelled"] * len(unlabelled_expression)
            if transductive:
                # test samples come from the screen's own sources: no separate alignment
                test_sources = list(test.samples["source"])
                if extra is None:
                    extra, extra_sources = test.expression, test_sources
                else:
                    extra = pd.concat([extra, test.expression])
                    extra_sources = [*extra_sources, *test_sources]
            fit_kwargs = {
                "unlabelled_expression": extra,
                "sources": list(train.samples["source"]),
                "unlabelled_sources": extra_sources,
            }
            if not isinstance(spec, str):
                fit_kwargs = {k: v for k, v in fit_kwargs.items() if _accepts(model.fit, k)}
            predict_kwargs = {}
            if has_parameter(
                model.fit, "samples"
            ):  # models that use the metadata (lineage baselines)
                fit_kwargs["samples"] = train.samples
            if has_parameter(model.predict, "samples"):
                predict_kwargs["samples"] = test.samples
            model.fit(train.expression, train.responses, **fit_kwargs)
            pred = _predictions_frame(model.predict(test.expression, **predict_kwargs), test)
            seconds = time.perf_counter() - t0
            scores = score_perturbations(
                test.responses.to_numpy(np.float64),
                pred.to_numpy(np.float64),
                list(test.perturbation_ids),
                k=top_k,
                sensitive=sensitive,
            )
            scores = scores.reset_index(drop="perturbation" in scores.columns)
            if "perturbation" not in scores.columns:
                scores = scores.rename(columns={"index": "perturbation"})
            scores.insert(0, "split", split.name)
            scores.insert(0, "model", name)
            for info_key, value in split.info.items():
                if isinstance(value, (str, int, float)):
                    scores[f"split_{info_key}"] = value
            if cache is not None:
                scores.attrs["seconds"] = seconds
                cache.save(name, split.name, key, scores, pred)
            rows.append(scores)
            timings.append(
                {"model": name, "split": split.name, "seconds": seconds, "cached": False}
            )
            logger.info("%s on %s: %.1fs", name, split.name, seconds)
            if progress is not None:
                progress(f"{name} / {split.name}", done, total)

    per_pert = pd.concat(rows, ignore_index=True)
    summary = aggregate(per_pert)
    # scores against the baselines users expect, split by split (when they were run)
    for baseline in ("lineage-mean", "ridge"):
        paired = paired_difference(per_pert, baseline)
        if len(paired):
            summary = summary.merge(paired, on="model", how="left", sort=False)
    run_settings["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return EvaluationResult(per_pert, summary, pd.DataFrame(timings), run_settings)
