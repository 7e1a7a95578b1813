"""Writing a simulated screen and its truth in the formats leapscreen's readers take."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from leapscreen.data.dataset import ScreenData
from leapscreen.data.simulate._constants import SIMULATION_FORMAT_VERSION, TRUTH_DIR
from leapscreen.data.simulate.truth import SimulationTruth
from leapscreen.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["existing_outputs", "planned_files", "write_simulated"]

#: DepMap file names written by ``write_simulated(format="depmap")``.
DEPMAP_EXPRESSION_FILE = "OmicsExpressionProteinCodingGenesTPMLogp1.csv"
DEPMAP_GENE_EFFECT_FILE = "CRISPRGeneEffect.csv"
DEPMAP_DRUG_FILE = "DrugResponse.csv"
DEPMAP_MODEL_FILE = "Model.csv"
H5AD_FILE = "screen.h5ad"

# Fake Entrez IDs: distinct ranges for genes and perturbations.
_GENE_ENTREZ_BASE = 10_000_001
_PERT_ENTREZ_BASE = 20_000_001

#: files written under truth/ (read back by read_simulation_truth)
_TRUTH_FILES = (
    "coefficients.parquet",
    "perturbations.parquet",
    "programme_coefficients.parquet",
    "lineage_effects.parquet",
    "noise_free_responses.parquet",
    "programme_activity.parquet",
    "gene_modules.parquet",
    "genes.parquet",
    "expression_lineage_effects.parquet",
    "samples.parquet",
    "simulation.json",
)


def _csv_header(names: list[str]) -> str:
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(names)
    return buf.getvalue()


def _write_wide_csv(path: Path, first: str, ids: list[str], values: np.ndarray, columns: list[str]):
    """Write samples x features as CSV fast (pyarrow), NaN as empty fields; header unquoted."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    arrays = [pa.array(ids, type=pa.string())]
    arrays += [pa.array(values[:, j], from_pandas=True) for j in range(values.shape[1])]
    table = pa.Table.from_arrays(arrays, names=[f"c{j}" for j in range(len(arrays))])
    with open(path, "wb") as fh:
        fh.write(_csv_header([first, *columns]).encode())
        pacsv.write_csv(
            table,
            fh,
            write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed"),
        )


def _write_parquet(path: Path, df: pd.DataFrame) -> None:
    df.to_parquet(path)


def _depmap_writers(data: ScreenData, truth_kind: str) -> dict[str, Callable[[Path], None]]:
    genes = [str(g) for g in data.genes]
    gene_cols = [f"{g} ({_GENE_ENTREZ_BASE + j})" for j, g in enumerate(genes)]
    ids = [str(s) for s in data.sample_ids]
    perts = [str(p) for p in data.perturbation_ids]
    expr = data.expression.to_numpy(dtype=np.float32)
    resp = data.responses.to_numpy(dtype=np.float32)

    def expression(path: Path) -> None:
        _write_wide_csv(path, "", ids, expr, gene_cols)

    def responses(path: Path) -> None:
        if truth_kind == "gene":
            cols = [f"{p} ({_PERT_ENTREZ_BASE + j})" for j, p in enumerate(perts)]
        else:
            cols = perts
        _write_wide_csv(path, "ModelID", ids, resp, cols)

    def models(path: Path) -> None:
        meta = data.samples
        table = pd.DataFrame(
            {
                "ModelID": ids,
                "CellLineName": [f"SIMCELL{i + 1}" for i in range(len(ids))],
                "OncotreeLineage": meta["lineage"].to_numpy(),
                "OncotreePrimaryDisease": meta["primary_disease"].to_numpy()
                if "primary_disease" in meta
                else "unknown",
            }
        )
        table.to_csv(path, index=False)

    resp_file = DEPMAP_GENE_EFFECT_FILE if truth_kind == "gene" else DEPMAP_DRUG_FILE
    return {DEPMAP_EXPRESSION_FILE: expression, resp_file: responses, DEPMAP_MODEL_FILE: models}


def _truth_writers(truth: SimulationTruth) -> dict[str, Callable[[Path], None]]:
    perts = truth.perturbations.astype(str)

    def long_nonzero(frame: pd.DataFrame, what: str, value: str) -> pd.DataFrame:
        arr = frame.to_numpy()
        r, c = np.nonzero(arr)
        order = np.lexsort((r, c))
        r, c = r[order], c[order]
        return pd.DataFrame(
            {
                "perturbation": frame.columns[c].astype(str),
                what: frame.index[r].astype(str),
                value: arr[r, c],
            }
        )

    pert_table = pd.DataFrame(
        {
            "perturbation": perts,
            "intercept": truth.intercept.to_numpy(),
            "signal_sd": truth.signal_sd.to_numpy(),
            "noise_sd": truth.noise_sd.to_numpy(),
            "common_essential": truth.common_essential.to_numpy(bool),
            "null": truth.null.to_numpy(bool),
            "n_driver_genes": np.diff(truth.coef.indptr),
        }
    )
    w = truth.programme_loadings.tocoo()
    modules = pd.DataFrame(
        {
            "programme": truth.programmes[w.row].astype(str),
            "gene": truth.genes[w.col].astype(str),
            "loading": w.data.astype(np.float64),
        }
    )
    genes = pd.DataFrame(
        {
            "gene": truth.genes.astype(str),
            "mean": truth.gene_mean.to_numpy(),
            "noise_sd": truth.gene_noise_sd.to_numpy(),
        }
    )
    samples = pd.DataFrame(
        {"sample_id": truth.sample_lineage.index.astype(str), "lineage": truth.sample_lineage}
    ).reset_index(drop=True)
    noise_free = truth.noise_free.copy()
    noise_free.index = noise_free.index.astype(str).rename("sample_id")
    activity = truth.programme_activity.copy()
    activity.index = activity.index.astype(str).rename("sample_id")
    lam = truth.expression_lineage_effects.T.copy()  # genes x lineages
    lam.index = lam.index.astype(str).rename("gene")
    meta = {
        "format": "leapscreen.SimulationTruth",
        "format_version": SIMULATION_FORMAT_VERSION,
        "params": truth.params,
        "lineages": [str(x) for x in truth.lineages],
        "programmes": [str(x) for x in truth.programmes],
    }

    def js(path: Path) -> None:
        path.write_text(json.dumps(meta, indent=2))

    def pq(df: pd.DataFrame) -> Callable[[Path], None]:
        return lambda path: _write_parquet(path, df)

    t = TRUTH_DIR
    return {
        f"{t}/coefficients.parquet": pq(truth.coefficients_long()),
        f"{t}/perturbations.parquet": pq(pert_table),
        f"{t}/programme_coefficients.parquet": pq(
            long_nonzero(truth.programme_coef, "programme", "coefficient")
        ),
        f"{t}/lineage_effects.parquet": pq(long_nonzero(truth.lineage_coef, "lineage", "effect")),
        f"{t}/noise_free_responses.parquet": pq(noise_free),
        f"{t}/programme_activity.parquet": pq(activity),
        f"{t}/gene_modules.parquet": pq(modules),
        f"{t}/genes.parquet": pq(genes),
        f"{t}/expression_lineage_effects.parquet": pq(lam),
        f"{t}/samples.parquet": pq(samples),
        f"{t}/simulation.json": js,
    }


def _atomic(path: Path, writer: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        writer(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def planned_files(format: str, kind: str) -> list[str]:
    """Files (relative to the output directory) that :func:`write_simulated` writes.

    For ``format="parquet"`` the data files are those of :meth:`ScreenData.write_parquet` and are
    not listed; the truth files always are.
    """
    files = []
    if format == "depmap":
        resp = DEPMAP_GENE_EFFECT_FILE if kind == "gene" else DEPMAP_DRUG_FILE
        files += [DEPMAP_EXPRESSION_FILE, resp, DEPMAP_MODEL_FILE]
    elif format == "h5ad":
        files.append(H5AD_FILE)
    return files + [f"{TRUTH_DIR}/{name}" for name in _TRUTH_FILES]


def existing_outputs(out_dir: str | os.PathLike, format: str, kind: str) -> list[str]:
    """The files of :func:`planned_files` that already exist in ``out_dir``."""
    out = Path(out_dir)
    return [rel for rel in planned_files(format, kind) if (out / rel).exists()]


def write_simulated(
    data: ScreenData,
    truth: SimulationTruth,
    out_dir: str | os.PathLike,
    format: Literal["depmap", "parquet", "h5ad"] = "depmap",
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write a simulated screen and its ground truth in a format leapscreen's readers take.

    Layout of ``out_dir``:

    * ``format="depmap"``: ``OmicsExpressionProteinCodingGenesTPMLogp1.csv`` (first column the
      sample IDs, unnamed; gene columns ``SYMBOL (ENTREZ)`` with fake Entrez IDs),
      ``CRISPRGeneEffect.csv`` (first column ``ModelID``, same column convention; for drugs
      ``DrugResponse.csv`` with plain perturbation IDs), ``Model.csv`` (``ModelID``,
      ``CellLineName``, ``OncotreeLineage``, ``OncotreePrimaryDisease``); missing values are empty
      fields;
    * ``format="parquet"``: the directory of :meth:`ScreenData.write_parquet` (read it back with
      :meth:`ScreenData.read_parquet` on ``out_dir``);
    * ``format="h5ad"``: ``screen.h5ad`` (:meth:`ScreenData.write_h5ad`);
    * always ``truth/``: ``coefficients.parquet`` (perturbation, gene, coefficient),
      ``noise_free_responses.parquet`` (samples x perturbations), ``perturbations.parquet``
      (intercept, signal_sd, noise_sd, common_essential, null, n_driver_genes),
      ``programme_coefficients.parquet``, ``lineage_effects.parquet``,
      ``programme_activity.parquet``, ``gene_modules.parquet``, ``genes.parquet``,
      ``expression_lineage_effects.parquet``, ``samples.parquet`` and ``simulation.json``;
      :func:`read_simulation_truth` reads them back.

    Every file is written to a temporary name and moved into place (:func:`os.replace`). Existing
    files are checked before anything is written.

    Parameters
    ----------
    data, truth
        The output of :func:`simulate_screen`.
    out_dir : str or PathLike
        Destination directory (created if needed).
    format : {"depmap", "parquet", "h5ad"}
        Format of the screen data.
    overwrite : bool
        Replace existing files; without it an existing file is an :class:`InputError`.

    Returns
    -------
    dict of str to Path
        Relative name -> path of every file written.

    Raises
    ------
    InputError
        Unknown format, ``out_dir`` is a file, or a file exists and ``overwrite`` is False.
    """
    out = Path(out_dir)
    if format not in ("depmap", "parquet", "h5ad"):
        raise InputError(
            f"unknown format {format!r}; expected 'depmap', 'parquet' or 'h5ad'",
            path=out,
            fix="pass format='depmap', 'parquet' or 'h5ad' (--format on the command line)",
        )
    if out.exists() and not out.is_dir():
        raise InputError(
            "exists and is not a directory", path=out, fix="choose a directory path for the output"
        )
    kind = str(truth.params.get("kind", "gene"))
    writers: dict[str, Callable[[Path], None]] = {}
    staged: Path | None = None
    out.mkdir(parents=True, exist_ok=True)
    try:
        if format == "depmap":
            writers.update(_depmap_writers(data, kind))
        elif format == "h5ad":
            writers[H5AD_FILE] = lambda path: data.write_h5ad(path, overwrite=True)
        else:  # parquet: stage the directory, then move its files in place
            staged = Path(tempfile.mkdtemp(dir=out, prefix=".parquet-"))
            data.write_parquet(staged, overwrite=True)
            for item in sorted(staged.iterdir()):
                writers[item.name] = _mover(item)
        writers.update(_truth_writers(truth))
        existing = [rel for rel in writers if (out / rel).exists()]
        if existing and not overwrite:
            raise InputError(
                f"refusing to overwrite {len(existing)} existing file(s): "
                + ", ".join(existing[:5])
                + (" ..." if len(existing) > 5 else ""),
                path=out / existing[0],
                fix="pass overwrite=True (--overwrite) or choose another output directory",
            )
        written: dict[str, Path] = {}
        for rel, writer in writers.items():
            target = out / rel
            if target.is_dir():
                shutil.rmtree(target)
            _atomic(target, writer)
            written[rel] = target
            logger.debug("wrote %s", target)
        logger.info("wrote %d files to %s", len(written), out)
        return written
    finally:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)


def _mover(source: Path) -> Callable[[Path], None]:
    def move(tmp: Path) -> None:
        os.replace(source, tmp)

    return move
