"""``leapscreen data``: look at data files before modelling (what they are, shapes, overlaps)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from leapscreen.cli._common import console, handle_errors, setup_logging
from leapscreen.data.ids import IdMapper, normalize_name

app = typer.Typer(
    help="Inspect screen data files: what each file is, its shape, missing values, lineages and "
    "how the files' samples overlap.",
    no_args_is_help=True,
    add_completion=False,
)

_RESPONSE_KINDS = {
    "gdsc_fitted",
    "ccle2012",
    "prism_secondary",
    "prism_primary",
    "depmap_gene_effect",
    "depmap_gene_dependency",
    "long_table",
}


@dataclass
class FileSummary:
    """What ``data summary`` reports about one file."""

    path: Path
    kind: str
    rows: int = 0
    cols: int = 0
    row_label: str = "rows"
    col_label: str = "columns"
    missing: float | None = None
    value_range: tuple[float, float] | None = None
    lineages: pd.Series | None = None
    sample_ids: pd.Index | None = None
    notes: list[str] = field(default_factory=list)
    models: pd.DataFrame | None = None


def _matrix_stats(df: pd.DataFrame) -> tuple[float | None, tuple[float, float] | None]:
    values = df.to_numpy(dtype=np.float64, na_value=np.nan) if df.size else np.empty(0)
    if values.size == 0:
        return None, None
    finite = values[np.isfinite(values)]
    rng = (float(finite.min()), float(finite.max())) if finite.size else None
    return float(np.isnan(values).mean()), rng


def summarize(path: Path, kind: str, obj: object) -> FileSummary:
    """Turn what :func:`~leapscreen.data.tables.read_any` returned into a :class:`FileSummary`."""
    from leapscreen.data.dataset import ScreenData

    s = FileSummary(path=path, kind=kind)
    if isinstance(obj, ScreenData):
        s.rows, s.cols = obj.n_samples, obj.n_perturbations
        s.row_label, s.col_label = "samples", "perturbations"
        s.missing = obj.missing_fraction()
        s.value_range = _matrix_stats(obj.responses)[1]
        s.lineages = obj.samples["lineage"]
        s.sample_ids = obj.sample_ids
        s.notes.append(f"{obj.n_genes} genes of expression")
        for entry in obj.dropped:
            s.notes.append(f"dropped {entry['n']} {entry['what']} that {entry['reason']}")
    elif isinstance(obj, tuple):
        responses, meta = obj
        s.rows, s.cols = responses.shape
        s.row_label, s.col_label = "samples", "perturbations"
        s.missing, s.value_range = _matrix_stats(responses)
        s.sample_ids = responses.index
        if "n_repeated" in meta.columns and int(meta["n_repeated"].sum()):
            s.notes.append(
                f"{int(meta['n_repeated'].sum())} (sample, perturbation) pairs measured more than "
                "once were averaged"
            )
    elif kind == "gene_sets":
        sizes = np.array([len(v) for v in obj.values()])
        genes = set(itertools.chain.from_iterable(obj.values()))
        s.rows, s.cols = len(obj), len(genes)
        s.row_label, s.col_label = "sets", "distinct genes"
        s.notes.append(f"set size median {np.median(sizes):g}, range {sizes.min()}..{sizes.max()}")
    elif kind == "id_list":
        s.rows, s.cols = len(obj), 1
        s.row_label, s.col_label = "identifiers", "column"
    elif kind in ("depmap_models", "samples"):
        s.rows, s.cols = obj.shape
        s.row_label, s.col_label = "samples", "metadata columns"
        s.lineages = obj["lineage"] if "lineage" in obj.columns else None
        s.sample_ids = obj.index
        if kind == "depmap_models":
            s.models = obj
    else:
        s.rows, s.cols = obj.shape
        s.row_label = "samples"
        s.col_label = {
            "depmap_expression": "genes",
            "depmap_gene_effect": "genes",
            "depmap_gene_dependency": "genes",
            "long_table": "perturbations",
        }.get(kind, "features")
        s.missing, s.value_range = _matrix_stats(obj)
        s.sample_ids = obj.index
        if kind == "matrix" and s.value_range and s.value_range[0] >= 0 and s.value_range[1] > 50:
            s.notes.append(
                f"values up to {s.value_range[1]:.4g}: if this is expression it looks like "
                "un-logged TPM (log2(TPM+1) stays below 20); fit with --log-transform"
            )
    return s


def _print_file(s: FileSummary) -> None:
    table = Table(title=escape(str(s.path)), show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("kind", s.kind)
    table.add_row("shape", f"{s.rows} {s.row_label} x {s.cols} {s.col_label}")
    if s.missing is not None:
        table.add_row("missing", f"{s.missing:.1%}")
    if s.value_range is not None:
        table.add_row("values", f"{s.value_range[0]:.4g} .. {s.value_range[1]:.4g}")
    if s.lineages is not None:
        counts = s.lineages.value_counts()
        top = ", ".join(f"{escape(str(k))} {v}" for k, v in counts.head(6).items())
        more = f", ... ({len(counts)} lineages)" if len(counts) > 6 else ""
        table.add_row("lineages", top + more)
    for note in s.notes:
        table.add_row("note", escape(note))
    console.print(table)


def _one_line(s: FileSummary) -> str:
    text = f"{s.path}: {s.kind}, {s.rows} {s.row_label} x {s.cols} {s.col_label}"
    if s.missing is not None:
        text += f", {s.missing:.1%} missing"
    return text


def _overlaps(summaries: list[FileSummary]) -> tuple[list[tuple], str | None]:
    """Pairwise shared samples; IDs are mapped to ModelIDs when a Model.csv is given."""
    with_ids = [s for s in summaries if s.sample_ids is not None and s.models is None]
    models = next((s for s in summaries if s.models is not None), None)
    via = None
    id_sets: dict[int, set[str]] = {}
    if models is not None:
        mapper = IdMapper.from_models(models.models)
        via = f"IDs mapped to DepMap ModelIDs through {models.path.name}"
        with_ids.append(models)
        for s in with_ids:
            if s is models:
                id_sets[id(s)] = {str(v) for v in s.sample_ids}
                continue
            match = mapper.match(list(s.sample_ids), "auto")
            id_sets[id(s)] = set(match.ids.dropna().astype(str))
            s.notes.append(f"{match.n_matched}/{match.n_total} sample IDs matched a ModelID")
    else:
        for s in with_ids:
            id_sets[id(s)] = {str(v) for v in s.sample_ids}
    rows = []
    for a, b in itertools.combinations(with_ids, 2):
        shared = len(id_sets[id(a)] & id_sets[id(b)])
        note = ""
        if models is None:
            norm_a = {normalize_name(v) for v in id_sets[id(a)]}
            norm_b = {normalize_name(v) for v in id_sets[id(b)]}
            if len(norm_a & norm_b) > shared:
                shared = len(norm_a & norm_b)
                note = "names compared as upper-case alphanumerics; "
        a_resp, b_resp = a.kind in _RESPONSE_KINDS, b.kind in _RESPONSE_KINDS
        if a_resp != b_resp and a.models is None and b.models is None:
            feat = b if a_resp else a
            note += (
                f"{shared} of {len(id_sets[id(feat)])} samples of {feat.path.name} have responses"
            )
        rows.append((a, b, len(id_sets[id(a)]), len(id_sets[id(b)]), shared, note))
    return rows, via


@app.command("summary")
@handle_errors
def summary(
    paths: list[Path] = typer.Argument(
        ..., help="Data files (CSV / TSV / parquet / .h5ad / .gmt) or dataset directories."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="One line per file, no tables."),
    value: str | None = typer.Option(
        None,
        "--value",
        help="Response value to read: LN_IC50 | AUC | AAC (GDSC), ActArea | IC50 | LN_IC50 | EC50 "
        "(CCLE 2012), auc | aac | ic50 | ec50 (PRISM), or the value column of a long table.",
    ),
    encoding: str | None = typer.Option(
        None, "--encoding", help="Text encoding of CSV/TSV files (default UTF-8), e.g. latin-1."
    ),
    log_transform: bool = typer.Option(
        False,
        "--log-transform",
        help="DepMap-layout expression holds linear TPM: show log2(TPM+1).",
    ),
    sample_column: str | None = typer.Option(
        None, "--sample-column", help="Long table: the column of sample IDs."
    ),
    perturbation_column: str | None = typer.Option(
        None, "--perturbation-column", help="Long table: the column of perturbation IDs."
    ),
    value_column: str | None = typer.Option(
        None, "--value-column", help="Long table: the column of response values."
    ),
    duplicates: str = typer.Option(
        "mean",
        "--duplicates",
        help="Repeated (sample, perturbation) measurements: mean | median | first | error.",
    ),
) -> None:
    """Say what each file is: kind, shape, missing values, lineages, and shared samples."""
    from leapscreen.data.longtable import DUPLICATE_RULES
    from leapscreen.data.tables import read_any
    from leapscreen.errors import InputError

    setup_logging(quiet)
    if duplicates not in DUPLICATE_RULES:
        raise InputError(
            f"--duplicates {duplicates!r} is not a rule",
            fix=f"use --duplicates {' | '.join(DUPLICATE_RULES)}",
        )
    summaries = []
    for path in paths:
        kind, obj = read_any(
            path,
            value=value,
            encoding=encoding,
            log_transform=log_transform,
            sample_column=sample_column,
            perturbation_column=perturbation_column,
            value_column=value_column,
            duplicates=duplicates,
        )
        summaries.append(summarize(Path(path), kind, obj))
    overlaps, via = _overlaps(summaries) if len(summaries) > 1 else ([], None)
    if quiet:
        for s in summaries:
            console.print(escape(_one_line(s)), highlight=False, soft_wrap=True)
        for a, b, _, _, shared, note in overlaps:
            console.print(
                escape(f"shared samples {a.path.name} / {b.path.name}: {shared}")
                + (f" ({escape(note)})" if note else ""),
                highlight=False,
                soft_wrap=True,
            )
        return
    for s in summaries:
        _print_file(s)
    if overlaps:
        title = "shared samples" + (f" ({escape(via)})" if via else "")
        table = Table(title=title, title_justify="left")
        for col in ("file A", "file B", "A", "B", "shared", ""):
            table.add_column(col, overflow="fold")
        for a, b, na, nb, shared, note in overlaps:
            table.add_row(
                escape(a.path.name),
                escape(b.path.name),
                str(na),
                str(nb),
                str(shared),
                escape(note),
            )
        console.print(table)
