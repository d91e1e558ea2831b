"""Non-compartmental AUC of active ATG from sparse, noisy levels.

Rules (documented because every NCA tool differs a little):

* Before the first dose there is no ATG: a point (first dose, 0) is added when no sample
  precedes it.
* Below-LLOQ samples before the first quantifiable one count as 0; those after the last
  quantifiable one are left out (the tail is extrapolated instead); those in between are
  treated as missing.
* Linear-up/log-down trapezoid: linear where the concentration rises or either end is 0,
  logarithmic where it falls.
* The terminal slope ``lambda_z`` is fitted by least squares on log concentrations of the last
  ``k >= 3`` quantifiable samples after the last infusion ended and after Cmax, ``k`` chosen by
  the largest adjusted R^2 (a longer run is preferred within 1e-4), as in PKNCA/WinNonlin.
* ``AUC_inf = AUC_last + C_last,pred / lambda_z`` (predicted, not observed, C_last: less
  sensitive to the residual error of one sample).
* Transplant (day 0) splits the curve into ``auc_pre`` and ``auc_post``; the concentration at
  day 0 is interpolated by the same linear-up/log-down rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_ADJ_R2_TOLERANCE = 1e-4
_MIN_TERMINAL_POINTS = 3


@dataclass(frozen=True)
class NCAResult:
    """NCA of one patient (concentration unit x day for AUCs, 1/day for ``lambda_z``)."""

    auc_pre: float
    auc_post: float
    lambda_z: float
    n_terminal: int
    extrapolated_fraction: float

    @property
    def auc_total(self) -> float:
        return self.auc_pre + self.auc_post


def _segment_auc(t1, c1, t2, c2) -> float:
    if c2 < c1 and c2 > 0 and c1 > 0:
        return (c1 - c2) / np.log(c1 / c2) * (t2 - t1)
    return 0.5 * (c1 + c2) * (t2 - t1)


def _interpolate(t1, c1, t2, c2, t) -> float:
    if c2 < c1 and c2 > 0 and c1 > 0:
        return float(c1 * np.exp(np.log(c2 / c1) * (t - t1) / (t2 - t1)))
    return float(c1 + (c2 - c1) * (t - t1) / (t2 - t1))


def terminal_slope(t: np.ndarray, c: np.ndarray) -> tuple[float, float, int]:
    """Best-fit terminal slope by adjusted R^2.

    Parameters
    ----------
    t, c : numpy.ndarray
        Candidate terminal-phase times (days) and positive concentrations, in time order.

    Returns
    -------
    lambda_z : float
        Terminal rate constant, 1/day (NaN when fewer than 3 points or slope >= 0).
    intercept : float
        Log-concentration intercept of the fit.
    k : int
        Number of points used.
    """
    best = (np.nan, np.nan, 0, -np.inf)
    for k in range(_MIN_TERMINAL_POINTS, t.size + 1):
        x, y = t[-k:], np.log(c[-k:])
        slope, intercept = np.polyfit(x, y, 1)
        resid = y - (slope * x + intercept)
        ss_tot = np.sum((y - y.mean()) ** 2)
        r2 = 1.0 - np.sum(resid**2) / ss_tot if ss_tot > 0 else 0.0
        adj = 1.0 - (1.0 - r2) * (k - 1) / (k - 2)
        if slope < 0 and adj >= best[3] - _ADJ_R2_TOLERANCE:
            best = (-slope, intercept, k, max(adj, best[3]))
    return best[0], best[1], best[2]


def nca_auc(
    t: np.ndarray,
    c: np.ndarray,
    bloq: np.ndarray,
    first_dose: float,
    last_dose_end: float,
    t_split: float = 0.0,
) -> NCAResult:
    """AUCs of one patient from sampled levels.

    Parameters
    ----------
    t : numpy.ndarray
        Sampling times, days from transplant.
    c : numpy.ndarray
        Concentrations (NaN where below LLOQ or missing).
    bloq : numpy.ndarray
        1 where the sample was below the limit of quantification.
    first_dose : float
        Start of the first infusion, days.
    last_dose_end : float
        End of the last infusion, days (the terminal phase starts after it).
    t_split : float
        Day that separates pre- and post-transplant exposure.

    Returns
    -------
    NCAResult
        NaN AUCs when the terminal slope cannot be estimated.
    """
    order = np.argsort(t, kind="stable")
    t, c, bloq = np.asarray(t, float)[order], np.asarray(c, float)[order], np.asarray(bloq)[order]
    quant = (bloq == 0) & np.isfinite(c)
    if not quant.any():
        return NCAResult(np.nan, np.nan, np.nan, 0, np.nan)
    first_q, last_q = np.flatnonzero(quant)[[0, -1]]
    lead = (np.arange(t.size) < first_q) & (bloq == 1)
    keep = quant | lead
    t, c = t[keep], np.where(quant[keep], c[keep], 0.0)
    if t[0] > first_dose:
        t, c = np.r_[first_dose, t], np.r_[0.0, c]
    t_last, c_obs_last = t[-1], c[-1]

    after = (t > last_dose_end) & (c > 0) & (np.arange(t.size) > np.argmax(c))
    lam, intercept, k = terminal_slope(t[after], c[after])
    if not np.isfinite(lam):
        return NCAResult(np.nan, np.nan, np.nan, 0, np.nan)
    c_last_pred = float(np.exp(intercept - lam * t_last))

    # cumulative AUC at each sample, then split at t_split
    seg = np.array([_segment_auc(t[i], c[i], t[i + 1], c[i + 1]) for i in range(t.size - 1)])
    auc_last = float(seg.sum())
    tail = c_last_pred / lam
    if t_split <= t[0]:
        pre = 0.0
    elif t_split >= t_last:  # day 0 lies in the extrapolated tail
        pre = auc_last + c_last_pred / lam * (1.0 - np.exp(-lam * (t_split - t_last)))
    else:
        i = int(np.searchsorted(t, t_split, side="right")) - 1
        c_split = _interpolate(t[i], c[i], t[i + 1], c[i + 1], t_split)
        pre = float(seg[:i].sum()) + _segment_auc(t[i], c[i], t_split, c_split)
    total = auc_last + tail
    del c_obs_last
    return NCAResult(pre, total - pre, float(lam), int(k), tail / total if total > 0 else np.nan)
