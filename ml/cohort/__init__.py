"""The cohort contract (docs/cohort-format.md): load, validate, write.

A cohort that breaks any rule is refused as a whole by :func:`load_cohort` with a
:class:`CohortValidationError` listing every violation, one per line::

    table.column: rule, rows [r1, r2, r3, r4, r5, ...] (N rows)
    table: rule                       (file-level, e.g. ``atg_levels: file missing``)

Rows are file lines (header = 1, first data row = 2; Parquet and in-memory tables: position
+ 2); details in :mod:`ml.cohort._violation`. :func:`validate_cohort` returns the same
findings without raising. The rules are a table (:data:`RULES`).
"""

from ml.cohort._load import cohort_from_tables, load_cohort, validate_cohort
from ml.cohort._model import DONOR_SOURCES, Cohort, CohortMeta, exposure_unit
from ml.cohort._rules import RULES, Rule
from ml.cohort._schema import KNOWN_CONCENTRATION_UNITS, TABLES, ColumnSpec
from ml.cohort._violation import CohortValidationError, ValidationReport, Violation
from ml.cohort._write import existing_cohort_files, write_cohort

__all__ = [
    "DONOR_SOURCES",
    "KNOWN_CONCENTRATION_UNITS",
    "RULES",
    "TABLES",
    "Cohort",
    "CohortMeta",
    "CohortValidationError",
    "ColumnSpec",
    "Rule",
    "ValidationReport",
    "Violation",
    "cohort_from_tables",
    "exposure_unit",
    "load_cohort",
    "validate_cohort",
    "existing_cohort_files",
    "write_cohort",
]
