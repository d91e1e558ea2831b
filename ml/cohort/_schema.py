"""The cohort contract as data: tables, columns, kinds, categories (docs/cohort-format.md).

Everything the loader, the validator and the writer know about the columns comes from
:data:`TABLES`; the rules that check values are in :mod:`ml.cohort._rules`.

Column kinds and the dtype each one gets in a loaded :class:`~ml.cohort.Cohort`:

``id``        non-empty string, ``object`` dtype (``patient_id``).
``category``  one of a fixed set of strings, ``object`` dtype.
``number``    finite real number, ``float64`` (NaN where the cell is empty and allowed).
``integer``   integer-valued number (``3`` or ``3.0``), ``int64``; never empty.
``flag``      0 or 1: ``int64`` when it cannot be empty (``bloq``, after defaults),
              ``float64`` with NaN for "unknown" when it can (``cmv_persistent``).
``day``       event day from transplant, ``float64``, empty = "did not happen".
"""

from __future__ import annotations

from dataclasses import dataclass

#: Assays whose units the contract knows (docs/cohort-format.md, cohort.toml). They cannot be
#: converted into each other, so a unit is matched exactly (case and spelling): ``"ue/ml"`` or
#: ``"µg/mL"`` are refused with this list in the message. Supporting a new assay is a reviewed
#: one-line change here, never a silent pass-through.
KNOWN_CONCENTRATION_UNITS: tuple[str, ...] = ("UE/mL", "AU/mL", "ug/mL")

#: Trial eligibility (NCT07648992): values outside these give warnings, never refusals.
ELIGIBLE_AGE_YEARS: tuple[float, float] = (14.0, 65.0)
ELIGIBLE_DISEASE_STATUS: tuple[str, ...] = ("CR1", "CR2")

#: Clock hour (0..24) an infusion starts when ``atg_doses.start_hour`` is absent or empty.
DEFAULT_START_HOUR: float = 8.0


@dataclass(frozen=True)
class ColumnSpec:
    """One column of the contract.

    Attributes
    ----------
    name : str
        Lower-case column name.
    kind : str
        ``id``, ``category``, ``number``, ``integer``, ``flag`` or ``day`` (module docstring).
    required : bool
        The column must be present in the file.
    nullable : bool
        Empty cells are allowed (they mean "missing" or, for days, "did not happen").
    categories : tuple of str
        Allowed values of a ``category`` column.
    unit : str
        Unit of a numeric column, for messages and documentation.
    """

    name: str
    kind: str
    required: bool = True
    nullable: bool = False
    categories: tuple[str, ...] = ()
    unit: str = ""


def _cat(name: str, *values: str) -> ColumnSpec:
    return ColumnSpec(name, "category", categories=values)


_EVENT_DAYS = ("death_day", "relapse_day", "cmv_day", "ebv_day", "agvhd2_day", "agvhd3_day",
               "cgvhd_day")

#: Contract columns of every table, in the order of the specification (also the order of the
#: columns in a loaded or written table, followed by the extra columns sorted by name).
TABLES: dict[str, tuple[ColumnSpec, ...]] = {
    "patients": (
        ColumnSpec("patient_id", "id"),
        _cat("donor_type", "URD", "haplo", "MSD"),
        ColumnSpec("age_years", "number", unit="years"),
        _cat("sex", "M", "F"),
        ColumnSpec("weight_kg", "number", unit="kg"),
        _cat("diagnosis", "AML", "ALL", "MDS", "CML", "lymphoma", "other"),
        _cat("disease_status", "CR1", "CR2", "other"),
        _cat("conditioning", "MAC", "RIC"),
        ColumnSpec("hla_mismatches", "integer"),
        _cat("cmv_recipient", "pos", "neg"),
        _cat("cmv_donor", "pos", "neg"),
        ColumnSpec("alc_pre_atg", "number", unit="10^9/L"),
        ColumnSpec("auc_total", "number", required=False, nullable=True,
                   unit="concentration_unit*day"),
    ),
    "atg_doses": (
        ColumnSpec("patient_id", "id"),
        ColumnSpec("day", "integer", unit="days from transplant"),
        ColumnSpec("start_hour", "number", required=False, nullable=True, unit="h"),
        ColumnSpec("dose_mg", "number", unit="mg"),
        ColumnSpec("infusion_hours", "number", unit="h"),
    ),
    "atg_levels": (
        ColumnSpec("patient_id", "id"),
        ColumnSpec("day", "number", unit="days from transplant"),
        ColumnSpec("concentration", "number", nullable=True, unit="concentration_unit"),
        ColumnSpec("bloq", "flag", required=False, nullable=True),
    ),
    "outcomes": (
        ColumnSpec("patient_id", "id"),
        ColumnSpec("last_followup_day", "number", unit="days from transplant"),
        *(ColumnSpec(name, "day", nullable=True, unit="days from transplant")
          for name in _EVENT_DAYS[:3]),
        ColumnSpec("cmv_persistent", "flag", required=False, nullable=True),
        *(ColumnSpec(name, "day", nullable=True, unit="days from transplant")
          for name in _EVENT_DAYS[3:]),
        ColumnSpec("neutrophil_day", "day", required=False, nullable=True,
                   unit="days from transplant"),
        ColumnSpec("platelet_day", "day", required=False, nullable=True,
                   unit="days from transplant"),
    ),
}

#: Table names in contract order; also the file stems (``patients.csv``, ``atg_doses.parquet``).
TABLE_NAMES: tuple[str, ...] = tuple(TABLES)

#: Tables that may be absent when ``patients`` has an ``auc_total`` column.
LEVEL_TABLES: tuple[str, ...] = ("atg_doses", "atg_levels")

#: Event-day columns of ``outcomes`` (checked against ``last_followup_day``).
EVENT_DAY_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in TABLES["outcomes"] if c.kind == "day")


def column_spec(table: str, column: str) -> ColumnSpec | None:
    """Return the contract's spec of ``table.column``, or None for an extra column."""
    for spec in TABLES[table]:
        if spec.name == column:
            return spec
    return None


def canonical_columns(table: str, columns) -> list[str]:
    """Order ``columns``: contract columns in spec order, then extra columns sorted by name."""
    present = set(columns)
    contract = [c.name for c in TABLES[table] if c.name in present]
    extras = sorted(present.difference(c.name for c in TABLES[table]))
    return contract + extras
