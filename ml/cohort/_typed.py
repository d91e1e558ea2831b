"""Typed tables from validated raw tables: contract dtypes, defaults, canonical column order.

Dtypes (see :mod:`ml.cohort._schema`): ``id``/``category`` columns ``object`` (str);
``number``/``day`` columns ``float64`` (NaN = empty); ``integer`` columns ``int64``; flags
``int64`` when never empty (``bloq``) and ``float64`` otherwise (``cmv_persistent``).
Defaults: ``atg_doses.start_hour`` = 8 (clock hour) where absent or empty; ``atg_levels.bloq``
= 1 where ``concentration`` is empty, else 0, where absent or empty.
Extra columns: ``float64`` when every non-empty cell is a number, else ``object`` (str, NaN
where empty). Columns: contract columns in spec order, then extra columns sorted by name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.cohort._rules import Context
from ml.cohort._schema import DEFAULT_START_HOUR, canonical_columns, column_spec

_DEFAULTED = {"atg_doses": "start_hour", "atg_levels": "bloq"}


def _text(cells: np.ndarray) -> np.ndarray:
    out = cells.copy()
    out[cells == ""] = np.nan
    return out


def _column(ctx: Context, table: str, column: str) -> np.ndarray:
    if table == "atg_doses" and column == "start_hour":
        hours = (ctx.number(table, column) if ctx.has(table, column)
                 else np.full(len(ctx.tables[table]), np.nan))
        return np.where(np.isnan(hours), DEFAULT_START_HOUR, hours)
    if table == "atg_levels" and column == "bloq":
        default = ctx.empty(table, "concentration").astype(np.int64)
        if not ctx.has(table, column):
            return default
        flag = ctx.number(table, column)
        return np.where(np.isnan(flag), default, flag).astype(np.int64)
    spec = column_spec(table, column)
    if spec is None:
        cells = ctx.text(table, column)
        numbers = ctx.number(table, column)
        if np.array_equal(cells == "", np.isnan(numbers)):
            return numbers
        return _text(cells)
    if spec.kind in ("id", "category"):
        return _text(ctx.text(table, column))
    numbers = ctx.number(table, column)
    if spec.kind == "integer" or (spec.kind == "flag" and not spec.nullable):
        return numbers.astype(np.int64)
    return numbers


def typed_table(ctx: Context, table: str) -> pd.DataFrame | None:
    """The typed, canonically ordered table (None when the table is absent)."""
    if not ctx.has(table):
        return None
    names = list(ctx.tables[table].columns)
    if table in _DEFAULTED and _DEFAULTED[table] not in names:
        names.append(_DEFAULTED[table])
    return pd.DataFrame({c: _column(ctx, table, c) for c in canonical_columns(table, names)})
