"""Real doses: caps per day, the vial grid and the schedule of the adjustable infusions."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ml.pk import HOURS_PER_DAY

from ._errors import DosingRefused

__all__ = ["MAX_REGIMENS", "AdjustmentSchedule", "DoseCaps"]

_EPS = 1e-9  # mg: the tolerance of every cap, minimum and course check (as in day_violation)
#: Most candidate regimens the engine evaluates for one patient. Each one is forecast for every
#: posterior draw (``draws x regimens`` floats per patient, about 40 MB at 256 draws), so the caps
#: must not ask for more: the default caps need 21 x 21 = 441 for two adjustable days; 20,000
#: allows a daily cap of 3,500 mg in 25 mg vials. Caps of 1,000 mg/kg and 100,000 mg a day asked
#: for 16 million and grew a process to 24 GB (issue 16).
MAX_REGIMENS = 20_000


@dataclass(frozen=True)
class DoseCaps:
    """Limits on every recommended daily dose, and the vial size.

    No dose cap for this use is published (docs/sources.md, "Dosing practicalities");
    the defaults are this project's choice and a centre should set its own.

    Attributes
    ----------
    mg_per_kg_per_day : float
        Largest daily dose per kg of body weight, mg/kg (default 5, twice the fixed regimen's
        2.5 mg/kg/day).
    mg_per_day : float
        Largest daily dose, mg, whatever the weight (default 500).
    min_mg_per_day : float
        Smallest daily dose, mg (default 0: a day may be skipped).
    vial_mg : float
        Vial size, mg (Thymoglobulin: 25); every dose is a whole number of vials.
    course_mg_per_kg : float or None
        Largest total course (doses already given + recommended), mg/kg; None = no course cap.
    """

    mg_per_kg_per_day: float = 5.0
    mg_per_day: float = 500.0
    min_mg_per_day: float = 0.0
    vial_mg: float = 25.0
    course_mg_per_kg: float | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.vial_mg, "vial_mg > 0", lambda v: v > 0),
            (self.mg_per_kg_per_day, "mg_per_kg_per_day > 0", lambda v: v > 0),
            (self.mg_per_day, "mg_per_day > 0", lambda v: v > 0),
            (self.min_mg_per_day, "min_mg_per_day >= 0", lambda v: v >= 0),
        ]
        for value, condition, ok in checks:
            if not (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and math.isfinite(value) and ok(value)):
                raise ValueError(f"DoseCaps: `{condition}` must hold, got {value!r}")
        if self.min_mg_per_day > self.mg_per_day:
            raise ValueError(f"DoseCaps: `min_mg_per_day <= mg_per_day` must hold, got "
                             f"min_mg_per_day={self.min_mg_per_day}, mg_per_day={self.mg_per_day}")
        c = self.course_mg_per_kg
        if c is not None and not (isinstance(c, (int, float)) and math.isfinite(c) and c > 0):
            raise ValueError(f"DoseCaps: `course_mg_per_kg > 0` must hold (or None), got {c!r}")

    def max_vials(self, weight_kg: float) -> int:
        """Most vials allowed on one day for a patient of ``weight_kg`` (rounded down)."""
        cap_mg = min(self.mg_per_kg_per_day * weight_kg, self.mg_per_day)
        return int(math.floor((cap_mg + _EPS) / self.vial_mg))

    def min_vials(self) -> int:
        """Fewest vials on one day (rounded up)."""
        return int(math.ceil((self.min_mg_per_day - _EPS) / self.vial_mg))

    def course_vials(self, weight_kg: float, given_mg: float) -> int | None:
        """Most vials left for the adjustable days under the course cap (None: no course cap)."""
        if self.course_mg_per_kg is None:
            return None
        left = self.course_mg_per_kg * weight_kg - given_mg
        return int(math.floor((left + _EPS) / self.vial_mg))

    def day_violation(self, mg: float, weight_kg: float) -> str | None:
        """Why a daily dose is not allowed (None when it is): cap, minimum or vial grid."""
        vials = mg / self.vial_mg
        if abs(vials - round(vials)) > 1e-9:
            return f"{mg} mg is not a whole number of {self.vial_mg:g} mg vials"
        limit = min(self.mg_per_kg_per_day * weight_kg, self.mg_per_day)
        if mg > limit + 1e-9:
            return (f"{mg} mg exceeds the daily cap min({self.mg_per_kg_per_day:g} mg/kg x {weight_kg:g} kg, "
                    f"{self.mg_per_day:g} mg) = {limit:g} mg")
        if mg < self.min_mg_per_day - 1e-9:
            return f"{mg} mg is below the daily minimum {self.min_mg_per_day:g} mg"
        return None

    def n_regimens(self, weight_kg: float, n_days: int) -> int:
        """Number of candidate regimens (before any course cap) for a patient of ``weight_kg``."""
        return max(self.max_vials(weight_kg) - self.min_vials() + 1, 0) ** int(n_days)

    def check_size(self, weight_kg: float, n_days: int) -> None:
        """Refuse caps that would need more than :data:`MAX_REGIMENS` candidate regimens (before allocating).

        Raises
        ------
        DosingRefused
        """
        n = self.n_regimens(weight_kg, n_days)
        if n > MAX_REGIMENS:
            per_day = self.max_vials(weight_kg) - self.min_vials() + 1
            top = self.max_vials(weight_kg) * self.vial_mg
            raise DosingRefused(
                f"the caps allow {per_day} daily doses ({self.min_mg_per_day:g}..{top:g} "
                f"mg in {self.vial_mg:g} mg vials) on {n_days} adjustable days for {weight_kg:g} kg, i.e. {n:,} "
                f"candidate regimens, more than the {MAX_REGIMENS:,} the engine evaluates (each is forecast for every "
                "posterior draw, so memory grows with their number); lower --cap-mg-per-kg / --cap-mg or raise "
                "--min-mg")

    def grid(self, weight_kg: float, n_days: int, given_mg: float = 0.0) -> np.ndarray:
        """Every allowed regimen as whole vials per adjustable day, ``(R, n_days)`` int.

        Raises
        ------
        DosingRefused
            When no regimen satisfies the caps (e.g. minimum above the cap for this weight), or
            when the caps would need more than :data:`MAX_REGIMENS` regimens (checked before
            allocating).
        """
        lo, hi = self.min_vials(), self.max_vials(weight_kg)
        if hi < lo:
            raise DosingRefused(
                f"no dose satisfies the caps for {weight_kg:g} kg: daily minimum {self.min_mg_per_day:g} mg "
                f"exceeds the daily cap of {hi * self.vial_mg:g} mg")
        self.check_size(weight_kg, n_days)
        levels = np.arange(lo, hi + 1)
        mesh = np.stack(np.meshgrid(*([levels] * n_days), indexing="ij"), axis=-1).reshape(-1, n_days)
        left = self.course_vials(weight_kg, given_mg)
        if left is not None:
            mesh = mesh[mesh.sum(axis=1) <= left]
            if mesh.size == 0:
                raise DosingRefused(
                    f"no dose satisfies the course cap {self.course_mg_per_kg:g} mg/kg for {weight_kg:g} kg: "
                    f"{given_mg:g} mg already given leaves {max(left, 0) * self.vial_mg:g} mg")
        return mesh

    def to_dict(self) -> dict:
        return {"mg_per_kg_per_day": self.mg_per_kg_per_day, "mg_per_day": self.mg_per_day,
                "min_mg_per_day": self.min_mg_per_day, "vial_mg": self.vial_mg,
                "course_mg_per_kg": self.course_mg_per_kg}

    @classmethod
    def from_dict(cls, data: dict) -> "DoseCaps":
        return cls(**data)


@dataclass(frozen=True)
class AdjustmentSchedule:
    """When the adjustable infusions are given.

    Attributes
    ----------
    days : tuple of int
        Adjustable infusion days, days from transplant (default day -3 and day -2).
    start_hour : float
        Clock hour each infusion starts (default 08:00).
    infusion_hours : float
        Duration of each, hours (default 4, the label's minimum for later infusions).
    """

    days: tuple[int, ...] = (-3, -2)
    start_hour: float = 8.0
    infusion_hours: float = 4.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", tuple(int(d) for d in self.days))
        if not self.days or list(self.days) != sorted(set(self.days)):
            raise ValueError(f"AdjustmentSchedule: `days` must be distinct and increasing, got {self.days}")
        if not 0 <= self.start_hour < 24:
            raise ValueError(f"AdjustmentSchedule: `0 <= start_hour < 24` must hold, got {self.start_hour}")
        if not 0 < self.infusion_hours <= 24:
            raise ValueError(f"AdjustmentSchedule: `0 < infusion_hours <= 24` must hold, got {self.infusion_hours}")

    @property
    def starts(self) -> np.ndarray:
        """Start of each adjustable infusion, days from transplant."""
        return np.asarray(self.days, dtype=float) + self.start_hour / HOURS_PER_DAY

    @property
    def decision_time(self) -> float:
        """Start of the first adjustable infusion: levels after it cannot inform the decision."""
        return float(self.starts[0])

    def to_dict(self) -> dict:
        return {"days": list(self.days), "start_hour": self.start_hour, "infusion_hours": self.infusion_hours}
