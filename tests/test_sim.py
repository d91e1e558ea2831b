"""Virtual cohorts: determinism, the contract, and the calibration targets of spec/simulator.md.

Cumulative incidences are estimated with scikit-survival's Aalen-Johansen estimator
(sksurv.nonparametric.cumulative_incidence_competing_risks) and overall survival with its
Kaplan-Meier estimator: established implementations, not this project's code.
"""

import filecmp

import numpy as np
import pandas as pd
import pytest
from sksurv.nonparametric import cumulative_incidence_competing_risks, kaplan_meier_estimator

from ml.cohort import load_cohort, write_cohort
from ml.pk import model_exposure  # noqa: F401  (public API used by benchmarks)
from ml.sim import SimulationConfig, exposure_hazard_ratio, simulate_virtual, weibull_from_incidence
from ml.sim._calibrate import calibrate_baselines
from ml.sim._outcomes import TIME_TO_EVENT

WINDOW = (100.0, 148.5)


@pytest.fixture(scope="module")
def large():
    return simulate_virtual("urd", n=30000, seed=2026)


def _cif(outcomes: pd.DataFrame, event: np.ndarray, competing: np.ndarray, horizon: float, mask) -> float:
    """Aalen-Johansen CIF at ``horizon`` of ``event`` days with ``competing`` days (NaN = none)."""
    fu = outcomes["last_followup_day"].to_numpy(float)
    time = np.where(~np.isnan(event), event, np.where(~np.isnan(competing), competing, fu))
    code = np.where(~np.isnan(event), 1, np.where(~np.isnan(competing), 2, 0))
    t, cif = cumulative_incidence_competing_risks(code[mask], time[mask])
    return float(cif[1][np.searchsorted(t, horizon, side="right") - 1])


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a, b, c = (simulate_virtual("urd", n=40, seed=s).cohort for s in (5, 5, 6))
    for cohort, name in ((a, "a"), (b, "b"), (c, "c")):
        write_cohort(cohort, tmp_path / name)
    files = ["cohort.toml", "patients.csv", "atg_doses.csv", "atg_levels.csv", "outcomes.csv"]
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", files, shallow=False)
    assert match == files and not errors
    assert (tmp_path / "a" / "outcomes.csv").read_bytes() != (tmp_path / "c" / "outcomes.csv").read_bytes()


@pytest.mark.parametrize("scenario", ["urd", "haplo", "null", "shifted", "hinge"])
def test_every_scenario_writes_a_valid_cohort_with_its_truth(tmp_path, scenario):
    virtual = simulate_virtual(scenario, n=30, seed=1)
    write_cohort(virtual.cohort, tmp_path)
    cohort = load_cohort(tmp_path)
    spec = SimulationConfig.default().scenario(scenario)
    assert cohort.meta.simulated and cohort.meta.truth["lower"] == spec.lower and cohort.meta.truth["upper"] == spec.upper
    assert cohort.meta.donor_source == spec.donor_type
    assert cohort.digest == virtual.cohort.digest
    if scenario == "haplo":
        assert cohort.patients["hla_mismatches"].between(3, 5).all()


def test_explicit_bounds_override_the_scenario():
    cohort = simulate_virtual("urd", n=10, seed=0, lower=90, upper=160).cohort
    assert (cohort.meta.truth["lower"], cohort.meta.truth["upper"]) == (90.0, 160.0)
    with pytest.raises(ValueError, match="`lower < upper` must hold"):
        simulate_virtual("urd", n=10, seed=0, lower=150, upper=100)
    with pytest.raises(ValueError, match="unknown scenario 'nope'; known: urd, haplo"):
        simulate_virtual("nope")


def test_exposure_effects():
    urd, null, hinge = (SimulationConfig.default().scenario(s) for s in ("urd", "null", "hinge"))
    auc = np.array([50.0, 99.9, 100.0, 148.4, 148.5, 200.0])
    np.testing.assert_array_equal(exposure_hazard_ratio(auc, urd, 2.0, 0.9), [2.0, 2.0, 1.0, 1.0, 0.9, 0.9])
    np.testing.assert_array_equal(exposure_hazard_ratio(auc, null, 2.0, 0.9), np.ones(6))
    # hinge: log-HR linear in distance, equal to the step's at hinge_width (25) outside
    np.testing.assert_allclose(exposure_hazard_ratio(np.array([75.0, 173.5, 120.0]), hinge, 2.0, 1.9), [2.0, 1.9, 1.0])


def test_weibull_closed_form_reproduces_incidence_and_median():
    shape, scale = weibull_from_incidence(0.25, 100.0, 25.0)
    cdf = lambda t: 1 - np.exp(-((t / scale) ** shape))  # noqa: E731
    assert cdf(100.0) == pytest.approx(0.25, rel=1e-12) and cdf(25.0) / cdf(100.0) == pytest.approx(0.5, rel=1e-12)


def test_reference_patient_has_the_reference_incidence():
    """Monte Carlo check of the competing-risk calibration: 200,000 reference patients."""
    config = SimulationConfig.default()
    virtual = simulate_virtual("urd", n=5, seed=0)
    n = 200_000
    ref = pd.DataFrame({"patient_id": np.arange(n).astype(str), "donor_type": "URD", "age_years": 30.0,
                        "diagnosis": "AML", "disease_status": "CR1", "hla_mismatches": 0,
                        "cmv_recipient": "pos", "cmv_donor": "pos"})
    out = virtual.outcome_model.sample(ref, np.full(n, 120.0), np.random.default_rng(0))
    death = out["death_day"].to_numpy()
    # without censoring before the horizon, the CIF is the fraction with the event by then
    for endpoint, column in (("cmv", "cmv_day"), ("agvhd2", "agvhd2_day"), ("ebv", "ebv_day")):
        spec = config.outcomes[endpoint]
        horizon = spec["horizon_day"]
        observed = _cif(out, out[column].to_numpy(), death, horizon, np.ones(n, bool))
        assert observed == pytest.approx(spec["incidence"], abs=0.006), endpoint
    base = calibrate_baselines(config.outcomes, config.follow_up, TIME_TO_EVENT)
    assert set(base) == set(TIME_TO_EVENT)


def test_pk_calibration_targets(large):
    auc = large.truth["auc_total"].to_numpy()
    assert 110 <= np.median(auc) <= 130
    assert 0.35 <= np.mean((auc >= WINDOW[0]) & (auc < WINDOW[1])) <= 0.50


def test_half_life_and_time_below_one(large):
    """Terminal half-life 5-8 days; concentration below 1 UE/mL by a median day of 14-20."""
    from ml.pk import PopPKModel, infusions_from_doses, simulate

    cohort = large.cohort
    sub = cohort.patients.head(3000)
    model = PopPKModel.default()
    truth = large.truth.head(3000)
    params = model.individual(sub["weight_kg"], sub["alc_pre_atg"])
    params = type(params)(**{p: truth[p].to_numpy() for p in ("CL", "V1", "Q", "V2", "Vmax", "Km")})
    doses = cohort.doses[cohort.doses["patient_id"].isin(sub["patient_id"])]
    inf = infusions_from_doses(doses, sub["patient_id"], model.active_fraction)
    t = np.arange(0.0, 80.0, 0.25)
    c = simulate(params, inf, t)["concentration"]
    below = t[np.argmax(c < 1.0, axis=1)]
    assert 14 <= np.median(below) <= 20
    late = (t >= 40) & (t <= 70)
    slope = np.polyfit(t[late], np.log(c[:, late]).T, 1)[0]
    assert 5 <= np.median(np.log(2) / -slope) <= 8


def test_outcome_calibration_targets(large):
    o = large.cohort.outcomes
    p = large.cohort.patients
    auc = large.truth["auc_total"].to_numpy()
    inside = (auc >= WINDOW[0]) & (auc < WINDOW[1])
    below = auc < WINDOW[0]
    everyone = np.ones(len(o), bool)
    death = o["death_day"].to_numpy(float)
    relapse = o["relapse_day"].to_numpy(float)
    r_pos = (p["cmv_recipient"] == "pos").to_numpy()
    cmv = o["cmv_day"].to_numpy(float)
    assert 0.55 <= _cif(o, cmv, death, 180, r_pos & inside) <= 0.65
    assert 0.70 <= _cif(o, cmv, death, 180, r_pos & ~inside) <= 0.82
    assert 0.62 <= _cif(o, cmv, death, 180, everyone) <= 0.72
    agvhd2 = o["agvhd2_day"].to_numpy(float)
    assert 0.22 <= _cif(o, agvhd2, death, 100, inside) <= 0.28
    assert _cif(o, agvhd2, death, 100, below) >= 0.35
    horizon = 729.0  # 2 years; administrative censoring ends at day 730
    assert 0.18 <= _cif(o, relapse, death, horizon, everyone) <= 0.26
    nrm = np.where(np.isnan(relapse), death, np.nan)
    assert 0.12 <= _cif(o, nrm, relapse, horizon, everyone) <= 0.18
    t, s = kaplan_meier_estimator(~np.isnan(death), o["last_followup_day"].to_numpy(float))
    assert 0.62 <= s[np.searchsorted(t, horizon, side="right") - 1] <= 0.72


def test_cohort_contract_rules_hold_for_grades_and_flags(large):
    o = large.cohort.outcomes
    both = o["agvhd3_day"].notna()
    assert (o.loc[both, "agvhd2_day"] <= o.loc[both, "agvhd3_day"]).all()
    assert set(o["cmv_persistent"].dropna().unique()) <= {0, 1}
    assert (o.loc[o["cmv_persistent"] == 1, "cmv_day"].notna()).all()
