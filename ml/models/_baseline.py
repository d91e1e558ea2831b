"""Breslow baseline hazard and Kaplan-Meier steps (small numerical helpers).

The Breslow estimator turns any log-hazard predictor ``eta`` (an XGBoost ``survival:cox``
margin, a Cox linear predictor) into absolute risks:

    H0(t) = sum over event times t_i <= t of  d_i / sum_{j : t_j >= t_i} exp(eta_j)
    H(t | x) = exp(eta(x)) H0(t),    S(t | x) = exp(-H(t | x))

(Breslow 1972; the same estimator as scikit-survival's ``BreslowEstimator`` and R's
``survival::basehaz(..., centered=FALSE)`` with Breslow ties.)
"""

from __future__ import annotations

import numpy as np

from ml._risksets import event_table


def step_values(x: np.ndarray, y: np.ndarray, at, *, before: float,
                left: bool = False) -> np.ndarray:
    """Evaluate a right-continuous step function given by jumps at sorted ``x``.

    Parameters
    ----------
    x : array, sorted ascending
        Jump times.
    y : array, shape (..., len(x))
        Function value from each jump time onwards.
    at : array-like
        Query times.
    before : float
        Value before the first jump.
    left : bool
        Return the left limit ``f(t-)`` instead of ``f(t)``.

    Returns
    -------
    numpy.ndarray, shape (..., len(at))
    """
    at = np.asarray(at, dtype=float)
    idx = np.searchsorted(x, at, side="left" if left else "right") - 1
    y = np.asarray(y, dtype=float)
    padded = np.concatenate([np.full(y.shape[:-1] + (1,), before), y], axis=-1)
    return padded[..., idx + 1]


def kaplan_meier(event: np.ndarray, time: np.ndarray, weight: np.ndarray | None = None):
    """Kaplan-Meier survival at the distinct times where ``event`` happens.

    Parameters
    ----------
    event : bool array
    time : float array
        Days.
    weight : float array, optional
        Case weights.

    Returns
    -------
    times, survival : numpy.ndarray
        Distinct event times (days) and S(t) from each onwards (right-continuous).
    """
    uniq, _, deaths, at_risk = event_table(time, np.asarray(event, dtype=bool), weight)
    keep = deaths > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(at_risk[keep] > 0, 1.0 - deaths[keep] / at_risk[keep], 1.0)
    return uniq[keep], np.cumprod(factor)


class BreslowBaseline:
    """Breslow cumulative baseline hazard for a fitted log-hazard predictor.

    Not an estimator (it is fitted on predictions, not features); survival estimators hold
    one as ``baseline_``.

    Attributes
    ----------
    event_times_ : numpy.ndarray
        Distinct event times (days).
    cum_baseline_hazard_ : numpy.ndarray
        H0 at each event time, for ``eta`` measured from ``offset_``.
    offset_ : float
        Centring constant subtracted from ``eta`` before exponentiating (numerical safety).
    """

    def fit(self, eta, event, time, sample_weight=None) -> BreslowBaseline:
        eta = np.asarray(eta, dtype=float)
        event = np.asarray(event, dtype=bool)
        time = np.asarray(time, dtype=float)
        w = np.ones_like(time) if sample_weight is None else np.asarray(sample_weight, float)
        self.offset_ = float(np.max(eta)) if eta.size else 0.0
        risk = w * np.exp(eta - self.offset_)
        uniq, _, deaths, risk_set = event_table(time, event, w, risk)
        keep = deaths > 0
        self.event_times_ = uniq[keep]
        self.cum_baseline_hazard_ = np.cumsum(deaths[keep] / risk_set[keep])
        return self

    def cumulative_hazard(self, eta, times) -> np.ndarray:
        """H(t | eta) at ``times`` (days); shape (n, len(times))."""
        h0 = step_values(self.event_times_, self.cum_baseline_hazard_, times, before=0.0)
        return np.exp(np.asarray(eta, float) - self.offset_)[:, None] * h0[None, :]

    def survival(self, eta, times) -> np.ndarray:
        """S(t | eta) at ``times`` (days); shape (n, len(times))."""
        return np.exp(-self.cumulative_hazard(eta, times))
