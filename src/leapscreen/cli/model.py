"""`leapscreen fit`, `leapscreen predict` and `leapscreen demo`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from leapscreen.cli._common import console, handle_errors, progress_bar, setup_logging
from leapscreen.data.dataset import ScreenData
from leapscreen.errors import InputError
from leapscreen.models import MODEL_PRESETS, make_model

# ---------------------------------------------------------------------------------------- inputs


def _load_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    if not path.is_file():
        raise InputError("config file not found", path=path, fix="check the path")
    text = path.read_text()
    try:
        if path.suffix in (".toml", ".tml"):
            import tomllib

            return tomllib.loads(text)
        return json.loads(text)
    except Exception as exc:  # json / toml errors
        raise InputError(
            f"cannot parse the config file: {exc}", path=path, fix="give valid JSON or TOML"
        ) from exc


def load_training_data(
    data: Path | None,
    expression: Path | None,
    responses: Path | None,
    samples: Path | None,
    min_labels: int,
) -> ScreenData:
    """A ScreenData from a dataset (parquet dir / .h5ad / 'demo') or from separate files."""
    from leapscreen.data.loading import load_screen

    if data is not None:
        if str(data) == "demo":
            from leapscreen.datasets import gdsc_demo

            screen = gdsc_demo()
        elif data.is_dir():
            screen = ScreenData.read_parquet(data)
        else:
            screen = ScreenData.read_h5ad(data)
    else:
        if expression is None or responses is None:
            raise InputError(
                "no training data given",
                fix="pass --data DATASET (a directory or .h5ad written by leapscreen) or both "
                "--expression and --responses",
            )
        screen = load_screen(expression, responses, samples)
    if min_labels > 0:
        screen = screen.filter_perturbations(min_labels)
    if screen.n_perturbations == 0:
        raise InputError(
            f"no perturbation has at least {min_labels} labelled samples",
            fix="lower --min-labels or check the responses file",
        )
    return screen


# ------------------------------------------------------------------------------------------ fit


@handle_errors
def fit_command(
    out: Path = typer.Option(..., "--out", "-o", help="Output model directory (must not exist)."),
    data: Path = typer.Option(
        None, "--data", help="A dataset: directory or .h5ad written by leapscreen, or 'demo'."
    ),
    expression: Path = typer.Option(None, "--expression", "-x", help="Expression file."),
    responses: Path = typer.Option(None, "--responses", "-y", help="Responses file."),
    samples: Path = typer.Option(None, "--samples", help="Sample metadata (e.g. Model.csv)."),
    config: Path = typer.Option(None, "--config", help="JSON/TOML file with these options."),
    model: str = typer.Option(
        "leap-ps-lasso", "--model", "-m", help=f"One of: {', '.join(MODEL_PRESETS)}."
    ),
    seeds: int = typer.Option(None, "--seeds", help="Representation seeds (default 5)."),
    latent_dim: int = typer.Option(None, "--latent-dim", help="Latent size (default 256)."),
    n_genes: int = typer.Option(None, "--n-genes", help="Most-variant genes (default 5000)."),
    log_transform: bool = typer.Option(
        False, "--log-transform", help="Input is TPM: apply ln(1+x) first."
    ),
    min_labels: int = typer.Option(
        None, "--min-labels", help="Drop perturbations with fewer labelled samples (default 10)."
    ),
    seed: int = typer.Option(None, "--seed", help="Base random seed (default 0)."),
    device: str = typer.Option("cpu", "--device", help="Torch device: cpu, cuda, cuda:1..."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing model dir."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary output."),
) -> None:
    """Fit a model (LEAP by default) and save it as a directory of arrays + JSON."""
    setup_logging(quiet)
    cfg = _load_config(config)

    def pick(value: Any, key: str, default: Any) -> Any:
        return value if value is not None else cfg.get(key, default)

    data = pick(data, "data", None)
    screen = load_training_data(
        None if data is None else Path(data),
        pick(expression, "expression", None) and Path(pick(expression, "expression", None)),
        pick(responses, "responses", None) and Path(pick(responses, "responses", None)),
        pick(samples, "samples", None) and Path(pick(samples, "samples", None)),
        int(pick(min_labels, "min_labels", 10)),
    )
    if out.exists() and not overwrite:
        raise InputError(
            "output directory exists; leapscreen never overwrites unless asked",
            path=out,
            fix="choose a new --out or pass --overwrite",
        )
    params: dict[str, Any] = {
        "n_seeds": int(pick(seeds, "seeds", 5)),
        "latent_dim": int(pick(latent_dim, "latent_dim", 256)),
        "n_genes": int(pick(n_genes, "n_genes", 5000)),
        "log_transform": bool(log_transform or cfg.get("log_transform", False)),
        "random_state": int(pick(seed, "seed", 0)),
        "device": device,
    }
    name = cfg.get("model", model) if model == "leap-ps-lasso" else model
    estimator = make_model(name, **params)
    if not quiet:
        console.print(f"training on {screen!r}")
    t0 = time.perf_counter()
    with progress_bar(quiet, f"fit {name}", estimator.n_seeds) as advance:
        estimator.fit(
            screen.expression,
            screen.responses,
            sources=list(screen.samples["source"]),
            progress=lambda msg, done, total: advance(msg, done, total),
        )
    seconds = time.perf_counter() - t0
    estimator.save(
        out,
        overwrite=overwrite,
        metadata={
            "model": name,
            "dataset": screen.summary() | {"dropped": screen.dropped},
            "fit_seconds": seconds,
        },
    )
    if not quiet:
        console.print(
            f"saved {name} ({len(estimator.members_)} members, "
            f"{len(estimator.perturbations_)} perturbations, "
            f"{len(estimator.preprocessor_.genes_)} genes) to {out} in {seconds:.1f}s"
        )


# -------------------------------------------------------------------------------------- predict


def write_table_atomic(table: pd.DataFrame, path: Path, overwrite: bool) -> None:
    """Write CSV / TSV / parquet by extension, atomically; refuse to overwrite unless asked."""
    if path.exists() and not overwrite:
        raise InputError(
            "output file exists; leapscreen never overwrites a file unless asked",
            path=path,
            fix="choose another --out or pass --overwrite",
        )
    suffixes = "".join(path.suffixes).lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if suffixes.endswith(".parquet"):
        table.to_parquet(tmp, index=False)
    elif suffixes.endswith((".tsv", ".tsv.gz", ".txt")):
        table.to_csv(tmp, sep="\t", index=False)
    elif suffixes.endswith((".csv", ".csv.gz")):
        table.to_csv(tmp, index=False)
    else:
        raise InputError(
            f"unknown output format '{path.suffix}'",
            path=path,
            fix="end the file name with .csv, .tsv or .parquet",
        )
    tmp.replace(path)


@handle_errors
def predict_command(
    model_dir: Path = typer.Argument(..., help="A model directory written by `leapscreen fit`."),
    expression: Path = typer.Argument(..., help="Expression of the new samples."),
    out: Path = typer.Option(..., "--out", "-o", help="Output table: .csv, .tsv or .parquet."),
    wide: bool = typer.Option(False, "--wide", help="Samples x perturbations instead of long."),
    perturbations: str = typer.Option(
        None, "--perturbations", help="Comma-separated subset of perturbations."
    ),
    device: str = typer.Option("cpu", "--device", help="Torch device."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Predict responses of new samples: a table (sample, perturbation, value)."""
    setup_logging(quiet)
    from leapscreen.data.loading import load_expression
    from leapscreen.ensemble import LEAP

    if out.exists() and not overwrite:
        raise InputError(
            "output file exists; leapscreen never overwrites a file unless asked",
            path=out,
            fix="choose another --out or pass --overwrite",
        )
    model = LEAP.load(model_dir, device=device)
    expr = load_expression(expression)
    pred = model.predict(expr)
    if perturbations:
        wanted = [p.strip() for p in perturbations.split(",") if p.strip()]
        unknown = [p for p in wanted if p not in pred.columns]
        if unknown:
            raise InputError(
                f"{len(unknown)} perturbations are not in the model, e.g. {unknown[:5]}",
                fix="list the model's perturbations in leapscreen_model.json",
            )
        pred = pred[wanted]
    pred.index.name = "sample"
    if wide:
        table = pred.reset_index()
    else:
        table = pred.reset_index().melt(
            id_vars="sample", var_name="perturbation", value_name="value"
        )
    write_table_atomic(table, out, overwrite)
    if not quiet:
        console.print(f"wrote {len(pred)} samples x {pred.shape[1]} perturbations to {out}")


# ----------------------------------------------------------------------------------------- demo


@handle_errors
def demo_command(
    seeds: int = typer.Option(5, "--seeds", help="DAMAE seeds of LEAP."),
    split_seed: int = typer.Option(0, "--split-seed", help="Seed of the held-out split."),
    value: str = typer.Option("LN_IC50", "--value", help="LN_IC50, AUC or AAC."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Fit on the bundled real GDSC2 data, test on held-out lines, compare LEAP with baselines."""
    setup_logging(True)
    from leapscreen.datasets import gdsc_demo
    from leapscreen.evaluate.run import evaluate_models
    from leapscreen.evaluate.splits import unseen_samples

    t0 = time.perf_counter()
    data = gdsc_demo(value)
    split = unseen_samples(data.sample_ids, n_repeats=1, random_state=split_seed)[0]
    models = ["mean", "ridge", "ps-lasso", "leap-ps-lasso"]
    params = DEMO_PARAMS | {"n_seeds": seeds}
    if not quiet:
        console.print(
            f"[bold]leapscreen demo[/]: {data.n_samples} GDSC lines x {data.n_genes} genes x "
            f"{data.n_perturbations} drugs ({value}); training on {len(split.train)} lines, "
            f"testing on {len(split.test)} unseen lines"
        )
    with progress_bar(quiet, "fit + predict", len(models)) as advance:
        result = evaluate_models(
            data,
            models,
            [split],
            model_params=params,
            sensitive="high" if value == "AAC" else "low",
            progress=advance,
        )
    seconds = time.perf_counter() - t0
    scores = result.per_perturbation.pivot(
        index="perturbation", columns="model", values="spearman"
    )[models]
    n_test = result.per_perturbation.groupby("perturbation")["n_test"].first()
    if quiet:
        return
    labels = {
        "mean": "mean",
        "ridge": "ridge (genes)",
        "ps-lasso": "DAMAE x1 + PS-LASSO",
        "leap-ps-lasso": f"LEAP ({seeds} seeds)",
    }
    table = Table(title="Spearman between predicted and measured response on held-out lines")
    table.add_column("drug")
    table.add_column("n test", justify="right")
    for m in models:
        table.add_column(labels[m], justify="right")
    for drug in scores.sort_values("leap-ps-lasso", ascending=False).index:
        table.add_row(drug, str(int(n_test[drug])), *[_fmt(scores.loc[drug, m]) for m in models])
    table.add_section()
    table.add_row("[bold]mean over drugs", "", *[f"[bold]{_fmt(scores[m].mean())}" for m in models])
    console.print(table)
    best = scores.mean().idxmax()
    console.print(
        f"LEAP beats ridge on {(scores['leap-ps-lasso'] > scores['ridge']).mean():.0%} of drugs; "
        f"best mean Spearman: {labels[best]}. The mean predictor scores 0 by construction "
        f"(a constant prediction has no rank correlation). Done in {seconds:.0f}s."
    )


DEMO_PARAMS: dict[str, Any] = {"latent_dim": 64, "n_genes": 2000, "random_state": 0}


def _fmt(x: float) -> str:
    return "nan" if not np.isfinite(x) else f"{x:+.3f}"
