"""Behaviour of the dosing engine on virtual patients drawn from its own population model.

The virtual patients' true PK parameters are known, so forecasts are checked against the truth
(coverage of the 90 % interval, bias) and recommendations by the true AUC they produce.
"""

from __future__ import annotations

import numpy as np
import pytest

from ml.dosing import (
    DoseCaps,
    DosingEngine,
    DosingRefused,
    LaplaceImportance,
    PatientData,
    PriorImportance,
    WindowOverride,
)
from ml.pk import round_to_vials

from test_dosing_support import dosing_window, hand_edited, true_total_auc, virtual_patients

WINDOW = dosing_window(source="test", simulated=True)


@pytest.fixture(scope="module")
def cohort():
    raw, params = virtual_patients(96, seed=7)
    return raw, params, [PatientData.from_dict(p) for p in raw]


@pytest.fixture(scope="module")
def recommendations(cohort):
    _, _, patients = cohort
    return DosingEngine(random_state=3).recommend_many(patients, WINDOW)


def test_forecast_interval_covers_the_truth(cohort):
    """90 % intervals under the fixed regimen cover the true AUC of about 90 % of patients."""
    raw, params, patients = cohort
    fixed = np.array([[round_to_vials(2.5 * p.weight_kg)] * 2 for p in patients])
    f = DosingEngine(random_state=1).forecast_auc(patients, fixed)
    truth = true_total_auc(params, raw, fixed)
    covered = ((truth >= f["lower"]) & (truth <= f["upper"])).mean()
    assert 0.82 <= covered <= 0.97  # binomial(96, 0.9): 2.5-97.5 % range is 0.83-0.96
    error = f["median"].to_numpy() / truth - 1
    assert abs(np.median(error)) < 0.10        # unbiased
    assert np.median(np.abs(error)) < 0.35     # MIPD acceptance: median absolute error <= 30 % (here ~20 %)


def test_recommendations_beat_fixed_dosing_on_true_auc(cohort, recommendations):
    raw, params, patients = cohort
    doses = np.array([[d.mg for d in r.doses] for r in recommendations])
    fixed = np.array([[round_to_vials(2.5 * p.weight_kg)] * 2 for p in patients])
    inside = lambda auc: ((auc >= WINDOW.lower) & (auc < WINDOW.upper)).mean()  # noqa: E731
    engine_attain = inside(true_total_auc(params, raw, doses))
    fixed_attain = inside(true_total_auc(params, raw, fixed))
    assert engine_attain > fixed_attain  # 400 patients: 54 % vs 44 % (scripts/bench_dosing.py: >= 1,000)
    # the predicted attainment is honest: mean P(in window) close to the realised attainment
    predicted = np.mean([r.forecast.p_in_window for r in recommendations])
    assert abs(predicted - engine_attain) < 0.12


def test_every_recommendation_respects_caps_and_grid(cohort, recommendations):
    _, _, patients = cohort
    caps = DoseCaps()
    for p, r in zip(patients, recommendations):
        assert [d.day for d in r.doses] == [-3, -2]
        for d in r.doses:
            assert d.mg == d.vials * 25.0 and caps.day_violation(d.mg, p.weight_kg) is None
        assert r.forecast.doses_mg == tuple(d.mg for d in r.doses)
        assert r.posterior.converged and r.posterior.ess > 30


def test_same_seed_same_recommendation_whatever_the_batch(cohort, recommendations):
    _, _, patients = cohort
    again = DosingEngine(random_state=3).recommend_many([patients[5], patients[2]], WINDOW)
    assert again[0] == recommendations[5] and again[1] == recommendations[2]
    other = DosingEngine(random_state=4).recommend(patients[2], WINDOW)
    assert other.forecast.median != recommendations[2].forecast.median  # the seed matters


def test_laplace_importance_agrees_with_brute_force_posterior(cohort):
    """The default posterior vs prior importance sampling (exact as draws grow) on the same levels."""
    _, _, patients = cohort
    sub = patients[:4]
    doses = np.full((4, 2), 150.0)
    # enough draws on both sides that Monte Carlo error (about 4 % on a 95th percentile from the
    # default 256 draws) does not hide the approximation error being tested
    fast = DosingEngine(posterior=LaplaceImportance(1024), random_state=0).forecast_auc(sub, doses)
    exact = DosingEngine(posterior=PriorImportance(16384, 2048), random_state=0).forecast_auc(sub, doses)
    np.testing.assert_allclose(fast["median"], exact["median"], rtol=0.03)
    np.testing.assert_allclose(fast["upper"], exact["upper"], rtol=0.05)
    np.testing.assert_allclose(fast["lower"], exact["lower"], rtol=0.05)


def _patient(raw, **change):
    p = dict(raw)
    p.update(change)
    return PatientData.from_dict(p)


ENGINE = DosingEngine(posterior=LaplaceImportance(64), random_state=0)


def test_implausible_levels_are_flagged(cohort):
    raw = cohort[0][0]
    levels = [dict(lv) for lv in raw["levels"]]
    levels[3] = {"day": levels[3]["day"], "concentration": 10 * levels[3]["concentration"], "bloq": 0}
    rec = ENGINE.recommend(_patient(raw, levels=levels), WINDOW)
    assert any("implausible for the doses given" in w for w in rec.warnings), rec.warnings
    levels = [dict(lv) for lv in raw["levels"]]
    levels[1] = {"day": levels[1]["day"], "bloq": 1}  # end of the first infusion: cannot be below 0.5 UE/mL
    rec = ENGINE.recommend(_patient(raw, levels=levels), WINDOW)
    assert any("is below the LLOQ but the best fit predicts" in w for w in rec.warnings), rec.warnings
    clean = ENGINE.recommend(_patient(raw), WINDOW)
    assert not any("implausible" in w for w in clean.warnings)


def test_no_levels_rests_on_the_population_model(cohort):
    rec = ENGINE.recommend(_patient(cohort[0][0], levels=[]), WINDOW)
    assert "no quantifiable level before the decision: the forecast rests on the population model alone" \
        in rec.warnings
    assert rec.posterior.levels_used == 0


FAR = dosing_window(600.0, 700.0, 650.0)


def test_unreachable_window_gives_the_cap_and_says_so(cohort):
    raw = cohort[0][0]
    far = FAR
    rec = ENGINE.recommend(_patient(raw), far)
    cap = DoseCaps().max_vials(raw["weight_kg"])
    assert [d.vials for d in rec.doses] == [cap, cap]
    assert any(w.startswith("no regimen within the caps reaches the window with probability >= 0.35") for w in rec.warnings)
    assert "the recommended doses are at the cap and the forecast stays below the window" in rec.warnings


def test_window_already_exceeded_gives_no_more_drug(cohort):
    low = dosing_window(5.0, 20.0, 10.0)
    rec = ENGINE.recommend(_patient(cohort[0][0]), low)
    assert [d.mg for d in rec.doses] == [0.0, 0.0]
    assert rec.forecast.p_in_window < 0.35 and rec.warnings


def test_override_is_recorded(cohort):
    cand = dosing_window(status="candidate", simulated=True)
    ov = WindowOverride(by="Dr A", reason="protocol amendment 3")
    rec = ENGINE.recommend(_patient(cohort[0][0]), cand, override=ov)
    assert rec.override == ov and rec.to_dict()["override"] == {"by": "Dr A", "reason": "protocol amendment 3"}
    assert "window status 'candidate' used under an override by Dr A: protocol amendment 3" in rec.caveats
    assert "the window was derived from simulated data (a virtual cohort): not for clinical use" in rec.caveats
    validated = ENGINE.recommend(_patient(cohort[0][0]), WINDOW, override=ov)
    assert validated.override is None  # only recorded when it was needed


def test_open_window_is_refused_even_when_validated(cohort):
    """Issue 12: a window open on a side made the engine drive exposure to the open side; refused now
    (the full set of refusal messages is in tests/test_dosing_harms.py)."""
    open_above = hand_edited(dosing_window(), upper=None)  # an artefact cannot be validated and open
    with pytest.raises(DosingRefused, match=r"window \(given\) is open \(upper bound None\)"):
        ENGINE.recommend(_patient(cohort[0][0]), open_above)


def test_the_engine_takes_only_an_exposure_window(cohort):
    """Issue 13: one shape of window in; a recommendation's record of its window or a dict is not one."""
    from ml.dosing import WindowRecord

    rec = ENGINE.recommend(_patient(cohort[0][0]), WINDOW)
    assert isinstance(rec.window, WindowRecord) and rec.window == WindowRecord.of(WINDOW)
    for other in (rec.window, WINDOW.to_dict(), "w.json"):
        with pytest.raises(TypeError, match="window must be an ml.window.ExposureWindow, got"):
            ENGINE.recommend(_patient(cohort[0][0]), other)
        with pytest.raises(TypeError, match="load_window_source"):
            ENGINE.patient_problem(_patient(cohort[0][0]), other)


def test_course_cap_is_respected(cohort):
    raw = cohort[0][0]
    caps = DoseCaps(course_mg_per_kg=7.0)
    rec = DosingEngine(caps=caps, posterior=LaplaceImportance(32)).recommend(_patient(raw), FAR)
    total = rec.given_mg + sum(d.mg for d in rec.doses)
    assert total <= 7.0 * raw["weight_kg"] and total > 7.0 * raw["weight_kg"] - 25.0


CHOICES = [
    # (probabilities, medians, regimens in vials, chosen index, why)
    ([0.50, 0.60, 0.59], [110.0, 115.0, 124.0], [[4, 4], [5, 5], [6, 5]], 2, "tie within 0.02 -> closest to target"),
    ([0.50, 0.60, 0.55], [110.0, 115.0, 124.0], [[4, 4], [5, 5], [6, 5]], 1, "no tie -> highest probability"),
    ([0.60, 0.60, 0.60], [124.5, 123.0, 125.0], [[10, 0], [5, 5], [0, 10]], 1, "equally close -> even split"),
    ([0.60, 0.60], [123.0, 124.0], [[5, 6], [6, 5]], 1, "same split -> larger first dose"),
    ([0.60, 0.60], [123.0, 124.5], [[5, 5], [6, 5]], 0, "equally close, even -> smaller total"),
]


@pytest.mark.parametrize("prob,median,grid,chosen,why", CHOICES, ids=[c[-1] for c in CHOICES])
def test_choice_rule(prob, median, grid, chosen, why):
    engine = DosingEngine()
    got = engine._choose(np.array(prob), np.array(median), np.array(grid), 124.0, target_tolerance=2.4)
    assert got == chosen, why
