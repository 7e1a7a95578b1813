"""`leapscreen inspect MODEL`: what a saved model is, how it was made, and what it learned."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.markup import escape
from rich.table import Table

from leapscreen.cli._common import console, handle_errors, setup_logging


def _per_perturbation(model: Any, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """Label counts and cross-validated scores per perturbation, from the loaded parts."""
    perts = [str(p) for p in meta["perturbations"]]
    p = len(perts)
    counts = meta.get("metadata", {}).get("label_counts") or {}
    n_train = [counts.get(name) for name in perts]
    cv_rows = []
    for member in getattr(model, "members_", []):
        head = member.head
        nt = getattr(head, "n_train_", None)
        if all(v is None for v in n_train) and nt is not None and np.shape(nt) == (p,):
            n_train = [int(v) for v in nt]
        cv = getattr(head, "cv_scores_", None)
        if cv is not None and np.ndim(cv) == 2 and np.shape(cv)[1] == p:
            with np.errstate(all="ignore"):
                arr = np.asarray(cv, dtype=float)
                best = np.where(
                    np.isfinite(arr).any(axis=0), np.nanmax(arr, axis=0, initial=-np.inf), np.nan
                )
            cv_rows.append(best)
    cv_mean = np.nanmean(np.vstack(cv_rows), axis=0) if cv_rows else np.full(p, np.nan)
    fn = getattr(model, "fallback_perturbations", None)
    fallbacks = (
        set(fn())
        if callable(fn)
        else set(meta.get("metadata", {}).get("fallback_perturbations", []))
    )
    return [
        {
            "perturbation": name,
            "n_labels": None if n_train[i] is None else int(n_train[i]),
            "cv_score": None if not np.isfinite(cv_mean[i]) else round(float(cv_mean[i]), 4),
            "fallback_to_mean": name in fallbacks,
        }
        for i, name in enumerate(perts)
    ]


def describe_model(directory: Path) -> dict[str, Any]:
    """Everything ``inspect`` reports, as a JSON-able dict (read through :mod:`leapscreen.persist`)."""
    import leapscreen.models  # noqa: F401 - registers the model classes for loading
    from leapscreen.persist import load_model, read_model_meta

    meta = read_model_meta(directory)
    model = load_model(directory)
    md = meta.get("metadata", {}) or {}
    state = meta.get("state", {})
    params = state.get("params", {}) if isinstance(state, dict) else {}
    return {
        "path": str(directory),
        "kind": md.get("model") or meta["class"],
        "class": meta["class"],
        "format": f"{meta['format']} v{meta['format_version']}",
        "leapscreen_version": meta.get("leapscreen_version"),
        "created": meta.get("created"),
        "members": [
            {
                "representation": m.get("kind"),
                "head": m.get("head"),
                "seed": m.get("seed"),
                "fit_seconds": m.get("fit_seconds"),
            }
            for m in meta["members"]
        ],
        "n_genes": len(meta["genes"]),
        "n_perturbations": len(meta["perturbations"]),
        "settings": {k: v for k, v in params.items() if k != "genes"}
        | ({"genes": f"{len(params['genes'])} given"} if params.get("genes") else {}),
        "training_fingerprint": meta.get("training_fingerprint"),
        "dataset": md.get("dataset"),
        "provenance": md.get("provenance"),
        "perturbations": _per_perturbation(model, meta),
    }


@handle_errors
def inspect_command(
    model_dir: Path = typer.Argument(..., help="A model directory written by `leapscreen fit`."),
    as_json: bool = typer.Option(False, "--json", help="Print everything as JSON."),
    all_perturbations: bool = typer.Option(
        False, "--all", help="List every perturbation (default: the first 20)."
    ),
) -> None:
    """Show what a saved model is: kind, members, genes, perturbations, settings, provenance."""
    setup_logging(quiet=True)
    info = describe_model(model_dir)
    if as_json:
        typer.echo(json.dumps(info, indent=1, default=str))
        return
    e = escape
    console.print(f"[bold]{e(str(model_dir))}[/]: {e(str(info['kind']))} ({info['format']})")
    console.print(
        f"written by leapscreen {info['leapscreen_version']} on {info['created']}; "
        f"{info['n_genes']} genes, {info['n_perturbations']} perturbations, "
        f"{len(info['members'])} members"
    )
    members = Table(title="members")
    for col in ("representation", "head", "seed", "fit seconds"):
        members.add_column(col)
    for m in info["members"]:
        secs = m["fit_seconds"]
        members.add_row(
            str(m["representation"]),
            str(m["head"]),
            str(m["seed"]),
            "" if secs is None else f"{secs:.1f}",
        )
    console.print(members)
    settings = ", ".join(f"{k}={v}" for k, v in sorted(info["settings"].items()))
    console.print(f"settings: {e(settings)}")
    console.print(f"training-data fingerprint: {info['training_fingerprint']}")
    prov = info["provenance"]
    if prov:
        console.print(f"made by: {e(' '.join(map(str, prov.get('command_line', []))))}")
        if prov.get("value"):
            console.print(f"response value: {e(str(prov['value']))}")
        for item in prov.get("inputs", []):
            digest = (
                item.get("sha256")
                or item.get("dataset")
                or (f"{len(item.get('files', []))} files" if "files" in item else "?")
            )
            console.print(f"  {item['option']} {e(str(item['path']))}  {e(str(digest))}")
    else:
        console.print("made by: (no provenance recorded: fitted by an older leapscreen or the API)")
    perts = Table(title="perturbations (cv_score: best cross-validated score, mean over members)")
    for col in ("perturbation", "labels", "cv_score", "fallback to mean"):
        perts.add_column(col)
    rows = info["perturbations"]
    shown = rows if all_perturbations else rows[:20]
    for r in shown:
        perts.add_row(
            e(r["perturbation"]),
            "" if r["n_labels"] is None else str(r["n_labels"]),
            "" if r["cv_score"] is None else f"{r['cv_score']:+.3f}",
            "yes" if r["fallback_to_mean"] else "",
        )
    console.print(perts)
    if len(rows) > len(shown):
        console.print(f"... {len(rows) - len(shown)} more (use --all or --json)")
