"""Stochastic Approximation EM (SAEM) for the ATG population model.

The algorithm of Delyon, Lavielle & Moulines (1999, Ann Stat 27:94) coupled with MCMC by Kuhn
& Lavielle (2004, ESAIM P&S 8:115; 2005, Comput Stat Data Anal 49:1020), as in Monolix. Each
iteration k, for all patients at once:

1. **Simulation**: Metropolis-Hastings kernels on the individual log-parameters
   ``phi_i = (log CL, log V1, log CLsat)``: independent proposals from the current population
   distribution, random-scan single-component random walks and a joint random walk, the walk
   scales adapted to acceptance rates of 0.4 and 0.3 during exploration (Monolix's kernels).
   Each kernel step is one vectorised integration (:mod:`._ode`) for all patients.
2. **Stochastic approximation** with step ``gamma_k = 1`` during the exploration and
   ``1 / (k - K + 1)`` after it (``K`` its length), of the sufficient statistics
   ``sum_i X_i' phi_i`` and ``sum_i phi_i^2``. The exploration ends when the convergence
   indicator (complete-data -2LL) is stationary (:mod:`._convergence`), at the latest
   after ``n_explore`` iterations; the smoothing phase then runs ``n_smooth`` iterations.
3. **Maximisation**. Typical values (log CL, log V1, log CLsat) and covariate exponents: the
   closed-form mu-referenced M-step (per parameter a least-squares regression of the
   statistics on ``[1, log covariate]``); omega^2: closed form. Residual SDs: a step of
   ``gamma_k`` towards the maximiser of the complete-data likelihood given the current
   predictions. Q, V2, Km (no random effect, no closed form): a Fisher-scoring step of length
   ``gamma_k`` on the complete-data likelihood at the current MCMC state, i.e. a
   Robbins-Monro recursion on Fisher's identity ``grad log L = E[grad log p(y, phi) | y]``
   (stochastic-approximation Newton-Raphson, Gu & Kong 1998, PNAS 95:7270), with derivatives
   by forward differences taken in the same simulation call as the first kernel. They are held
   at their starting values for the first ``n_hold`` iterations.

Cost: every iteration is a few vectorised integrations of all patients (one per kernel
step; the first also carries the forward differences, and while Q, V2, Km are held the
current state's predictions are reused instead of recomputed). The exploration integrates on
a coarser grid (``predict_explore``; predictions within 1 % of the fitting grid), the
smoothing phase, whose average gives the estimates, on the fitting grid.

During exploration omega and the residual SDs are annealed (they may fall by at most 5 % an
iteration), which keeps the chains mixing while the estimates are poor, and the steps of
Q, V2, Km are capped. The first ``n_burn`` iterations only run the kernels. Censored samples
enter every likelihood by Beal's M3 method (see :mod:`._error`).

Known limitation (measured in tests/test_poppk_fit.py and scripts/bench_poppk.py): with the
spec's sampling design the split of elimination between the linear path (CL) and the
saturable path (Vmax, Km) is weakly determined. The likelihood has a ridge along which
``CL + Vmax/Km`` stays put and which is flat within the Monte Carlo error of a
common-random-number importance-sampling -2LL (:mod:`._objective`): on the test cohort the
default start (Km 5.0, Vmax 1.9, CL 0.59) and a start with every typical value doubled (Km 8.5,
Vmax 5.2, CL 0.42) end at -2LL equal within about 1 unit, and the profile likelihood along
Km stays within 3.84 of its minimum over a range much wider than +-15 %. EM-type iterations
also move slowly along such a ridge (their rate is the fraction of missing information,
Dempster, Laird & Rubin 1977), so fits from different starts stop at different, equally
likely points of it; V1, Q, CL + Vmax/Km, the omegas and the residual error agree. Longer
runs do not bring them together: with 800 + 200 iterations the default-start chain stays at
Vmax 1.2-2.2, Km 4.0-5.4 and the doubled-start chain at Vmax 4.3-5.3, Km 6.0-8.7 throughout
the exploration, ending 1.1-1.4 units of -2LL apart (not significant).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._convergence import StationarityRule
from ._error import CombinedError, loglik, residual_gradient, score_and_information
from ._structural import (MAX_STIFFNESS, VECTOR_NAMES, Predictor, Theta, log_params,
                          population_mean, stacked_fixed_shifts, stiffness)

_TARGET_COMPONENT = 0.4
_TARGET_BLOCK = 0.3
_MAX_MEAN_STEP = 0.3          # largest change of a mean parameter in one iteration
_FD_STEP = 1e-4


@dataclass(frozen=True)
class SAEMTrace:
    """What the SAEM iterations did.

    Attributes
    ----------
    theta : numpy.ndarray
        ``(iterations, 14)`` parameter values after each iteration, columns :attr:`COLUMNS`:
        typical CL, V1, Q, V2, Vmax, Km; the exponents; the omegas; residual SDs.
    acceptance : numpy.ndarray
        ``(iterations, 3)`` acceptance rates of the prior, component and joint kernels.
    n_explore : int
        Iterations with step 1 (exploration) before the decreasing steps (smoothing).
    drift : numpy.ndarray
        ``(iterations,)`` the stationarity statistic of the exploration after each of its
        iterations (:meth:`ml.poppk._convergence.StationarityRule.drift`; at most 1 when
        the last ``window`` iterates are stationary), NaN where it was not computed.
    stationary : bool
        Whether the exploration ended on stationary iterates (drift at most 1).
    indicator : numpy.ndarray
        ``(iterations,)`` the convergence indicator: the complete-data ``-2 log-likelihood``
        ``-2 sum_i [log p(y_i | phi_i) + log N(phi_i; mu_i, Omega)]`` at the MCMC state of
        each iteration (averaged over chains), as Monolix plots it.
    """

    theta: np.ndarray
    acceptance: np.ndarray
    n_explore: int
    drift: np.ndarray | None = None
    stationary: bool = True
    indicator: np.ndarray | None = None

    COLUMNS = VECTOR_NAMES


@dataclass(frozen=True)
class SAEMOutput:
    theta: Theta
    phi_mean: np.ndarray     # (n, 3) conditional mean of phi over the smoothing phase
    trace: SAEMTrace


def residual_mstep(f, y, obs, bloq, lloq, a, b, error: CombinedError, *, max_iter: int = 30,
                   tol: float = 1e-6) -> tuple[float, float]:
    """Maximiser of the complete-data likelihood in (a, b) given predictions ``f``.

    Newton's method on ``(log a, log b)`` started at ``(a, b)``: the exact gradient (censored
    samples by M3 included), the Hessian by forward differences of it (the expected
    information of the quantified levels where that is not negative definite), step halving,
    the bounds ``a in [1e-5, 10] x median level`` and ``b in [1e-4, 5]``; it stops when a
    step moves neither by more than ``tol``. Warm-started from the previous SAEM iterate it
    takes two or three steps; it reaches the optimum of L-BFGS-B
    (tests/test_poppk_units.py) without its per-call overhead.
    """
    cells = (obs | bloq) & np.isfinite(f)
    f, y, obs, bloq = f[cells], y[cells], obs[cells], bloq[cells]
    scale = float(np.median(y[obs])) if obs.any() else 1.0
    lo = np.array([np.log(1e-5 * scale), np.log(1e-4)])
    hi = np.array([np.log(10.0 * scale), np.log(5.0)])

    def value(v):
        total = loglik(f, y, obs, bloq, lloq, np.exp(v[0]), np.exp(v[1]), error)
        return total if np.isfinite(total) else -np.inf

    def gradient(v):
        return residual_gradient(f, y, obs, bloq, lloq, np.exp(v[0]), np.exp(v[1]), error)

    v = np.clip(np.log([max(a, 1e-8), max(b, 1e-8)]), lo, hi)
    current = value(v)
    h = 1e-6
    for _ in range(max_iter):
        grad = gradient(v)
        hess = np.column_stack([(gradient(v + h * e) - grad) / h for e in np.eye(2)])
        neg = -0.5 * (hess + hess.T)
        if not np.all(np.linalg.eigvalsh(neg) > 0):
            aa, bb = np.exp(v)
            g = error.sd(f, aa, bb)
            ga, gb = error.dsd_dlog(f, aa, bb, g)
            w = np.where(obs, 2.0 / (g * g), 0.0)
            neg = np.array([[w @ (ga * ga), w @ (ga * gb)], [w @ (ga * gb), w @ (gb * gb)]])
        step = _solve(neg, grad)
        step /= max(1.0, float(np.abs(step).max()))     # at most 1 in log scale, same direction
        t, moved = 1.0, 0.0
        for _half in range(30):
            trial = np.clip(v + t * step, lo, hi)
            new = value(trial)
            if new >= current:
                moved = float(np.abs(trial - v).max())
                v, current = trial, new
                break
            t *= 0.5
        if moved < tol:
            break
    return float(np.exp(v[0])), float(np.exp(v[1]))


def _chain_arrays(data, x: np.ndarray, c: int):
    """The data tiled for ``c`` chains per patient (rows chain-major: patient i of chain j at
    row ``j * n + i``)."""
    n = data.n
    return (np.tile(data.conc, (c, 1)), np.tile(data.observed, (c, 1)),
            np.tile(data.bloq, (c, 1)), np.tile(x, (c, 1)), np.tile(np.arange(n), c))


def run_saem(predict: Predictor, x: np.ndarray, theta0: Theta, error: CombinedError,
             rng: np.random.Generator, *, n_explore: int, n_smooth: int, n_chains: int = 1,
             kernels: tuple[int, int, int] = (1, 2, 1), estimate_exponents: bool = True,
             annealing: float = 0.95, n_burn: int = 10,
             n_hold: int = 40, estimate_fixed: tuple[bool, bool, bool] = (True, True, True),
             predict_explore: Predictor | None = None, stopping: StationarityRule | None = None,
             smooth_chains: int | None = None, progress=None) -> SAEMOutput:
    """Run SAEM (module docstring) from ``theta0``.

    Parameters
    ----------
    predict : Predictor
        Model predictions for the data set (used in the smoothing phase, and throughout
        when ``predict_explore`` is not given).
    x : numpy.ndarray
        ``(n, 3)`` log covariates of CL, V1, CLsat.
    theta0 : Theta
        Starting values.
    error : CombinedError
        Residual error model.
    rng : numpy.random.Generator
        Source of randomness.
    n_explore, n_smooth : int
        Iterations of the exploration (step 1) and smoothing (decreasing step) phases; with
        ``stopping``, ``n_explore`` is the most the exploration may take.
    n_chains : int
        Markov chains per patient.
    kernels : tuple of int
        Steps per iteration of the prior, random-scan component and joint random-walk kernels
        (the first is at least 1: its simulation call also refreshes the predictions).
    estimate_exponents : bool
        Estimate the covariate exponents (else they stay at ``theta0``'s values).
    annealing : float
        Largest factor by which omega and the residual SDs may fall in one exploration iteration.
    n_burn : int
        First iterations of the exploration with the simulation step only (no M-step).
    n_hold : int
        First iterations during which Q, V2 and Km stay at their starting values, so that a
        poor start of the well-determined parameters (V1, CL) is corrected before Km can
        absorb the misfit (with a misspecified start Km otherwise runs to a spurious optimum).
    estimate_fixed : tuple of bool
        Which of log Q, log V2, log Km are estimated; the others stay at ``theta0``'s values
        (e.g. Km held on a grid for a profile likelihood).
    predict_explore : Predictor, optional
        Predictions used during the exploration (e.g. on a coarser integration grid: the
        exploration only has to bring the estimates near the optimum; the smoothing phase,
        which gives the estimates, uses ``predict``).
    stopping : StationarityRule, optional
        Adaptive end of the exploration: it ends at the first iteration after the hold at
        which the rule finds the iterates stationary (at the latest after ``n_explore``).
        Without it the exploration runs ``n_explore`` iterations; the rule's default is
        still used to report whether they were stationary (:attr:`SAEMTrace.stationary`).
    smooth_chains : int, optional
        Markov chains per patient in the smoothing phase (a multiple of ``n_chains``; default
        ``n_chains``): at the end of the exploration every chain is copied, and the copies
        evolve independently. Rows are cheap next to the fixed cost of an integration
        call, so more chains lower the Monte Carlo error of the smoothing average per
        iteration at a small cost.
    progress : callable, optional
        Called with the iteration number after each iteration.
    """
    data = predict.data
    n, c = data.n, n_chains
    nc = n * c
    y, obs, bl, xt, row_patient = _chain_arrays(data, x, c)
    lloq = data.lloq
    designs = [np.column_stack([np.ones(n), x[:, p]]) for p in range(3)]
    xtx = [d.T @ d for d in designs]
    rule = stopping if stopping is not None else StationarityRule()
    hold = min(n_hold, n_explore - 1)
    burn = min(n_burn, n_explore - 1)
    any_fixed = bool(np.any(estimate_fixed))

    beta = theta0.beta.copy()
    omega2 = theta0.omega2.copy()
    lf = theta0.log_fixed.copy()
    a, b = float(theta0.a), float(theta0.b)
    mu = np.tile(population_mean(beta, x), (c, 1))
    phi = mu.copy()
    f = np.zeros_like(y)
    ll = np.zeros(nc)
    scale_comp = np.full(3, 0.5)
    scale_block = 0.3
    s1 = np.zeros((3, 2))
    s2 = np.zeros(3)
    phi_sum = np.zeros_like(phi)
    total = n_explore + n_smooth
    trace = np.empty((total, len(VECTOR_NAMES)))
    acc_trace = np.zeros((total, 3))
    drift_trace = np.full(total, np.nan)
    indicator = np.full(total, np.nan)
    log_2pi = np.log(2.0 * np.pi)
    rows_all = np.arange(nc)
    fd_rows = np.tile(row_patient, 5)
    fd_base = np.r_[np.tile(rows_all, 4), rows_all + 4 * nc]
    current = predict_explore if predict_explore is not None else predict
    fresh_for = None            # (log_fixed, predictor) the predictions f were computed with
    explore_end = None          # first smoothing iteration
    drift = float("inf")

    def lik(ff):
        value = loglik(ff, y, obs, bl, lloq, a, b, error)
        return np.where(np.isnan(value), -np.inf, value)

    def accept_step(prop, extra_logratio, f_prop=None):
        nonlocal phi, f, ll
        logp = log_params(prop, lf)
        ok = stiffness(logp) <= MAX_STIFFNESS
        if f_prop is None:
            f_prop = f.copy()
            if ok.any():
                f_prop[ok] = current(logp[ok], row_patient[ok])
        ll_prop = lik(f_prop)
        log_u = np.log(rng.uniform(size=nc))
        with np.errstate(invalid="ignore"):
            ratio = np.where(np.isneginf(ll), np.inf, ll_prop - ll + extra_logratio)
        accept = ok & np.isfinite(ll_prop) & (log_u < ratio)
        phi = np.where(accept[:, None], prop, phi)
        f = np.where(accept[:, None], f_prop, f)
        ll = np.where(accept, ll_prop, ll)
        return accept

    k = 0
    while k < total:
        if explore_end is None and (k >= n_explore or (
                stopping is not None and k >= hold + max(stopping.min_iterations, rule.window)
                and drift <= 1.0)):
            explore_end = k
            total = k + n_smooth
            current = predict
            if smooth_chains is not None and smooth_chains != c:
                if smooth_chains % c:
                    raise ValueError(f"smooth_chains ({smooth_chains}) must be a multiple of "
                                     f"n_chains ({c})")
                copies = smooth_chains // c
                phi, f, ll = np.tile(phi, (copies, 1)), np.tile(f, (copies, 1)), np.tile(ll, copies)
                c = smooth_chains
                nc = n * c
                y, obs, bl, xt, row_patient = _chain_arrays(data, x, c)
                mu = np.tile(population_mean(beta, x), (c, 1))
                phi_sum = np.zeros_like(phi)
                rows_all = np.arange(nc)
                fd_rows = np.tile(row_patient, 5)
                fd_base = np.r_[np.tile(rows_all, 4), rows_all + 4 * nc]
        exploring = explore_end is None
        gamma = 1.0 if exploring else 1.0 / (k - explore_end + 1)
        omega = np.sqrt(omega2)
        move_fixed = any_fixed and k >= hold

        # 1. one call: current state (its predictions are stale after the last M-step or a
        #    change of integration grid), its forward differences in log Q, V2, Km (once they
        #    are estimated), and the proposals of the first prior kernel.
        prop = mu + omega * rng.standard_normal(phi.shape)
        ok = stiffness(log_params(prop, lf)) <= MAX_STIFFNESS
        prop = np.where(ok[:, None], prop, phi)
        jac_fixed = None
        if move_fixed:
            block = np.vstack([stacked_fixed_shifts(phi, lf, _FD_STEP), log_params(prop, lf)])
            f_all = current(block, fd_rows, base=fd_base)
            f = f_all[:nc]
            jac_fixed = np.stack([(f_all[(j + 1) * nc:(j + 2) * nc] - f) / _FD_STEP
                                  for j in range(3)], -1)
            jac_fixed = np.nan_to_num(jac_fixed, nan=0.0, posinf=0.0, neginf=0.0)
            f_prior = f_all[4 * nc:]
        elif fresh_for is not None and fresh_for[1] is current and np.array_equal(fresh_for[0], lf):
            f_prior = current(log_params(prop, lf), row_patient)     # f is still exact
        else:
            f_all = current(np.vstack([log_params(phi, lf), log_params(prop, lf)]),
                            np.tile(row_patient, 2), base=np.r_[rows_all, rows_all + nc])
            f, f_prior = f_all[:nc], f_all[nc:]
        f_state = f
        ll = lik(f)
        acc = []
        if kernels[0] > 0:
            acc.append((accept_step(prop, 0.0, f_prior) & ok).mean())
        for _ in range(kernels[0] - 1):
            prop = mu + omega * rng.standard_normal(phi.shape)
            acc.append(accept_step(prop, 0.0).mean())
        acc_trace[k, 0] = np.mean(acc) if acc else np.nan

        # 2. random-scan single-component random walk
        acc = []
        for _ in range(kernels[1]):
            comp = rng.integers(0, 3, size=nc)
            prop = phi.copy()
            prop[rows_all, comp] += scale_comp[comp] * omega[comp] * rng.standard_normal(nc)
            d_old = (phi[rows_all, comp] - mu[rows_all, comp]) ** 2
            d_new = (prop[rows_all, comp] - mu[rows_all, comp]) ** 2
            accept = accept_step(prop, -0.5 * (d_new - d_old) / omega2[comp])
            if exploring:
                rates = np.array([accept[comp == j].mean() if (comp == j).any()
                                  else _TARGET_COMPONENT for j in range(3)])
                scale_comp *= 1.0 + 0.4 * (rates - _TARGET_COMPONENT)
            acc.append(accept.mean())
        acc_trace[k, 1] = np.mean(acc) if acc else np.nan

        # 3. joint random walk
        acc = []
        for _ in range(kernels[2]):
            prop = phi + scale_block * omega * rng.standard_normal(phi.shape)
            lp = -0.5 * (((prop - mu) ** 2 - (phi - mu) ** 2) / omega2).sum(axis=1)
            accept = accept_step(prop, lp)
            if exploring:
                scale_block *= 1.0 + 0.4 * (accept.mean() - _TARGET_BLOCK)
            acc.append(accept.mean())
        acc_trace[k, 2] = np.mean(acc) if acc else np.nan
        fresh_for = (lf.copy(), current)
        prior = -0.5 * (((phi - mu) ** 2) / omega2 + np.log(omega2) + log_2pi).sum()
        indicator[k] = -2.0 * (ll.sum() + prior) / c

        if k < burn:
            trace[k] = Theta(beta=beta, omega2=omega2, log_fixed=lf, a=a, b=b).vector()
            if progress is not None:
                progress(k)
            k += 1
            continue

        # stochastic approximation of the sufficient statistics
        s1_new = np.array([[phi[:, p].sum(), (xt[:, p] * phi[:, p]).sum()] for p in range(3)]) / c
        s2_new = (phi**2).sum(axis=0) / c
        s1 += gamma * (s1_new - s1)
        s2 += gamma * (s2_new - s2)
        if not exploring:
            phi_sum += phi

        # M-step, mean parameters
        for p in range(3):
            if estimate_exponents:
                beta[p] = np.linalg.solve(xtx[p], s1[p])
            else:
                beta[p, 0] = (s1[p, 0] - beta[p, 1] * designs[p][:, 1].sum()) / n
        if move_fixed:
            score_fix, info_fix = score_and_information(f_state, y, obs, bl, lloq, a, b, error)
            score_fix = np.nan_to_num(score_fix, nan=0.0, posinf=0.0, neginf=0.0)
            info_fix = np.nan_to_num(info_fix, nan=0.0, posinf=0.0, neginf=0.0)
            grad_fixed = np.einsum("rm,rmj->j", score_fix, jac_fixed) / c
            fisher = np.einsum("rm,rmj,rmk->jk", info_fix, jac_fixed, jac_fixed) / c
            free = np.flatnonzero(estimate_fixed)
            step = np.zeros(3)
            step[free] = np.clip(_solve(fisher[np.ix_(free, free)], grad_fixed[free]),
                                 -_MAX_MEAN_STEP, _MAX_MEAN_STEP)
            lf = lf + gamma * step

        # M-step, omega^2 (closed form given the statistics and the new means)
        for p in range(3):
            w = (s2[p] - 2.0 * beta[p] @ s1[p] + beta[p] @ xtx[p] @ beta[p]) / n
            w = max(w, 1e-8)
            omega2[p] = max(w, annealing**2 * omega2[p]) if exploring else w
        mu = np.tile(population_mean(beta, x), (c, 1))

        # M-step, residual SDs (towards the complete-data maximiser at the current state)
        good = np.isfinite(f).all(axis=1)
        a_new, b_new = residual_mstep(f[good], y[good], obs[good], bl[good], lloq, a, b, error)
        if exploring:
            a_new, b_new = max(a_new, annealing * a), max(b_new, annealing * b)
        a = float(np.exp(np.log(a) + gamma * (np.log(a_new) - np.log(a))))
        b = float(np.exp(np.log(b) + gamma * (np.log(b_new) - np.log(b))))

        trace[k] = Theta(beta=beta, omega2=omega2, log_fixed=lf, a=a, b=b).vector()
        if exploring and k + 1 >= hold + rule.window:
            drift = rule.drift(indicator[hold:k + 1, None])
            drift_trace[k] = drift
        if progress is not None:
            progress(k)
        k += 1

    if explore_end is None:                       # n_smooth iterations always run
        explore_end = n_explore
    theta = Theta(beta=beta.copy(), omega2=omega2.copy(), log_fixed=lf.copy(), a=a, b=b)
    phi_mean = (phi_sum / max(k - explore_end, 1)).reshape(c, n, 3).mean(axis=0)
    final_drift = float(drift_trace[explore_end - 1]) if explore_end >= 1 else float("inf")
    return SAEMOutput(theta=theta, phi_mean=phi_mean,
                      trace=SAEMTrace(theta=trace[:k], acceptance=acc_trace[:k],
                                      n_explore=explore_end, drift=drift_trace[:k],
                                      stationary=bool(np.isfinite(final_drift)
                                                      and final_drift <= 1.0),
                                      indicator=indicator[:k]))


def _solve(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Solve a symmetric positive system, regularised if it is near-singular."""
    scale = np.sqrt(np.clip(np.diag(matrix), 1e-300, None))
    m = matrix / np.outer(scale, scale)
    w, v = np.linalg.eigh(m)
    w = np.maximum(w, 1e-8 * max(w.max(), 1e-300))
    return (v @ ((v.T @ (vector / scale)) / w)) / scale
