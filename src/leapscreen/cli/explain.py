"""`leapscreen explain`: which genes and pathways drive a model's predictions, and how sure that is.

The model's predictions over its training samples (plus any extra expression) are distilled into a
sparse linear student whose features are chosen by calibrated stability selection
(:mod:`leapscreen.explain.distill`); the stable genes are tested for over-representation in gene
sets (:mod:`leapscreen.explain.pathways`). Tables per perturbation and one self-contained HTML page
are written to a new directory, atomically.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from leapscreen.cli._common import console, err_console, handle_errors, progress_bar, setup_logging
from leapscreen.cli._options import check_choice, check_device, check_ranges, provenance
from leapscreen.errors import InputError

#: Marks a directory written by ``leapscreen explain`` (the only kind ``--overwrite`` replaces).
EXPLAIN_META_FILE = "explain.json"
EXPLAIN_FORMAT = "leapscreen.explain"
#: What an explanation directory holds (``--overwrite`` refuses a directory with anything else).
_OUTPUT_ENTRIES = {
    EXPLAIN_META_FILE,
    "explain.html",
    "summary.csv",
    "features",
    "pathways",
    "attributions",
}
FEATURES = ("genes", "pathways")
PATHWAY_SCORES = ("mean", "pca")
_KIND = {"genes": "genes", "mean": "pathways (mean z-score)", "pca": "pathways (PCA score)"}
#: Smallest gene set tested / scored (genes of the set among the model's genes).
MIN_SET_SIZE = 5

EXPLAIN_RANGES: dict[str, dict[str, Any]] = {
    "--subsamples": {"minimum": 10, "why": "selection proportions need many subsamples"},
    "--penalties": {"minimum": 5},
    "--seed": {"minimum": 0, "maximum": 2**32 - 1},
}


# ------------------------------------------------------------------------------------- checks


def is_explain_directory(path: Path) -> bool:
    """True when ``path`` is a directory written by ``leapscreen explain``."""
    meta = Path(path) / EXPLAIN_META_FILE
    if not meta.is_file():
        return False
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == EXPLAIN_FORMAT


def check_explain_out(out: Path, overwrite: bool) -> None:
    """``--out``: new, or (with ``--overwrite``) empty or an earlier ``explain`` output only."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InputError(
            "--out exists and is not a directory", path=out, fix="choose another --out directory"
        )
    if out.exists():
        entries = sorted(p.name for p in out.iterdir())
        if not overwrite and entries:
            raise InputError(
                "output directory exists; leapscreen never overwrites unless asked",
                path=out,
                fix="choose a new --out or pass --overwrite (it replaces only an earlier "
                "`leapscreen explain` output or an empty directory)",
            )
        foreign = [e for e in entries if e not in _OUTPUT_ENTRIES]
        if entries and (foreign or not is_explain_directory(out)):
            shown = ", ".join((foreign or entries)[:5])
            raise InputError(
                f"--out is a directory that does not hold a `leapscreen explain` output "
                f"({len(entries)} entries: {shown}); --overwrite never deletes other files",
                path=out,
                fix="choose a new or empty --out directory (nothing was changed)",
            )
    if out.parent.exists() and not out.parent.is_dir():
        raise InputError("the parent of --out is not a directory", path=out.parent)


def _check_file(option: str, path: Path | None) -> None:
    if path is not None and not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "not found"
        raise InputError(f"{option}: file {what}", path=path, fix=f"check the {option} path")


def resolve_perturbations(wanted: list[str], available: list[str]) -> list[str]:
    """``--perturbation`` names as the model spells them (exact, else a unique case-insensitive
    match); unknown names raise :class:`InputError` with the closest ones."""
    import difflib

    exact = set(available)
    lower: dict[str, list[str]] = {}
    for a in available:
        lower.setdefault(a.lower(), []).append(a)
    chosen, unknown = [], []
    for w in (str(w).strip() for w in wanted):
        if w in exact:
            chosen.append(w)
        elif len(lower.get(w.lower(), [])) == 1:
            chosen.append(lower[w.lower()][0])
        else:
            unknown.append(w)
    if unknown:
        hints: list[str] = []
        for u in unknown:
            found = difflib.get_close_matches(u, available, n=2, cutoff=0.6)
            found += [a for a in available if u.lower() in a.lower() and a not in found][:2]
            hints += found
        raise InputError(
            f"--perturbation: {len(unknown)} not in the model: {', '.join(unknown[:10])}"
            + (f" (did you mean {', '.join(dict.fromkeys(hints[:6]))}?)" if hints else ""),
            fix="list the model's perturbations with `leapscreen inspect MODEL`",
        )
    return list(dict.fromkeys(chosen))


def _read_gene_sets(path: Path, genes: list[str]) -> dict[str, list[str]]:
    from leapscreen.data.genesets import read_gene_sets

    sets = read_gene_sets(path)
    universe = set(genes)
    usable = {k: v for k, v in sets.items() if len(universe.intersection(v)) >= MIN_SET_SIZE}
    if not usable:
        raise InputError(
            f"--gene-sets: none of its {len(sets)} gene sets has {MIN_SET_SIZE} or more of the "
            f"model's {len(genes)} genes",
            path=path,
            fix="use gene sets of the same gene symbols as the model (e.g. HGNC symbols)",
        )
    return sets


def _slug(name: str, used: set[str]) -> str:
    """A file name for a perturbation: safe characters only, unique (case-insensitively)."""
    base = re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("._")[:80] or "perturbation"
    slug, i = base, 2
    while slug.lower() in used:
        slug, i = f"{base}_{i}", i + 1
    used.add(slug.lower())
    return slug


# -------------------------------------------------------------------------------------- command


@handle_errors
def explain_command(
    ctx: typer.Context,
    model_dir: Path = typer.Argument(..., help="A model directory written by `leapscreen fit`."),
    perturbation: list[str] = typer.Option(
        None,
        "--perturbation",
        "-p",
        help="A perturbation to explain (any case); repeat for several.",
    ),
    all_perturbations: bool = typer.Option(
        False, "--all-perturbations", help="Explain every perturbation of the model."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (new)."),
    gene_sets: Path = typer.Option(
        None, "--gene-sets", help="Gene sets (.gmt or MSigDB .json) for the pathway tables."
    ),
    expression: Path = typer.Option(
        None,
        "--expression",
        "-x",
        help="Extra (unlabelled) expression to distil over, besides the training samples.",
    ),
    features: str = typer.Option(
        "genes", "--features", help="Student features: genes, or pathways (needs --gene-sets)."
    ),
    pathway_score: str = typer.Option(
        "mean", "--pathway-score", help="Pathway activity with --features pathways: mean or pca."
    ),
    subsamples: int = typer.Option(
        100, "--subsamples", help="Random half-subsamples of stability selection (>= 10)."
    ),
    penalties: int = typer.Option(50, "--penalties", help="Penalties of the grid (>= 5)."),
    sample: str = typer.Option(
        None, "--sample", help="The sample whose prediction is broken down (default: the first)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the subsamples and the held-out split."),
    encoding: str = typer.Option(None, "--encoding", help="Text encoding of --expression."),
    device: str = typer.Option("cpu", "--device", help="Torch device: cpu, cuda, cuda:1..."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an earlier `leapscreen explain` output directory."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary output."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show INFO messages."),
) -> None:
    """Explain predictions: stable genes / pathways of a distilled sparse student, and a report."""
    setup_logging(quiet, verbose)
    o = dict(locals())
    # everything below is checked before the model is loaded or anything is computed
    check_ranges(o, EXPLAIN_RANGES)
    check_choice("--features", features, FEATURES)
    check_choice("--pathway-score", pathway_score, PATHWAY_SCORES)
    if not perturbation and not all_perturbations:
        raise InputError(
            "no perturbation to explain",
            fix="pass --perturbation NAME (repeat for several) or --all-perturbations",
        )
    if perturbation and all_perturbations:
        raise InputError(
            "--perturbation and --all-perturbations both given",
            fix="pass one of them",
        )
    if features == "pathways" and gene_sets is None:
        raise InputError(
            "--features pathways needs gene sets to score",
            fix="pass --gene-sets FILE (.gmt or MSigDB .json), or use --features genes",
        )
    _check_file("--gene-sets", gene_sets)
    _check_file("--expression", expression)
    device = check_device(device)
    out = Path(out)
    check_explain_out(out, overwrite)

    from leapscreen.persist.atomic import target_lock

    with target_lock(out):
        check_explain_out(out, overwrite)  # again, now that no one else can write it
        _explain_locked(o, out, device)


def _explain_locked(o: dict[str, Any], out: Path, device: str) -> None:
    from leapscreen.ensemble import LEAP

    quiet = o["quiet"]
    t0 = time.perf_counter()
    model_dir = Path(o["model_dir"])
    if not model_dir.is_dir():
        raise InputError(
            "model directory not found",
            path=model_dir,
            fix="give a directory written by `leapscreen fit`",
        )
    model = LEAP.load(model_dir, device=device)
    available = [str(p) for p in model.perturbations_]
    names = (
        available if o["all_perturbations"] else resolve_perturbations(o["perturbation"], available)
    )
    genes = [str(g) for g in model.preprocessor_.genes_]
    sets = _read_gene_sets(o["gene_sets"], genes) if o["gene_sets"] is not None else None

    train = model.training_expression()
    Xz = train.to_numpy(np.float64)
    index = [str(s) for s in train.index]
    n_extra = 0
    if o["expression"] is not None:
        from leapscreen.data.loading import load_expression

        lt = getattr(model, "log_transform", False)
        extra = load_expression(
            o["expression"],
            encoding=o["encoding"],
            log_transform=lt if isinstance(lt, bool) else None,
        )
        extra.index = extra.index.astype(str)
        seen = set(index)
        dup = [s for s in extra.index if s in seen]
        if dup:
            err_console.print(
                f"[yellow]note:[/] {len(dup)} sample(s) of --expression are training samples and "
                f"are used once: {escape(', '.join(dup[:5]))}",
                highlight=False,
                soft_wrap=True,
            )
            extra = extra.loc[[s for s in extra.index if s not in seen]]
            extra = extra[~extra.index.duplicated()]
        if len(extra):
            Xz = np.vstack([Xz, np.asarray(model.preprocess(extra), np.float64)])
            index += list(extra.index)
            n_extra = len(extra)
    sample = o["sample"] if o["sample"] is not None else index[0]
    if sample not in index:
        raise InputError(
            f"--sample {sample!r} is neither a training sample nor in --expression",
            fix=f"choose one of the {len(index)} samples (e.g. {', '.join(index[:3])})",
        )
    row = index.index(sample)

    steps = 3 + len(names)
    with progress_bar(quiet, "explain", steps) as advance:
        advance("teacher predictions")
        cols = [available.index(n) for n in names]
        teacher = np.asarray(model.predict_preprocessed(Xz), np.float64)[:, cols]
        X, feature_names, kind = _features(Xz, index, genes, sets, o)
        advance("distilling + stability selection")
        from leapscreen.explain.distill import distill

        dist = distill(
            X,
            teacher,
            features=feature_names,
            perturbations=names,
            feature_kind=kind,
            n_subsamples=o["subsamples"],
            n_penalties=o["penalties"],
            random_state=o["seed"],
        )
        advance("tables")
        explanations = []
        for j, name in enumerate(names):
            explanations.append(
                _explain_one(model, dist, j, name, X, teacher, row, sample, genes, sets, o)
            )
            advance(name)
    seconds = time.perf_counter() - t0
    response = (getattr(model, "metadata_", {}) or {}).get("provenance", {}).get("value")
    settings = {
        "model": str(model_dir),
        "model kind": (getattr(model, "metadata_", {}) or {}).get("model"),
        "linear model (exact gene coefficients)": bool(model.is_linear),
        "response": response,
        "features": kind,
        "training samples": len(train),
        "extra samples (--expression)": n_extra,
        "n_subsamples": o["subsamples"],
        "penalties": o["penalties"],
        "seed": o["seed"],
        "gene sets": None if o["gene_sets"] is None else str(o["gene_sets"]),
        "gene sets read": None if sets is None else len(sets),
        "sample broken down": sample,
        "seconds": round(seconds, 1),
        "provenance": provenance(
            {
                "MODEL": model_dir,
                "--expression": o["expression"],
                "--gene-sets": o["gene_sets"],
            },
            ctx=o["ctx"],
        ),
    }
    settings = {k: v for k, v in settings.items() if v is not None}
    _write_outputs(out, explanations, settings, o["overwrite"])
    if not quiet:
        _print_summary(explanations)
        console.print(
            f"explained {len(names)} perturbation(s) over {len(index)} samples in {seconds:.1f}s; "
            f"wrote {out}/explain.html, summary.csv, features/"
            + (", pathways/" if any(e.pathways is not None for e in explanations) else "")
            + (", attributions/" if any(e.attributions is not None for e in explanations) else "")
        )


def _features(
    Xz: np.ndarray,
    index: list[str],
    genes: list[str],
    sets: dict[str, list[str]] | None,
    o: dict[str, Any],
) -> tuple[np.ndarray, list[str], str]:
    """The student's features: the z-scored genes, or pathway activity scores."""
    if o["features"] == "genes":
        return Xz, genes, _KIND["genes"]
    from leapscreen.explain.pathways import pathway_scores

    assert sets is not None
    scores = pathway_scores(
        pd.DataFrame(Xz, index=index, columns=genes),
        sets,
        method=o["pathway_score"],
        min_size=MIN_SET_SIZE,
    )
    return scores.to_numpy(np.float64), [str(c) for c in scores.columns], _KIND[o["pathway_score"]]


def _explain_one(model, dist, j, name, X, teacher, row, sample, genes, sets, o):  # noqa: ANN001, ANN202
    from leapscreen.report.explain import Explanation, attribution_agreement

    st = dist.stability[j]
    table = st.table(dist.features)
    pathways = None
    if sets is not None and o["features"] == "genes":
        from leapscreen.explain.pathways import enrichment

        stable = table.loc[np.asarray(table["selected"], bool), "feature"].astype(str).tolist()
        pathways = enrichment(stable, genes, sets, min_size=MIN_SET_SIZE)
    contrib = pd.Series(np.asarray(dist.contributions(X[row], j), float), index=dist.features)
    attributions = agreement = None
    if model.is_linear:
        coef = model.gene_attributions(name)
        scale = np.asarray(model.preprocessor_.scale_, np.float64)
        coef_z = pd.Series(coef.to_numpy(np.float64) * scale, index=coef.index.astype(str))
        attributions = pd.DataFrame(
            {
                "gene": coef_z.index,
                "coefficient": coef.to_numpy(np.float64),
                "coefficient_z": coef_z.to_numpy(),
            }
        )
        attributions["rank"] = (
            attributions["coefficient_z"].abs().rank(ascending=False, method="min").astype(int)
        )
        attributions = attributions.sort_values("rank", kind="mergesort").reset_index(drop=True)
        if o["features"] == "genes":
            agreement = attribution_agreement(coef_z, table)
    return Explanation(
        perturbation=name,
        stability=st,
        features=table,
        fidelity=float(dist.fidelity[j]),
        feature_kind=dist.feature_kind,
        pathways=pathways,
        contributions=contrib,
        sample=sample,
        prediction=float(teacher[row, j]),
        attributions=attributions,
        agreement=agreement,
    )


# --------------------------------------------------------------------------------------- output


def summary_table(explanations: list[Any], files: list[str]) -> pd.DataFrame:
    """One row per perturbation: fidelity, chosen pair, bound, stable features, agreement, files."""
    rows = []
    for ex, slug in zip(explanations, files, strict=True):
        st = ex.stability
        stable = ex.features[np.asarray(ex.features["selected"], bool)]
        stable = stable.sort_values("proportion", ascending=False, kind="mergesort")
        row = {
            "perturbation": ex.perturbation,
            "fidelity": ex.fidelity,
            "n_selected": ex.n_selected,
            "penalty": float(st.penalties[st.penalty_index]),
            "threshold": float(st.threshold),
            "pfer_bound": float(st.pfer_bound),
            "n_samples": int(st.n_samples),
            "top_features": ";".join(
                f"{f}({'+' if s > 0 else '-' if s < 0 else '0'})"
                for f, s in zip(stable["feature"].head(10), stable["sign"].head(10), strict=True)
            ),
            "top_pathway": None,
            "top_pathway_q": np.nan,
            "file": slug,
        }
        if ex.pathways is not None and len(ex.pathways):
            best = ex.pathways.sort_values("q", kind="mergesort").iloc[0]
            row["top_pathway"], row["top_pathway_q"] = str(best["pathway"]), float(best["q"])
        if ex.agreement is not None:
            row["exact_spearman"] = ex.agreement["spearman"]
            row["exact_top_k"] = ex.agreement["k"]
            row["exact_top_k_overlap"] = ex.agreement["top_k_overlap"]
            row["exact_sign_agreement"] = ex.agreement["sign_agreement"]
        rows.append(row)
    return pd.DataFrame(rows)


def _write_outputs(out: Path, explanations: list[Any], settings: dict[str, Any], overwrite: bool):  # noqa: ANN202
    """Write everything into a hidden sibling directory, then move it into place."""
    from leapscreen.report.explain import write_explain_report

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.explain-", dir=out.parent))
    except OSError as exc:
        raise InputError(
            f"cannot write here ({exc.strerror or exc})", path=out, fix="choose another --out"
        ) from None
    try:
        used: set[str] = set()
        files = [_slug(ex.perturbation, used) for ex in explanations]
        for sub in ("features", "pathways", "attributions"):
            (tmp / sub).mkdir()
        for ex, slug in zip(explanations, files, strict=True):
            ex.features.to_csv(tmp / "features" / f"{slug}.csv", index=False)
            if ex.pathways is not None:
                ex.pathways.to_csv(tmp / "pathways" / f"{slug}.csv", index=False)
            if ex.attributions is not None:
                ex.attributions.to_csv(tmp / "attributions" / f"{slug}.csv", index=False)
        for sub in ("pathways", "attributions"):
            if not any((tmp / sub).iterdir()):
                (tmp / sub).rmdir()
        summary_table(explanations, files).to_csv(tmp / "summary.csv", index=False)
        title = f"leapscreen explain: {Path(settings['model']).name}"
        write_explain_report(tmp / "explain.html", title, explanations, settings)
        meta = {
            "format": EXPLAIN_FORMAT,
            "perturbations": {
                ex.perturbation: f for ex, f in zip(explanations, files, strict=True)
            },
            "settings": settings,
        }
        (tmp / EXPLAIN_META_FILE).write_text(
            json.dumps(meta, indent=2, default=str, ensure_ascii=False), encoding="utf-8"
        )
        _publish(tmp, out, overwrite)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(
            f"writing the output failed ({exc.strerror or exc}); nothing was changed",
            path=out,
            fix="free space or choose another --out",
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _publish(tmp: Path, out: Path, overwrite: bool) -> None:
    """Move the written directory onto ``out``; an old output is replaced only with ``overwrite``.

    The old directory is renamed aside first and restored if the second rename fails, so ``out``
    always holds a complete output (the old or the new one).
    """
    import os

    from leapscreen.persist.atomic import default_mode

    os.chmod(tmp, default_mode(directory=True))
    check_explain_out(out, overwrite)
    if out.exists() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        tmp.rename(out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    old.rmdir()
    out.rename(old)
    try:
        tmp.rename(out)
    except BaseException:
        old.rename(out)
        raise
    with contextlib.suppress(OSError):
        shutil.rmtree(old)


def _print_summary(explanations: list[Any]) -> None:
    table = Table(title="stable features of the distilled student")
    for col, justify in [
        ("perturbation", "left"),
        ("fidelity", "right"),
        ("stable", "right"),
        ("MB bound", "right"),
        ("top stable features", "left"),
        ("top pathway (q)", "left"),
    ]:
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for ex in explanations:
        stable = ex.features[np.asarray(ex.features["selected"], bool)]
        stable = stable.sort_values("proportion", ascending=False, kind="mergesort")
        top = ", ".join(
            f"{f}{'↑' if s > 0 else '↓' if s < 0 else ''}"
            for f, s in zip(stable["feature"].head(6), stable["sign"].head(6), strict=True)
        )
        path = ""
        if ex.pathways is not None and len(ex.pathways):
            best = ex.pathways.sort_values("q", kind="mergesort").iloc[0]
            path = f"{best['pathway']} ({best['q']:.2g})"
        table.add_row(
            escape(ex.perturbation),
            f"{ex.fidelity:.3f}",
            str(ex.n_selected),
            f"{ex.stability.pfer_bound:.2f}",
            escape(top),
            escape(path),
        )
    console.print(table)
