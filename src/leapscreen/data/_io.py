"""Low-level table reading and atomic writing shared by the readers of ``leapscreen.data``.

Every reader of a user file goes through :func:`read_table`, so that each kind of bad input is
reported the same way: an :class:`~leapscreen.errors.InputError` that names the file, the column,
what was expected and what to do.
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import gzip
import io
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from leapscreen.errors import InputError
from leapscreen.persist.atomic import refuse_existing

logger = logging.getLogger(__name__)

__all__ = [
    "check_log_scale",
    "is_gzip",
    "reading_encoding",
    "check_numeric",
    "check_unique_index",
    "check_exists",
    "check_header_unique",
    "frame_to_matrix",
    "format_examples",
    "head_lines",
    "read_header",
    "read_table",
    "require_columns",
    "sniff_delimiter",
    "table_format",
    "write_atomic",
]

Expected = Literal["table", "matrix", "log_expression"]

PARQUET_SUFFIXES = (".parquet", ".pq")
#: Largest value of log2(TPM + 1) above which an expression matrix is taken for linear TPM.
LOG_MAX = 50.0
#: Skewness above which non-negative expression is taken for linear TPM (log2 data: about 0.6).
LOG_MAX_SKEW = 10.0
_HEADER_CAP = 8 * 1024 * 1024  # bytes read at most to sniff the delimiter (after the header)
_HEADER_LINE_CAP = 512 * 1024 * 1024  # longest header line read (a 20k-gene header: ~0.4 MiB)
_GZIP_MAGIC = b"\x1f\x8b"
csv.field_size_limit(max(csv.field_size_limit(), _HEADER_LINE_CAP))  # a header field may be long
_ENCODING: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "leapscreen_encoding", default=None
)


@contextlib.contextmanager
def reading_encoding(encoding: str | None) -> Iterator[None]:
    """Read text files with ``encoding`` (e.g. ``"latin-1"``) inside the ``with`` block.

    ``None`` keeps the default (UTF-8, a byte-order mark skipped). Every reader of
    ``leapscreen.data`` reads text through :func:`read_table` / :func:`head_lines`, so one context
    covers them all without an ``encoding`` argument on each reader.

    Raises
    ------
    InputError
        An encoding Python does not know.
    """
    if encoding is not None:
        import codecs

        try:
            codecs.lookup(encoding)
        except LookupError as exc:
            raise InputError(
                f"unknown text encoding {encoding!r}",
                fix="use e.g. --encoding utf-8, latin-1 or cp1252",
            ) from exc
    token = _ENCODING.set(encoding)
    try:
        yield
    finally:
        _ENCODING.reset(token)


def _encoding() -> str:
    enc = _ENCODING.get()
    return "utf-8-sig" if enc is None or enc.lower().replace("_", "-") in ("utf-8", "utf8") else enc


def is_gzip(path: str | os.PathLike) -> bool:
    """Whether the file starts with the gzip magic bytes (whatever its name)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == _GZIP_MAGIC
    except OSError:
        return False


def _decode_error(path: Path, exc: Exception) -> InputError:
    enc = _ENCODING.get()
    if isinstance(exc, UnicodeDecodeError):
        return InputError(
            f"is not valid {enc or 'UTF-8'} text (byte {exc.object[exc.start : exc.start + 1]!r} "
            f"at position {exc.start})",
            path=path,
            fix="pass the file's encoding, e.g. --encoding latin-1 (encoding='latin-1' in "
            "Python), or re-save the file as UTF-8",
        )
    return InputError(
        f"cannot be read as text ({exc.__class__.__name__}: {exc})",
        path=path,
        fix="pass a CSV/TSV text file (optionally gzip-compressed) or a parquet file",
    )


_UNNAMED = ("Unnamed: 0", "")


def format_examples(values: Iterable[object], n: int = 5) -> str:
    """Join the first ``n`` values as ``'a', 'b', ...`` for error messages."""
    values = list(values)
    text = ", ".join(repr(str(v)) for v in values[:n])
    if len(values) > n:
        text += f", ... ({len(values)} in all)"
    return text


def check_exists(path: str | os.PathLike) -> Path:
    """Return ``path`` as a :class:`Path`, raising :class:`InputError` when it is not a file.

    Parameters
    ----------
    path : str or PathLike
        The file expected to exist.

    Returns
    -------
    Path
    """
    p = Path(path)
    if not p.exists():
        raise InputError(
            "file not found",
            path=p,
            fix="check the path (relative paths start from the current directory)",
        )
    if p.is_dir():
        raise InputError(
            "this is a directory, a file was expected",
            path=p,
            fix="give the path of a CSV, TSV or parquet file inside it",
        )
    return p


def table_format(path: str | os.PathLike) -> Literal["text", "parquet"]:
    """The storage format of ``path`` from its name: ``"text"`` (CSV/TSV, .gz) or ``"parquet"``.

    Raises
    ------
    InputError
        For spreadsheets and unknown suffixes.
    """
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith((".xlsx", ".xls")):
        raise InputError(
            "spreadsheet files are not read",
            path=path,
            fix="export the sheet as CSV (comma-separated) and pass that file",
        )
    # .csv, .tsv, .txt and anything else: a delimited text file (sniffed).
    return "text"


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz") or is_gzip(path):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=_encoding(), newline="")
    return open(path, encoding=_encoding(), newline="")  # noqa: SIM115


def head_lines(path: Path, n_lines: int = 6) -> list[str]:
    """The first lines of a text file, gzip-compressed or not.

    The header line is read whole (up to 512 MiB, beyond which it is an error); the lines after
    it at most 8 MiB in all (a line cut there is dropped).
    """
    lines: list[str] = []
    size = 0
    try:
        with _open_text(path) as fh:
            header = fh.readline(_HEADER_LINE_CAP)
            if header and len(header) >= _HEADER_LINE_CAP and not header.endswith(("\n", "\r")):
                raise InputError(
                    f"the header line is longer than {_HEADER_LINE_CAP // 2**20} MiB",
                    path=path,
                    fix="check that this is a delimited table with one header line; a matrix "
                    "with very many columns can be saved transposed or as parquet",
                )
            if header:
                lines.append(header)
            while len(lines) < n_lines and size < _HEADER_CAP:
                line = fh.readline(_HEADER_CAP - size)
                if not line:
                    break
                size += len(line)
                lines.append(line)
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile, LookupError) as exc:
        raise _decode_error(path, exc) from exc
    if len(lines) > 1 and not lines[-1].endswith(("\n", "\r")) and size >= _HEADER_CAP:
        lines.pop()  # truncated by the cap
    return lines


def sniff_delimiter(path: str | os.PathLike) -> str:
    """Guess the field delimiter of a text table among ``,`` tab ``;`` and ``|``.

    The delimiter that splits the first lines into the same, largest number of fields wins
    (quoted fields are honoured). A file with one column gives ``","``.

    Parameters
    ----------
    path : str or PathLike
        A CSV/TSV file, optionally gzip-compressed.

    Returns
    -------
    str
    """
    lines = head_lines(check_exists(path))
    text = "".join(lines)
    best, best_score = ",", (False, 1)
    for delim in (",", "\t", ";", "|"):
        try:
            rows = [r for r in csv.reader(io.StringIO(text), delimiter=delim) if r]
        except csv.Error:
            continue
        if not rows:
            continue
        counts = [len(r) for r in rows]
        consistent = len(set(counts)) == 1
        score = (consistent and counts[0] > 1, max(counts) if consistent else min(counts))
        if score > best_score:
            best, best_score = delim, score
    return best


def read_header(path: str | os.PathLike) -> list[str]:
    """The column names of a table without reading its body (parquet: from the schema)."""
    p = check_exists(path)
    if table_format(p) == "parquet":
        try:
            import pyarrow.parquet as pq

            schema = pq.read_schema(p)
        except Exception as exc:  # noqa: BLE001 - any pyarrow failure means "not parquet"
            raise InputError(
                f"cannot be read as parquet ({exc})",
                path=p,
                fix="pass a valid parquet file, or a CSV/TSV file with a .csv/.tsv name",
            ) from exc
        return [n for n in schema.names if n != "__index_level_0__"]
    lines = head_lines(p, n_lines=1)
    if not lines:
        return []
    delim = sniff_delimiter(p)
    return next(csv.reader(io.StringIO(lines[0]), delimiter=delim), [])


def require_columns(
    df: pd.DataFrame,
    columns: Iterable[str],
    path: str | os.PathLike | None,
    *,
    what: str = "table",
    fix: str | None = None,
) -> None:
    """Raise :class:`InputError` naming the first missing column and listing the columns found."""
    for col in columns:
        if col not in df.columns:
            raise InputError(
                f"the {what} has no column '{col}'; columns found: "
                f"{format_examples(df.columns, 12)}",
                path=path,
                column=col,
                fix=fix or f"add a column named '{col}' or check that this is the right file",
            )


def _single_column_error(path: Path, header: str, min_columns: int) -> InputError:
    tokens = header.split()
    hint = (
        " It looks separated by spaces."
        if len(tokens) >= min_columns
        else " Check the delimiter or the file."
    )
    return InputError(
        f"only one column was found (header {header[:80]!r}), expected at least "
        f"{min_columns} columns separated by ',' or tab.{hint}",
        path=path,
        fix="save the table as comma-separated (.csv) or tab-separated (.tsv) text",
    )


def _read_text(path: Path, *, min_columns: int, usecols=None) -> pd.DataFrame:
    lines = head_lines(path, n_lines=1)
    if not lines or not lines[0].strip():
        raise InputError("the file is empty", path=path, fix="pass a table with a header row")
    delim = sniff_delimiter(path)
    if delim not in (",", "\t"):
        name = {";": "';' (semicolon)", "|": "'|' (pipe)"}[delim]
        raise InputError(
            f"the fields are separated by {name}, expected ',' (CSV) or a tab (TSV)",
            path=path,
            fix="save the table as comma-separated CSV with '.' as the decimal mark, "
            "or as tab-separated TSV",
        )
    header = next(csv.reader(io.StringIO(lines[0]), delimiter=delim), [])
    if len(header) < min_columns:
        raise _single_column_error(path, lines[0].strip(), min_columns)
    try:
        df = pd.read_csv(
            path,
            sep=delim,
            low_memory=False,
            usecols=usecols,
            encoding=_encoding(),
            compression="gzip" if is_gzip(path) else "infer",
        )
    except pd.errors.EmptyDataError as exc:
        raise InputError(
            "the file has no columns", path=path, fix="pass a table with a header row"
        ) from exc
    except pd.errors.ParserError as exc:
        raise InputError(
            f"rows do not all have the same number of fields ({exc})".replace("\n", " "),
            path=path,
            fix="every row must have as many fields as the header; check quoting and delimiters",
        ) from exc
    except (UnicodeDecodeError, OSError, EOFError, LookupError) as exc:
        raise _decode_error(path, exc) from exc
    except (ValueError, OverflowError) as exc:  # e.g. usecols / dtype problems inside pandas
        raise InputError(
            f"cannot be parsed as a table ({exc.__class__.__name__}: {exc})".replace("\n", " "),
            path=path,
            fix="check the delimiter, the quoting and that every row has the header's fields",
        ) from exc
    if not isinstance(df.index, pd.RangeIndex):
        # R's write.table: the header has no field for the row names, pandas made them the index
        df = df.reset_index()
        df = df.rename(columns={df.columns[0]: _UNNAMED[0]})
        if df.columns.duplicated().any():  # not R's layout: a data row longer than the header
            raise InputError(
                f"rows do not all have the same number of fields: the header has {len(header)} "
                "but the first data row has more",
                path=path,
                fix="every row must have as many fields as the header; check quoting and "
                "delimiters",
            )
    return df


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise InputError(
            f"cannot be read as parquet ({exc.__class__.__name__}: {exc})",
            path=path,
            fix="pass a valid parquet file, or a CSV/TSV file with a .csv/.tsv name",
        ) from exc
    unnamed = df.index.name is None and df.index.nlevels == 1
    if unnamed and pd.api.types.is_integer_dtype(df.index.dtype):
        df = df.reset_index(drop=True)  # row numbers (e.g. after filtering), not IDs
    elif not isinstance(df.index, pd.RangeIndex) or not unnamed:
        df = df.reset_index()
        if unnamed:  # an index without a name holds the IDs, like an unnamed first CSV column
            df = df.rename(columns={df.columns[0]: _UNNAMED[0]})
    df.columns = [str(c) for c in df.columns]
    nested = [
        c
        for c in df.columns
        if df[c].dtype == object
        and df[c].map(lambda v: isinstance(v, list | tuple | dict | np.ndarray)).any()
    ]
    if nested:
        raise InputError(
            f"{len(nested)} column(s) hold nested values (lists, structs or maps), e.g. "
            f"{format_examples(nested, 3)}; a flat table of numbers or text was expected",
            path=path,
            column=nested[0],
            fix="flatten the table (one value per cell) before saving it as parquet",
        )
    return df


def _resolve_index_col(
    df: pd.DataFrame, index_col: str | int | Sequence[str], path: Path, what: str
) -> str:
    if isinstance(index_col, int):
        if index_col >= df.shape[1]:
            raise InputError(
                f"the {what} has {df.shape[1]} columns, no column number {index_col}", path=path
            )
        return str(df.columns[index_col])
    names = [index_col] if isinstance(index_col, str) else list(index_col)
    for name in names:
        if name in df.columns:
            return name
    if df.shape[1] and str(df.columns[0]) in _UNNAMED:
        return str(df.columns[0])
    wanted = " or ".join(f"'{n}'" for n in names)
    raise InputError(
        f"no ID column {wanted}; columns found: {format_examples(df.columns, 10)}",
        path=path,
        column=names[0],
        fix=f"name the ID column {wanted} (or leave the first column's name empty)",
    )


def check_unique_index(
    df: pd.DataFrame, path: str | os.PathLike | None, *, what: str = "sample IDs"
) -> None:
    """Raise :class:`InputError` when the index has empty or duplicated values (with examples)."""
    idx = df.index
    empty = pd.isna(idx) | (idx.astype(str).str.strip() == "")
    if empty.any():
        raise InputError(
            f"{int(empty.sum())} rows have an empty ID (first at row {int(np.argmax(empty)) + 1} "
            "of the data)",
            path=path,
            column=str(idx.name) if idx.name is not None else None,
            fix="give every row an ID or remove the rows without one",
        )
    dup = idx.duplicated(keep=False)
    if dup.any():
        names = pd.unique(idx[dup])
        raise InputError(
            f"{len(names)} {what} occur more than once: {format_examples(names)}",
            path=path,
            column=str(idx.name) if idx.name is not None else None,
            fix="keep one row per ID (average the repeats, or pick one) before reading",
        )


def check_numeric(
    df: pd.DataFrame, path: str | os.PathLike | None, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Convert ``columns`` (default: all) to numbers or raise naming column, row and value.

    Values that pandas reads as missing (empty, ``NA``, ``NaN``) stay NaN; any other
    non-numeric text is an error.

    Returns
    -------
    pandas.DataFrame
        ``df`` with the columns converted (a copy only when some column needed converting).
    """
    cols = list(df.columns) if columns is None else list(columns)
    bad_cols = [c for c in cols if not pd.api.types.is_numeric_dtype(df[c].dtype)]
    if not bad_cols:
        return df
    converted = {}
    for col in bad_cols:
        raw = df[col]
        try:
            num = pd.to_numeric(raw, errors="coerce")
        except (TypeError, ValueError):  # nested or otherwise unconvertible cells
            num = pd.Series(np.nan, index=raw.index)
        if pd.api.types.is_bool_dtype(raw.dtype):
            num = raw.astype(float)
        bad = num.isna() & raw.notna()
        if bad.any():
            row = raw.index[np.argmax(bad.to_numpy())]
            example = raw[bad].iloc[0]
            raise InputError(
                f"non-numeric value {str(example)!r} in row '{row}' ({int(bad.sum())} such "
                "values in this column); a numeric matrix was expected",
                path=path,
                column=str(col),
                fix="remove the text or replace it with an empty field / NA for a missing value; "
                "check that this column belongs to the matrix",
            )
        converted[col] = num
    out = df.copy()
    for col, num in converted.items():
        out[col] = num
    return out


def check_log_scale(
    values: pd.DataFrame | np.ndarray,
    path: str | os.PathLike | None,
    *,
    what: str = "expression",
) -> None:
    """Raise :class:`InputError` when expression looks linear (TPM) where log2(TPM+1) is expected.

    The rule: the largest value exceeds :data:`LOG_MAX` (50; log2(TPM+1) cannot exceed about
    19.9), or the values are non-negative with a skewness above :data:`LOG_MAX_SKEW` (10; the
    DepMap log2(TPM+1) matrix has about 0.6, its TPM about 87).
    """
    arr = np.asarray(values, dtype=np.float64).ravel()
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return
    if arr.size > 2_000_000:  # deterministic thinning, enough for a skewness
        arr = arr[:: arr.size // 1_000_000]
    vmax, vmin = float(arr.max()), float(arr.min())
    reason = None
    if vmax > LOG_MAX:
        reason = f"its largest value is {vmax:.4g} (> {LOG_MAX:g})"
    elif vmin >= 0 and arr.size > 2:
        sd = arr.std()
        skew = float(np.mean(((arr - arr.mean()) / sd) ** 3)) if sd > 0 else 0.0
        if skew > LOG_MAX_SKEW:
            reason = f"its values have a heavy right tail (skewness {skew:.3g} > {LOG_MAX_SKEW:g})"
    if reason:
        raise InputError(
            f"the {what} looks like TPM, not log2(TPM+1): {reason}",
            path=path,
            fix="pass log2(TPM+1) values (e.g. DepMap "
            "OmicsExpressionProteinCodingGenesTPMLogp1.csv), or fit with --log-transform "
            "(log_transform=True) so that the model logs the TPM itself, at fit and predict time",
        )


def read_table(
    path: str | os.PathLike,
    *,
    index_col: str | int | Sequence[str] | None = None,
    expected: Expected = "table",
    required: Sequence[str] = (),
    min_columns: int = 2,
    what: str | None = None,
    usecols: Sequence[str] | None = None,
    id_what: str = "sample IDs",
) -> pd.DataFrame:
    """Read a CSV / TSV / parquet table (optionally ``.gz``) with checks that explain bad input.

    Parameters
    ----------
    path : str or PathLike
        ``.csv``, ``.tsv``, ``.txt`` (delimiter sniffed: ``,`` or tab) or ``.parquet``; text
        files may be gzip-compressed (``.gz``).
    index_col : str, int, sequence of str or None
        The ID column. A sequence gives alternative names (the first present wins); an unnamed
        first column is accepted when none is present. For ``expected="matrix"`` the default is
        the first column.
    expected : {"table", "matrix", "log_expression"}
        ``"table"``: any columns. ``"matrix"``: every column but the ID is numeric; returned as
        float32 with unique string IDs. ``"log_expression"``: a matrix that must look like
        log2(TPM+1) (see :func:`check_log_scale`).
    required : sequence of str
        Columns that must be present.
    min_columns : int
        Fewer columns than this means a wrong delimiter.
    what : str, optional
        What the file is, for messages ("table", "expression matrix", ...).
    usecols : sequence of str, optional
        Read only these columns (they must be present).
    id_what : str
        What the row IDs are, for messages ("sample IDs", "genes").

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    InputError
        Missing file, wrong delimiter, missing ID / required column, non-numeric values in a
        matrix, duplicated IDs, un-logged expression.
    """
    p = check_exists(path)
    what = what or ("expression matrix" if expected == "log_expression" else expected)
    if table_format(p) == "parquet":
        df = _read_parquet(p)
        if df.shape[1] < min_columns:
            raise InputError(
                f"only {df.shape[1]} column(s), expected at least {min_columns}", path=p
            )
        if usecols is not None:
            require_columns(df, usecols, p, what=what)
            df = df[list(usecols)]
    else:
        if usecols is not None:
            require_columns(pd.DataFrame(columns=read_header(p)), usecols, p, what=what)
        df = _read_text(p, min_columns=min_columns, usecols=usecols)
        if usecols is not None:
            df = df[list(usecols)]
    df.columns = [str(c) for c in df.columns]
    if df.columns.duplicated().any():
        repeated = pd.unique(df.columns[df.columns.duplicated()])
        raise InputError(
            f"{len(repeated)} column names occur more than once: {format_examples(repeated)}",
            path=p,
            column=str(repeated[0]),
            fix="give every column a distinct name (merge or drop the repeats)",
        )
    require_columns(df, required, p, what=what)

    if expected == "table":
        if index_col is not None:
            col = _resolve_index_col(df, index_col, p, what)
            df = df.set_index(col)
        return df

    if usecols is None and table_format(p) == "text":
        check_header_unique(p)
    out = frame_to_matrix(df, p, index_col=index_col, what=what, id_what=id_what)
    if expected == "log_expression":
        check_log_scale(out.to_numpy(), p)
    return out


def check_header_unique(path: str | os.PathLike) -> None:
    """Raise :class:`InputError` when a text table repeats a column name (pandas renames them)."""
    header = pd.Index(read_header(path))
    repeated = pd.unique(header[header.duplicated()])
    if len(repeated):
        raise InputError(
            f"{len(repeated)} column names occur more than once: {format_examples(repeated)}",
            path=path,
            column=str(repeated[0]),
            fix="give every column a distinct name (merge or drop the repeats)",
        )


def frame_to_matrix(
    df: pd.DataFrame,
    path: str | os.PathLike | None,
    *,
    index_col: str | int | Sequence[str] | None = None,
    what: str = "matrix",
    id_what: str = "sample IDs",
) -> pd.DataFrame:
    """Turn a table just read into a float32 matrix: ID index, unique IDs, numeric values.

    Parameters are those of :func:`read_table` (``index_col`` defaults to the first column).
    """
    p = Path(path) if path is not None else Path("<table>")
    col = _resolve_index_col(df, 0 if index_col is None else index_col, p, what)
    df = df.set_index(col)
    df.index = pd.Index(
        [None if pd.isna(v) else str(v).strip() for v in df.index],
        name=None if col in _UNNAMED else col,
        dtype=object,
    )
    if df.shape[1] == 0:
        raise _single_column_error(p, col, 2)
    check_unique_index(df, path, what=id_what)
    df = check_numeric(df, path)
    return df.astype(np.float32)


def write_atomic(
    path: str | os.PathLike,
    writer_fn: Callable[[Path], object],
    overwrite: bool = False,
) -> Path:
    """Write a file so that readers never see half of it.

    ``writer_fn(tmp)`` writes the content to a temporary file in the same directory (its name
    ends with the same suffixes as ``path``, so format inference by suffix works); the file is
    then moved over ``path`` with :func:`os.replace`. On failure the temporary file is removed.

    Parameters
    ----------
    path : str or PathLike
        The destination file. Its parent directories are created.
    writer_fn : callable
        Called with the temporary path; must write the file there.
    overwrite : bool
        Replace an existing file. Without it an existing ``path`` is an error.

    Returns
    -------
    Path
        ``path``.
    """
    dest = refuse_existing(
        path,
        overwrite,
        what="file",
        fix="pass overwrite=True (--overwrite on the command line) or choose another path",
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(dest.suffixes[-2:]) if dest.name.endswith(".gz") else dest.suffix
    fd, tmp_name = tempfile.mkstemp(
        dir=dest.parent, prefix=f".{dest.name}.", suffix=f".tmp{suffix}"
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer_fn(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def read_json_stamp(path: Path, max_version: int, writer: str) -> dict:
    """The JSON stamp of a directory leapscreen wrote (``dataset.json``, ``simulation.json``).

    Refuses a missing stamp (``writer`` names what writes such directories, for the fix) and a
    format version newer than ``max_version``.
    """
    if not path.is_file():
        raise InputError(
            f"not a directory written by {writer}: {path.name} is missing",
            path=path.parent,
            fix=f"give a directory written by {writer}",
        )
    meta = json.loads(path.read_text())
    if meta.get("format_version", 0) > max_version:
        raise InputError(
            f"{path.name} has format version {meta.get('format_version')}, newer than this "
            f"leapscreen reads ({max_version})",
            path=path,
            fix="upgrade leapscreen",
        )
    return meta
