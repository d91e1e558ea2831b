"""``PopPKFit``: nonlinear mixed-effects estimation of the ATG model from a cohort's levels."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ml.pk import PARAMETERS, PopPKModel

from ._convergence import StationarityRule
from ._data import PopPKData
from ._ebe import conditional_modes, importance_sampling_loglik
from ._error import CombinedError
from ._linearization import fisher_information, linearize, parameter_names
from ._result import EXPONENT_NAMES, IIV_NAMES, PopPKResult
from ._saem import SAEMTrace, run_saem
from ._structural import EXPLORE_STEPS, FIXED_PARAMS, Predictor, Theta, covariate_matrix, log_params, population_mean

ALGORITHM = ("SAEM (Kuhn & Lavielle 2005; Delyon, Lavielle & Moulines 1999), exploration "
             "ended by the stationarity of the complete-data -2LL, "
             "stochastic-approximation Fisher scoring for Q, V2, Km (Gu & Kong 1998), "
             "M3 for BLOQ samples (Beal 2001); standard errors from the FOCE-I linearised "
             "Fisher information; -2LL by importance sampling")


class PopPKFit(BaseEstimator):
    """Population PK estimation of the ATG model (ml/pk/default_model.toml) from doses and levels.

    Estimates the typical values (CL, V1, Q, V2, Vmax, Km), the power covariate effects of
    weight on CL and V1 and of the lymphocyte count on Vmax, the between-patient variability
    of CL, V1 and Vmax (log-normal, diagonal), and the combined additive + proportional
    residual error, with samples below the limit of quantification handled by Beal's M3
    likelihood. The algorithm is SAEM (Kuhn & Lavielle 2005, as in Monolix); see
    :mod:`ml.poppk._saem` for its details and :mod:`ml.poppk._linearization` for the standard
    errors and conditional weighted residuals.

    Parameters
    ----------
    start : ml.pk.PopPKModel, optional
        Starting values and the fixed parts of the model (covariate references, active
        fraction, LLOQ). Default: :meth:`ml.pk.PopPKModel.default`.
    n_explore : int
        SAEM exploration iterations (step 1); with ``stopping`` the most it may take.
    n_smooth : int
        SAEM smoothing iterations (decreasing step), each with ``smooth_chains`` chains.
    stopping : StationarityRule or None
        Adaptive end of the exploration: it ends once the iterates are stationary
        (:class:`ml.poppk._convergence.StationarityRule`), at the latest after ``n_explore``
        iterations. ``None`` runs exactly ``n_explore`` iterations.
    explore_steps : tuple of (float, float) or None
        RK4 step limits ``(from_day, max_step_days)`` of the integration during the
        exploration (default :data:`ml.poppk._structural.EXPLORE_STEPS`, coarser than the
        fitting grid; relative error below 1 % of a prediction, far inside the 20 %
        residual error). The smoothing phase, which gives the estimates, and everything
        after it integrate on the fitting grid. ``None``: the fitting grid throughout.
    n_chains : int
        Markov chains per patient.
    smooth_chains : int, optional
        Markov chains per patient in the smoothing phase, a multiple of ``n_chains`` (default
        ``2 * n_chains``): at the end of the exploration every chain is copied. An
        integration call costs about as much for two rows per patient as for one, so the
        extra chain halves the Monte Carlo variance of each smoothing iteration for about
        a quarter more time.
    estimate_covariates : bool
        Estimate the covariate exponents (else they are fixed at the start model's).
    error_model : CombinedError, optional
        Residual error model (default ``CombinedError("variance")``).
    lloq : float, optional
        Limit of quantification of the assay, concentration unit (default: the start model's).
    initial_omega : float
        Floor of the starting between-patient SDs: a generous start keeps the chains mixing.
    n_importance : int
        Importance samples per patient for ``-2LL`` (0 skips it).
    fixed : tuple of str
        Fixed effects without variability held at the start model's values instead of
        estimated, among ``"Q"``, ``"V2"``, ``"Km"`` (e.g. Km on a grid for a profile
        likelihood, scripts/bench_poppk.py).
    random_state : int or numpy.random.Generator, optional
        Seed; the same seed gives the same estimates.
    verbose : bool
        Show a progress bar on stderr.

    Attributes
    ----------
    model_ : ml.pk.PopPKModel
        The fitted model, status ``"fitted"``: write it with :func:`ml.poppk.write_model`.
    result_ : PopPKResult
        Estimates, standard errors, shrinkage and fit statistics.
    individual_ : pandas.DataFrame
        Per patient: covariates, individual parameters at the conditional mode and the etas.
    predictions_ : pandas.DataFrame
        Per sample: ``time`` (days), ``dv`` (NaN if BLOQ), ``bloq``, ``pred`` (population),
        ``ipred`` (individual), ``cwres``, ``iwres``.
    trace_ : SAEMTrace
        Parameter values after every SAEM iteration.
    data_ : PopPKData
        The estimation data set.
    covariance_ : pandas.DataFrame
        Covariance of the estimates in the estimation scale (log typical values, exponents,
        omega^2, residual SDs).
    converged_ : bool
        Whether the fit can be trusted as converged: the exploration ended on stationary
        iterates (``trace_.stationary``; not the case when it ran out of ``n_explore``
        iterations), the estimates are finite and the Fisher information is positive
        definite (standard errors exist). A pipeline falls back to a prior model when it
        is False.
    convergence_ : dict
        Why: ``stationary``, ``drift`` (the stationarity statistic at the end of the
        exploration, at most 1 when stationary), ``explore_iterations``,
        ``smooth_iterations``, ``information_positive_definite``, ``finite``.
    """

    def __init__(self, start: PopPKModel | None = None, *, n_explore: int = 200,
                 n_smooth: int = 40, n_chains: int = 1, estimate_covariates: bool = True,
                 error_model: CombinedError | None = None, lloq: float | None = None,
                 initial_omega: float = 0.3, n_importance: int = 300, fixed: tuple = (),
                 stopping: StationarityRule | None = StationarityRule(),
                 explore_steps: tuple | None = EXPLORE_STEPS, smooth_chains: int | None = None,
                 random_state=None, verbose: bool = False):
        self.start = start
        self.n_explore = n_explore
        self.n_smooth = n_smooth
        self.stopping = stopping
        self.explore_steps = explore_steps
        self.smooth_chains = smooth_chains
        self.n_chains = n_chains
        self.estimate_covariates = estimate_covariates
        self.error_model = error_model
        self.lloq = lloq
        self.initial_omega = initial_omega
        self.n_importance = n_importance
        self.fixed = fixed
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------------------------
    def _check(self) -> None:
        for name in ("n_explore", "n_smooth", "n_chains"):
            value = getattr(self, name)
            if not (isinstance(value, (int, np.integer)) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.n_explore < 20:
            raise ValueError(f"n_explore must be >= 20 (burn-in and exploration), got {self.n_explore}")
        if not (isinstance(self.n_importance, (int, np.integer)) and self.n_importance >= 0):
            raise ValueError(f"n_importance must be an integer >= 0, got {self.n_importance!r}")
        if self.lloq is not None and not self.lloq >= 0:
            raise ValueError(f"lloq must be >= 0, got {self.lloq}")
        unknown = [p for p in self.fixed if p not in FIXED_PARAMS]
        if unknown:
            raise ValueError(f"fixed must name parameters among {FIXED_PARAMS}, got {unknown}")
        if not self.initial_omega >= 0:
            raise ValueError(f"initial_omega must be >= 0, got {self.initial_omega}")
        sc = self.smooth_chains
        if sc is not None and not (isinstance(sc, (int, np.integer)) and sc >= 1
                                   and sc % self.n_chains == 0):
            raise ValueError(f"smooth_chains must be a multiple of n_chains ({self.n_chains}), "
                             f"got {sc!r}")
        if self.stopping is not None and not isinstance(self.stopping, StationarityRule):
            raise ValueError(f"stopping must be a StationarityRule or None, got {self.stopping!r}")

    def fit(self, cohort, y=None) -> "PopPKFit":
        """Estimate the model from a cohort.

        Parameters
        ----------
        cohort : ml.cohort.Cohort or PopPKData
            A cohort with ``atg_doses`` and ``atg_levels`` (levels in its concentration unit,
            taken as mg/L of active ATG by the model).
        y : None
            Ignored (scikit-learn convention).

        Returns
        -------
        PopPKFit
            ``self``, with the attributes ending in ``_`` set.
        """
        self._check()
        t0 = time.perf_counter()
        start = PopPKModel.default() if self.start is None else self.start
        error = CombinedError() if self.error_model is None else self.error_model
        lloq = float(start.residual["lloq"] if self.lloq is None else self.lloq)
        if isinstance(cohort, PopPKData):
            data = cohort
        else:
            data = PopPKData.from_cohort(cohort, active_fraction=start.active_fraction,
                                         lloq=lloq, alc_ref=start.covariates["alc_ref"])
        if data.n_observed < 10:
            raise ValueError(f"a population fit needs quantified levels; got {data.n_observed}")
        rng = np.random.default_rng(self.random_state)
        predict = Predictor(data)
        predict_explore = (None if self.explore_steps is None
                           else Predictor(data, phase_steps=tuple(self.explore_steps)))
        x = covariate_matrix(data, start.covariates)
        theta0 = Theta.from_model(start, omega_floor=self.initial_omega)

        bar = None
        if self.verbose:
            from tqdm import tqdm
            bar = tqdm(total=self.n_explore + self.n_smooth, desc="SAEM", leave=False)
        out = run_saem(predict, x, theta0, error, rng, n_explore=self.n_explore,
                       n_smooth=self.n_smooth, n_chains=self.n_chains,
                       estimate_exponents=self.estimate_covariates,
                       estimate_fixed=tuple(p not in self.fixed for p in FIXED_PARAMS),
                       predict_explore=predict_explore, stopping=self.stopping,
                       smooth_chains=(2 * self.n_chains if self.smooth_chains is None
                                      else self.smooth_chains),
                       progress=None if bar is None else (lambda _k: bar.update()))
        if bar is not None:
            bar.close()
        theta = out.theta
        self._post_fit(data, predict, x, theta, out.phi_mean, error, rng, start)
        self.trace_ = out.trace
        self._set_convergence(theta)
        elapsed = time.perf_counter() - t0
        self.result_ = self._result(data, theta, start, elapsed)
        self.model_ = theta.to_model(
            start, status="fitted", concentration_unit=data.concentration_unit,
            source=(f"atgwin poppk fit of cohort '{data.name}' (digest {data.digest[:16]}), "
                    f"{data.n} patients; SAEM"),
            residual={**start.residual, "additive": theta.a, "proportional": theta.b,
                      "lloq": data.lloq},
            extra=self._extra_tables(data))
        return self

    # ------------------------------------------------------------------------------------
    def _post_fit(self, data, predict, x, theta, phi_start, error, rng, start) -> None:
        mu = population_mean(theta.beta, x)
        modes = conditional_modes(predict, phi_start, mu, theta.omega2, theta.log_fixed,
                                  theta.a, theta.b, error)
        f_hat, jac = predict.jacobian(modes.phi, theta.log_fixed, wrt_phi=True, wrt_fixed=True)
        jac_phi, jac_fixed = jac[..., :3], jac[..., 3:]
        lin = linearize(data.conc, data.observed, f_hat, jac_phi, modes.phi, mu, theta.omega2,
                        theta.a, theta.b, error)
        names = parameter_names(self.estimate_covariates)
        fim = fisher_information(lin, data.observed, f_hat, jac_phi, jac_fixed, x, theta, error,
                                 self.estimate_covariates)
        est = np.array([not (n.startswith("log_") and n[4:] in self.fixed) for n in names])
        cov = np.full_like(fim, np.nan)          # held parameters: no standard error
        try:
            inv = np.linalg.inv(fim[np.ix_(est, est)])
            if not np.all(np.diag(inv) > 0):
                raise np.linalg.LinAlgError("information matrix is not positive definite")
            cov[np.ix_(est, est)] = inv
        except np.linalg.LinAlgError:
            pass
        self.covariance_ = pd.DataFrame(cov, index=names, columns=names)

        pred = predict(log_params(mu, theta.log_fixed))
        g = error.sd(f_hat, theta.a, theta.b)
        iwres = np.where(data.observed, (data.conc - f_hat) / g, np.nan)
        eta = modes.phi - mu
        self._shrinkage = {p: float(1.0 - eta[:, j].std(ddof=1) / math.sqrt(theta.omega2[j]))
                           for j, p in enumerate(IIV_NAMES)}
        self._shrinkage["epsilon"] = float(1.0 - np.nanstd(iwres, ddof=1))
        self._ofv_lin = lin.ofv
        if self.n_importance > 0:
            ll, ll_se = importance_sampling_loglik(
                predict, modes, mu, theta.omega2, theta.log_fixed, theta.a, theta.b, error, rng,
                n_samples=self.n_importance, batch_rows=predict.max_rows)
            self._ofv, self._ofv_se = -2.0 * ll, 2.0 * ll_se
        else:
            self._ofv, self._ofv_se = math.nan, math.nan

        cells = data.observed | data.bloq
        pid = np.repeat(data.patient_id[:, None], data.times.shape[1], axis=1)
        self.predictions_ = pd.DataFrame({
            "patient_id": pid[cells], "time": data.times[cells], "dv": data.conc[cells],
            "bloq": data.bloq[cells].astype(int), "pred": pred[cells], "ipred": f_hat[cells],
            "cwres": lin.cwres[cells], "iwres": iwres[cells]})
        ind = np.exp(log_params(modes.phi, theta.log_fixed))
        table = {"patient_id": data.patient_id, "weight_kg": data.weight_kg, "alc": data.alc}
        table.update({p: ind[:, i] for i, p in enumerate(PARAMETERS)})
        table.update({f"eta_{p}": eta[:, j] for j, p in enumerate(IIV_NAMES)})
        self.individual_ = pd.DataFrame(table)
        self.data_ = data
        self._x = x

    def _set_convergence(self, theta: Theta) -> None:
        tr = self.trace_
        drift = tr.drift[tr.n_explore - 1] if tr.drift is not None and tr.n_explore >= 1 \
            else math.nan
        cov = self.covariance_.to_numpy()
        est = np.isfinite(np.diag(cov))
        pos_def = bool(est.any()) and bool(np.all(np.linalg.eigvalsh(cov[np.ix_(est, est)]) > 0))
        finite = bool(np.isfinite(theta.vector()).all())
        self.convergence_ = {
            "stationary": bool(tr.stationary), "drift": float(drift),
            "explore_iterations": int(tr.n_explore),
            "smooth_iterations": int(tr.theta.shape[0] - tr.n_explore),
            "information_positive_definite": pos_def, "finite": finite}
        self.converged_ = bool(tr.stationary and pos_def and finite)

    def _result(self, data, theta: Theta, start: PopPKModel, elapsed: float) -> PopPKResult:
        typical = theta.typical()
        cov = self.covariance_
        var = np.diag(cov.to_numpy())
        names = list(cov.index)
        v = dict(zip(names, var))
        se = {}
        for p, key in (("CL", "log_CL"), ("V1", "log_V1"), ("Q", "log_Q"), ("V2", "log_V2"),
                       ("Km", "log_Km")):
            se[f"typical.{p}"] = typical[p] * math.sqrt(v[key])
        var_vmax = v["log_CLsat"] + v["log_Km"] + 2.0 * cov.loc["log_CLsat", "log_Km"]
        se["typical.Vmax"] = typical["Vmax"] * math.sqrt(var_vmax) if var_vmax >= 0 else math.nan
        if self.estimate_covariates:
            for k in EXPONENT_NAMES:
                se[f"covariates.{k}"] = math.sqrt(v[k])
        omega = {p: float(math.sqrt(w)) for p, w in zip(IIV_NAMES, theta.omega2)}
        for p in IIV_NAMES:
            se[f"omega.{p}"] = math.sqrt(v[f"omega2_{p}"]) / (2.0 * omega[p])
        se["residual.additive"] = math.sqrt(v["additive"])
        se["residual.proportional"] = math.sqrt(v["proportional"])
        covariates = dict(start.covariates)
        covariates.update({k: float(b) for k, b in zip(EXPONENT_NAMES, theta.beta[:, 1])})
        notes = tuple(f"excluded {pid}: {why}" for pid, why in data.excluded) + data.notes
        return PopPKResult(
            typical=typical, covariates=covariates, omega=omega,
            residual={"additive": theta.a, "proportional": theta.b, "lloq": data.lloq},
            se={k: float(s) for k, s in se.items()}, shrinkage=self._shrinkage,
            ofv=float(self._ofv), ofv_se=float(self._ofv_se),
            ofv_linearization=float(self._ofv_lin), n_patients=data.n,
            n_observations=data.n_observed, n_bloq=data.n_bloq, algorithm=ALGORITHM,
            iterations=int(self.trace_.theta.shape[0]), elapsed_seconds=float(elapsed),
            concentration_unit=data.concentration_unit, notes=notes,
            converged=bool(self.converged_))

    def _extra_tables(self, data) -> dict:
        r = self.result_
        fit = {"algorithm": r.algorithm, "cohort": data.name, "cohort_digest": data.digest,
               "n_patients": float(r.n_patients), "n_observations": float(r.n_observations),
               "n_bloq": float(r.n_bloq), "ofv": r.ofv, "iterations": float(r.iterations),
               "converged": bool(r.converged),
               "random_state": str(self.random_state)}
        fit = {k: v for k, v in fit.items() if not (isinstance(v, float) and not math.isfinite(v))}
        tables = {"fit": fit}
        for group in ("typical", "covariates", "omega", "residual"):
            values = {k.split(".", 1)[1]: s for k, s in r.se.items()
                      if k.startswith(group + ".") and math.isfinite(s)}
            if values:
                tables[f"se_{group}"] = values
        return tables

    # ------------------------------------------------------------------------------------
    def summary(self) -> dict:
        """``{"typical": ..., "iiv_cv": ..., "residual": ..., ...}`` (see
        :meth:`PopPKResult.summary`)."""
        self._check_fitted()
        return self.result_.summary()

    def vpc(self, n_sim: int = 200, *, random_state=None, **kwargs):
        """Visual predictive check of the fitted model on its own design.

        Parameters
        ----------
        n_sim : int
            Replicates of the design simulated from the fitted model.
        random_state : int or numpy.random.Generator, optional
        **kwargs
            Passed to :func:`ml.poppk.vpc` (``percentiles``, ``ci``, ``max_bins``).

        Returns
        -------
        VPCResult
        """
        from ._vpc import vpc
        self._check_fitted()
        return vpc(self.model_, self.data_, n_sim=n_sim, random_state=random_state,
                   error=self.error_model or CombinedError(), **kwargs)

    def _check_fitted(self) -> None:
        if not hasattr(self, "result_"):
            raise RuntimeError("this PopPKFit is not fitted yet: call fit(cohort) first")


__all__ = ["ALGORITHM", "PopPKFit", "SAEMTrace"]
