"""The one integrator of the ATG model: classical RK4, resumable from a state, steps set by a policy.

The model (docs/design.md; parameters in ml/pk/default_model.toml), amounts in mg, volumes in L,
time in days, C = A1/V1 in mg/L (= UE/mL by assumption)::

    dA1/dt = R(t) - (CL + Q) C - Vmax C / (Km + C) + Q A2 / V2
    dA2/dt = Q C - Q A2 / V2
    dAUC/dt = C

is written once (:func:`_rhs`) and advanced by one fourth-order Runge-Kutta loop (:func:`_march`).
Every infusion start and end is a breakpoint of the grid, so R(t) is constant within each step and
the method keeps its order. Where the steps fall is the business of a *step policy*:

* :class:`AccuracyPolicy` -- the simulator's steps (``ml.pk.simulate``, ``ml.sim``): phase steps
  by day (2 h while drug is given, then 6 h, 12 h), capped at ``0.15 / lambda`` of the stiffest
  row of a chunk; rows are chunked in order of stiffness, and every chunk has one grid.
* :class:`EstimationPolicy` -- the popPK fit (SAEM, ``ml.poppk``): the accuracy policy's grid
  with coarser phase steps, RK4's stability limit (``h lambda <= 2.5``) instead of the accuracy
  bound, and one grid for all rows of a call (finite differences see the same steps).
* :class:`ForecastGrid` -- MAP (``FIT_GRID``) and the dosing forecast: phase steps relative to
  the last infusion, a step cap rounded down to a power of two per *group* (a patient's rows),
  so one patient's numbers never depend on the other patients of a batch.

``lambda = (CL + Vmax/Km + Q)/V1 + Q/V2`` bounds the fastest rate. Beyond the end, the remaining
amount is eliminated at the clearance of vanishing concentration, ``CL + Vmax/Km``
(:func:`tail_auc`: exact for the linear model, the saturable path is linear for C << Km).
tests/test_pk_integrator.py checks each policy against scipy's ``solve_ivp`` at rtol 1e-10 and
against the closed form of the linear two-compartment model.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ._params import PKParameters
from ._regimen import Infusions

__all__ = [
    "FIT_GRID",
    "FORECAST",
    "AccuracyPolicy",
    "Batch",
    "EstimationPolicy",
    "ForecastGrid",
    "Solution",
    "State",
    "StepPolicy",
    "integrate",
    "solve",
    "tail_auc",
]


@dataclass(frozen=True)
class State:
    """Amounts (mg) in the central and peripheral compartments and the AUC so far (UE*day/mL)."""

    a1: np.ndarray
    a2: np.ndarray
    auc: np.ndarray

    @classmethod
    def zeros(cls, n: int) -> State:
        return cls(np.zeros(n), np.zeros(n), np.zeros(n))

    def take(self, rows: np.ndarray) -> State:
        return State(self.a1[rows], self.a2[rows], self.auc[rows])


@dataclass(frozen=True)
class Batch:
    """Rows integrated together on one grid.

    Attributes
    ----------
    rows : numpy.ndarray of int
        Rows of the call (indices into its parameters).
    breaks : numpy.ndarray
        Breakpoints, days, increasing: the grid starts at ``breaks[0]`` and passes through each.
    step : numpy.ndarray
        RK4 step sizes, days, in order.
    interval : numpy.ndarray of int
        Breakpoint interval of each step (the infusion rate is constant within it).
    chunk : int or None
        Rows marched together (memory only: the results do not depend on it).
    nodes : numpy.ndarray or None
        Times of the grid nodes, days, when the policy computed them (``step`` is their
        difference); None: ``breaks[0]`` plus the cumulated steps.
    """

    rows: np.ndarray
    breaks: np.ndarray
    step: np.ndarray
    interval: np.ndarray
    chunk: int | None = None
    nodes: np.ndarray | None = None


class StepPolicy(Protocol):
    """Where the integrator steps: partitions the rows into :class:`Batch` es, each with its grid."""

    #: True when recorded times become breakpoints (``integrate(record=...)`` reads them there)
    records_at_breaks: bool
    #: True to compute ``C = A1 * (1 / V1)`` (a multiplication) instead of ``A1 / V1``: faster; the
    #: two differ in the last bit, and each policy keeps the arithmetic its numbers were made with
    reciprocal_volume: bool

    def batches(self, params: PKParameters, infusions: Infusions, t_from: float, t_to: float, *,
                resumed: bool, group: np.ndarray, record: np.ndarray | None,
                marks: tuple[float, ...], dosing_until: float | None = None) -> Iterator[Batch]:
        ...  # pragma: no cover


def _stiffness(p: PKParameters) -> np.ndarray:
    return (p.CL + p.Vmax / p.Km + p.Q) / p.V1 + p.Q / p.V2


def tail_auc(params: PKParameters, state: State) -> np.ndarray:
    """AUC beyond the state's time: remaining amount / clearance at vanishing concentration."""
    return (state.a1 + state.a2) / (params.CL + params.Vmax / params.Km)


def _starts_ends(infusions: Infusions, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mine = np.isin(infusions.patient, rows)
    return infusions.start[mine], infusions.end[mine]


def _phase_nodes(breaks: np.ndarray, h_stab: float, phase_steps) -> tuple[np.ndarray, np.ndarray]:
    """Grid nodes covering ``breaks`` and, per step, the index of its breakpoint interval."""
    nodes, interval = [breaks[:1]], []
    for k in range(breaks.size - 1):
        lo, hi = breaks[k], breaks[k + 1]
        h = min(h_stab, [step for start, step in phase_steps if lo >= start][-1])
        m = max(1, int(np.ceil((hi - lo) / h - 1e-9)))
        nodes.append(np.linspace(lo, hi, m + 1)[1:])
        interval.append(np.full(m, k))
    return np.concatenate(nodes), np.concatenate(interval) if interval else np.zeros(0, int)


#: simulator's grid step by phase, days: (phase starts at, maximal step)
_PHASE_STEPS = ((-np.inf, 1.0 / 12.0), (1.0, 0.25), (20.0, 0.5))


@dataclass(frozen=True)
class AccuracyPolicy:
    """Step policy "accuracy": the simulator's grid (relative error ~1e-6 at the defaults).

    Attributes
    ----------
    phase_steps : tuple of (float, float)
        ``(from_day, max_step_days)`` pairs in increasing ``from_day``: the largest step from that
        day on (absolute days).
    rate_cap : float
        Largest ``h * lambda`` (0.15: relative error ~1e-5 at worst, far inside RK4's stability).
    chunk_size : int or None
        Rows sharing a grid, taken in order of stiffness (None: all rows of a call).
    """

    phase_steps: tuple[tuple[float, float], ...] = _PHASE_STEPS
    rate_cap: float = 0.15
    chunk_size: int | None = 4096

    def __post_init__(self):
        if not 0 < self.rate_cap <= 2.5:
            raise ValueError(f"rate_cap must lie in (0, 2.5] (RK4 stability), got {self.rate_cap}")

    records_at_breaks = False
    reciprocal_volume = False

    def batches(self, params, infusions, t_from, t_to, *, resumed, group, record, marks, dosing_until=None):
        """Rows in order of stiffness, ``chunk_size`` at a time, each chunk on one grid (``group``
        and ``dosing_until`` do not apply)."""
        stiffness = (params.CL + params.Vmax / params.Km + params.Q) / params.V1
        order = np.argsort(stiffness, kind="stable")
        size = self.chunk_size or max(1, params.n)
        full = _stiffness(params)
        phase_starts = [start for start, _ in self.phase_steps if np.isfinite(start)]
        for lo in range(0, params.n, size):
            rows = order[lo:lo + size]
            starts, ends = _starts_ends(infusions, rows)
            if resumed or not starts.size:
                begin = t_from if np.isfinite(t_from) else min((*marks, 0.0))
            else:
                begin = max(t_from, float(starts.min()))
            extra = [] if record is None else [float(np.nanmax(record if record.ndim == 1 else record[rows]))]
            breaks = np.unique(np.r_[starts, ends, begin, list(marks), t_to, extra, phase_starts])
            breaks = breaks[breaks >= begin]
            nodes, interval = _phase_nodes(breaks, self.rate_cap / float(full[rows].max()), self.phase_steps)
            yield Batch(rows, breaks, np.diff(nodes), interval, nodes=nodes)


@dataclass(frozen=True)
class EstimationPolicy(AccuracyPolicy):
    """Step policy "estimation": the accuracy grid bounded by RK4's stability limit, one grid per call.

    Relative error about 1e-3 against :class:`AccuracyPolicy` (tests/test_poppk_units.py), far
    below a 20 % residual error. ``phase_steps`` are the popPK fit's (``ml.poppk``).
    """

    rate_cap: float = 2.5
    chunk_size: int | None = None


def _power_of_two_floor(x: float) -> float:
    return 2.0 ** (math.floor(4.0 * math.log2(x)) / 4.0)


def _split_by(keys: np.ndarray) -> dict[int, np.ndarray]:
    order = np.argsort(keys, kind="stable")
    uniq, first = np.unique(keys[order], return_index=True)
    return dict(zip(uniq.tolist(), np.split(order, first[1:])))


@dataclass(frozen=True)
class ForecastGrid:
    """Step policy "forecast" (MAP and the dosing forecast): steps per group, resumable.

    A group's grid is fixed by the group alone (its own infusions and recorded times as
    breakpoints, its own stiffness rounded down to a power-of-two step); groups with the same
    grid are integrated together.

    Attributes
    ----------
    dosing_step : float
        Largest step before the end of the group's last infusion, days (default 4 h).
    post_step : float
        Largest step from the end of the last infusion to ``tail_from``, days.
    tail_step : float
        Largest step after ``tail_from``, days.
    tail_from : float
        Day from which ``tail_step`` applies.
    rate_cap : float
        Largest ``h * lambda`` (1.5: within RK4's stability limit of 2.78 with room to spare).
    t_end : float
        Day up to which the ODE is integrated (closed-form tail beyond).
    """

    dosing_step: float = 1.0 / 6.0
    post_step: float = 1.0
    tail_step: float = 4.0
    tail_from: float = 10.0
    rate_cap: float = 1.5
    t_end: float = 90.0

    records_at_breaks = True
    reciprocal_volume = True

    def batches(self, params, infusions, t_from, t_to, *, resumed, group, record, marks,
                dosing_until=None):
        """One batch per distinct grid; a group's grid depends on the group alone."""
        stiff = _stiffness(params)
        rows_of = _split_by(group)
        infs_of = _split_by(group[infusions.patient])
        buckets: dict[tuple, tuple[np.ndarray, list]] = {}
        for g, rows in rows_of.items():
            mine = infs_of.get(g, np.zeros(0, dtype=np.int64))
            starts, ends = infusions.start[mine], infusions.end[mine]
            begin = t_from if resumed or not starts.size else max(t_from, float(starts.min()))
            last = float(ends.max()) if ends.size else t_from
            if dosing_until is not None:
                last = max(last, dosing_until)
            points = [starts, ends, [last, self.tail_from], *marks]
            if record is not None:
                points.append(record[rows].ravel())
            inner = np.concatenate([np.asarray(p, dtype=float).ravel() for p in points])
            breaks = np.unique(np.r_[begin, t_to, inner[(inner > begin) & (inner < t_to)]])
            h_cap = _power_of_two_floor(self.rate_cap / float(stiff[rows].max()))
            key = (h_cap, last, tuple(np.round(breaks, 9)))
            buckets.setdefault(key, (breaks, []))[1].append(g)
        for (h_cap, last, _), (breaks, groups) in buckets.items():
            yield self._batch(np.concatenate([rows_of[g] for g in groups]), breaks, h_cap, last)

    def _batch(self, rows, breaks, h_cap, last) -> Batch:
        phase = [(-np.inf, self.dosing_step), (last, self.post_step), (self.tail_from, self.tail_step)]
        m, h = np.zeros(breaks.size - 1, dtype=np.int64), np.zeros(breaks.size - 1)
        for k in range(breaks.size - 1):
            step = min([s for s_from, s in phase if breaks[k] >= s_from][-1], h_cap)
            m[k] = max(1, math.ceil((breaks[k + 1] - breaks[k]) / step - 1e-9))
            h[k] = (breaks[k + 1] - breaks[k]) / m[k]
        return Batch(rows, breaks, np.repeat(h, m), np.repeat(np.arange(breaks.size - 1), m), chunk=2048)


#: step policy of the dosing forecast
FORECAST = ForecastGrid()
#: step policy of MAP: fitting levels of days -5..-3, 4 h steps throughout (concentrations within
#: 0.1 % of a 15-min grid)
FIT_GRID = ForecastGrid()


def _interval_rates(infusions: Infusions, rows: np.ndarray, n: int, breaks: np.ndarray) -> np.ndarray:
    """Infusion rate (mg/day) of each row of a batch in each breakpoint interval, ``(rows, K-1)``.

    Infusions that started before ``breaks[0]`` count from the first interval.
    """
    local = np.full(n, -1)
    local[rows] = np.arange(rows.size)
    sel = local[infusions.patient] >= 0
    ip, rate = local[infusions.patient[sel]], infusions.rate[sel]
    diff = np.zeros((rows.size, breaks.size + 1))
    np.add.at(diff, (ip, np.searchsorted(breaks, infusions.start[sel] - 1e-9)), rate)
    np.add.at(diff, (ip, np.searchsorted(breaks, infusions.end[sel] - 1e-9)), -rate)
    rates = np.cumsum(diff, axis=1)[:, :breaks.size - 1]
    rates[rates < 1e-12 * max(1.0, float(rates.max(initial=0.0)))] = 0.0
    return rates


def _coefficients(params: PKParameters, rows: np.ndarray, reciprocal: bool) -> dict[str, np.ndarray]:
    """Rate constants of the rows; with ``reciprocal`` C is computed as ``A1 * (1 / V1)``."""
    V1, Q, Vmax, Km, CL, V2 = (params.V1[rows], params.Q[rows], params.Vmax[rows], params.Km[rows],
                               params.CL[rows], params.V2[rows])
    coef = {"V1": V1, "Q": Q, "Vmax": Vmax, "Km": Km, "CLQ": CL + Q, "QV2": Q / V2}
    if reciprocal:
        coef["inv_V1"] = 1.0 / V1
    return coef


def _rhs(a1, a2, rate, p):
    """The model equations: ``dA1/dt``, ``dA2/dt`` and ``dAUC/dt = C``."""
    c = a1 * p["inv_V1"] if "inv_V1" in p else a1 / p["V1"]
    back = p["QV2"] * a2
    return rate - p["CLQ"] * c - p["Vmax"] * c / (p["Km"] + c) + back, p["Q"] * c - back, c


def _break_nodes(batch: Batch) -> np.ndarray:
    """Index of the node at each breakpoint."""
    return np.r_[0, np.cumsum(np.bincount(batch.interval, minlength=batch.breaks.size - 1))]


def _march(x: np.ndarray, p: dict, rates: np.ndarray, batch: Batch, dense: bool):
    """RK4 over the batch's steps from ``x = (a1, a2, auc)``; states at every node (``dense``) or at
    every breakpoint, ``(3, rows, nodes or K)``."""
    a1, a2, auc = x
    node_break = _break_nodes(batch)
    store = np.empty((3, a1.size, batch.step.size + 1 if dense else batch.breaks.size))
    store[:, :, 0] = x
    for k in range(batch.breaks.size - 1):
        r = rates[:, k]
        for j in range(node_break[k], node_break[k + 1]):
            h = batch.step[j]
            k1a, k1b, c1 = _rhs(a1, a2, r, p)
            k2a, k2b, c2 = _rhs(a1 + 0.5 * h * k1a, a2 + 0.5 * h * k1b, r, p)
            k3a, k3b, c3 = _rhs(a1 + 0.5 * h * k2a, a2 + 0.5 * h * k2b, r, p)
            k4a, k4b, c4 = _rhs(a1 + h * k3a, a2 + h * k3b, r, p)
            a1 = a1 + h / 6.0 * (k1a + 2 * k2a + 2 * k3a + k4a)
            a2 = a2 + h / 6.0 * (k1b + 2 * k2b + 2 * k3b + k4b)
            auc = auc + h / 6.0 * (c1 + 2 * c2 + 2 * c3 + c4)
            if dense:
                store[:, :, j + 1] = a1, a2, auc
        if not dense:
            store[:, :, k + 1] = a1, a2, auc
    return store


@dataclass(frozen=True)
class Solution:
    """One batch integrated: its grid, infusion rates, coefficients and stored states."""

    batch: Batch
    rates: np.ndarray
    coef: dict
    states: np.ndarray
    dense: bool

    def at_breaks(self) -> np.ndarray:
        """States at the breakpoints, ``(3, rows, K)``."""
        if not self.dense:
            return self.states
        return self.states[:, :, _break_nodes(self.batch)]

    def nodes(self) -> np.ndarray:
        """Times of the grid nodes, days (the breakpoints and every step in between)."""
        if self.batch.nodes is not None:
            return self.batch.nodes
        return self.batch.breaks[0] + np.r_[0.0, np.cumsum(self.batch.step)]


def solve(params: PKParameters, infusions: Infusions, t_from: float, t_to: float, state: State | None = None,
          policy: StepPolicy = FORECAST, *, group: np.ndarray | None = None, record: np.ndarray | None = None,
          marks: tuple[float, ...] = (), dense: bool = False,
          dosing_until: float | None = None) -> Iterator[Solution]:
    """Integrate every row batch by batch (the engine below :func:`integrate` and :func:`ml.pk.simulate`).

    Parameters
    ----------
    params : PKParameters
        One parameter set per row.
    infusions : Infusions
        Infusions of active drug of each row.
    t_from, t_to : float
        Start and end, days (a policy may integrate beyond ``t_to`` to reach recorded times).
    state : State, optional
        State of every row at ``t_from`` (default: nothing in the body).
    policy : StepPolicy
        Where the steps fall.
    group : numpy.ndarray of int, optional
        Rows sharing a grid (policies that group rows).
    record : numpy.ndarray, optional
        Times (days) at which values will be read, ``(m,)`` or ``(n, m)``.
    marks : tuple of float
        Further breakpoints, days (e.g. the day splitting pre- from post-transplant AUC).
    dense : bool
        Keep the state at every node (for interpolation) instead of at the breakpoints only.
    dosing_until : float, optional
        Passed to the policy (:class:`ForecastGrid`: keep the dosing step until this day).

    Yields
    ------
    Solution
        One per batch of rows sharing a grid.
    """
    n = params.n
    start = state or State.zeros(n)
    group = np.zeros(n, dtype=np.int64) if group is None else np.asarray(group)
    for batch in policy.batches(params, infusions, t_from, t_to, resumed=state is not None, group=group,
                                record=record, marks=tuple(marks), dosing_until=dosing_until):
        rates = _interval_rates(infusions, batch.rows, n, batch.breaks)
        coef = _coefficients(params, batch.rows, getattr(policy, "reciprocal_volume", False))
        parts = []
        size = batch.chunk or max(1, batch.rows.size)
        for lo in range(0, batch.rows.size, size):
            sub = slice(lo, lo + size)
            idx = batch.rows[sub]
            x = np.stack([start.a1[idx], start.a2[idx], start.auc[idx]])
            parts.append(_march(x, {k: v[sub] for k, v in coef.items()}, rates[sub], batch, dense))
        yield Solution(batch, rates, coef, np.concatenate(parts, axis=1), dense)


def integrate(params: PKParameters, infusions: Infusions, t_from: float, t_to: float,
              state: State | None = None, grid: StepPolicy = FORECAST, *,
              group: np.ndarray | None = None, record: np.ndarray | None = None,
              dosing_until: float | None = None) -> tuple[State, np.ndarray | None]:
    """Advance every row to ``t_to`` (days from transplant).

    Parameters
    ----------
    params : PKParameters
        One parameter set per row.
    infusions : Infusions
        Infusions of active drug of each row (``n_patients`` = rows); parts before ``t_from``
        are ignored (their effect is in ``state``).
    t_from, t_to : float
        Start and end, days. Without ``state`` a group starts at its first infusion (nothing in
        the body before).
    state : State, optional
        State of every row at ``t_from``.
    grid : StepPolicy
        The step policy (default :data:`FORECAST`): :class:`ForecastGrid`, :class:`AccuracyPolicy`
        or :class:`EstimationPolicy`.
    group : numpy.ndarray of int, optional
        Rows sharing an integration grid under :class:`ForecastGrid` (default: all rows one group).
    record : numpy.ndarray, shape (n, m), optional
        Times (days) at which to return each row's concentration (within ``[t_from, t_to]``;
        earlier than the row's start gives the starting concentration). Only with
        :class:`ForecastGrid`, which makes them breakpoints (:func:`ml.pk.simulate` interpolates
        between the accuracy policy's nodes).
    dosing_until : float, optional
        :class:`ForecastGrid` keeps the dosing step until at least this day (default: the group's
        last infusion end).

    Returns
    -------
    state : State
        At ``t_to``.
    concentration : numpy.ndarray or None
        ``(n, m)`` concentrations at ``record`` (UE/mL), when asked.
    """
    n = params.n
    start = state or State.zeros(n)
    a1, a2, auc = start.a1.copy(), start.a2.copy(), start.auc.copy()
    conc = None if record is None else np.zeros(record.shape)
    if n == 0 or t_to <= t_from:
        if conc is not None:
            conc[:] = (a1 / params.V1)[:, None]
        return State(a1, a2, auc), conc
    if record is not None and not grid.records_at_breaks:
        raise ValueError("integrate(record=...) needs a policy that makes recorded times breakpoints "
                         "(ForecastGrid); ml.pk.simulate interpolates between the nodes of the others")
    for sol in solve(params, infusions, t_from, t_to, state, grid, group=group, record=record,
                     dosing_until=dosing_until):
        rows, breaks, states = sol.batch.rows, sol.batch.breaks, sol.at_breaks()
        k_to = min(int(np.searchsorted(breaks, t_to - 1e-9)), breaks.size - 1)
        a1[rows], a2[rows], auc[rows] = states[:, :, k_to]
        if conc is not None:
            conc[rows] = _recorded(states[0] / sol.coef["V1"][:, None], breaks, record[rows])
    return State(a1, a2, auc), conc


def _recorded(c_breaks: np.ndarray, breaks: np.ndarray, rec: np.ndarray) -> np.ndarray:
    """Concentrations at record times that are breakpoints (0 beyond the grid)."""
    at = np.searchsorted(breaks, rec - 1e-9)
    at[rec < breaks[0]] = 0
    inside = at < breaks.size
    out = np.zeros(rec.shape)
    out[inside] = np.take_along_axis(c_breaks, np.where(inside, at, 0), axis=1)[inside]
    return out
