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
from ._structural import (
    MAX_STIFFNESS,
    VECTOR_NAMES,
    Predictor,
    Theta,
    log_params,
    population_mean,
    stacked_fixed_shifts,
    stiffness,
)

_TARGET_COMPONENT = 0.4
_TARGET_BLOCK = 0.3
_MAX_MEAN_STEP = 0.3          # largest change of a mean parameter in one iteration
_FD_STEP = 1e-4
_LOG_2PI = np.log(2.0 * np.pi)


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
    settings = _Settings(n_explore=n_explore, n_smooth=n_smooth, kernels=kernels,
                         estimate_exponents=estimate_exponents, annealing=annealing,
                         estimate_fixed=estimate_fixed, stopping=stopping, smooth_chains=smooth_chains,
                         hold=min(n_hold, n_explore - 1), burn=min(n_burn, n_explore - 1),
                         rule=stopping if stopping is not None else StationarityRule())
    run = _SAEMRun(predict, predict_explore, x, theta0, error, rng, n_chains, settings)
    return run.run(progress)


@dataclass(frozen=True)
class _Settings:
    """The options of :func:`run_saem` that stay fixed during a run."""

    n_explore: int
    n_smooth: int
    kernels: tuple[int, int, int]
    estimate_exponents: bool
    annealing: float
    estimate_fixed: tuple[bool, bool, bool]
    stopping: StationarityRule | None
    smooth_chains: int | None
    hold: int
    burn: int
    rule: StationarityRule


class _SAEMRun:
    """The state of one SAEM run (:func:`run_saem`), advanced one iteration at a time."""

    def __init__(self, predict, predict_explore, x, theta0, error, rng, n_chains, settings: _Settings):
        self.predict, self.predict_explore, self.error, self.rng = predict, predict_explore, error, rng
        self.s = settings
        self.data = data = predict.data
        self.x = x
        self.n = data.n
        self.lloq = data.lloq
        self.designs = [np.column_stack([np.ones(self.n), x[:, p]]) for p in range(3)]
        self.xtx = [d.T @ d for d in self.designs]
        self.any_fixed = bool(np.any(settings.estimate_fixed))
        self.beta = theta0.beta.copy()
        self.omega2 = theta0.omega2.copy()
        self.lf = theta0.log_fixed.copy()
        self.a, self.b = float(theta0.a), float(theta0.b)
        self._set_chains(n_chains)
        self.phi = self.mu.copy()
        self.f = np.zeros_like(self.y)
        self.ll = np.zeros(self.nc)
        self.scale_comp = np.full(3, 0.5)
        self.scale_block = 0.3
        self.s1 = np.zeros((3, 2))
        self.s2 = np.zeros(3)
        self.total = settings.n_explore + settings.n_smooth
        self.trace = np.empty((self.total, len(VECTOR_NAMES)))
        self.acc_trace = np.zeros((self.total, 3))
        self.drift_trace = np.full(self.total, np.nan)
        self.indicator = np.full(self.total, np.nan)
        self.current = predict_explore if predict_explore is not None else predict
        self.fresh_for = None      # (log_fixed, predictor) the predictions f were computed with
        self.explore_end = None    # first smoothing iteration
        self.drift = float("inf")

    def _set_chains(self, c: int) -> None:
        """Data and population means tiled for ``c`` chains per patient."""
        n = self.n
        self.c, self.nc = c, n * c
        self.y, self.obs, self.bl, self.xt, self.row_patient = _chain_arrays(self.data, self.x, c)
        self.mu = np.tile(population_mean(self.beta, self.x), (c, 1))
        self.rows_all = np.arange(self.nc)
        self.fd_rows = np.tile(self.row_patient, 5)
        self.fd_base = np.r_[np.tile(self.rows_all, 4), self.rows_all + 4 * self.nc]
        self.phi_sum = np.zeros((self.nc, 3))

    def _lik(self, ff):
        value = loglik(ff, self.y, self.obs, self.bl, self.lloq, self.a, self.b, self.error)
        return np.where(np.isnan(value), -np.inf, value)

    def _accept_step(self, prop, extra_logratio, f_prop=None):
        logp = log_params(prop, self.lf)
        ok = stiffness(logp) <= MAX_STIFFNESS
        if f_prop is None:
            f_prop = self.f.copy()
            if ok.any():
                f_prop[ok] = self.current(logp[ok], self.row_patient[ok])
        ll_prop = self._lik(f_prop)
        log_u = np.log(self.rng.uniform(size=self.nc))
        with np.errstate(invalid="ignore"):
            ratio = np.where(np.isneginf(self.ll), np.inf, ll_prop - self.ll + extra_logratio)
        accept = ok & np.isfinite(ll_prop) & (log_u < ratio)
        self.phi = np.where(accept[:, None], prop, self.phi)
        self.f = np.where(accept[:, None], f_prop, self.f)
        self.ll = np.where(accept, ll_prop, self.ll)
        return accept

    # -- one iteration ---------------------------------------------------------------------
    def run(self, progress) -> SAEMOutput:
        k = 0
        while k < self.total:
            self._maybe_end_exploration(k)
            self._iteration(k)
            if progress is not None:
                progress(k)
            k += 1
        return self._output(k)

    def _maybe_end_exploration(self, k: int) -> None:
        s = self.s
        if self.explore_end is not None:
            return
        stop = s.stopping is not None and k >= s.hold + max(s.stopping.min_iterations, s.rule.window)
        if not (k >= s.n_explore or (stop and self.drift <= 1.0)):
            return
        self.explore_end = k
        self.total = k + s.n_smooth
        self.current = self.predict
        if s.smooth_chains is not None and s.smooth_chains != self.c:
            if s.smooth_chains % self.c:
                raise ValueError(f"smooth_chains ({s.smooth_chains}) must be a multiple of "
                                 f"n_chains ({self.c})")
            copies = s.smooth_chains // self.c
            self.phi, self.f = np.tile(self.phi, (copies, 1)), np.tile(self.f, (copies, 1))
            self.ll = np.tile(self.ll, copies)
            self._set_chains(s.smooth_chains)

    def _iteration(self, k: int) -> None:
        exploring = self.explore_end is None
        gamma = 1.0 if exploring else 1.0 / (k - self.explore_end + 1)
        omega = np.sqrt(self.omega2)
        move_fixed = self.any_fixed and k >= self.s.hold
        f_state, jac_fixed = self._simulation(k, omega, move_fixed)
        self._component_kernel(k, omega, exploring)
        self._block_kernel(k, omega, exploring)
        self.fresh_for = (self.lf.copy(), self.current)
        prior = -0.5 * (((self.phi - self.mu) ** 2) / self.omega2 + np.log(self.omega2) + _LOG_2PI).sum()
        self.indicator[k] = -2.0 * (self.ll.sum() + prior) / self.c
        if k < self.s.burn:
            self._record(k)
            return
        self._approximate(gamma, exploring)
        self._mstep_means()
        if move_fixed:
            self._mstep_fixed(gamma, f_state, jac_fixed)
        self._mstep_variances(gamma, exploring)
        self._record(k)
        if exploring and k + 1 >= self.s.hold + self.s.rule.window:
            self.drift = self.s.rule.drift(self.indicator[self.s.hold:k + 1, None])
            self.drift_trace[k] = self.drift

    def _simulation(self, k: int, omega: np.ndarray, move_fixed: bool):
        """Step 1: one call for the current state (its predictions are stale after the last M-step
        or a change of integration grid), its forward differences in log Q, V2, Km (once they are
        estimated) and the proposals of the first prior kernel; then the prior kernels."""
        nc, lf, current = self.nc, self.lf, self.current
        prop = self.mu + omega * self.rng.standard_normal(self.phi.shape)
        ok = stiffness(log_params(prop, lf)) <= MAX_STIFFNESS
        prop = np.where(ok[:, None], prop, self.phi)
        jac_fixed = None
        if move_fixed:
            block = np.vstack([stacked_fixed_shifts(self.phi, lf, _FD_STEP), log_params(prop, lf)])
            f_all = current(block, self.fd_rows, base=self.fd_base)
            self.f = f_all[:nc]
            jac_fixed = np.stack([(f_all[(j + 1) * nc:(j + 2) * nc] - self.f) / _FD_STEP
                                  for j in range(3)], -1)
            jac_fixed = np.nan_to_num(jac_fixed, nan=0.0, posinf=0.0, neginf=0.0)
            f_prior = f_all[4 * nc:]
        elif self.fresh_for is not None and self.fresh_for[1] is current and np.array_equal(self.fresh_for[0], lf):
            f_prior = current(log_params(prop, lf), self.row_patient)     # f is still exact
        else:
            f_all = current(np.vstack([log_params(self.phi, lf), log_params(prop, lf)]),
                            np.tile(self.row_patient, 2), base=np.r_[self.rows_all, self.rows_all + nc])
            self.f, f_prior = f_all[:nc], f_all[nc:]
        f_state = self.f
        self.ll = self._lik(self.f)
        acc = []
        if self.s.kernels[0] > 0:
            acc.append((self._accept_step(prop, 0.0, f_prior) & ok).mean())
        for _ in range(self.s.kernels[0] - 1):
            prop = self.mu + omega * self.rng.standard_normal(self.phi.shape)
            acc.append(self._accept_step(prop, 0.0).mean())
        self.acc_trace[k, 0] = np.mean(acc) if acc else np.nan
        return f_state, jac_fixed

    def _component_kernel(self, k: int, omega: np.ndarray, exploring: bool) -> None:
        """Step 1, random-scan single-component random walk."""
        acc = []
        rows_all, nc = self.rows_all, self.nc
        for _ in range(self.s.kernels[1]):
            comp = self.rng.integers(0, 3, size=nc)
            prop = self.phi.copy()
            prop[rows_all, comp] += self.scale_comp[comp] * omega[comp] * self.rng.standard_normal(nc)
            d_old = (self.phi[rows_all, comp] - self.mu[rows_all, comp]) ** 2
            d_new = (prop[rows_all, comp] - self.mu[rows_all, comp]) ** 2
            accept = self._accept_step(prop, -0.5 * (d_new - d_old) / self.omega2[comp])
            if exploring:
                rates = np.array([accept[comp == j].mean() if (comp == j).any()
                                  else _TARGET_COMPONENT for j in range(3)])
                self.scale_comp *= 1.0 + 0.4 * (rates - _TARGET_COMPONENT)
            acc.append(accept.mean())
        self.acc_trace[k, 1] = np.mean(acc) if acc else np.nan

    def _block_kernel(self, k: int, omega: np.ndarray, exploring: bool) -> None:
        """Step 1, joint random walk."""
        acc = []
        for _ in range(self.s.kernels[2]):
            prop = self.phi + self.scale_block * omega * self.rng.standard_normal(self.phi.shape)
            lp = -0.5 * (((prop - self.mu) ** 2 - (self.phi - self.mu) ** 2) / self.omega2).sum(axis=1)
            accept = self._accept_step(prop, lp)
            if exploring:
                self.scale_block *= 1.0 + 0.4 * (accept.mean() - _TARGET_BLOCK)
            acc.append(accept.mean())
        self.acc_trace[k, 2] = np.mean(acc) if acc else np.nan

    def _approximate(self, gamma: float, exploring: bool) -> None:
        """Step 2: stochastic approximation of the sufficient statistics."""
        phi, xt, c = self.phi, self.xt, self.c
        s1_new = np.array([[phi[:, p].sum(), (xt[:, p] * phi[:, p]).sum()] for p in range(3)]) / c
        s2_new = (phi**2).sum(axis=0) / c
        self.s1 += gamma * (s1_new - self.s1)
        self.s2 += gamma * (s2_new - self.s2)
        if not exploring:
            self.phi_sum += phi

    def _mstep_means(self) -> None:
        for p in range(3):
            if self.s.estimate_exponents:
                self.beta[p] = np.linalg.solve(self.xtx[p], self.s1[p])
            else:
                self.beta[p, 0] = (self.s1[p, 0] - self.beta[p, 1] * self.designs[p][:, 1].sum()) / self.n

    def _mstep_fixed(self, gamma: float, f_state, jac_fixed) -> None:
        """Fisher-scoring step of length ``gamma`` on log Q, V2, Km."""
        score_fix, info_fix = score_and_information(f_state, self.y, self.obs, self.bl, self.lloq,
                                                    self.a, self.b, self.error)
        score_fix = np.nan_to_num(score_fix, nan=0.0, posinf=0.0, neginf=0.0)
        info_fix = np.nan_to_num(info_fix, nan=0.0, posinf=0.0, neginf=0.0)
        grad_fixed = np.einsum("rm,rmj->j", score_fix, jac_fixed) / self.c
        fisher = np.einsum("rm,rmj,rmk->jk", info_fix, jac_fixed, jac_fixed) / self.c
        free = np.flatnonzero(self.s.estimate_fixed)
        step = np.zeros(3)
        step[free] = np.clip(_solve(fisher[np.ix_(free, free)], grad_fixed[free]),
                             -_MAX_MEAN_STEP, _MAX_MEAN_STEP)
        self.lf = self.lf + gamma * step

    def _mstep_variances(self, gamma: float, exploring: bool) -> None:
        """omega^2 in closed form given the statistics and the new means; residual SDs towards the
        complete-data maximiser at the current state."""
        annealing, n = self.s.annealing, self.n
        for p in range(3):
            w = (self.s2[p] - 2.0 * self.beta[p] @ self.s1[p] + self.beta[p] @ self.xtx[p] @ self.beta[p]) / n
            w = max(w, 1e-8)
            self.omega2[p] = max(w, annealing**2 * self.omega2[p]) if exploring else w
        self.mu = np.tile(population_mean(self.beta, self.x), (self.c, 1))
        f = self.f
        good = np.isfinite(f).all(axis=1)
        a_new, b_new = residual_mstep(f[good], self.y[good], self.obs[good], self.bl[good], self.lloq,
                                      self.a, self.b, self.error)
        if exploring:
            a_new, b_new = max(a_new, annealing * self.a), max(b_new, annealing * self.b)
        self.a = float(np.exp(np.log(self.a) + gamma * (np.log(a_new) - np.log(self.a))))
        self.b = float(np.exp(np.log(self.b) + gamma * (np.log(b_new) - np.log(self.b))))

    def _record(self, k: int) -> None:
        self.trace[k] = Theta(beta=self.beta, omega2=self.omega2, log_fixed=self.lf, a=self.a, b=self.b).vector()

    def _output(self, k: int) -> SAEMOutput:
        explore_end = self.s.n_explore if self.explore_end is None else self.explore_end  # n_smooth always run
        theta = Theta(beta=self.beta.copy(), omega2=self.omega2.copy(), log_fixed=self.lf.copy(), a=self.a, b=self.b)
        phi_mean = (self.phi_sum / max(k - explore_end, 1)).reshape(self.c, self.n, 3).mean(axis=0)
        final_drift = float(self.drift_trace[explore_end - 1]) if explore_end >= 1 else float("inf")
        return SAEMOutput(theta=theta, phi_mean=phi_mean,
                          trace=SAEMTrace(theta=self.trace[:k], acceptance=self.acc_trace[:k],
                                          n_explore=explore_end, drift=self.drift_trace[:k],
                                          stationary=bool(np.isfinite(final_drift) and final_drift <= 1.0),
                                          indicator=self.indicator[:k]))


def _solve(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Solve a symmetric positive system, regularised if it is near-singular."""
    scale = np.sqrt(np.clip(np.diag(matrix), 1e-300, None))
    m = matrix / np.outer(scale, scale)
    w, v = np.linalg.eigh(m)
    w = np.maximum(w, 1e-8 * max(w.max(), 1e-300))
    return (v @ ((v.T @ (vector / scale)) / w)) / scale
