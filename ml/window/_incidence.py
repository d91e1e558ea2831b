"""Cumulative incidence below / inside / above a window, with competing risks (Aalen-Johansen).

The estimator and its variance follow R ``cmprsk::cuminc`` (Gray's Fortran routine ``cinc``,
a delta-method variance); tests/test_window_incidence.py compares both with values produced by
cmprsk and the point estimate with scikit-survival's
``cumulative_incidence_competing_risks``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ml.features import check_competing_target, competing_target
from ml.window._artefact import Incidence

__all__ = ["aalen_johansen", "incidence_at", "window_incidences"]


def aalen_johansen(time, codes, cause: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Aalen-Johansen cumulative incidence of ``cause`` and its variance.

    Parameters
    ----------
    time : array-like, shape (n,)
        Days.
    codes : array-like of int, shape (n,)
        0 censored, ``cause`` the event of interest, any other positive code a competing event.
    cause : int

    Returns
    -------
    times : numpy.ndarray
        Distinct times with at least one event of interest.
    cif : numpy.ndarray
        Cumulative incidence just after each of ``times``.
    var : numpy.ndarray
        Its variance (delta method, as ``cmprsk::cuminc``).
    """
    time = np.asarray(time, dtype=float)
    codes = np.asarray(codes, dtype=int)
    grid, inv = np.unique(time, return_inverse=True)
    n_at = time.size - np.concatenate([[0], np.cumsum(np.bincount(inv, minlength=grid.size))[:-1]])
    d1 = np.bincount(inv, weights=(codes == cause), minlength=grid.size)
    d2 = np.bincount(inv, weights=(codes > 0) & (codes != cause), minlength=grid.size)
    fk, f = 1.0, 0.0
    v1 = v2 = v3 = 0.0
    out_t, out_f, out_v = [], [], []
    for k in range(grid.size):
        rs, n1, n2 = float(n_at[k]), d1[k], d2[k]
        nd = n1 + n2
        if nd == 0:
            continue
        fkn = fk * (rs - nd) / rs
        if n1 > 0:
            f = f + fk * n1 / rs
        if n2 > 0 and fkn > 0:
            t5 = 1.0 - (n2 - 1.0) / (rs - 1.0) if n2 > 1 else 1.0
            t6 = fk * fk * t5 * n2 / (rs * rs)
            t3 = 1.0 / fkn
            t4 = f / fkn
            v1 += t4 * t4 * t6
            v2 += t3 * t4 * t6
            v3 += t3 * t3 * t6
        if n1 > 0:
            t5 = 1.0 - (n1 - 1.0) / (rs - 1.0) if n1 > 1 else 1.0
            t6 = fk * fk * t5 * n1 / (rs * rs)
            t3 = 1.0 / fkn if fkn > 0 else 0.0
            t4 = 1.0 + t3 * f
            v1 += t4 * t4 * t6
            v2 += t3 * t4 * t6
            v3 += t3 * t3 * t6
            out_t.append(grid[k])
            out_f.append(f)
            out_v.append(v1 + f * f * v3 - 2 * f * v2)
        fk = fkn
    return np.array(out_t), np.array(out_f), np.array(out_v)


def incidence_at(time, codes, horizon: float, cause: int = 1, level: float = 0.95) -> dict:
    """Cumulative incidence at ``horizon`` with a pointwise log(-log) confidence interval.

    Returns
    -------
    dict
        ``incidence``, ``var``, ``ci_low``, ``ci_high``, ``n``, ``events`` (of ``cause`` by the
        horizon).
    """
    time = np.asarray(time, dtype=float)
    codes = np.asarray(codes, dtype=int)
    t, f, v = aalen_johansen(time, codes, cause)
    k = np.searchsorted(t, horizon, side="right") - 1
    cif, var = (float(f[k]), float(v[k])) if k >= 0 else (0.0, 0.0)
    z = stats.norm.ppf(0.5 + level / 2)
    if 0 < cif < 1 and var > 0:
        # log(-log) scale: F^exp(+-z se / (F log F))
        w = z * np.sqrt(var) / (cif * np.log(cif))
        lo, hi = sorted((cif ** np.exp(w), cif ** np.exp(-w)))
    else:
        lo = hi = cif
    events = int(np.sum((codes == cause) & (time <= horizon)))
    return {"incidence": cif, "var": var, "ci_low": float(lo), "ci_high": float(hi), "n": int(time.size),
            "events": events}


def window_incidences(exposure, outcomes: pd.DataFrame, lower: float | None, upper: float | None,
                      endpoints, horizon: float, level: float = 0.95) -> tuple[Incidence, ...]:
    """Cumulative incidence of each endpoint below, inside, above and outside the window.

    Parameters
    ----------
    exposure : array-like, shape (n,)
        Exposure per row of ``outcomes`` (same unit as the window; NaN rows are left out).
    outcomes : pandas.DataFrame
        The cohort's outcomes table.
    lower, upper : float or None
        The window [lower, upper); None = open.
    endpoints : iterable of str
        E.g. ``["cmv", "ebv", "agvhd2", "relapse", "nrm"]``.
    horizon : float
        Days from transplant at which incidences are read.
    level : float
        Confidence level of the pointwise intervals.

    Returns
    -------
    tuple of Incidence
        For each endpoint, rows ``below`` / ``above`` (when that side exists and has patients),
        ``inside`` and ``outside``. ``p_value`` compares the group with ``inside`` at the horizon
        (two-sided Wald test on the difference of incidences, independent groups).
    """
    x = np.asarray(exposure, dtype=float)
    ok = ~np.isnan(x)
    lo = -np.inf if lower is None else float(lower)
    hi = np.inf if upper is None else float(upper)
    groups = {
        "below": ok & (x < lo),
        "inside": ok & (x >= lo) & (x < hi),
        "above": ok & (x >= hi),
    }
    groups["outside"] = groups["below"] | groups["above"]
    rows = []
    for endpoint in endpoints:
        y = competing_target(outcomes, endpoint)
        codes, time = check_competing_target(y)
        res = {g: incidence_at(time[m], codes[m], horizon, level=level) for g, m in groups.items() if m.any()}
        if "inside" not in res:
            continue
        ref = res["inside"]
        for g in ("below", "inside", "above", "outside"):
            if g not in res:
                continue
            r = res[g]
            p = None
            if g != "inside":
                se = np.sqrt(r["var"] + ref["var"])
                p = float(2 * stats.norm.sf(abs(r["incidence"] - ref["incidence"]) / se)) if se > 0 else None
            rows.append(Incidence(outcome=endpoint, group=g, horizon_days=float(horizon), n=r["n"],
                                  events=r["events"], incidence=r["incidence"], ci_low=r["ci_low"],
                                  ci_high=r["ci_high"], p_value=p))
    return tuple(rows)
