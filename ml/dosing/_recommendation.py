"""What leaves the engine: a frozen, self-validating :class:`DoseRecommendation`.

The recommendation checks its own safety conditions on construction (every dose on the vial
grid and within the caps, a two-sided window (:func:`ml.dosing._gates.dosable_problem`) that is
validated or an override that is recorded, a coherent forecast whose three harms sum to 1), so
a recommendation that breaks them cannot exist, whatever produced it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ml._status import WindowStatus

from ._gates import dosable_problem
from ._regimen import DoseCaps
from ._window import WindowOverride, WindowRecord

__all__ = ["AUCForecast", "DayDose", "DoseRecommendation", "PosteriorSummary"]


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class DayDose:
    """One recommended daily infusion.

    Attributes
    ----------
    day : int
        Days from transplant (e.g. -3).
    mg : float
        Total Thymoglobulin, mg (a whole number of vials; 0 = no infusion that day).
    vials : int
        Number of vials.
    mg_per_kg : float
        ``mg / weight``, mg/kg.
    start_hour : float
        Clock hour the infusion starts.
    infusion_hours : float
        Duration, hours.
    """

    day: int
    mg: float
    vials: int
    mg_per_kg: float
    start_hour: float
    infusion_hours: float

    def __post_init__(self) -> None:
        if not (isinstance(self.vials, int) and not isinstance(self.vials, bool) and self.vials >= 0):
            raise ValueError(f"DayDose: `vials` must be an integer >= 0, got {self.vials!r}")
        if not (_finite(self.mg) and self.mg >= 0):
            raise ValueError(f"DayDose: `mg >= 0` must hold, got mg={self.mg!r}")
        if not (_finite(self.mg_per_kg) and self.mg_per_kg >= 0):
            raise ValueError(f"DayDose: `mg_per_kg >= 0` must hold, got mg_per_kg={self.mg_per_kg!r}")

    def to_dict(self) -> dict:
        return {"day": self.day, "mg": self.mg, "vials": self.vials, "mg_per_kg": self.mg_per_kg,
                "start_hour": self.start_hour, "infusion_hours": self.infusion_hours}


@dataclass(frozen=True)
class AUCForecast:
    """Forecast total active-ATG AUC under one regimen.

    Attributes
    ----------
    doses_mg : tuple of float
        Daily doses of the regimen on the adjustable days, mg.
    median, lower, upper : float
        Posterior median and ``interval`` prediction interval of total AUC, UE*day/mL.
    interval : float
        Coverage of ``[lower, upper]`` (0.9: the 5th to the 95th percentile).
    p_in_window : float
        Posterior probability that total AUC lies in ``[window.lower, window.upper)``.
    unit : str
        Exposure unit.
    p_below_floor : float
        Posterior probability that total AUC is below ``window.lower`` (under-exposure).
    p_above_ceiling : float
        Posterior probability that total AUC is at or above ``window.upper`` (over-exposure).
        The three probabilities come from the same weighted posterior draws and sum to 1.
    """

    doses_mg: tuple[float, ...]
    median: float
    lower: float
    upper: float
    interval: float
    p_in_window: float
    unit: str
    p_below_floor: float
    p_above_ceiling: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "doses_mg", tuple(float(x) for x in self.doses_mg))
        vals = (self.lower, self.median, self.upper)
        if not all(_finite(v) and v >= 0 for v in vals):
            raise ValueError(f"AUCForecast: lower, median, upper must be finite and >= 0, got {vals}")
        if not self.lower <= self.median <= self.upper:
            raise ValueError(f"AUCForecast: `lower <= median <= upper` must hold, got "
                             f"lower={self.lower}, median={self.median}, upper={self.upper}")
        for name in ("p_below_floor", "p_in_window", "p_above_ceiling"):
            v = getattr(self, name)
            if not (_finite(v) and 0 <= v <= 1):
                raise ValueError(f"AUCForecast: `0 <= {name} <= 1` must hold, got {v!r}")
        total = self.p_below_floor + self.p_in_window + self.p_above_ceiling
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"AUCForecast: `p_below_floor + p_in_window + p_above_ceiling == 1` must hold, got "
                             f"{self.p_below_floor} + {self.p_in_window} + {self.p_above_ceiling} = {total}")
        if not (_finite(self.interval) and 0 < self.interval < 1):
            raise ValueError(f"AUCForecast: `0 < interval < 1` must hold, got {self.interval!r}")

    def to_dict(self) -> dict:
        return {"doses_mg": list(self.doses_mg), "median": self.median, "lower": self.lower,
                "upper": self.upper, "interval": self.interval, "p_below_floor": self.p_below_floor,
                "p_in_window": self.p_in_window, "p_above_ceiling": self.p_above_ceiling, "unit": self.unit}

    @classmethod
    def from_dict(cls, d: dict) -> "AUCForecast":
        return cls(**{**d, "doses_mg": tuple(d["doses_mg"])})


@dataclass(frozen=True)
class PosteriorSummary:
    """How the patient's PK was estimated.

    Attributes
    ----------
    eta_map : dict
        MAP random effects (log scale) per parameter.
    parameters : dict
        Individual parameters at the MAP: CL (L/day), V1 (L), Q (L/day), V2 (L), Vmax (mg/day),
        Km (UE/mL).
    levels_used, levels_bloq : int
        Levels in the fit, and how many of them were below the LLOQ.
    converged : bool
        Whether the MAP search converged.
    ess : float
        Effective sample size of the weighted posterior draws.
    n_draws : int
    method : str
    """

    eta_map: dict
    parameters: dict
    levels_used: int
    levels_bloq: int
    converged: bool
    ess: float
    n_draws: int
    method: str

    def to_dict(self) -> dict:
        return {"eta_map": dict(self.eta_map), "parameters": dict(self.parameters),
                "levels_used": self.levels_used, "levels_bloq": self.levels_bloq,
                "converged": self.converged, "ess": self.ess, "n_draws": self.n_draws, "method": self.method}


@dataclass(frozen=True)
class DoseRecommendation:
    """The engine's recommendation for one patient.

    Attributes
    ----------
    patient_id : str
    weight_kg : float
        Body weight used for mg/kg and caps, kg.
    doses : tuple of DayDose
        Recommended infusions on the adjustable days.
    forecast : AUCForecast
        Forecast total AUC under the recommended doses (direct simulation), with P(below floor),
        P(in window) and P(above ceiling).
    fixed_forecast : AUCForecast
        Forecast under the fixed regimen's doses on the same days (2.5 mg/kg/day rounded to
        vials by default), from the same posterior draws, for comparison.
    window : WindowRecord
        The window dosed into.
    caps : DoseCaps
        The caps the doses respect.
    override : WindowOverride or None
        Recorded when the window was not ``validated``.
    warnings : tuple of str
        Patient-specific reasons for caution (implausible levels, window not reachable, high
        uncertainty, poor posterior approximation, ...).
    caveats : tuple of str
        Facts about the inputs every reader must know (population model not fitted to patients,
        window derived from simulated data, override in force).
    posterior : PosteriorSummary
    model_name, model_status : str
        The population PK model used.
    given_mg : float
        Total Thymoglobulin already given before the decision, mg.
    kind : str
        Always ``"atg-dose-recommendation"``: tells the JSON of a recommendation from other artefacts.
    objective : str
        How the regimen was chosen (:mod:`ml.dosing._objective`), e.g. ``"most probable in window"``.
    """

    patient_id: str
    weight_kg: float
    doses: tuple[DayDose, ...]
    forecast: AUCForecast
    fixed_forecast: AUCForecast
    window: WindowRecord
    caps: DoseCaps
    posterior: PosteriorSummary
    model_name: str
    model_status: str
    given_mg: float = 0.0
    override: WindowOverride | None = None
    warnings: tuple[str, ...] = ()
    caveats: tuple[str, ...] = ()
    objective: str = "most probable in window"
    kind: str = field(default="atg-dose-recommendation", repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "doses", tuple(self.doses))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        object.__setattr__(self, "caveats", tuple(self.caveats))
        p = []
        if not (_finite(self.weight_kg) and self.weight_kg > 0):
            p.append(f"`weight_kg > 0` must hold, got {self.weight_kg!r}")
        if not self.doses:
            p.append("at least one recommended dose must be given")
        days = [d.day for d in self.doses]
        if len(set(days)) != len(days):
            p.append(f"one dose per day must hold, got days {days}")
        if not p:
            p.extend(self._dose_violations())
        p.extend(self._window_violations())
        for f in (self.forecast, self.fixed_forecast):
            if f.unit != self.window.unit:
                p.append(f"forecast unit {f.unit!r} must equal the window unit {self.window.unit!r}")
        if not (isinstance(self.objective, str) and self.objective):
            p.append(f"`objective` must be a non-empty string, got {self.objective!r}")
        if not all(isinstance(w, str) and w for w in self.warnings + self.caveats):
            p.append("warnings and caveats must be non-empty strings")
        if p:
            raise ValueError("invalid DoseRecommendation: " + "; ".join(p))

    def _dose_violations(self) -> list[str]:
        """Problems with the doses: vials, caps, mg/kg, course cap, and the forecast's doses."""
        p = []
        for d in self.doses:
            if abs(d.mg - d.vials * self.caps.vial_mg) > 1e-9:
                p.append(f"day {d.day}: `mg == vials x vial_mg` must hold, got {d.mg} mg, {d.vials} vials "
                         f"of {self.caps.vial_mg:g} mg")
            problem = self.caps.day_violation(d.mg, self.weight_kg)
            if problem:
                p.append(f"day {d.day}: {problem}")
            if abs(d.mg_per_kg - d.mg / self.weight_kg) > 1e-6:
                p.append(f"day {d.day}: `mg_per_kg == mg / weight_kg` must hold, got {d.mg_per_kg} "
                         f"for {d.mg} mg and {self.weight_kg} kg")
        course = self.caps.course_mg_per_kg
        total = self.given_mg + sum(d.mg for d in self.doses)
        if course is not None and total > course * self.weight_kg + 1e-9:
            p.append(f"the course {total:g} mg exceeds the course cap {course:g} mg/kg x {self.weight_kg:g} kg")
        if tuple(d.mg for d in self.doses) != self.forecast.doses_mg:
            p.append(f"the forecast must be for the recommended doses, got {self.forecast.doses_mg} "
                     f"for {tuple(d.mg for d in self.doses)}")
        return p

    def _window_violations(self) -> list[str]:
        """Problems with the window: not dosable, no window, or not validated without an override."""
        p = []
        dosable = dosable_problem(self.window)
        if dosable is not None:
            p.append(dosable)
        if self.window.status == WindowStatus.NO_WINDOW:
            p.append("a 'no-window' result cannot be dosed into")
        elif self.window.status != WindowStatus.VALIDATED and self.override is None:
            p.append(f"window status {self.window.status!r} requires a recorded override")
        return p

    @property
    def reaches_window(self) -> bool:
        """The forecast median lies in the window."""
        return self.window.contains(self.forecast.median)

    def to_dict(self) -> dict:
        """Plain JSON-compatible dict (:meth:`from_dict` rebuilds and re-validates it)."""
        return {
            "kind": self.kind, "patient_id": self.patient_id, "weight_kg": self.weight_kg,
            "doses": [d.to_dict() for d in self.doses], "forecast": self.forecast.to_dict(),
            "fixed_forecast": self.fixed_forecast.to_dict(), "window": self.window.to_dict(),
            "caps": self.caps.to_dict(), "posterior": self.posterior.to_dict(),
            "model_name": self.model_name, "model_status": self.model_status, "given_mg": self.given_mg,
            "override": None if self.override is None else self.override.to_dict(),
            "warnings": list(self.warnings), "caveats": list(self.caveats), "objective": self.objective,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "DoseRecommendation":
        return cls(
            patient_id=d["patient_id"], weight_kg=d["weight_kg"],
            doses=tuple(DayDose(**x) for x in d["doses"]), forecast=AUCForecast.from_dict(d["forecast"]),
            fixed_forecast=AUCForecast.from_dict(d["fixed_forecast"]),
            window=WindowRecord.from_dict(d["window"]), caps=DoseCaps.from_dict(d["caps"]),
            posterior=PosteriorSummary(**d["posterior"]), model_name=d["model_name"],
            model_status=d["model_status"], given_mg=d["given_mg"],
            override=None if d.get("override") is None else WindowOverride(**d["override"]),
            warnings=tuple(d.get("warnings", ())), caveats=tuple(d.get("caveats", ())),
            objective=d.get("objective", "most probable in window"),
        )

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        if path is not None:
            from ml._atomic import write_atomic

            write_atomic(path, text + "\n", mkdir=False)
        return text
