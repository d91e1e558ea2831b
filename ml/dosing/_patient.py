"""One patient's input to the dosing engine: covariates, doses already given, levels so far.

The JSON form (``atgwin dose --patient p.json``) uses the cohort format's column names::

    {"patient_id": "P01", "weight_kg": 68.5, "alc_pre_atg": 0.3, "concentration_unit": "UE/mL",
     "doses":  [{"day": -5, "start_hour": 8, "dose_mg": 175, "infusion_hours": 6}, ...],
     "levels": [{"day": -4.4167, "concentration": 5.2}, {"day": -3.6667, "bloq": 1}, ...]}

Times are days from transplant (levels: fractional, ``day + hour/24``), doses are total
Thymoglobulin in mg, concentrations in ``concentration_unit``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ml.pk import HOURS_PER_DAY

from ._errors import DosingRefused

__all__ = ["GivenDose", "Level", "PatientData", "patients_from_cohort"]

WEIGHT_RANGE_KG = (20.0, 250.0)  # the cohort contract's rule


def _number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class GivenDose:
    """An ATG infusion already given.

    Attributes
    ----------
    day : int
        Day of the infusion, days from transplant (e.g. -5).
    dose_mg : float
        Total Thymoglobulin infused, mg (> 0).
    infusion_hours : float
        Duration, hours (> 0).
    start_hour : float
        Clock hour the infusion started (0..24).
    """

    day: int
    dose_mg: float
    infusion_hours: float
    start_hour: float = 8.0

    @property
    def start(self) -> float:
        """Start time, days from transplant."""
        return self.day + self.start_hour / HOURS_PER_DAY


@dataclass(frozen=True)
class Level:
    """A measured active-ATG level.

    Attributes
    ----------
    day : float
        Sampling time, days from transplant (``day + hour/24``).
    concentration : float or None
        Measured concentration in the patient's unit; None when below the LLOQ.
    bloq : bool
        True when the sample was below the limit of quantification.
    """

    day: float
    concentration: float | None
    bloq: bool = False


def _dose_problems(i: int, d: dict) -> list[str]:
    p = []
    day = d.get("day")
    if not (_number(day) and float(day) == int(day)):
        p.append(f"doses[{i}].day must be an integer day from transplant, got {day!r}")
    for key in ("dose_mg", "infusion_hours"):
        v = d.get(key)
        if v is None:
            p.append(f"doses[{i}].{key} is required")
        elif not (_number(v) and v > 0):
            p.append(f"doses[{i}].{key} must be a number > 0, got {v!r}")
    sh = d.get("start_hour", 8.0)
    if not (_number(sh) and 0 <= sh <= 24):
        p.append(f"doses[{i}].start_hour must be a number in 0..24, got {sh!r}")
    unknown = sorted(set(d) - {"day", "dose_mg", "infusion_hours", "start_hour", "patient_id"})
    if unknown:
        p.append(f"doses[{i}] has unknown key(s) {unknown}")
    return p


def _level_problems(i: int, lv: dict) -> list[str]:
    p = []
    if not _number(lv.get("day")):
        p.append(f"levels[{i}].day must be a finite number (days from transplant), got {lv.get('day')!r}")
    bloq = lv.get("bloq", 0)
    if bloq not in (0, 1, True, False):
        p.append(f"levels[{i}].bloq must be 0 or 1, got {bloq!r}")
    c = lv.get("concentration")
    if not bloq and c is None:
        p.append(f"levels[{i}].concentration is required unless bloq is 1")
    elif c is not None and not (_number(c) and c >= 0):
        p.append(f"levels[{i}].concentration must be a number >= 0, got {c!r}")
    unknown = sorted(set(lv) - {"day", "concentration", "bloq", "patient_id"})
    if unknown:
        p.append(f"levels[{i}] has unknown key(s) {unknown}")
    return p


@dataclass(frozen=True)
class PatientData:
    """Everything the engine needs about one patient, validated on construction.

    Attributes
    ----------
    patient_id : str
    weight_kg : float
        Body weight, kg (20..250).
    alc : float
        Absolute lymphocyte count before the first ATG dose, x10^9/L (>= 0).
    concentration_unit : str
        Unit of the levels (e.g. ``"UE/mL"``); must match the window's unit / day.
    doses : tuple of GivenDose
        ATG infusions already given (at least one).
    levels : tuple of Level
        Levels measured so far (may be empty: the forecast then rests on the population model).

    Raises
    ------
    DosingRefused
        Listing every problem (missing weight, lymphocyte count, unit or doses, bad values).
    """

    patient_id: str
    weight_kg: float
    alc: float
    concentration_unit: str
    doses: tuple[GivenDose, ...]
    levels: tuple[Level, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if not (isinstance(self.patient_id, str) and self.patient_id.strip()):
            problems.append(f"patient_id must be a non-empty string, got {self.patient_id!r}")
        lo, hi = WEIGHT_RANGE_KG
        if self.weight_kg is None:
            problems.append("weight_kg is required")
        elif not (_number(self.weight_kg) and lo <= self.weight_kg <= hi):
            problems.append(f"weight_kg must be a number in {lo:g}..{hi:g} kg, got {self.weight_kg!r}")
        if self.alc is None:
            problems.append("alc_pre_atg (lymphocyte count before ATG, x10^9/L) is required")
        elif not (_number(self.alc) and self.alc >= 0):
            problems.append(f"alc_pre_atg must be a number >= 0 (x10^9/L), got {self.alc!r}")
        if not (isinstance(self.concentration_unit, str) and self.concentration_unit.strip()):
            problems.append("concentration_unit is required (e.g. 'UE/mL'); levels in an unstated unit are refused")
        object.__setattr__(self, "doses", tuple(self.doses))
        object.__setattr__(self, "levels", tuple(self.levels))
        if not self.doses:
            problems.append("doses: at least one ATG dose already given is required (none given)")
        if problems:
            raise DosingRefused(f"patient {self.patient_id!r} refused: " + "; ".join(problems))
        object.__setattr__(self, "weight_kg", float(self.weight_kg))
        object.__setattr__(self, "alc", float(self.alc))

    # -- arrays ---------------------------------------------------------------------------
    @property
    def first_dose_start(self) -> float:
        """Start of the first infusion, days from transplant."""
        return min(d.start for d in self.doses)

    def level_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(day, concentration, bloq)`` of the levels (concentration NaN when BLOQ)."""
        day = np.array([lv.day for lv in self.levels], dtype=float)
        conc = np.array([np.nan if lv.bloq or lv.concentration is None else lv.concentration
                         for lv in self.levels], dtype=float)
        bloq = np.array([bool(lv.bloq) for lv in self.levels], dtype=bool)
        return day, conc, bloq

    # -- JSON -----------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict) -> "PatientData":
        """Build from the JSON form (see the module docstring); every problem is listed."""
        if not isinstance(data, dict):
            raise DosingRefused(f"a patient must be a JSON object, got {type(data).__name__}")
        pid = data.get("patient_id")
        problems = []
        raw_doses, raw_levels = data.get("doses", []), data.get("levels", [])
        if not isinstance(raw_doses, list):
            problems.append(f"doses must be a list, got {type(raw_doses).__name__}")
            raw_doses = []
        if not isinstance(raw_levels, list):
            problems.append(f"levels must be a list, got {type(raw_levels).__name__}")
            raw_levels = []
        for i, d in enumerate(raw_doses):
            problems += _dose_problems(i, d) if isinstance(d, dict) else [f"doses[{i}] must be an object"]
        for i, lv in enumerate(raw_levels):
            problems += _level_problems(i, lv) if isinstance(lv, dict) else [f"levels[{i}] must be an object"]
        unknown = sorted(set(data) - {"patient_id", "weight_kg", "alc_pre_atg", "concentration_unit",
                                      "doses", "levels"})
        if unknown:
            problems.append(f"unknown key(s) {unknown}")
        if problems:
            raise DosingRefused(f"patient {pid!r} refused: " + "; ".join(problems))
        doses = tuple(GivenDose(day=int(d["day"]), dose_mg=float(d["dose_mg"]),
                                infusion_hours=float(d["infusion_hours"]),
                                start_hour=float(d.get("start_hour", 8.0))) for d in raw_doses)
        levels = tuple(Level(day=float(lv["day"]),
                             concentration=None if lv.get("bloq") or lv.get("concentration") is None
                             else float(lv["concentration"]),
                             bloq=bool(lv.get("bloq", 0))) for lv in raw_levels)
        return cls(patient_id=pid, weight_kg=data.get("weight_kg"), alc=data.get("alc_pre_atg"),
                   concentration_unit=data.get("concentration_unit"), doses=doses, levels=levels)

    @classmethod
    def from_json(cls, path: str | Path) -> "PatientData":
        """Read the JSON form from a file."""
        try:
            data = json.loads(Path(path).read_text())
        except OSError as exc:
            raise DosingRefused(f"cannot read patient file {path}: {exc.strerror or exc}") from exc
        except json.JSONDecodeError as exc:
            raise DosingRefused(f"patient file {path} is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def to_dict(self) -> dict:
        """The JSON form."""
        return {
            "patient_id": self.patient_id, "weight_kg": self.weight_kg, "alc_pre_atg": self.alc,
            "concentration_unit": self.concentration_unit,
            "doses": [{"day": d.day, "start_hour": d.start_hour, "dose_mg": d.dose_mg,
                       "infusion_hours": d.infusion_hours} for d in self.doses],
            "levels": [{"day": lv.day, "concentration": lv.concentration, "bloq": int(lv.bloq)}
                       for lv in self.levels],
        }


def patients_from_cohort(cohort, decision_time: float) -> tuple[list[PatientData | DosingRefused], dict]:
    """The engine's input for every patient of a cohort, as known at ``decision_time``.

    Only doses that started and levels drawn before the decision (the start of the first
    adjustable infusion, e.g. day -3 at 08:00) are kept: the doses given later in the cohort
    are the ones the engine replaces.

    Parameters
    ----------
    cohort : ml.cohort.Cohort
        A loaded cohort with doses and levels.
    decision_time : float
        Days from transplant; levels with ``day <= decision_time`` (to the second: pre-dose
        samples are drawn at the infusion start) and doses starting before it are used.

    Returns
    -------
    patients : list of PatientData or DosingRefused
        In ``cohort.patients`` order; a patient that cannot be dosed is its refusal.
    dropped : dict
        Counts of ``doses`` and ``levels`` rows left out because they come after the decision.
    """
    if cohort.doses is None or cohort.levels is None:
        raise DosingRefused("the cohort has no atg_doses / atg_levels tables: nothing to fit a patient to")
    tol = 1.0 / 86400.0
    doses = cohort.doses.copy()
    doses["start"] = doses["day"].to_numpy(float) + doses["start_hour"].fillna(8.0).to_numpy(float) / HOURS_PER_DAY
    keep_d = doses["start"] < decision_time - tol
    levels = cohort.levels
    keep_l = levels["day"].to_numpy(float) <= decision_time + tol
    dose_groups = doses[keep_d].groupby(doses["patient_id"].astype(str)[keep_d], sort=False)
    level_groups = levels[keep_l].groupby(levels["patient_id"].astype(str)[keep_l], sort=False)
    dose_map = {k: g for k, g in dose_groups}
    level_map = {k: g for k, g in level_groups}
    out: list[PatientData | DosingRefused] = []
    unit = cohort.meta.concentration_unit
    for row in cohort.patients.itertuples(index=False):
        pid = str(row.patient_id)
        d = dose_map.get(pid, pd.DataFrame(columns=["day", "dose_mg", "infusion_hours", "start_hour"]))
        lv = level_map.get(pid, pd.DataFrame(columns=["day", "concentration", "bloq"]))
        given = tuple(GivenDose(day=int(r.day), dose_mg=float(r.dose_mg), infusion_hours=float(r.infusion_hours),
                                start_hour=8.0 if pd.isna(r.start_hour) else float(r.start_hour))
                      for r in d.itertuples(index=False))
        measured = tuple(Level(day=float(r.day),
                               concentration=None if int(r.bloq) or pd.isna(r.concentration) else float(r.concentration),
                               bloq=bool(int(r.bloq)) or pd.isna(r.concentration))
                         for r in lv.itertuples(index=False))
        weight = getattr(row, "weight_kg", None)
        alc = getattr(row, "alc_pre_atg", None)
        try:
            out.append(PatientData(patient_id=pid, weight_kg=None if pd.isna(weight) else float(weight),
                                   alc=None if alc is None or pd.isna(alc) else float(alc),
                                   concentration_unit=unit, doses=given, levels=measured))
        except DosingRefused as exc:
            out.append(exc)
    dropped = {"doses": int((~keep_d).sum()), "levels": int((~keep_l).sum())}
    return out, dropped
