"""Predictions of the presets on the demo split or one GDSC2 split, saved to compare two code trees.

Usage::

    PYTHONPATH=OLD/src python benchmarks/same_predictions.py old.npz --on demo
    python benchmarks/same_predictions.py new.npz --on demo
    python benchmarks/same_predictions.py --compare old.npz new.npz

``--on gdsc2 --data runs/data/gdsc2_ln_ic50`` (from ``prepare_real_data.py``) runs ridge, the single
representation and LEAP (latent 128, 5,000 genes, 5 seeds) on split 0 of the unseen-lines task.
It prints each preset's mean Spearman and fit time; ``--compare`` says, per preset, whether the
predictions are bit-identical and the largest difference.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

DEMO_MODELS = ["mean", "ridge", "ps-lasso", "leap-ps-lasso", "pca-ps-lasso", "leap-mixed"]


def run(out: str, on: str, data_dir: str) -> None:
    from leapscreen.cli.model import DEMO_PARAMS
    from leapscreen.data.dataset import ScreenData
    from leapscreen.datasets import gdsc_demo
    from leapscreen.evaluate.metrics import spearman_by_column
    from leapscreen.evaluate.splits import unseen_samples
    from leapscreen.models import make_model

    if on == "demo":
        data, params, models = gdsc_demo("LN_IC50"), DEMO_PARAMS | {"n_seeds": 5}, DEMO_MODELS
    else:
        data = ScreenData.read_parquet(data_dir)
        params = {"latent_dim": 128, "n_genes": 5000, "n_seeds": 5}
        models = ["ridge", "ps-lasso", "leap-ps-lasso"]
    split = unseen_samples(data.sample_ids, n_repeats=1, random_state=0)[0]
    train, test = data.expression.loc[split.train], data.expression.loc[split.test]
    truth = data.responses.loc[split.test].to_numpy(float)
    saved = {}
    for name in models:
        t0 = time.perf_counter()
        model = make_model(name, **params).fit(train, data.responses.loc[split.train])
        pred = model.predict(test).to_numpy()
        saved[name] = pred
        score = np.nanmean(spearman_by_column(truth, pred.astype(float)))
        print(f"{on} {name:16s} mean Spearman {score:.6f} ({time.perf_counter() - t0:.1f}s)")
    np.savez(out, **saved)


def compare(a: str, b: str) -> None:
    x, y = np.load(a), np.load(b)
    for name in x.files:
        if name not in y.files:
            print(f"{name:16s} missing in {b}")
            continue
        diff = np.nanmax(np.abs(x[name].astype(float) - y[name].astype(float)))
        same = np.array_equal(x[name], y[name], equal_nan=True)
        print(f"{name:16s} identical={same} max|diff|={diff:.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?")
    parser.add_argument("--on", choices=["demo", "gdsc2"], default="demo")
    parser.add_argument("--data", default="runs/data/gdsc2_ln_ic50")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"))
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare)
    elif args.out:
        run(args.out, args.on, args.data)
    else:
        parser.error("give an output file, or --compare A B")


if __name__ == "__main__":
    main()
