"""Run several models on the same splits, score them per perturbation, cache results, resume.

For each split and each model: fit on the training samples only (preprocessing, gene selection, the
representations and the heads all see training samples only, unless ``transductive=True``, where the
representation pretraining also sees the expression — never the labels — of the test samples, as the
reference does), predict the test samples, and score every perturbation on its labelled test samples.

Each (model, split) result (test predictions and per-perturbation scores) is written to the cache
directory as soon as it is done; a second run with the same cache skips what is there, so an interrupted
evaluation resumes where it stopped. A cache written with other settings is refused rather than mixed in.
"""

from __future__ import annotations

import hashlib
import json
import logging
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leapscreen.data.dataset import ScreenData
from leapscreen.errors import InputError
from leapscreen.evaluate.metrics import aggregate, score_perturbations
from leapscreen.evaluate.splits import Split, safe_name
from leapscreen.models import make_model

logger = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]


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
        Fit + predict seconds per (model, split).
    settings : dict
        The settings of the run (task, models, transductive, seeds, ...).
    """

    per_perturbation: pd.DataFrame
    summary: pd.DataFrame
    timings: pd.DataFrame
    settings: dict[str, Any]


def _settings_key(settings: dict[str, Any]) -> str:
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_cache(cache_dir: Path, settings: dict[str, Any]) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    stamp = cache_dir / "settings.json"
    key = _settings_key(settings)
    if stamp.is_file():
        old = json.loads(stamp.read_text())
        if old.get("key") != key:
            raise InputError(
                "the cache directory holds results of a run with other settings",
                path=cache_dir,
                fix="use a new --out/--cache directory, or rerun with the same settings to resume",
            )
    else:
        tmp = stamp.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "settings": settings}, indent=2, default=str))
        tmp.replace(stamp)


def evaluate_models(
    data: ScreenData,
    models: Sequence[str],
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
) -> EvaluationResult:
    """Fit and score several models on the same splits.

    Parameters
    ----------
    data : ScreenData
        The screen (all samples of all splits).
    models : sequence of str
        Preset names (see :data:`leapscreen.models.MODEL_PRESETS`).
    splits : sequence of Split
        Sample-level splits (train / test sample IDs).
    model_params : dict, optional
        LEAP parameters applied to every model (e.g. ``latent_dim``, ``n_genes``).
    per_model_params : dict, optional
        Extra parameters per model name.
    transductive : bool
        Let the representation pretraining see the test samples' expression (never their labels).
    unlabelled_expression : pandas.DataFrame, optional
        Extra unlabelled samples pooled into the representation pretraining.
    sensitive : {"low", "high"}
        Which end of the response scale means sensitive (for precision at k).
    top_k : int
        k of the precision-at-k ranking metric.
    cache_dir : str or Path, optional
        Where to cache each (model, split) result, so that a rerun resumes.
    settings : dict, optional
        Extra settings recorded with the results (and in the cache key).
    progress : callable, optional
        ``progress(message, done, total)`` after each (model, split).

    Returns
    -------
    EvaluationResult
    """
    model_params = dict(model_params or {})
    per_model_params = dict(per_model_params or {})
    run_settings = {
        "dataset": data.name,
        "n_samples": data.n_samples,
        "n_perturbations": data.n_perturbations,
        "models": list(models),
        "splits": [s.name for s in splits],
        "model_params": model_params,
        "per_model_params": per_model_params,
        "transductive": bool(transductive),
        "sensitive": sensitive,
        "top_k": top_k,
        **(settings or {}),
    }
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None:
        _check_cache(cache, run_settings)

    rows: list[pd.DataFrame] = []
    timings: list[dict[str, Any]] = []
    total = len(models) * len(splits)
    done = 0
    for split in splits:
        train = data.subset(samples=split.train)
        test = data.subset(samples=split.test)
        for name in models:
            done += 1
            scores_path = pred_path = None
            if cache is not None:
                base = cache / safe_name(name) / safe_name(split.name)
                scores_path = base.with_suffix(".scores.parquet")
                pred_path = base.with_suffix(".predictions.parquet")
                if scores_path.is_file():
                    cached = pd.read_parquet(scores_path)
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
            model = make_model(name, **model_params, **per_model_params.get(name, {}))
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
            model.fit(
                train.expression,
                train.responses,
                unlabelled_expression=extra,
                sources=list(train.samples["source"]),
                unlabelled_sources=extra_sources,
            )
            pred = model.predict(test.expression)
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
            for key, value in split.info.items():
                if isinstance(value, (str, int, float)):
                    scores[f"split_{key}"] = value
            if cache is not None:
                scores_path.parent.mkdir(parents=True, exist_ok=True)
                scores.attrs["seconds"] = seconds
                tmp = scores_path.with_suffix(".tmp")
                scores.to_parquet(tmp)
                tmp.replace(scores_path)
                tmp = pred_path.with_suffix(".tmp")
                pred.to_parquet(tmp)
                tmp.replace(pred_path)
            rows.append(scores)
            timings.append(
                {"model": name, "split": split.name, "seconds": seconds, "cached": False}
            )
            logger.info("%s on %s: %.1fs", name, split.name, seconds)
            if progress is not None:
                progress(f"{name} / {split.name}", done, total)

    per_pert = pd.concat(rows, ignore_index=True)
    summary = aggregate(per_pert)
    run_settings["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return EvaluationResult(per_pert, summary, pd.DataFrame(timings), run_settings)
