"""Markdown tables of the real-data evaluations written by ``benchmarks/run_real_evaluations.sh``.

Usage: ``python benchmarks/summarize_evaluations.py [runs/eval]``

For each run directory (one ``leapscreen evaluate --out``): mean ± sd over splits of the per-split
mean over perturbations, the mean fit + predict seconds per split of each model, the share of
perturbations (over all splits) where LEAP beats ridge and the single representation, and the wall
time and peak memory of the whole run (from ``time.txt``, ``/usr/bin/time -v``). Runs still in
progress are summarised from their cache.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

from leapscreen.evaluate.metrics import aggregate

METRICS = ["spearman", "pearson", "r2", "mse", "precision_at_k"]


def _from_cache(run: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, times = [], []
    for path in sorted((run / "cache").glob("*/*.scores.parquet")):
        scores = pd.read_parquet(path)
        rows.append(scores)
        times.append(
            {
                "model": scores["model"].iloc[0],
                "split": scores["split"].iloc[0],
                "seconds": scores.attrs.get("seconds"),
            }
        )
    return pd.concat(rows, ignore_index=True), pd.DataFrame(times)


def _time_figures(run: Path) -> str:
    path = run / "time.txt"
    if not path.is_file():
        return "run in progress"
    text = path.read_text()
    wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    parts = []
    if wall:
        parts.append(f"wall {wall.group(1)}")
    if rss:
        parts.append(f"peak RSS {int(rss.group(1)) / 1024**2:.2f} GiB")
    return ", ".join(parts) or "run in progress"


def _fmt(value: float, metric: str) -> str:
    # MSE is on the response's own scale (AAC: 0-1), so show significant digits
    return f"{value:.3g}" if metric == "mse" else f"{value:.3f}"


def _paired(per: pd.DataFrame, a: str, b: str) -> str:
    wide = per.pivot_table(index=["split", "perturbation"], columns="model", values="spearman")
    if a not in wide or b not in wide:
        return ""
    both = wide[[a, b]].dropna()
    return f"{a} > {b} on {100 * (both[a] > both[b]).mean():.0f}% of (split, perturbation) pairs"


def summarise(run: Path) -> str:
    per, times = _from_cache(run)
    summary = aggregate(per[["model", "split", "perturbation", *METRICS]])
    order = {m: i for i, m in enumerate(["mean", "ridge", "ps-lasso", "leap-ps-lasso"])}
    summary = summary.sort_values("model", key=lambda s: s.map(order).fillna(len(order)))
    secs = times.groupby("model")["seconds"].mean()
    n_splits = per.groupby("model")["split"].nunique()
    lines = [
        f"### {run.name}",
        "",
        f"{per['perturbation'].nunique()} perturbations; {_time_figures(run)}",
        "",
        "| model | splits | Spearman | Pearson | R² | MSE | precision@k | s / split |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, row in summary.iterrows():
        cells = [
            f"{_fmt(row[f'{m}_mean'], m)} ± {_fmt(row[f'{m}_sd'], m)}"
            if pd.notna(row[f"{m}_sd"])
            else _fmt(row[f"{m}_mean"], m)
            for m in METRICS
        ]
        model = row["model"]
        lines.append(
            f"| {model} | {n_splits[model]} | " + " | ".join(cells) + f" | {secs[model]:.0f} |"
        )
    paired = [_paired(per, "leap-ps-lasso", m) for m in ("ridge", "ps-lasso")]
    paired = [p for p in paired if p]
    if paired:
        lines += ["", "; ".join(paired)]
    return "\n".join(lines) + "\n"


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/eval")
    for run in sorted(p for p in root.iterdir() if (p / "cache").is_dir()):
        print(summarise(run))


if __name__ == "__main__":
    main()
