"""The population PK step of a run: fit the model to the cohort's own levels, or take the named one.

``atgwin run`` computes exposures under a population PK model. Unless the experiment file names
one (``[features] pk_model``: a model file or ``"shipped"``), :func:`population_model` fits
:class:`ml.poppk.PopPKFit` to the cohort (budget in ``[poppk]``) and checks the fit
(:func:`check_pk_fit`); a fit that fails or does not converge is replaced by the shipped
assumption set, and the result says so in its ``warnings`` (the run records them). Exposures,
the window's ``pk_model`` record and the model file beside the window (:data:`MODEL_FILE`) all
come from the same :class:`PKModelResult`.
"""

from __future__ import annotations

import math
import time
import warnings as _warnings
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = ["MODEL_FILE", "FitCheck", "PKModelResult", "check_pk_fit", "population_model"]

#: File name of the population model beside the window (``window/pk_model.toml`` in a run folder,
#: and in the registered model version); a window's ``pk_model.source`` names it relative to itself.
MODEL_FILE = "pk_model.toml"
#: Parameters whose standard errors decide convergence (Vmax and Km are weakly determined by the
#: sampling design: their RSEs are large even for a good fit; docs/benchmarks.md, population PK fit).
CHECKED = ("typical.CL", "typical.V1", "typical.Q", "typical.V2", "omega.CL", "omega.V1", "omega.Vmax")
_DRIFT_PARAMS = ("CL", "V1", "Q", "V2")


@dataclass(frozen=True)
class FitCheck:
    """Whether a population fit counts as converged, and why not.

    Attributes
    ----------
    converged : bool
    problems : tuple of str
        One line per failed criterion (empty when converged).
    drift : dict
        Relative change of each typical value between the last two quarters of the
        exploration iterations.
    """

    converged: bool
    problems: tuple = ()
    drift: dict = field(default_factory=dict)


def check_pk_fit(fit, max_rse: float = 50.0, max_drift: float = 0.1) -> FitCheck:
    """Convergence criteria of a fitted :class:`ml.poppk.PopPKFit`.

    1. Every estimate is finite.
    2. The linearised Fisher information is invertible: finite standard errors, and relative
       standard errors of :data:`CHECKED` at most ``max_rse`` percent.
    3. SAEM reached its stationary phase: the typical CL, V1, Q, V2 averaged over the last
       quarter of the exploration iterations differ from their average over the quarter
       before by at most ``max_drift`` (relative).

    Parameters
    ----------
    fit : ml.poppk.PopPKFit
        Fitted.
    max_rse : float
        Percent.
    max_drift : float
        Fraction.

    Returns
    -------
    FitCheck
    """
    res = fit.result_
    problems = []
    values = {**{f"typical.{k}": v for k, v in res.typical.items()}, **{f"omega.{k}": v for k, v in res.omega.items()},
              **{f"residual.{k}": v for k, v in res.residual.items()}}
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        problems.append(f"non-finite estimates: {bad}")
    rse = res.rse()
    missing = [k for k in CHECKED if not math.isfinite(rse.get(k, math.nan))]
    if missing:
        problems.append(f"no standard error for {missing} (the information matrix is singular)")
    large = {k: rse[k] for k in CHECKED if math.isfinite(rse.get(k, math.nan)) and rse[k] > max_rse}
    if large:
        problems.append("relative standard errors above {:g} %: {}".format(
            max_rse, ", ".join(f"{k} {v:.0f} %" for k, v in large.items())))
    drift = {}
    trace = getattr(fit, "trace_", None)
    n_explore = int(getattr(trace, "n_explore", 0) or 0)
    if trace is not None and n_explore >= 8:
        q = n_explore // 4
        theta = np.asarray(trace.theta, dtype=float)
        for j, p in enumerate(_DRIFT_PARAMS):  # columns: typical CL, V1, Q, V2, Vmax, Km, ...
            a, b = theta[n_explore - 2 * q:n_explore - q, j].mean(), theta[n_explore - q:n_explore, j].mean()
            drift[p] = float(abs(b / a - 1.0)) if a > 0 else math.inf
        moving = {p: d for p, d in drift.items() if not d <= max_drift}
        if moving:
            problems.append("SAEM still moving at the end of exploration (last two quarters differ by {}); "
                            "raise [poppk] n_explore".format(", ".join(f"{p} {100 * d:.0f} %" for p, d in moving.items())))
    return FitCheck(converged=not problems, problems=tuple(problems), drift=drift)


@dataclass(frozen=True)
class PKModelResult:
    """The population model of a run.

    Attributes
    ----------
    model : ml.pk.PopPKModel or None
        The model exposures are computed under (None under NCA).
    status : {"fitted", "given", "shipped", "fallback", "not used"}
        ``fitted``: fitted to the cohort and converged; ``given``: a model file named by the
        experiment; ``shipped``: the shipped assumption set, named by the experiment;
        ``fallback``: the fit failed or did not converge, the shipped model is used; ``not
        used``: exposure by NCA, or a cohort without levels.
    origin : str
        Where the model came from, in words (cohort fit, file path, shipped).
    warnings : tuple of str
        Recorded with the run (a fallback always has one).
    estimator : ml.poppk.PopPKFit or None
        The fit (also kept on a fallback after a non-converged fit, for its diagnostics).
    check : FitCheck or None
    seconds : float
        Time of the fit.
    """

    model: object | None
    status: str
    origin: str
    warnings: tuple = ()
    estimator: object | None = None
    check: FitCheck | None = None
    seconds: float = 0.0

    @property
    def source(self) -> str | None:
        """``"shipped"`` or :data:`MODEL_FILE` (the file beside the window); None when not used."""
        if self.model is None:
            return None
        return "shipped" if self.status in ("shipped", "fallback") else MODEL_FILE

    @property
    def record(self) -> dict | None:
        """``{"name", "digest", "source"}`` for the window's ``pk_model`` (None when not used)."""
        if self.model is None:
            return None
        return {"name": self.model.name, "digest": self.model.digest, "source": self.source}

    def summary(self) -> dict:
        """What the run records (results.json ``poppk``)."""
        out = {"status": self.status, "origin": self.origin, "warnings": list(self.warnings),
               "seconds": round(self.seconds, 3), "model": self.record}
        if self.model is not None:
            out["typical"] = dict(self.model.typical)
            out["omega"] = dict(self.model.iiv)
            out["residual"] = dict(self.model.residual)
        if self.check is not None:
            out["converged"] = self.check.converged
            out["problems"] = list(self.check.problems)
            out["drift"] = dict(self.check.drift)
        if self.estimator is not None and hasattr(self.estimator, "result_"):
            r = self.estimator.result_
            out["fit"] = {"rse_percent": {k: _f(v) for k, v in r.rse().items()},
                          "shrinkage": {k: _f(v) for k, v in r.shrinkage.items()},
                          "n_patients": r.n_patients, "n_observations": r.n_observations, "n_bloq": r.n_bloq,
                          "iterations": r.iterations, "elapsed_seconds": r.elapsed_seconds, "ofv": _f(r.ofv),
                          "algorithm": r.algorithm, "notes": list(r.notes),
                          "estimates": {**{f"typical.{k}": v for k, v in r.typical.items()},
                                        **{f"covariates.{k}": v for k, v in r.covariates.items()},
                                        **{f"omega.{k}": v for k, v in r.omega.items()},
                                        **{f"residual.{k}": v for k, v in r.residual.items()}}}
        return out


def _f(v):
    return None if v is None or not math.isfinite(v) else float(v)


def population_model(cohort, features, spec, *, random_state: int = 0, estimator=None) -> PKModelResult:
    """The population model of a run: named by the experiment, or fitted to the cohort.

    Parameters
    ----------
    cohort : ml.cohort.Cohort
    features : FeatureSpec
        ``exposure_method`` and ``pk_model`` (None: fit; a file; ``"shipped"``).
    spec : PopPKSpec
        Budget and convergence criteria of the fit.
    random_state : int
        Seed of SAEM.
    estimator : object, optional
        The estimator to fit (default ``PopPKFit`` with ``spec``'s budget); a test passes one
        that fails.

    Returns
    -------
    PKModelResult
        Never raises for a failed fit: the result is the shipped model with a warning.
    """
    from ml.pk import PopPKModel

    if features.exposure_method != "map":
        return PKModelResult(model=None, status="not used", origin=f"exposure by {features.exposure_method}")
    if not getattr(cohort, "has_levels", True):
        return PKModelResult(model=None, status="not used", origin="the cohort carries no levels (auc_total given)")
    if features.pk_model == "shipped":
        return PKModelResult(model=PopPKModel.default(), status="shipped", origin="shipped assumption set "
                             "(ml/pk/default_model.toml), named by the experiment")
    if features.pk_model:
        return PKModelResult(model=PopPKModel.from_file(features.pk_model), status="given",
                             origin=f"model file {features.pk_model}, named by the experiment")
    return _fit(cohort, spec, random_state, estimator)


def _fit(cohort, spec, random_state: int, estimator) -> PKModelResult:
    from ml.pk import PopPKModel
    from ml.poppk import PopPKFit

    budget = {k: v for k, v in (("n_explore", spec.n_explore), ("n_smooth", spec.n_smooth)) if v is not None}
    est = estimator if estimator is not None else PopPKFit(n_importance=spec.n_importance, random_state=random_state,
                                                           **budget)
    shipped = PopPKModel.default()
    t0 = time.perf_counter()
    try:
        with _warnings.catch_warnings(), np.errstate(all="ignore"):
            _warnings.simplefilter("ignore", RuntimeWarning)
            est.fit(cohort)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError, RuntimeError) as exc:
        seconds = time.perf_counter() - t0
        why = f"the population PK fit failed ({type(exc).__name__}: {exc})"
        return PKModelResult(model=shipped, status="fallback", origin="shipped assumption set (fallback)",
                             warnings=(f"{why}; exposures use the shipped assumption set instead",),
                             estimator=None, check=FitCheck(False, (why,)), seconds=seconds)
    seconds = time.perf_counter() - t0
    check = check_pk_fit(est, spec.max_rse, spec.max_drift)
    name = getattr(cohort.meta, "name", "cohort")
    if not check.converged:
        why = "the population PK fit did not converge: " + "; ".join(check.problems)
        return PKModelResult(model=shipped, status="fallback", origin="shipped assumption set (fallback)",
                             warnings=(f"{why}; exposures use the shipped assumption set instead",),
                             estimator=est, check=check, seconds=seconds)
    model = replace(est.model_, name=f"atg-2cmt-linear-mm fitted to {name}")
    return PKModelResult(model=model, status="fitted", estimator=est, check=check, seconds=seconds,
                         origin=f"PopPKFit (SAEM, {getattr(est, 'n_explore', '?')} + {getattr(est, 'n_smooth', '?')} "
                                f"iterations) on the levels of "
                                f"cohort {name} (digest {str(getattr(cohort, 'digest', ''))[:16]})")
