"""Empirical coverage of LEAP's conformal prediction intervals on held-out cell lines (issue 11).

Usage::

    nice -n 10 python benchmarks/intervals_coverage.py --data runs/data/gdsc2_ln_ic50 \
        --out runs/intervals/gdsc2_ln_ic50 --splits 3

On each unseen-cell-line split (``unseen_samples(random_state=0)``, 80/20, the splits of
``leapscreen evaluate`` and ``benchmarks/strategies.py``) it fits the ``ridge`` and ``leap-ridges``
presets on the training lines (their intervals are calibrated on the heads' out-of-fold residuals
of those lines only) and measures on the held-out lines, over every labelled (line, drug) pair:

* the coverage at 0.8 / 0.9 / 0.95 and the mean width of the intervals, absolute and (for the
  two-member ``leap-ridges``) normalised by the members' spread;
* the spread of the coverage over drugs (the 10th-90th percentiles of per-drug coverage);
* the optimism of the out-of-fold residuals: median |test residual| / median |OOF residual|
  (1 = the calibration residuals are as large as the real ones);
* the applicability domain of the held-out lines: mean percentile and the fraction flagged.

Each (split, model) result is a JSON file in ``--out`` (a rerun resumes); the summary table is
printed and written to ``<out>/summary.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

COVERAGES = (0.8, 0.9, 0.95)
MODELS = ("ridge", "leap-ridges")


def _one(data, split, name: str, n_genes: int) -> dict:
    from leapscreen.models import make_model

    train, test = data.subset(samples=split.train), data.subset(samples=split.test)
    model = make_model(name, n_genes=n_genes, random_state=0)
    t0 = time.perf_counter()
    model.fit(
        train.expression,
        train.responses,
        sources=list(train.samples["source"]),
        lineages=list(train.samples["lineage"]),
    )
    seconds = time.perf_counter() - t0
    Y = test.responses.to_numpy(np.float64)
    ok = ~np.isnan(Y)
    cal = model.calibration_
    out: dict = {"model": name, "fit_seconds": seconds, "n_pairs": int(ok.sum())}
    modes = [False, True] if cal.can_normalize else [False]
    for normalize in modes:
        for c in COVERAGES:
            pred, lo, up = model.predict_intervals(test.expression, c, normalize=normalize)
            inside = (Y >= lo.to_numpy()) & (Y <= up.to_numpy())
            width = (up - lo).to_numpy()
            per_drug = np.array(
                [inside[ok[:, j], j].mean() for j in range(Y.shape[1]) if ok[:, j].any()]
            )
            key = f"{'spread' if normalize else 'absolute'}@{c}"
            out[key] = {
                "coverage": float(inside[ok].mean()),
                "width": float(np.mean(width[ok & np.isfinite(width)])),
                "drug_p10": float(np.quantile(per_drug, 0.1)),
                "drug_p90": float(np.quantile(per_drug, 0.9)),
            }
    pred = model.predict(test.expression).to_numpy(np.float64)
    test_res = np.abs(Y - pred)[ok]
    oof_res = np.abs(cal.residuals[np.isfinite(cal.residuals)])
    out["optimism"] = float(np.median(test_res) / np.median(oof_res))
    domain = model.applicability(test.expression, lineages=list(test.samples["lineage"]))
    out["domain_mean_percentile"] = float(domain["domain_percentile"].mean())
    out["domain_flagged"] = float(domain["extrapolates"].mean())
    return out


def _summary(results: list[dict]) -> str:
    rows = []
    for name in MODELS:
        mine = [r for r in results if r["model"] == name]
        if not mine:
            continue
        for mode in ("absolute", "spread"):
            for c in COVERAGES:
                key = f"{mode}@{c}"
                if key not in mine[0]:
                    continue
                cov = [r[key]["coverage"] for r in mine]
                rows.append(
                    {
                        "model": name,
                        "intervals": mode,
                        "nominal": c,
                        "coverage (mean over splits)": f"{np.mean(cov):.3f}",
                        "range over splits": f"{min(cov):.3f}-{max(cov):.3f}",
                        "mean width": f"{np.mean([r[key]['width'] for r in mine]):.3f}",
                        "per-drug coverage p10-p90": f"{np.mean([r[key]['drug_p10'] for r in mine]):.2f}"
                        f"-{np.mean([r[key]['drug_p90'] for r in mine]):.2f}",
                    }
                )
    frame = pd.DataFrame(rows).astype(str)
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * frame.shape[1]]
    lines += ["| " + " | ".join(r) + " |" for r in frame.to_numpy().tolist()]
    table = "\n".join(lines)
    extra = []
    for name in MODELS:
        mine = [r for r in results if r["model"] == name]
        if mine:
            extra.append(
                f"- {name}: {len(mine)} split(s), {np.mean([r['n_pairs'] for r in mine]):.0f} "
                f"labelled test pairs per split, fit {np.mean([r['fit_seconds'] for r in mine]):.0f}"
                f" s; optimism (median |test residual| / median |OOF residual|) "
                f"{np.mean([r['optimism'] for r in mine]):.3f}; held-out lines: mean domain "
                f"percentile {np.mean([r['domain_mean_percentile'] for r in mine]):.2f}, flagged "
                f"{np.mean([r['domain_flagged'] for r in mine]):.1%}"
            )
    return table + "\n\n" + "\n".join(extra) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="runs/data/gdsc2_ln_ic50")
    parser.add_argument("--out", default="runs/intervals/gdsc2_ln_ic50")
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--min-labels", type=int, default=75)
    parser.add_argument("--n-genes", type=int, default=5000)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()

    from leapscreen.data.dataset import ScreenData
    from leapscreen.evaluate.splits import unseen_samples

    data = ScreenData.read_parquet(args.data).filter_perturbations(args.min_labels)
    splits = unseen_samples(data.sample_ids, n_repeats=args.splits, random_state=0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for k, split in enumerate(splits):
        for name in args.models.split(","):
            path = out / f"split{k}.{name}.json"
            if path.is_file():
                results.append(json.loads(path.read_text()))
                continue
            result = _one(data, split, name, args.n_genes) | {"split": k}
            path.write_text(json.dumps(result, indent=1))
            results.append(result)
            print(f"split {k} {name}: {json.dumps(result)}", flush=True)
    text = _summary(results)
    (out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
