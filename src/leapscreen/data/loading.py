"""Assemble a ScreenData from the files a user points at (expression, responses, sample metadata).

Each file's kind is sniffed by :func:`leapscreen.data.tables.read_any`. When the responses are keyed by
other IDs than the expression (e.g. GDSC's SANGER_MODEL_ID or cell-line names against DepMap ModelIDs)
and a DepMap Model.csv is given, response IDs are mapped to ModelIDs through it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from leapscreen.data.dataset import ScreenData
from leapscreen.data.ids import IdMapper
from leapscreen.data.tables import read_any
from leapscreen.errors import InputError

logger = logging.getLogger(__name__)

_EXPRESSION_KINDS = ("depmap_expression", "matrix")
_GENE_RESPONSE_KINDS = ("depmap_gene_effect", "depmap_gene_dependency")
_DRUG_RESPONSE_KINDS = ("gdsc_fitted", "ccle2012", "prism_secondary", "prism_primary")


def load_expression(path: str | Path) -> pd.DataFrame:
    """Expression (samples x genes) from a DepMap file, any wide matrix, or a saved dataset."""
    kind, obj = read_any(path)
    if kind == "dataset":
        return obj.expression
    if kind not in _EXPRESSION_KINDS:
        raise InputError(
            f"expected an expression matrix (samples x genes) but this looks like '{kind}'",
            path=path,
            fix="give the expression file (e.g. OmicsExpressionProteinCodingGenesTPMLogp1.csv)",
        )
    return obj


def load_screen(
    expression: str | Path,
    responses: str | Path,
    samples: str | Path | None = None,
    min_shared_samples: int = 10,
) -> ScreenData:
    """Read and align expression, responses and (optionally) sample metadata.

    Parameters
    ----------
    expression : path
        Samples x genes (DepMap wide/long layout, CSV/TSV/parquet matrix, .h5ad).
    responses : path
        DepMap CRISPRGeneEffect / CRISPRGeneDependency, GDSC fitted dose response, CCLE 2012, PRISM,
        a long (sample, perturbation, value) table or a wide matrix.
    samples : path, optional
        DepMap Model.csv or any table with a ``lineage`` column, indexed by sample ID.
    min_shared_samples : int
        Fewest samples with both expression and responses.

    Returns
    -------
    ScreenData
    """
    expr = load_expression(expression)
    kind, obj = read_any(responses)
    perturbations = None
    if kind in _GENE_RESPONSE_KINDS:
        resp, p_kind = obj, "gene"
    elif kind in _DRUG_RESPONSE_KINDS:
        (resp, perturbations), p_kind = obj, "drug"
    elif kind in ("long_table", "matrix"):
        resp, p_kind = obj, None
    elif kind == "dataset":
        resp, perturbations, p_kind = obj.responses, obj.perturbations, None
    else:
        raise InputError(
            f"expected responses (samples x perturbations) but this looks like '{kind}'",
            path=responses,
            fix="give CRISPRGeneEffect.csv, a GDSC fitted dose-response file, or a table of "
            "(sample, perturbation, value)",
        )
    meta = None
    if samples is not None:
        s_kind, meta = read_any(samples)
        if s_kind not in ("depmap_models", "samples"):
            raise InputError(
                f"expected sample metadata (e.g. DepMap Model.csv) but this looks like '{s_kind}'",
                path=samples,
                fix="give Model.csv or a table with a sample ID column and a 'lineage' column",
            )
        if s_kind == "depmap_models":
            shared = resp.index.intersection(expr.index)
            if len(shared) < 0.5 * len(resp.index):
                mapper = IdMapper.from_models(meta)
                ids = mapper.to_model_id(resp.index, kind="auto")
                report = ids.attrs.get("report", {})
                keep = ids.notna().to_numpy()
                resp = resp.loc[keep]
                resp.index = pd.Index(ids[keep].astype(str).to_numpy())
                resp = resp.groupby(level=0).mean()
                logger.info("mapped response IDs to ModelIDs through %s: %s", samples, report)
    return ScreenData(
        expr,
        resp,
        samples=meta,
        perturbations=perturbations,
        name=Path(responses).stem,
        paths={
            "expression": str(expression),
            "responses": str(responses),
            **({"samples": str(samples)} if samples else {}),
        },
        min_shared_samples=min_shared_samples,
        perturbation_kind=p_kind,
    )
