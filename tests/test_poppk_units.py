"""Building blocks of the population PK fit, against closed forms and reference code.

References: scipy.stats (normal log-density and log-CDF: the M3 likelihood of Beal 2001);
central finite differences for every analytic derivative; ml.pk.simulate with a 30-minute
step as the reference solution of the ODE; a direct Cholesky whitening for CWRES;
PopPKModel.individual for the mu-referenced parameterisation.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from ml.pk import PopPKModel, simulate
from ml.poppk import (
    CombinedError,
    PopPKData,
    PopPKFit,
    cv_from_omega,
    read_model,
    simulate_pk_cohort,
    time_bins,
    write_model,
)
from ml.poppk._data import replicate_infusions
from ml.poppk._error import loglik_terms, residual_gradient, score_and_information
from ml.poppk._linearization import linearize
from ml.poppk._structural import Predictor, Theta, covariate_matrix, log_params, population_mean

MODEL = PopPKModel.default()


@pytest.fixture(scope="module")
def small():
    cohort = simulate_pk_cohort(MODEL, n=30, seed=3)
    data = PopPKData.from_cohort(cohort, active_fraction=0.14, lloq=0.5)
    return cohort, data


# -- residual error and M3 likelihood -----------------------------------------------------
@pytest.mark.parametrize("form", ["variance", "sd"])
def test_loglik_matches_scipy(form):
    rng = np.random.default_rng(0)
    f = rng.uniform(0.0, 20.0, size=50)
    y = f * (1 + 0.2 * rng.standard_normal(50)) + 0.3 * rng.standard_normal(50)
    bloq = y < 0.5
    err = CombinedError(form)
    got = loglik_terms(f, np.where(bloq, np.nan, y), ~bloq, bloq, 0.5, 0.3, 0.2, err)
    sd = np.sqrt(0.09 + (0.2 * f) ** 2) if form == "variance" else 0.3 + 0.2 * f
    want = np.where(bloq, norm.logcdf(0.5, f, sd), norm.logpdf(y, f, sd))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("form", ["variance", "sd"])
def test_score_and_residual_gradient_match_finite_differences(form):
    rng = np.random.default_rng(1)
    f = rng.uniform(0.05, 15.0, size=40)
    y = f * (1 + 0.2 * rng.standard_normal(40)) + 0.3 * rng.standard_normal(40)
    bloq = y < 0.5
    y = np.where(bloq, np.nan, y)
    err, a, b, h = CombinedError(form), 0.3, 0.2, 1e-6

    def ll(ff, aa=a, bb=b):
        return loglik_terms(ff, y, ~bloq, bloq, 0.5, aa, bb, err)

    score, info = score_and_information(f, y, ~bloq, bloq, 0.5, a, b, err)
    np.testing.assert_allclose(score, (ll(f + h) - ll(f - h)) / (2 * h), rtol=1e-5, atol=1e-6)
    assert np.all(info > 0)
    grad = residual_gradient(f, y, ~bloq, bloq, 0.5, a, b, err)
    num = [(ll(f, a * math.exp(h), b).sum() - ll(f, a * math.exp(-h), b).sum()) / (2 * h),
           (ll(f, a, b * math.exp(h)).sum() - ll(f, a, b * math.exp(-h)).sum()) / (2 * h)]
    np.testing.assert_allclose(grad, num, rtol=1e-5)


def test_combined_error_rejects_unknown_form():
    with pytest.raises(ValueError, match="CombinedError.form must be 'variance' or 'sd', got 'log'"):
        CombinedError("log")


def test_cv_from_omega_closed_form():
    assert cv_from_omega(0.35) == pytest.approx(math.sqrt(math.exp(0.35**2) - 1))
    assert cv_from_omega(0.0) == 0.0


# -- data set -----------------------------------------------------------------------------
def test_data_from_tables_handles_exclusions_and_missing_alc():
    patients = pd.DataFrame({"patient_id": ["a", "b", "c", "d"], "weight_kg": [60, 70, 80, 90],
                             "alc_pre_atg": [0.3, np.nan, 0.0, 0.5]})
    doses = pd.DataFrame({"patient_id": ["a", "b", "c"], "day": [-5, -5, -5],
                          "start_hour": [8.0, 8.0, 8.0], "dose_mg": [150.0, 175, 200],
                          "infusion_hours": [6.0, 6, 6]})
    levels = pd.DataFrame({"patient_id": ["a", "a", "b", "c", "d"],
                           "day": [-4.0, 0.0, -4.0, -4.0, -4.0],
                           "concentration": [5.0, np.nan, 4.0, 3.0, 2.0], "bloq": [0, 1, 0, 0, 0]})
    data = PopPKData.from_tables(patients, doses, levels, active_fraction=0.14, lloq=0.5)
    assert data.patient_id.tolist() == ["a", "b", "c"]
    assert data.excluded == (("d", "no ATG doses"),)
    assert data.alc.tolist() == [0.3, 0.3, 0.01]
    assert len(data.notes) == 2
    assert data.n_observed == 3 and data.n_bloq == 1
    assert data.observed[0].tolist() == [True, False] and data.bloq[0].tolist() == [False, True]
    assert not data.observed[1, 1] and not data.bloq[1, 1]      # padding
    np.testing.assert_allclose(data.infusions.amount, [21.0, 24.5, 28.0])


def test_replicate_infusions_repeats_patients(small):
    _, data = small
    rows = np.array([2, 0, 2])
    inf = replicate_infusions(data.infusions, rows)
    assert inf.n_patients == 3
    for new, old in enumerate(rows):
        np.testing.assert_allclose(np.sort(inf.start[inf.patient == new]),
                                   np.sort(data.infusions.start[data.infusions.patient == old]))


# -- structural model ---------------------------------------------------------------------
def test_mu_referencing_reproduces_model_individual(small):
    _, data = small
    theta = Theta.from_model(MODEL)
    x = covariate_matrix(data, MODEL.covariates)
    rng = np.random.default_rng(2)
    eta = rng.normal(0, 0.3, size=(data.n, 3))
    logp = log_params(population_mean(theta.beta, x) + eta, theta.log_fixed)
    ref = MODEL.individual(data.weight_kg, data.alc, {"CL": eta[:, 0], "V1": eta[:, 1],
                                                      "Vmax": eta[:, 2]})
    np.testing.assert_allclose(np.exp(logp), ref.as_array(), rtol=1e-12)
    back = theta.to_model(MODEL)
    assert back.typical == pytest.approx(MODEL.typical)
    assert back.iiv == pytest.approx(MODEL.iiv)


def test_predictor_matches_fine_step_simulation(small):
    _, data = small
    params = MODEL.individual(data.weight_kg, data.alc, MODEL.sample_eta(data.n, np.random.default_rng(4)))
    ref = simulate(params, data.infusions, data.times, t_end=61.0,
                   phase_steps=((-np.inf, 1 / 48), (1.0, 1 / 48)))["concentration"]
    got = Predictor(data)(np.log(params.as_array()))
    assert np.max(np.abs(got - ref) / np.maximum(ref, MODEL.residual["lloq"])) < 2e-3


def test_predictor_returns_nan_outside_support(small):
    _, data = small
    logp = np.log(np.tile(MODEL.individual(70.0, 0.3).as_array(), (2, 1)))
    logp[1, 1] = np.log(0.01)            # V1 of 10 mL: stiffness far above the support
    f = Predictor(data.take(np.array([0, 0])))(logp)
    assert np.isfinite(f[0]).all() and np.isnan(f[1]).all()


def test_cwres_are_whitened_residuals():
    rng = np.random.default_rng(6)
    n, m = 3, 5
    f = rng.uniform(1, 10, size=(n, m))
    jac = rng.normal(size=(n, m, 3))
    phi, mu = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    omega2 = np.array([0.1, 0.05, 0.3])
    y = f + rng.normal(size=(n, m))
    observed = np.ones((n, m), bool)
    observed[0, 2] = False
    lin = linearize(y, observed, f, jac, phi, mu, omega2, 0.3, 0.2, CombinedError())
    i, keep = 0, observed[0]
    mean = f[i] - jac[i] @ (phi[i] - mu[i])
    cov = jac[i] @ np.diag(omega2) @ jac[i].T + np.diag(0.09 + 0.04 * f[i] ** 2)
    chol = np.linalg.cholesky(cov[np.ix_(keep, keep)])
    np.testing.assert_allclose(lin.cwres[i, keep], np.linalg.solve(chol, (y[i] - mean)[keep]))
    assert np.isnan(lin.cwres[0, 2])


# -- VPC bins and model files ---------------------------------------------------------------
def test_time_bins_follow_the_nominal_design(small):
    _, data = small
    edges = time_bins(data.times[data.observed | data.bloq])
    assert edges.size - 1 == 17
    which = np.searchsorted(edges, np.array([-5 + 8 / 24, 60 + 8 / 24]), side="right") - 1
    assert which.tolist() == [0, 16]


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_model_file_round_trip(tmp_path, suffix):
    model = Theta.from_model(MODEL).to_model(
        MODEL, status="fitted", extra={"fit": {"algorithm": "SAEM", "n_patients": 324.0},
                                       "se_typical": {"CL": 0.02}})
    path = write_model(model, tmp_path / f"model{suffix}")
    back = read_model(path)
    assert back == model
    if suffix == ".json":
        data = json.loads(path.read_text())
        assert set(data) >= {"model", "typical", "covariates", "iiv", "residual"}
    else:
        assert PopPKModel.from_toml(path) == model


# -- deterministic objectives and held parameters -----------------------------------------
def test_importance_sampling_with_fixed_draws_matches_the_fit_estimator(small):
    """MarginalObjective.importance is importance_sampling_loglik with its draws fixed: the
    same draws give the same value, and repeated calls give the same number."""
    from ml.poppk._ebe import conditional_modes, importance_sampling_loglik, t_draws
    from ml.poppk._objective import MarginalObjective
    _, data = small
    predict, x = Predictor(data), covariate_matrix(data, MODEL.covariates)
    theta = Theta.from_model(MODEL)
    obj = MarginalObjective(predict, x, CombinedError(), n_samples=200, random_state=8)
    first, again = obj.importance(theta), obj.importance(theta)
    assert again.ofv == pytest.approx(first.ofv, abs=1e-4)    # modes warm-started, tol 1e-5
    mu = population_mean(theta.beta, x)
    modes = conditional_modes(predict, mu, mu, theta.omega2, theta.log_fixed, theta.a, theta.b,
                              CombinedError(), tol=1e-5)
    u = t_draws(np.random.default_rng(8), 200, data.n, 3, 5.0)
    ll, se = importance_sampling_loglik(predict, modes, mu, theta.omega2, theta.log_fixed,
                                        theta.a, theta.b, CombinedError(), None, u=u)
    assert first.ofv == pytest.approx(-2.0 * ll, abs=1e-6)
    assert first.se == pytest.approx(2.0 * se, rel=1e-6)


def test_laplace_is_close_to_importance_sampling(small):
    """Laplace and importance sampling agree to about 0.1 unit of -2LL per patient (they are
    two approximations of one integral; the IS estimate is consistent)."""
    from ml.poppk._objective import MarginalObjective
    _, data = small
    obj = MarginalObjective(Predictor(data), covariate_matrix(data, MODEL.covariates),
                            CombinedError(), n_samples=1000, random_state=9)
    theta = Theta.from_model(MODEL)
    lap, imp = obj.laplace(theta), obj.importance(theta)
    assert abs(lap.ofv - imp.ofv) < 0.15 * data.n + 3 * imp.se


def test_held_km_stays_at_its_start(small):
    cohort, _ = small
    start = MODEL.with_typical(Km=8.0)
    fit = PopPKFit(start, n_explore=20, n_smooth=5, n_importance=0, fixed=("Km",),
                   random_state=0).fit(cohort)
    assert fit.result_.typical["Km"] == pytest.approx(8.0, rel=1e-12)
    assert math.isnan(fit.result_.se["typical.Km"]) and fit.result_.se["typical.CL"] > 0
    assert fit.result_.typical["Q"] != pytest.approx(MODEL.typical["Q"], rel=1e-9)


# -- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    ({"n_explore": 5}, "n_explore must be >= 20 (burn-in and exploration), got 5"),
    ({"n_smooth": 0}, "n_smooth must be an integer >= 1, got 0"),
    ({"n_chains": 1.5}, "n_chains must be an integer >= 1, got 1.5"),
    ({"n_importance": -1}, "n_importance must be an integer >= 0, got -1"),
    ({"lloq": -0.5}, "lloq must be >= 0, got -0.5"),
    ({"fixed": ("CL",)}, "fixed must name parameters among ('Q', 'V2', 'Km'), got ['CL']"),
])
def test_fit_rejects_bad_settings(small, kwargs, message):
    cohort, _ = small
    with pytest.raises(ValueError, match=re_escape(message)):
        PopPKFit(**kwargs).fit(cohort)


def test_fit_refuses_a_cohort_without_levels(small):
    cohort, _ = small
    from dataclasses import replace
    with pytest.raises(ValueError, match="needs atg_doses and atg_levels"):
        PopPKFit().fit(replace(cohort, levels=None))


def test_unfitted_estimator_says_so():
    with pytest.raises(RuntimeError, match="not fitted yet"):
        PopPKFit().summary()


def re_escape(text: str) -> str:
    import re
    return re.escape(text)


# -- the residual M-step of SAEM --------------------------------------------------------------
@pytest.mark.parametrize("form", ["variance", "sd"])
@pytest.mark.parametrize("start", [(0.3, 0.2), (0.05, 0.9), (2.0, 0.01)])
def test_residual_mstep_reaches_the_lbfgsb_optimum(small, form, start):
    """The Newton M-step of (a, b) against scipy's L-BFGS-B (tight tolerances) on the same
    complete-data likelihood, M3 censored samples included."""
    from scipy.optimize import minimize

    from ml.poppk._error import loglik
    from ml.poppk._saem import residual_mstep
    _, data = small
    assert data.bloq.any()
    x, theta = covariate_matrix(data, MODEL.covariates), Theta.from_model(MODEL)
    phi = population_mean(theta.beta, x) + np.random.default_rng(2).normal(0, 0.3, (data.n, 3))
    f = Predictor(data)(log_params(phi, theta.log_fixed))
    err = CombinedError(form)

    def objective(v):
        a, b = np.exp(v)
        return (-loglik(f, data.conc, data.observed, data.bloq, data.lloq, a, b, err).sum(),
                -residual_gradient(f, data.conc, data.observed, data.bloq, data.lloq, a, b, err))

    ref = minimize(objective, np.log([0.3, 0.2]), jac=True, method="L-BFGS-B",
                   options={"ftol": 1e-15, "gtol": 1e-10})
    got = residual_mstep(f, data.conc, data.observed, data.bloq, data.lloq, *start, err)
    assert got == pytest.approx(tuple(np.exp(ref.x)), rel=1e-5)
