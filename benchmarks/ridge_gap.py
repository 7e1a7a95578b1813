"""Why ridge on genes beats LEAP on GDSC2 drug response: the rank of the latent.

Usage: ``python benchmarks/ridge_gap.py [--data runs/data/gdsc2_ln_ic50] [--splits 1]
[--latents 128,256] [--seeds 5]``

On the same random 80/20 split(s) by cell line (``numpy.random.default_rng(split)``), with the same
5,000 most variable genes (fitted on the training lines), it prints:

* the effective degrees of freedom ``sum s^2 / (s^2 + alpha)`` of the ridge model at the alpha each
  drug chose: how many expression directions ridge actually uses;
* ridge and PS-LASSO restricted to the top-k principal components (k = 64, 128, 256), LASSO on the
  raw PC scores and on z-scored ones: what truncating the expression to k directions costs;
* LEAP (DAMAE latents, PS-LASSO heads on raw and z-scored latents) as seeds are added: one
  ``LEAP`` object with two heads per seed, its members' predictions averaged over the first k seeds.

All scores are the mean over drugs of the test-set Spearman correlation.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

from leapscreen.data.dataset import ScreenData  # noqa: E402
from leapscreen.ensemble import LEAP  # noqa: E402
from leapscreen.evaluate.metrics import spearman_by_column  # noqa: E402
from leapscreen.heads import PSLassoHead, RidgeHead  # noqa: E402
from leapscreen.preprocess import Preprocessor  # noqa: E402
from leapscreen.represent import DAMAE  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="runs/data/gdsc2_ln_ic50")
    parser.add_argument("--splits", type=int, default=1)
    parser.add_argument("--latents", default="128,256")
    parser.add_argument("--pcs", default="64,128,256")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n-genes", type=int, default=5000)
    args = parser.parse_args()
    data = ScreenData.read_parquet(args.data)
    n = data.n_samples
    rows: dict[str, list[float]] = {}

    def record(name: str, pred: np.ndarray, truth: np.ndarray) -> None:
        score = float(np.nanmean(spearman_by_column(truth, pred)))
        rows.setdefault(name, []).append(score)
        print(f"  {name:38s} {score:.4f}", flush=True)

    for split in range(args.splits):
        perm = np.random.default_rng(split).permutation(n)
        train, test = perm[: int(0.8 * n)], perm[int(0.8 * n) :]
        Y = data.responses.iloc[train].to_numpy(float)
        Yt = data.responses.iloc[test].to_numpy(float)
        pre = Preprocessor(n_genes=args.n_genes).fit(data.expression.iloc[train])
        X = pre.transform(data.expression.iloc[train]).astype(float)
        Xt = pre.transform(data.expression.iloc[test]).astype(float)
        print(f"split {split}: {X.shape[0]} training lines, {Xt.shape[0]} test lines")

        t0 = time.perf_counter()
        ridge = RidgeHead(standardize=False, cv="loo").fit(X, Y)
        record("ridge on genes", ridge.predict(Xt), Yt)
        mu = X.mean(axis=0)
        _, s, Vt = np.linalg.svd(X - mu, full_matrices=False)
        df = np.array([np.sum(s**2 / (s**2 + a)) for a in ridge.alpha_[~ridge.fallback_]])
        q10, q50, q90 = np.percentile(df, [10, 50, 90])
        print(
            f"  ridge effective dof at the chosen alpha: median {q50:.0f} (10-90%: {q10:.0f}-{q90:.0f})"
            f" of {len(s)} directions [{time.perf_counter() - t0:.0f}s]"
        )
        rows.setdefault("ridge dof (median)", []).append(float(q50))

        for k in [int(v) for v in args.pcs.split(",") if v]:
            Z, Zt = (X - mu) @ Vt[:k].T, (Xt - mu) @ Vt[:k].T
            record(
                f"ridge on top-{k} PCs",
                RidgeHead(standardize=False, cv="loo").fit(Z, Y).predict(Zt),
                Yt,
            )
            record(
                f"PS-LASSO on top-{k} PCs (raw)",
                PSLassoHead(standardize=False).fit(Z, Y).predict(Zt),
                Yt,
            )
            record(f"PS-LASSO on top-{k} PCs (z-scored)", PSLassoHead().fit(Z, Y).predict(Zt), Yt)

        for latent in [int(v) for v in args.latents.split(",") if v]:
            t0 = time.perf_counter()
            # one LEAP with two heads per DAMAE seed: members are (seed 0, raw), (seed 0, z), ...
            leap = LEAP(
                representation=DAMAE(latent_dim=latent),
                head=[PSLassoHead(standardize=False), PSLassoHead()],
                n_seeds=args.seeds,
                n_genes=args.n_genes,
            ).fit(data.expression.iloc[train], data.responses.iloc[train])
            members = leap.predict_members(data.expression.iloc[test])
            for h, scaling in enumerate(["raw", "z-scored"]):
                for k in sorted(v for v in {1, 2, args.seeds} if v <= args.seeds):
                    record(
                        f"DAMAE-{latent} x {k} seeds, PS-LASSO ({scaling})",
                        members[h : 2 * k : 2].mean(axis=0),
                        Yt,
                    )
            print(f"  [{time.perf_counter() - t0:.0f}s for latent {latent}]")

    print(f"\nmean over {args.splits} split(s), mean Spearman over drugs\n")
    print("| model | score |\n|---|---|")
    for name, values in rows.items():
        print(f"| {name} | {np.mean(values):.4f} |")


if __name__ == "__main__":
    main()
