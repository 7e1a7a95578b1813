"""A catalogue of bad or unusual inputs of issue 9 (sections 2 and 4), each with its right outcome.

Each :class:`Case` builds its files in a directory and says what loading them must give: a correct
load (checked by a function) or a clean error that names the right file, says the right thing and
does not say the wrong thing. :func:`outcome` classifies what a loader did: ``"correct"`` /
``"clean"`` (as expected), ``"misleading"`` (an error, but the wrong file or words), ``"traceback"``
(another exception) or ``"silent wrong"`` (no error where one was due, or a wrong result).
Used by ``test_bad_inputs.py`` and to count outcomes before and after the fixes.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

N_SAMPLES, N_GENES, N_PERTS = 30, 40, 12
IDS = [f"ACH-{i:06d}" for i in range(1, N_SAMPLES + 1)]
GENE_LABELS = [f"G{i} ({1000 + i})" for i in range(N_GENES)]
GENES = [f"G{i}" for i in range(N_GENES)]


def _rng() -> np.random.Generator:
    return np.random.default_rng(7)


def log_expression(ids: list[str] = IDS) -> pd.DataFrame:
    rng = _rng()
    values = np.log2(rng.lognormal(2.0, 1.5, (len(ids), N_GENES)) + 1.0).round(4)
    return pd.DataFrame(values, index=pd.Index(ids, name=None), columns=GENE_LABELS)


def tpm_expression(ids: list[str] = IDS) -> pd.DataFrame:
    return (2.0 ** log_expression(ids) - 1.0).round(3) * 40


def gene_effect() -> pd.DataFrame:
    rng = _rng()
    return pd.DataFrame(
        rng.normal(-0.3, 0.4, (N_SAMPLES, N_PERTS)).round(4),
        index=pd.Index(IDS, name="ModelID"),
        columns=[f"P{i} ({2000 + i})" for i in range(N_PERTS)],
    )


def write_wide(path: Path, df: pd.DataFrame, first: str = "") -> Path:
    out = df.copy()
    out.index.name = first
    out.to_csv(path)
    return path


def write_models(path: Path, lineage: bool = True, encoding: str = "utf-8") -> Path:
    df = pd.DataFrame({"ModelID": IDS, "CellLineName": [f"L{i}" for i in range(N_SAMPLES)]})
    if lineage:
        df["OncotreeLineage"] = ["Bone", "Skin", "Lung"] * (N_SAMPLES // 3)
        df["OncotreePrimaryDisease"] = ["Ewing Sarcoma", "Mélanome", "NSCLC"] * (N_SAMPLES // 3)
    path.write_bytes(df.to_csv(index=False).encode(encoding))
    return path


def gdsc_long() -> pd.DataFrame:
    rng = _rng()
    rows = []
    for s in IDS:
        for d in range(N_PERTS):
            rows.append((s, f"DRUG{d}", float(rng.normal(1, 2)), float(rng.uniform(0.2, 1.0))))
    df = pd.DataFrame(rows, columns=["SANGER_MODEL_ID", "DRUG_NAME", "LN_IC50", "AUC"])
    df["DRUG_ID"] = df["DRUG_NAME"].str[4:].astype(int) + 1000
    return df


@dataclass
class Case:
    """One input and its right outcome."""

    name: str
    build: Callable[[Path], dict[str, Any]]  # -> keyword arguments of the loader
    expect: str  # "ok" or "error"
    blame: str | None = None  # key of the built arguments whose file the error must name
    says: tuple[str, ...] = ()  # words the error must contain (case-insensitive)
    not_says: tuple[str, ...] = ()  # words it must not contain
    check: Callable[[Any], bool] | None = None  # for "ok": is the result right?
    loader: str = "load_screen"  # or "load_expression", "load_responses", "load_samples"
    new_api: bool = False  # uses keywords that did not exist before issue 9
    tags: list[str] = field(default_factory=list)


def _screen(d: Path, expr: pd.DataFrame | None = None, **kw) -> dict[str, Any]:
    args = {
        "expression": write_wide(d / "expr.csv", log_expression() if expr is None else expr),
        "responses": write_wide(d / "effect.csv", gene_effect(), "ModelID"),
    }
    args.update(kw)
    return args


def _tpm_generic(d: Path) -> dict[str, Any]:
    df = tpm_expression()
    df.columns = GENES
    return _screen(d, df)


def _tpm_depmap_flag(d: Path) -> dict[str, Any]:
    return {**_screen(d, tpm_expression()), "log_transform": True}


def _centred(d: Path) -> dict[str, Any]:
    df = log_expression()
    return _screen(d, (df - df.mean()) / df.std())


def _unit(d: Path) -> dict[str, Any]:
    df = log_expression()
    return _screen(d, df / (df.max().max() + 1))


def _organoids(d: Path) -> dict[str, Any]:
    df = log_expression([f"ORG-{i}" for i in range(N_SAMPLES)])
    return {"path": write_wide(d / "organoids.csv", df)}


def _header_only(d: Path) -> dict[str, Any]:
    args = _screen(d)
    (d / "expr.csv").write_text("," + ",".join(GENE_LABELS) + "\n")
    return args


def _constant(d: Path) -> dict[str, Any]:
    return _screen(d, log_expression() * 0 + 3.0)


def _all_nan_responses(d: Path) -> dict[str, Any]:
    args = _screen(d)
    write_wide(d / "effect.csv", gene_effect() * np.nan, "ModelID")
    return args


def _models_no_lineage(d: Path) -> dict[str, Any]:
    return _screen(d, samples=write_models(d / "Model.csv", lineage=False))


def _inf(d: Path) -> dict[str, Any]:
    df = log_expression()
    df.iloc[3, 5] = np.inf
    return _screen(d, df)


def _nested_parquet(d: Path) -> dict[str, Any]:
    args = _screen(d)
    df = pd.DataFrame({"sample": IDS, "G0": [[1.0, 2.0]] * N_SAMPLES, "G1": np.arange(30.0)})
    df.to_parquet(d / "expr.parquet")
    args["expression"] = d / "expr.parquet"
    return args


def _latin1(d: Path) -> dict[str, Any]:
    return _screen(d, samples=write_models(d / "Model.csv", encoding="latin-1"))


def _latin1_given(d: Path) -> dict[str, Any]:
    return {**_latin1(d), "encoding": "latin-1"}


def _gzip_no_suffix(d: Path) -> dict[str, Any]:
    args = _screen(d)
    data = (d / "expr.csv").read_bytes()
    (d / "expr.csv").write_bytes(gzip.compress(data))
    return args


def _huge_header(d: Path) -> dict[str, Any]:
    args = _screen(d)
    name = "G" * (9 * 2**20)
    rows = [f"sample,{name},G2"] + [f"{s},{i % 7 + 0.5},{i % 5 + 0.25}" for i, s in enumerate(IDS)]
    (d / "expr.csv").write_text("\n".join(rows) + "\n")
    return args


def _spaces(d: Path) -> dict[str, Any]:
    args = _screen(d)
    df = log_expression()
    df.columns = GENES
    lines = ["sample " + " ".join(GENES)]
    lines += [
        s + " " + " ".join(f"{v:.3f}" for v in row)
        for s, row in zip(IDS, df.to_numpy(), strict=True)
    ]
    (d / "expr.csv").write_text("\n".join(lines) + "\n")
    return args


def _gdsc(d: Path, value: str | None) -> dict[str, Any]:
    args = _screen(d)
    gdsc_long().to_csv(d / "gdsc.csv", index=False)
    args["responses"] = d / "gdsc.csv"
    if value:
        args["value"] = value
    return args


def _long_custom(d: Path, dup: str | None = None) -> dict[str, Any]:
    args = _screen(d)
    df = gdsc_long()[["SANGER_MODEL_ID", "DRUG_NAME", "LN_IC50"]]
    df.columns = ["line", "cpd", "resp"]
    if dup:
        df = pd.concat([df, df.iloc[:3].assign(resp=df["resp"].iloc[:3] + 2.0)])
        args["duplicates"] = dup
    df.to_csv(d / "long.csv", index=False)
    args.update(
        responses=d / "long.csv",
        sample_column="line",
        perturbation_column="cpd",
        value_column="resp",
    )
    return args


def _gdsc_as_expression(d: Path) -> dict[str, Any]:
    args = _screen(d)
    gdsc_long().to_csv(d / "gdsc.csv", index=False)
    args["expression"] = d / "gdsc.csv"
    return args


def _models_as_responses(d: Path) -> dict[str, Any]:
    args = _screen(d)
    args["responses"] = write_models(d / "Model.csv")
    return args


def _bom_crlf(d: Path) -> dict[str, Any]:
    args = _screen(d)
    text = (d / "expr.csv").read_text().replace("\n", "\r\n")
    (d / "expr.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    return args


def _value_on_matrix(d: Path) -> dict[str, Any]:
    return {**_screen(d), "value": "AUC"}


def _missing_column(d: Path) -> dict[str, Any]:
    args = _long_custom(d)
    args["sample_column"] = "cell_line_id"
    return args


def _min_shared(d: Path) -> dict[str, Any]:
    return {**_screen(d), "min_shared_samples": N_SAMPLES + 5}


def _semicolon(d: Path) -> dict[str, Any]:
    args = _screen(d)
    (d / "expr.csv").write_text((d / "expr.csv").read_text().replace(",", ";"))
    return args


def _ragged(d: Path) -> dict[str, Any]:
    args = _screen(d)
    lines = (d / "expr.csv").read_text().splitlines()
    lines[4] += ",1.0,2.0"
    (d / "expr.csv").write_text("\n".join(lines) + "\n")
    return args


def _text_in_expression(d: Path) -> dict[str, Any]:
    df = log_expression().astype(object)
    df.iloc[2, 3] = "n/a?"
    return _screen(d, df)


def _is_screen(n_samples: int = N_SAMPLES) -> Callable[[Any], bool]:
    return lambda s: s.n_samples == n_samples and s.n_genes > 0


def _expr_unchanged_tpm(s) -> bool:
    return float(s.expression.max().max()) > 50  # linear values kept for the model's own log


def _gdsc_auc(s) -> bool:
    return float(s.responses.max().max()) <= 1.0 and float(s.responses.min().min()) >= 0.2 - 1e-6


def _gdsc_aac(s) -> bool:
    return float(s.responses.max().max()) <= 0.8 + 1e-6


def _median_ok(s) -> bool:
    return s.n_samples == N_SAMPLES and s.n_perturbations == N_PERTS


CASES = [
    Case("tpm_generic_matrix", _tpm_generic, "error", "expression", ("TPM", "--log-transform")),
    Case(
        "tpm_depmap_log_transform", _tpm_depmap_flag, "ok", check=_expr_unchanged_tpm, new_api=True
    ),
    Case(
        "tpm_depmap_no_flag",
        lambda d: _screen(d, tpm_expression()),
        "error",
        "expression",
        ("TPM",),
    ),
    Case("centred_expression", _centred, "ok", check=_is_screen()),
    Case("expression_in_0_1", _unit, "ok", check=_is_screen()),
    Case(
        "organoid_rows_depmap_layout",
        _organoids,
        "ok",
        loader="load_expression",
        check=lambda df: list(df.columns[:2]) == ["G0", "G1"] and df.index[0] == "ORG-0",
    ),
    Case("header_only_expression", _header_only, "error", "expression", ("no data rows",)),
    Case("constant_expression", _constant, "error", "expression", ("does not vary",)),
    Case(
        "all_nan_responses",
        _all_nan_responses,
        "error",
        "responses",
        ("no measured value",),
        ("sample ids",),
    ),
    Case(
        "model_csv_without_lineage",
        _models_no_lineage,
        "ok",
        check=_is_screen(),
    ),
    Case("infinite_expression", _inf, "error", "expression", ("infinite",)),
    Case("nested_parquet", _nested_parquet, "error", "expression", ("nested",)),
    Case("latin1_without_encoding", _latin1, "error", "samples", ("--encoding",)),
    Case("latin1_with_encoding", _latin1_given, "ok", check=_is_screen(), new_api=True),
    Case("gzip_without_gz_suffix", _gzip_no_suffix, "ok", check=_is_screen()),
    Case("header_over_8_mib", _huge_header, "ok", check=lambda s: s.n_genes == 2),
    Case("space_separated", _spaces, "error", "expression", ("spaces",)),
    Case("gdsc_value_auc", lambda d: _gdsc(d, "AUC"), "ok", check=_gdsc_auc, new_api=True),
    Case("gdsc_value_aac", lambda d: _gdsc(d, "AAC"), "ok", check=_gdsc_aac, new_api=True),
    Case(
        "gdsc_value_unknown",
        lambda d: _gdsc(d, "IC90"),
        "error",
        "responses",
        ("IC90",),
        new_api=True,
    ),
    Case("long_table_named_columns", _long_custom, "ok", check=_median_ok, new_api=True),
    Case(
        "long_table_duplicates_error",
        lambda d: _long_custom(d, "error"),
        "error",
        "responses",
        ("more than once", "--duplicates"),
        new_api=True,
    ),
    Case(
        "long_table_duplicates_median",
        lambda d: _long_custom(d, "median"),
        "ok",
        check=_median_ok,
        new_api=True,
    ),
    Case(
        "long_table_missing_column",
        _missing_column,
        "error",
        "responses",
        ("cell_line_id", "--sample-column"),
        new_api=True,
    ),
    Case(
        "min_shared_samples", _min_shared, "error", "responses", ("need at least 35",), new_api=True
    ),
    Case(
        "gdsc_file_as_expression",
        _gdsc_as_expression,
        "error",
        "expression",
        ("expression", "gdsc"),
    ),
    Case(
        "model_csv_as_responses", _models_as_responses, "error", "responses", ("responses", "model")
    ),
    Case("bom_and_crlf", _bom_crlf, "ok", check=_is_screen()),
    Case(
        "value_on_wide_matrix", _value_on_matrix, "error", "responses", ("--value",), new_api=True
    ),
    Case("semicolon_separated", _semicolon, "error", "expression", ("semicolon",)),
    Case("ragged_rows", _ragged, "error", "expression", ("fields",)),
    Case("text_in_expression", _text_in_expression, "error", "expression", ("non-numeric",)),
]


def run_case(case: Case, d: Path, module: Any) -> tuple[str, str]:
    """Run ``case`` with the loaders of ``module`` (leapscreen.data.loading); (outcome, detail)."""
    args = case.build(d)
    fn = getattr(module, case.loader)
    try:
        result = fn(**{k: (str(v) if isinstance(v, Path) else v) for k, v in args.items()})
    except Exception as exc:  # noqa: BLE001 - classifying every outcome is the point
        from leapscreen.errors import LeapscreenError

        text = str(exc)
        if not isinstance(exc, LeapscreenError):
            return "traceback", f"{type(exc).__name__}: {text[:200]}"
        if case.expect == "ok":
            return "misleading", f"unexpected error: {text[:200]}"
        lower = text.lower()
        blamed = case.blame is None or str(args[case.blame]) in text
        right = all(w.lower() in lower for w in case.says)
        wrong = any(w.lower() in lower for w in case.not_says)
        if blamed and right and not wrong:
            return "clean", text[:200]
        return "misleading", text[:200]
    if case.expect == "error":
        return "silent wrong", "loaded without an error"
    if case.check is not None and not case.check(result):
        return "silent wrong", "loaded, but the result is wrong"
    return "correct", ""
