"""Every modelling strategy, with and without the layered ensemble, and their combinations (issue 10).

Usage::

    python benchmarks/strategies.py fit --data runs/data/gdsc2_ln_ic50 --out runs/strategies/gdsc2_ln_ic50 \
        --splits 10 --min-labels 75 --blocks genes,damae,lineage
    python benchmarks/strategies.py report --out runs/strategies/gdsc2_ln_ic50 --sensitive low

``fit`` fits, on each unseen-cell-line split (``unseen_samples(random_state=0)``, 80/20, the same
splits as ``leapscreen evaluate``), one LEAP per *block* with several heads, so a representation
seed is trained once and serves every head:

* ``genes``: the 5,000 most variable training genes, z-scored, with ridge (exact leave-one-out, the
  ``ridge`` preset), ridge with 5-fold CV (its 5 fold models averaged), reduced-rank ridge and
  PS-KNN (``--stacked`` adds the stacked head);
* ``damae``: 5 DAMAE seeds (latent 128) x {PS-LASSO, reduced-rank ridge, PS-KNN};
* ``mlp``: the same 5 DAMAE seeds x PS-MLP;
* ``lgbm``: 1 DAMAE seed x PS-LightGBM (fast grid);
* ``pan``: 1 DAMAE seed x pan-MLP (learned drug embedding);
* ``lineage``: the lineage x perturbation mean.

For every member it stores the test predictions, the heads' out-of-fold predictions of the training
rows and the fit time (``<out>/split<k>.<block>.npz``; a rerun resumes). ``report`` then scores
each head alone (one seed: the single-representation model), each head under LEAP (the mean over its
5 seeds) and combinations of strategies, combined exactly as ``LEAP(combine=...)`` does: the plain
mean, or weights chosen by :func:`leapscreen.combine.greedy_weights` on the out-of-fold predictions
of the training rows (never the test rows). Scores are those of ``leapscreen evaluate``
(:func:`leapscreen.evaluate.metrics.score_perturbations`): per perturbation on the test lines, then
the mean over perturbations per split; tables give mean ± sd over splits and the paired difference
against ridge split by split.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HEADS_DAMAE = ["ps-lasso", "rr-ridge", "ps-knn"]
#: names of the heads of a block, by position (two ridge heads differ by their CV)
LABELS = {
    "genes": ["ridge", "ridge-5fold", "rr-ridge", "ps-knn", "stacked"],
    # the normal-scores heads (responses replaced by their normal scores, mapped back)
    "ridges": ["ridge", "rr-ridge", "ridge-ns", "rr-ridge-ns"],
    "rbf": ["krr", "krr-ns"],
}


def _blocks(latent: int, n_genes: int, seeds: int, stacked: bool = False) -> dict:
    from leapscreen.baselines import LineageMean
    from leapscreen.ensemble import LEAP
    from leapscreen.heads import (
        NormalScoresHead,
        PSKNNHead,
        ReducedRankRidgeHead,
        RidgeHead,
        StackedHead,
    )

    ridge = RidgeHead(cv="loo", standardize=False)  # the ``ridge`` preset's head
    common = {"latent_dim": latent, "n_genes": n_genes}
    return {
        "genes": lambda: LEAP(
            representation="genes",
            head=[
                ridge,
                RidgeHead(cv=5, standardize=False),  # the 5 fold models averaged
                ReducedRankRidgeHead(cv="loo", standardize=False),
                PSKNNHead(),
                *([StackedHead(base=ridge)] if stacked else []),
            ],
            n_seeds=1,
            **common,
        ),
        # the gene strategies of the leap-kernel preset, and ridge (the baseline) beside them
        "ridges": lambda: LEAP(
            representation="genes",
            head=[
                ridge,
                ReducedRankRidgeHead(cv="loo", standardize=False),
                NormalScoresHead(ridge),
                NormalScoresHead(ReducedRankRidgeHead(cv="loo", standardize=False)),
            ],
            n_seeds=1,
            **common,
        ),
        # kernel ridge (RBF) on the genes, on the responses and on their normal scores
        "rbf": lambda: LEAP(
            representation="rbf", head=[ridge, NormalScoresHead(ridge)], n_seeds=1, **common
        ),
        "damae": lambda: LEAP(representation="damae", head=HEADS_DAMAE, n_seeds=seeds, **common),
        # the same DAMAE seeds as "damae" (a representation is deterministic for its seed)
        "mlp": lambda: LEAP(representation="damae", head="ps-mlp", n_seeds=seeds, **common),
        "lgbm": lambda: LEAP(representation="damae", head="ps-lightgbm", n_seeds=1, **common),
        "pan": lambda: LEAP(representation="damae", head="pan-mlp", n_seeds=1, **common),
        "lineage": LineageMean,
    }


def _or(value, default):
    return default if value is None else value


def _ids_hash(ids) -> str:
    return hashlib.sha256("\x1f".join(map(str, ids)).encode()).hexdigest()[:16]


def fit(args: argparse.Namespace) -> None:
    from leapscreen.data.dataset import ScreenData
    from leapscreen.evaluate.splits import unseen_samples

    data = ScreenData.read_parquet(args.data).filter_perturbations(args.min_labels)
    splits = unseen_samples(data.sample_ids, n_repeats=args.splits, random_state=0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "dataset.json").write_text(
        json.dumps({"data": str(args.data), "min_labels": args.min_labels, "splits": args.splits})
    )
    blocks = _blocks(args.latent, args.n_genes, args.seeds, args.stacked)
    chosen = args.blocks.split(",")
    split_ids = [int(s) for s in args.only.split(",")] if args.only else range(len(splits))
    for k in split_ids:
        split = splits[k]
        train, test = data.subset(samples=split.train), data.subset(samples=split.test)
        for block in chosen:
            path = out / f"split{k}.{block}.npz"
            key = _ids_hash([*split.train, "|", *split.test, "|", *data.perturbation_ids])
            if path.is_file() and str(np.load(path)["key"]) == key:
                continue
            t0 = time.perf_counter()
            model = blocks[block]()
            if block == "lineage":
                model.fit(train.expression, train.responses, samples=train.samples)
                pred = model.predict(test.expression, samples=test.samples).to_numpy()[None]
                oof = np.full((1, train.n_samples, train.n_perturbations), np.nan)
                names, seeds, seconds = ["lineage + lineage-mean"], [0], [0.0]
            else:
                model.fit(train.expression, train.responses, sources=list(train.samples["source"]))
                pred = model.predict_members(test.expression)
                missing = np.full((train.n_samples, train.n_perturbations), np.nan)
                oof = np.stack(
                    [
                        np.asarray(
                            _or(m.head.out_of_fold_predictions(), missing), dtype=np.float32
                        ).reshape(train.n_samples, -1)
                        for m in model.members_
                    ]
                )
                labels = LABELS.get(block, [])
                names = [
                    f"{m.kind} + {labels[m.group] if m.group < len(labels) else m.head_kind}"
                    for m in model.members_
                ]
                seeds = [m.seed for m in model.members_]
                seconds = [m.fit_seconds for m in model.members_]
            total = time.perf_counter() - t0
            np.savez_compressed(
                path,
                key=key,
                pred=pred.astype(np.float32),
                oof=oof.astype(np.float32),
                names=np.array(names),
                seeds=np.array(seeds),
                seconds=np.array(seconds),
                total_seconds=total,
                train=np.array(train.sample_ids, dtype=str),
                test=np.array(test.sample_ids, dtype=str),
            )
            print(f"split {k} {block}: {total:.0f}s ({len(names)} members)", flush=True)


# ------------------------------------------------------------------------------------------- report


def _load(out: Path, data, k: int):
    """Members of every block of split k: names, seeds, test predictions, OOF, seconds."""
    parts = sorted(out.glob(f"split{k}.*.npz"))
    rec = {"names": [], "seeds": [], "pred": [], "oof": [], "seconds": [], "block_seconds": {}}
    test = train = None
    for path in parts:
        z = np.load(path)
        block = path.name.split(".")[1]
        rec["names"] += [f"{block}:{n}" for n in z["names"]]
        rec["seeds"] += list(z["seeds"])
        rec["pred"] += list(z["pred"])
        rec["oof"] += list(z["oof"])
        rec["seconds"] += list(z["seconds"])
        rec["block_seconds"][block] = float(z["total_seconds"])
        test, train = list(z["test"]), list(z["train"])
    return rec, train, test


def _models(rec) -> dict[str, list[int]]:
    """Model name -> member indices: each strategy alone (first seed) and under LEAP (all seeds)."""
    out: dict[str, list[int]] = {}
    by_name: dict[str, list[int]] = {}
    for i, name in enumerate(rec["names"]):
        by_name.setdefault(name, []).append(i)
    for name, idx in by_name.items():
        short = name.split(":", 1)[1].replace(" + ", "/")
        if len(idx) > 1:
            out[f"{short} x1"] = idx[:1]
            out[f"{short} x{len(idx)}"] = idx
        else:
            out[short] = idx
    return out


COMBOS = {
    # name: (strategies (model names of _models), rule)
    "genes: ridge + rr-ridge": (["genes/ridge", "genes/rr-ridge"], "mean"),
    "genes: ridge-5fold + rr-ridge": (["genes/ridge-5fold", "genes/rr-ridge"], "mean"),
    "genes: ridge + ridge-5fold + rr-ridge": (
        ["genes/ridge", "genes/ridge-5fold", "genes/rr-ridge"],
        "mean",
    ),
    "genes: ridge + ridge-5fold + rr-ridge, cv-global": (
        ["genes/ridge", "genes/ridge-5fold", "genes/rr-ridge"],
        "cv-global",
    ),
    "genes: ridge + ridge-5fold + rr-ridge + LEAP rr-ridge": (
        ["genes/ridge", "genes/ridge-5fold", "genes/rr-ridge", "damae/rr-ridge x5"],
        "mean",
    ),
    "genes: ridge + ridge-5fold + rr-ridge + LEAP rr-ridge + LEAP ps-lasso, cv-global": (
        [
            "genes/ridge",
            "genes/ridge-5fold",
            "genes/rr-ridge",
            "damae/rr-ridge x5",
            "damae/ps-lasso x5",
        ],
        "cv-global",
    ),
    # the leap-kernel preset: reduced-rank ridge on the genes + kernel ridge on normal scores
    "leap-kernel: rr-ridge + krr-ns": (["genes/rr-ridge", "rbf/krr-ns"], "mean"),
    "ridge + krr-ns": (["genes/ridge", "rbf/krr-ns"], "mean"),
    "rr-ridge + krr": (["genes/rr-ridge", "rbf/krr"], "mean"),
    "rr-ridge, rr-ridge-ns, krr, krr-ns": (
        ["genes/rr-ridge", "genes/rr-ridge-ns", "rbf/krr", "rbf/krr-ns"],
        "mean",
    ),
    "rr-ridge + rr-ridge-ns": (["genes/rr-ridge", "genes/rr-ridge-ns"], "mean"),
    "rr-ridge-ns + krr-ns": (["genes/rr-ridge-ns", "rbf/krr-ns"], "mean"),
    "rr-ridge + rr-ridge-ns + krr-ns": (
        ["genes/rr-ridge", "genes/rr-ridge-ns", "rbf/krr-ns"],
        "mean",
    ),
    "ridge + LEAP ps-lasso": (["genes/ridge", "damae/ps-lasso x5"], "mean"),
    "ridge + LEAP rr-ridge": (["genes/ridge", "damae/rr-ridge x5"], "mean"),
    "ridge + rr-ridge + LEAP ps-lasso + LEAP rr-ridge": (
        ["genes/ridge", "genes/rr-ridge", "damae/ps-lasso x5", "damae/rr-ridge x5"],
        "mean",
    ),
}


def _combined(rec, groups: list[list[int]], rule: str, Y: np.ndarray) -> np.ndarray:
    from leapscreen.combine import greedy_weights

    preds = np.stack([np.mean([rec["pred"][i] for i in g], axis=0) for g in groups])
    if rule == "mean":
        sizes = np.array([len(g) for g in groups], float)
        # LEAP's plain mean counts members, not strategies
        return np.einsum("g,gnp->np", sizes / sizes.sum(), preds)
    oof = np.stack([np.mean([rec["oof"][i] for i in g], axis=0) for g in groups])
    w = greedy_weights(oof, Y, per_perturbation=rule == "cv")
    return np.einsum("gp,gnp->np", w, preds)


def report(args: argparse.Namespace) -> None:
    from leapscreen.data.dataset import ScreenData
    from leapscreen.evaluate.metrics import score_perturbations

    out = Path(args.out)
    meta = json.loads((out / "dataset.json").read_text())
    data = ScreenData.read_parquet(meta["data"]).filter_perturbations(meta["min_labels"])
    rows = []
    secs: dict[str, list[float]] = {}
    k = 0
    while list(out.glob(f"split{k}.*.npz")):
        rec, train, test = _load(out, data, k)
        truth = data.responses.loc[test].to_numpy(np.float64)
        Y = data.responses.loc[train].to_numpy(np.float64)
        models = _models(rec)
        preds = {n: np.mean([rec["pred"][i] for i in idx], axis=0) for n, idx in models.items()}
        for n, idx in models.items():
            secs.setdefault(n, []).append(float(np.sum([rec["seconds"][i] for i in idx])))
        combos = dict(COMBOS)
        everything = [n for n in models if not n.endswith(" x1") and "lineage" not in n]
        usable = [n for n in everything if not np.isnan(rec["oof"][models[n][0]]).all()]
        combos["all strategies, mean"] = (everything, "mean")
        combos["all strategies, cv weights"] = (usable, "cv")
        combos["all strategies, cv-global weights"] = (usable, "cv-global")
        for name, (parts, rule) in combos.items():
            if all(p in models for p in parts):
                preds[name] = _combined(rec, [models[p] for p in parts], rule, Y)
                secs.setdefault(name, []).append(
                    float(sum(np.sum([rec["seconds"][i] for i in models[p]]) for p in parts))
                )
        for name, pred in preds.items():
            s = score_perturbations(
                truth, pred, list(data.perturbation_ids), k=10, sensitive=args.sensitive
            )
            rows.append(
                {
                    "model": name,
                    "split": k,
                    "spearman": float(np.nanmean(s["spearman"])),
                    "per_pert": np.asarray(s["spearman"], float),
                }
            )
        k += 1
    table = pd.DataFrame(rows)
    wide = table.pivot(index="split", columns="model", values="spearman")
    # ridge on genes, from whichever block fitted it
    ridge = wide["genes/ridge" if "genes/ridge" in wide else "genes/ridge"]
    lineage = wide.get("lineage/lineage-mean")
    lines = [
        f"{meta['data']}: {len(wide)} splits, {data.n_perturbations} perturbations",
        "",
        "| model | splits | Spearman (mean ± sd) | − ridge (mean) | splits ahead of ridge | "
        "− lineage mean | s / split |",
        "|---|---|---|---|---|---|---|",
    ]
    # a model run on fewer splits (a block fitted on some splits only) is compared on its splits
    order = wide.sub(ridge, axis=0).mean().sort_values(ascending=False).index
    for name in order:
        d = wide[name] - ridge
        ran = int(d.notna().sum())
        rel = "" if lineage is None else f"{(wide[name] - lineage).mean():+.3f}"
        lines.append(
            f"| {name} | {ran} | {wide[name].mean():.4f} ± {wide[name].std(ddof=1):.4f} | "
            f"{d.mean():+.4f} | {int((d > 0).sum())}/{ran} | {rel} | {np.mean(secs[name]):.0f} |"
        )
    # LEAP against its single model: share of (split, perturbation) pairs
    per = table.set_index(["model", "split"])["per_pert"]
    lines += [
        "",
        "| head | LEAP - single (mean) | perturbations where LEAP beats its single model |",
        "|---|---|---|",
    ]
    for name in wide.columns:
        base, _, n = name.rpartition(" x")
        if n.isdigit() and int(n) > 1 and f"{base} x1" in wide:
            single = f"{base} x1"
            both = wide.index[wide[name].notna() & wide[single].notna()]
            a = np.concatenate([per[(name, s)] for s in both])
            b = np.concatenate([per[(single, s)] for s in both])
            ok = ~np.isnan(a) & ~np.isnan(b)
            lines.append(
                f"| {base} (x{n} vs x1) | {(wide[name] - wide[single]).mean():+.4f} | "
                f"{100 * (a[ok] > b[ok]).mean():.0f}% |"
            )
    text = "\n".join(lines)
    print(text)
    (out / "report.md").write_text(text + "\n")
    wide.to_csv(out / "per_split.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fit")
    f.add_argument("--data", required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--splits", type=int, default=10)
    f.add_argument("--only", default="", help="comma-separated split indices (default: all)")
    f.add_argument("--min-labels", type=int, default=75)
    f.add_argument("--latent", type=int, default=128)
    f.add_argument("--n-genes", type=int, default=5000)
    f.add_argument("--seeds", type=int, default=5)
    f.add_argument("--blocks", default="genes,damae,lineage")
    f.add_argument("--stacked", action="store_true", help="add the stacked head to the genes block")
    r = sub.add_parser("report")
    r.add_argument("--out", required=True)
    r.add_argument("--sensitive", default="low")
    args = parser.parse_args()
    fit(args) if args.command == "fit" else report(args)


if __name__ == "__main__":
    main()
