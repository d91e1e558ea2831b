"""Content digest of a cohort: SHA-256 of a canonical serialisation.

The serialisation is compact JSON (UTF-8, sorted keys) of::

    {"format": "atg-window-cohort/1",
     "meta": {name, donor_source, concentration_unit, simulated, description, truth},
     "tables": {table: null | {"columns": [...], "kinds": [...], "data": [[...], ...]}}}

Columns in the table's order (contract columns in spec order, extra columns sorted), rows
in file order, one list per column. Cells: floats as ``repr`` strings (exact; ``null`` for
NaN), integers as JSON integers, strings as JSON strings (``null`` when missing); ``kinds``
(``f``, ``i``, ``s``) keeps ``1.0`` (number) and ``"1.0"`` (text) apart. Floats inside
``truth`` are written ``["float", repr]``. The same data from CSV, Parquet or memory gives
the same digest because loading types it identically.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers

import numpy as np
import pandas as pd

from ml.cohort._model import CohortMeta

_FORMAT = "atg-window-cohort/1"


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return ["float", repr(float(value))]
    return value if value is None else str(value)


def _column(series: pd.Series) -> tuple[str, list]:
    values = series.to_numpy()
    if series.dtype.kind == "f":
        return "f", [None if math.isnan(v) else repr(v) for v in values.tolist()]
    if series.dtype.kind in "iu":
        return "i", [int(v) for v in values.tolist()]
    return "s", [None if (isinstance(v, float) and math.isnan(v)) or v is None else str(v)
                 for v in values.tolist()]


_CHUNK = 65_536  # cells encoded at a time


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _column_json(series: pd.Series):
    """Pieces of the JSON list of one column's canonical cells, a chunk at a time."""
    yield "["
    for lo in range(0, len(series), _CHUNK):
        if lo:
            yield ","
        yield _dumps(_column(series.iloc[lo:lo + _CHUNK])[1])[1:-1]
    yield "]"


def _table_json(frame: pd.DataFrame | None):
    """Pieces of ``{"columns": [...], "data": [[...], ...], "kinds": [...]}`` (keys sorted), column by column."""
    if frame is None:
        yield "null"
        return
    yield '{"columns":' + _dumps([str(c) for c in frame.columns]) + ',"data":['
    kinds = []
    for j, c in enumerate(frame.columns):
        if j:
            yield ","
        kinds.append(_column(frame[c].iloc[:0])[0])
        yield from _column_json(frame[c])
    yield '],"kinds":' + _dumps(kinds) + "}"


def cohort_digest(meta: CohortMeta, tables: dict[str, pd.DataFrame | None]) -> str:
    """SHA-256 (hex) of the canonical serialisation of ``meta`` and the typed ``tables``.

    The serialisation is the JSON document ``{"format", "meta", "tables": {name: {"columns",
    "data", "kinds"}}}`` (keys sorted, no spaces, UTF-8), fed to the hash a chunk of cells at a
    time so that memory does not grow with a second copy of the cohort.

    Parameters
    ----------
    meta : CohortMeta
    tables : dict of str to pandas.DataFrame or None
        Typed tables keyed ``patients``, ``atg_doses``, ``atg_levels``, ``outcomes``.

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    meta_doc = _plain({"name": meta.name, "donor_source": meta.donor_source,
                       "concentration_unit": meta.concentration_unit,
                       "simulated": meta.simulated, "description": meta.description,
                       "truth": meta.truth})
    h = hashlib.sha256()
    h.update(('{"format":' + _dumps(_FORMAT) + ',"meta":' + _dumps(meta_doc) + ',"tables":{').encode("utf-8"))
    for i, name in enumerate(sorted(tables)):
        h.update(((',' if i else '') + _dumps(str(name)) + ":").encode("utf-8"))
        for piece in _table_json(tables[name]):
            h.update(piece.encode("utf-8"))
    h.update(b"}}")
    return h.hexdigest()
