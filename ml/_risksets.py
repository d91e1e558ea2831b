"""Risk-set sums at event times: the one place where Cox, Breslow, Nelson-Aalen, Kaplan-Meier and the
log-rank scores count who is at risk.

For right-censored data sorted by time, the risk set at time ``t`` is every patient with
``time >= t`` (tied times share one risk set: Breslow's convention). With weights ``w_j``
(``exp(eta_j)`` for a Cox model) the sums are::

    S0(t) = sum_{j: t_j >= t} w_j,    S1(t) = sum w_j z_j,    S2(t) = sum w_j z_j z_j'

from which

* Nelson-Aalen / Breslow cumulative hazard: ``H(t) = sum_{t_i <= t} d_i / S0(t_i)`` (Breslow 1972);
* Cox partial likelihood (Breslow ties): ``l = sum_i d_i (eta_i - log S0(t_i))``, score
  ``sum_i d_i (z_i - S1/S0)``, information ``sum_i d_i (S2/S0 - S1 S1'/S0^2)``
  (Kalbfleisch & Prentice 2002, ch. 4);
* log-rank (Savage) scores ``d_i - H(t_i)``;
* Kaplan-Meier ``prod (1 - d(t) / S0(t))`` over distinct times.

Used by ml/window/_cox.py, ml/window/_scores.py, ml/models/_baseline.py and
ml/models/_cox_spline.py; tests/test_risksets.py checks the sums against closed forms and
scikit-survival's estimators.
"""

from __future__ import annotations

import numpy as np

__all__ = ["breslow_partial_likelihood", "event_table", "nelson_aalen", "risk_set_sums", "tie_bounds"]


def tie_bounds(time_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last row (0-based) of each sorted row's group of tied times."""
    first = np.searchsorted(time_sorted, time_sorted, side="left")
    last = np.searchsorted(time_sorted, time_sorted, side="right") - 1
    return first, last


def risk_set_sums(time_sorted: np.ndarray, weight: np.ndarray, Z: np.ndarray | None = None):
    """Risk-set sums at each sorted row's time, ties sharing the whole set.

    Parameters
    ----------
    time_sorted : numpy.ndarray, shape (n,)
        Times (days), ascending.
    weight : numpy.ndarray, shape (n,)
        Weight of each row (``exp(eta)`` for a Cox model, 1 for counts).
    Z : numpy.ndarray, shape (n, p), optional
        Covariates of the rows.

    Returns
    -------
    s0 : numpy.ndarray, shape (n,)
        Without ``Z``; with it ``(s0, s1, s2)`` of shapes ``(n,)``, ``(n, p)``, ``(n, p, p)``.
    """
    first = np.searchsorted(time_sorted, time_sorted, side="left")
    s0 = np.cumsum(weight[::-1])[::-1][first]
    if Z is None:
        return s0
    wz = weight[:, None] * Z
    s1 = np.cumsum(wz[::-1], axis=0)[::-1][first]
    s2 = np.cumsum((wz[:, :, None] * Z[:, None, :])[::-1], axis=0)[::-1][first]
    return s0, s1, s2


def nelson_aalen(time_sorted: np.ndarray, events: np.ndarray, at_risk: np.ndarray) -> np.ndarray:
    """Cumulative hazard at each sorted row's time: the sum of ``events / at_risk`` up to its last tie.

    Parameters
    ----------
    time_sorted : numpy.ndarray, shape (n,)
        Times (days), ascending.
    events : numpy.ndarray, shape (n,)
        Event indicator (or weight) of each row.
    at_risk : numpy.ndarray, shape (n,)
        Risk-set size (or sum ``S0``) of each row; Breslow's estimator with ``S0`` of ``exp(eta)``.

    Returns
    -------
    numpy.ndarray, shape (n,)
    """
    last = np.searchsorted(time_sorted, time_sorted, side="right") - 1
    return np.cumsum(events / at_risk)[last]


def breslow_partial_likelihood(beta: np.ndarray, time_sorted: np.ndarray, event_sorted: np.ndarray,
                               Z: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Cox log partial likelihood (Breslow ties), its score and observed information at ``beta``.

    Parameters
    ----------
    beta : numpy.ndarray, shape (p,)
        Log hazard ratios per unit of each column of ``Z``.
    time_sorted, event_sorted : numpy.ndarray, shape (n,)
        Times (days, ascending) and event indicators (0/1) of the rows.
    Z : numpy.ndarray, shape (n, p)
        Covariates of the rows.

    Returns
    -------
    loglik : float
    score : numpy.ndarray, shape (p,)
    information : numpy.ndarray, shape (p, p)
    """
    eta = Z @ beta
    shift = eta.max() if eta.size else 0.0
    w = np.exp(eta - shift)
    s0, s1, s2 = risk_set_sums(time_sorted, w, Z)
    d = event_sorted
    loglik = float(np.sum(d * (eta - shift - np.log(s0))))
    zbar = s1 / s0[:, None]
    score = np.sum(d[:, None] * (Z - zbar), axis=0)
    info = np.sum(d[:, None, None] * (s2 / s0[:, None, None] - zbar[:, :, None] * zbar[:, None, :]), axis=0)
    return loglik, score, info


def event_table(time, event, weight=None, risk=None):
    """Events and risk-set sums at the distinct times.

    Parameters
    ----------
    time : array-like, shape (n,)
        Days.
    event : array-like, shape (n,)
        Event indicator (bool or 0/1).
    weight : array-like, shape (n,), optional
        Case weights of the events (default 1).
    risk : array-like, shape (n,), optional
        What each row contributes to the risk set (default ``weight``; ``weight * exp(eta)`` for
        Breslow's baseline hazard).

    Returns
    -------
    times : numpy.ndarray
        Distinct times, ascending.
    index : numpy.ndarray of int
        Position of each row's time in ``times``.
    events : numpy.ndarray
        Weighted events at each distinct time.
    at_risk : numpy.ndarray
        Risk-set sum at each distinct time (rows with ``time >= t``).
    """
    time = np.asarray(time, dtype=float)
    w = np.ones_like(time) if weight is None else np.asarray(weight, dtype=float)
    r = w if risk is None else np.asarray(risk, dtype=float)
    times, index = np.unique(time, return_inverse=True)
    events = np.bincount(index, weights=w * np.asarray(event), minlength=len(times))
    at_risk = np.cumsum(np.bincount(index, weights=r, minlength=len(times))[::-1])[::-1]
    return times, index, events, at_risk
