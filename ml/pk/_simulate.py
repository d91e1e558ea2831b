"""Simulation of the two-compartment ATG model with linear + saturable elimination.

The model and its integrator are in :mod:`ml.pk._integrator` (one copy of the equations for the
whole package); :func:`simulate` integrates with the "accuracy" step policy
(:class:`~ml.pk._integrator.AccuracyPolicy`: every infusion start and end a grid node, 2 h steps
while drug is given, larger later, ``h lambda <= 0.15``, patients chunked in order of stiffness).
Values at arbitrary times come from cubic Hermite interpolation of the step end points (error
O(h^4)). Beyond ``t_end`` the remaining drug (A1 + A2) is eliminated with the clearance at
vanishing concentration, CL + Vmax/Km, which gives the AUC tail in closed form (exact for the
linear model; the saturable path is linear for C << Km).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._integrator import _PHASE_STEPS, AccuracyPolicy, Solution, StepPolicy, _rhs, solve
from ._params import PKParameters
from ._regimen import Infusions

__all__ = ["Exposure", "model_exposure", "simulate"]

_STEP_TIMES_RATE = 0.15  # h * lambda_max: relative error ~1e-5 (tests: vs LSODA), far inside RK4 stability
_CHUNK = 4096


@dataclass(frozen=True)
class Exposure:
    """Model AUCs of active ATG per patient, in concentration unit x day (UE*day/mL).

    Attributes
    ----------
    auc_pre : numpy.ndarray
        AUC from the first dose to ``t_split`` (day 0, transplant).
    auc_post : numpy.ndarray
        AUC from ``t_split`` to infinity.
    auc_total : numpy.ndarray
        ``auc_pre + auc_post``.
    """

    auc_pre: np.ndarray
    auc_post: np.ndarray

    @property
    def auc_total(self) -> np.ndarray:
        return self.auc_pre + self.auc_post


def _hermite(t, t0, t1, y0, y1, d0, d1):
    h = t1 - t0
    s = (t - t0) / h
    s2, s3 = s * s, s * s * s
    return ((2 * s3 - 3 * s2 + 1) * y0 + (s3 - 2 * s2 + s) * h * d0
            + (-2 * s3 + 3 * s2) * y1 + (s3 - s2) * h * d1)


def _exposures(sol: Solution, params: PKParameters, t_split: float, t_end: float) -> dict[str, np.ndarray]:
    """AUC before ``t_split`` and after it (to infinity: closed-form tail beyond ``t_end``)."""
    breaks, states = sol.batch.breaks, sol.at_breaks()
    n = sol.batch.rows.size
    auc_split = states[2, :, int(np.searchsorted(breaks, t_split))] if t_split >= breaks[0] else np.zeros(n)
    end = states[:, :, int(np.searchsorted(breaks, t_end))]
    tail = (end[0] + end[1]) / (params.CL + params.Vmax / params.Km)
    total = end[2] + tail
    return {"auc_pre": auc_split, "auc_post": total - auc_split}


def _interpolate(store, nodes, interval, rates, p, times):
    n = store.shape[1]
    tq = np.broadcast_to(np.atleast_2d(times), (n, np.shape(times)[-1]))
    step = np.clip(np.searchsorted(nodes, tq, side="right") - 1, 0, nodes.size - 2)
    rows = np.arange(n)[:, None]
    t0, t1 = nodes[step], nodes[step + 1]
    a1_0, a1_1 = store[0][rows, step], store[0][rows, step + 1]
    a2_0, a2_1 = store[1][rows, step], store[1][rows, step + 1]
    auc0, auc1 = store[2][rows, step], store[2][rows, step + 1]
    r = rates[rows, interval[step]]
    pr = {k: v[:, None] for k, v in p.items()}
    d0, _, c0 = _rhs(a1_0, a2_0, r, pr)
    d1, _, c1 = _rhs(a1_1, a2_1, r, pr)
    before = tq < nodes[0]
    conc = np.where(before, 0.0, _hermite(tq, t0, t1, a1_0, a1_1, d0, d1) / pr["V1"])
    auc = np.where(before, 0.0, _hermite(tq, t0, t1, auc0, auc1, c0, c1))
    return {"concentration": np.maximum(conc, 0.0), "auc": auc}


def simulate(
    params: PKParameters,
    infusions: Infusions,
    times: np.ndarray | None = None,
    *,
    t_split: float = 0.0,
    t_end: float = 90.0,
    chunk_size: int = _CHUNK,
    phase_steps: tuple[tuple[float, float], ...] = _PHASE_STEPS,
    progress: Callable[[int], object] | None = None,
    rate_cap: float = _STEP_TIMES_RATE,
    policy: StepPolicy | None = None,
) -> dict[str, np.ndarray]:
    """Simulate concentrations and exposures of many patients.

    Parameters
    ----------
    params : PKParameters
        Individual parameters of ``n`` patients.
    infusions : Infusions
        Their infusions of active drug (``infusions.n_patients == n``).
    times : array-like, optional
        Times (days from transplant) at which to report concentrations, either one
        vector ``(m,)`` for everybody or one row per patient ``(n, m)``.
    t_split : float
        Day separating pre- from post-transplant exposure (0 = transplant).
    t_end : float
        Day up to which the ODE is integrated; the AUC beyond it is added in closed form.
    chunk_size : int
        Patients integrated together (memory grows with it when ``times`` is given).
    phase_steps : tuple of (float, float)
        ``(from_day, max_step_days)`` pairs in increasing ``from_day``: the largest RK4 step
        allowed from that day on. The default keeps the relative error near 1e-6 (checked
        against LSODA in the tests); coarser steps trade accuracy for speed.
    progress : callable, optional
        Called with the number of patients of each finished chunk.
    rate_cap : float
        Cap on the RK4 step times the fastest rate of the model, ``h * lambda_max`` (dimensionless,
        in (0, 2.5] for stability; the default keeps the relative error near 1e-5).
    policy : StepPolicy, optional
        Step policy of the integrator (default: :class:`~ml.pk._integrator.AccuracyPolicy` of
        ``phase_steps``, ``rate_cap`` and ``chunk_size``); e.g.
        :class:`~ml.pk._integrator.EstimationPolicy` for fitting.

    Returns
    -------
    dict
        ``auc_pre``, ``auc_post`` (``(n,)``, UE*day/mL); with ``times`` also
        ``concentration`` and ``auc`` (cumulative AUC since the first dose), ``(n, m)``.
    """
    if infusions.n_patients != params.n:
        raise ValueError(
            f"infusions are for {infusions.n_patients} patients but parameters for {params.n}")
    t = None if times is None else np.asarray(times, dtype=float)
    if t is not None and t.ndim == 2 and t.shape[0] != params.n:
        raise ValueError(f"times has {t.shape[0]} rows, expected one per patient ({params.n})")
    if t is not None and not np.isfinite(t).all():
        raise ValueError("times must be finite")
    if policy is None:
        policy = AccuracyPolicy(phase_steps=phase_steps, rate_cap=rate_cap, chunk_size=chunk_size)
    out: dict[str, np.ndarray] = {}
    for sol in solve(params, infusions, -np.inf, t_end, None, policy, record=t, marks=(t_split,),
                     dense=t is not None):
        rows = sol.batch.rows
        part = _exposures(sol, params.take(rows), t_split, t_end)
        if t is not None:
            part.update(_interpolate(sol.states, sol.nodes(), sol.batch.interval, sol.rates, sol.coef,
                                     t[rows] if t.ndim == 2 else t))
        for key, value in part.items():
            out.setdefault(key, np.zeros((params.n, *value.shape[1:])))[rows] = value
        if progress is not None:
            progress(rows.size)
    return out


def model_exposure(params: PKParameters, infusions: Infusions, *, t_split: float = 0.0,
                   t_end: float = 90.0) -> Exposure:
    """Noiseless model AUCs (the "true" exposure of a virtual patient), UE*day/mL."""
    out = simulate(params, infusions, t_split=t_split, t_end=t_end)
    return Exposure(auc_pre=out["auc_pre"], auc_post=out["auc_post"])
