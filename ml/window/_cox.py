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

from ml._risksets import breslow_partial_likelihood, nelson_aalen, risk_set_sums

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
    loglik, grad, info = breslow_partial_likelihood(beta, ts, ds, Zs)
    converged = p == 0
    for _ in range(max_iter if p else 0):
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(info, grad, rcond=None)[0]
        new = beta + step
        new_ll, new_grad, new_info = breslow_partial_likelihood(new, ts, ds, Zs)
        halvings = 0
        while new_ll < loglik - 1e-12 and halvings < 30:
            step /= 2
            new = beta + step
            new_ll, new_grad, new_info = breslow_partial_likelihood(new, ts, ds, Zs)
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
    h0 = nelson_aalen(ts, ds, risk_set_sums(ts, w))
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
