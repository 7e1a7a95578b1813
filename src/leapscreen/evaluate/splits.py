"""Seeded train/test splits by sample, for the evaluation protocols of LEAP.

Every split here is *by sample*: a sample (cell line, PDX, ...) is either in training or in test,
with all its responses. Splitting (sample, perturbation) pairs would leak the sample's expression
profile into training and overstate how well unseen models are predicted.

Generators return a list of :class:`Split`; each split holds the training and test sample IDs and a
small ``info`` dict (task, seed, sizes, held-out lineage, ...).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from leapscreen.errors import InputError

__all__ = [
    "TASKS",
    "Split",
    "kfold",
    "make_splits",
    "safe_name",
    "transfer",
    "unseen_lineage",
    "unseen_samples",
]

logger = logging.getLogger(__name__)

#: Preset names accepted by :func:`make_splits`.
TASKS = ("unseen-cell-lines", "unseen-lineage", "transfer", "kfold")

_TASK_ALIASES = {
    "unseen-cell-lines": "unseen-cell-lines",
    "unseen-samples": "unseen-cell-lines",
    "unseen-lineage": "unseen-lineage",
    "unseen-tissue": "unseen-lineage",
    "transfer": "transfer",
    "kfold": "kfold",
}


@dataclass(frozen=True)
class Split:
    """One train/test partition of samples.

    Parameters
    ----------
    name : str
        Short name, safe for file paths (``repeat-00``, ``lineage-CNS_Brain``, ``fold-3``, ...).
    train : np.ndarray
        Sample IDs used for training.
    test : np.ndarray
        Sample IDs used for testing; disjoint from ``train``.
    info : dict
        Facts about the split (``task``, ``n_train``, ``n_test``, ``random_state``, ``lineage``,
        ...).
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return len(self.train)

    @property
    def n_test(self) -> int:
        """Number of test samples."""
        return len(self.test)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (sample IDs as lists of str)."""
        return {
            "name": self.name,
            "train": [str(s) for s in self.train],
            "test": [str(s) for s in self.test],
            "info": dict(self.info),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Split:
        """Rebuild a split written by :meth:`to_dict`."""
        return cls(
            name=str(data["name"]),
            train=np.asarray(data["train"], dtype=object),
            test=np.asarray(data["test"], dtype=object),
            info=dict(data.get("info", {})),
        )


def safe_name(text: str, max_length: int = 64) -> str:
    """Turn a label (e.g. a lineage such as ``"CNS/Brain"``) into a name safe for file paths.

    Characters other than ASCII letters, digits, ``.``, ``-`` and ``_`` become ``_`` (runs
    collapsed); leading and trailing ``.``, ``-``, ``_`` are dropped so that the name is never
    hidden or empty.

    Parameters
    ----------
    text : str
        The label.
    max_length : int, default 64
        Longer names are cut and suffixed with 8 hex digits of the label's SHA-1, keeping them
        distinct.

    Returns
    -------
    str
        A non-empty name matching ``[A-Za-z0-9][A-Za-z0-9._-]*``.
    """
    text = str(text)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    name = re.sub(r"_+", "_", name)
    if not name:
        name = "x" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]
    if len(name) > max_length:
        digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]
        name = name[: max_length - 9].rstrip("._-") + "_" + digest
    return name


def _as_ids(sample_ids: Iterable[Any], what: str = "sample_ids") -> np.ndarray:
    """Sample IDs as a 1-D array; rejects empty input and duplicates."""
    if isinstance(sample_ids, pd.Index | pd.Series):
        ids = sample_ids.to_numpy()
    else:
        ids = np.asarray(list(sample_ids) if not isinstance(sample_ids, np.ndarray) else sample_ids)
    if ids.ndim != 1:
        raise InputError(
            f"{what} must be one-dimensional, got shape {ids.shape}",
            fix="pass a list, array, Index or Series of sample IDs",
        )
    if len(ids) == 0:
        raise InputError(f"{what} is empty", fix="pass at least two samples to split")
    dup = pd.Index(ids)[pd.Index(ids).duplicated()]
    if len(dup):
        raise InputError(
            f"{what} has {len(dup)} duplicated sample IDs (e.g. {list(dup[:3])})",
            fix="de-duplicate the samples before splitting",
        )
    return ids


def _check_seed(random_state: int | None) -> int:
    if (
        random_state is None
        or isinstance(random_state, bool)
        or not isinstance(random_state, int | np.integer)
    ):
        raise InputError(
            f"random_state must be an integer, got {random_state!r}",
            fix="pass an explicit integer seed (e.g. random_state=0; --seed 0 on the command line) "
            "so that the splits can be reproduced",
        )
    return int(random_state)


def unseen_samples(
    sample_ids: Sequence[Any] | np.ndarray | pd.Index,
    n_repeats: int = 10,
    test_fraction: float = 0.2,
    random_state: int = 0,
) -> list[Split]:
    """Repeated random train/test splits by sample ("unseen cell lines", LEAP tasks 1 and 2).

    Parameters
    ----------
    sample_ids : array-like
        Unique sample IDs.
    n_repeats : int, default 10
        Number of independent random splits.
    test_fraction : float, default 0.2
        Fraction of samples in each test set (rounded; at least one sample on each side).
    random_state : int, default 0
        Seed; the same seed gives the same splits.

    Returns
    -------
    list of Split
        ``n_repeats`` splits named ``repeat-00``, ``repeat-01``, ...; train and test keep the input
        order. Split ``r`` depends only on the samples, ``test_fraction``, ``random_state`` and
        ``r``, not on ``n_repeats``: asking for more repeats adds splits and keeps those already
        drawn (same names, same samples), so a cached evaluation reuses them.
    """
    ids = _as_ids(sample_ids)
    seed = _check_seed(random_state)
    if int(n_repeats) < 1:
        raise InputError(
            f"n_repeats must be >= 1, got {n_repeats}",
            fix="use e.g. n_repeats=10 (--repeats 10 on the command line)",
        )
    if not 0.0 < float(test_fraction) < 1.0:
        raise InputError(
            f"test_fraction must be strictly between 0 and 1, got {test_fraction}",
            fix="use e.g. test_fraction=0.2 (--test-fraction 0.2 on the command line) for 80/20 splits",
        )
    n = len(ids)
    if n < 2:
        raise InputError(f"need at least 2 samples to split, got {n}")
    n_test = min(max(int(round(test_fraction * n)), 1), n - 1)
    rng = np.random.default_rng(seed)
    splits = []
    for r in range(int(n_repeats)):
        in_test = np.zeros(n, dtype=bool)
        in_test[rng.permutation(n)[:n_test]] = True
        splits.append(
            Split(
                name=f"repeat-{r:02d}",
                train=ids[~in_test],
                test=ids[in_test],
                info={
                    "task": "unseen-cell-lines",
                    "repeat": r,
                    "random_state": seed,
                    "test_fraction": float(test_fraction),
                    "n_train": int(n - n_test),
                    "n_test": int(n_test),
                },
            )
        )
    return splits


def _is_missing_label(values: np.ndarray) -> np.ndarray:
    missing = pd.isna(values)
    as_text = np.array([str(v).strip() for v in values], dtype=object)
    return missing | (as_text == "")


def unseen_lineage(
    sample_ids: Sequence[Any] | np.ndarray | pd.Index,
    lineages: Sequence[Any] | np.ndarray | pd.Series,
    min_samples: int = 10,
    lineages_to_use: Sequence[str] | None = None,
    exclude: Sequence[str] = ("unknown",),
) -> list[Split]:
    """Leave one lineage (tissue) out, for each lineage with enough samples (LEAP tasks 3 and 4).

    Each split tests on all samples of one lineage and trains on every other sample, including
    samples whose lineage is missing or excluded (those are never held out themselves).

    Parameters
    ----------
    sample_ids : array-like
        Unique sample IDs.
    lineages : array-like or pd.Series
        Lineage of each sample. A Series indexed by sample ID is aligned to ``sample_ids``; anything
        else must have the same length and order as ``sample_ids``. NaN / empty = unknown lineage.
    min_samples : int, default 10
        Lineages with fewer samples are not held out (too few test samples for per-perturbation
        correlations); they stay in training.
    lineages_to_use : sequence of str, optional
        Hold out only these lineages (each must exist; ``min_samples`` still applies).
    exclude : sequence of str, default ("unknown",)
        Lineage labels never held out (placeholders for missing metadata).

    Returns
    -------
    list of Split
        One split per held-out lineage, sorted by lineage, named ``lineage-<safe name>``;
        ``info["lineage"]`` holds the original label.
    """
    ids = _as_ids(sample_ids)
    if isinstance(lineages, pd.Series) and pd.Index(ids).isin(lineages.index).all():
        labels = lineages.reindex(pd.Index(ids)).to_numpy()
    else:
        labels = lineages.to_numpy() if isinstance(lineages, pd.Series) else np.asarray(lineages)
        if labels.shape != ids.shape:
            raise InputError(
                f"lineages has {len(labels)} entries for {len(ids)} samples",
                fix="pass one lineage per sample (same order), or a Series indexed by sample ID",
            )
    labels = labels.astype(object)
    missing = _is_missing_label(labels)
    labels_str = np.array([str(v) for v in labels], dtype=object)
    counts = pd.Series(labels_str[~missing]).value_counts()
    excluded = {str(e) for e in exclude}

    if lineages_to_use is not None:
        wanted = [str(x) for x in lineages_to_use]
        unknown = [w for w in wanted if w not in counts.index]
        if unknown:
            raise InputError(
                f"lineages_to_use names lineages absent from the samples: {unknown}",
                column="lineage",
                fix=f"choose among: {sorted(counts.index.tolist())}",
            )
        candidates = sorted(set(wanted))
    else:
        candidates = sorted(c for c in counts.index if c not in excluded)

    too_small = [c for c in candidates if counts[c] < min_samples]
    if too_small:
        logger.info(
            "unseen_lineage: %d lineage(s) with fewer than %d samples stay in training only: %s",
            len(too_small),
            min_samples,
            ", ".join(f"{c} ({counts[c]})" for c in too_small),
        )
    held_out = [c for c in candidates if counts[c] >= min_samples]
    if not held_out:
        raise InputError(
            f"no lineage has at least min_samples={min_samples} samples "
            f"(largest: {counts.max() if len(counts) else 0})",
            column="lineage",
            fix="lower min_samples (--min-lineage-samples on the command line), or check that the "
            "sample metadata carries lineages",
        )

    names: dict[str, str] = {}
    used: set[str] = set()
    for lineage in held_out:
        base = "lineage-" + safe_name(lineage)
        name = base
        if name in used:  # distinct labels such as "A/B" and "A B" map to the same safe name
            name = f"{base}-{hashlib.sha1(lineage.encode('utf-8')).hexdigest()[:6]}"
        used.add(name)
        names[lineage] = name

    splits = []
    for lineage in held_out:
        in_test = (~missing) & (labels_str == lineage)
        splits.append(
            Split(
                name=names[lineage],
                train=ids[~in_test],
                test=ids[in_test],
                info={
                    "task": "unseen-lineage",
                    "lineage": lineage,
                    "min_samples": int(min_samples),
                    "n_train": int((~in_test).sum()),
                    "n_test": int(in_test.sum()),
                },
            )
        )
    return splits


def _few_shot_choice(
    labelled: np.ndarray, need: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Greedy cover: indices of rows such that column j has >= need[j] labelled rows among them.

    At each step, take a row that covers the most still-unmet columns (ties broken at random).
    """
    n = labelled.shape[0]
    remaining = need.astype(np.int64).copy()
    chosen = np.zeros(n, dtype=bool)
    lab = labelled.astype(np.int64)
    while (remaining > 0).any():
        gain = lab @ (remaining > 0).astype(np.int64)
        gain[chosen] = -1
        best = gain.max()
        if best <= 0:  # cannot happen when need <= available, kept as a guard
            break
        candidates = np.flatnonzero(gain == best)
        pick = candidates[rng.integers(len(candidates))]
        chosen[pick] = True
        remaining -= lab[pick]
    return np.flatnonzero(chosen)


def transfer(
    source_ids: Sequence[Any] | np.ndarray | pd.Index,
    target_ids: Sequence[Any] | np.ndarray | pd.Index,
    few_shot_k: int = 0,
    responses: pd.DataFrame | None = None,
    random_state: int = 0,
    n_repeats: int = 1,
) -> list[Split]:
    """Train on one domain (e.g. cell lines), test on another (e.g. PDX) — LEAP task 5.

    Few-shot (``few_shot_k > 0``): because splits are by sample, target samples are moved *whole*
    into training. A small set of target samples is chosen greedily (at each step the sample that
    covers the most still-short perturbations, ties broken at random with ``random_state``) such
    that every perturbation has at least ``few_shot_k`` labelled responses among them — or all of
    its labelled target samples where it has fewer (it then has no test labels left and scores NaN;
    such perturbations are listed in ``info["few_shot_short"]``). All responses of a chosen sample
    go to training, so some perturbations may get more than ``few_shot_k`` labelled shots.

    Parameters
    ----------
    source_ids : array-like
        Samples of the source domain; always in training.
    target_ids : array-like
        Samples of the target domain; the test set (minus few-shot samples). Must not overlap the
        source.
    few_shot_k : int, default 0
        Labelled target samples per perturbation moved into training (0 = zero-shot transfer).
    responses : pd.DataFrame, optional
        Samples x perturbations, NaN = not measured; rows must include every target sample. Required
        when ``few_shot_k > 0``.
    random_state : int, default 0
        Seed for the few-shot draw.
    n_repeats : int, default 1
        Number of few-shot draws (each with its own random tie-breaking); ignored (one split) when
        ``few_shot_k == 0``.

    Returns
    -------
    list of Split
        ``transfer`` for zero-shot; ``transfer-k<k>-<r>`` for few-shot draws.
    """
    src = _as_ids(source_ids, "source_ids")
    tgt = _as_ids(target_ids, "target_ids")
    seed = _check_seed(random_state)
    overlap = pd.Index(src).intersection(pd.Index(tgt))
    if len(overlap):
        raise InputError(
            f"{len(overlap)} samples are both source and target (e.g. {list(overlap[:3])})",
            fix="give the domains distinct sample IDs, or drop the shared samples from one side",
        )
    k = int(few_shot_k)
    if k < 0:
        raise InputError(
            f"few_shot_k must be >= 0, got {few_shot_k}",
            fix="use 0 for zero-shot transfer or a positive k (--few-shot on the command line)",
        )
    base_info = {
        "task": "transfer",
        "few_shot_k": k,
        "random_state": seed,
        "n_source": int(len(src)),
        "n_target": int(len(tgt)),
    }
    if k == 0:
        return [
            Split(
                name="transfer",
                train=src.copy(),
                test=tgt.copy(),
                info={**base_info, "n_train": int(len(src)), "n_test": int(len(tgt))},
            )
        ]

    if responses is None:
        raise InputError(
            "few-shot transfer needs the responses to know which target samples are labelled",
            fix="pass responses= (samples x perturbations, NaN = missing)",
        )
    missing_rows = pd.Index(tgt).difference(responses.index)
    if len(missing_rows):
        raise InputError(
            f"{len(missing_rows)} target samples are absent from the responses' rows "
            f"(e.g. {list(missing_rows[:3])})",
            fix="pass responses whose index contains every target sample ID",
        )
    values = responses.reindex(pd.Index(tgt)).to_numpy(dtype=float)
    labelled = np.isfinite(values)
    available = labelled.sum(axis=0)
    need = np.minimum(k, available)
    short = [str(p) for p, a in zip(responses.columns, available, strict=True) if a < k]
    if short:
        logger.warning(
            "few-shot transfer: %d perturbation(s) have fewer than k=%d labelled target samples; "
            "all of them go to training",
            len(short),
            k,
        )
    rng = np.random.default_rng(seed)
    splits = []
    for r in range(max(1, int(n_repeats))):
        shots = _few_shot_choice(labelled, need, rng)
        in_train = np.zeros(len(tgt), dtype=bool)
        in_train[shots] = True
        train = np.concatenate([src, tgt[in_train]])
        splits.append(
            Split(
                name=f"transfer-k{k}-{r:02d}",
                train=train,
                test=tgt[~in_train],
                info={
                    **base_info,
                    "repeat": r,
                    "few_shot_samples": [str(s) for s in tgt[in_train]],
                    "few_shot_short": short,
                    "n_train": int(len(train)),
                    "n_test": int((~in_train).sum()),
                },
            )
        )
    return splits


def kfold(
    sample_ids: Sequence[Any] | np.ndarray | pd.Index,
    n_splits: int = 5,
    random_state: int = 0,
) -> list[Split]:
    """Shuffled K-fold by sample: every sample is tested exactly once.

    Parameters
    ----------
    sample_ids : array-like
        Unique sample IDs.
    n_splits : int, default 5
        Number of folds (2 <= n_splits <= number of samples); fold sizes differ by at most one.
    random_state : int, default 0
        Seed of the shuffle.

    Returns
    -------
    list of Split
        Splits named ``fold-0``, ``fold-1``, ...
    """
    ids = _as_ids(sample_ids)
    seed = _check_seed(random_state)
    n = len(ids)
    if not 2 <= int(n_splits) <= n:
        raise InputError(
            f"n_splits must be between 2 and the number of samples ({n}), got {n_splits}",
            fix="use fewer folds or more samples",
        )
    order = np.random.default_rng(seed).permutation(n)
    fold_of = np.empty(n, dtype=np.int64)
    for f, chunk in enumerate(np.array_split(order, int(n_splits))):
        fold_of[chunk] = f
    return [
        Split(
            name=f"fold-{f}",
            train=ids[fold_of != f],
            test=ids[fold_of == f],
            info={
                "task": "kfold",
                "fold": f,
                "n_splits": int(n_splits),
                "random_state": seed,
                "n_train": int((fold_of != f).sum()),
                "n_test": int((fold_of == f).sum()),
            },
        )
        for f in range(int(n_splits))
    ]


def make_splits(task: str, sample_ids: Any = None, **kwargs: Any) -> list[Split]:
    """Splits for one of the preset evaluation tasks.

    Parameters
    ----------
    task : {"unseen-cell-lines", "unseen-lineage", "transfer", "kfold"}
        ``unseen-cell-lines`` (alias ``unseen-samples``): :func:`unseen_samples`, by default
        10 x 80/20; ``unseen-lineage`` (alias ``unseen-tissue``): :func:`unseen_lineage` (needs
        ``lineages=``); ``transfer``: :func:`transfer` (needs ``source_ids=`` and ``target_ids=``;
        ``sample_ids`` unused); ``kfold``: :func:`kfold`, by default 5 folds.
    sample_ids : array-like, optional
        Sample IDs (all tasks except ``transfer``).
    **kwargs
        Passed to the generator (``random_state``, ``n_repeats``, ``lineages``, ``min_samples``,
        ...).

    Returns
    -------
    list of Split
    """
    key = _TASK_ALIASES.get(str(task).strip().lower())
    if key is None:
        raise InputError(
            f"unknown evaluation task {task!r}", fix=f"choose one of: {', '.join(TASKS)}"
        )
    if key == "transfer":
        if "source_ids" not in kwargs or "target_ids" not in kwargs:
            raise InputError(
                "the transfer task needs source_ids= and target_ids=",
                fix="pass the training-domain and test-domain sample IDs",
            )
        return transfer(**kwargs)
    if sample_ids is None:
        raise InputError(f"the {key} task needs sample_ids", fix="pass the sample IDs to split")
    if key == "unseen-cell-lines":
        return unseen_samples(sample_ids, **kwargs)
    if key == "unseen-lineage":
        if "lineages" not in kwargs:
            raise InputError(
                "the unseen-lineage task needs lineages= (one lineage per sample)",
                column="lineage",
                fix="pass the samples' lineage labels, e.g. ScreenData.samples['lineage']",
            )
        return unseen_lineage(sample_ids, **kwargs)
    return kfold(sample_ids, **kwargs)
