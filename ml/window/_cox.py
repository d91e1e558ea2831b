"""A small Cox proportional-hazards fit (Breslow ties) for null models and hazard ratios.

The window search refits its null model thousands of times (bootstrap, cross-fitting), so it
uses this vectorised Newton-Raphson instead of a general-purpose fitter. It agrees with
``survival::coxph(..., ties = "breslow")`` and scikit-survival's ``CoxPHSurvivalAnalysis``
(tests/test_window_reference.py).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["CoxFit", "cox_fit", "hazard_ratio"]


@dataclass(frozen=True)
class CoxFit:
    """Result of :func:`cox_fit`.

    Attributes
    ----------
    coef : numpy.ndarray, shape (p,)
        Log hazard ratios per unit of each covariate.
    cov : numpy.ndarray, shape (p, p)
        Inverse observed information (model-based covariance of ``coef``).
    loglik : float
        Breslow partial log-likelihood at ``coef``.
    martingale : numpy.ndarray, shape (n,)
        Martingale residuals ``event - exp(coef @ z) * H0(time)``, Breslow baseline.
    converged : bool
    """

    coef: np.ndarray
    cov: np.ndarray
    loglik: float
    martingale: np.ndarray
    converged: bool


def _risk_sums(time_sorted: np.ndarray, w: np.ndarray, Z: np.ndarray):
    """Risk-set sums S0, S1, S2 at each (sorted) patient's time, ties sharing the whole set."""
    first = np.searchsorted(time_sorted, time_sorted, side="left")
    s0 = np.cumsum(w[::-1])[::-1][first]
    wz = w[:, None] * Z
    s1 = np.cumsum(wz[::-1], axis=0)[::-1][first]
    s2 = np.cumsum((wz[:, :, None] * Z[:, None, :])[::-1], axis=0)[::-1][first]
    return s0, s1, s2


def _loglik_parts(beta, time_s, event_s, Z):
    eta = Z @ beta
    shift = eta.max() if eta.size else 0.0
    w = np.exp(eta - shift)
    s0, s1, s2 = _risk_sums(time_s, w, Z)
    d = event_s
    loglik = float(np.sum(d * (eta - shift - np.log(s0))))
    zbar = s1 / s0[:, None]
    grad = np.sum(d[:, None] * (Z - zbar), axis=0)
    info = np.sum(d[:, None, None] * (s2 / s0[:, None, None] - zbar[:, :, None] * zbar[:, None, :]), axis=0)
    return loglik, grad, info


def cox_fit(time, event, Z=None, *, max_iter: int = 50, tol: float = 1e-9) -> CoxFit:
    """Fit a Cox model by Newton-Raphson on the Breslow partial likelihood.

    Parameters
    ----------
    time : array-like, shape (n,)
        Event or censoring times (days).
    event : array-like of bool, shape (n,)
        True where the event of interest happened.
    Z : array-like, shape (n, p), optional
        Covariates (numeric, no missing values). None or ``p = 0`` gives the null model, whose
        martingale residuals are the log-rank scores ``event - NelsonAalen(time)``.
    max_iter, tol : int, float
        Newton iterations and convergence tolerance on the log-likelihood change.

    Returns
    -------
    CoxFit
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    n = time.shape[0]
    Z = np.zeros((n, 0)) if Z is None else np.asarray(Z, dtype=float).reshape(n, -1)
    if not np.isfinite(Z).all():
        raise ValueError("covariates must be finite (no missing values)")
    order = np.argsort(time, kind="stable")
    ts, ds = time[order], event[order].astype(float)
    center = Z.mean(axis=0)
    scale = Z.std(axis=0)
    scale[scale == 0] = 1.0
    Zs = (Z[order] - center) / scale
    p = Z.shape[1]
    beta = np.zeros(p)
    loglik, grad, info = _loglik_parts(beta, ts, ds, Zs)
    converged = p == 0
    for _ in range(max_iter if p else 0):
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(info, grad, rcond=None)[0]
        new = beta + step
        new_ll, new_grad, new_info = _loglik_parts(new, ts, ds, Zs)
        halvings = 0
        while new_ll < loglik - 1e-12 and halvings < 30:
            step /= 2
            new = beta + step
            new_ll, new_grad, new_info = _loglik_parts(new, ts, ds, Zs)
            halvings += 1
        done = abs(new_ll - loglik) <= tol * (abs(loglik) + tol)
        beta, loglik, grad, info = new, new_ll, new_grad, new_info
        if done:
            converged = True
            break
    if not converged:
        warnings.warn("Cox fit did not converge (separation? an empty group?)", RuntimeWarning, stacklevel=2)
    try:
        cov_s = np.linalg.inv(info) if p else np.zeros((0, 0))
    except np.linalg.LinAlgError:
        cov_s = np.full((p, p), np.nan)
    coef = beta / scale
    cov = cov_s / np.outer(scale, scale)

    # Breslow baseline and martingale residuals.
    eta = Zs @ beta
    w = np.exp(eta - (eta.max() if n else 0.0))
    first = np.searchsorted(ts, ts, side="left")
    s0 = np.cumsum(w[::-1])[::-1][first]
    jumps = ds / s0
    last = np.searchsorted(ts, ts, side="right") - 1
    h0 = np.cumsum(jumps)[last]
    mart_sorted = ds - w * h0
    martingale = np.empty(n)
    martingale[order] = mart_sorted
    return CoxFit(coef=coef, cov=cov, loglik=loglik, martingale=martingale, converged=converged)


def hazard_ratio(group, time, event, covariates=None, *, level: float = 0.95) -> dict:
    """Hazard ratio of ``group`` (True) against the rest, by a Cox model with Wald interval.

    Parameters
    ----------
    group : array-like of bool, shape (n,)
        E.g. "exposure inside the window".
    time : array-like, shape (n,)
        Days.
    event : array-like of bool, shape (n,)
    covariates : array-like, shape (n, p), optional
        Adjustment covariates.
    level : float
        Confidence level of the interval.

    Returns
    -------
    dict
        ``hr``, ``ci_low``, ``ci_high``, ``p_value`` (Wald), ``coef``, ``se``.
    """
    g = np.asarray(group, dtype=float).reshape(-1, 1)
    Z = g if covariates is None else np.column_stack([g, np.asarray(covariates, dtype=float)])
    fit = cox_fit(time, event, Z)
    coef = float(fit.coef[0])
    se = float(np.sqrt(fit.cov[0, 0]))
    zq = stats.norm.ppf(0.5 + level / 2)
    return {
        "hr": float(np.exp(coef)),
        "ci_low": float(np.exp(coef - zq * se)),
        "ci_high": float(np.exp(coef + zq * se)),
        "p_value": float(2 * stats.norm.sf(abs(coef / se))) if se > 0 else float("nan"),
        "coef": coef,
        "se": se,
    }
