"""Reading a cohort folder into raw (untyped) tables, with file-level violations.

Every source ends in the same raw form, so that CSV, Parquet and in-memory tables are typed
by one code path and give identical cohorts (and digests):

* each cell is a string, stripped of surrounding whitespace, ``""`` for an empty cell;
* numbers from Parquet or DataFrames are written with ``repr`` (exact round trip), integers
  with ``str``, booleans as ``1``/``0``, nulls and NaN as ``""``;
* each data row keeps its line number in the file (header = 1, first data row = 2; blank
  records are skipped but counted, as a spreadsheet shows them; Parquet and DataFrames:
  position + 2).

CSV files are read with the standard :mod:`csv` module: comma-separated, UTF-8 with or
without a byte-order mark, ``\\n``, ``\\r\\n`` or ``\\r`` line ends, RFC 4180 quoting.
"""

from __future__ import annotations

import codecs
import csv
import math
import numbers
import os
import stat
import tomllib
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ml.cohort._schema import TABLE_NAMES
from ml.cohort._violation import Violation

TOML_NAME = "cohort.toml"


@dataclass
class RawTable:
    """A table as read: column names and column-major stripped string cells.

    Attributes
    ----------
    name : str
        Table name (file stem).
    columns : dict of str to numpy.ndarray
        Cells of each column (object arrays of str, ``""`` = empty), in file order.
    lines : numpy.ndarray
        File line number of each data row (int64).
    booleans : frozenset of str
        Columns stored as booleans in the source (Parquet ``bool``, DataFrame ``bool``/``boolean``);
        their cells are ``1``/``0`` here, and the rules refuse them where a number is expected.
    """

    name: str
    columns: dict[str, np.ndarray]
    lines: np.ndarray
    booleans: frozenset = frozenset()

    def __len__(self) -> int:
        return len(self.lines)


@dataclass
class RawCohort:
    """Everything read from a folder before typing and rules.

    Attributes
    ----------
    toml : dict or None
        Parsed ``cohort.toml``; None when missing or unreadable.
    tables : dict of str to RawTable or None
        None for a table that is absent or could not be read.
    absent : set of str
        Tables with no file at all (as opposed to an unreadable file).
    violations : list of Violation
        File-level problems found while reading.
    """

    toml: dict | None
    tables: dict[str, RawTable | None]
    absent: set[str]
    violations: list[Violation]


def to_raw(value) -> str:
    """Raw string form of one cell from Parquet or a DataFrame (module docstring)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        return "" if math.isnan(number) else repr(number)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def build_raw(name: str, header: list[str], rows: list[list[str]], lines,
              violations: list[Violation], booleans=frozenset()) -> RawTable | None:
    """Check the header and rows of one table and build its :class:`RawTable`.

    Strips names and cells, drops an unnamed column that is entirely empty (a trailing
    comma), and reports empty or duplicate column names and a table with no data rows.
    Returns None when the table cannot be used.
    """
    cells = [[str(v).strip() for v in col] for col in zip(*rows)] if rows else [[] for _ in header]
    return build_raw_columns(name, header, cells, lines, violations, booleans)


def build_raw_columns(name: str, header: list[str], cells: list, lines,
                      violations: list[Violation], booleans=frozenset()) -> RawTable | None:
    """:func:`build_raw` for column-major cells that are already stripped strings."""
    names = [str(h).strip() for h in header]
    rows = len(lines)
    keep = [i for i, n in enumerate(names) if n or any(cells[i])]
    names, cells = [names[i] for i in keep], [cells[i] for i in keep]
    ok = True
    for i, n in enumerate(names):
        if not n:
            violations.append(Violation.at(name, None, f"empty column name (column {keep[i] + 1})"))
            ok = False
    seen: set[str] = set()
    for n in names:
        if n and n in seen:
            violations.append(Violation.at(name, None, f"duplicate column '{n}'"))
            ok = False
        seen.add(n)
    if not rows:
        violations.append(Violation.at(name, None, "no data rows"))
        ok = False
    if not ok:
        return None
    columns = {n: np.array(c, dtype=object) for n, c in zip(names, cells)}
    return RawTable(name, columns, np.asarray(lines, dtype=np.int64),
                    frozenset(str(b).strip() for b in booleans))


def _raw_column(values: pd.Series) -> list[str]:
    """Raw strings of one in-memory column; vectorised for plain numeric dtypes.

    Gives exactly what :func:`to_raw` gives cell by cell (``repr`` for floats, ``str`` for
    integers, ``1``/``0`` for booleans, ``""`` for missing), then stripped.
    """
    dtype = values.dtype
    if dtype.kind == "f":
        arr = values.to_numpy()
        return ["" if x != x else repr(x) for x in arr.astype(float).tolist()]
    if dtype.kind in "iu":
        return [str(x) for x in values.to_numpy().tolist()]
    if dtype.kind == "b":
        return np.where(values.to_numpy(), "1", "0").tolist()
    return [to_raw(v).strip() for v in values.tolist()]


def raw_from_frame(name: str, frame: pd.DataFrame, violations: list[Violation]) -> RawTable | None:
    """Raw form of an in-memory table (rows numbered position + 2)."""
    header = [str(c) for c in frame.columns]
    cells = [_raw_column(frame.iloc[:, j]) for j in range(frame.shape[1])]
    booleans = [h for j, h in enumerate(header) if _is_boolean(frame.iloc[:, j])]
    return build_raw_columns(name, header, cells, np.arange(len(frame)) + 2, violations, booleans)


def _is_boolean(values: pd.Series) -> bool:
    """True for a boolean column (``bool``, ``boolean``, or Python bools in an object column)."""
    if values.dtype.kind == "b":
        return True
    return values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) == "boolean"


_CHUNK = 1 << 20  # bytes read at a time when checking a CSV file's encoding
_CACHE_MAX = 4096  # distinct values a column shares before it stops sharing


def _encoding_problem(path: Path) -> str | None:
    """Why the file is not UTF-8 text (NUL bytes, invalid UTF-8), read in chunks; None when it is."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    base = 0
    with path.open("rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            if b"\x00" in chunk:
                return "unreadable (binary data, not CSV text)"
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                offset = base - (len(exc.object) - len(chunk)) + exc.start
                return f"unreadable (not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at offset {offset})"
            if not chunk:
                return None
            base += len(chunk)


def _append_record(record: list[str], columns: list[list[str]], caches: list[dict | None], last: list[str]) -> None:
    """Append one row's stripped cells to ``columns``, sharing equal strings (see :func:`_read_csv`)."""
    for j, field in enumerate(record):
        cell = field.strip()
        if cell == last[j]:
            cell = last[j]
        elif caches[j] is not None:
            cell = caches[j].setdefault(cell, cell)
            if len(caches[j]) > _CACHE_MAX:
                caches[j] = None
        last[j] = cell
        columns[j].append(cell)


def _shape_problem(header: list[str] | None, ragged: list[int]) -> tuple[str, list[int]] | None:
    """Why a CSV's shape is unusable (no header, not comma-separated, ragged rows) and the rows, or None."""
    if header is None:
        return "empty file (no header)", []
    if len(header) == 1:
        for sep in (";", "\t"):
            if sep in header[0]:
                return f"not comma-separated ({sep!r} in the header)", []
    if ragged:
        return f"wrong number of fields (header has {len(header)})", ragged
    return None


def _read_csv(name: str, path: Path, violations: list[Violation]) -> RawTable | None:
    """Stream one CSV file into stripped columns (memory: the cells, never a copy of the file or of its rows).

    Consecutive equal cells (a patient's id on each of its rows) and the first few thousand distinct
    values of a column share one string object.
    """
    try:
        problem = _encoding_problem(path)
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        violations.append(Violation.at(name, None, f"unreadable ({exc.strerror})"))
        return None
    if problem:
        handle.close()
        violations.append(Violation.at(name, None, problem))
        return None
    header: list[str] | None = None
    columns: list[list[str]] = []
    lines = array("q")
    ragged: list[int] = []
    with handle:
        reader = csv.reader(handle, strict=True)
        try:
            for line, record in enumerate(reader, start=1):
                if not "".join(record).strip():
                    continue
                if header is None:
                    header = record
                    columns = [[] for _ in header]
                    caches: list[dict | None] = [{} for _ in header]
                    last = [""] * len(header)
                elif len(record) != len(header):
                    ragged.append(line)
                else:
                    _append_record(record, columns, caches, last)
                    lines.append(line)
        except csv.Error as exc:
            violations.append(Violation.at(name, None, f"unreadable (malformed CSV: {exc})"))
            return None
    problem = _shape_problem(header, ragged)
    if problem:
        violations.append(Violation.at(name, None, *problem))
        return None
    return build_raw_columns(name, header, columns, np.frombuffer(lines, dtype=np.int64) if lines
                             else np.zeros(0, dtype=np.int64), violations)


def _read_parquet(name: str, path: Path, violations: list[Violation]) -> RawTable | None:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception:  # noqa: BLE001 - any pyarrow failure means the same to the user
        violations.append(Violation.at(name, None, "unreadable (not a valid Parquet file)"))
        return None
    index_columns = (table.schema.pandas_metadata or {}).get("index_columns", [])
    drop = {c for c in index_columns if isinstance(c, str)}
    import pyarrow as pa

    header = [str(c) for c in table.column_names if c not in drop]
    cols = [[to_raw(v) for v in table.column(c).to_pylist()]
            for c in table.column_names if c not in drop]
    rows = [list(r) for r in zip(*cols)] if table.num_rows else []
    booleans = [str(c) for c in table.column_names
                if c not in drop and pa.types.is_boolean(table.schema.field(c).type)]
    return build_raw(name, header, rows, np.arange(table.num_rows) + 2, violations, booleans)


def irregular(path: Path) -> str | None:
    """What ``path`` is when it is not a regular file (after symlinks), else None.

    Checked before any read: a FIFO would block the reader for ever and a device such as
    ``/dev/zero`` would be read until memory runs out.
    """
    try:
        mode = path.stat().st_mode
    except OSError:
        return None  # missing or unreadable: reported by the reader
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))
    kind = next((text for test, text in kinds if test(mode)), "not a regular file")
    via = f" (a symbolic link to {os.path.realpath(path)})" if path.is_symlink() else ""
    return f"not a regular file: {kind}{via}; refused before reading"


def _read_toml(folder: Path, violations: list[Violation]) -> dict | None:
    path = folder / TOML_NAME
    odd = irregular(path)
    if odd:
        violations.append(Violation.at(TOML_NAME, None, odd))
        return None
    if not path.is_file():
        violations.append(Violation.at(TOML_NAME, None, "file missing"))
        return None
    try:
        text = path.read_bytes().decode("utf-8").removeprefix("\ufeff")
        return tomllib.loads(text)
    except UnicodeDecodeError:
        violations.append(Violation.at(TOML_NAME, None, "unreadable (not UTF-8 text)"))
    except tomllib.TOMLDecodeError as exc:
        violations.append(Violation.at(TOML_NAME, None, f"not valid TOML ({exc})"))
    except OSError as exc:
        violations.append(Violation.at(TOML_NAME, None, f"unreadable ({exc.strerror})"))
    return None


def read_folder(folder: Path) -> RawCohort:
    """Read ``cohort.toml`` and every table file of a cohort folder (no typing, no rules)."""
    violations: list[Violation] = []
    tables: dict[str, RawTable | None] = {}
    absent: set[str] = set()
    if not folder.is_dir():
        violations.append(Violation.at("cohort", None, f"not a directory: {folder}"))
        return RawCohort(None, dict.fromkeys(TABLE_NAMES), set(), violations)
    toml = _read_toml(folder, violations)
    for name in TABLE_NAMES:
        csv_path, pq_path = folder / f"{name}.csv", folder / f"{name}.parquet"
        tables[name] = None
        if csv_path.exists() and pq_path.exists():
            violations.append(Violation.at(
                name, None, f"both {csv_path.name} and {pq_path.name} present"))
        elif csv_path.exists() or pq_path.exists():
            path = csv_path if csv_path.exists() else pq_path
            odd = irregular(path)
            if odd:
                violations.append(Violation.at(name, None, f"{path.name}: {odd}"))
            elif path is csv_path:
                tables[name] = _read_csv(name, csv_path, violations)
            else:
                tables[name] = _read_parquet(name, pq_path, violations)
        else:
            absent.add(name)
    return RawCohort(toml, tables, absent, violations)
