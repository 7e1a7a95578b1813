"""`leapscreen simulate`: write a simulated screen (DepMap-shaped) with its ground truth."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import typer
from rich.table import Table

from leapscreen.cli._common import console, err_console, handle_errors, setup_logging
from leapscreen.errors import InputError

_KINDS = ("gene", "drug")
_FORMATS = ("depmap", "parquet", "h5ad")


@handle_errors
def simulate_command(
    out_dir: Path = typer.Option(..., "--out", "-o", help="Output directory."),
    n_samples: int = typer.Option(300, "--samples", "--n-samples", help="Samples (cell lines)."),
    n_genes: int = typer.Option(2000, "--genes", "--n-genes", help="Genes in the expression."),
    n_perturbations: int = typer.Option(
        100, "--perturbations", "--n-perturbations", help="Perturbations (knock-outs or drugs)."
    ),
    n_lineages: int = typer.Option(8, "--lineages", "--n-lineages", help="Lineages (tissues)."),
    frac_missing: float = typer.Option(
        0.1, "--frac-missing", help="Expected fraction of missing responses, in [0, 1)."
    ),
    kind: str = typer.Option("gene", "--kind", help="Perturbation kind: gene or drug."),
    format: str = typer.Option(
        "depmap", "--format", "-f", help="Output format: depmap (CSV), parquet or h5ad."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed, the same data."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing files."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary output."),
) -> None:
    """Simulate a screen with known drivers (expression, responses, lineages) and write it.

    The ground truth (driver coefficients, programmes, lineage effects, noise-free responses) goes
    to OUT/truth/. The generative model is documented in leapscreen.data.simulate.
    """
    from leapscreen.data.simulate import existing_outputs, simulate_screen, write_simulated

    setup_logging(quiet)
    if kind not in _KINDS:
        raise InputError(
            f"--kind must be one of {', '.join(_KINDS)}, got {kind!r}", fix="pass --kind gene"
        )
    if format not in _FORMATS:
        raise InputError(
            f"--format must be one of {', '.join(_FORMATS)}, got {format!r}",
            fix="pass --format depmap",
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(
            "exists and is not a directory", path=out_dir, fix="give a directory path to --out"
        )
    existing = existing_outputs(out_dir, format, kind) if not overwrite else []
    if existing:  # fail before the work, not after
        raise InputError(
            f"refusing to overwrite {len(existing)} existing file(s) of an earlier run",
            path=out_dir / existing[0],
            fix="pass --overwrite or choose another --out directory",
        )
    start = time.perf_counter()
    with _status(quiet, "Simulating the screen ..."):
        data, truth = simulate_screen(
            n_samples=n_samples,
            n_genes=n_genes,
            n_perturbations=n_perturbations,
            n_lineages=n_lineages,
            frac_missing=frac_missing,
            kind=kind,  # type: ignore[arg-type]
            random_state=seed,
        )
    simulated = time.perf_counter() - start
    with _status(quiet, f"Writing {format} files to {out_dir} ..."):
        written = write_simulated(
            data,
            truth,
            out_dir,
            format=format,
            overwrite=overwrite,  # type: ignore[arg-type]
        )
    if quiet:
        return
    table = Table(title=f"Simulated screen ({kind}, seed {seed})", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("samples x genes", f"{data.n_samples:,} x {data.n_genes:,}")
    table.add_row("perturbations", f"{data.n_perturbations:,}")
    table.add_row("lineages", f"{data.samples['lineage'].nunique()}")
    table.add_row("missing responses", f"{data.missing_fraction():.1%}")
    table.add_row("common essentials", f"{int(truth.common_essential.sum()):,}")
    table.add_row("driver genes (total)", f"{truth.coef.nnz:,}")
    table.add_row("time", f"{simulated:.1f} s simulate, {time.perf_counter() - start:.1f} s total")
    console.print(table)
    data_files = sorted(k for k in written if not k.startswith("truth/"))
    console.print(f"[bold]data[/] in {out_dir}:")
    for name in data_files:
        console.print(f"  {name}", highlight=False)
    console.print(f"[bold]truth[/]: {out_dir / 'truth'} ({len(written) - len(data_files)} files)")


def _status(quiet: bool, message: str) -> AbstractContextManager:
    """A rich spinner on stderr while work runs; nothing when quiet."""
    return nullcontext() if quiet else err_console.status(message)
