"""CSV cells that a spreadsheet would run as formulas (CSV injection), made inert.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is taken as a
formula by spreadsheet programs (OWASP, "CSV Injection"): an id such as ``=cmd|' /C calc'!A0``
would run when the file is opened. Text cells that start so are prefixed with a single quote,
which spreadsheets display but do not evaluate; numbers are left alone (``-3.5`` is a value).
"""

from __future__ import annotations

import pandas as pd

__all__ = ["FORMULA_PREFIXES", "inert_cell", "inert_text_columns"]

#: First characters that make a spreadsheet evaluate a cell.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def inert_cell(value):
    """``value`` with a leading ``'`` when it is text starting with a formula prefix."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def inert_text_columns(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` whose text (object/string) columns have every formula-like cell made inert."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col].dtype):
            out[col] = out[col].map(inert_cell)
    return out
