"""``ExposureWindow``: the exported, self-validating window artefact (the dosing engine's input).

JSON schema (``schema_version`` 1). Exposure values are in ``unit`` (e.g. ``"UE*day/mL"``);
``null`` for ``lower`` / ``upper`` means the window is open on that side (no bound was found
inside the observed exposure range); inside a confidence interval ``[low, high]`` a ``null``
means the interval is unbounded on that side.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

__all__ = [
    "SCHEMA_VERSION",
    "STATUSES",
    "Effect",
    "ExposureWindow",
    "Incidence",
    "Population",
]

SCHEMA_VERSION = 1
STATUSES = ("candidate", "validated", "no-window")


def _finite(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _num(v):
    return None if v is None else float(v)


@dataclass(frozen=True)
class Population:
    """Who the window was learned on.

    Attributes
    ----------
    donor_source : str
        ``URD``, ``haplo``, ``MSD`` or ``mixed``.
    conditioning : str
        ``MAC``, ``RIC`` or ``mixed``.
    n : int
        Patients used in the search.
    events : int
        Events of interest among them.
    """

    donor_source: str
    conditioning: str
    n: int
    events: int

    def __post_init__(self):
        for name in ("n", "events"):
            v = getattr(self, name)
            if isinstance(v, numbers.Integral) and not isinstance(v, bool):
                object.__setattr__(self, name, int(v))
        problems = []
        if not (isinstance(self.n, int) and self.n > 0):
            problems.append(f"`population.n > 0` must hold, got n={self.n!r}")
        if not (isinstance(self.events, int) and 0 <= self.events <= (self.n if isinstance(self.n, int) else 0)):
            problems.append(f"`0 <= population.events <= population.n` must hold, got events={self.events!r}, n={self.n!r}")
        for name in ("donor_source", "conditioning"):
            if not (isinstance(getattr(self, name), str) and getattr(self, name)):
                problems.append(f"`population.{name}` must be a non-empty string, got {getattr(self, name)!r}")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class Effect:
    """Honest effect of being inside the window (cross-fitted, or from an independent cohort).

    Attributes
    ----------
    hr : float
        Hazard ratio inside vs outside (< 1: inside does better).
    ci_low, ci_high : float
        Confidence interval of ``hr``.
    method : str
        How it was estimated (e.g. "cross-fitted Cox hazard ratio inside vs outside, 5 folds").
    p_value : float or None
    n_inside, n_outside, events_inside, events_outside : int or None
    """

    hr: float
    ci_low: float
    ci_high: float
    method: str
    p_value: float | None = None
    n_inside: int | None = None
    n_outside: int | None = None
    events_inside: int | None = None
    events_outside: int | None = None

    def __post_init__(self):
        if not all(_finite(v) and v > 0 for v in (self.hr, self.ci_low, self.ci_high)):
            raise ValueError(f"`effect.hr`, `effect.ci_low`, `effect.ci_high` must be finite and > 0, "
                             f"got {self.hr!r}, {self.ci_low!r}, {self.ci_high!r}")
        if not self.ci_low <= self.hr <= self.ci_high:
            raise ValueError(f"`effect.ci_low <= effect.hr <= effect.ci_high` must hold, "
                             f"got {self.ci_low}, {self.hr}, {self.ci_high}")


@dataclass(frozen=True)
class Incidence:
    """Cumulative incidence of one outcome in one exposure group at a horizon.

    Attributes
    ----------
    outcome : str
        Endpoint name (e.g. ``"cmv"``).
    group : str
        ``below``, ``inside``, ``above`` or ``outside`` the window.
    horizon_days : float
    n, events : int
        Patients in the group; events of interest by the horizon.
    incidence : float
        Aalen-Johansen cumulative incidence at the horizon (competing risks accounted for), 0..1.
    ci_low, ci_high : float
        Pointwise confidence interval.
    p_value : float or None
        Test of this group against the window's patients (None for ``inside``).
    """

    outcome: str
    group: str
    horizon_days: float
    n: int
    events: int
    incidence: float
    ci_low: float
    ci_high: float
    p_value: float | None = None

    def __post_init__(self):
        if self.group not in ("below", "inside", "above", "outside"):
            raise ValueError(f"`incidence.group` must be below/inside/above/outside, got {self.group!r}")
        vals = (self.incidence, self.ci_low, self.ci_high)
        if not all(_finite(v) and -1e-12 <= v <= 1 + 1e-12 for v in vals):
            raise ValueError(f"`0 <= incidence, ci_low, ci_high <= 1` must hold, got {vals}")


def _ci_from(v):
    if v is None:
        return None
    low, high = v
    return (_num(low), _num(high))


@dataclass(frozen=True)
class ExposureWindow:
    """The optimal exposure window, with its evidence and provenance.

    Attributes
    ----------
    exposure : str
        Exposure variable, e.g. ``"auc_total"``.
    exposure_definition : str
        How it is computed (e.g. "total active-ATG AUC, first dose to infinity").
    unit : str
        Exposure unit, e.g. ``"UE*day/mL"``. A window must never be applied to another unit.
    population : Population
    endpoint : str
        E.g. ``"cmv|ebv|agvhd2|death"``.
    horizon_days : float or None
        Days from transplant the endpoint was truncated at; None for none.
    lower, upper : float or None
        The window [lower, upper) in ``unit``; None = open on that side.
    target : float
        Best point inside the window (``unit``).
    lower_ci, upper_ci : (float or None, float or None) or None
        Confidence intervals of the bounds (None inside: unbounded on that side; None as a
        whole: not computed, or the bound is open).
    ci_level : float
    ci_method : str
    p_value : float or None
        P-value adjusted for the whole search.
    p_value_method : str
    statistic : float
        Maximal standardised statistic of the search.
    effect : Effect or None
    incidences : tuple of Incidence
    dataset_digest : str
    simulated : bool
        True when derived from a virtual cohort.
    code_version : str
    created_at : str
        ISO-8601 UTC time.
    status : {"candidate", "validated", "no-window"}
    gates_passed : tuple of str
    promoted_by, promotion_reason, promoted_at : str or None
    mlflow_run_id : str or None
    search : dict
        Parameters of the search (grid, scores, permutations, seed, ...), for the record.
    schema_version : int
    """

    exposure: str
    exposure_definition: str
    unit: str
    population: Population
    endpoint: str
    horizon_days: float | None
    lower: float | None
    upper: float | None
    target: float
    lower_ci: tuple[float | None, float | None] | None
    upper_ci: tuple[float | None, float | None] | None
    ci_method: str
    p_value: float | None
    p_value_method: str
    statistic: float
    dataset_digest: str
    simulated: bool
    code_version: str
    ci_level: float = 0.95
    effect: Effect | None = None
    incidences: tuple[Incidence, ...] = ()
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    status: str = "candidate"
    gates_passed: tuple[str, ...] = ()
    promoted_by: str | None = None
    promotion_reason: str | None = None
    promoted_at: str | None = None
    mlflow_run_id: str | None = None
    search: dict = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self):
        object.__setattr__(self, "lower_ci", _ci_from(self.lower_ci))
        object.__setattr__(self, "upper_ci", _ci_from(self.upper_ci))
        object.__setattr__(self, "incidences", tuple(self.incidences))
        object.__setattr__(self, "gates_passed", tuple(self.gates_passed))
        object.__setattr__(self, "search", dict(self.search))
        problems = self._violations()
        if problems:
            raise ValueError("invalid ExposureWindow: " + "; ".join(problems))

    def _violations(self) -> list[str]:
        p = []
        for name in ("exposure", "exposure_definition", "unit", "endpoint", "ci_method", "p_value_method",
                     "dataset_digest", "code_version"):
            v = getattr(self, name)
            if not (isinstance(v, str) and v.strip()):
                p.append(f"`{name}` must be a non-empty string, got {v!r}")
        if not isinstance(self.population, Population):
            p.append(f"`population` must be a Population, got {type(self.population).__name__}")
        if self.horizon_days is not None and not (_finite(self.horizon_days) and self.horizon_days > 0):
            p.append(f"`horizon_days > 0` must hold (or None), got horizon_days={self.horizon_days!r}")
        lo, up = self.lower, self.upper
        for name, v in (("lower", lo), ("upper", up)):
            if v is not None and not _finite(v):
                p.append(f"`{name}` must be a finite number or None (open), got {name}={v!r}")
        if lo is None and up is None:
            p.append("at least one of `lower`, `upper` must be given, got both None")
        if _finite(lo) and _finite(up) and not lo < up:
            p.append(f"`lower < upper` must hold, got lower={lo}, upper={up}")
        if not _finite(self.target):
            p.append(f"`target` must be a finite number, got target={self.target!r}")
        elif (_finite(lo) and self.target < lo) or (_finite(up) and self.target >= up):
            p.append(f"`lower <= target < upper` must hold, got lower={lo}, target={self.target}, upper={up}")
        for name in ("lower_ci", "upper_ci"):
            ci = getattr(self, name)
            if ci is None:
                continue
            a, b = ci
            if any(v is not None and not _finite(v) for v in ci):
                p.append(f"`{name}` entries must be finite numbers or None (unbounded), got {ci}")
            elif a is not None and b is not None and not a <= b:
                p.append(f"`{name}[0] <= {name}[1]` must hold, got {name}=({a}, {b})")
        if not (_finite(self.ci_level) and 0 < self.ci_level < 1):
            p.append(f"`0 < ci_level < 1` must hold, got ci_level={self.ci_level!r}")
        if self.p_value is not None and not (_finite(self.p_value) and 0 <= self.p_value <= 1):
            p.append(f"`0 <= p_value <= 1` must hold (or None), got p_value={self.p_value!r}")
        if not _finite(self.statistic):
            p.append(f"`statistic` must be finite, got {self.statistic!r}")
        if not isinstance(self.simulated, bool):
            p.append(f"`simulated` must be a bool, got {self.simulated!r}")
        if self.status not in STATUSES:
            p.append(f"`status` must be one of {STATUSES}, got {self.status!r}")
        if self.status == "validated":
            if not self.gates_passed:
                p.append("a validated window must list `gates_passed`, got none")
            for name in ("promoted_by", "promotion_reason"):
                v = getattr(self, name)
                if not (isinstance(v, str) and v.strip()):
                    p.append(f"a validated window must have a non-empty `{name}`, got {v!r}")
        if self.effect is not None and not isinstance(self.effect, Effect):
            p.append(f"`effect` must be an Effect or None, got {type(self.effect).__name__}")
        if not all(isinstance(i, Incidence) for i in self.incidences):
            p.append("`incidences` must hold Incidence objects")
        try:
            datetime.fromisoformat(self.created_at)
        except (TypeError, ValueError):
            p.append(f"`created_at` must be an ISO-8601 time, got {self.created_at!r}")
        if self.schema_version != SCHEMA_VERSION:
            p.append(f"`schema_version == {SCHEMA_VERSION}` must hold, got {self.schema_version!r}")
        return p

    # ------------------------------------------------------------------------------ conversion
    def to_dict(self) -> dict:
        """Plain JSON-compatible dict (tuples become lists)."""
        d = asdict(self)
        for name in ("lower_ci", "upper_ci"):
            if d[name] is not None:
                d[name] = list(d[name])
        d["gates_passed"] = list(d["gates_passed"])
        d["incidences"] = [dict(i) for i in d["incidences"]]
        return d

    @classmethod
    def from_dict(cls, data: dict) -> ExposureWindow:
        """Rebuild (and validate) a window from :meth:`to_dict`'s output."""
        if not isinstance(data, dict):
            raise TypeError(f"ExposureWindow.from_dict needs a dict, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ExposureWindow key(s) {unknown}; schema_version {SCHEMA_VERSION} "
                             f"knows {sorted(known)}")
        missing = sorted(f.name for f in fields(cls) if f.name not in data and f.default is MISSING
                         and f.default_factory is MISSING)
        if missing:
            raise ValueError(f"ExposureWindow is missing key(s) {missing}")
        d = dict(data)
        d["population"] = Population(**d["population"])
        if d.get("effect") is not None:
            d["effect"] = Effect(**d["effect"])
        d["incidences"] = tuple(Incidence(**i) for i in d.get("incidences", ()))
        for name in ("lower_ci", "upper_ci"):
            if d.get(name) is not None:
                d[name] = tuple(d[name])
        if "gates_passed" in d:
            d["gates_passed"] = tuple(d["gates_passed"])
        return cls(**d)

    def to_json(self, path: str | Path | None = None, *, indent: int = 2) -> str:
        """JSON text (strict JSON: no NaN / Infinity); also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_json(cls, source: str | Path) -> ExposureWindow:
        """Read a window from a JSON file path or a JSON string."""
        if isinstance(source, Path) or not str(source).lstrip().startswith("{"):
            text = Path(source).read_text()
        else:
            text = str(source)
        return cls.from_dict(json.loads(text))

    # ---------------------------------------------------------------------------------- usage
    def as_dosing_target(self) -> dict:
        """The window as a dosing tool's target: ``min`` / ``max`` / ``best`` plus ``unit``.

        ``min`` or ``max`` is None when the window is open on that side.
        """
        return {"min": self.lower, "max": self.upper, "best": self.target, "unit": self.unit}

    def contains(self, exposure: float) -> bool:
        """True when ``lower <= exposure < upper`` (open sides always pass)."""
        return (self.lower is None or exposure >= self.lower) and (self.upper is None or exposure < self.upper)
