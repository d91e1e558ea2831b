"""The simulator's declarative parameter set (``default_scenarios.toml``)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

EFFECTS = ("step", "hinge", "none")


@dataclass(frozen=True)
class Scenario:
    """A named virtual-cohort design and its true exposure window.

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
        True window [lower, upper), UE*day/mL.
    hinge_width : float
        For ``hinge``: distance (UE*day/mL) over which the log-hazard ratio reaches the step's.
    description : str
    """

    name: str
    n: int
    donor_type: str
    effect: str
    lower: float
    upper: float
    hinge_width: float = 25.0
    description: str = ""

    def __post_init__(self) -> None:
        if self.effect not in EFFECTS:
            raise ValueError(f"scenario {self.name}: effect must be one of {EFFECTS}, got {self.effect!r}")
        if not self.lower < self.upper:
            raise ValueError(
                f"scenario {self.name}: `lower < upper` must hold, got lower={self.lower}, upper={self.upper}")
        if self.donor_type not in ("URD", "haplo", "MSD"):
            raise ValueError(f"scenario {self.name}: unknown donor_type {self.donor_type!r}")


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
        """The shipped defaults of spec/simulator.md."""
        return cls.from_toml_string(resources.files("ml.sim").joinpath("default_scenarios.toml").read_text())

    @classmethod
    def from_toml(cls, path: str | Path) -> "SimulationConfig":
        return cls.from_toml_string(Path(path).read_text())

    @classmethod
    def from_toml_string(cls, text: str) -> "SimulationConfig":
        data = tomllib.loads(text)
        scenarios = {name: Scenario(name=name, **spec) for name, spec in data["scenarios"].items()}
        return cls(covariates=data["covariates"], regimen=data["regimen"], sampling=data["sampling"],
                   follow_up=data["follow_up"], engraftment=data["engraftment"],
                   outcomes=data["outcomes"], scenarios=scenarios)

    def scenario(self, name: str) -> Scenario:
        """The scenario called ``name`` (clear error listing the known ones)."""
        try:
            return self.scenarios[name]
        except KeyError:
            raise ValueError(f"unknown scenario {name!r}; known: {', '.join(self.scenarios)}") from None
