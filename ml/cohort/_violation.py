"""Violations, the refusal error and the validation report.

Message format (one line per violation or warning)::

    table.column: rule, rows [r1, r2, r3, r4, r5, ...] (N rows)   row-level problem
    table.column: rule                                           column-level problem
    table: rule, rows [...] (N rows)                              row-level, whole row
    table: rule                                                  file-level problem

``table`` is the file stem (``patients``, ``atg_doses``, ``atg_levels``, ``outcomes``) or
``cohort.toml`` (then ``column`` is the key, e.g. ``cohort.toml.concentration_unit: unknown
unit 'mg' ...``). Rows are numbered as in the file, the way a spreadsheet shows them: the
header is line 1 and the first data row is 2. Blank records count (so the number is the line
shown by a spreadsheet program); for Parquet files and in-memory tables the number is the
0-based row position + 2, i.e. the line the row would have in the CSV written by
:func:`~ml.cohort.write_cohort`. At most the first five rows are listed (``...`` marks that
there are more); ``N`` is always the total, written ``(N rows)`` (``(1 row)`` for one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ml.cohort._model import Cohort

_MAX_LISTED_ROWS = 5


@dataclass(frozen=True)
class Violation:
    """One broken rule (or one eligibility warning), with where it happened.

    Attributes
    ----------
    table : str
        File stem (``patients``, ...), ``cohort.toml``, or ``cohort`` for the folder itself.
    column : str or None
        Column (or ``cohort.toml`` key) concerned; None for a file- or row-level problem.
    rule : str
        What is wrong, stated as the condition (``must be > 0``, ``file missing``).
    rows : tuple of int
        File line numbers of every offending row (header = 1); empty when not row-level.
    n_rows : int
        ``len(rows)``.
    patient_ids : tuple of str
        ``patient_id`` of each offending row, when its table has one (filled in by
        :func:`~ml.cohort.validate_cohort`; not part of equality).
    """

    table: str
    column: str | None
    rule: str
    rows: tuple[int, ...] = ()
    n_rows: int = 0
    patient_ids: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.n_rows != len(self.rows):
            raise ValueError(
                f"n_rows == len(rows) must hold, got n_rows={self.n_rows}, "
                f"len(rows)={len(self.rows)}")

    @classmethod
    def at(cls, table: str, column: str | None, rule: str, rows=()) -> Violation:
        """Build a violation, computing ``n_rows`` from ``rows``."""
        rows = tuple(int(r) for r in rows)
        return cls(table, column, rule, rows, len(rows))

    @property
    def message(self) -> str:
        """The one-line message (format in the module docstring)."""
        where = self.table if self.column is None else f"{self.table}.{self.column}"
        text = f"{where}: {self.rule}"
        if self.n_rows:
            listed = ", ".join(str(r) for r in self.rows[:_MAX_LISTED_ROWS])
            more = ", ..." if self.n_rows > _MAX_LISTED_ROWS else ""
            text += f", rows [{listed}{more}] ({self.n_rows} {'row' if self.n_rows == 1 else 'rows'})"
        return text

    @property
    def located(self) -> str:
        """The message with its row numbers labelled as CSV lines and the rows' patient ids.

        ``table.column: rule, CSV lines [r1, ...] (N rows; patient_id P1, ...)``. CSV line
        numbers count the header as line 1 (module docstring).
        """
        where = self.table if self.column is None else f"{self.table}.{self.column}"
        text = f"{where}: {self.rule}"
        if self.n_rows:
            listed = ", ".join(str(r) for r in self.rows[:_MAX_LISTED_ROWS])
            more = ", ..." if self.n_rows > _MAX_LISTED_ROWS else ""
            label = "CSV line" if self.n_rows == 1 else "CSV lines"
            text += f", {label} [{listed}{more}] ({self.n_rows} {'row' if self.n_rows == 1 else 'rows'}"
            ids = [p for p in dict.fromkeys(self.patient_ids) if p]
            if ids:
                text += f"; patient_id {', '.join(ids[:_MAX_LISTED_ROWS])}{', ...' if len(ids) > _MAX_LISTED_ROWS else ''}"
            text += ")"
        return text

    def __str__(self) -> str:
        return self.message


class CohortValidationError(ValueError):
    """A cohort broke at least one rule of the contract and is refused as a whole.

    The message is a header line followed by every violation, one per line.

    Parameters
    ----------
    violations : iterable of Violation
        The broken rules.
    source : str, default "cohort"
        What was refused, the first words of the message (e.g. a file name).

    Attributes
    ----------
    violations : list of Violation
    """

    def __init__(self, violations, source: str = "cohort") -> None:
        self.violations = list(violations)
        n = len(self.violations)
        header = f"{source} refused: {n} violation{'s' if n != 1 else ''} of the cohort format"
        super().__init__("\n".join([header, *(v.message for v in self.violations)]))


@dataclass(frozen=True)
class ValidationReport:
    """Outcome of :func:`~ml.cohort.validate_cohort`: never raises on bad data.

    Attributes
    ----------
    violations : tuple of Violation
        Broken rules; any one refuses the cohort.
    warnings : tuple of Violation
        Eligibility and consistency warnings; they do not refuse.
    cohort : Cohort or None
        The loaded cohort when there is no violation.
    """

    violations: tuple[Violation, ...]
    warnings: tuple[Violation, ...]
    cohort: Cohort | None = None

    @property
    def ok(self) -> bool:
        """True when the cohort broke no rule (warnings allowed)."""
        return not self.violations

    @property
    def messages(self) -> list[str]:
        """Violation messages, one per violation."""
        return [v.message for v in self.violations]

    @property
    def warning_messages(self) -> list[str]:
        """Warning messages, one per warning."""
        return [w.message for w in self.warnings]

    @property
    def located_messages(self) -> list[str]:
        """Violation messages with labelled CSV lines and patient ids (:attr:`Violation.located`)."""
        return [v.located for v in self.violations]

    @property
    def located_warning_messages(self) -> list[str]:
        """Warning messages with labelled CSV lines and patient ids."""
        return [w.located for w in self.warnings]
