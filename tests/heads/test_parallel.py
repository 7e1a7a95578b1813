"""The parallel-across-perturbations engine: ordered results whatever the scheduling, the progress
hook (every column once, from the calling thread, scoped to its context), errors, n_jobs, and the
heads giving the same fit with one thread or two."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from leapscreen.errors import InputError
from leapscreen.heads import PSKNNHead, PSLightGBMHead
from leapscreen.heads._parallel import (
    default_jobs,
    get_progress_callback,
    map_tasks,
    progress_callback,
    resolve_jobs,
)


class Recorder:
    """A progress callback that remembers its calls and the thread they came from."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self.threads: set[int] = set()

    def __call__(self, message: str, done: int, total: int) -> None:
        self.calls.append((message, done, total))
        self.threads.add(threading.get_ident())


@pytest.mark.parametrize("n_jobs", [1, 2, 4])
def test_results_in_task_order_whatever_finishes_first(n_jobs):
    def slow_first(i: int) -> int:
        time.sleep(0.02 * (5 - i))  # the first tasks finish last
        return i * i

    assert map_tasks(slow_first, range(5), n_jobs=n_jobs) == [0, 1, 4, 9, 16]


@pytest.mark.parametrize("n_jobs", [1, 3])
def test_progress_counts_every_column_once_from_the_calling_thread(n_jobs):
    sizes = [3, 1, 2, 4]
    rec = Recorder()
    with progress_callback(rec):
        out = map_tasks(lambda t: t, list(range(4)), n_jobs=n_jobs, sizes=sizes, message="m")
    assert out == [0, 1, 2, 3]
    assert len(rec.calls) == 4 and {c[0] for c in rec.calls} == {"m"}
    done = [c[1] for c in rec.calls]
    assert done == sorted(done) and done[-1] == sum(sizes) and {c[2] for c in rec.calls} == {10}
    # the increments are the tasks' sizes, each task once
    steps = np.diff([0, *done])
    assert sorted(steps) == sorted(sizes)
    assert rec.threads == {threading.get_ident()}


def test_callback_is_scoped_to_the_with_block():
    rec = Recorder()
    assert get_progress_callback() is None
    with progress_callback(rec):
        assert get_progress_callback() is rec
        with progress_callback(None):
            map_tasks(lambda t: t, [1, 2], n_jobs=1)
        assert get_progress_callback() is rec
    assert get_progress_callback() is None
    map_tasks(lambda t: t, [1, 2], n_jobs=2)
    assert rec.calls == []


def test_a_failing_task_raises_and_stops_the_rest():
    started = []

    def work(i: int) -> int:
        started.append(i)
        if i == 1:
            raise ValueError("column 1 failed")
        time.sleep(0.05)
        return i

    with pytest.raises(ValueError, match="column 1 failed"):
        map_tasks(work, range(40), n_jobs=2)
    assert len(started) < 40  # the tasks not yet started were cancelled


def test_tasks_share_the_data_they_read():
    big = np.zeros((1000, 100))
    seen = map_tasks(lambda j: id(big), range(6), n_jobs=3)
    assert set(seen) == {id(big)}  # threads read the one array; nothing is shipped per task


def test_resolve_jobs():
    assert resolve_jobs(None, "H") == default_jobs() == resolve_jobs(-1, "H")
    assert resolve_jobs(3, "H") == 3 and resolve_jobs(np.int64(2), "H") == 2
    for bad in (0, -2, 1.5, "2", True):
        with pytest.raises(InputError, match="H: n_jobs"):
            resolve_jobs(bad, "H")


def _data(n=90, d=5, p=5, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, d))
    Y = np.tanh(Z @ rng.standard_normal((d, p))) + 0.3 * rng.standard_normal((n, p))
    Y[rng.random((n, p)) < 0.3] = np.nan
    Y[:, 4] = np.nan
    Y[:3, 4] = 0.5  # a fallback column: no model, no task
    return Z, Y


@pytest.mark.parametrize(
    "make",
    [
        lambda n_jobs: PSLightGBMHead(
            grid=[{"learning_rate": 0.2, "n_estimators": 20, "num_leaves": 7}],
            cv=3,
            n_jobs=n_jobs,
        ),
        lambda n_jobs: PSKNNHead(cv=3, n_jobs=n_jobs),
    ],
    ids=["ps-lightgbm", "ps-knn"],
)
def test_heads_same_fit_with_one_or_two_threads_and_progress_per_column(make):
    Z, Y = _data()
    rec = Recorder()
    with progress_callback(rec):
        one = make(1).fit(Z, Y)
    two = make(2).fit(Z, Y)
    np.testing.assert_array_equal(one.predict(Z), two.predict(Z))
    np.testing.assert_array_equal(one.out_of_fold_predictions(), two.out_of_fold_predictions())
    np.testing.assert_array_equal(one.cv_scores_, two.cv_scores_)
    fit_calls = [c for c in rec.calls if "predict" not in c[0]]
    assert fit_calls[-1][1] == fit_calls[-1][2] == 4  # every modelled column, the fallback not
    assert [c[1] for c in fit_calls] == sorted(c[1] for c in fit_calls)
