"""Individual estimates: conditional modes (empirical Bayes estimates) and the importance-
sampling estimate of the marginal likelihood."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, logsumexp

from ._error import CombinedError, loglik, score_and_information
from ._structural import Predictor, log_params


@dataclass(frozen=True)
class Modes:
    """Conditional modes of the individual log-parameters and the local curvature.

    Attributes
    ----------
    phi : numpy.ndarray
        ``(n, 3)`` modes of (log CL, log V1, log CLsat).
    hessian : numpy.ndarray
        ``(n, 3, 3)`` Gauss-Newton curvature of the negative log posterior at the mode.
    f : numpy.ndarray
        ``(n, m)`` individual predictions at the mode.
    jac : numpy.ndarray
        ``(n, m, 3)`` derivatives of the predictions with respect to phi at the mode.
    objective : numpy.ndarray
        ``(n,)`` negative log posterior at the mode (up to a constant).
    """

    phi: np.ndarray
    hessian: np.ndarray
    f: np.ndarray
    jac: np.ndarray
    objective: np.ndarray


def _objective(f, phi, mu, omega2, data, a, b, error):
    ll = loglik(f, data.conc, data.observed, data.bloq, data.lloq, a, b, error)
    value = -ll + 0.5 * (((phi - mu) ** 2) / omega2).sum(axis=1)
    return np.where(np.isnan(value), np.inf, value)        # outside the model's support


def conditional_modes(predict: Predictor, phi0: np.ndarray, mu: np.ndarray, omega2: np.ndarray,
                      log_fixed: np.ndarray, a: float, b: float, error: CombinedError, *,
                      max_iter: int = 40, tol: float = 1e-5) -> Modes:
    """Maximum a posteriori individual parameters, all patients at once.

    A damped Gauss-Newton (Fisher-scoring) iteration on each patient's negative log posterior
    ``-log p(y_i | phi_i) + (phi_i - mu_i)' Omega^-1 (phi_i - mu_i) / 2`` (censored samples by
    M3), with step halving where the objective does not decrease.

    Parameters
    ----------
    predict : Predictor
    phi0 : numpy.ndarray
        ``(n, 3)`` starting values (e.g. SAEM's conditional means).
    mu : numpy.ndarray
        ``(n, 3)`` population means (with covariates).
    omega2 : numpy.ndarray
        ``(3,)`` variances.
    log_fixed : numpy.ndarray
        ``(3,)`` log Q, V2, Km.
    a, b : float
        Residual SDs.
    error : CombinedError
    max_iter : int
        Gauss-Newton iterations.
    tol : float
        Convergence: largest step in phi.
    """
    data = predict.data
    phi = phi0.copy()
    prec = 1.0 / omega2
    n = phi.shape[0]
    active = np.arange(n)                   # patients still moving
    for _ in range(max_iter):
        if active.size == 0:
            break
        rows = _Rows(data, active)
        ph, m = phi[active], mu[active]
        f, jac = predict.jacobian(ph, log_fixed, rows=active)
        obj = _objective(f, ph, m, omega2, rows, a, b, error)
        score, info = score_and_information(f, rows.conc, rows.observed, rows.bloq, data.lloq,
                                            a, b, error)
        score, info, jac = (np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)
                            for v in (score, info, jac))
        grad = -np.einsum("rm,rmj->rj", score, jac) + (ph - m) * prec
        hess = np.einsum("rm,rmj,rmk->rjk", info, jac, jac) + np.diag(prec)
        step = np.clip(-np.linalg.solve(hess, grad[..., None])[..., 0], -1.0, 1.0)
        t = np.ones(active.size)
        improved = np.zeros(active.size, bool)
        for _half in range(8):
            todo = np.flatnonzero(~improved)
            if todo.size == 0:
                break
            trial = ph[todo] + t[todo, None] * step[todo]
            f_t = predict(log_params(trial, log_fixed), active[todo])
            obj_t = _objective(f_t, trial, m[todo], omega2, _Rows(data, active[todo]), a, b,
                               error)
            ok = obj_t <= obj[todo] + 1e-10
            phi[active[todo[ok]]] = trial[ok]
            improved[todo[ok]] = True
            t[todo[~ok]] *= 0.5
        moved = np.abs(t[:, None] * step).max(axis=1)
        active = active[improved & (moved > tol)]
    f, jac = predict.jacobian(phi, log_fixed)
    score, info = score_and_information(f, data.conc, data.observed, data.bloq, data.lloq, a, b, error)
    hess = np.einsum("rm,rmj,rmk->rjk", info, jac, jac) + np.diag(prec)
    return Modes(phi=phi, hessian=hess, f=f, jac=jac,
                 objective=_objective(f, phi, mu, omega2, data, a, b, error))


class _Rows:
    """The level arrays of a subset of patients (duck-typed for :func:`_objective`)."""

    def __init__(self, data, rows):
        self.conc, self.observed, self.bloq = data.conc[rows], data.observed[rows], data.bloq[rows]
        self.lloq = data.lloq


def importance_sampling_loglik(predict: Predictor, modes: Modes, mu: np.ndarray,
                               omega2: np.ndarray, log_fixed: np.ndarray, a: float, b: float,
                               error: CombinedError, rng: np.random.Generator, *,
                               n_samples: int = 300, df: float = 5.0,
                               batch_rows: int = 8192,
                               u: np.ndarray | None = None) -> tuple[float, float]:
    """Marginal log-likelihood by importance sampling (as Monolix): per patient, draws from a
    multivariate t distribution (``df`` degrees of freedom) centred at the conditional mode
    with the inverse curvature as scale.

    ``u`` (``(n_samples, n, d)``, from :func:`t_draws`) fixes the standardised draws (common
    random numbers: the estimate is then a smooth function of the parameters); ``rng`` and
    ``n_samples`` are ignored when it is given.

    Returns
    -------
    loglik : float
        Estimated log-likelihood of the data (sum over patients).
    se : float
        Monte Carlo standard error of that estimate.
    """
    data = predict.data
    n, d = modes.phi.shape
    chol = np.linalg.cholesky(np.linalg.inv(modes.hessian))           # (n, d, d)
    logdet_scale = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    if u is None:
        u = t_draws(rng, n_samples, n, d, df)
    n_samples = u.shape[0]
    draws = modes.phi[None] + np.einsum("nij,snj->sni", chol, u)
    quad_t = (u**2).sum(axis=2)                                        # (s, n)
    log_q = (gammaln((df + d) / 2) - gammaln(df / 2) - 0.5 * d * np.log(df * np.pi)
             - 0.5 * logdet_scale[None] - 0.5 * (df + d) * np.log1p(quad_t / df))
    log_prior = (-0.5 * (((draws - mu[None]) ** 2) / omega2).sum(axis=2)
                 - 0.5 * np.log(2 * np.pi * omega2).sum())
    flat = draws.reshape(-1, d)
    rows = np.tile(np.arange(n), n_samples)
    f = np.concatenate([predict(log_params(flat[s:s + batch_rows], log_fixed), rows[s:s + batch_rows])
                        for s in range(0, rows.size, batch_rows)])
    ll = loglik(f, data.conc[rows], data.observed[rows], data.bloq[rows], data.lloq, a, b, error)
    log_w = ll.reshape(n_samples, n) + log_prior - log_q
    log_w = np.where(np.isfinite(log_w), log_w, -np.inf)   # outside the model's support
    per_patient = logsumexp(log_w, axis=0) - np.log(n_samples)
    wn = np.exp(log_w - per_patient[None])                             # weights / mean weight
    var = (wn.var(axis=0, ddof=1) / n_samples).sum()                   # delta method per patient
    return float(per_patient.sum()), float(np.sqrt(var))


def t_draws(rng: np.random.Generator, n_samples: int, n: int, d: int, df: float) -> np.ndarray:
    """Standardised multivariate t draws ``(n_samples, n, d)`` (``df`` degrees of freedom)."""
    z = rng.standard_normal((n_samples, n, d))
    w = rng.chisquare(df, size=(n_samples, n, 1)) / df
    return z / np.sqrt(w)
