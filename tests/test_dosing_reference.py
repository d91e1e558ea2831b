"""The engine's numerics against references with provenance.

* MAP of a linear one-compartment model vs an independent fit of the closed-form solution
  (constant-rate infusion with superposition, Gibaldi & Perrier, *Pharmacokinetics*, 2nd ed.,
  ch. 2: ``C(t) = R/CL (1 - exp(-k tau)) exp(-k (t - s - tau))``, ``k = CL/V``), minimised by
  Nelder-Mead.
* Forecast of a linear model vs the identity ``AUC(0, inf) = dose / CL`` and vs the exact posterior
  by quadrature on a fine grid of random effects.
* The forecast step policy of the integrator: tests/test_pk_integrator.py (vs LSODA and dose / CL).
* The spline over the vial grid vs direct simulation of every regimen.
* The M3 likelihood of a BLOQ level vs ``scipy.stats.norm.logcdf``; weighted quantiles vs numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats

from ml.dosing import GivenDose, LaplaceImportance, Level, LevelLikelihood, PatientData, fit_map
from ml.dosing._forecast import node_levels, simulate_total_auc, spline_grid, weighted_quantile
from ml.dosing._regimen import AdjustmentSchedule
from ml.pk import Infusions, PopPKModel, simulate
from ml.pk._posterior import prune_draws

LINEAR = PopPKModel.default().with_typical(Q=1e-9)  # one compartment; ALC = 0 switches Vmax off
DOSES = (GivenDose(day=-5, dose_mg=175.0, infusion_hours=6.0), GivenDose(day=-4, dose_mg=175.0, infusion_hours=4.0))


def _one_cmt(t, cl, v, doses=DOSES, fraction=0.14):
    """Closed-form concentration (mg/L) of a one-compartment model after zero-order infusions.

    ``cl`` and ``v`` may be arrays (broadcast against ``t`` on a trailing axis).
    """
    cl, v = np.asarray(cl, dtype=float)[..., None], np.asarray(v, dtype=float)[..., None]
    k = cl / v
    c = 0.0
    for d in doses:
        s, tau, rate = d.start, d.infusion_hours / 24, d.dose_mg * fraction / (d.infusion_hours / 24)
        dt = np.asarray(t) - s
        during = np.clip(dt, 0, tau)
        c = c + np.where(dt > 0, rate / cl * (1 - np.exp(-k * during)) * np.exp(-k * np.maximum(dt - tau, 0)), 0.0)
    return c


def _patient(levels, pid="L1", weight=70.0, alc=0.0):
    return PatientData(patient_id=pid, weight_kg=weight, alc=alc, concentration_unit="UE/mL", doses=DOSES,
                       levels=tuple(levels))


LEVELS = (Level(-5 + 14 / 24, 8.1), Level(-4 + 8 / 24, 5.0), Level(-4 + 12 / 24, 12.5), Level(-3 + 8 / 24, 6.9))


def _closed_form_neg_log_post(eta, levels):
    """-log posterior of (eta_CL, eta_V1) from the closed form (arrays of etas broadcast)."""
    e_cl, e_v = np.asarray(eta[0], dtype=float), np.asarray(eta[1], dtype=float)
    cl = LINEAR.typical["CL"] * np.exp(e_cl)
    v = LINEAR.typical["V1"] * np.exp(e_v)
    t = np.array([lv.day for lv in levels])
    y = np.array([np.nan if lv.bloq else lv.concentration for lv in levels])
    pred = _one_cmt(t, cl, v)
    r = LINEAR.residual
    sd = np.sqrt((r["proportional"] * pred) ** 2 + r["additive"] ** 2)
    bloq = np.array([lv.bloq for lv in levels])
    ll = np.where(bloq, stats.norm.logcdf((r["lloq"] - pred) / sd), stats.norm.logpdf(y, pred, sd))
    return 0.5 * (e_cl / LINEAR.iiv["CL"]) ** 2 + 0.5 * (e_v / LINEAR.iiv["V1"]) ** 2 - ll.sum(axis=-1)


@pytest.mark.parametrize("levels", [LEVELS, LEVELS[:2] + (Level(-3 + 8 / 24, None, bloq=True),)],
                         ids=["quantified", "with a BLOQ level"])
def test_map_of_linear_one_compartment_matches_closed_form(levels):
    lik = LevelLikelihood.build(LINEAR, [_patient(levels)])
    fit = fit_map(lik)
    eta = dict(zip(lik.names, fit.z[0] * lik.omega))
    ref = optimize.minimize(_closed_form_neg_log_post, x0=[0.0, 0.0], args=(levels,), method="Nelder-Mead",
                            options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 5000})
    assert fit.converged[0]
    assert eta["CL"] == pytest.approx(ref.x[0], abs=2e-3)
    assert eta["V1"] == pytest.approx(ref.x[1], abs=2e-3)
    assert eta["Vmax"] == pytest.approx(0.0, abs=1e-6)  # no lymphocyte sink: prior only
    # the model concentrations at the MAP equal the closed form
    cl, v = LINEAR.typical["CL"] * np.exp(eta["CL"]), LINEAR.typical["V1"] * np.exp(eta["V1"])
    np.testing.assert_allclose(fit.pred[0, :len(levels)], _one_cmt([lv.day for lv in levels], cl, v), rtol=2e-3)


def test_m3_likelihood_of_bloq_level():
    lik = LevelLikelihood.build(LINEAR, [_patient((Level(-4.5, None, bloq=True), Level(-4.4, 3.0)))])
    pred = np.array([[[0.8, 2.5]]])
    r = LINEAR.residual
    sd = np.sqrt((r["proportional"] * pred[0, 0]) ** 2 + r["additive"] ** 2)
    expected = stats.norm.logcdf((r["lloq"] - 0.8) / sd[0]) + stats.norm.logpdf(3.0, 2.5, sd[1])
    assert lik.log_likelihood(pred)[0, 0] == pytest.approx(expected, rel=1e-12)


def test_forecast_of_linear_model_is_dose_over_clearance():
    """AUC(0, inf) = total active dose / CL for a linear model (any infusion timing)."""
    lik = LevelLikelihood.build(LINEAR, [_patient(LEVELS)])
    z = np.random.default_rng(0).normal(size=(1, 64, 3))
    regimens = [np.array([[0.0, 0.0], [100.0, 250.0], [500.0, 25.0]])]
    auc = simulate_total_auc(lik, z, regimens, AdjustmentSchedule())[0]
    cl = LINEAR.typical["CL"] * np.exp(z[0, :, 0] * LINEAR.iiv["CL"])
    dose = 0.14 * (350.0 + regimens[0].sum(axis=1))
    np.testing.assert_allclose(auc, dose[None, :] / cl[:, None], rtol=2e-3)


def test_forecast_interval_matches_exact_posterior_by_quadrature():
    """Laplace + importance sampling vs the exact posterior of a linear model (2-D quadrature).

    With AUC = D / CL, the posterior quantiles of AUC follow from those of eta_CL, which a fine
    grid over (eta_CL, eta_V1) gives to quadrature accuracy.
    """
    levels = LEVELS[:3]
    lik = LevelLikelihood.build(LINEAR, [_patient(levels)])
    fit = fit_map(lik)
    draws = prune_draws(LaplaceImportance(1024).draw(lik, fit, [np.random.default_rng(1)]), fit)
    doses = np.array([[150.0, 150.0]])
    auc = simulate_total_auc(lik, draws.z, [doses], AdjustmentSchedule())[0][:, 0]
    q = weighted_quantile(auc, draws.weight[0], [0.05, 0.5, 0.95])
    g1 = np.linspace(-2.0, 2.0, 401)
    g2 = np.linspace(-1.5, 1.5, 301)
    E1, E2 = np.meshgrid(g1, g2, indexing="ij")
    nlp = _closed_form_neg_log_post((E1, E2), levels)
    w = np.exp(-(nlp - nlp.min())).sum(axis=1)
    cdf = np.cumsum(w) / w.sum()
    eta_q = np.interp([0.95, 0.5, 0.05], cdf, g1)  # AUC decreases with CL
    ref = 0.14 * 650.0 / (LINEAR.typical["CL"] * np.exp(eta_q))
    np.testing.assert_allclose(q, ref, rtol=0.02)


def test_fit_predictions_match_library_simulation():
    """Concentrations at the level times (4 h steps) vs ml.pk.simulate at its default accuracy."""
    model = PopPKModel.default()
    rng = np.random.default_rng(8)
    patients = [PatientData(patient_id=f"F{i}", weight_kg=float(w), alc=float(a), concentration_unit="UE/mL",
                            doses=DOSES, levels=LEVELS)
                for i, (w, a) in enumerate(zip(rng.uniform(40, 120, 30), 0.3 * np.exp(rng.normal(0, 0.8, 30))))]
    lik = LevelLikelihood.build(model, patients)
    z = rng.normal(scale=1.5, size=(30, 1, 3))
    pred = lik.predict(z)[:, 0, :]
    params = model.individual(lik.weight, lik.alc, lik.eta(z[:, 0, :]))
    inf = Infusions(np.repeat(np.arange(30), 2), np.tile([d.start for d in DOSES], 30),
                    np.tile([d.infusion_hours / 24 for d in DOSES], 30), np.tile([d.dose_mg * 0.14 for d in DOSES], 30), 30)
    ref = simulate(params, inf, np.array([lv.day for lv in LEVELS]))["concentration"]
    np.testing.assert_allclose(pred, ref, rtol=3e-3)


def test_given_infusion_running_at_the_decision_is_continued():
    model = PopPKModel.default()
    long = (GivenDose(day=-5, dose_mg=175.0, infusion_hours=6.0), GivenDose(day=-4, dose_mg=175.0, infusion_hours=30.0))
    p = PatientData(patient_id="X", weight_kg=70.0, alc=0.3, concentration_unit="UE/mL", doses=long, levels=())
    lik = LevelLikelihood.build(model, [p])
    z = np.zeros((1, 1, 3))
    auc = simulate_total_auc(lik, z, [np.array([[100.0, 50.0]])], AdjustmentSchedule())[0][0, 0]
    starts = np.array([-5, -4, -3, -2]) + 8 / 24
    inf = Infusions(np.zeros(4, int), starts, np.array([6, 30, 4, 4]) / 24, np.array([175, 175, 100, 50]) * 0.14, 1)
    ref = simulate(model.individual(70.0, 0.3), inf)
    assert auc == pytest.approx(float(ref["auc_pre"][0] + ref["auc_post"][0]), rel=3e-3)


def test_spline_over_the_vial_grid_matches_direct_simulation():
    model = PopPKModel.default()
    p = PatientData(patient_id="S", weight_kg=100.0, alc=1.2, concentration_unit="UE/mL",
                    doses=(GivenDose(-5, 250.0, 6.0), GivenDose(-4, 250.0, 4.0)), levels=())
    lik = LevelLikelihood.build(model, [p])
    z = np.random.default_rng(3).normal(scale=1.5, size=(1, 32, 3))
    levels = np.arange(0, 21)  # 0..500 mg: the widest grid of the default caps
    every = np.stack(np.meshgrid(levels, levels, indexing="ij"), -1).reshape(-1, 2) * 25.0
    direct = simulate_total_auc(lik, z, [every], AdjustmentSchedule())[0]
    nodes = node_levels(0, 20, 4)
    node_regs = np.stack(np.meshgrid(nodes, nodes, indexing="ij"), -1).reshape(-1, 2) * 25.0
    approx = spline_grid(simulate_total_auc(lik, z, [node_regs], AdjustmentSchedule())[0], nodes, levels, 2)
    assert np.abs(approx - direct).max() < 0.2  # UE*day/mL
    assert (np.abs(approx - direct) / direct).max() < 2e-3


def test_weighted_quantile():
    x = np.random.default_rng(2).normal(size=2001)
    w = np.full(x.size, 1 / x.size)
    np.testing.assert_allclose(weighted_quantile(x, w, [0.05, 0.5, 0.95]),
                               np.quantile(x, [0.05, 0.5, 0.95]), atol=2e-3)
    # duplicated values and their weights are the same distribution
    y, wy = np.array([1.0, 2.0, 3.0]), np.array([0.25, 0.5, 0.25])
    assert weighted_quantile(y, wy, 0.5) == pytest.approx(2.0)
    assert weighted_quantile(np.array([[3.0, 1.0, 2.0]]), wy[[2, 0, 1]], 0.5)[0] == pytest.approx(2.0)
