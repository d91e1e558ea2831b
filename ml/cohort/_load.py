"""Loading and validating cohorts: from a folder, or from in-memory tables.

Both paths go through the same steps: raw tables (:mod:`ml.cohort._read`), ``cohort.toml``
rules (:mod:`ml.cohort._meta`), required files and columns, the table of rules
(:mod:`ml.cohort._rules`), then typing (:mod:`ml.cohort._typed`) and the digest. A cohort
that breaks any rule is refused as a whole with every violation listed (format in
:mod:`ml.cohort._violation`).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import replace
from pathlib import Path

import pandas as pd

from ml.cohort._digest import cohort_digest
from ml.cohort._meta import check_meta, doc_from_meta, meta_from_doc, toml_text
from ml.cohort._model import Cohort, CohortMeta
from ml.cohort._read import TOML_NAME, RawCohort, raw_from_frame, read_folder
from ml.cohort._rules import Context, run_rules
from ml.cohort._schema import LEVEL_TABLES, TABLE_NAMES, TABLES
from ml.cohort._typed import typed_table
from ml.cohort._violation import CohortValidationError, ValidationReport, Violation

_ORDER = {name: i for i, name in enumerate(("cohort", TOML_NAME, *TABLE_NAMES))}


def _structure(raw: RawCohort, missing: str) -> list[Violation]:
    """Required tables and required columns."""
    found: list[Violation] = []
    patients = raw.tables["patients"]
    for name in TABLE_NAMES:
        if name not in raw.absent:
            continue
        if name not in LEVEL_TABLES:
            found.append(Violation.at(name, None, missing))
        elif patients is not None and "auc_total" not in patients.columns:
            found.append(Violation.at(name, None, missing))
    for name, table in raw.tables.items():
        if table is None:
            continue
        lower = {c.lower(): c for c in table.columns}
        for spec in TABLES[name]:
            if spec.required and spec.name not in table.columns:
                hint = lower.get(spec.name)
                rule = ("column missing" if hint is None
                        else f"column missing (found {hint!r}; names are lower-case)")
                found.append(Violation.at(name, spec.name, rule))
    return found


def _with_patient_ids(v: Violation, tables) -> Violation:
    """``v`` with the ``patient_id`` of each of its rows, when its table has that column."""
    table = tables.get(v.table) if v.rows else None
    if table is None or "patient_id" not in table.columns:
        return v
    by_line = dict(zip(table.lines.tolist(), table.columns["patient_id"]))
    ids = tuple(str(by_line.get(r, "")).strip() for r in v.rows)
    return replace(v, patient_ids=ids)


def _assess(raw: RawCohort, missing: str) -> ValidationReport:
    violations = list(raw.violations)
    warnings: list[Violation] = []
    meta = None
    if raw.toml is not None:
        before = len(violations)
        check_meta(raw.toml, violations, warnings)
        if len(violations) == before:
            meta = meta_from_doc(raw.toml)
    violations += _structure(raw, missing)
    ctx = Context(raw.tables, raw.absent, meta.donor_source if meta else None)
    found, warned = run_rules(ctx)
    violations += found
    warnings += warned
    violations = [_with_patient_ids(v, raw.tables) for v in violations]
    warnings = [_with_patient_ids(w, raw.tables) for w in warnings]
    violations.sort(key=lambda v: _ORDER.get(v.table, len(_ORDER)))
    warnings.sort(key=lambda v: _ORDER.get(v.table, len(_ORDER)))
    if violations:
        return ValidationReport(tuple(violations), tuple(warnings))
    tables = {name: typed_table(ctx, name) for name in TABLE_NAMES}
    cohort = Cohort(
        meta=meta, patients=tables["patients"], doses=tables["atg_doses"],
        levels=tables["atg_levels"], outcomes=tables["outcomes"],
        digest=cohort_digest(meta, tables), warnings=tuple(w.message for w in warnings))
    return ValidationReport((), tuple(warnings), cohort)


def validate_cohort(path: str | os.PathLike) -> ValidationReport:
    """Check a cohort folder against the contract without raising on bad data.

    Parameters
    ----------
    path : str or path-like
        The cohort folder (``cohort.toml`` and the table files).

    Returns
    -------
    ValidationReport
        Every violation and warning; ``.cohort`` is the loaded cohort when ``.ok``.
    """
    path = Path(path)
    return _assess(read_folder(path), "file missing")


def load_cohort(path: str | os.PathLike) -> Cohort:
    """Load and validate a cohort folder (docs/cohort-format.md).

    Each table may be ``<stem>.csv`` or ``<stem>.parquet``. Columns are typed per the
    contract, ``atg_doses.start_hour`` defaults to 8 (clock hour) and ``atg_levels.bloq``
    to 1 where ``concentration`` is empty (else 0); extra columns are kept.

    Parameters
    ----------
    path : str or path-like
        The cohort folder.

    Returns
    -------
    Cohort
        Tables typed and in canonical column order; ``warnings`` holds eligibility warnings.

    Raises
    ------
    CohortValidationError
        If any rule is broken; the message lists every violation, one per line.
    """
    report = validate_cohort(path)
    if not report.ok:
        raise CohortValidationError(report.violations, source=f"cohort {os.fspath(path)!r}")
    return report.cohort


def _normalised_meta(meta: CohortMeta, violations: list[Violation]) -> dict | None:
    """``cohort.toml`` document of ``meta`` as it would be read back from disk."""
    if not isinstance(meta, CohortMeta):
        raise TypeError(f"meta must be a CohortMeta, got {type(meta).__name__}")
    try:
        return tomllib.loads(toml_text(doc_from_meta(meta)))
    except (TypeError, tomllib.TOMLDecodeError) as exc:
        violations.append(Violation.at(TOML_NAME, None, f"cannot be written ({exc})"))
        return None


def cohort_from_tables(meta: CohortMeta, patients: pd.DataFrame, doses: pd.DataFrame | None,
                       levels: pd.DataFrame | None, outcomes: pd.DataFrame) -> Cohort:
    """Validate in-memory tables and build a :class:`Cohort` (e.g. from the simulator).

    The tables go through exactly the checks and typing of :func:`load_cohort`, so that
    ``write_cohort`` then ``load_cohort`` gives back an equal cohort with the same digest.
    Rows in messages are numbered position + 2 (their line in the CSV ``write_cohort``
    writes).

    Parameters
    ----------
    meta : CohortMeta
        Metadata; checked by the ``cohort.toml`` rules.
    patients, outcomes : pandas.DataFrame
        Contract columns (and any extra columns); the index is ignored.
    doses, levels : pandas.DataFrame or None
        None only when ``patients`` has ``auc_total``.

    Returns
    -------
    Cohort

    Raises
    ------
    CohortValidationError
        If any rule is broken.
    TypeError
        If ``meta`` is not a :class:`CohortMeta` or a table is not a DataFrame or None.
    """
    violations: list[Violation] = []
    doc = _normalised_meta(meta, violations)
    given = {"patients": patients, "atg_doses": doses, "atg_levels": levels,
             "outcomes": outcomes}
    tables = {}
    for name, frame in given.items():
        if frame is not None and not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{name} must be a pandas DataFrame or None, got "
                            f"{type(frame).__name__}")
        tables[name] = None if frame is None else raw_from_frame(name, frame, violations)
    absent = {name for name, frame in given.items() if frame is None}
    report = _assess(RawCohort(doc, tables, absent, violations), "table missing (None given)")
    if not report.ok:
        raise CohortValidationError(report.violations, source=f"in-memory cohort {meta.name!r}")
    return report.cohort
