"""Gene sets: MSigDB GMT text files, the MSigDB JSON bundle, and gene x set membership matrices."""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from leapscreen.data._io import check_exists, format_examples
from leapscreen.errors import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "filter_gene_sets",
    "gene_set_matrix",
    "read_descriptor_table",
    "read_gene_list",
    "read_gene_sets",
    "read_gmt",
    "read_msigdb_json",
]


def _open(path: Path):
    from leapscreen.data._io import is_gzip

    if path.name.lower().endswith(".gz") or is_gzip(path):
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")  # noqa: SIM115


def _dedupe(genes: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(g for g in (str(x).strip() for x in genes) if g))


def read_gmt(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read a GMT file: one set per line, ``name <TAB> description <TAB> gene <TAB> gene ...``.

    Genes are stripped and de-duplicated (first occurrence order kept); empty fields are skipped;
    blank lines and lines starting with ``#`` are ignored.

    Parameters
    ----------
    path : str or PathLike
        ``.gmt`` or ``.gmt.gz``.

    Returns
    -------
    dict of str to list of str
        Set name -> genes, in file order.

    Raises
    ------
    InputError
        A line without tabs (space-separated?), a set without genes, a repeated set name.
    """
    p = check_exists(path)
    sets: dict[str, list[str]] = {}
    try:
        with _open(p) as fh:
            for number, line in enumerate(fh, start=1):
                line = line.rstrip("\r\n")
                if not line.strip() or line.startswith("#"):
                    continue
                fields = line.split("\t")
                if len(fields) < 3:
                    raise InputError(
                        f"line {number} has {len(fields)} tab-separated field(s); a GMT line is "
                        "'name<TAB>description<TAB>gene<TAB>gene...'",
                        path=p,
                        fix="separate the fields with tabs (not spaces or commas)",
                    )
                name = fields[0].strip()
                genes = _dedupe(fields[2:])
                if not name:
                    raise InputError(f"line {number} has an empty set name", path=p)
                if not genes:
                    raise InputError(f"set '{name}' (line {number}) has no genes", path=p)
                if name in sets:
                    raise InputError(
                        f"set name '{name}' occurs twice (again at line {number})",
                        path=p,
                        fix="give each set a distinct name or merge the lines",
                    )
                sets[name] = genes
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise InputError(
            f"cannot be read as a GMT text file ({exc.__class__.__name__}: {exc})",
            path=p,
            fix="pass a UTF-8 .gmt file (optionally .gz)",
        ) from exc
    if not sets:
        raise InputError("no gene set found", path=p, fix="pass a non-empty .gmt file")
    return sets


def read_msigdb_json(
    path: str | os.PathLike, *, collection: str | Sequence[str] | None = None
) -> dict[str, list[str]]:
    """Read the MSigDB JSON bundle: ``{set_name: {"geneSymbols": [...], "collection": ...}}``.

    Parameters
    ----------
    path : str or PathLike
        e.g. ``msigdb.v2023.2.Hs.json`` (optionally ``.gz``).
    collection : str or sequence of str, optional
        Keep only sets of these collections (e.g. ``"C2:CGP"``); a set matches when its
        collection equals one given or starts with it followed by ``":"`` (``"C2"`` matches
        ``"C2:CGP"``).

    Returns
    -------
    dict of str to list of str
    """
    p = check_exists(path)
    try:
        with _open(p) as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise InputError(
            f"cannot be read as JSON ({exc.__class__.__name__}: {exc})",
            path=p,
            fix="pass the MSigDB JSON bundle (e.g. msigdb.v2023.2.Hs.json)",
        ) from exc
    if not isinstance(data, Mapping):
        raise InputError(
            "the JSON is not an object of gene sets", path=p, fix="pass the MSigDB JSON bundle"
        )
    wanted = (
        None
        if collection is None
        else [collection]
        if isinstance(collection, str)
        else list(collection)
    )
    sets: dict[str, list[str]] = {}
    for name, entry in data.items():
        if not isinstance(entry, Mapping) or "geneSymbols" not in entry:
            raise InputError(
                f"entry '{name}' has no 'geneSymbols' list; this is not an MSigDB JSON bundle",
                path=p,
                fix="pass the MSigDB JSON bundle, or a .gmt file",
            )
        if wanted is not None:
            coll = str(entry.get("collection", ""))
            if not any(coll == w or coll.startswith(f"{w}:") for w in wanted):
                continue
        genes = _dedupe(entry["geneSymbols"])
        if genes:
            sets[str(name)] = genes
    if not sets:
        raise InputError(
            "no gene set found" + (f" in collection(s) {wanted}" if wanted else ""),
            path=p,
            fix="check the collection name (e.g. 'C2:CGP', 'H')",
        )
    return sets


def read_gene_sets(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read gene sets from a ``.gmt`` or MSigDB ``.json`` file (chosen by suffix)."""
    name = Path(path).name.lower().removesuffix(".gz")
    if name.endswith(".json"):
        return read_msigdb_json(path)
    return read_gmt(path)


_GENE_COLUMNS = ("gene", "genes", "symbol", "gene_symbol", "hugo_symbol", "gene_name")


def read_gene_list(path: str | os.PathLike, *, encoding: str | None = None) -> list[str]:
    """Read a list of genes: one per line, or a column of a CSV/TSV table.

    A plain list has one gene per line (blank lines and lines starting with ``#`` skipped). A
    table (its first line holds a ``,`` or tab) takes the column named ``gene`` / ``symbol`` /
    ``gene_symbol`` / ``hugo_symbol`` / ``gene_name`` (any case), else its first column, and its
    first line is the header. DepMap labels ``SYMBOL (ENTREZ)`` become ``SYMBOL``. Repeats are
    dropped (first kept).

    Parameters
    ----------
    path : str or PathLike
        Text file, optionally gzip-compressed.
    encoding : str, optional
        Text encoding (default UTF-8).

    Returns
    -------
    list of str
        The genes in file order.

    Raises
    ------
    InputError
        Missing or unreadable file, or no gene in it.
    """
    import csv
    import io

    from leapscreen.data._io import head_lines, reading_encoding
    from leapscreen.data.depmap import split_gene_label

    p = check_exists(path)
    with reading_encoding(encoding):
        lines = head_lines(p, n_lines=10**9)
    text = "".join(lines)
    first = lines[0] if lines else ""
    delim = "\t" if "\t" in first else ("," if "," in first else None)
    try:
        rows = [r for r in csv.reader(io.StringIO(text), delimiter=delim or ",") if r]
    except csv.Error as exc:
        raise InputError(f"cannot be read as a gene list ({exc})", path=p) from exc
    rows = [r for r in rows if r[0].strip() and not r[0].strip().startswith("#")]
    if delim is None:
        genes = [r[0].strip() for r in rows]
        if genes and genes[0].lower() in _GENE_COLUMNS:  # a one-column table with its header
            genes = genes[1:]
    else:
        header = [h.strip() for h in rows[0]] if rows else []
        lower = [h.lower() for h in header]
        col = next((lower.index(c) for c in _GENE_COLUMNS if c in lower), 0)
        genes = [r[col].strip() for r in rows[1:] if len(r) > col]
    genes = _dedupe(split_gene_label(g)[0] for g in genes if g)
    if not genes:
        raise InputError(
            "no gene found in the gene list",
            path=p,
            fix="write one gene symbol per line, or a table with a 'gene' column",
        )
    return genes


def filter_gene_sets(
    sets: Mapping[str, Sequence[str]],
    genes: Iterable[str],
    *,
    min_size: int = 1,
    max_size: int | None = None,
) -> dict[str, list[str]]:
    """Restrict each set to ``genes`` and keep the sets whose restricted size is in range.

    Returns
    -------
    dict of str to list of str
        The kept sets, in input order, each holding only genes of ``genes``.
    """
    universe = set(genes)
    out: dict[str, list[str]] = {}
    for name, members in sets.items():
        kept = [g for g in members if g in universe]
        if len(kept) >= min_size and (max_size is None or len(kept) <= max_size):
            out[name] = kept
    logger.info("%d of %d gene sets kept (size %s..%s)", len(out), len(sets), min_size, max_size)
    return out


def gene_set_matrix(
    sets: Mapping[str, Sequence[str]],
    genes: Sequence[str],
    *,
    as_frame: bool = False,
    dtype: type = np.float32,
) -> sp.csr_matrix | pd.DataFrame:
    """Membership matrix: ``M[i, j] = 1`` when ``genes[i]`` belongs to set ``j``.

    Parameters
    ----------
    sets : mapping of str to sequence of str
        Set name -> genes (e.g. from :func:`read_gmt`).
    genes : sequence of str
        Row order. Set members that are not in ``genes`` are ignored; a repeated gene is an error.
    as_frame : bool
        Return a dense DataFrame (genes x set names) instead of a CSR matrix.
    dtype : numpy dtype
        Value type.

    Returns
    -------
    scipy.sparse.csr_matrix or pandas.DataFrame
        Shape ``(len(genes), len(sets))``; columns in the order of ``sets``.
    """
    genes = list(genes)
    row_of = {g: i for i, g in enumerate(genes)}
    if len(row_of) != len(genes):
        dup = pd.Index(genes)[pd.Index(genes).duplicated()].unique()
        raise InputError(f"genes occur more than once: {format_examples(dup)}")
    rows: list[int] = []
    cols: list[int] = []
    for j, members in enumerate(sets.values()):
        idx = {row_of[g] for g in members if g in row_of}
        rows.extend(sorted(idx))
        cols.extend([j] * len(idx))
    data = np.ones(len(rows), dtype=dtype)
    mat = sp.csr_matrix((data, (rows, cols)), shape=(len(genes), len(sets)), dtype=dtype)
    if as_frame:
        return pd.DataFrame(mat.toarray(), index=pd.Index(genes), columns=pd.Index(list(sets)))
    return mat


def read_descriptor_table(
    path: str | os.PathLike, *, index_col: str | int | None = None
) -> pd.DataFrame:
    """Read perturbation descriptors: one row per perturbation ID, numeric columns.

    For pan-perturbation heads (``descriptors=``): gene embeddings, drug fingerprints, target
    profiles, ... Descriptors are looked up by perturbation ID, else by symbol (``"A1BG (1)"``
    matches a row ``"A1BG"``).

    Parameters
    ----------
    path : str or PathLike
        CSV / TSV / parquet (text optionally ``.gz``); the first column (or ``index_col``) holds
        the perturbation IDs, every other column is a number.
    index_col : str or int, optional
        The ID column (default the first).

    Returns
    -------
    pandas.DataFrame
        float64, perturbation ID (str) x descriptor columns.

    Raises
    ------
    InputError
        Missing or unreadable file, no descriptor column, a non-numeric value (naming column and
        row), a missing or infinite value, repeated or empty IDs.
    """
    from leapscreen.data._io import read_table

    p = check_exists(path)
    frame = read_table(
        p,
        index_col=0 if index_col is None else index_col,
        expected="matrix",
        min_columns=2,
        what="descriptor table",
        id_what="perturbation IDs",
    )
    if frame.shape[1] == 0 or frame.shape[0] == 0:
        raise InputError(
            "the descriptor table has no descriptor column or no row",
            path=p,
            fix="write one row per perturbation: ID, then numeric columns",
        )
    values = frame.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise InputError(
            f"{int(bad.sum())} missing or infinite value(s), first in row '{frame.index[r]}'",
            path=p,
            column=str(frame.columns[c]),
            fix="fill them in, or drop those perturbations (pan heads then learn an embedding "
            "for them)",
        )
    out = pd.DataFrame(
        values,
        index=pd.Index([str(i) for i in frame.index]),
        columns=[str(c) for c in frame.columns],
    )
    out.index.name = frame.index.name
    return out
