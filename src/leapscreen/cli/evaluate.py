"""`leapscreen evaluate`: several models on the same splits, tables, figures and an HTML report."""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.table import Table

import leapscreen.cli._data_options as opt
from leapscreen.cli._common import console, handle_errors, progress_bar, setup_logging
from leapscreen.cli._options import (
    apply_config,
    check_choice,
    check_device,
    check_models,
    check_ranges,
    learns_latent,
    provenance,
    read_genes,
    split_list,
)
from leapscreen.cli.model import check_latent_dim, load_training_data, write_table_atomic
from leapscreen.data.dataset import ScreenData
from leapscreen.data.longtable import DUPLICATE_RULES
from leapscreen.errors import InputError
from leapscreen.models import make_model, model_names

TASKS = ("unseen-cell-lines", "unseen-lineage", "transfer", "kfold")


def _load_target(path: Path) -> ScreenData:
    if path.is_dir():
        return ScreenData.read_parquet(path)
    return ScreenData.read_h5ad(path)


def _combine_for_transfer(
    source: ScreenData, target: ScreenData, target_fraction: float = 1.0, seed: int = 0
) -> ScreenData:
    """One ScreenData holding source and target samples (shared genes and perturbations).

    Target lines are drawn (a seeded ``target_fraction`` of them); any of them also present in the
    source is removed from the source, so every test line is unseen in training.
    """
    import pandas as pd

    genes = source.genes.intersection(target.genes, sort=False)
    perts = source.perturbation_ids.intersection(target.perturbation_ids, sort=False)
    if len(perts) == 0:
        raise InputError(
            "source and target share no perturbation",
            path=target.paths.get("dataset"),
            fix="check the perturbation names (e.g. drug names) of both datasets",
        )
    if len(genes) < 100:
        raise InputError(
            f"source and target share only {len(genes)} genes",
            path=target.paths.get("dataset"),
            fix="use expression of the same gene symbols in both datasets",
        )
    if not 0.0 < target_fraction <= 1.0:
        raise InputError(f"--target-fraction must be in (0, 1], got {target_fraction}")
    tgt_ids = target.sample_ids
    if target_fraction < 1.0:
        rng = np.random.default_rng(seed)
        n = max(1, int(round(target_fraction * len(tgt_ids))))
        tgt_ids = pd.Index(np.sort(rng.choice(tgt_ids.to_numpy(), size=n, replace=False)))
    tgt = target.subset(samples=tgt_ids)
    overlap = source.sample_ids.intersection(tgt.sample_ids)
    src = source.subset(samples=source.sample_ids.difference(overlap, sort=False))
    samples = pd.concat([src.samples.assign(domain="source"), tgt.samples.assign(domain="target")])
    combined = ScreenData(
        pd.concat([src.expression[genes], tgt.expression[genes]]),
        pd.concat([src.responses[perts], tgt.responses[perts]]),
        samples=samples,
        perturbations=source.perturbations.loc[perts],
        name=f"{source.name}->{target.name}",
        keep_unlabelled=True,
    )
    if len(overlap):
        combined.dropped.append(
            {
                "what": "samples",
                "n": int(len(overlap)),
                "reason": "are in both source and target; removed from the source (test lines unseen)",
                "examples": [str(s) for s in overlap[:5]],
            }
        )
    return combined


EVALUATE_RANGES: dict[str, dict[str, Any]] = {
    "--seeds": {"minimum": 1},
    "--latent-dim": {"minimum": 1},
    "--n-genes": {"minimum": 1},
    "--repeats": {"minimum": 1},
    "--test-fraction": {"minimum": 0.0, "maximum": 1.0, "exclusive_min": True},
    "--target-fraction": {"minimum": 0.0, "maximum": 1.0, "exclusive_min": True},
    "--few-shot": {"minimum": 0},
    "--min-lineage-samples": {"minimum": 1},
    "--max-lineages": {"minimum": 0},
    "--min-labels": {"minimum": 0},
    "--min-shared-samples": {"minimum": 1},
    "--top-k": {"minimum": 1},
    "--seed": {"minimum": 0, "maximum": 2**32 - 1},
}


@handle_errors
def evaluate_command(
    ctx: typer.Context,
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="Output directory (results, figures, report; rerun with the same --out to resume).",
    ),
    data: Path = opt.DATA,
    expression: Path = opt.EXPRESSION,
    responses: Path = opt.RESPONSES,
    samples: Path = opt.SAMPLES,
    config: Path = opt.CONFIG,
    task: str = typer.Option("unseen-cell-lines", "--task", help=f"One of: {', '.join(TASKS)}."),
    models: str = typer.Option(
        "mean,ridge,ps-lasso,leap-ps-lasso",
        "--models",
        help=f"Comma-separated, from: {', '.join(model_names())}.",
    ),
    target: Path = typer.Option(None, "--target", help="Transfer: the target dataset."),
    target_fraction: float = typer.Option(
        1.0, "--target-fraction", help="Transfer: fraction of target lines tested (seeded)."
    ),
    few_shot: int = typer.Option(
        0, "--few-shot", help="Transfer: k target samples per perturbation moved into training."
    ),
    repeats: int = typer.Option(10, "--repeats", help="unseen-cell-lines: random 80/20 repeats."),
    test_fraction: float = typer.Option(0.2, "--test-fraction", help="Held-out fraction (0, 1]."),
    min_lineage_samples: int = typer.Option(
        15, "--min-lineage-samples", help="unseen-lineage: smallest lineage held out."
    ),
    max_lineages: int = typer.Option(
        0, "--max-lineages", help="unseen-lineage: hold out only the N largest (0 = all)."
    ),
    min_labels: int = typer.Option(
        75,
        "--min-labels",
        help="Drop perturbations with fewer labelled samples (reference: 75 drugs, 50 dependency).",
    ),
    seeds: int = typer.Option(5, "--seeds", help="Representation seeds of LEAP models (>= 1)."),
    latent_dim: int = opt.LATENT_DIM,
    n_genes: int = opt.N_GENES,
    genes: Path = opt.GENES,
    value: str = opt.VALUE,
    encoding: str = opt.ENCODING,
    log_transform: bool = opt.LOG_TRANSFORM,
    sample_column: str = opt.SAMPLE_COLUMN,
    perturbation_column: str = opt.PERTURBATION_COLUMN,
    value_column: str = opt.VALUE_COLUMN,
    duplicates: str = opt.DUPLICATES,
    min_shared_samples: int = opt.MIN_SHARED_SAMPLES,
    transductive: bool = typer.Option(
        False,
        "--transductive",
        help="Pretrain representations on test samples' expression too (never their labels).",
    ),
    sensitive: str = typer.Option(
        "low",
        "--sensitive",
        help="Which end is sensitive: low "
        "(LN_IC50, gene effect) or high (AAC, dependency probability).",
    ),
    top_k: int = typer.Option(10, "--top-k", help="k of precision at k (>= 1)."),
    seed: int = typer.Option(0, "--seed", help="Seed of splits and models."),
    device: str = typer.Option("cpu", "--device", help="Torch device: cpu, cuda, cuda:1..."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary output."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show INFO messages."),
) -> None:
    """Compare models on the same sample-level splits; write tables, figures and an HTML report."""
    setup_logging(quiet, verbose)
    o = apply_config(ctx, config, dict(locals()))
    # everything below is checked before any input is read or anything is fitted
    check_choice("--task", o["task"], TASKS)
    names = split_list("--models", o["models"])
    check_models("--models", names)
    check_choice("--sensitive", o["sensitive"], ("low", "high"))
    check_choice("--duplicates", o["duplicates"], DUPLICATE_RULES)
    check_ranges(o, EVALUATE_RANGES)
    o["device"] = check_device(o["device"])
    if o["task"] == "transfer" and o["target"] is None:
        raise InputError("--task transfer needs --target DATASET", fix="give the target data")
    out = Path(o["out"])
    if out.exists() and not out.is_dir():
        raise InputError(
            "--out exists and is not a directory", path=out, fix="choose another --out"
        )
    if out.is_dir() and any(out.iterdir()) and not (out / "cache" / "settings.json").is_file():
        # results.csv, report.html, figures/ are replaced on every run: only in leapscreen's own
        # evaluation directory (it holds cache/settings.json), never among the user's files
        raise InputError(
            "--out is a directory that does not hold a leapscreen evaluation (no cache/"
            "settings.json); leapscreen writes results.csv, report.html and figures/ there and "
            "would replace files of yours",
            path=out,
            fix="choose a new or empty --out directory (nothing was changed)",
        )
    gene_list = read_genes(o["genes"], o["encoding"])
    _evaluate(o, names, out, gene_list)


def _evaluate(o: dict[str, Any], names: list[str], out: Path, gene_list: list[str] | None) -> None:
    from leapscreen.evaluate.run import evaluate_models
    from leapscreen.evaluate.splits import kfold, transfer, unseen_lineage, unseen_samples

    quiet, task, seed, min_labels = o["quiet"], o["task"], o["seed"], o["min_labels"]
    t0 = time.perf_counter()
    screen = load_training_data(
        o["data"] and Path(o["data"]),
        o["expression"],
        o["responses"],
        o["samples"],
        0,
        value=o["value"],
        encoding=o["encoding"],
        log_transform=o["log_transform"] or None,
        sample_column=o["sample_column"],
        perturbation_column=o["perturbation_column"],
        value_column=o["value_column"],
        duplicates=o["duplicates"] if o["duplicates"] != "mean" else None,
        min_shared_samples=o["min_shared_samples"] if o["min_shared_samples"] != 10 else None,
    )
    if task == "transfer":
        screen = _combine_for_transfer(
            screen, _load_target(o["target"]), o["target_fraction"], seed
        )
    screen = screen.filter_perturbations(min_labels)
    if screen.n_perturbations == 0:
        raise InputError(
            f"no perturbation has >= {min_labels} labelled samples", fix="lower --min-labels"
        )
    if any(learns_latent(make_model(m)) for m in names):
        n_used = len(gene_list) if gene_list is not None else min(o["n_genes"], screen.n_genes)
        n_train = int(round(screen.n_samples * (1 - o["test_fraction"])))
        check_latent_dim(o["latent_dim"], n_used, n_train)

    if task == "unseen-cell-lines":
        splits = unseen_samples(
            screen.sample_ids,
            n_repeats=o["repeats"],
            test_fraction=o["test_fraction"],
            random_state=seed,
        )
    elif task == "kfold":
        splits = kfold(screen.sample_ids, n_splits=5, random_state=seed)
    elif task == "unseen-lineage":
        counts = screen.samples["lineage"].value_counts()
        use = [
            lin
            for lin in counts.index
            if counts[lin] >= o["min_lineage_samples"] and lin != "unknown"
        ]
        if o["max_lineages"]:
            use = use[: o["max_lineages"]]
        splits = unseen_lineage(
            screen.sample_ids,
            screen.samples["lineage"],
            min_samples=o["min_lineage_samples"],
            lineages_to_use=use,
        )
    else:
        dom = screen.samples["domain"]
        splits = transfer(
            screen.sample_ids[dom.to_numpy() == "source"],
            screen.sample_ids[dom.to_numpy() == "target"],
            few_shot_k=o["few_shot"],
            responses=screen.responses,
            random_state=seed,
        )
    params: dict[str, Any] = {
        "n_seeds": o["seeds"],
        "latent_dim": o["latent_dim"],
        "n_genes": o["n_genes"],
        "log_transform": bool(o["log_transform"]),
        "random_state": seed,
        "device": o["device"],
    }
    if gene_list is not None:
        params["genes"] = gene_list
    if not quiet:
        console.print(
            f"{task}: {screen!r}; {len(splits)} splits x {len(names)} models"
            + (" [transductive pretraining]" if o["transductive"] else "")
        )
    extra: dict[str, Any] = {}
    if "provenance" in inspect.signature(evaluate_models).parameters:
        extra["provenance"] = provenance(
            {
                "--data": o["data"],
                "--expression": o["expression"],
                "--responses": o["responses"],
                "--samples": o["samples"],
                "--target": o["target"],
                "--genes": o["genes"],
                "--config": o["config"],
            },
            ctx=o["ctx"],
            value=o["value"] or ("LN_IC50" if str(o["data"]) == "demo" else None),
        )
    out.mkdir(parents=True, exist_ok=True)
    with progress_bar(quiet, "evaluate", len(splits) * len(names)) as advance:
        result = evaluate_models(
            screen,
            names,
            splits,
            model_params=params,
            transductive=o["transductive"],
            sensitive=o["sensitive"],
            top_k=o["top_k"],
            cache_dir=out / "cache",
            settings={"task": task, "min_labels": min_labels, "seed": seed},
            progress=advance,
            **extra,
        )
    seconds = time.perf_counter() - t0
    result.settings["wall_seconds"] = round(seconds, 1)
    # a resumed run's wall time covers only what it computed: say how much came from the cache
    result.settings["results_from_cache"] = (
        f"{int(result.timings['cached'].sum())} of {len(result.timings)} (model, split) results"
    )
    _write_outputs(out, result, names, task)
    if not quiet:
        _print_summary(result, names)
        console.print(
            f"wrote {out}/results.csv, per_perturbation.parquet, figures/, report.html "
            f"({seconds:.0f}s, peak RSS {result.settings['peak_rss_mb']:.0f} MB)"
        )


def _write_outputs(out: Path, result, names: list[str], task: str) -> None:
    from leapscreen.report import (
        plot_lineage_scores,
        plot_model_scatter,
        plot_score_distribution,
        write_html_report,
    )

    write_table_atomic(result.summary, out / "results.csv", overwrite=True)
    write_table_atomic(result.per_perturbation, out / "per_perturbation.parquet", overwrite=True)
    write_table_atomic(result.timings, out / "timings.csv", overwrite=True)
    figures = {
        "Per-perturbation Spearman by model": plot_score_distribution(
            result.per_perturbation, models=names
        )
    }
    leap = [m for m in names if m.startswith("leap")]
    # the single-representation counterpart of leap-H is H (ps-lasso for leap-ps-lasso, ...)
    pairs = [(m.removeprefix("leap-"), m) for m in leap if m.removeprefix("leap-") in names]
    single = [m for m in names if m in ("ps-lasso", "pca-ps-lasso")]
    if pairs or (leap and single):
        x_model, y_model = pairs[0] if pairs else (single[0], leap[0])
        figures["LEAP vs single representation"] = plot_model_scatter(
            result.per_perturbation, x_model=x_model, y_model=y_model
        )
    elif "ridge" in names and leap:
        figures["LEAP vs ridge"] = plot_model_scatter(
            result.per_perturbation, x_model="ridge", y_model=leap[0]
        )
    if task == "unseen-lineage":
        figures["Scores by held-out lineage"] = plot_lineage_scores(
            result.per_perturbation, models=names
        )
    fig_dir = out / "figures"
    fig_dir.mkdir(exist_ok=True)
    for i, (title, fig) in enumerate(figures.items()):
        fig.savefig(
            fig_dir / f"{i + 1}_{title.lower().replace(' ', '_')}.png", dpi=110, bbox_inches="tight"
        )
    write_html_report(
        out / "report.html",
        f"leapscreen evaluation: {task}",
        result.summary,
        result.per_perturbation,
        figures,
        result.settings,
        overwrite=True,
    )


def _print_summary(result, names: list[str]) -> None:
    table = Table(title="mean over perturbations within a split, then mean ± sd over splits")
    table.add_column("model")
    metrics = ["spearman", "pearson", "r2", "mse", "precision_at_k"]
    for m in metrics:
        table.add_column(m, justify="right")
    summary = result.summary.set_index("model")
    for name in names:
        row = summary.loc[name]
        cells = []
        for m in metrics:
            mean, sd = row.get(f"{m}_mean", np.nan), row.get(f"{m}_sd", np.nan)
            cells.append(f"{mean:.3f} ± {sd:.3f}" if np.isfinite(sd) else f"{mean:.3f}")
        table.add_row(name, *cells)
    console.print(table)
