"""Writing a cohort folder with deterministic bytes.

``cohort.toml`` is written by hand (:func:`ml.cohort._meta.toml_text`). Tables:

* columns in canonical order (contract columns in spec order, then extra columns sorted);
* CSV: UTF-8 without byte-order mark, ``\\n`` line ends, minimal RFC 4180 quoting; floats
  written with ``repr`` (the shortest text that reads back to the same float, e.g. ``60.0``,
  ``0.1``, ``1e+20``: no rounding at all), integers as integers, empty cells for NaN;
* Parquet: float64 / int64 / string columns, nulls for NaN, no pandas metadata (bytes depend
  only on the data and the pyarrow version).

Writing then loading gives an equal cohort with the same digest.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ml.cohort._meta import doc_from_meta, toml_text
from ml.cohort._model import Cohort
from ml.cohort._read import TOML_NAME, to_raw
from ml.cohort._schema import TABLE_NAMES, canonical_columns

_FORMATS = ("csv", "parquet")


def _tables(cohort: Cohort) -> dict[str, pd.DataFrame | None]:
    return {"patients": cohort.patients, "atg_doses": cohort.doses,
            "atg_levels": cohort.levels, "outcomes": cohort.outcomes}


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([str(c) for c in frame.columns])
    columns = [[to_raw(v) for v in frame[c].tolist()] for c in frame.columns]
    writer.writerows(zip(*columns))
    return buffer.getvalue().encode("utf-8")


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays, names = [], []
    for column in frame.columns:
        values = frame[column].to_numpy()
        kind = frame[column].dtype.kind
        if kind == "f":
            values = values.astype(np.float64)
            arrays.append(pa.array(values, type=pa.float64(), mask=np.isnan(values)))
        elif kind in "iu":
            arrays.append(pa.array(values.astype(np.int64), type=pa.int64()))
        else:
            cells = [to_raw(v) for v in values.tolist()]
            arrays.append(pa.array([c if c != "" else None for c in cells], type=pa.string()))
        names.append(str(column))
    pq.write_table(pa.Table.from_arrays(arrays, names=names), path)


def existing_cohort_files(path: str | Path) -> list[Path]:
    """The cohort files (``cohort.toml`` and the tables, any format) already in folder ``path``."""
    folder = Path(path)
    ours = [folder / TOML_NAME, *(folder / f"{name}.{ext}" for name in TABLE_NAMES for ext in _FORMATS)]
    return [p for p in ours if p.exists()]


def write_cohort(cohort: Cohort, path: str | os.PathLike, fmt: str = "csv", *,
                 overwrite: bool = False) -> Path:
    """Write ``cohort`` as a cohort folder in the contract format.

    Parameters
    ----------
    cohort : Cohort
        A validated cohort (from :func:`load_cohort` or :func:`cohort_from_tables`).
    path : str or path-like
        Folder to write; created if needed.
    fmt : {"csv", "parquet"}
        Format of the tables (``cohort.toml`` is always TOML).
    overwrite : bool
        Replace the cohort files (``cohort.toml`` and every ``<table>.csv``/``.parquet``)
        already in ``path``. Other files are never touched.

    Returns
    -------
    pathlib.Path
        The folder written.

    Raises
    ------
    ValueError
        If ``fmt`` is not ``"csv"`` or ``"parquet"``.
    FileExistsError
        If ``path`` already holds cohort files and ``overwrite`` is false.
    """
    if fmt not in _FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(_FORMATS)}, got {fmt!r}")
    folder = Path(path)
    existing = existing_cohort_files(folder)
    if existing and not overwrite:
        raise FileExistsError(
            f"{folder} already holds cohort files ({', '.join(p.name for p in existing)}); "
            "pass overwrite=True to replace them")
    for stale in existing:
        stale.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TOML_NAME).write_bytes(toml_text(doc_from_meta(cohort.meta)).encode("utf-8"))
    for name, frame in _tables(cohort).items():
        if frame is None:
            continue
        frame = frame[canonical_columns(name, frame.columns)]
        if fmt == "csv":
            (folder / f"{name}.csv").write_bytes(_csv_bytes(frame))
        else:
            _write_parquet(frame, folder / f"{name}.parquet")
    return folder
