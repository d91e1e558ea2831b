"""Cumulative incidence with competing risks from cause-specific survival models.

With cause-specific cumulative hazards ``H_1`` (event of interest) and ``H_2`` (competing
event, e.g. death before CMV reactivation) on a common grid of jump times ``u``:

    S(u)      = prod_{v <= u} (1 - dH_1(v) - dH_2(v))      (event-free survival)
    CIF_1(t)  = sum_{u <= t} S(u-) dH_1(u)

the Aalen-Johansen form; with covariate-free (Nelson-Aalen) hazards it is exactly the
Aalen-Johansen estimator (scikit-survival's ``cumulative_incidence_competing_risks``,
R ``cmprsk::cuminc``). ``1 - S_1`` of the cause-specific model alone overstates the incidence
when competing events are common.
"""

from __future__ import annotations

import numpy as np

from ml.models._evaluation import survival_at


def cif_from_hazard_increments(grid, d_cause, d_other, times) -> np.ndarray:
    """Cumulative incidence of a cause from hazard increments on a jump grid.

    Parameters
    ----------
    grid : array, shape (m,)
        Sorted jump times (days).
    d_cause, d_other : array, shape (n, m)
        Cumulative-hazard increments of the cause and of the competing cause(s) at ``grid``.
    times : array-like
        Days at which to report.

    Returns
    -------
    numpy.ndarray, shape (n, len(times))
    """
    d_cause = np.atleast_2d(d_cause)
    d_other = np.atleast_2d(d_other)
    surv = np.cumprod(np.clip(1.0 - d_cause - d_other, 0.0, 1.0), axis=1)
    surv_before = np.concatenate([np.ones((surv.shape[0], 1)), surv[:, :-1]], axis=1)
    cif = np.cumsum(surv_before * d_cause, axis=1)
    idx = np.searchsorted(grid, np.asarray(times, dtype=float), side="right") - 1
    padded = np.concatenate([np.zeros((cif.shape[0], 1)), cif], axis=1)
    return padded[:, idx + 1]


def cumulative_incidence(cause_model, competing_model, X, times) -> np.ndarray:
    """Cumulative incidence of the event of interest in the presence of a competing event.

    Parameters
    ----------
    cause_model : fitted survival estimator
        Fitted on ``cause_specific_target(y, 1)`` (competing events censored).
    competing_model : fitted survival estimator
        Fitted on ``cause_specific_target(y, 2)``.
    X : array-like or DataFrame
        Patients.
    times : array-like of float
        Days from transplant (e.g. ``[180]``).

    Returns
    -------
    numpy.ndarray, shape (n, len(times))
        Probability that the event of interest has happened by each time.
    """
    grids = [np.asarray(getattr(m[-1] if hasattr(m, "steps") else m, "unique_times_"))
             for m in (cause_model, competing_model)]
    times = np.atleast_1d(np.asarray(times, dtype=float))
    grid = np.unique(np.concatenate(grids + [times]))
    h1 = -np.log(np.clip(survival_at(cause_model, X, grid), 1e-300, 1.0))
    h2 = -np.log(np.clip(survival_at(competing_model, X, grid), 1e-300, 1.0))
    d1 = np.diff(h1, axis=1, prepend=0.0)
    d2 = np.diff(h2, axis=1, prepend=0.0)
    return cif_from_hazard_increments(grid, d1, d2, times)
