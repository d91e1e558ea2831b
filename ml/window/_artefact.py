"""``ExposureWindow``: the exported, self-validating window artefact (the dosing engine's input).

JSON schema (``schema_version`` 2; files of schema 1 are read and upgraded). Exposure values are
in ``unit`` (e.g. ``"UE*day/mL"``); ``null`` for ``lower`` / ``upper`` means the window is open on
that side (no bound was evidenced); inside a confidence interval ``[low, high]`` a ``null`` means
the interval is unbounded on that side.

Schema 2 adds what a benefit-harm search found (``finding``: ``window``, ``floor-only``,
``ceiling-only``, ``overlap`` or ``no-window``), how it searched (``search_kind``), the provenance
of each bound (``floor`` and ``ceiling``: endpoints, horizon, statistic, adjusted p, interval,
cross-fitted effect, events) and the population PK model that defined the exposure
(``pk_model``: name, digest, source).
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path

from ml._status import INTEGRITY_CHECKS, WindowStatus

__all__ = [
    "FINDINGS",
    "PROTOCOL_KEYS",
    "SCHEMA_VERSION",
    "SEARCH_KINDS",
    "STATUSES",
    "BoundEvidence",
    "Effect",
    "ExposureWindow",
    "Incidence",
    "Population",
    "SideEffect",
    "WindowOrigin",
]

SCHEMA_VERSION = 2
#: Schema versions :meth:`ExposureWindow.from_dict` reads (older ones are upgraded).
READABLE_SCHEMAS = (1, 2)
STATUSES = tuple(WindowStatus)
#: What a search found: both bounds evidenced, one side only, harms that overlap, or nothing.
FINDINGS = ("window", "floor-only", "ceiling-only", "overlap", "no-window")
#: How the window came about: searched on one composite endpoint (two cuts), searched as a floor
#: and a ceiling on their own endpoints (benefit-harm), taken from a publication before any
#: outcome of this population exists (protocol), or a virtual world's known true window (truth:
#: in-silico trials and benchmarks dose into it; never estimated from data).
SEARCH_KINDS = ("composite", "benefit-harm", "protocol", "truth")
#: What a protocol window must say about its source.
PROTOCOL_KEYS = ("publication", "pmid", "population", "assay", "unit", "entered_by", "entered_at")


def _finite(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _num(v):
    return None if v is None else float(v)


def _check_hazard_ratio(hr, ci_low, ci_high) -> None:
    """A hazard ratio and its interval: finite, positive, ``ci_low <= hr <= ci_high``."""
    if not all(_finite(v) and v > 0 for v in (hr, ci_low, ci_high)):
        raise ValueError(f"`effect.hr`, `effect.ci_low`, `effect.ci_high` must be finite and > 0, "
                         f"got {hr!r}, {ci_low!r}, {ci_high!r}")
    if not ci_low <= hr <= ci_high:
        raise ValueError(f"`effect.ci_low <= effect.hr <= effect.ci_high` must hold, got {ci_low}, {hr}, {ci_high}")


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
        _check_hazard_ratio(self.hr, self.ci_low, self.ci_high)


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


@dataclass(frozen=True)
class SideEffect:
    """Honest effect behind one bound: hazard ratio of the side's endpoint, harmed vs protected.

    For the floor: patients below vs at or above it (> 1: under-exposure harms); for the ceiling:
    patients at or above vs below it (> 1: over-exposure harms). Cross-fitted: each patient's side
    of the bound was chosen without its own outcome.

    Attributes
    ----------
    hr, ci_low, ci_high : float
    method : str
    p_value : float or None
    n_harmed, n_reference, events_harmed, events_reference : int or None
    """

    hr: float
    ci_low: float
    ci_high: float
    method: str
    p_value: float | None = None
    n_harmed: int | None = None
    n_reference: int | None = None
    events_harmed: int | None = None
    events_reference: int | None = None

    def __post_init__(self):
        _check_hazard_ratio(self.hr, self.ci_low, self.ci_high)


@dataclass(frozen=True)
class BoundEvidence:
    """Where one bound of a benefit-harm window comes from.

    Attributes
    ----------
    side : {"floor", "ceiling"}
        The floor (lower bound) is set by the under-exposure harm, the ceiling (upper bound) by the
        over-exposure harm.
    endpoints : tuple of str
        Endpoints of this side, e.g. ``("agvhd2",)`` or ``("cmv|ebv",)``.
    horizon_days : float or None
        Days from transplant the side's endpoints were truncated at.
    statistic : float
        One-sided standardised rank statistic of the bound's cut.
    p_value : float or None
        Adjusted p-value of the side: its best cut against the permutation maxima over the side's
        whole search (None without permutations).
    p_value_at_bound : float or None
        The same for the reported cut (it can differ from the best cut: bagged or joint estimate).
    evidenced : bool
        True when the closed test rejected "no harm on this side" at the search's alpha.
    value : float or None
        The side's bound in ``unit`` even when it is not used (None when not computed).
    ci : (float or None, float or None) or None
        Bootstrap interval of ``value``.
    events : int
        Patients with an event of the side's endpoints by the horizon.
    effect : SideEffect or None
    covariates : tuple of str
        Covariates adjusting the side's null model.
    reason : str
        One sentence: why the bound is set, or why it is left open.
    """

    side: str
    endpoints: tuple[str, ...]
    horizon_days: float | None
    statistic: float
    p_value: float | None
    evidenced: bool
    events: int
    value: float | None = None
    p_value_at_bound: float | None = None
    ci: tuple[float | None, float | None] | None = None
    effect: SideEffect | None = None
    covariates: tuple[str, ...] = ()
    reason: str = ""

    def __post_init__(self):
        object.__setattr__(self, "endpoints", tuple(self.endpoints))
        object.__setattr__(self, "covariates", tuple(self.covariates))
        object.__setattr__(self, "ci", _ci_from(self.ci))
        if isinstance(self.events, numbers.Integral) and not isinstance(self.events, bool):
            object.__setattr__(self, "events", int(self.events))
        problems = self._identity_violations() + self._value_violations()
        if problems:
            raise ValueError("; ".join(problems))

    def _identity_violations(self) -> list[str]:
        """Problems with the side, its endpoints and horizon."""
        problems = []
        if self.side not in ("floor", "ceiling"):
            problems.append(f"`side` must be 'floor' or 'ceiling', got {self.side!r}")
        if not self.endpoints or not all(isinstance(e, str) and e for e in self.endpoints):
            problems.append(f"`{self.side}.endpoints` must name at least one endpoint, got {self.endpoints!r}")
        if self.horizon_days is not None and not (_finite(self.horizon_days) and self.horizon_days > 0):
            problems.append(f"`{self.side}.horizon_days > 0` must hold (or None), got {self.horizon_days!r}")
        return problems

    def _value_violations(self) -> list[str]:
        """Problems with the numbers: p-values, statistic, value, events, effect."""
        problems = []
        for name in ("p_value", "p_value_at_bound"):
            v = getattr(self, name)
            if v is not None and not (_finite(v) and 0 <= v <= 1):
                problems.append(f"`0 <= {self.side}.{name} <= 1` must hold (or None), got {v!r}")
        if not _finite(self.statistic):
            problems.append(f"`{self.side}.statistic` must be finite, got {self.statistic!r}")
        if self.value is not None and not _finite(self.value):
            problems.append(f"`{self.side}.value` must be finite or None, got {self.value!r}")
        if not isinstance(self.evidenced, bool):
            problems.append(f"`{self.side}.evidenced` must be a bool, got {self.evidenced!r}")
        if not (isinstance(self.events, int) and self.events >= 0):
            problems.append(f"`{self.side}.events >= 0` must hold, got {self.events!r}")
        if self.effect is not None and not isinstance(self.effect, SideEffect):
            problems.append(f"`{self.side}.effect` must be a SideEffect or None")
        return problems

    @classmethod
    def from_dict(cls, data: dict) -> BoundEvidence:
        d = dict(data)
        if d.get("effect") is not None:
            d["effect"] = SideEffect(**d["effect"])
        return cls(**d)


@dataclass(frozen=True)
class WindowOrigin:
    """Where a window object was read from and how its content was checked then.

    Not part of the artefact: it is not in :meth:`ExposureWindow.to_dict`, the JSON, the digest or
    the signature, and two windows that differ only in their origin are equal. The loaders set it
    (``ml.dosing.load_window`` for a file, ``ml.tracking.load_window_source`` for a file or a
    ``models:/`` URI); a window built in code keeps the default.

    Attributes
    ----------
    source : str
        File path or ``models:/`` URI the window was read from ("" when built in code).
    integrity : {"signed", "registered", "unsigned", "in-memory"}
        Its signature verified with the centre's key (``signed``), its digest matched the one the
        model registry recorded (``registered``), no check possible (``unsigned``: no signature, or
        no key configured), or built in code, not read (``in-memory``, the default).
    model_file : str
        Where the file of the window's population PK model was found when it was read (a local
        path; "" when none).
    """

    source: str = ""
    integrity: str = "in-memory"
    model_file: str = ""

    def __post_init__(self):
        problems = [f"`{name}` must be a string, got {getattr(self, name)!r}"
                    for name in ("source", "model_file") if not isinstance(getattr(self, name), str)]
        if self.integrity not in INTEGRITY_CHECKS:
            problems.append(f"`integrity` must be one of {INTEGRITY_CHECKS}, got {self.integrity!r}")
        if problems:
            raise ValueError("invalid WindowOrigin: " + "; ".join(problems))


def _derived_finding(status: str, lower, upper) -> str:
    """The finding a schema-1 window (or a window built without one) implies."""
    if status == WindowStatus.NO_WINDOW:
        return "no-window"
    if lower is not None and upper is not None:
        return "window"
    return "floor-only" if lower is not None else "ceiling-only"


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
    status : WindowStatus
        ``"candidate"``, ``"validated"`` or ``"no-window"`` (a plain string is accepted and stored as
        the :class:`~ml.window.WindowStatus` it names).
    gates_passed : tuple of str
    promoted_by, promotion_reason, promoted_at : str or None
    mlflow_run_id : str or None
    search : dict
        Parameters of the search (grid, scores, permutations, seed, ...), for the record.
    finding : {"window", "floor-only", "ceiling-only", "overlap", "no-window"} or None
        What the search found (None on construction: derived from ``status`` and the bounds). Only
        a ``window`` (both bounds evidenced) can be ``validated``.
    search_kind : {"composite", "benefit-harm", "protocol", "truth"}
        How the window came about (:data:`SEARCH_KINDS`).
    floor, ceiling : BoundEvidence or None
        Provenance of each bound of a benefit-harm window.
    pk_model : dict or None
        The population PK model that defined the exposure: ``name``, ``digest`` (of its content)
        and ``source`` (a file, a ``models:/`` URI, or ``"shipped"``); None for a model-free AUC.
    protocol : dict or None
        For a protocol window (``search_kind == "protocol"``): where it comes from, ``publication``,
        ``pmid``, ``population``, ``assay``, ``unit`` (as published), ``entered_by`` and
        ``entered_at``. Such a window was not derived from this system's data.
    schema_version : int
    integrity : dict or None
        Content digest per field and HMAC-SHA256 signature with the centre's key, set at promotion
        (:mod:`ml.window._integrity`); None when unsigned.
    origin : WindowOrigin
        Where this object was read from and how its content was checked then (not part of the
        artefact: not in :meth:`to_dict`, the digest or the signature, and not compared).
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
    status: str = WindowStatus.CANDIDATE
    gates_passed: tuple[str, ...] = ()
    promoted_by: str | None = None
    promotion_reason: str | None = None
    promoted_at: str | None = None
    mlflow_run_id: str | None = None
    search: dict = field(default_factory=dict)
    finding: str | None = None
    search_kind: str = "composite"
    floor: BoundEvidence | None = None
    ceiling: BoundEvidence | None = None
    pk_model: dict | None = None
    protocol: dict | None = None
    schema_version: int = SCHEMA_VERSION
    integrity: dict | None = None
    origin: WindowOrigin = field(default_factory=WindowOrigin, compare=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.origin, WindowOrigin):
            raise TypeError(f"ExposureWindow.origin must be a WindowOrigin, got {type(self.origin).__name__}")
        if self.status in STATUSES:
            object.__setattr__(self, "status", WindowStatus(self.status))
        if self.finding is None:
            object.__setattr__(self, "finding", _derived_finding(self.status, self.lower, self.upper))
        if self.pk_model is not None:
            object.__setattr__(self, "pk_model", dict(self.pk_model))
        if self.protocol is not None:
            object.__setattr__(self, "protocol", dict(self.protocol))
        if self.integrity is not None:
            object.__setattr__(self, "integrity", dict(self.integrity))
        object.__setattr__(self, "lower_ci", _ci_from(self.lower_ci))
        object.__setattr__(self, "upper_ci", _ci_from(self.upper_ci))
        object.__setattr__(self, "incidences", tuple(self.incidences))
        object.__setattr__(self, "gates_passed", tuple(self.gates_passed))
        object.__setattr__(self, "search", dict(self.search))
        problems = self._violations()
        if problems:
            raise ValueError("invalid ExposureWindow: " + "; ".join(problems))

    def _violations(self) -> list[str]:
        return (self._text_violations() + self._bound_violations() + self._ci_violations()
                + self._record_violations() + self._finding_violations())

    def _text_violations(self) -> list[str]:
        """Problems with the descriptive fields: names, population, horizon."""
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
        return p

    def _bound_violations(self) -> list[str]:
        """Problems with the bounds and the target."""
        p = []
        lo, up = self.lower, self.upper
        for name, v in (("lower", lo), ("upper", up)):
            if v is not None and not _finite(v):
                p.append(f"`{name}` must be a finite number or None (open), got {name}={v!r}")
        if lo is None and up is None and self.finding not in ("overlap", "no-window"):
            p.append("at least one of `lower`, `upper` must be given, got both None")
        if _finite(lo) and _finite(up) and not lo < up:
            p.append(f"`lower < upper` must hold, got lower={lo}, upper={up}")
        if not _finite(self.target):
            p.append(f"`target` must be a finite number, got target={self.target!r}")
        elif (_finite(lo) and self.target < lo) or (_finite(up) and self.target >= up):
            p.append(f"`lower <= target < upper` must hold, got lower={lo}, target={self.target}, upper={up}")
        return p

    def _ci_violations(self) -> list[str]:
        """Problems with the confidence intervals of the bounds and their level."""
        p = []
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
        return p

    def _status_violations(self) -> list[str]:
        """Problems with the status and, for a validated window, its promotion."""
        p = []
        if self.status not in STATUSES:
            p.append(f"`status` must be one of {STATUSES}, got {self.status!r}")
        if self.status == WindowStatus.VALIDATED:
            if not self.gates_passed:
                p.append("a validated window must list `gates_passed`, got none")
            for name in ("promoted_by", "promotion_reason"):
                v = getattr(self, name)
                if not (isinstance(v, str) and v.strip()):
                    p.append(f"a validated window must have a non-empty `{name}`, got {v!r}")
        return p

    def _record_violations(self) -> list[str]:
        """Problems with the statistics, status, promotion and record-keeping fields."""
        p = []
        if self.p_value is not None and not (_finite(self.p_value) and 0 <= self.p_value <= 1):
            p.append(f"`0 <= p_value <= 1` must hold (or None), got p_value={self.p_value!r}")
        if not _finite(self.statistic):
            p.append(f"`statistic` must be finite, got {self.statistic!r}")
        if not isinstance(self.simulated, bool):
            p.append(f"`simulated` must be a bool, got {self.simulated!r}")
        p.extend(self._status_violations())
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

    def _finding_violations(self) -> list[str]:
        p = []
        if self.finding not in FINDINGS:
            return [f"`finding` must be one of {FINDINGS}, got {self.finding!r}"]
        if self.search_kind not in SEARCH_KINDS:
            p.append(f"`search_kind` must be one of {SEARCH_KINDS}, got {self.search_kind!r}")
        expected = {"window": (True, True), "floor-only": (True, False), "ceiling-only": (False, True)}
        if self.finding in expected and expected[self.finding] != (self.lower is not None, self.upper is not None):
            p.append(f"finding {self.finding!r} needs " + {
                "window": "both bounds", "floor-only": "a lower bound and an open upper bound",
                "ceiling-only": "an upper bound and an open lower bound"}[self.finding]
                + f", got lower={self.lower}, upper={self.upper}")
        if self.status == WindowStatus.NO_WINDOW and self.finding not in ("overlap", "no-window") and \
                self.search_kind == "benefit-harm":
            p.append(f"a benefit-harm window with finding {self.finding!r} cannot have status 'no-window'")
        if self.status != WindowStatus.NO_WINDOW and self.finding in ("overlap", "no-window"):
            p.append(f"finding {self.finding!r} must have status 'no-window', got {self.status!r}")
        if self.status == WindowStatus.VALIDATED and self.finding != "window":
            p.append(f"only a two-sided window (finding 'window') can be validated, got finding {self.finding!r}")
        for name in ("floor", "ceiling"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, BoundEvidence) and v.side == name):
                p.append(f"`{name}` must be a BoundEvidence of side {name!r}")
        return p + self._provenance_violations()

    def _provenance_violations(self) -> list[str]:
        """Problems with the protocol source and the PK model's record."""
        p = []
        if (self.search_kind == "protocol") != (self.protocol is not None):
            p.append("a protocol window (search_kind 'protocol') must carry its `protocol` source, and only it")
        if self.protocol is not None:
            missing = [k for k in PROTOCOL_KEYS if not (isinstance(self.protocol.get(k), str) and self.protocol[k].strip())]
            if missing:
                p.append(f"`protocol` must name its source: missing or empty {missing}")
            elif self.protocol["unit"] != self.unit:
                p.append(f"`protocol.unit` ({self.protocol['unit']!r}) must be the window's unit ({self.unit!r})")
        if self.pk_model is not None:
            missing = [k for k in ("name", "digest", "source") if not isinstance(self.pk_model.get(k), str)]
            if missing:
                p.append(f"`pk_model` must have text keys name, digest and source; missing or not text: {missing}")
        return p

    def signed(self, key) -> ExposureWindow:
        """A copy carrying an ``integrity`` record signed with ``key`` (:class:`ml.window.SigningKey`)."""
        from ml.window._integrity import sign_window

        unsigned = replace(self, integrity=None)
        return replace(unsigned, integrity=sign_window(unsigned.to_dict(), key))

    # ------------------------------------------------------------------------------ conversion
    def with_origin(self, **changes) -> ExposureWindow:
        """A copy whose :attr:`origin` has ``changes`` (``source``, ``integrity``, ``model_file``)."""
        return replace(self, origin=replace(self.origin, **changes))

    def to_dict(self) -> dict:
        """Plain JSON-compatible dict (tuples become lists); :attr:`origin` is not part of it."""
        d = asdict(self)
        del d["origin"]
        for name in ("lower_ci", "upper_ci"):
            if d[name] is not None:
                d[name] = list(d[name])
        for name in ("floor", "ceiling"):
            if d[name] is not None:
                d[name]["endpoints"] = list(d[name]["endpoints"])
                d[name]["covariates"] = list(d[name]["covariates"])
                if d[name]["ci"] is not None:
                    d[name]["ci"] = list(d[name]["ci"])
        d["gates_passed"] = list(d["gates_passed"])
        d["incidences"] = [dict(i) for i in d["incidences"]]
        return d

    @classmethod
    def from_dict(cls, data: dict) -> ExposureWindow:
        """Rebuild (and validate) a window from :meth:`to_dict`'s output."""
        if not isinstance(data, dict):
            raise TypeError(f"ExposureWindow.from_dict needs a dict, got {type(data).__name__}")
        version = data.get("schema_version", SCHEMA_VERSION)
        if version not in READABLE_SCHEMAS:
            raise ValueError(f"ExposureWindow schema_version {version!r} cannot be read; this version reads "
                             f"{READABLE_SCHEMAS}")
        if version == 1:  # schema 1: a composite search; finding derived from status and bounds
            data = {**data, "schema_version": SCHEMA_VERSION, "search_kind": "composite"}
        known = {f.name for f in fields(cls)} - {"origin"}
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
        for name in ("floor", "ceiling"):
            if d.get(name) is not None:
                d[name] = BoundEvidence.from_dict(d[name])
        return cls(**d)

    def to_json(self, path: str | Path | None = None, *, indent: int = 2) -> str:
        """JSON text (strict JSON: no NaN / Infinity); also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            from ml._atomic import write_atomic

            write_atomic(path, text + "\n", mkdir=False)
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
    @property
    def provenance(self) -> str:
        """One line saying where the window comes from (shown wherever the window is used)."""
        if self.protocol is not None:
            p = self.protocol
            return (f"PROTOCOL window from {p['publication']} (PMID {p['pmid']}; {p['population']}; assay "
                    f"{p['assay']}), entered by {p['entered_by']}: not derived from this population's outcomes")
        if self.search_kind == "truth":
            return (f"the TRUE window of a SIMULATED world ({self.population.donor_source}): known from the simulator, "
                    "not estimated")
        sim = "SIMULATED " if self.simulated else ""
        return (f"derived ({self.search_kind} search) from a {sim}{self.population.donor_source} cohort of "
                f"{self.population.n} patients, dataset {self.dataset_digest[:12]}")

    def contains(self, exposure: float) -> bool:
        """True when ``lower <= exposure < upper`` (open sides always pass)."""
        return (self.lower is None or exposure >= self.lower) and (self.upper is None or exposure < self.upper)
