"""Fuzzing every reader of ``leapscreen.data`` with hypothesis.

Inputs: random bytes under each file suffix, and structured mutations of real-format files (DepMap
wide and long expression, gene effect, Model.csv, GDSC fitted, CCLE 2012, a long table, a gene list,
a GMT): truncation, BOM, CRLF, gzip, quoting, duplicated headers, NaN / inf spellings, huge values,
text in numbers, missing and extra fields, dropped and shuffled rows.

Each case must end in a load or a :class:`~leapscreen.errors.LeapscreenError`, never another
exception or a hang (hypothesis ``deadline``). Mutations that keep the meaning (BOM, CRLF, gzip,
quoting, shuffled rows) must give the same values as the original file; a cell spelled as missing
must load as NaN; an infinite, overflowing or non-numeric cell must be an error in the loaders.

The number of cases per test is ``LEAPSCREEN_FUZZ_EXAMPLES`` (default 100: about 25 s on one core);
the cases are the same on every run (``derandomize``) unless ``LEAPSCREEN_FUZZ_RANDOM=1``, for
exploratory runs.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leapscreen.data import depmap, gdsc, genesets, loading, tables
from leapscreen.errors import LeapscreenError

N_EXAMPLES = int(os.environ.get("LEAPSCREEN_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=N_EXAMPLES,
    deadline=3000,
    derandomize=os.environ.get("LEAPSCREEN_FUZZ_RANDOM") != "1",
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

IDS = [f"ACH-{i:06d}" for i in range(1, 9)]
GENES = [f"G{i} ({100 + i})" for i in range(6)]


def _values(seed: int, lo: float, hi: float) -> np.ndarray:
    return np.random.default_rng(seed).uniform(lo, hi, (len(IDS), len(GENES))).round(3)


def _wide(values: np.ndarray, first: str = "") -> str:
    df = pd.DataFrame(values, index=pd.Index(IDS, name=first or None), columns=GENES)
    return df.to_csv(index_label=first)


def _long_expression() -> str:
    meta = pd.DataFrame(
        {
            "SequencingID": [f"CDS-{i}" for i in range(len(IDS))],
            "ModelID": IDS,
            "IsDefaultEntryForModel": ["Yes"] * len(IDS),
            "ModelConditionID": [f"MC-{i}" for i in range(len(IDS))],
            "IsDefaultEntryForMC": ["Yes"] * len(IDS),
        }
    )
    vals = pd.DataFrame(_values(3, 0, 12), columns=GENES)
    return pd.concat([meta, vals], axis=1).to_csv(index=False)


def _models() -> str:
    return pd.DataFrame(
        {
            "ModelID": IDS,
            "CellLineName": [f"L-{i}" for i in range(len(IDS))],
            "OncotreeLineage": ["Lung", "Skin"] * (len(IDS) // 2),
            "COSMICID": range(900, 900 + len(IDS)),
        }
    ).to_csv(index=False)


def _gdsc() -> str:
    rng = np.random.default_rng(5)
    rows = [
        (s, f"D{d}", 1000 + d, round(rng.normal(1, 2), 3), round(rng.uniform(0.2, 1), 3))
        for s in IDS
        for d in range(3)
    ]
    cols = ["SANGER_MODEL_ID", "DRUG_NAME", "DRUG_ID", "LN_IC50", "AUC"]
    return pd.DataFrame(rows, columns=cols).to_csv(index=False)


def _ccle() -> str:
    rng = np.random.default_rng(6)
    rows = [
        (f"L{i}_LUNG", f"C{d}", round(rng.uniform(0, 8), 3)) for i in range(6) for d in range(3)
    ]
    return pd.DataFrame(rows, columns=["CCLE Cell Line Name", "Compound", "ActArea"]).to_csv(
        index=False
    )


def _long() -> str:
    rng = np.random.default_rng(7)
    rows = [(s, f"P{d}", round(rng.normal(), 3)) for s in IDS for d in range(3)]
    return pd.DataFrame(rows, columns=["sample", "perturbation", "value"]).to_csv(index=False)


#: name -> (file text, readers to run on it: (label, function of the path))
Reader = Callable[[Path], object]
SEEDS: dict[str, tuple[str, list[tuple[str, Reader]]]] = {
    "depmap_expression": (
        _wide(_values(1, 0, 12)),
        [
            ("load_expression", loading.load_expression),
            ("read_depmap_expression", depmap.read_depmap_expression),
            ("read_matrix", tables.read_matrix),
        ],
    ),
    "depmap_long_expression": (
        _long_expression(),
        [("load_expression", loading.load_expression)],
    ),
    "gene_effect": (
        _wide(_values(2, -2, 0.5), "ModelID"),
        [
            ("load_responses", loading.load_responses),
            ("read_depmap_gene_effect", depmap.read_depmap_gene_effect),
        ],
    ),
    "models": (
        _models(),
        [
            ("load_samples", loading.load_samples),
            ("read_depmap_models", depmap.read_depmap_models),
        ],
    ),
    "gdsc": (
        _gdsc(),
        [
            ("load_responses", loading.load_responses),
            ("read_gdsc_fitted", lambda p: gdsc.read_gdsc_fitted(p, value="AUC")),
        ],
    ),
    "ccle2012": (_ccle(), [("read_ccle2012", gdsc.read_ccle2012)]),
    "long_table": (
        _long(),
        [
            ("load_responses", loading.load_responses),
            (
                "read_long_table",
                lambda p: tables.read_long_table(p, "sample", "perturbation", "value"),
            ),
        ],
    ),
    "gene_list": ("gene\nTP53\nKRAS\nEGFR\n", [("read_gene_list", genesets.read_gene_list)]),
    "gmt": (
        "SET_A\tdesc\tTP53\tKRAS\nSET_B\tdesc\tEGFR\tMYC\tTP53\n",
        [("read_gene_sets", genesets.read_gene_sets)],
    ),
}
ALL_READERS = [("read_any", tables.read_any)] + [r for _, rs in SEEDS.values() for r in rs]

NAN_SPELLINGS = ["", "NA", "NaN", "nan", "N/A", "null", "NULL", "#N/A", "-nan", "<NA>"]
BAD_NUMBERS = ["inf", "-inf", "Infinity", "1e400", "-1e999", "abc", "1,5", "TRUE", "--3", "0x1F"]


def _quiet(fn: Reader, path: Path) -> tuple[object | None, BaseException | None]:
    """Call a reader; return (result, None) or (None, LeapscreenError); re-raise anything else."""
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(path), None
    except LeapscreenError as exc:
        assert str(path.name) in str(exc) or "encoding" in str(exc), f"error without file: {exc}"
        return None, exc
    finally:
        logging.disable(logging.NOTSET)


def _frame(result: object) -> pd.DataFrame | None:
    """The main table of what a reader returned, for comparisons."""
    if isinstance(result, tuple) and result and isinstance(result[0], str):  # read_any
        result = result[1]
    if isinstance(result, tuple):
        result = result[0]
    if isinstance(result, pd.DataFrame):
        return result
    return None


# ----------------------------------------------------------------------------- random bytes
@FUZZ
@given(
    data=st.binary(max_size=3000),
    suffix=st.sampled_from([".csv", ".tsv", ".csv.gz", ".parquet", ".gmt", ".txt"]),
)
def test_random_bytes_give_a_load_or_a_clean_error(data, suffix):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"random{suffix}"
        path.write_bytes(data)
        for _, fn in ALL_READERS:
            _quiet(fn, path)


@FUZZ
@given(text=st.text(alphabet=st.sampled_from(list("ab,;\t\n\r\"' 1.-e9NnAa#(")), max_size=400))
def test_random_delimited_text_gives_a_load_or_a_clean_error(text):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "random.csv"
        path.write_text(text)
        for _, fn in ALL_READERS:
            _quiet(fn, path)


# ----------------------------------------------------------------------------- mutations
def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _join(rows: list[list[str]], delim: str = ",", eol: str = "\n", quote_all: bool = False) -> str:
    buf = io.StringIO()
    quoting = csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    csv.writer(buf, delimiter=delim, lineterminator=eol, quoting=quoting).writerows(rows)
    return buf.getvalue()


NEUTRAL = ["bom", "crlf", "gzip", "quote_all", "shuffle_rows", "tab"]


@FUZZ
@given(seed=st.sampled_from(sorted(SEEDS)), ops=st.lists(st.sampled_from(NEUTRAL), max_size=4))
def test_meaning_preserving_mutations_give_the_same_values(seed, ops):
    """BOM, CRLF, gzip (even without a .gz name), quoting, tabs and row order change nothing."""
    text, readers = SEEDS[seed]
    if seed == "gmt":
        ops = [o for o in ops if o in ("bom", "crlf", "gzip")]
    rows = _rows(text) if seed != "gmt" else None
    delim, eol, quote_all = ",", "\n", False
    if rows is not None and "shuffle_rows" in ops:
        body = rows[1:]
        rows = [rows[0]] + body[::-1]
    if "crlf" in ops:
        eol = "\r\n"
    if "tab" in ops:
        delim = "\t"
    if "quote_all" in ops:
        quote_all = True
    out = text.replace("\n", eol) if rows is None else _join(rows, delim, eol, quote_all)
    raw = out.encode()
    if "bom" in ops:
        raw = b"\xef\xbb\xbf" + raw
    if "gzip" in ops:
        raw = gzip.compress(raw)
    with tempfile.TemporaryDirectory() as d:
        orig = Path(d) / ("orig.gmt" if seed == "gmt" else "orig.csv")
        orig.write_text(text)
        mutated = Path(d) / ("mut.gmt" if seed == "gmt" else "mut.csv")
        mutated.write_bytes(raw)
        for label, fn in readers:
            want, err = _quiet(fn, orig)
            assert err is None, f"{label} fails on the original {seed}: {err}"
            got, err = _quiet(fn, mutated)
            assert err is None, f"{label} on {seed} with {ops}: {err}"
            a, b = _frame(want), _frame(got)
            if a is None:
                if "shuffle_rows" in ops and isinstance(want, list):  # a list follows the file
                    got, want = sorted(got), sorted(want)
                assert got == want, f"{label} on {seed} with {ops}"
                continue
            b = b.sort_index()
            a = a.sort_index()
            pd.testing.assert_frame_equal(a, b, check_names=False, obj=f"{label} {seed} {ops}")


@FUZZ
@given(
    seed=st.sampled_from(["depmap_expression", "gene_effect", "long_table", "gdsc"]),
    row=st.integers(1, 8),
    spelling=st.sampled_from(NAN_SPELLINGS + BAD_NUMBERS),
)
def test_a_numeric_cell_spelled_oddly_is_missing_or_an_error(seed, row, spelling):
    text, readers = SEEDS[seed]
    rows = _rows(text)
    col = len(rows[0]) - 1  # a value column in every seed (last column)
    sample = rows[row][0]
    rows[row][col] = spelling
    if seed == "gdsc":  # both response columns (LN_IC50 read by default, AUC when asked)
        rows[row][col - 1] = spelling
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "cell.csv"
        path.write_text(_join(rows))
        for label, fn in readers:
            got, err = _quiet(fn, path)
            if spelling in BAD_NUMBERS:
                assert err is not None, f"{label}: {spelling!r} loaded silently"
                continue
            assert err is None, f"{label}: missing value {spelling!r} refused: {err}"
            frame = _frame(got)
            if seed in ("depmap_expression", "gene_effect"):
                gene = rows[0][col]
                gene = gene if gene in frame.columns else gene.split(" (")[0]
                assert np.isnan(frame.loc[sample, gene]), f"{label}: {spelling!r} not NaN"
            else:  # long tables: the pair is missing (only row of it) -> NaN
                pert = rows[row][1]
                key = sample
                assert np.isnan(frame.loc[key, pert]), f"{label}: {spelling!r} not NaN"


MUTATIONS = [
    "truncate",
    "drop_field",
    "extra_field",
    "dup_header",
    "empty_header",
    "huge_value",
    "text_value",
    "drop_line",
    "blank_lines",
    "dup_row",
    "null_byte",
    "only_header",
]


@FUZZ
@given(
    seed=st.sampled_from(sorted(SEEDS)),
    ops=st.lists(
        st.tuples(st.sampled_from(MUTATIONS), st.integers(0, 10_000)), min_size=1, max_size=3
    ),
    suffix=st.sampled_from([".csv", ".txt", ".tsv"]),
)
def test_damaging_mutations_give_a_load_or_a_clean_error(seed, ops, suffix):
    """Truncated rows, missing / extra fields, duplicated headers, huge values: no crash."""
    text, readers = SEEDS[seed]
    rows = _rows(text)
    for op, k in ops:
        if not rows:
            break
        r = 1 + k % max(1, len(rows) - 1) if len(rows) > 1 else 0
        if not rows[r]:  # a blank line inserted before
            rows[r] = [""]
        c = k % len(rows[r])
        if op == "truncate":
            flat = _join(rows)
            rows = _rows(flat[: k % max(1, len(flat))])
        elif op == "drop_field" and rows[r]:
            rows[r] = rows[r][:-1]
        elif op == "extra_field":
            rows[r] = rows[r] + ["1.0"]
        elif op == "dup_header" and len(rows[0]) > 1:
            rows[0][-1] = rows[0][1]
        elif op == "empty_header":
            rows[0][c % len(rows[0])] = ""
        elif op == "huge_value":
            rows[r][c] = "9" * (1 + k % 400)
        elif op == "text_value":
            rows[r][c] = "x" * (1 + k % 5)
        elif op == "drop_line" and len(rows) > 1:
            del rows[r]
        elif op == "blank_lines":
            rows.insert(r, [])
        elif op == "dup_row" and len(rows) > 1:
            rows.append(list(rows[r]))
        elif op == "null_byte":
            rows[r][c] = rows[r][c] + "\x00"
        elif op == "only_header":
            rows = rows[:1]
    delim = "\t" if suffix == ".tsv" else ","
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"mut{suffix}"
        path.write_text(_join(rows, delim))
        for _, fn in [("read_any", tables.read_any), *readers]:
            got, err = _quiet(fn, path)
            frame = _frame(got)
            if err is None and frame is not None and frame.size:
                values = frame.select_dtypes("number").to_numpy(dtype=np.float64)
                if fn in (loading.load_expression, loading.load_responses):
                    assert not np.isinf(values).any(), "infinite values loaded silently"


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_seeds_load(seed):
    """The unmutated seeds load with every reader (so the fuzz tests start from valid files)."""
    text, readers = SEEDS[seed]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / ("seed.gmt" if seed == "gmt" else "seed.csv")
        path.write_text(text)
        for label, fn in [*readers, ("read_any", tables.read_any)]:
            got, err = _quiet(fn, path)
            assert err is None, f"{label}: {err}"
