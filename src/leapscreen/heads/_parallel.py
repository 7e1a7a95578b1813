"""Fitting across perturbations in parallel: one thread pool over shared arrays, and a progress hook.

Heads that fit one model per perturbation (PS-LightGBM, PS-KNN) hand their work to
:func:`map_tasks` as a list of small task descriptions (column indices, a group of columns): the
tasks run in a thread pool and read the training arrays the head holds, so nothing is copied or
shipped per task (LightGBM and numpy release the GIL while they compute). Results come back in the
order of the tasks whatever the scheduling, so a fit is the same with any ``n_jobs`` as long as each
task is deterministic on its own (LightGBM runs with ``num_threads=1`` inside each task).

Progress: library code never prints. A caller that wants to show progress (the CLI's progress bar)
sets a callback for the duration of a fit::

    with progress_callback(lambda message, done, total: bar.update(...)):
        head.fit(Z, Y)

and :func:`map_tasks` calls ``callback(message, done, total)`` from the calling thread as tasks
finish, ``done`` counting columns (each task says how many columns it covers), so the callback sees
every column exactly once and ``done`` reaches ``total``. The callback lives in a
:class:`contextvars.ContextVar`, so concurrent fits in other threads or tasks do not see each
other's callbacks.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextvars import ContextVar
from typing import Any, TypeVar

import numpy as np
from threadpoolctl import threadpool_limits

from leapscreen.errors import InputError

__all__ = [
    "ProgressCallback",
    "default_jobs",
    "get_progress_callback",
    "map_tasks",
    "progress_callback",
    "report_progress",
    "resolve_jobs",
]

T = TypeVar("T")
R = TypeVar("R")

#: ``callback(message, done, total)``: ``done`` of ``total`` columns finished
ProgressCallback = Callable[[str, int, int], None]

_PROGRESS: ContextVar[ProgressCallback | None] = ContextVar("leapscreen_progress", default=None)


@contextlib.contextmanager
def progress_callback(callback: ProgressCallback | None) -> Iterator[None]:
    """Set the progress callback for the code run inside the ``with`` block (``None``: none)."""
    token = _PROGRESS.set(callback)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def get_progress_callback() -> ProgressCallback | None:
    """The progress callback in effect (``None`` when nobody listens)."""
    return _PROGRESS.get()


def report_progress(message: str, done: int, total: int) -> None:
    """Tell the listener, if any, that ``done`` of ``total`` columns are finished."""
    callback = _PROGRESS.get()
    if callback is not None:
        callback(message, int(done), int(total))


def default_jobs() -> int:
    """One worker per core this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def resolve_jobs(n_jobs: Any, owner: str) -> int:
    """``n_jobs`` as a worker count: ``None`` or -1 -> one per core, else a positive integer.

    Raises
    ------
    InputError
        Naming ``owner`` (the head) when ``n_jobs`` is anything else.
    """
    if n_jobs is None:
        return default_jobs()
    if isinstance(n_jobs, (int, np.integer)) and not isinstance(n_jobs, bool):
        if int(n_jobs) == -1:
            return default_jobs()
        if int(n_jobs) >= 1:
            return int(n_jobs)
    raise InputError(
        f"{owner}: n_jobs must be None, -1 or a positive integer, got {n_jobs!r}",
        fix="use n_jobs=None (one thread per core) or e.g. n_jobs=1",
    )


def map_tasks(
    func: Callable[[T], R],
    tasks: Sequence[T],
    *,
    n_jobs: int,
    sizes: Sequence[int] | None = None,
    message: str = "fitting",
) -> list[R]:
    """``[func(t) for t in tasks]``, run by ``n_jobs`` threads, results in the order of ``tasks``.

    Parameters
    ----------
    func : callable
        Work on one task; it reads shared arrays (closures), so tasks stay small.
    tasks : sequence
        Task descriptions (column indices, groups of columns).
    n_jobs : int
        Worker threads (1 runs in the calling thread). BLAS is limited to one thread per worker
        while more than one worker runs, so the workers do not oversubscribe the cores.
    sizes : sequence of int, optional
        Columns covered by each task (default 1 each): what the progress callback counts.
    message : str
        Passed to the progress callback.

    Returns
    -------
    list
        ``func(task)`` for every task, in order. The first exception raised by a task is re-raised
        after the tasks not yet started are cancelled.
    """
    tasks = list(tasks)
    counts = [1] * len(tasks) if sizes is None else [int(s) for s in sizes]
    if len(counts) != len(tasks):
        raise ValueError("sizes must give one count per task")
    total = sum(counts)
    callback = _PROGRESS.get()  # read here: worker threads do not share this context
    done = 0
    workers = max(1, min(int(n_jobs), len(tasks)))
    if workers == 1:
        results = []
        for task, count in zip(tasks, counts, strict=True):
            results.append(func(task))
            done += count
            if callback is not None:
                callback(message, done, total)
        return results

    out: list[Any] = [None] * len(tasks)
    with threadpool_limits(1, user_api="blas"):
        with ThreadPoolExecutor(workers, thread_name_prefix="leapscreen-column") as pool:
            pending: dict[Future, int] = {pool.submit(func, t): i for i, t in enumerate(tasks)}
            try:
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    # in task order within one wake-up, so the callback's sequence is stable
                    for future in sorted(finished, key=pending.__getitem__):
                        i = pending.pop(future)
                        out[i] = future.result()
                        done += counts[i]
                        if callback is not None:
                            callback(message, done, total)
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
    return out
