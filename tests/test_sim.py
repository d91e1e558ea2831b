"""Virtual cohorts: determinism, the contract, and the calibration targets of the simulator (docs/sources.md).

Cumulative incidences are estimated with scikit-survival's Aalen-Johansen estimator
(sksurv.nonparametric.cumulative_incidence_competing_risks) and overall survival with its
Kaplan-Meier estimator: established implementations, not this project's code.
"""

import filecmp
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sksurv.nonparametric import cumulative_incidence_competing_risks, kaplan_meier_estimator

from ml.cohort import load_cohort, write_cohort
from ml.pk import model_exposure  # noqa: F401  (public API used by benchmarks)
from ml.sim import OutcomeModel, SimulationConfig, exposure_hazard_ratio, simulate_virtual, weibull_from_incidence
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


# --- one-sided, overlapping and scaled worlds -----------------------------------------------

NEW_SCENARIOS = ("floor-only", "ceiling-only", "overlap")
TABLES = ["cohort.toml", "patients.csv", "atg_doses.csv", "atg_levels.csv", "outcomes.csv"]


@pytest.mark.parametrize("scenario, kwargs", [(s, {}) for s in NEW_SCENARIOS] + [("urd", {"effect_scale": 0.5})])
def test_new_worlds_are_deterministic_and_share_patients_and_pk_with_urd(tmp_path, scenario, kwargs):
    """Same seed, same bytes; only the outcomes differ from urd (the PK streams are the same)."""
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        write_cohort(simulate_virtual(scenario, n=40, seed=seed, **kwargs).cohort, tmp_path / name)
    write_cohort(simulate_virtual("urd", n=40, seed=5).cohort, tmp_path / "urd")
    match, _, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", TABLES, shallow=False)
    assert match == TABLES and not errors
    assert (tmp_path / "a" / "outcomes.csv").read_bytes() != (tmp_path / "c" / "outcomes.csv").read_bytes()
    same, differ, _ = filecmp.cmpfiles(tmp_path / "a", tmp_path / "urd", TABLES, shallow=False)
    assert same == ["patients.csv", "atg_doses.csv", "atg_levels.csv"]
    assert differ == ["cohort.toml", "outcomes.csv"]


# Expected [truth] per scenario, written out from the brief (floor = L, ceiling = U, absent for a
# side without effect; lower/upper the window to find, open on that side, nan for an overlap).
EXPECTED_TRUTH = {
    "urd": dict(lower=100.0, upper=148.5, floor=100.0, ceiling=148.5, overlap=False),
    "null": dict(lower=100.0, upper=148.5, overlap=False),
    "floor-only": dict(lower=100.0, upper=np.inf, floor=100.0, overlap=False),
    "ceiling-only": dict(lower=-np.inf, upper=148.5, ceiling=148.5, overlap=False),
    "overlap": dict(lower=np.nan, upper=np.nan, floor=135.0, ceiling=110.0, overlap=True),
}


@pytest.mark.parametrize("scenario", list(EXPECTED_TRUTH))
def test_truth_records_sides_and_bounds_and_survives_a_round_trip(tmp_path, scenario):
    virtual = simulate_virtual(scenario, n=20, seed=1)
    write_cohort(virtual.cohort, tmp_path)
    truth = load_cohort(tmp_path).meta.truth
    expected = {**EXPECTED_TRUTH[scenario], "effect_scale": 1.0}
    # old keys first, in their old order (existing readers), then the new ones
    assert list(truth)[:6] == ["scenario", "effect", "lower", "upper", "seed", "pk_model"]
    assert set(truth) - {"scenario", "effect", "seed", "pk_model"} == set(expected)
    for key, value in expected.items():
        assert truth[key] == value or (np.isnan(value) and np.isnan(truth[key])), key
    assert load_cohort(tmp_path).digest == virtual.cohort.digest
    scaled = simulate_virtual(scenario, n=5, seed=1, effect_scale=0.5).cohort.meta.truth
    assert scaled["effect_scale"] == 0.5
    none = simulate_virtual(scenario, n=5, seed=1, effect_scale=0).cohort.meta.truth
    assert "floor" not in none and "ceiling" not in none


def test_side_and_scale_hazard_ratios():
    cfg = SimulationConfig.default()
    floor, ceiling, overlap = (cfg.scenario(s) for s in NEW_SCENARIOS)
    auc = np.array([50.0, 99.9, 100.0, 148.4, 148.5, 200.0])
    np.testing.assert_array_equal(exposure_hazard_ratio(auc, floor, 2.0, 0.9), [2.0, 2.0, 1, 1, 1, 1])
    np.testing.assert_array_equal(exposure_hazard_ratio(auc, ceiling, 2.0, 0.9), [1, 1, 1, 1, 0.9, 0.9])
    auc = np.array([109.9, 110.0, 134.9, 135.0])  # overlap: hr_lo below 135, hr_hi from 110
    np.testing.assert_allclose(exposure_hazard_ratio(auc, overlap, 2.0, 1.9), [2.0, 3.8, 3.8, 1.9], rtol=1e-15)
    half = replace(cfg.scenario("urd"), effect_scale=0.5)
    np.testing.assert_allclose(exposure_hazard_ratio(np.array([50.0, 120.0, 200.0]), half, 4.0, 0.81), [2, 1, 0.9])
    hinge = replace(cfg.scenario("hinge"), sides=("ceiling",), effect_scale=2.0)
    np.testing.assert_allclose(exposure_hazard_ratio(np.array([75.0, 173.5]), hinge, 2.0, 1.5), [1.0, 2.25])


@pytest.mark.parametrize("spec, message", [
    (dict(lower=150.0, upper=100.0), r"`lower < upper` must hold.*only a scenario with `overlap = true`"),
    (dict(overlap=True), r"overlap = true needs `lower >= upper`"),
    (dict(lower=135.0, upper=110.0, overlap=True, sides=["floor"]), "overlap = true needs effects on both sides"),
    (dict(sides=["floor", "roof"]), r"sides must be a non-empty list of \['floor', 'ceiling'\]"),
    (dict(sides=[]), "sides must be a non-empty list"),
    (dict(sides="floor"), "sides must be a non-empty list"),
    (dict(effect_scale=-0.5), "effect_scale must be a finite number >= 0"),
    (dict(overlap="yes"), "overlap must be true or false"),
    (dict(window=3), r"\[scenarios.bad\]: unknown key\(s\) window; known: n, donor_type"),
])
def test_bad_scenarios_get_a_clear_message(spec, message):
    base = dict(n=10, donor_type="URD", effect="step", lower=100.0, upper=148.5)
    with pytest.raises(ValueError, match=message):
        SimulationConfig.from_toml_string(_config_text_with_scenario({**base, **spec}))


def _config_text_with_scenario(spec: dict) -> str:
    """The shipped TOML text plus a scenario ``bad`` (TOML values written by hand)."""
    from importlib import resources

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    text = resources.files("ml.sim").joinpath("default_scenarios.toml").read_text()
    return text + "\n[scenarios.bad]\n" + "".join(f"{k} = {value(v)}\n" for k, v in spec.items())


def test_simulate_takes_another_pk_model_object_or_file(tmp_path):
    """A world whose PK differs from the shipped prior: clearance doubled lowers every AUC."""
    from ml.pk import PopPKModel

    prior = PopPKModel.default()
    other = replace(prior, typical={**prior.typical, "CL": 2 * prior.typical["CL"]}, name="cl-doubled")
    (tmp_path / "other.toml").write_text(other.to_toml_string())
    base = simulate_virtual("urd", n=30, seed=4)
    by_object = simulate_virtual("urd", n=30, seed=4, pk_model=other)
    by_file = simulate_virtual("urd", n=30, seed=4, pk_model=tmp_path / "other.toml")
    assert by_object.cohort.meta.truth["pk_model"] == "cl-doubled" == by_file.cohort.meta.truth["pk_model"]
    np.testing.assert_allclose(by_file.truth["auc_total"], by_object.truth["auc_total"], rtol=1e-12)
    assert (by_object.truth["auc_total"] < base.truth["auc_total"]).all()


def _nelson_aalen_at(outcomes, column, horizon, mask) -> tuple[float, int]:
    """Cause-specific cumulative hazard by ``horizon`` (competing events censor) and events."""
    from sksurv.nonparametric import nelson_aalen_estimator

    event_day = outcomes[column].to_numpy(float)
    event = ~np.isnan(event_day)
    time = np.where(event, event_day, outcomes["last_followup_day"].to_numpy(float))
    t, h = nelson_aalen_estimator(event[mask], time[mask])
    return float(h[np.searchsorted(t, horizon, side="right") - 1]), int((event & (time <= horizon))[mask].sum())


# endpoint, outcome column, horizon (day), stratum in which exposure is the only hazard factor
_STRATA = {"cmv": ("cmv_day", 180.0, lambda p: (p["cmv_recipient"] == "pos").to_numpy()),
           "agvhd2": ("agvhd2_day", 100.0, lambda p: (p["hla_mismatches"] == 0).to_numpy()),
           "ebv": ("ebv_day", 365.0, lambda p: np.ones(len(p), bool))}


def _world(large, scenario, **changes):
    cfg = SimulationConfig.default()
    spec = replace(cfg.scenario(scenario), **changes)
    model = OutcomeModel(cfg.outcomes, cfg.follow_up, cfg.engraftment, spec)
    auc = large.truth["auc_total"].to_numpy()
    return spec, auc, model.sample(large.cohort.patients, auc, np.random.default_rng(11))


@pytest.mark.parametrize("scenario, changes", [("floor-only", {}), ("ceiling-only", {}), ("overlap", {}),
                                               ("urd", {"effect_scale": 0.5}), ("urd", {"effect_scale": 1.5})])
def test_new_worlds_have_the_intended_hazard_ratios(large, scenario, changes):
    """Nelson-Aalen (scikit-survival) cause-specific hazard ratios against the outcome table.

    Within the stratum where exposure is the only hazard factor, the ratio of cumulative
    cause-specific hazards of two exposure groups is the hazard ratio (proportional hazards).
    Expected values come straight from ``[outcomes.*]``: ``hr_lo`` below L and ``hr_hi`` at or
    above U for the sides the scenario keeps (1 otherwise), raised to ``effect_scale``.
    Tolerance: 4 standard errors of the log ratio, ``sqrt(1/d1 + 1/d2)``.
    """
    spec, auc, out = _world(large, scenario, **changes)
    table, scale = SimulationConfig.default().outcomes, changes.get("effect_scale", 1.0)
    lo, hi = spec.lower, spec.upper
    for endpoint, (column, horizon, stratum) in _STRATA.items():
        keep = stratum(large.cohort.patients)
        hr_lo = table[endpoint]["hr_lo"] ** scale if scenario != "ceiling-only" else 1.0
        hr_hi = table[endpoint]["hr_hi"] ** scale if scenario != "floor-only" else 1.0
        if spec.overlap:  # groups: below U (hr_lo), both [U, L) (hr_lo hr_hi), from L (hr_hi)
            groups = {"below": auc < hi, "both": (auc >= hi) & (auc < lo), "above": auc >= lo}
            expected = {"below": hr_lo, "both": hr_lo * hr_hi, "above": hr_hi}
            reference = "above"
            expected = {k: v / hr_hi for k, v in expected.items()}
        else:
            groups = {"below": auc < lo, "inside": (auc >= lo) & (auc < hi), "above": auc >= hi}
            expected = {"below": hr_lo, "inside": 1.0, "above": hr_hi}
            reference = "inside"
        h_ref, d_ref = _nelson_aalen_at(out, column, horizon, keep & groups[reference])
        for group, mask in groups.items():
            if group == reference:
                continue
            h, d = _nelson_aalen_at(out, column, horizon, keep & mask)
            se = np.sqrt(1 / d + 1 / d_ref)
            assert abs(np.log(h / h_ref) - np.log(expected[group])) < 4 * se, (endpoint, group, h / h_ref)


def test_one_sided_worlds_raise_only_their_side(large):
    """The calibration-test style: Aalen-Johansen incidences below / inside / above the window."""
    p = large.cohort.patients
    r_pos = (p["cmv_recipient"] == "pos").to_numpy()
    cif = {}
    for scenario in ("floor-only", "ceiling-only"):
        spec, auc, o = _world(large, scenario)
        groups = {"below": auc < spec.lower, "inside": (auc >= spec.lower) & (auc < spec.upper),
                  "above": auc >= spec.upper}
        death = o["death_day"].to_numpy(float)
        for g, mask in groups.items():
            cif[scenario, "cmv", g] = _cif(o, o["cmv_day"].to_numpy(float), death, 180, r_pos & mask)
            cif[scenario, "agvhd2", g] = _cif(o, o["agvhd2_day"].to_numpy(float), death, 100, mask)
    # CMV (R+) by day 180 above U: raised in ceiling-only (HR 1.9), not in floor-only
    assert cif["ceiling-only", "cmv", "above"] - cif["ceiling-only", "cmv", "inside"] >= 0.12
    assert abs(cif["floor-only", "cmv", "above"] - cif["floor-only", "cmv", "inside"]) <= 0.03
    # aGVHD II-IV by day 100 below L: raised in floor-only (HR 2.0), not in ceiling-only
    assert cif["floor-only", "agvhd2", "below"] - cif["floor-only", "agvhd2", "inside"] >= 0.12
    assert abs(cif["ceiling-only", "agvhd2", "below"] - cif["ceiling-only", "agvhd2", "inside"]) <= 0.03
