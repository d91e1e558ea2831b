"""The table of rules (docs/cohort-format.md), in the spirit of pharmpy's dataset checks.

Each :class:`Rule` names a table, a column and the condition it states, and holds a check
that returns the offending rows of that table (0-based positions, or equivalently a boolean
mask over the rows; most checks here return masks). A rule runs only when the
columns it needs are present (a missing column is reported once, as ``column missing``);
a cell that is not a number is reported once and treated as empty by every range rule.

``RULES`` holds, per table in contract order: the rules generated from the column kinds in
:data:`~ml.cohort._schema.TABLES` (missing value, not a number, not an integer, 0/1 flag,
category), then the value, consistency and foreign-key rules written out below, then the
warnings (eligibility of the trial, NCT07648992), which are reported but never refuse.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.cohort._read import RawTable
from ml.cohort._schema import (
    DEFAULT_START_HOUR,
    ELIGIBLE_AGE_YEARS,
    ELIGIBLE_DISEASE_STATUS,
    EVENT_DAY_COLUMNS,
    TABLES,
    column_spec,
)
from ml.cohort._violation import Violation


def parse_number(cell: str) -> float:
    """Parse one stripped cell as a finite float; NaN when empty or not a finite number.

    ``float`` is correctly rounded, so the ``repr`` written by the writer reads back exactly.
    Digit-group underscores (``1_000``), ``nan``, ``inf`` and decimal commas are not numbers.
    """
    if not cell or "_" in cell:
        return math.nan
    try:
        value = float(cell)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def parse_numbers(cells: np.ndarray) -> np.ndarray:
    """:func:`parse_number` of every cell, vectorised when the column is clean.

    Filled cells are converted in one ``astype(float)`` (Python's correctly rounded ``float``
    underneath); when any cell is not a number the column falls back to cell-by-cell parsing.
    Underscores and non-finite values are rejected as in :func:`parse_number`.
    """
    out = np.full(len(cells), math.nan)
    filled = cells != ""
    sub = cells[filled]
    try:
        values = sub.astype(float)
    except ValueError:
        values = np.fromiter((parse_number(c) for c in sub), float, len(sub))
    else:
        underscore = pd.Series(sub, dtype=object).str.contains("_", regex=False).to_numpy(bool)
        values[underscore | ~np.isfinite(values)] = math.nan
    values[non_ascii(sub)] = math.nan  # float() reads Arabic-Indic and other Unicode digits
    out[filled] = values
    return out


def non_ascii(cells: np.ndarray) -> np.ndarray:
    """Mask of cells holding any non-ASCII character (one pass over the column when it is clean)."""
    if "".join(cells.tolist()).isascii():
        return np.zeros(len(cells), dtype=bool)
    return np.fromiter((not c.isascii() for c in cells), bool, len(cells))


class Context:
    """The raw tables seen by the rules, with cached parsed columns.

    Parameters
    ----------
    tables : dict of str to RawTable or None
    absent : set of str
        Tables with no file (or None given).
    donor_source : str or None
        ``cohort.toml`` donor source, when valid.
    """

    def __init__(self, tables: dict[str, RawTable | None], absent: set[str],
                 donor_source: str | None = None) -> None:
        self.tables = tables
        self.absent = absent
        self.donor_source = donor_source
        self._numbers: dict[tuple[str, str], np.ndarray] = {}

    def has(self, table: str, column: str | None = None) -> bool:
        """True when ``table`` was read and (if given) has ``column``."""
        raw = self.tables.get(table)
        return raw is not None and (column is None or column in raw.columns)

    def text(self, table: str, column: str) -> np.ndarray:
        """Stripped cells of ``table.column`` (object array of str, ``""`` = empty)."""
        return self.tables[table].columns[column]

    def empty(self, table: str, column: str) -> np.ndarray:
        """Boolean mask of empty cells."""
        return self.text(table, column) == ""

    def number(self, table: str, column: str) -> np.ndarray:
        """Cells parsed as float64, NaN where empty or not a number."""
        key = (table, column)
        if key not in self._numbers:
            cells = self.text(table, column)
            spec = column_spec(table, column)
            if column in self.tables[table].booleans and spec is not None and spec.kind != "flag":
                self._numbers[key] = np.full(len(cells), math.nan)  # refused by its own rule, never read as 0/1
            else:
                self._numbers[key] = parse_numbers(cells)
        return self._numbers[key]


Check = Callable[[Context], np.ndarray]


def _member(values: np.ndarray, allowed) -> np.ndarray:
    """Hash-based ``values in allowed`` mask (``numpy.isin`` is quadratic on objects)."""
    return pd.Series(values, dtype=object).isin(pd.Series(allowed, dtype=object)).to_numpy()


@dataclass(frozen=True)
class Rule:
    """One rule of the contract.

    Attributes
    ----------
    table, column : str
        Where the offending rows are (their line numbers are reported).
    description : str
        The condition, as printed; ``{first}`` is replaced by the first offending cell.
    check : callable
        ``check(context)`` returns the offending rows of ``table``: 0-based positions, or a
        boolean mask over its rows.
    needs : tuple of str
        Other ``table.column`` that must be present for the rule to run.
    reads : tuple of str
        Optional ``table.column`` the check also reads when present (a plausibility rule is
        skipped when one of them broke a rule).
    warning : bool
        A warning (reported, never refuses) rather than a violation.
    reason : str
        Why the rule exists and why it is an error or a warning (listed in docs/cohort-format.md);
        empty for the rules that follow from the column kinds. A rule with a reason is a
        plausibility rule: it runs after all the others, and only when none of them found a
        violation in a column it reads (so one bad cell is reported once, by its own rule).
    """

    table: str
    column: str | None
    description: str
    check: Check
    needs: tuple[str, ...] = ()
    warning: bool = False
    reason: str = ""
    reads: tuple[str, ...] = ()


# --- helpers building checks ---------------------------------------------------------------

def _outside(table: str, column: str, ok: Callable[[np.ndarray], np.ndarray]) -> Check:
    """Rows whose parsed value is present and does not satisfy ``ok``."""
    def check(ctx: Context) -> np.ndarray:
        x = ctx.number(table, column)
        with np.errstate(invalid="ignore"):
            return ~np.isnan(x) & ~ok(x)
    return check


def _range(table, column, description, ok, warning=False, reason="") -> Rule:
    return Rule(table, column, description, _outside(table, column, ok), warning=warning, reason=reason)


def _unknown_patient(table: str) -> Rule:
    def check(ctx: Context) -> np.ndarray:
        ids = ctx.text(table, "patient_id")
        return (ids != "") & ~_member(ids, ctx.text("patients", "patient_id"))
    return Rule(table, "patient_id", "unknown patient_id (not in patients)", check,
                needs=("patients.patient_id",))


def _duplicated(table: str, description: str) -> Rule:
    def check(ctx: Context) -> np.ndarray:
        ids = ctx.text(table, "patient_id")
        return pd.Series(ids).duplicated(keep=False).to_numpy() & (ids != "")
    return Rule(table, "patient_id", description, check)


def _patient_without(other: str, description: str, warning: bool) -> Rule:
    def check(ctx: Context) -> np.ndarray:
        ids = ctx.text("patients", "patient_id")
        return (ids != "") & ~_member(ids, ctx.text(other, "patient_id"))
    return Rule("patients", "patient_id", description, check,
                needs=(f"{other}.patient_id",), warning=warning)


def _kind_rules(table: str) -> list[Rule]:
    """Rules that follow from the column kinds: presence, numbers, integers, flags, categories."""
    rules: list[Rule] = []
    for spec in TABLES[table]:
        col = spec.name
        if not spec.nullable:
            rules.append(Rule(table, col, "missing value",
                              lambda ctx, c=col: ctx.empty(table, c)))
        if spec.kind in ("number", "integer", "day", "flag"):
            rules.append(Rule(
                table, col, "non-ASCII characters in a number (e.g. {first}); write digits 0-9",
                lambda ctx, c=col: non_ascii(ctx.text(table, c)),
                reason="error: Python reads Arabic-Indic and other Unicode digits as numbers, so a value typed "
                       "in another script would pass unseen; a number is written in ASCII digits"))
        if spec.kind in ("number", "integer", "day"):
            rules.append(Rule(
                table, col, "not a number (e.g. {first})",
                lambda ctx, c=col: ~ctx.empty(table, c) & np.isnan(ctx.number(table, c))
                & ~non_ascii(ctx.text(table, c)) & (c not in ctx.tables[table].booleans)))
            rules.append(Rule(
                table, col, "a true/false (boolean) column where a number is expected",
                lambda ctx, c=col: np.full(len(ctx.tables[table]), c in ctx.tables[table].booleans),
                reason="error: a Parquet or DataFrame boolean would be read as 0 or 1 (an age of 1 year); "
                       "only the 0/1 flags may be booleans"))
        if spec.kind == "integer":
            rules.append(_range(table, col, "not an integer (e.g. {first})",
                                lambda x: np.floor(x) == x))
        if spec.kind == "flag":
            rules.append(Rule(
                table, col, "must be 0 or 1 (e.g. {first})",
                lambda ctx, c=col: ~ctx.empty(table, c) & ~np.isin(ctx.number(table, c), (0, 1))))
        if spec.kind == "category":
            rules.append(Rule(
                table, col, f"must be one of {', '.join(spec.categories)} (e.g. {{first}})",
                lambda ctx, c=col, a=spec.categories:
                    ~ctx.empty(table, c) & ~_member(ctx.text(table, c), a)))
    return rules


# --- the rules written out -----------------------------------------------------------------

def _auc_required(ctx: Context) -> np.ndarray:
    if ctx.absent.isdisjoint(("atg_doses", "atg_levels")):
        return np.zeros(len(ctx.tables["patients"]), dtype=bool)
    return ctx.empty("patients", "auc_total")


def _bloq_without_value(ctx: Context) -> np.ndarray:
    return (ctx.number("atg_levels", "bloq") == 0) & ctx.empty("atg_levels", "concentration")


def _event_after_followup(column: str) -> Check:
    def check(ctx: Context) -> np.ndarray:
        return ctx.number("outcomes", column) > ctx.number("outcomes", "last_followup_day")
    return check


def _death_not_followup(ctx: Context) -> np.ndarray:
    death = ctx.number("outcomes", "death_day")
    last = ctx.number("outcomes", "last_followup_day")
    return ~np.isnan(death) & ~np.isnan(last) & (death != last)


def _agvhd3_alone(ctx: Context) -> np.ndarray:
    return ~ctx.empty("outcomes", "agvhd3_day") & ctx.empty("outcomes", "agvhd2_day")


def _agvhd3_first(ctx: Context) -> np.ndarray:
    return ctx.number("outcomes", "agvhd3_day") < ctx.number("outcomes", "agvhd2_day")


def _donor_differs(ctx: Context) -> np.ndarray:
    types = ctx.text("patients", "donor_type")
    if ctx.donor_source in (None, "mixed"):
        return np.zeros(len(types), dtype=bool)
    return (types != "") & (types != ctx.donor_source)


def _duplicate_rows(table: str, columns: tuple[str, ...], fill: dict | None = None) -> Check:
    """Rows whose ``columns`` (empty cells replaced by ``fill``) repeat another row's."""
    def check(ctx: Context) -> np.ndarray:
        frame = pd.DataFrame({c: _cells_or(ctx, table, c, (fill or {}).get(c)) for c in columns})
        ids = ctx.text(table, "patient_id")
        return frame.duplicated(keep=False).to_numpy() & (ids != "")
    return check


def _cells_or(ctx: Context, table: str, column: str, fill) -> np.ndarray:
    """Parsed numbers of a numeric column (text for the id), ``fill`` for an empty or absent column."""
    if column == "patient_id":
        return ctx.text(table, column)
    if not ctx.has(table, column):
        return np.full(len(ctx.tables[table]), fill, dtype=float)
    x = ctx.number(table, column)
    return x if fill is None else np.where(ctx.empty(table, column), fill, x)


def _per_patient(ctx: Context, table: str, values: pd.Series) -> np.ndarray:
    """``values`` (indexed by patient_id) looked up for each row of ``table`` (NaN when absent)."""
    values = values[~values.index.duplicated()]
    return pd.Series(ctx.text(table, "patient_id")).map(values).to_numpy(dtype=float)


def _dose_starts(ctx: Context) -> np.ndarray:
    hour = _cells_or(ctx, "atg_doses", "start_hour", DEFAULT_START_HOUR)
    return ctx.number("atg_doses", "day") + hour / 24.0


def _level_before_first_dose(ctx: Context) -> np.ndarray:
    first = pd.Series(_dose_starts(ctx), index=ctx.text("atg_doses", "patient_id")).groupby(level=0).min()
    start = _per_patient(ctx, "atg_levels", first)
    conc = ctx.number("atg_levels", "concentration")
    with np.errstate(invalid="ignore"):
        return (ctx.number("atg_levels", "day") < start - _SAMPLE_TOLERANCE_DAYS) & (conc > 0)


def _bloq_with_value(ctx: Context) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (ctx.number("atg_levels", "bloq") == 1) & (ctx.number("atg_levels", "concentration") > 0)


def _level_after_followup(ctx: Context) -> np.ndarray:
    last = pd.Series(ctx.number("outcomes", "last_followup_day"), index=ctx.text("outcomes", "patient_id"))
    with np.errstate(invalid="ignore"):
        return ctx.number("atg_levels", "day") > _per_patient(ctx, "atg_levels", last)


def _dose_per_kg_day(ctx: Context) -> np.ndarray:
    ids, day = ctx.text("atg_doses", "patient_id"), ctx.number("atg_doses", "day")
    daily = pd.Series(ctx.number("atg_doses", "dose_mg")).groupby([ids, day]).transform("sum").to_numpy()
    weight = pd.Series(ctx.number("patients", "weight_kg"), index=ctx.text("patients", "patient_id"))
    with np.errstate(invalid="ignore", over="ignore"):
        return daily / _per_patient(ctx, "atg_doses", weight) > MAX_DOSE_MG_PER_KG_PER_DAY


def _auc_and_levels(ctx: Context) -> np.ndarray:
    with_levels = _member(ctx.text("patients", "patient_id"), ctx.text("atg_levels", "patient_id"))
    return ~ctx.empty("patients", "auc_total") & with_levels & ("atg_doses" not in ctx.absent)


_LO_AGE, _HI_AGE = ELIGIBLE_AGE_YEARS
_SAMPLE_TOLERANCE_DAYS = 0.005  # 7.2 min: sampling days are written to 3 decimals (1.44 min)
#: Plausibility limits (issue 16): far beyond any ATG practice, so only entry errors cross them.
MAX_DOSE_MG_PER_KG_PER_DAY = 50.0
MAX_CONCENTRATION = 1000.0
MAX_FOLLOWUP_DAYS = 30 * 365.25
MAX_LEVEL_DAY = 365.0
DOSE_DAYS = (-7, 0)
INFUSION_HOURS = (1.0, 24.0)

_PATIENTS = [
    *_kind_rules("patients"),
    _duplicated("patients", "duplicate patient_id"),
    _range("patients", "age_years", "must be > 0 and <= 100", lambda x: (x > 0) & (x <= 100)),
    _range("patients", "weight_kg", "must be between 20 and 250",
           lambda x: (x >= 20) & (x <= 250)),
    _range("patients", "hla_mismatches", "must be between 0 and 5", lambda x: (x >= 0) & (x <= 5)),
    _range("patients", "alc_pre_atg", "must be >= 0", lambda x: x >= 0),
    _range("patients", "auc_total", "must be >= 0", lambda x: x >= 0),
    Rule("patients", "auc_total", "given for patients who also have ATG doses and levels (it is ignored: the AUC is "
         "computed from them)", _auc_and_levels, needs=("atg_levels.patient_id",), warning=True,
         reason="warning: with levels the exposure is recomputed and auc_total is not read; the two may disagree, "
                "and the user must know which one counts. Not an error: a centre may keep its own AUC beside the "
                "raw data"),
    Rule("patients", "auc_total", "missing value (required without ATG dose and level data)",
         _auc_required),
    _patient_without("outcomes", "no row in outcomes", warning=False),
]
_DOSES = [
    *_kind_rules("atg_doses"),
    _unknown_patient("atg_doses"),
    _range("atg_doses", "start_hour", "must be between 0 and 24", lambda x: (x >= 0) & (x <= 24)),
    _range("atg_doses", "dose_mg", "must be > 0", lambda x: x > 0),
    _range("atg_doses", "infusion_hours", "must be > 0", lambda x: x > 0),
    Rule("atg_doses", None, "duplicate dose (same patient_id, day and start_hour)",
         _duplicate_rows("atg_doses", ("patient_id", "day", "start_hour"), {"start_hour": DEFAULT_START_HOUR}),
         needs=("atg_doses.patient_id", "atg_doses.day"), reads=("atg_doses.start_hour",),
         reason="error: a repeated row doubles the dose and the exposure (one such row turned a recommendation "
                "of 150/150 mg into 0/0 mg); two infusions at the same time are not given"),
    _range("atg_doses", "day", f"must be between {DOSE_DAYS[0]} and {DOSE_DAYS[1]} (ATG is given before the "
           "transplant)", lambda x: (x >= DOSE_DAYS[0]) & (x <= DOSE_DAYS[1]),
           reason="error: ATG in conditioning is given on days -5..-1 (within -7..0 for any schedule); a dose "
                  "after the transplant is another treatment or a sign error, and would be read as exposure"),
    _range("atg_doses", "infusion_hours", f"must be between {INFUSION_HOURS[0]:g} and {INFUSION_HOURS[1]:g} h",
           lambda x: (x >= INFUSION_HOURS[0]) & (x <= INFUSION_HOURS[1]),
           reason="error: Thymoglobulin is infused over 4-12 h (label: first dose >= 6 h); outside 1-24 h the "
                  "duration is an entry error (minutes, or days typed as hours) and changes the forecast"),
    Rule("atg_doses", "dose_mg", f"more than {MAX_DOSE_MG_PER_KG_PER_DAY:g} mg/kg on one day (all infusions of "
         "the day, by patients.weight_kg)", _dose_per_kg_day, needs=("patients.weight_kg", "atg_doses.day"),
         reason="error: ATG doses are 1.5-2.5 mg/kg/day, at most about 10; fifty is beyond physiology and a "
                "unit error (ug for mg) or a typo, which the exposure and the window would absorb silently"),
]
_LEVELS = [
    *_kind_rules("atg_levels"),
    _unknown_patient("atg_levels"),
    _range("atg_levels", "concentration", "must be >= 0", lambda x: x >= 0),
    Rule("atg_levels", "bloq", "is 0 but concentration is empty", _bloq_without_value,
         needs=("atg_levels.concentration",)),
    Rule("atg_levels", "bloq", "is 1 (below the limit of quantification) but concentration is > 0",
         _bloq_with_value, needs=("atg_levels.concentration",),
         reason="error: the flag and the value contradict each other and which one is wrong cannot be told; a "
                "BLOQ sample has an empty (or 0) concentration"),
    Rule("atg_levels", None, "duplicate level (same patient_id and day)",
         _duplicate_rows("atg_levels", ("patient_id", "day")), needs=("atg_levels.patient_id", "atg_levels.day"),
         reason="error: two results for one sample (or one sample entered twice) weigh it twice, and when they "
                "differ (a level repeated at 10x) one is wrong"),
    Rule("atg_levels", "day", "before the patient's first ATG dose, with a concentration > 0",
         _level_before_first_dose, needs=("atg_levels.concentration", "atg_doses.patient_id", "atg_doses.day"),
         reads=("atg_doses.start_hour", "atg_levels.bloq"),
         reason="error: no ATG can be measured before the first dose; a pre-dose sample is BLOQ (or 0), so a "
                "positive one has a wrong day or belongs to another patient"),
    _range("atg_levels", "day", f"must be <= {MAX_LEVEL_DAY:g} (days from transplant)",
           lambda x: x <= MAX_LEVEL_DAY,
           reason="error: rabbit ATG is measurable for weeks to about two months after the transplant; a level a "
                  "year later is not an ATG level of this course (day 5,000 is a typo), and it would stretch the "
                  "AUC"),
    Rule("atg_levels", "day", "after the patient's last_followup_day", _level_after_followup,
         needs=("outcomes.patient_id", "outcomes.last_followup_day"), warning=True,
         reason="warning: a sample cannot be drawn after the last contact, so one of the two dates is wrong; "
                "not an error because the level still informs the PK fit, and virtual cohorts sample on a "
                "fixed design (up to day 60) whatever the outcome"),
    _range("atg_levels", "concentration", f"must be <= {MAX_CONCENTRATION:g} (in concentration_unit)",
           lambda x: x <= MAX_CONCENTRATION,
           reason="error: active ATG peaks at tens of UE/mL (total rabbit IgG at 100-200 ug/mL); beyond 1,000 the "
                  "value is a unit error and would dominate any AUC"),
]
_OUTCOMES = [
    *_kind_rules("outcomes"),
    _unknown_patient("outcomes"),
    _duplicated("outcomes", "duplicate patient_id (one row per patient)"),
    _range("outcomes", "last_followup_day", "must be > 0", lambda x: x > 0),
    _range("outcomes", "last_followup_day", f"must be <= {MAX_FOLLOWUP_DAYS:g} days (30 years)",
           lambda x: x <= MAX_FOLLOWUP_DAYS,
           reason="error: transplant registries follow patients for decades at most; beyond 30 years the day is a "
                  "typo (1e308 days) that would stretch every survival curve"),
    *[rule for col in EVENT_DAY_COLUMNS for rule in (
        _range("outcomes", col, "must be >= 0", lambda x: x >= 0),
        Rule("outcomes", col, "must be <= last_followup_day", _event_after_followup(col),
             needs=("outcomes.last_followup_day",)),
    )],
    Rule("outcomes", "death_day", "must equal last_followup_day", _death_not_followup,
         needs=("outcomes.last_followup_day",)),
    Rule("outcomes", "agvhd3_day", "present but agvhd2_day is empty", _agvhd3_alone,
         needs=("outcomes.agvhd2_day",)),
    Rule("outcomes", "agvhd3_day", "earlier than agvhd2_day", _agvhd3_first,
         needs=("outcomes.agvhd2_day",)),
]
_WARNINGS = [
    _range("patients", "age_years",
           f"outside trial eligibility {_LO_AGE:g}..{_HI_AGE:g} years",
           lambda x: (x >= _LO_AGE) & (x <= _HI_AGE), warning=True),
    Rule("patients", "disease_status",
         f"not {' or '.join(ELIGIBLE_DISEASE_STATUS)} (outside trial eligibility)",
         lambda ctx: ~ctx.empty("patients", "disease_status") & ~_member(
             ctx.text("patients", "disease_status"), ELIGIBLE_DISEASE_STATUS),
         warning=True),
    Rule("patients", "donor_type", "differs from cohort.toml donor_source", _donor_differs,
         warning=True),
    _patient_without("atg_doses", "no ATG doses", warning=True),
    _patient_without("atg_levels", "no ATG levels", warning=True),
]

#: Every rule, in reporting order.
RULES: tuple[Rule, ...] = (*_PATIENTS, *_DOSES, *_LEVELS, *_OUTCOMES, *_WARNINGS)


def offending_positions(result) -> np.ndarray:
    """0-based row positions from a check's result (positions, or a boolean mask)."""
    result = np.asarray(result)
    return np.flatnonzero(result) if result.dtype == bool else np.sort(result.astype(np.int64))


def _needed(rule: Rule) -> list[str]:
    """``table`` or ``table.column`` names a rule cannot run without.

    A rule that reads more than one table joins them on ``patient_id``, so it also needs that key
    in each of them (a missing key column is reported once by the schema check, as ``column
    missing``; the join must not fail on it).
    """
    needs = [*rule.needs, f"{rule.table}.{rule.column}" if rule.column else rule.table]
    tables = {n.split(".", 1)[0] for n in [*needs, *rule.reads]}
    if len(tables) > 1:
        needs += [f"{t}.patient_id" for t in sorted(tables)]
    return needs


def run_rules(ctx: Context, rules=RULES) -> tuple[list[Violation], list[Violation]]:
    """Run every applicable rule; return ``(violations, warnings)``.

    The rules with a ``reason`` (plausibility) run last, and not when a column they read already
    broke a rule.
    """
    violations: list[Violation] = []
    warnings: list[Violation] = []
    ordered = [r for r in rules if not r.reason] + [r for r in rules if r.reason]
    for rule in ordered:
        needs = _needed(rule)
        if not all(ctx.has(*need.split(".", 1)) for need in needs):
            continue
        if rule.reason:
            broken = {v.table if v.column is None else f"{v.table}.{v.column}" for v in violations}
            read = [*needs, *rule.reads]
            if broken.intersection(read) or any(n.split(".", 1)[0] in broken for n in read):
                continue
        positions = offending_positions(rule.check(ctx))
        if not positions.size:
            continue
        description = rule.description
        if "{first}" in description:
            first = ctx.text(rule.table, rule.column)[positions[0]]
            description = description.format(first=repr(first))
        found = Violation.at(rule.table, rule.column, description,
                             ctx.tables[rule.table].lines[positions])
        (warnings if rule.warning else violations).append(found)
    return violations, warnings
