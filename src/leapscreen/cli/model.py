"""`leapscreen fit`, `leapscreen predict` and `leapscreen demo`."""

from __future__ import annotations

import errno
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

import leapscreen.cli._data_options as opt
from leapscreen.cli._common import console, err_console, handle_errors, progress_bar, setup_logging
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
from leapscreen.data.dataset import ScreenData
from leapscreen.data.longtable import DUPLICATE_RULES
from leapscreen.errors import InputError
from leapscreen.models import make_model, model_names
from leapscreen.persist.atomic import refuse_existing

# ---------------------------------------------------------------------------------------- inputs


def load_training_data(
    data: Path | None,
    expression: Path | None,
    responses: Path | None,
    samples: Path | None,
    min_labels: int,
    **load_options: Any,
) -> ScreenData:
    """A ScreenData from a dataset (parquet dir / .h5ad / 'demo') or from separate files.

    ``load_options`` are passed to :func:`leapscreen.data.loading.load_screen` (``value``,
    ``encoding``, ``log_transform``, ``sample_column``, ...); options left at ``None`` are not.
    """
    from leapscreen.data.loading import load_screen

    opts = {k: v for k, v in load_options.items() if v is not None}
    if data is not None:
        if str(data) == "demo":
            from leapscreen.datasets import gdsc_demo

            if opts.get("value"):
                check_choice("--value", opts["value"], DEMO_VALUES)
                screen = gdsc_demo(opts["value"])
            else:
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
        screen = load_screen(expression, responses, samples, **opts)
    if min_labels > 0:
        screen = screen.filter_perturbations(min_labels)
    if screen.n_perturbations == 0:
        raise InputError(
            f"no perturbation has at least {min_labels} labelled samples",
            fix="lower --min-labels or check the responses file",
        )
    return screen


def check_latent_dim(latent_dim: int, n_genes: int, n_samples: int) -> None:
    """``--latent-dim`` cannot exceed the genes or the training samples of the data."""
    limit = min(n_genes, n_samples)
    if latent_dim > limit:
        which = "genes" if n_genes <= n_samples else "samples"
        raise InputError(
            f"--latent-dim {latent_dim} is larger than the number of {which} ({limit}; "
            f"{n_genes} genes, {n_samples} samples)",
            fix=f"pass --latent-dim {limit} or less",
        )


def check_out_dir(out: Path, overwrite: bool) -> None:
    """``fit --out``: new, or (with ``--overwrite``) an empty directory or a leapscreen model."""
    from leapscreen.persist.atomic import check_replaceable

    if out.exists() or out.is_symlink():
        if not overwrite:
            raise InputError(
                "output directory exists; leapscreen never overwrites unless asked",
                path=out,
                fix="choose a new --out or pass --overwrite (it replaces only a leapscreen model "
                "directory or an empty directory)",
            )
        check_replaceable(out)
    if out.parent.exists() and not out.parent.is_dir():
        raise InputError("the parent of --out is not a directory", path=out.parent)


FIT_RANGES: dict[str, dict[str, Any]] = {
    "--seeds": {"minimum": 1},
    "--latent-dim": {"minimum": 1},
    "--n-genes": {"minimum": 1},
    "--min-labels": {"minimum": 0},
    "--min-shared-samples": {"minimum": 1},
    "--seed": {"minimum": 0, "maximum": 2**32 - 1},
}


def _fallbacks(estimator: Any) -> list[str]:
    fn = getattr(estimator, "fallback_perturbations", None)
    if fn is None:
        return []
    try:
        return [str(p) for p in fn()]
    except Exception:  # noqa: BLE001 - an older model without the information
        return []


def _default_value(data: Any, screen: ScreenData) -> str | None:
    """The response value learnt when ``--value`` was not given (as far as it is known)."""
    if data is not None and str(data) == "demo":
        return "LN_IC50"
    summary = screen.summary()
    return summary.get("value") or summary.get("response_value")


# ------------------------------------------------------------------------------------------ fit


@handle_errors
def fit_command(
    ctx: typer.Context,
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="Output model directory (new; --overwrite replaces only a leapscreen model dir).",
    ),
    data: Path = opt.DATA,
    expression: Path = opt.EXPRESSION,
    responses: Path = opt.RESPONSES,
    samples: Path = opt.SAMPLES,
    config: Path = opt.CONFIG,
    model: str = typer.Option(
        "leap-ps-lasso",
        "--model",
        "-m",
        help=f"One of: {', '.join(model_names(with_baselines=False))}.",
    ),
    seeds: int = typer.Option(5, "--seeds", help="Representation seeds (>= 1)."),
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
    min_labels: int = typer.Option(
        10, "--min-labels", help="Drop perturbations with fewer labelled samples."
    ),
    seed: int = typer.Option(0, "--seed", help="Base random seed."),
    device: str = typer.Option("cpu", "--device", help="Torch device: cpu, cuda, cuda:1..."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing leapscreen model directory."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary output."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show INFO messages."),
) -> None:
    """Fit a model (LEAP by default) and save it as a directory of arrays + JSON."""
    setup_logging(quiet, verbose)
    o = apply_config(ctx, config, dict(locals()))
    # everything below is checked before any input is read or anything is fitted
    check_ranges(o, FIT_RANGES)
    check_models("--model", [o["model"]], with_baselines=False)
    check_choice("--duplicates", o["duplicates"], DUPLICATE_RULES)
    o["device"] = check_device(o["device"])
    out = Path(o["out"])
    check_out_dir(out, o["overwrite"])
    gene_list = read_genes(o["genes"], o["encoding"])

    from leapscreen.persist.atomic import target_lock

    with target_lock(out):
        check_out_dir(out, o["overwrite"])  # again, now that no one else can write it
        _fit_locked(o, out, gene_list)


def _fit_locked(o: dict[str, Any], out: Path, gene_list: list[str] | None) -> None:
    quiet = o["quiet"]
    screen = load_training_data(
        o["data"] and Path(o["data"]),
        o["expression"],
        o["responses"],
        o["samples"],
        o["min_labels"],
        value=o["value"],
        encoding=o["encoding"],
        log_transform=o["log_transform"] or None,
        sample_column=o["sample_column"],
        perturbation_column=o["perturbation_column"],
        value_column=o["value_column"],
        duplicates=o["duplicates"] if o["duplicates"] != "mean" else None,
        min_shared_samples=o["min_shared_samples"] if o["min_shared_samples"] != 10 else None,
    )
    name = o["model"]
    params: dict[str, Any] = {
        "n_seeds": o["seeds"],
        "latent_dim": o["latent_dim"],
        "n_genes": o["n_genes"],
        "log_transform": bool(o["log_transform"]),
        "random_state": o["seed"],
        "device": o["device"],
    }
    if gene_list is not None:
        params["genes"] = gene_list
    estimator = make_model(name, **params)
    if learns_latent(estimator):
        n_used = len(gene_list) if gene_list is not None else min(o["n_genes"], screen.n_genes)
        check_latent_dim(o["latent_dim"], n_used, screen.n_samples)
    if not quiet:
        console.print(f"training on {screen!r}")
    t0 = time.perf_counter()
    with progress_bar(quiet, f"fit {name}", estimator.n_seeds) as advance:
        estimator.fit(
            screen.expression,
            screen.responses,
            sources=list(screen.samples["source"]),
            lineages=list(screen.samples["lineage"]),
            progress=lambda msg, done, total: advance(msg, done, total),
        )
    seconds = time.perf_counter() - t0
    fallbacks = _fallbacks(estimator)
    prov = provenance(
        {
            "--data": o["data"],
            "--expression": o["expression"],
            "--responses": o["responses"],
            "--samples": o["samples"],
            "--genes": o["genes"],
            "--config": o["config"],
        },
        value=o["value"] or _default_value(o["data"], screen),
        ctx=o["ctx"],
        settings={k: (str(v) if isinstance(v, Path) else v) for k, v in o.items() if k != "ctx"},
    )
    estimator.save(
        out,
        overwrite=o["overwrite"],
        metadata={
            "model": name,
            "dataset": screen.summary() | {"dropped": screen.dropped},
            "fit_seconds": seconds,
            "fallback_perturbations": fallbacks,
            "label_counts": {str(k): int(v) for k, v in screen.responses.notna().sum().items()},
            "provenance": prov,
        },
    )
    if not quiet:
        console.print(
            f"saved {name} ({len(estimator.members_)} members, "
            f"{len(estimator.perturbations_)} perturbations, "
            f"{len(estimator.preprocessor_.genes_)} genes) to {out} in {seconds:.1f}s"
        )
    if fallbacks:
        shown = ", ".join(fallbacks[:10]) + (", ..." if len(fallbacks) > 10 else "")
        err_console.print(
            f"[yellow]warning:[/] {len(fallbacks)} perturbation(s) have too few labels to learn "
            f"from and predict the training mean: {escape(shown)} (raise --min-labels to drop "
            "them)",
            highlight=False,
            soft_wrap=True,
        )


# -------------------------------------------------------------------------------------- predict


def _write_to(table: pd.DataFrame, tmp: Path, path: Path) -> None:
    suffixes = "".join(path.suffixes).lower()
    if suffixes.endswith(".parquet"):
        table.to_parquet(tmp, index=False)
        return
    compression = "gzip" if suffixes.endswith(".gz") else None
    base = suffixes[:-3] if compression else suffixes
    if base.endswith((".tsv", ".txt")):
        sep = "\t"
    elif base.endswith(".csv"):
        sep = ","
    else:
        raise InputError(
            f"unknown output format '{''.join(path.suffixes) or path.name}'",
            path=path,
            fix="end the file name with .csv, .tsv, .csv.gz, .tsv.gz or .parquet",
        )
    if compression:
        import gzip

        with gzip.open(tmp, "wt", encoding="utf-8", newline="") as fh:
            table.to_csv(fh, sep=sep, index=False)
    else:
        table.to_csv(tmp, sep=sep, index=False)


def write_table_atomic(table: pd.DataFrame, path: Path, overwrite: bool) -> None:
    """Write CSV / TSV (gzip by a final .gz) / parquet by extension, atomically.

    The table goes to a uniquely named temp file in the target's directory, then is renamed onto
    the target; any failure (disk full, file-size limit, interrupt) removes the temp file and
    leaves an existing target untouched. Refuses to overwrite unless asked.
    """
    from leapscreen.persist.atomic import publish_file, unique_temp_file

    refuse_existing(path, overwrite)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = unique_temp_file(path)
    except OSError as exc:
        raise InputError(
            f"cannot write here ({exc.strerror or exc})", path=path, fix="choose another --out"
        ) from None
    try:
        _write_to(table, tmp, path)
        publish_file(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        reason = {
            errno.ENOSPC: "the disk is full",
            errno.EFBIG: "the file is larger than this system allows (file-size limit)",
            errno.EDQUOT: "the disk quota is exceeded",
            errno.EACCES: "permission denied",
        }.get(exc.errno, exc.strerror or str(exc))
        raise InputError(
            f"writing the output failed: {reason}; nothing was written",
            path=path,
            fix="free space or choose another --out",
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _select_perturbations(text: str, available: list[str]) -> list[str]:
    wanted = split_list("--perturbations", text)
    exact = set(available)
    lower: dict[str, list[str]] = {}
    for a in available:
        lower.setdefault(a.lower(), []).append(a)
    chosen, unknown = [], []
    for w in wanted:
        if w in exact:
            chosen.append(w)
        elif len(lower.get(w.lower(), [])) == 1:
            chosen.append(lower[w.lower()][0])
        else:
            unknown.append(w)
    if unknown:
        import difflib

        hints = [
            m[0] for u in unknown if (m := difflib.get_close_matches(u, available, n=1, cutoff=0.6))
        ]
        raise InputError(
            f"--perturbations: {len(unknown)} not in the model: {', '.join(unknown[:10])}"
            + (f" (did you mean {', '.join(hints[:5])}?)" if hints else ""),
            fix="list the model's perturbations with `leapscreen inspect MODEL`",
        )
    return list(dict.fromkeys(chosen))


INTERVALS_HELP = (
    "Add conformal prediction intervals and the applicability domain. Long format: columns "
    "lower and upper beside value, then domain_percentile (how far the sample lies from the "
    "training samples: the fraction of training samples nearer to their own neighbours; near 1 = "
    "outside the training data) and extrapolates (true when domain_percentile >= 0.99 or the "
    "lineage is absent from training), lineage_seen with --samples, and for autoencoder "
    "models reconstruction_ratio (the autoencoders' reconstruction error over the training "
    "samples' median). Wide format: domain_percentile and extrapolates after "
    "sample (and the other domain columns), then for each perturbation P the columns P, "
    "P_lower, P_upper. A bound is inf / -inf "
    "where a perturbation has too few labelled training samples for the coverage."
)


def _interval_tables(
    model: Any,
    expr: pd.DataFrame,
    coverage: float,
    samples: Path | None,
    encoding: str | None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Predictions, lower and upper bounds, and the applicability domain of each sample."""
    lineages = None
    if samples is not None:
        from leapscreen.data.loading import load_samples

        meta = load_samples(samples, encoding=encoding)
        lineages = meta["lineage"].reindex([str(i) for i in expr.index]).fillna("unknown")
        if lineages.eq("unknown").all():
            err_console.print(
                f"[yellow]warning:[/] no sample of the expression has a lineage in "
                f"{escape(str(samples))}: lineages not checked",
                highlight=False,
                soft_wrap=True,
            )
    # absolute intervals: the spread-normalised ones undercover on real data (see
    # leapscreen.explain.intervals), so the command offers only the validated kind
    pred, lower, upper = model.predict_intervals(expr, coverage=coverage, normalize=False)
    domain = model.applicability(expr, lineages=None if lineages is None else list(lineages))
    return pred, lower, upper, domain


def _warn_extrapolation(domain: pd.DataFrame) -> None:
    far = domain[domain["extrapolates"]]
    if far.empty:
        return
    shown = "; ".join(f"{i} ({note})" for i, note in far["domain_note"].head(5).items())
    err_console.print(
        f"[yellow]warning:[/] {len(far)} of {len(domain)} sample(s) lie outside the training data "
        f"and their predictions extrapolate: {escape(shown)}"
        + (", ..." if len(far) > 5 else "")
        + " (column extrapolates)",
        highlight=False,
        soft_wrap=True,
    )


def _with_intervals(
    pred: pd.DataFrame,
    lower: pd.DataFrame,
    upper: pd.DataFrame,
    domain: pd.DataFrame,
    wide: bool,
    fallbacks: set[str],
) -> pd.DataFrame:
    """The output table with the bounds and the domain columns (layout in INTERVALS_HELP)."""
    cols = ["domain_percentile", "extrapolates"]
    if domain["lineage_seen"].notna().any():
        cols.append("lineage_seen")
    if "reconstruction_ratio" in domain:
        cols.append("reconstruction_ratio")
    dom = domain[cols].copy()
    dom.index = pred.index
    if wide:
        parts = [dom]
        for p in pred.columns:
            parts.append(
                pd.DataFrame(
                    {p: pred[p], f"{p}_lower": lower[p], f"{p}_upper": upper[p]}, index=pred.index
                )
            )
        return pd.concat(parts, axis=1).reset_index()
    table = pred.reset_index().melt(id_vars="sample", var_name="perturbation", value_name="value")
    table["lower"] = lower.to_numpy().ravel(order="F")
    table["upper"] = upper.to_numpy().ravel(order="F")
    table["fallback_to_mean"] = table["perturbation"].astype(str).isin(fallbacks)
    for c in cols:  # melt stacks the perturbations one after the other: the samples repeat
        table[c] = np.tile(dom[c].to_numpy(), pred.shape[1])
    return table


@handle_errors
def predict_command(
    model_dir: Path = typer.Argument(..., help="A model directory written by `leapscreen fit`."),
    expression: Path = typer.Argument(..., help="Expression of the new samples."),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output table: .csv, .tsv, .csv.gz, .tsv.gz or .parquet."
    ),
    wide: bool = typer.Option(False, "--wide", help="Samples x perturbations instead of long."),
    perturbations: str = typer.Option(
        None, "--perturbations", help="Comma-separated subset of perturbations (any case)."
    ),
    intervals: bool = typer.Option(False, "--intervals", help=INTERVALS_HELP),
    coverage: float = typer.Option(
        None,
        "--coverage",
        help="Nominal coverage of the intervals, a fraction in (0, 1) (default 0.9; needs "
        "--intervals).",
    ),
    samples: Path = typer.Option(
        None,
        "--samples",
        help="Sample metadata with a lineage column: with --intervals, a lineage absent from "
        "training is flagged.",
    ),
    encoding: str = typer.Option(None, "--encoding", help="Text encoding of the expression."),
    device: str = typer.Option("cpu", "--device", help="Torch device."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary output."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show INFO messages."),
) -> None:
    """Predict responses of new samples: a table (sample, perturbation, value, fallback_to_mean)."""
    setup_logging(quiet, verbose)
    from leapscreen.data.loading import load_expression
    from leapscreen.ensemble import LEAP
    from leapscreen.explain.intervals import check_coverage

    device = check_device(device)
    for option, given in (("--coverage", coverage), ("--samples", samples)):
        if given not in (None, False) and not intervals:
            raise InputError(f"{option} applies to intervals only", fix="add --intervals")
    if intervals:
        coverage = check_coverage(0.9 if coverage is None else coverage, "--coverage")
    refuse_existing(out, overwrite)
    if perturbations is not None:
        split_list("--perturbations", perturbations)
    model = LEAP.load(model_dir, device=device)
    lt = getattr(model, "log_transform", False)
    expr = load_expression(
        expression, encoding=encoding, log_transform=lt if isinstance(lt, bool) else None
    )
    if intervals:
        pred, lower, upper, domain = _interval_tables(model, expr, coverage, samples, encoding)
    else:
        pred = model.predict(expr)
    if perturbations is not None:
        pred = pred[_select_perturbations(perturbations, [str(c) for c in pred.columns])]
    fallbacks = set(_fallbacks(model))
    pred.index.name = "sample"
    if intervals:
        table = _with_intervals(
            pred, lower[pred.columns], upper[pred.columns], domain, wide, fallbacks
        )
    elif wide:
        table = pred.reset_index()
    else:
        table = pred.reset_index().melt(
            id_vars="sample", var_name="perturbation", value_name="value"
        )
        table["fallback_to_mean"] = table["perturbation"].astype(str).isin(fallbacks)
    write_table_atomic(table, out, overwrite)
    if intervals:
        _warn_extrapolation(domain)
        unbounded = [str(p) for p in pred.columns if not np.isfinite(upper[p]).all()]
        if unbounded:
            err_console.print(
                f"[yellow]note:[/] {len(unbounded)} perturbation(s) have too few labelled "
                f"training samples for {coverage:.0%} intervals (bounds inf): "
                f"{escape(', '.join(unbounded[:10]))}",
                highlight=False,
                soft_wrap=True,
            )
    used = [p for p in pred.columns if str(p) in fallbacks]
    if used:
        err_console.print(
            f"[yellow]note:[/] {len(used)} perturbation(s) had too few training labels and are "
            f"predicted as the training mean: {escape(', '.join(map(str, used[:10])))}"
            + (" (column fallback_to_mean)" if not wide else ""),
            highlight=False,
            soft_wrap=True,
        )
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


DEMO_VALUES = ("LN_IC50", "AUC", "AAC")
DEMO_PARAMS: dict[str, Any] = {"latent_dim": 64, "n_genes": 2000, "random_state": 0}


def _fmt(x: float) -> str:
    return "nan" if not np.isfinite(x) else f"{x:+.3f}"
