"""The trial stated for its planners (issue 12, part 5): closed-form power and n, arm rates, oracles.

References:
- Fleiss, Levin & Paik, *Statistical Methods for Rates and Proportions*, 3rd ed. (2003), eq. 4.14
  without continuity correction; worked by hand below for p1 = 0.5, p2 = 0.4, alpha 0.05, 80 %:
  pbar = 0.45, sqrt(2 * 0.45 * 0.55) = 0.703562, sqrt(0.25 + 0.24) = 0.7,
  n = (1.959964 * 0.703562 + 0.841621 * 0.7)^2 / 0.1^2 = (1.378956 + 0.589135)^2 / 0.01 = 387.34.
- Monte Carlo of the trial's own test (``two_proportion_test``) on binomial draws, and on trial
  replicates drawn from a virtual population (``replicate_power``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.dosing import (
    DosingEngine,
    LaplaceImportance,
    TrialPlanner,
    closest_regimen_auc,
    endpoint_rates,
    iiv_split,
    replicate_power,
    two_proportion_n,
    two_proportion_power,
)
from ml.dosing._trial import two_proportion_test
from ml.pk import PopPKModel
from ml.sim import simulate_virtual


def test_sample_size_matches_the_hand_computed_fleiss_value():
    assert two_proportion_n(0.5, 0.4, 0.8, 0.05) == pytest.approx(387.34, abs=0.02)
    # and the power formula is its inverse (up to the far tail, < 1e-6 here)
    assert two_proportion_power(0.5, 0.4, 387.34, 0.05) == pytest.approx(0.8, abs=1e-3)
    assert two_proportion_n(0.3, 0.3) == math.inf
    assert two_proportion_power(0.3, 0.3, 100) == pytest.approx(0.05, abs=1e-9)  # size of the test


def test_closed_form_power_matches_monte_carlo_of_the_trials_test():
    rng = np.random.default_rng(0)
    p1, p2, n = 0.60, 0.70, 162
    reps = 6000
    hits = np.mean([two_proportion_test(rng.binomial(n, p1), n, rng.binomial(n, p2), n) < 0.05 for _ in range(reps)])
    se = math.sqrt(hits * (1 - hits) / reps)
    assert abs(hits - two_proportion_power(p1, p2, n)) < 4 * se


def test_arm_rates_closed_form_agrees_with_replicate_trials_at_n_324():
    """Rates from a virtual population + closed form vs Monte Carlo trials of 324 drawn from it."""
    v = simulate_virtual("urd", n=1500, seed=4, effect_scale=3.0)  # strong effect: power near 50 %
    auc = np.full(1500, 124.25)                                     # individualised arm: all in window
    rates = endpoint_rates(v, auc, outcome_draws=30, random_state=5)
    assert rates.attain_individualised == 1.0 and rates.above_individualised == 0.0
    assert rates.p_individualised < rates.p_fixed  # no over-exposure, less CMV
    power, se = replicate_power(v, auc, 324, reps=600, random_state=7)
    closed = rates.power(324)
    assert 0.2 < closed < 0.8
    assert abs(power - closed) < 3 * se + 0.03  # 0.03: noise of the estimated rates
    # n for 80 % is where the closed form crosses 0.8 (rounded up to an even number)
    n80 = rates.n_for(0.8)
    assert n80 % 2 == 0 and rates.power(int(n80)) >= 0.8 > rates.power(int(n80) - 4)


def test_iiv_split_keeps_the_total_and_moves_it():
    m = PopPKModel.default()
    total = m.iiv["CL"] ** 2 + m.iiv["V1"] ** 2
    s = iiv_split(m, 0.95)
    assert s.iiv["CL"] ** 2 + s.iiv["V1"] ** 2 == pytest.approx(total)
    assert s.iiv["CL"] ** 2 / total == pytest.approx(0.95)
    assert s.iiv["Vmax"] == m.iiv["Vmax"] and s.typical == m.typical
    with pytest.raises(ValueError, match="cl_share"):
        iiv_split(m, 1.5)


def test_closest_regimen_under_true_pk_is_never_further_from_target_than_fixed():
    v = simulate_virtual("urd", n=60, seed=3)
    best = closest_regimen_auc(v, 124.25)
    fixed = v.truth["auc_total"].to_numpy()
    # the fixed regimen (2.5 mg/kg/day rounded to vials, both days) is one of the candidates
    assert np.all(np.abs(best - 124.25) <= np.abs(fixed - 124.25) + 1e-9)
    inside = lambda a: np.mean((a >= 100) & (a < 148.5))  # noqa: E731
    assert inside(best) > inside(fixed) + 0.2


def test_planner_rows_small():
    engine = DosingEngine(posterior=LaplaceImportance(16), nodes_per_day=2, random_state=1)
    plan = TrialPlanner(engine, population=30, outcome_draws=3, cl_shares=(0.95,), effect_scales=(2.0,),
                        random_state=1).run()
    groups = [r.group for r in plan.rows]
    assert groups == ["registered design", "sampling / adjustment", "sampling / adjustment", "CL/V1 variability",
                      "exposure-CMV effect", "oracle", "oracle"]
    base, effect, centre = plan.rows[0], plan.rows[4], plan.rows[-1]
    # the effect line re-uses the registered design's exposures; only the outcome model changes
    assert effect.rates.attain_individualised == base.rates.attain_individualised
    assert centre.rates.attain_individualised == 1.0 and centre.rates.above_individualised == 0.0
    for r in plan.rows:
        assert r.power == pytest.approx(r.rates.power(324))
        assert r.rates.attain_fixed == base.rates.attain_fixed or r.group == "CL/V1 variability"
    md = plan.to_markdown()
    assert "power at n = 324" in md and "only the day -2 dose adjusted" in md
    assert len(plan.to_frame()) == 7


def test_true_auc_under_reproduces_the_simulators_own_auc():
    from ml.dosing import AdjustmentSchedule
    from ml.dosing._trial import true_auc_under

    v = simulate_virtual("urd", n=25, seed=8)
    sched, ind, model = AdjustmentSchedule(), np.arange(25), PopPKModel.default()
    truth = v.truth["auc_total"].to_numpy()
    kept = true_auc_under(model, v.cohort, v.truth, ind, np.full((25, 2), np.nan), sched)
    assert np.allclose(kept, truth, rtol=1e-9)
    d = v.cohort.doses
    given = d[d["day"].isin([-3, -2])].pivot(index="patient_id", columns="day", values="dose_mg")
    given = given.loc[v.cohort.patients["patient_id"], [-3, -2]].to_numpy(float)
    assert np.allclose(true_auc_under(model, v.cohort, v.truth, ind, given, sched), truth, rtol=1e-6)
    more = true_auc_under(model, v.cohort, v.truth, ind, 2 * given, sched)
    assert np.all(more > truth)


def test_arm_rates_use_common_random_numbers():
    v = simulate_virtual("urd", n=200, seed=2)
    same = endpoint_rates(v, v.truth["auc_total"].to_numpy(), outcome_draws=3, random_state=4)
    # identical exposures in both arms: identical outcomes, so no difference at all (not merely a small one)
    assert same.p_individualised == same.p_fixed
    assert same.n_for() == math.inf and same.power(324) == pytest.approx(0.05, abs=1e-9)
