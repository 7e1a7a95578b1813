"""Pan-perturbation models on real data: predict genes that were never screened (issue 10, §3).

Usage::

    python benchmarks/pan_unscreened.py --data runs/data/crispr22q1_classes \
        --gene-sets ../shared/data/gene_sets/msigdb_c2_cgp_prep4deepdep.gmt --genes 300

DepMap 22Q1 CRISPR dependency classes (``prepare_real_data.py``). Of the genes with a C2 CGP
descriptor (PCA 256 of their gene-set membership), ``--genes`` are drawn; a fifth of them are held
out of training entirely (never screened, for the model), and the lines are split 80/20. A pan head
on PCA of the expression is fitted on the training lines x training genes; it then predicts the
test lines for (a) the training genes (``predict``) and (b) the held-out genes from their
descriptors only (``LEAP.predict_unscreened``). Controls: the same held-out genes predicted with
their descriptor rows shuffled among them, and ridge on genes for the seen genes. Scores: mean
per-gene Spearman across the test lines.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    from leapscreen.data.dataset import ScreenData
    from leapscreen.data.genesets import read_gene_sets
    from leapscreen.ensemble import LEAP
    from leapscreen.evaluate.metrics import spearman_by_column
    from leapscreen.evaluate.splits import unseen_samples
    from leapscreen.heads.pan import PanMLPHead, gene_set_descriptors
    from leapscreen.models import make_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--gene-sets", required=True)
    parser.add_argument("--genes", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = ScreenData.read_parquet(args.data).filter_perturbations(50)
    t0 = time.perf_counter()
    desc = gene_set_descriptors(read_gene_sets(args.gene_sets), genes=list(data.perturbation_ids))
    print(f"descriptors: {desc.shape[0]} genes x {desc.shape[1]} ({time.perf_counter() - t0:.0f}s)")
    rng = np.random.default_rng(args.seed)
    genes = rng.choice(np.asarray(desc.index), size=min(args.genes, len(desc)), replace=False)
    unseen = genes[: len(genes) // 5]
    seen = genes[len(genes) // 5 :]
    split = unseen_samples(data.sample_ids, n_repeats=1, random_state=args.seed)[0]
    X_tr, X_te = data.expression.loc[split.train], data.expression.loc[split.test]
    Y_tr = data.responses.loc[split.train, list(seen)]
    truth_seen = data.responses.loc[split.test, list(seen)].to_numpy(float)
    truth_unseen = data.responses.loc[split.test, list(unseen)].to_numpy(float)

    t0 = time.perf_counter()
    leap = LEAP(
        representation="pca",
        latent_dim=64,
        n_genes=5000,
        n_seeds=1,
        head=PanMLPHead(descriptors=desc.loc[list(genes)]),
    ).fit(X_tr, Y_tr)
    fit_s = time.perf_counter() - t0
    pan_seen = leap.predict(X_te).to_numpy(float)
    pan_unseen = leap.predict_unscreened(X_te, desc.loc[list(unseen)]).to_numpy(float)
    shuffled = desc.loc[list(unseen)].copy()
    shuffled[:] = shuffled.to_numpy()[rng.permutation(len(shuffled))]
    control = leap.predict_unscreened(X_te, shuffled).to_numpy(float)
    ridge = make_model("ridge", n_genes=5000).fit(X_tr, Y_tr).predict(X_te).to_numpy(float)

    def score(truth, pred) -> str:
        return f"{np.nanmean(spearman_by_column(truth, pred)):.3f}"

    print(f"pan-mlp fit: {fit_s:.0f}s on {len(split.train)} lines x {len(seen)} genes")
    print(
        f"seen genes ({len(seen)}):   pan-mlp {score(truth_seen, pan_seen)}, "
        f"ridge {score(truth_seen, ridge)}"
    )
    print(
        f"unseen genes ({len(unseen)}): pan-mlp {score(truth_unseen, pan_unseen)}, "
        f"shuffled descriptors {score(truth_unseen, control)}"
    )


if __name__ == "__main__":
    main()
