"""The one adapter from the survival-target type to backend label formats.

Targets are scikit-survival structured arrays ``(event: bool, time: f8)`` or competing-risk
arrays ``(event: i1 in {0, 1, 2}, time: f8)`` built by :mod:`ml.features._endpoints`; times are
days from transplant. Everything in :mod:`ml.models` goes through these functions to reach
XGBoost, so the conversions (and their edge cases) live in one place.
"""

from __future__ import annotations

import numpy as np

from ml.features._endpoints import check_competing_target, check_survival_target

__all__ = [
    "MIN_TIME",
    "cause_specific_target",
    "check_competing_target",
    "check_survival_target",
    "to_xgb_aft_bounds",
    "to_xgb_cox_label",
]

#: Smallest time (days) handed to XGBoost. ``survival:cox`` encodes censoring by the sign of the
#: label, so a time of 0 would be ambiguous; ``survival:aft`` works on log-time. Times below
#: this (events on the day of transplant) are raised to it, which keeps their order.
MIN_TIME = 1e-2


def to_xgb_cox_label(y) -> np.ndarray:
    """Label for XGBoost ``survival:cox``: time if the event happened, ``-time`` if censored.

    Parameters
    ----------
    y : structured array
        Survival target (a competing target is read cause-specifically: code 1 is the event).

    Returns
    -------
    numpy.ndarray of float
        Days, negative for censored rows; times below :data:`MIN_TIME` are raised to it.
    """
    event, time = check_survival_target(y)
    time = np.maximum(time, MIN_TIME)
    return np.where(event, time, -time)


def to_xgb_aft_bounds(y) -> tuple[np.ndarray, np.ndarray]:
    """Interval bounds for XGBoost ``survival:aft`` (``label_lower_bound``, ``label_upper_bound``).

    Parameters
    ----------
    y : structured array
        Survival target.

    Returns
    -------
    lower, upper : numpy.ndarray of float
        Days. An event at ``t`` is the degenerate interval ``[t, t]``; a right-censored row at
        ``t`` is ``[t, +inf)``.
    """
    event, time = check_survival_target(y)
    time = np.maximum(time, MIN_TIME)
    return time.copy(), np.where(event, time, np.inf)


def cause_specific_target(y, cause: int = 1) -> np.ndarray:
    """Survival target for one cause of a competing-risk target (other causes censored).

    Parameters
    ----------
    y : structured array
        Competing target, codes 0 (censored), 1, 2.
    cause : int, default 1
        The cause treated as the event.

    Returns
    -------
    numpy.ndarray
        Structured ``(event: bool, time: f8)``.
    """
    codes, time = check_competing_target(y)
    if cause not in (1, 2):
        raise ValueError(f"cause must be 1 or 2, got {cause!r}")
    out = np.empty(len(codes), dtype=[("event", bool), ("time", "f8")])
    out["event"] = codes == cause
    out["time"] = time
    return out
