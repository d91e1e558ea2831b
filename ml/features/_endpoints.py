"""Survival and competing-risk targets built from the outcomes table.

This module is the one place where targets are built. Every endpoint of the
cohort contract (docs/cohort-format.md, "Endpoints derived from outcomes") is a time-to-event in
days from transplant, possibly with a competing event:

=========  ===============================================  ==========================
endpoint   event of interest                                competing event
=========  ===============================================  ==========================
cmv        first CMV reactivation (``cmv_day``)             death
ebv        first EBV reactivation (``ebv_day``)             death
agvhd2     acute GVHD grade II-IV (``agvhd2_day``)          death
agvhd3     acute GVHD grade III-IV (``agvhd3_day``)         death
cgvhd      chronic GVHD (``cgvhd_day``)                     death
relapse    relapse (``relapse_day``)                        death
nrm        death without prior relapse                      relapse
os         death (``death_day``)                            none
dfs        relapse or death, whichever first                none
a|b|...    the first of the components (``death`` allowed)  death, unless a component
=========  ===============================================  ==========================

Two target types come out:

* :func:`survival_target` - scikit-survival's structured array ``(event: bool, time: f8)``.
  A competing event counts as censoring at its day (cause-specific view).
* :func:`competing_target` - ``(event: i1, time: f8)`` with 0 = censored, 1 = event of interest,
  2 = competing event (the Aalen-Johansen / Fine-Gray view).

An event of interest and a competing death on the same day count as the event of interest (the
event happened while the patient was alive); for ``nrm``, a relapse on the day of death makes the
death relapse-related (competing). With a horizon, anything after the horizon is censored at the
horizon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "COMPONENTS",
    "ENDPOINTS",
    "SURVIVAL_DTYPE",
    "COMPETING_DTYPE",
    "EndpointDefinition",
    "check_competing_target",
    "check_survival_target",
    "competing_target",
    "parse_endpoint",
    "survival_target",
]

#: Event columns of ``outcomes`` that may be combined into a composite endpoint (``a|b|c``).
COMPONENTS: dict[str, str] = {
    "cmv": "cmv_day",
    "ebv": "ebv_day",
    "agvhd2": "agvhd2_day",
    "agvhd3": "agvhd3_day",
    "cgvhd": "cgvhd_day",
    "relapse": "relapse_day",
    "death": "death_day",
}

#: Named endpoints of the cohort contract (composites ``a|b|c`` of :data:`COMPONENTS` also work).
ENDPOINTS: tuple[str, ...] = (
    "cmv", "ebv", "agvhd2", "agvhd3", "cgvhd", "relapse", "nrm", "os", "dfs",
)

SURVIVAL_DTYPE = np.dtype([("event", bool), ("time", "f8")])
COMPETING_DTYPE = np.dtype([("event", "i1"), ("time", "f8")])


@dataclass(frozen=True)
class EndpointDefinition:
    """How one endpoint is read from the outcomes table.

    Attributes
    ----------
    name : str
        Canonical name (``"cmv"``, ``"nrm"``, ``"cmv|ebv|agvhd2|death"``).
    events : tuple of str
        Outcome columns whose earliest day is the event of interest.
    competing : str or None
        Outcome column holding the competing event's day, or None.
    tie_to_event : bool
        On a tie between event and competing event, count the event of interest.
    """

    name: str
    events: tuple[str, ...]
    competing: str | None
    tie_to_event: bool = True


def _valid_names() -> str:
    return ", ".join(ENDPOINTS) + "; or a composite 'a|b|...' of " + ", ".join(COMPONENTS)


def parse_endpoint(endpoint: str) -> EndpointDefinition:
    """Translate an endpoint name into the outcome columns that define it.

    Parameters
    ----------
    endpoint : str
        One of :data:`ENDPOINTS`, or a composite ``"a|b|c"`` of :data:`COMPONENTS` (the first of
        several events; e.g. ``"cmv|ebv|agvhd2|death"``). Case and spaces are ignored.

    Returns
    -------
    EndpointDefinition

    Raises
    ------
    ValueError
        If the name is not a valid endpoint; the message lists the valid names.
    """
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise ValueError(f"endpoint must be a non-empty string, got {endpoint!r}; valid: {_valid_names()}")
    parts = [p.strip().lower() for p in endpoint.split("|")]
    if len(parts) == 1:
        name = parts[0]
        if name in ("cmv", "ebv", "agvhd2", "agvhd3", "cgvhd", "relapse"):
            return EndpointDefinition(name, (COMPONENTS[name],), "death_day")
        if name == "nrm":
            return EndpointDefinition(name, ("death_day",), "relapse_day", tie_to_event=False)
        if name in ("os", "death"):
            return EndpointDefinition(name, ("death_day",), None)
        if name == "dfs":
            return EndpointDefinition(name, ("relapse_day", "death_day"), None)
        raise ValueError(f"unknown endpoint {endpoint!r}; valid: {_valid_names()}")
    bad = [p for p in parts if p not in COMPONENTS]
    if bad:
        raise ValueError(
            f"unknown component(s) {bad} in composite endpoint {endpoint!r}; "
            f"components must be among: {', '.join(COMPONENTS)}"
        )
    unique = tuple(dict.fromkeys(parts))
    competing = None if "death" in unique else "death_day"
    return EndpointDefinition("|".join(unique), tuple(COMPONENTS[p] for p in unique), competing)


def _check_horizon(horizon: float | None) -> float | None:
    if horizon is None:
        return None
    h = float(horizon)
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"horizon must be a finite number of days > 0 or None, got {horizon!r}")
    return h


def _codes(outcomes: pd.DataFrame, endpoint: str, horizon: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Event codes (0 censored, 1 event, 2 competing) and times in days."""
    definition = parse_endpoint(endpoint)
    h = _check_horizon(horizon)
    if not isinstance(outcomes, pd.DataFrame):
        raise TypeError(f"outcomes must be a pandas DataFrame, got {type(outcomes).__name__}")
    needed = ["last_followup_day", *definition.events]
    if definition.competing:
        needed.append(definition.competing)
    missing = [c for c in dict.fromkeys(needed) if c not in outcomes.columns]
    if missing:
        raise ValueError(f"outcomes lacks column(s) {missing} needed for endpoint {definition.name!r}")
    followup = outcomes["last_followup_day"].to_numpy(dtype=float)
    if np.isnan(followup).any():
        rows = np.flatnonzero(np.isnan(followup))[:5].tolist()
        raise ValueError(f"outcomes.last_followup_day must not be missing, rows {rows}")

    days = np.column_stack([outcomes[c].to_numpy(dtype=float) for c in definition.events])
    has_event = ~np.isnan(days).all(axis=1)
    first = np.full(len(outcomes), np.inf)
    first[has_event] = np.nanmin(days[has_event], axis=1)
    if definition.competing:
        comp = outcomes[definition.competing].to_numpy(dtype=float)
        comp = np.where(np.isnan(comp), np.inf, comp)
    else:
        comp = np.full(len(outcomes), np.inf)

    event_first = first <= comp if definition.tie_to_event else first < comp
    code = np.zeros(len(outcomes), dtype=np.int8)
    time = followup.copy()
    is_event = has_event & event_first
    is_comp = np.isfinite(comp) & ~is_event
    code[is_event] = 1
    time[is_event] = first[is_event]
    code[is_comp] = 2
    time[is_comp] = comp[is_comp]
    if h is not None:
        late = time > h
        code[late] = 0
        time[late] = h
    return code, time


def competing_target(outcomes: pd.DataFrame, endpoint: str, horizon: float | None = None) -> np.ndarray:
    """Competing-risk target of ``endpoint``: 0 censored, 1 event of interest, 2 competing event.

    Parameters
    ----------
    outcomes : pandas.DataFrame
        The outcomes table of the cohort contract (one row per patient; event days in days from
        transplant, NaN when the event did not happen).
    endpoint : str
        Endpoint name, see :func:`parse_endpoint`.
    horizon : float or None
        Days from transplant; events after it are censored at it. None: no truncation.

    Returns
    -------
    numpy.ndarray
        Structured array, dtype ``[("event", "i1"), ("time", "f8")]``, rows aligned with
        ``outcomes``; ``time`` in days from transplant.
    """
    code, time = _codes(outcomes, endpoint, horizon)
    out = np.empty(len(code), dtype=COMPETING_DTYPE)
    out["event"] = code
    out["time"] = time
    return out


def survival_target(outcomes: pd.DataFrame, endpoint: str, horizon: float | None = None) -> np.ndarray:
    """Survival target of ``endpoint`` in scikit-survival's format (cause-specific view).

    A competing event (e.g. death before CMV reactivation) counts as censoring at its day.

    Parameters
    ----------
    outcomes : pandas.DataFrame
        The outcomes table of the cohort contract.
    endpoint : str
        Endpoint name, see :func:`parse_endpoint`.
    horizon : float or None
        Days from transplant; events after it are censored at it. None: no truncation.

    Returns
    -------
    numpy.ndarray
        Structured array, dtype ``[("event", bool), ("time", "f8")]``, rows aligned with
        ``outcomes``; ``time`` in days from transplant.
    """
    code, time = _codes(outcomes, endpoint, horizon)
    out = np.empty(len(code), dtype=SURVIVAL_DTYPE)
    out["event"] = code == 1
    out["time"] = time
    return out


def _check_structured(y, kind: str) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    names = y.dtype.names
    if names is None or set(names) != {"event", "time"}:
        raise ValueError(
            f"{kind} target must be a structured array with fields ('event', 'time'), got dtype {y.dtype}"
        )
    if y.ndim != 1:
        raise ValueError(f"{kind} target must be 1-dimensional, got shape {y.shape}")
    time = y["time"].astype(float)
    if not np.isfinite(time).all() or (time < 0).any():
        raise ValueError(f"{kind} target times must be finite and >= 0 (days from transplant)")
    return y["event"], time


def check_survival_target(y) -> tuple[np.ndarray, np.ndarray]:
    """Validate a survival target and return ``(event: bool array, time: float array)``.

    Accepts the output of :func:`survival_target` (or any scikit-survival target) and also a
    competing target, whose code 1 becomes the event and codes 0/2 censoring (cause-specific).
    """
    event, time = _check_structured(y, "survival")
    if event.dtype == bool:
        return event.copy(), time
    codes = event.astype(int)
    if not np.isin(codes, (0, 1, 2)).all():
        raise ValueError("competing target event codes must be 0 (censored), 1 (event) or 2 (competing)")
    return codes == 1, time


def check_competing_target(y) -> tuple[np.ndarray, np.ndarray]:
    """Validate a competing-risk target and return ``(codes: int array, time: float array)``.

    A boolean survival target is accepted as a competing target without competing events.
    """
    event, time = _check_structured(y, "competing")
    codes = event.astype(np.int8)
    if not np.isin(codes, (0, 1, 2)).all():
        raise ValueError("competing target event codes must be 0 (censored), 1 (event) or 2 (competing)")
    return codes, time
