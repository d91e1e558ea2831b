"""The simulator's declarative parameter set (``default_scenarios.toml``)."""

from __future__ import annotations

import math
import numbers
import tomllib
from dataclasses import MISSING, dataclass, fields
from importlib import resources
from pathlib import Path

EFFECTS = ("step", "hinge", "none")
SIDES = ("floor", "ceiling")


@dataclass(frozen=True)
class Scenario:
    """A named virtual-cohort design and its true exposure window.

    Exposure acts on each outcome of ``[outcomes.*]`` (``ml/sim/default_scenarios.toml``)
    through two hazard ratios: ``hr_lo`` below ``lower`` (the *floor* side, the
    under-exposure harm such as acute GVHD) and ``hr_hi`` at or above ``upper`` (the *ceiling*
    side, the over-exposure harm such as CMV/EBV reactivation).

    Attributes
    ----------
    name : str
    n : int
        Default number of patients.
    donor_type : str
        ``URD`` or ``haplo``.
    effect : str
        ``step`` (hazard ratio jumps at the bounds), ``hinge`` (log-hazard rises linearly
        outside the window) or ``none`` (no exposure effect).
    lower, upper : float
        True window [lower, upper), UE*day/mL: the floor side's effects apply below ``lower``,
        the ceiling side's at or above ``upper``.
    hinge_width : float
        For ``hinge``: distance (UE*day/mL) over which the log-hazard ratio reaches the step's.
    description : str
    sides : tuple of str
        Sides whose effects apply: a non-empty subset of ``("floor", "ceiling")``. The other
        side's hazard ratios are 1 (``("floor",)``: every ``hr_hi`` is 1).
    overlap : bool
        The two harms overlap. ``lower >= upper`` is then required, and only then allowed: in
        [upper, lower) both sides' effects apply, so no exposure avoids both harms.
    effect_scale : float
        Factor (>= 0) on every exposure log-hazard ratio: the scenario applies
        ``hr ** effect_scale`` (0.5 = half the log effect, 1.5 = stronger, 0 = none).
    """

    name: str
    n: int
    donor_type: str
    effect: str
    lower: float
    upper: float
    hinge_width: float = 25.0
    description: str = ""
    sides: tuple[str, ...] = SIDES
    overlap: bool = False
    effect_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.effect not in EFFECTS:
            raise ValueError(f"scenario {self.name}: effect must be one of {EFFECTS}, got {self.effect!r}")
        sides = self.sides
        if isinstance(sides, str) or not all(isinstance(s, str) for s in sides) \
                or not set(sides) <= set(SIDES) or not sides:
            raise ValueError(f"scenario {self.name}: sides must be a non-empty list of {list(SIDES)}, "
                             f"got {sides!r} (use effect = \"none\" for no exposure effect)")
        object.__setattr__(self, "sides", tuple(s for s in SIDES if s in sides))
        if not isinstance(self.overlap, bool):
            raise ValueError(f"scenario {self.name}: overlap must be true or false, got {self.overlap!r}")
        if self.overlap:
            if not self.lower >= self.upper:
                raise ValueError(
                    f"scenario {self.name}: overlap = true needs `lower >= upper` (the floor harm below "
                    f"lower reaches over the ceiling harm at or above upper), got lower={self.lower}, "
                    f"upper={self.upper}")
            if self.sides != SIDES or self.effect == "none":
                raise ValueError(f"scenario {self.name}: overlap = true needs effects on both sides "
                                 f"(sides = {list(SIDES)}, effect step or hinge)")
        elif not self.lower < self.upper:
            raise ValueError(
                f"scenario {self.name}: `lower < upper` must hold, got lower={self.lower}, upper={self.upper} "
                f"(only a scenario with `overlap = true` may have lower >= upper)")
        scale = self.effect_scale
        if not (isinstance(scale, numbers.Real) and not isinstance(scale, bool)
                and math.isfinite(scale) and scale >= 0):
            raise ValueError(f"scenario {self.name}: effect_scale must be a finite number >= 0, got {scale!r}")
        if self.donor_type not in ("URD", "haplo", "MSD"):
            raise ValueError(f"scenario {self.name}: unknown donor_type {self.donor_type!r}")

    @property
    def active_sides(self) -> tuple[str, ...]:
        """Sides with an exposure effect: ``sides``, or none for ``effect = "none"`` or scale 0."""
        return () if self.effect == "none" or self.effect_scale == 0 else self.sides

    def side_hazard_ratios(self, hr_lo: float, hr_hi: float) -> tuple[float, float]:
        """An outcome's (below, above) hazard ratios as this scenario applies them.

        An inactive side's ratio is 1; an active one is raised to ``effect_scale``.
        """
        def applied(hr: float, side: str) -> float:
            if side not in self.active_sides:
                return 1.0
            return hr if self.effect_scale == 1 else float(hr) ** self.effect_scale

        return applied(hr_lo, "floor"), applied(hr_hi, "ceiling")

    def truth(self) -> dict:
        """The scenario's part of a cohort's ``[truth]`` table.

        ``lower``/``upper`` (kept for existing readers) are the window a search should find:
        the bound of a side without effect is open (``-inf``/``inf``); an overlapping scenario
        has no window (both ``nan``); without any effect (``null``) they keep the scenario's
        bounds. ``floor`` (``ceiling``) is the threshold below (at or above) which the under-
        (over-)exposure harm applies, absent for a side without effect. ``overlap``: both harms
        apply in [ceiling, floor), no exposure avoids both. ``effect_scale``: the factor on
        every exposure log-hazard ratio.
        """
        active = self.active_sides
        if self.overlap:
            lower = upper = math.nan
        elif not active:
            lower, upper = self.lower, self.upper
        else:
            lower = self.lower if "floor" in active else -math.inf
            upper = self.upper if "ceiling" in active else math.inf
        out = {"effect": self.effect, "lower": float(lower), "upper": float(upper)}
        if "floor" in active:
            out["floor"] = float(self.lower)
        if "ceiling" in active:
            out["ceiling"] = float(self.upper)
        out["overlap"] = self.overlap and active == SIDES
        out["effect_scale"] = float(self.effect_scale)
        return out


_SCENARIO_KEYS = tuple(f.name for f in fields(Scenario) if f.name != "name")
_REQUIRED_KEYS = tuple(f.name for f in fields(Scenario) if f.name != "name" and f.default is MISSING)


@dataclass(frozen=True)
class SimulationConfig:
    """Everything the simulator assumes, as read from the TOML file (plain dicts per section)."""

    covariates: dict
    regimen: dict
    sampling: dict
    follow_up: dict
    engraftment: dict
    outcomes: dict
    scenarios: dict

    @classmethod
    def default(cls) -> "SimulationConfig":
        """The shipped defaults, ``ml/sim/default_scenarios.toml``."""
        return cls.from_toml_string(resources.files("ml.sim").joinpath("default_scenarios.toml").read_text())

    @classmethod
    def from_toml(cls, path: str | Path) -> "SimulationConfig":
        return cls.from_toml_string(Path(path).read_text())

    @classmethod
    def from_toml_string(cls, text: str) -> "SimulationConfig":
        data = tomllib.loads(text)
        scenarios = {}
        for name, spec in data["scenarios"].items():
            unknown = sorted(set(spec) - set(_SCENARIO_KEYS))
            if unknown:
                raise ValueError(f"[scenarios.{name}]: unknown key(s) {', '.join(unknown)}; "
                                 f"known: {', '.join(_SCENARIO_KEYS)}")
            missing = [k for k in _REQUIRED_KEYS if k not in spec]
            if missing:
                raise ValueError(f"[scenarios.{name}]: missing key(s) {', '.join(missing)}")
            scenarios[name] = Scenario(name=name, **spec)
        return cls(covariates=data["covariates"], regimen=data["regimen"], sampling=data["sampling"],
                   follow_up=data["follow_up"], engraftment=data["engraftment"],
                   outcomes=data["outcomes"], scenarios=scenarios)

    def scenario(self, name: str) -> Scenario:
        """The scenario called ``name`` (clear error listing the known ones)."""
        try:
            return self.scenarios[name]
        except KeyError:
            raise ValueError(f"unknown scenario {name!r}; known: {', '.join(self.scenarios)}") from None
