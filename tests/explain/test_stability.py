"""Stability selection, its calibrated score and bound, distillation and gene-set enrichment."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binom, false_discovery_control, fisher_exact

from leapscreen.explain.distill import distill
from leapscreen.explain.pathways import enrichment, pathway_scores
from leapscreen.explain.stability import mb_bound, stability_score, stability_selection


def planted(n=200, F=120, P=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, F))
    B = np.zeros((F, P))
    truth = []
    for j in range(P):
        idx = rng.choice(F, k, replace=False)
        B[idx, j] = rng.choice([-1, 1], k) * rng.uniform(0.8, 1.2, k)
        truth.append(set(idx))
    Y = X @ B + 0.5 * rng.standard_normal((n, P))
    return X, Y, truth


def test_score_is_the_published_formula_on_a_hand_made_count_vector():
    K, t = 20, np.array([0.7])
    counts = np.array([20, 19, 15, 10, 3, 0, 0, 1, 2, 0])
    N, q = counts.size, counts.sum() / K
    p = q / N
    hi, lo = np.ceil(K * 0.7), np.floor(K * 0.3)
    p_sel, p_exc = binom.sf(hi - 1, K, p), binom.cdf(lo, K, p)
    n_sel, n_exc = (counts >= hi).sum(), (counts <= lo).sum()
    n_uns = N - n_sel - n_exc
    expected = -(n_sel * np.log(p_sel) + n_exc * np.log(p_exc) + n_uns * np.log(1 - p_sel - p_exc))
    np.testing.assert_allclose(stability_score(counts, K, t)[0, 0], expected, rtol=1e-8)
    np.testing.assert_allclose(mb_bound(np.array([4.0]), 100, t), [[16 / (0.4 * 100)]])


def test_planted_drivers_recovered_the_bound_holds_and_the_seed_fixes_the_result():
    X, Y, truth = planted()
    Y[:30, 1] = np.nan  # NaN-aware: that perturbation uses its 170 labelled rows
    res = stability_selection(X, Y, n_subsamples=50, random_state=0)
    tp = fp = fn = 0
    bound = 0.0
    for r, t in zip(res, truth, strict=True):
        sel = set(np.flatnonzero(r.selected))
        tp, fp, fn = tp + len(sel & t), fp + len(sel - t), fn + len(t - sel)
        bound += r.pfer_bound
        assert r.proportions.shape == (len(r.penalties), X.shape[1])
        assert np.all(np.diff(r.penalties) < 0)
    assert tp / max(tp + fp, 1) >= 0.8 and tp / (tp + fn) >= 0.8, (tp, fp, fn)
    assert fp <= max(bound, 1.0)
    assert res[1].n_samples == 170
    again = stability_selection(X, Y, n_subsamples=50, random_state=0)
    for a, b in zip(res, again, strict=True):
        np.testing.assert_array_equal(a.proportions, b.proportions)
    table = res[0].table([f"g{i}" for i in range(X.shape[1])])
    assert list(table.columns[:5]) == ["feature", "proportion", "sign", "mean_coef", "selected"]
    assert table["proportion"].is_monotonic_decreasing


def test_distilling_a_linear_teacher_is_faithful_and_finds_its_features():
    X, Y, truth = planted(n=240, P=2, seed=3)
    teacher = X @ np.linalg.lstsq(X, Y, rcond=None)[0]
    names = [f"g{i}" for i in range(X.shape[1])]
    d = distill(X, teacher, features=names, perturbations=["a", "b"], n_subsamples=40)
    assert np.all(d.fidelity > 0.9), d.fidelity
    for j, t in enumerate(truth):
        assert t <= set(np.flatnonzero(d.stability[j].selected))
    push = d.contributions(X[0], 0)
    assert push.shape == (X.shape[1],) and np.count_nonzero(push) <= d.stability[0].selected.sum()


def test_enrichment_is_the_one_sided_fisher_test_with_bh_q_values():
    universe = [f"g{i}" for i in range(200)]
    sets = {
        "hit": universe[:20],
        "some": universe[15:45],
        "none": universe[100:130],
        "tiny": universe[:3],
    }
    selected = universe[:8] + universe[150:152]
    table = enrichment(selected, universe, sets).set_index("pathway")
    assert "tiny" not in table.index  # below min_size
    for name in ("hit", "some", "none"):
        genes = set(sets[name])
        k = len(genes & set(selected))
        grid = [[k, 10 - k], [len(genes) - k, 200 - len(genes) - 10 + k]]
        assert table.loc[name, "overlap"] == k
        np.testing.assert_allclose(
            table.loc[name, "p"], fisher_exact(grid, alternative="greater")[1], rtol=1e-8
        )
    np.testing.assert_allclose(
        table["q"].sort_index(),
        pd.Series(false_discovery_control(table["p"]), table.index).sort_index(),
    )
    Xz = pd.DataFrame(np.random.default_rng(0).standard_normal((30, 200)), columns=universe)
    scores = pathway_scores(Xz, sets, method="mean")
    np.testing.assert_allclose(scores["hit"], Xz[sets["hit"]].mean(axis=1))
