"""ScreenData: one object holding a perturbation screen and the expression of its samples.

A screen is four aligned tables:

* ``expression``: samples x genes, float32 (log scale as given by the reader);
* ``responses``: samples x perturbations, float32, NaN where a pair was not measured;
* ``samples``: metadata per sample, always with the columns ``lineage`` and ``source``;
* ``perturbations``: metadata per perturbation, always with the column ``kind`` ("gene", "drug" or
  "unknown").

Alignment keeps the samples that have expression and at least one measured response (unless
``keep_unlabelled=True``), drops perturbations that have no measured sample, and records every drop with
its reason in :attr:`ScreenData.dropped`, so that nothing disappears silently.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leapscreen.data._io import read_json_stamp
from leapscreen.errors import InputError

logger = logging.getLogger(__name__)

DATASET_FORMAT_VERSION = 1
_PARQUET_FILES = ("expression", "responses", "samples", "perturbations")


def _examples(values: Iterable[Any], n: int = 5) -> list[str]:
    out = []
    for i, value in enumerate(values):
        if i >= n:
            break
        out.append(str(value))
    return out


def _as_str_index(index: pd.Index) -> pd.Index:
    return pd.Index([str(v) for v in index], dtype=object)


class ScreenData:
    """Expression, responses and metadata of a screen, aligned on sample IDs.

    Parameters
    ----------
    expression : pandas.DataFrame
        Samples x genes. The index holds sample IDs, the columns gene symbols.
    responses : pandas.DataFrame, optional
        Samples x perturbations; NaN means not measured. Samples without expression are dropped.
    samples : pandas.DataFrame, optional
        Sample metadata indexed by sample ID (e.g. ``lineage``, ``source``, ``primary_disease``).
    perturbations : pandas.DataFrame, optional
        Perturbation metadata indexed by perturbation ID (``kind`` and optional descriptors).
    name : str
        A short name (used as the default ``source`` of samples).
    paths : dict of str to str, optional
        The files the tables came from (``expression``, ``responses``, ...), named in error messages.
    min_shared_samples : int
        Fewest samples that must have both expression and responses; fewer raises :class:`InputError`.
    keep_unlabelled : bool
        Keep samples with expression but no measured response (useful for pretraining).
    perturbation_kind : str, optional
        Value of ``kind`` for perturbations whose metadata does not give one.
    """

    def __init__(
        self,
        expression: pd.DataFrame,
        responses: pd.DataFrame | None = None,
        samples: pd.DataFrame | None = None,
        perturbations: pd.DataFrame | None = None,
        name: str = "screen",
        *,
        paths: dict[str, str] | None = None,
        min_shared_samples: int = 1,
        keep_unlabelled: bool = False,
        perturbation_kind: str | None = None,
    ) -> None:
        self.name = name
        self.paths = dict(paths or {})
        self.dropped: list[dict[str, Any]] = []
        expression = self._check_table(expression, "expression")
        expression = expression.astype(np.float32, copy=False)

        if responses is None:
            responses = pd.DataFrame(index=expression.index, dtype=np.float32)
            keep_unlabelled = True
        responses = self._check_table(responses, "responses").astype(np.float32, copy=False)

        # Samples: expression and responses must meet.
        shared = expression.index.intersection(responses.index, sort=False)
        only_resp = responses.index.difference(expression.index, sort=False)
        if len(only_resp):
            self._drop("samples", only_resp, "have responses but no expression")
        if responses.shape[1] > 0:
            labelled = responses.index[responses.notna().any(axis=1).to_numpy()]
            if not keep_unlabelled:
                no_resp = expression.index.difference(labelled, sort=False)
                if len(no_resp):
                    self._drop("samples", no_resp, "have expression but no measured response")
                keep = expression.index.intersection(labelled, sort=False)
            else:
                keep = expression.index
            n_shared = len(expression.index.intersection(labelled, sort=False))
            if n_shared < min_shared_samples:
                raise InputError(
                    f"only {n_shared} samples have both expression and responses "
                    f"(need at least {min_shared_samples}); expression has {len(expression)} samples "
                    f"(e.g. {_examples(expression.index, 3)}), responses {len(responses)} "
                    f"(e.g. {_examples(responses.index, 3)})",
                    path=self.paths.get("responses"),
                    fix="check that both files use the same sample IDs (e.g. DepMap ModelID); "
                    "map IDs through Model.csv if one file uses other names",
                )
        else:
            keep = expression.index
        del shared
        expression = expression.loc[keep]
        responses = responses.reindex(index=keep)

        # Perturbations with no measured sample left are useless.
        counts = responses.notna().sum(axis=0)
        empty = counts.index[counts.to_numpy() == 0]
        if len(empty):
            self._drop("perturbations", empty, "have no measured response in the kept samples")
            responses = responses.drop(columns=empty)

        self.expression: pd.DataFrame = expression
        self.responses: pd.DataFrame = responses
        self.samples: pd.DataFrame = self._align_samples(samples, keep)
        self.perturbations: pd.DataFrame = self._align_perturbations(
            perturbations, responses.columns, perturbation_kind
        )
        for entry in self.dropped:
            logger.info(
                "%s: dropped %d %s that %s", name, entry["n"], entry["what"], entry["reason"]
            )

    # ------------------------------------------------------------------ construction helpers
    def _check_table(self, table: pd.DataFrame, role: str) -> pd.DataFrame:
        path = self.paths.get(role)
        if not isinstance(table, pd.DataFrame):
            raise InputError(
                f"{role} must be a pandas DataFrame (samples x features), got {type(table).__name__}",
                path=path,
            )
        table = table.copy()
        table.index = _as_str_index(table.index)
        table.columns = _as_str_index(table.columns)
        dup = table.index[table.index.duplicated()]
        if len(dup):
            raise InputError(
                f"{len(dup)} duplicated sample IDs in the {role} table, e.g. {_examples(dup.unique())}",
                path=path,
                fix="keep one row per sample (average replicates or pick the default entry)",
            )
        dupc = table.columns[table.columns.duplicated()]
        if len(dupc):
            raise InputError(
                f"{len(dupc)} duplicated column names in the {role} table, "
                f"e.g. {_examples(dupc.unique())}",
                path=path,
                fix="make column names unique (e.g. resolve duplicated gene symbols)",
            )
        dtypes = table.dtypes
        non_numeric = [
            c
            for c, dt in zip(table.columns, dtypes, strict=True)
            if not pd.api.types.is_numeric_dtype(dt)
        ]
        if non_numeric:
            col = non_numeric[0]
            bad = pd.to_numeric(table[col], errors="coerce").isna() & table[col].notna()
            example = table[col][bad].iloc[0] if bad.any() else None
            raise InputError(
                f"{len(non_numeric)} non-numeric columns in the {role} table; "
                f"e.g. value {example!r}",
                path=path,
                column=col,
                fix="the table must hold numbers only (IDs as the index / first column)",
            )
        return table

    def _drop(self, what: str, ids: Sequence[Any], reason: str) -> None:
        self.dropped.append(
            {"what": what, "n": int(len(ids)), "reason": reason, "examples": _examples(ids)}
        )

    def _align_samples(self, samples: pd.DataFrame | None, keep: pd.Index) -> pd.DataFrame:
        if samples is None:
            meta = pd.DataFrame(index=keep)
        else:
            samples = samples.copy()
            samples.index = _as_str_index(samples.index)
            samples = samples[~samples.index.duplicated(keep="first")]
            missing = keep.difference(samples.index, sort=False)
            if len(missing):
                self._drop_info(
                    "samples", missing, "have no metadata row (lineage set to 'unknown')"
                )
            meta = samples.reindex(keep)
        meta.index.name = "sample_id"
        if "lineage" not in meta.columns:
            meta["lineage"] = "unknown"
        meta["lineage"] = meta["lineage"].astype(object).where(meta["lineage"].notna(), "unknown")
        meta["lineage"] = meta["lineage"].astype(str)
        if "source" not in meta.columns:
            meta["source"] = self.name
        meta["source"] = meta["source"].astype(object).where(meta["source"].notna(), self.name)
        meta["source"] = meta["source"].astype(str)
        return meta

    def _drop_info(self, what: str, ids: Sequence[Any], reason: str) -> None:
        # Not a drop: a fact worth reporting next to the drops.
        self.dropped.append(
            {"what": what, "n": int(len(ids)), "reason": reason, "examples": _examples(ids)}
        )

    def _align_perturbations(
        self, perturbations: pd.DataFrame | None, ids: pd.Index, kind: str | None
    ) -> pd.DataFrame:
        if perturbations is None:
            meta = pd.DataFrame(index=ids)
        else:
            perturbations = perturbations.copy()
            perturbations.index = _as_str_index(perturbations.index)
            perturbations = perturbations[~perturbations.index.duplicated(keep="first")]
            meta = perturbations.reindex(ids)
        meta.index.name = "perturbation_id"
        default = kind or "unknown"
        if "kind" not in meta.columns:
            meta["kind"] = default
        meta["kind"] = meta["kind"].astype(object).where(meta["kind"].notna(), default).astype(str)
        return meta

    @classmethod
    def _from_aligned(
        cls,
        expression: pd.DataFrame,
        responses: pd.DataFrame,
        samples: pd.DataFrame,
        perturbations: pd.DataFrame,
        name: str,
        dropped: list[dict[str, Any]],
        paths: dict[str, str],
    ) -> ScreenData:
        obj = cls.__new__(cls)
        obj.name = name
        obj.paths = dict(paths)
        obj.dropped = list(dropped)
        obj.expression = expression
        obj.responses = responses
        obj.samples = samples
        obj.perturbations = perturbations
        return obj

    # ------------------------------------------------------------------ properties
    @property
    def sample_ids(self) -> pd.Index:
        """Sample IDs, in row order."""
        return self.expression.index

    @property
    def genes(self) -> pd.Index:
        """Gene symbols, in column order of the expression."""
        return self.expression.columns

    @property
    def perturbation_ids(self) -> pd.Index:
        """Perturbation IDs, in column order of the responses."""
        return self.responses.columns

    @property
    def n_samples(self) -> int:
        return int(self.expression.shape[0])

    @property
    def n_genes(self) -> int:
        return int(self.expression.shape[1])

    @property
    def n_perturbations(self) -> int:
        return int(self.responses.shape[1])

    @property
    def lineages(self) -> pd.Series:
        """Lineage (tissue) of each sample."""
        return self.samples["lineage"]

    def __repr__(self) -> str:
        return (
            f"ScreenData(name={self.name!r}, samples={self.n_samples}, genes={self.n_genes}, "
            f"perturbations={self.n_perturbations}, "
            f"missing={self.missing_fraction():.1%})"
        )

    def missing_fraction(self) -> float:
        """Fraction of (sample, perturbation) pairs without a measured response."""
        if self.responses.size == 0:
            return 0.0
        return float(self.responses.isna().to_numpy().mean())

    # ------------------------------------------------------------------ subsetting
    def subset(
        self,
        samples: Iterable[str] | None = None,
        perturbations: Iterable[str] | None = None,
        lineages: Iterable[str] | None = None,
    ) -> ScreenData:
        """A new ScreenData restricted to some samples, perturbations and/or lineages.

        Parameters
        ----------
        samples : iterable of str, optional
            Sample IDs to keep (order kept as given). Unknown IDs raise :class:`InputError`.
        perturbations : iterable of str, optional
            Perturbation IDs to keep.
        lineages : iterable of str, optional
            Keep only samples of these lineages.

        Returns
        -------
        ScreenData
        """
        rows = self.sample_ids
        if samples is not None:
            wanted = pd.Index([str(s) for s in samples])
            unknown = wanted.difference(rows, sort=False)
            if len(unknown):
                raise InputError(
                    f"{len(unknown)} requested samples are not in the dataset, "
                    f"e.g. {_examples(unknown)}",
                    fix="use IDs from ScreenData.sample_ids",
                )
            rows = wanted
        if lineages is not None:
            wanted_lin = {str(x) for x in lineages}
            mask = self.samples.loc[rows, "lineage"].isin(wanted_lin).to_numpy()
            rows = rows[mask]
        cols = self.perturbation_ids
        if perturbations is not None:
            wanted_p = pd.Index([str(p) for p in perturbations])
            unknown = wanted_p.difference(cols, sort=False)
            if len(unknown):
                raise InputError(
                    f"{len(unknown)} requested perturbations are not in the dataset, "
                    f"e.g. {_examples(unknown)}",
                    fix="use IDs from ScreenData.perturbation_ids",
                )
            cols = wanted_p
        return ScreenData._from_aligned(
            self.expression.loc[rows],
            self.responses.loc[rows, cols],
            self.samples.loc[rows],
            self.perturbations.loc[cols],
            self.name,
            self.dropped,
            self.paths,
        )

    def filter_perturbations(self, min_labels: int) -> ScreenData:
        """Keep perturbations measured in at least ``min_labels`` samples; record the others."""
        counts = self.responses.notna().sum(axis=0)
        keep = counts.index[counts.to_numpy() >= min_labels]
        out = self.subset(perturbations=keep)
        removed = counts.index[counts.to_numpy() < min_labels]
        if len(removed):
            out.dropped = [*out.dropped]
            out._drop("perturbations", removed, f"have fewer than {min_labels} labelled samples")
        return out

    def with_genes(self, genes: Sequence[str]) -> ScreenData:
        """A new ScreenData restricted to (and ordered by) the given genes."""
        missing = pd.Index(genes).difference(self.genes, sort=False)
        if len(missing):
            raise InputError(
                f"{len(missing)} genes are not in the expression, e.g. {_examples(missing)}"
            )
        return ScreenData._from_aligned(
            self.expression.loc[:, list(genes)],
            self.responses,
            self.samples,
            self.perturbations,
            self.name,
            self.dropped,
            self.paths,
        )

    # ------------------------------------------------------------------ summary
    def summary(self) -> dict[str, Any]:
        """Shapes, missingness, lineages and drops, as a JSON-able dict."""
        labels = self.responses.notna().sum(axis=0)
        expr = self.expression.to_numpy()
        return {
            "name": self.name,
            "n_samples": self.n_samples,
            "n_genes": self.n_genes,
            "n_perturbations": self.n_perturbations,
            "perturbation_kinds": self.perturbations["kind"].value_counts().to_dict(),
            "missing_fraction": self.missing_fraction(),
            "labels_per_perturbation": {
                "min": int(labels.min()) if len(labels) else 0,
                "median": float(labels.median()) if len(labels) else 0.0,
                "max": int(labels.max()) if len(labels) else 0,
            },
            "expression_range": [float(np.nanmin(expr)), float(np.nanmax(expr))]
            if expr.size
            else [],
            "expression_missing_fraction": float(np.isnan(expr).mean()) if expr.size else 0.0,
            "lineages": self.samples["lineage"].value_counts().to_dict(),
            "sources": self.samples["source"].value_counts().to_dict(),
            "dropped": list(self.dropped),
        }

    # ------------------------------------------------------------------ AnnData
    def to_anndata(self):  # -> anndata.AnnData
        """AnnData with X = expression, obs = samples, var = genes, obsm['responses'] = responses.

        Perturbation metadata goes to ``uns['perturbations']`` (a DataFrame) and the drop report to
        ``uns['dropped']`` (JSON text).
        """
        import anndata as ad

        obs = self.samples.copy()
        for col in obs.columns:
            if obs[col].dtype == object:
                obs[col] = obs[col].astype(str)
        adata = ad.AnnData(
            X=self.expression.to_numpy(dtype=np.float32),
            obs=obs,
            var=pd.DataFrame(index=pd.Index(self.genes, name="gene")),
        )
        adata.obsm["responses"] = self.responses.copy()
        pert = self.perturbations.copy()
        for col in pert.columns:
            if pert[col].dtype == object:
                pert[col] = pert[col].astype(str)
        adata.uns["perturbations"] = pert
        adata.uns["leapscreen"] = json.dumps(
            {"format_version": DATASET_FORMAT_VERSION, "name": self.name, "dropped": self.dropped}
        )
        return adata

    @classmethod
    def from_anndata(cls, adata, name: str | None = None) -> ScreenData:  # adata: anndata.AnnData
        """Build from AnnData as written by :meth:`to_anndata` (responses optional)."""
        X = adata.X
        if hasattr(X, "toarray"):
            X = X.toarray()
        expression = pd.DataFrame(
            np.asarray(X, dtype=np.float32),
            index=_as_str_index(adata.obs_names),
            columns=_as_str_index(adata.var_names),
        )
        responses = None
        if "responses" in adata.obsm:
            resp = adata.obsm["responses"]
            if not isinstance(resp, pd.DataFrame):
                ids = adata.uns.get("perturbations", pd.DataFrame()).index
                resp = pd.DataFrame(np.asarray(resp), index=adata.obs_names, columns=ids)
            responses = resp
        pert = adata.uns.get("perturbations")
        info: dict[str, Any] = {}
        if "leapscreen" in adata.uns:
            info = json.loads(str(adata.uns["leapscreen"]))
        obj = cls(
            expression,
            responses,
            samples=adata.obs.copy(),
            perturbations=pert if isinstance(pert, pd.DataFrame) else None,
            name=name or info.get("name", "screen"),
            keep_unlabelled=True,
        )
        obj.dropped = list(info.get("dropped", [])) + obj.dropped
        return obj

    def write_h5ad(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write an .h5ad file atomically; refuses to overwrite unless ``overwrite``."""
        path = Path(path)
        _refuse_overwrite(path, overwrite)
        tmp = path.with_name(f".{path.name}.tmp")
        self.to_anndata().write_h5ad(tmp)
        tmp.replace(path)
        return path

    @classmethod
    def read_h5ad(cls, path: str | Path) -> ScreenData:
        """Read an .h5ad file written by :meth:`write_h5ad` (or any AnnData of expression)."""
        import anndata as ad

        path = Path(path)
        if not path.is_file():
            raise InputError("file not found", path=path, fix="check the path")
        try:
            adata = ad.read_h5ad(path)
        except Exception as exc:  # anndata raises many kinds
            raise InputError(
                f"cannot read as AnnData (.h5ad): {exc}", path=path, fix="give an .h5ad file"
            ) from exc
        obj = cls.from_anndata(adata)
        obj.paths = {"dataset": str(path)}
        return obj

    # ------------------------------------------------------------------ parquet directory
    def write_parquet(self, directory: str | Path, overwrite: bool = False) -> Path:
        """Write a directory of parquet tables + ``dataset.json``; refuses to overwrite."""
        directory = Path(directory)
        if directory.exists() and any(directory.iterdir()) and not overwrite:
            raise InputError(
                "directory exists and is not empty",
                path=directory,
                fix="choose a new directory or pass overwrite=True (--overwrite)",
            )
        directory.mkdir(parents=True, exist_ok=True)
        tables = {
            "expression": self.expression,
            "responses": self.responses,
            "samples": self.samples,
            "perturbations": self.perturbations,
        }
        for key, table in tables.items():
            out = table.copy()
            out.columns = [str(c) for c in out.columns]
            target = directory / f"{key}.parquet"
            tmp = directory / f".{key}.parquet.tmp"
            out.to_parquet(tmp)
            tmp.replace(target)
        meta = {
            "format": "leapscreen.ScreenData",
            "format_version": DATASET_FORMAT_VERSION,
            "name": self.name,
            "dropped": self.dropped,
        }
        tmp = directory / ".dataset.json.tmp"
        tmp.write_text(json.dumps(meta, indent=2))
        tmp.replace(directory / "dataset.json")
        return directory

    @classmethod
    def read_parquet(cls, directory: str | Path) -> ScreenData:
        """Read a directory written by :meth:`write_parquet`."""
        directory = Path(directory)
        writer = "ScreenData.write_parquet / leapscreen simulate"
        meta = read_json_stamp(directory / "dataset.json", DATASET_FORMAT_VERSION, writer)
        tables = {}
        for key in _PARQUET_FILES:
            p = directory / f"{key}.parquet"
            if not p.is_file():
                raise InputError(f"missing {key}.parquet", path=directory)
            tables[key] = pd.read_parquet(p)
        samples = tables["samples"]
        obj = cls._from_aligned(
            tables["expression"].astype(np.float32),
            tables["responses"].astype(np.float32),
            samples,
            tables["perturbations"],
            meta.get("name", "screen"),
            meta.get("dropped", []),
            {"dataset": str(directory)},
        )
        return obj


def _refuse_overwrite(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise InputError(
            "file exists; leapscreen never overwrites a file unless asked",
            path=path,
            fix="choose another path or pass overwrite=True (--overwrite)",
        )
