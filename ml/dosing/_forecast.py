"""Forecast of total AUC under candidate regimens, for weighted posterior draws.

The exact forecast simulates every (draw, regimen) pair. The grid of real regimens can hold
several hundred pairs of daily doses, so the engine simulates each draw on a few *node* doses per
day and interpolates the rest with a tensor-product cubic spline: total AUC is a smooth, nearly
linear function of the daily doses (saturable elimination bends it slightly). The test suite
bounds the interpolation error against direct simulation; the chosen regimen and the fixed
comparator are always re-simulated directly before anything is reported.

Simulation uses :mod:`ml.pk._integrator` (step policy "forecast"): each draw is integrated once up to the decision time
(the start of the first adjustable infusion), and every candidate regimen resumes from that
state, with steps chosen for total AUC (within 0.3 % of LSODA, tests/test_pk_integrator.py).
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline

from ml.pk import ForecastGrid, Infusions, LevelLikelihood, integrate, tail_auc

from ._regimen import AdjustmentSchedule

__all__ = ["harm_probabilities", "node_levels", "simulate_total_auc", "spline_grid", "weighted_quantile"]


def simulate_total_auc(lik: LevelLikelihood, z: np.ndarray, regimens: list[np.ndarray],
                       schedule: AdjustmentSchedule, grid: ForecastGrid = ForecastGrid()) -> list[np.ndarray]:
    """Total AUC (UE*day/mL) of every draw under every regimen, for each patient.

    Parameters
    ----------
    lik : LevelLikelihood
        Patients (covariates and doses already given).
    z : numpy.ndarray, shape (P, S, d)
        Standardised random-effect draws.
    regimens : list of numpy.ndarray
        Per patient, ``(R_p, D)`` total Thymoglobulin mg on the schedule's days.
    schedule : AdjustmentSchedule
    grid : ForecastGrid
        Integration steps.

    Returns
    -------
    list of numpy.ndarray
        Per patient, ``(S, R_p)``.
    """
    P, S, d = z.shape
    n1 = P * S
    pidx = np.repeat(np.arange(P), S)
    params = lik.model.individual(lik.weight[pidx], lik.alc[pidx], lik.eta(z.reshape(n1, d)))
    # infusions already given, replicated onto each draw (row p*S + s)
    order = np.argsort(lik.inf_patient, kind="stable")
    ip = lik.inf_patient[order]
    rows = (ip[:, None] * S + np.arange(S)[None, :]).ravel()
    given = Infusions(rows, np.repeat(lik.inf_start[order], S), np.repeat(lik.inf_duration[order], S),
                      np.repeat(lik.inf_amount[order], S), n1)
    decision = schedule.decision_time
    dur = schedule.infusion_hours / 24.0
    state, _ = integrate(params, given, float(lik.inf_start.min()), decision, grid=grid, group=pidx,
                         dosing_until=decision)

    # every (draw, regimen) resumes from the draw's state at the decision time
    sizes = np.array([r.shape[0] for r in regimens])
    draw_of = np.concatenate([np.repeat(np.arange(p * S, (p + 1) * S), sizes[p]) for p in range(P)])
    n2 = draw_of.size
    amount = np.concatenate([np.tile(regimens[p], (S, 1)) for p in range(P)]) * lik.model.active_fraction
    D = schedule.starts.size
    cand = Infusions(np.repeat(np.arange(n2), D), np.tile(schedule.starts, n2), np.full(n2 * D, dur),
                     amount.ravel(), n2)
    # given infusions still running at the decision time continue
    running = np.flatnonzero(given.end > decision + 1e-12)
    if running.size:
        q = given.patient[running]
        first, cnt = np.searchsorted(draw_of, q), sizes[q // S]
        er = np.concatenate([np.arange(f, f + c) for f, c in zip(first, cnt)])
        ei = np.repeat(running, cnt)
        cand = Infusions(np.r_[cand.patient, er], np.r_[cand.start, given.start[ei]],
                         np.r_[cand.duration, given.duration[ei]], np.r_[cand.amount, given.amount[ei]], n2)
    p2 = params.take(draw_of)
    end, _ = integrate(p2, cand, decision, grid.t_end, state=state.take(draw_of), grid=grid,
                       group=pidx[draw_of])
    total = end.auc + tail_auc(p2, end)
    offsets = np.r_[0, np.cumsum(S * sizes)]
    return [total[offsets[p]:offsets[p + 1]].reshape(S, sizes[p]) for p in range(P)]


def harm_probabilities(auc: np.ndarray, weight: np.ndarray, lower: float, upper: float) -> tuple[float, float, float]:
    """P(below floor), P(in window), P(above ceiling) of weighted draws of total AUC.

    Parameters
    ----------
    auc : numpy.ndarray, shape (S,)
        Total AUC of each posterior draw under one regimen, UE*day/mL.
    weight : numpy.ndarray, shape (S,)
        Importance weights of the draws (normalised here).
    lower, upper : float
        The window ``[lower, upper)``, UE*day/mL.

    Returns
    -------
    tuple of float
        ``(P(auc < lower), P(lower <= auc < upper), P(auc >= upper))``; they sum to 1.
    """
    x = np.asarray(auc, dtype=float)
    w = np.asarray(weight, dtype=float)
    w = w / w.sum()
    below = float(np.clip(w @ (x < lower), 0.0, 1.0))
    above = float(np.clip(w @ (x >= upper), 0.0, 1.0 - below))
    return below, 1.0 - below - above, above


def node_levels(lo: int, hi: int, nodes_per_day: int | None) -> np.ndarray:
    """Vial counts simulated on one day: all of ``lo..hi`` or ``nodes_per_day`` spread over it."""
    if nodes_per_day is None or hi - lo + 1 <= nodes_per_day:
        return np.arange(lo, hi + 1)
    return np.unique(np.round(np.linspace(lo, hi, nodes_per_day)).astype(int))


def spline_grid(values: np.ndarray, nodes: np.ndarray, levels: np.ndarray, n_days: int) -> np.ndarray:
    """Interpolate ``values (S, n_nodes^D)`` on the node tensor to every level, ``(S, n_levels^D)``."""
    S = values.shape[0]
    k = nodes.size
    v = values.reshape((S,) + (k,) * n_days)
    if k == levels.size:
        return v.reshape(S, -1)
    for axis in range(1, n_days + 1):
        if k == 1:
            v = np.repeat(v, levels.size, axis=axis)
        else:
            v = CubicSpline(nodes, v, axis=axis, bc_type="not-a-knot")(levels)
    return v.reshape(S, -1)


def weighted_quantile(values: np.ndarray, weight: np.ndarray, q) -> np.ndarray:
    """Quantiles of weighted samples along the last axis (midpoint rule, linear interpolation).

    Parameters
    ----------
    values : numpy.ndarray, shape (..., S)
    weight : numpy.ndarray, shape (S,) or broadcastable, summing to 1
    q : float or sequence of float

    Returns
    -------
    numpy.ndarray, shape (..., len(q)) (or (...) for a scalar ``q``)
    """
    scalar = np.ndim(q) == 0
    q = np.atleast_1d(np.asarray(q, dtype=float))
    order = np.argsort(values, axis=-1)
    x = np.take_along_axis(values, order, axis=-1)
    w = np.take_along_axis(np.broadcast_to(weight, values.shape), order, axis=-1)
    c = np.cumsum(w, axis=-1) - 0.5 * w
    out = np.empty(values.shape[:-1] + (q.size,))
    for i, qi in enumerate(q):
        j = np.sum(c < qi, axis=-1, keepdims=True)
        hi = np.clip(j, 0, x.shape[-1] - 1)
        lo = np.clip(j - 1, 0, x.shape[-1] - 1)
        c_lo, c_hi = np.take_along_axis(c, lo, -1), np.take_along_axis(c, hi, -1)
        x_lo, x_hi = np.take_along_axis(x, lo, -1), np.take_along_axis(x, hi, -1)
        frac = np.where(c_hi > c_lo, (qi - c_lo) / np.where(c_hi > c_lo, c_hi - c_lo, 1.0), 0.0)
        out[..., i] = (x_lo + np.clip(frac, 0.0, 1.0) * (x_hi - x_lo))[..., 0]
    return out[..., 0] if scalar else out
