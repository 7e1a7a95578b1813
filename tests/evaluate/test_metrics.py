"""Per-perturbation metrics against scipy / scikit-learn, and their aggregation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr, rankdata, spearmanr
from sklearn.metrics import mean_squared_error, r2_score

from leapscreen.evaluate import (
    aggregate,
    pearson_by_column,
    precision_at_k,
    score_perturbations,
    spearman_by_column,
    split_means,
)
from leapscreen.evaluate.metrics import rank_columns


def noisy_pair(n=60, p=40, seed=0):
    """Truth with a different NaN pattern per column, many ties, and correlated predictions."""
    rng = np.random.default_rng(seed)
    truth = np.round(rng.normal(size=(n, p)), 1)  # rounding creates ties
    pred = np.round(0.6 * truth + rng.normal(size=(n, p)), 1)
    truth[rng.random((n, p)) < rng.uniform(0, 0.7, size=p)] = np.nan
    truth[:, 0] = np.nan
    truth[:2, 0] = [0.1, 0.2]  # 2 labelled: too few
    truth[:, 1] = np.nan
    truth[:3, 1] = [0.1, 0.2, 0.3]  # exactly 3 labelled
    return truth, pred


def test_rank_columns_matches_scipy():
    truth, _ = noisy_pair(n=41, p=30, seed=4)
    truth[:, 2] = 1.5  # all tied
    truth[:, 3] = np.nan  # all missing
    expected = rankdata(truth, axis=0, nan_policy="omit")
    np.testing.assert_array_equal(rank_columns(truth), expected)


def test_against_scipy_and_sklearn():
    truth, pred = noisy_pair()
    table = score_perturbations(truth, pred, [f"g{j}" for j in range(truth.shape[1])], k=5)
    assert list(table.columns) == [
        "perturbation",
        "spearman",
        "pearson",
        "mse",
        "r2",
        "precision_at_k",
        "n_test",
    ]
    assert table["perturbation"].tolist() == [f"g{j}" for j in range(truth.shape[1])]
    for j in range(truth.shape[1]):
        ok = np.isfinite(truth[:, j])
        row = table.iloc[j]
        assert row["n_test"] == ok.sum()
        if ok.sum() < 3:
            assert row[["spearman", "pearson", "mse", "r2"]].isna().all()
            continue
        t, p = truth[ok, j], pred[ok, j]
        assert row["spearman"] == pytest.approx(spearmanr(t, p).statistic, abs=1e-12)
        assert row["pearson"] == pytest.approx(pearsonr(t, p).statistic, abs=1e-12)
        assert row["mse"] == pytest.approx(mean_squared_error(t, p), rel=1e-12)
        assert row["r2"] == pytest.approx(r2_score(t, p), rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(spearman_by_column(truth, pred), table["spearman"], equal_nan=True)
    np.testing.assert_allclose(pearson_by_column(truth, pred), table["pearson"], equal_nan=True)


def test_constant_prediction_scores_zero_and_constant_truth_nan():
    truth, pred = noisy_pair(seed=1)
    pred[:, 5] = 0.37  # constant prediction
    pred[:, 6] = 1e8 + np.arange(len(pred)) * 0.0  # constant, large offset
    truth[:, 7] = np.where(np.isfinite(truth[:, 7]), 2.0, np.nan)  # constant truth
    table = score_perturbations(truth, pred)
    for j in (5, 6):
        assert table.loc[j, "spearman"] == 0.0
        assert table.loc[j, "pearson"] == 0.0
    ok = np.isfinite(truth[:, 5])
    assert table.loc[5, "r2"] == pytest.approx(r2_score(truth[ok, 5], pred[ok, 5]))
    assert np.isnan(table.loc[7, ["spearman", "pearson", "r2"]].astype(float)).all()
    assert np.isfinite(table.loc[7, "mse"])


def test_missing_predictions_give_nan_not_a_subset():
    truth, pred = noisy_pair(seed=2)
    labelled = np.flatnonzero(np.isfinite(truth[:, 9]))
    pred[labelled[0], 9] = np.nan
    table = score_perturbations(truth, pred)
    assert table.loc[9, ["spearman", "pearson", "mse", "r2", "precision_at_k"]].isna().all()
    assert table.drop(index=[0, 9])["spearman"].notna().all()


def test_dataframes_are_aligned_by_label():
    truth, pred = noisy_pair(n=30, p=6, seed=3)
    rows, cols = [f"s{i}" for i in range(30)], [f"g{j}" for j in range(6)]
    t = pd.DataFrame(truth, index=rows, columns=cols)
    p = pd.DataFrame(pred, index=rows, columns=cols)
    shuffled = p.iloc[::-1, ::-1]
    a = score_perturbations(t, p)
    b = score_perturbations(t, shuffled)
    pd.testing.assert_frame_equal(a, b)
    assert a["perturbation"].tolist() == cols


def test_precision_at_k_hand_computed():
    y_true = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    y_pred = np.array([1.0, 5.0, 2.0, 6.0, 3.0, 4.0])
    # low: truly top-2 = {0, 1}; predicted top-2 = {0, 2} -> 1 of 2
    assert precision_at_k(y_true, y_pred, 2, sensitive="low") == pytest.approx(0.5)
    # high: truly top-2 = {5, 4}; predicted top-2 = {3, 1} -> 0 of 2
    assert precision_at_k(y_true, y_pred, 2, sensitive="high") == pytest.approx(0.0)
    # k=3 low: truth {0,1,2}; predicted {0,2,4} -> 2 of 3
    assert precision_at_k(y_true, y_pred, 3) == pytest.approx(2 / 3)
    assert precision_at_k(y_true, y_true, 3) == pytest.approx(1.0)
    # a constant prediction scores chance (k / n), by random tie-breaking in expectation
    assert precision_at_k(y_true, np.zeros(6), 2) == pytest.approx(2 / 6)
    # NaN truths are skipped: the sample at index 0 is not measured
    t = y_true.copy()
    t[0] = np.nan  # truly top-2 now {1, 2}; predicted among labelled {2, 4} -> 1 of 2
    assert precision_at_k(t, y_pred, 2) == pytest.approx(0.5)
    # too few labelled samples (n <= k)
    assert np.isnan(precision_at_k(y_true[:2], y_pred[:2], 2))


def test_precision_at_k_ties_in_truth_and_prediction():
    # truth ties at the k-th place: samples 1 and 2 both count as truly top-2
    y_true = np.array([0.0, 1.0, 1.0, 5.0, 6.0])
    assert precision_at_k(y_true, np.array([0.0, 1.0, 9.0, 8.0, 7.0]), 2) == pytest.approx(1.0)
    assert precision_at_k(y_true, np.array([0.0, 9.0, 1.0, 8.0, 7.0]), 2) == pytest.approx(1.0)
    assert precision_at_k(y_true, np.array([9.0, 0.0, 8.0, 1.0, 7.0]), 2) == pytest.approx(0.5)
    # prediction ties at the k-th place: {0} certain, then one of {1, 3} (half a slot each)
    y_pred = np.array([0.0, 1.0, 9.0, 1.0, 7.0])
    assert precision_at_k(y_true, y_pred, 2) == pytest.approx((1 + 0.5) / 2)
    # several columns at once, and sensitive="high" on the negated values
    Y = np.column_stack([y_true, -y_true, y_true])
    P = np.column_stack([y_pred, -y_pred, y_true])
    # column 1 (low end of -y): truly top-2 = {4, 3}; predicted top-2 = {2, 4} -> 1 of 2
    expected = np.array([0.75, 0.5, 1.0])
    np.testing.assert_allclose(precision_at_k(Y, P, 2), expected)
    np.testing.assert_allclose(precision_at_k(-Y, -P, 2, sensitive="high"), expected)


def test_vectorised_matches_loop_on_larger_sparse_matrix():
    rng = np.random.default_rng(5)
    truth = rng.normal(size=(300, 500))
    truth[rng.random(truth.shape) < 0.5] = np.nan
    pred = truth + rng.normal(size=truth.shape)
    pred = np.where(np.isnan(pred), rng.normal(size=truth.shape), pred)
    got = spearman_by_column(truth, pred)
    for j in rng.choice(500, size=25, replace=False):
        ok = np.isfinite(truth[:, j])
        assert got[j] == pytest.approx(spearmanr(truth[ok, j], pred[ok, j]).statistic, abs=1e-12)


def long_table():
    rows = [
        # model, split, perturbation, spearman, mse
        ("A", "s1", "p1", 0.2, 1.0),
        ("A", "s1", "p2", 0.4, 3.0),
        ("A", "s2", "p1", 0.5, 2.0),
        ("A", "s2", "p2", np.nan, np.nan),
        ("B", "s1", "p1", 0.1, 4.0),
        ("B", "s1", "p2", 0.1, 4.0),
        ("B", "s2", "p1", 0.3, 2.0),
        ("B", "s2", "p2", 0.3, 2.0),
    ]
    df = pd.DataFrame(rows, columns=["model", "split", "perturbation", "spearman", "mse"])
    df["n_test"] = 20
    df["split_n_train"] = np.where(df["split"] == "s1", 80, 81)  # added by the evaluation runner
    return df


def test_aggregate_mean_and_sd_over_splits():
    out = aggregate(long_table()).set_index("model")
    assert list(out.index) == ["A", "B"]
    # A: split means 0.3 and 0.5 -> mean 0.4, sd sqrt(0.02)
    assert out.loc["A", "spearman_mean"] == pytest.approx(0.4)
    assert out.loc["A", "spearman_sd"] == pytest.approx(np.sqrt(0.02))
    assert out.loc["A", "mse_mean"] == pytest.approx((2.0 + 2.0) / 2)
    assert out.loc["A", "mse_sd"] == pytest.approx(0.0)
    assert out.loc["B", "spearman_mean"] == pytest.approx(0.2)
    assert out.loc["B", "spearman_sd"] == pytest.approx(np.sqrt(0.02))
    assert out.loc["B", "mse_mean"] == pytest.approx(3.0)
    assert (out["n_splits"] == 2).all() and (out["n_perturbations"] == 2).all()
    assert "split_n_train_mean" not in out.columns and "n_test_mean" not in out.columns


def test_split_means_and_single_split_sd():
    df = long_table()
    means = split_means(df)
    a1 = means[(means["model"] == "A") & (means["split"] == "s1")].iloc[0]
    assert a1["spearman"] == pytest.approx(0.3) and a1["n_perturbations"] == 2
    a2 = means[(means["model"] == "A") & (means["split"] == "s2")].iloc[0]
    assert a2["n_perturbations"] == 1
    one = aggregate(df[df["split"] == "s1"])
    assert one["spearman_sd"].isna().all() and (one["n_splits"] == 1).all()
    by_task = aggregate(df.assign(task="t"), by=("task", "model"))
    assert list(by_task.columns[:2]) == ["task", "model"]


def test_paired_difference_against_a_baseline():
    from leapscreen.evaluate.metrics import paired_difference

    rows = []
    for split, (a, b) in enumerate([(0.5, 0.4), (0.6, 0.65), (0.7, 0.5)]):
        for pert, shift in (("p1", 0.0), ("p2", 0.1)):
            rows.append({"model": "m", "split": split, "perturbation": pert, "spearman": a + shift})
            rows.append(
                {"model": "base", "split": split, "perturbation": pert, "spearman": b + shift}
            )
    out = paired_difference(pd.DataFrame(rows), "base").set_index("model")
    diffs = np.array([0.1, -0.05, 0.2])
    assert out.loc["m", "spearman_minus_base_mean"] == pytest.approx(diffs.mean())
    assert out.loc["m", "spearman_minus_base_sd"] == pytest.approx(diffs.std(ddof=1))
    assert out.loc["m", "splits_ahead_of_base"] == 2
    assert out.loc["base", "spearman_minus_base_mean"] == 0
    assert paired_difference(pd.DataFrame(rows), "absent").empty
