"""The CV engine every head shares: the one tie rule and the one fallback rule."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from leapscreen.heads import PSLassoHead, RidgeHead
from leapscreen.heads._cv import TIE, RunningBest, choose_alpha, fallback_columns, label_groups


def brute_force_choice(scores, alphas, prefer):
    """The rule as documented: the preferred alpha among those within the tie of the best."""
    out = []
    for j in range(scores.shape[1]):
        top = scores[:, j].max()
        near = [i for i in range(len(alphas)) if scores[i, j] >= top - TIE * max(1.0, abs(top))]
        key = (lambda i: alphas[i]) if prefer == "larger" else (lambda i: -alphas[i])
        out.append(max(near, key=lambda i: (key(i), i)))
    return np.array(out)


def tied_scores(rng, n_alphas, p, scale):
    """Scores with exact ties, near-ties inside and just outside the tolerance."""
    base = rng.choice([-0.3, 0.1, 0.5], size=(n_alphas, p)) * scale
    wiggle = rng.choice([0.0, 0.4, 0.9, 3.0], size=(n_alphas, p)) * TIE * max(1.0, scale)
    return base - wiggle


@pytest.mark.parametrize("scale", [1.0, 250.0])  # Spearman-like and MSE-like magnitudes
@pytest.mark.parametrize("prefer", ["smaller", "larger"])
def test_choose_alpha_is_the_preferred_alpha_among_the_near_best(prefer, scale):
    rng = np.random.default_rng(0)
    alphas = rng.permutation(np.logspace(-2, 3, 9))  # any order
    for _ in range(20):
        scores = tied_scores(rng, alphas.size, 30, scale)
        np.testing.assert_array_equal(
            choose_alpha(scores, alphas, prefer), brute_force_choice(scores, alphas, prefer)
        )


def test_the_two_directions_differ_exactly_on_ties():
    alphas = np.array([0.1, 1.0, 10.0])
    scores = np.array([[0.5, 0.2], [0.5, 0.6], [0.5 - 0.5 * TIE, 0.1]])
    assert choose_alpha(scores, alphas, "larger").tolist() == [2, 1]
    assert choose_alpha(scores, alphas, "smaller").tolist() == [0, 1]
    with pytest.raises(ValueError, match="prefer"):
        choose_alpha(scores, alphas, "middle")


def test_running_best_along_a_decreasing_path_equals_choose_alpha():
    # PS-LASSO walks its path from the largest alpha down, choosing as it goes
    rng = np.random.default_rng(1)
    alphas = np.logspace(0, -3, 10)  # decreasing, as the path
    scores = tied_scores(rng, alphas.size, 40, 1.0)
    best = RunningBest(40)
    for i in range(alphas.size):
        best.update(i, scores[i])
    np.testing.assert_array_equal(best.index, choose_alpha(scores, alphas, "smaller"))


def test_ridge_keeps_its_previous_tie_rule():
    # the rule ridge used before the CV engine was shared: ties go to the larger (later) alpha
    def previous(mean_score):
        top = mean_score.max(axis=0)
        tied = mean_score >= top - 1e-12 * np.maximum(1.0, np.abs(top))
        return mean_score.shape[0] - 1 - np.argmax(tied[::-1], axis=0)

    rng = np.random.default_rng(2)
    grid = np.logspace(-1, 5, 13)
    for scale in (1.0, 40.0):
        scores = tied_scores(rng, grid.size, 50, scale)
        np.testing.assert_array_equal(choose_alpha(scores, grid, "larger"), previous(scores))


def test_one_fallback_rule_for_every_head(caplog):
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((60, 5))
    Y = Z @ rng.standard_normal((5, 4)) + rng.standard_normal((60, 4))
    Y[9:, 1] = np.nan  # 9 labels < 2 * 5 folds
    Y[:, 2] = 3.0
    Y[::2, 2] += 1e-14  # constant up to rounding
    labelled = ~np.isnan(Y)
    with caplog.at_level(logging.WARNING):
        fallback, y_mean, n_lab = fallback_columns(Y, labelled, 10, logging.getLogger("x"))
    assert fallback.tolist() == [False, True, True, False]
    assert "fewer than 10 labelled rows" in caplog.text and "constant" in caplog.text
    np.testing.assert_allclose(y_mean, np.nanmean(Y, axis=0), rtol=1e-15)
    assert n_lab.tolist() == labelled.sum(axis=0).tolist()
    for head in (PSLassoHead(n_alphas=3), RidgeHead(), RidgeHead(cv="loo")):
        assert head.fit(Z, Y).fallback_.tolist() == fallback.tolist()
        np.testing.assert_allclose(head.predict(Z)[:, 2], y_mean[2], rtol=1e-14)


def test_label_groups_by_missingness_pattern():
    labelled = np.ones((6, 5), dtype=bool)
    labelled[0, [1, 3]] = False
    labelled[2, 4] = False
    groups = label_groups(labelled, np.arange(5))
    assert sorted(groups.values()) == [[0, 2], [1, 3], [4]]
    assert list(label_groups(labelled, np.array([3, 4])).values()) == [[3], [4]]


def test_each_head_chooses_by_its_declared_tie_preference():
    rng = np.random.default_rng(5)
    Z = rng.standard_normal((70, 6))
    B = rng.standard_normal((6, 5)) * (rng.random((6, 5)) < 0.3)
    Y = Z @ B + rng.standard_normal((70, 5))
    Y[rng.random(Y.shape) < 0.2] = np.nan
    assert (PSLassoHead.alpha_tie, RidgeHead.alpha_tie) == ("smaller", "larger")
    lasso = PSLassoHead(n_alphas=8).fit(Z, Y)
    for j in range(Y.shape[1]):
        i = choose_alpha(lasso.cv_scores_[:, [j]], lasso.alphas_[:, j], "smaller")[0]
        assert lasso.alpha_[j] == lasso.alphas_[i, j]
    for cv in (5, "loo"):
        ridge = RidgeHead(cv=cv, alphas=[1.0, 1e6, 1e7, 1e8]).fit(Z, Y)  # huge alphas: same ranks
        assert not ridge.fallback_.any()
        larger = choose_alpha(ridge.cv_scores_, ridge.alphas_, "larger")
        if cv == 5:  # k-fold predictions at huge alphas are scaled copies: tied Spearman scores
            assert (larger != choose_alpha(ridge.cv_scores_, ridge.alphas_, "smaller")).any()
        np.testing.assert_array_equal(ridge.alpha_, ridge.alphas_[larger])
