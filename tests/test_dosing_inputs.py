"""Bad inputs the dosing engine must refuse, each with the exact message (tables of cases).

Refusals are :class:`ml.dosing.DosingRefused` (no recommendation); construction errors of value
objects are ``ValueError`` with a message stating the violated condition.
"""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest

from ml.dosing import (
    AdjustmentSchedule,
    AUCForecast,
    DayDose,
    DoseCaps,
    DoseRecommendation,
    DosingEngine,
    DosingRefused,
    LaplaceImportance,
    PatientData,
    PriorImportance,
    Thresholds,
    WindowOverride,
    WindowRecord,
    admit_window,
    load_window,
)

from test_dosing_support import dosing_window, exposure_window, virtual_patients, write_window

PATIENT = {
    "patient_id": "P01", "weight_kg": 70.0, "alc_pre_atg": 0.3, "concentration_unit": "UE/mL",
    "doses": [{"day": -5, "start_hour": 8, "dose_mg": 175, "infusion_hours": 6},
              {"day": -4, "start_hour": 8, "dose_mg": 175, "infusion_hours": 4}],
    "levels": [{"day": -4.4167, "concentration": 5.2, "bloq": 0}, {"day": -3.6667, "bloq": 1},
               {"day": -3.5, "concentration": 11.0}],
}


def _edit(path: str, value):
    p = copy.deepcopy(PATIENT)
    *parents, last = path.split(".")
    node = p
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is _DELETE:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return p


_DELETE = object()

BAD_PATIENTS = [
    ("weight_kg", _DELETE, "patient 'P01' refused: weight_kg is required"),
    ("weight_kg", "heavy", "patient 'P01' refused: weight_kg must be a number in 20..250 kg, got 'heavy'"),
    ("weight_kg", 12.0, "patient 'P01' refused: weight_kg must be a number in 20..250 kg, got 12.0"),
    ("alc_pre_atg", _DELETE, "patient 'P01' refused: alc_pre_atg (lymphocyte count before ATG, x10^9/L) is required"),
    ("alc_pre_atg", -0.1, "patient 'P01' refused: alc_pre_atg must be a number >= 0 (x10^9/L), got -0.1"),
    ("concentration_unit", _DELETE,
     "patient 'P01' refused: concentration_unit is required (e.g. 'UE/mL'); levels in an unstated unit are refused"),
    ("doses", [], "patient 'P01' refused: doses: at least one ATG dose already given is required (none given)"),
    ("doses.0.dose_mg", 0, "patient 'P01' refused: doses[0].dose_mg must be a number > 0, got 0"),
    ("doses.1.infusion_hours", _DELETE, "patient 'P01' refused: doses[1].infusion_hours is required"),
    ("doses.0.day", -4.5, "patient 'P01' refused: doses[0].day must be an integer day from transplant, got -4.5"),
    ("doses.0.start_hour", 25, "patient 'P01' refused: doses[0].start_hour must be a number in 0..24, got 25"),
    ("doses.0.mg", 5, "patient 'P01' refused: doses[0] has unknown key(s) ['mg']"),
    ("levels.0.concentration", -1.0, "patient 'P01' refused: levels[0].concentration must be a number >= 0, got -1.0"),
    ("levels.2.concentration", _DELETE, "patient 'P01' refused: levels[2].concentration is required unless bloq is 1"),
    ("levels.1.bloq", 2, "patient 'P01' refused: levels[1].bloq must be 0 or 1, got 2"),
    ("levels.0.day", None, "patient 'P01' refused: levels[0].day must be a finite number (days from transplant), got None"),
    ("levels", "many", "patient 'P01' refused: levels must be a list, got str"),
    ("height_cm", 180, "patient 'P01' refused: unknown key(s) ['height_cm']"),
]


@pytest.mark.parametrize("path,value,message", BAD_PATIENTS, ids=[c[0] for c in BAD_PATIENTS])
def test_bad_patient_is_refused_with_its_reason(path, value, message):
    with pytest.raises(DosingRefused) as err:
        PatientData.from_dict(_edit(path, value))
    assert str(err.value) == message


def test_every_problem_of_a_patient_is_listed():
    p = _edit("weight_kg", _DELETE)
    p["doses"] = []
    with pytest.raises(DosingRefused) as err:
        PatientData.from_dict(p)
    assert str(err.value) == ("patient 'P01' refused: weight_kg is required; "
                              "doses: at least one ATG dose already given is required (none given)")


def test_a_valid_patient_round_trips():
    p = PatientData.from_dict(PATIENT)
    assert PatientData.from_dict(p.to_dict()) == p
    day, conc, bloq = p.level_arrays()
    assert bloq.tolist() == [False, True, False] and np.isnan(conc[1])


WINDOW = dosing_window()
#: what a recommendation records of WINDOW
RECORD = WindowRecord.of(WINDOW)

BAD_WINDOWS = [
    (dict(lower=150.0, upper=100.0), "invalid window: `lower < upper` must hold, got lower=150.0, upper=100.0"),
    (dict(lower=None, upper=None), "invalid window: at least one of `lower`, `upper` must be given, got both None"),
    (dict(target=160.0), "invalid window: `lower <= target < upper` must hold, got lower=100.0, target=160.0, upper=148.5"),
    (dict(lower=float("nan")), "invalid window: `lower` must be a finite number or None (open), got nan"),
    (dict(unit=""), "invalid window: `unit` must be a non-empty string, got ''"),
    (dict(status="approved"),
     "invalid window: `status` must be one of ('candidate', 'validated', 'no-window'), got 'approved'"),
    (dict(exposure="auc_post"),
     "invalid window: `exposure` must be 'auc_total' (the engine forecasts total AUC), got 'auc_post'"),
]


@pytest.mark.parametrize("change,message", BAD_WINDOWS, ids=[m[:40] for _, m in BAD_WINDOWS])
def test_bad_window_record_is_refused(change, message):
    """A recommendation's record of its window (e.g. read back from JSON) keeps the window's invariants."""
    base = dict(lower=100.0, upper=148.5, target=124.0, unit="UE*day/mL", status="validated")
    with pytest.raises(DosingRefused) as err:
        WindowRecord(**{**base, **change})
    assert str(err.value) == message


OVERRIDE = WindowOverride(by="Dr A", reason="protocol amendment 3")
ADMISSION = [
    # (window status, window unit, patient unit, model unit, override, expected message or None)
    ("validated", "AU*day/mL", "UE/mL", "UE/mL", None,
     "unit mismatch: the window is in 'AU*day/mL' but the patient's levels are in 'UE/mL' (exposure unit "
     "'UE*day/mL'); assays cannot be converted into each other"),
    ("validated", "UE*day/mL", "AU/mL", "UE/mL", None,
     "unit mismatch: the window is in 'UE*day/mL' but the patient's levels are in 'AU/mL' (exposure unit "
     "'AU*day/mL'); assays cannot be converted into each other"),
    ("validated", "AU*day/mL", "AU/mL", "UE/mL", None,
     "unit mismatch: the population PK model is in 'UE/mL' but the patient's levels are in 'AU/mL'"),
    ("candidate", "AU*day/mL", "UE/mL", "UE/mL", OVERRIDE,  # a unit mismatch is never overridable
     "unit mismatch: the window is in 'AU*day/mL' but the patient's levels are in 'UE/mL' (exposure unit "
     "'UE*day/mL'); assays cannot be converted into each other"),
    ("candidate", "UE*day/mL", "UE/mL", "UE/mL", None,
     "window status is 'candidate', not 'validated': promote it (atgwin promote) or give an explicit override "
     "stating who and why"),
    ("no-window", "UE*day/mL", "UE/mL", "UE/mL", OVERRIDE,
     "window w.json has status 'no-window': the search found no exposure window, so there is nothing to dose into"),
    ("candidate", "UE*day/mL", "UE/mL", "UE/mL", OVERRIDE, None),
    ("validated", "UE*day/mL", "UE/mL", "UE/mL", None, None),
]


@pytest.mark.parametrize("status,unit,patient_unit,model_unit,override,message", ADMISSION)
def test_window_admission(status, unit, patient_unit, model_unit, override, message):
    w = dosing_window(unit=unit, status=status, source="w.json")
    if message is None:
        recorded = admit_window(w, patient_unit, model_unit, override)
        assert recorded == (override if status != "validated" else None)
    else:
        with pytest.raises(DosingRefused) as err:
            admit_window(w, patient_unit, model_unit, override)
        assert str(err.value) == message


@pytest.mark.parametrize("by,reason,message", [
    ("", "why", "an override must state `by` (non-empty text), got ''"),
    ("Dr A", "  ", "an override must state `reason` (non-empty text), got '  '"),
    (None, "why", "an override must state `by` (non-empty text), got None"),
])
def test_override_must_say_who_and_why(by, reason, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        WindowOverride(by=by, reason=reason)
    assert str(err.value) == message


def test_window_files(tmp_path):
    assert load_window(write_window(tmp_path / "v.json")).status == "validated"
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DosingRefused, match=re.escape("bad.json is not valid JSON")):
        load_window(tmp_path / "bad.json")
    with pytest.raises(DosingRefused, match=re.escape("cannot read window file")):
        load_window(tmp_path / "missing.json")
    data = exposure_window().to_dict()
    data["lower"] = 200.0  # breaks the artefact's own rule lower < upper
    (tmp_path / "broken.json").write_text(json.dumps(data))
    with pytest.raises(DosingRefused) as err:
        load_window(tmp_path / "broken.json")
    assert "is not a valid ExposureWindow: invalid ExposureWindow: `lower < upper` must hold" in str(err.value)
    data = exposure_window().to_dict()
    data.update(status="no-window")
    (tmp_path / "none.json").write_text(json.dumps(data))
    with pytest.raises(DosingRefused, match="has status 'no-window'"):
        load_window(tmp_path / "none.json")


BAD_CAPS = [
    (dict(vial_mg=0.0), "DoseCaps: `vial_mg > 0` must hold, got 0.0"),
    (dict(mg_per_kg_per_day=-1.0), "DoseCaps: `mg_per_kg_per_day > 0` must hold, got -1.0"),
    (dict(mg_per_day=float("inf")), "DoseCaps: `mg_per_day > 0` must hold, got inf"),
    (dict(min_mg_per_day=-25.0), "DoseCaps: `min_mg_per_day >= 0` must hold, got -25.0"),
    (dict(min_mg_per_day=600.0), "DoseCaps: `min_mg_per_day <= mg_per_day` must hold, got min_mg_per_day=600.0, "
                                 "mg_per_day=500.0"),
    (dict(course_mg_per_kg=0.0), "DoseCaps: `course_mg_per_kg > 0` must hold (or None), got 0.0"),
]


@pytest.mark.parametrize("kwargs,message", BAD_CAPS, ids=[m[:30] for _, m in BAD_CAPS])
def test_bad_caps(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        DoseCaps(**kwargs)
    assert str(err.value) == message


@pytest.mark.parametrize("factory,message", [
    (lambda: LaplaceImportance(n_samples=300),
     "LaplaceImportance: `n_samples` must be a power of 2 >= 16 (Sobol' points), got 300"),
    (lambda: LaplaceImportance(df=2.0), "LaplaceImportance: `df > 2` must hold, got 2.0"),
    (lambda: PriorImportance(n_samples=1024, n_keep=2048),
     "PriorImportance: `16 <= n_keep <= n_samples` must hold, got 2048"),
    (lambda: DosingEngine(nodes_per_day=1), "DosingEngine: `nodes_per_day >= 2` must hold (or None), got 1"),
    (lambda: DosingEngine(tie_tolerance=1.5), "DosingEngine: `0 <= tie_tolerance < 1` must hold, got 1.5"),
    (lambda: DosingEngine(target_tolerance=-0.1), "DosingEngine: `0 <= target_tolerance < 1` must hold, got -0.1"),
    (lambda: DosingEngine(interval=1.0), "DosingEngine: `0 < interval < 1` must hold, got 1.0"),
    (lambda: Thresholds(min_probability=1.5), "Thresholds: `0 <= min_probability <= 1` must hold, got 1.5"),
    (lambda: Thresholds(residual_z=0.0), "Thresholds: `residual_z > 0` must hold, got 0.0"),
    (lambda: AdjustmentSchedule(days=(-2, -3)), "AdjustmentSchedule: `days` must be distinct and increasing, got (-2, -3)"),
    (lambda: AdjustmentSchedule(start_hour=24.0), "AdjustmentSchedule: `0 <= start_hour < 24` must hold, got 24.0"),
])
def test_bad_engine_configuration(factory, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        factory()
    assert str(err.value) == message


def test_no_dose_satisfies_the_caps():
    caps = DoseCaps(min_mg_per_day=150.0, mg_per_kg_per_day=2.0)
    with pytest.raises(DosingRefused) as err:
        caps.grid(50.0, 2)
    assert str(err.value) == ("no dose satisfies the caps for 50 kg: daily minimum 150 mg exceeds the daily cap "
                              "of 100 mg")
    caps = DoseCaps(course_mg_per_kg=5.0)
    with pytest.raises(DosingRefused) as err:
        caps.grid(60.0, 2, given_mg=325.0)
    assert str(err.value) == ("no dose satisfies the course cap 5 mg/kg for 60 kg: 325 mg already given leaves 0 mg")


TIMING = [
    ("doses", [{"day": -5, "start_hour": 8, "dose_mg": 175, "infusion_hours": 6},
               {"day": -3, "start_hour": 8, "dose_mg": 175, "infusion_hours": 4}],
     "patient 'P01' refused: a dose given on day -3 at 8 h starts at or after the first adjustable infusion "
     "(day -3 at 8 h): the engine only recommends the doses of days [-3, -2]"),
    ("levels", [{"day": -2.5, "concentration": 12.0}],
     "patient 'P01' refused: a level at day -2.5000 was drawn after the first adjustable infusion starts "
     "(day -2.6667); only levels drawn before the decision can be used"),
]


@pytest.mark.parametrize("key,value,message", TIMING, ids=["dose on day -3", "level after the decision"])
def test_inputs_after_the_decision_are_refused(key, value, message):
    engine = DosingEngine(posterior=LaplaceImportance(16))
    with pytest.raises(DosingRefused) as err:
        engine.recommend(PatientData.from_dict(_edit(key, value)), WINDOW)
    assert str(err.value) == message


def test_engine_refuses_before_computing(monkeypatch):
    """A window that cannot be used stops the engine before any fit (nothing is computed)."""
    import ml.dosing._engine as eng

    def boom(*a, **k):
        raise AssertionError("the engine computed something for a refused window")

    monkeypatch.setattr(eng, "fit_map", boom)
    engine = DosingEngine(posterior=LaplaceImportance(16))
    patient = PatientData.from_dict(PATIENT)
    candidate = exposure_window(status="candidate").with_origin(source="c.json")
    with pytest.raises(DosingRefused, match="window status is 'candidate', not 'validated'"):
        engine.recommend(patient, candidate)
    au = exposure_window(unit="AU*day/mL").with_origin(source="au.json")
    with pytest.raises(DosingRefused, match="unit mismatch"):
        engine.recommend(patient, au)
    out = engine.recommend_many([patient], au)
    assert isinstance(out[0], DosingRefused) and "unit mismatch" in str(out[0])


def _recommendation(**change):
    caps = DoseCaps()
    doses = (DayDose(day=-3, mg=150.0, vials=6, mg_per_kg=150.0 / 70, start_hour=8.0, infusion_hours=4.0),
             DayDose(day=-2, mg=150.0, vials=6, mg_per_kg=150.0 / 70, start_hour=8.0, infusion_hours=4.0))
    fc = AUCForecast(doses_mg=(150.0, 150.0), median=120.0, lower=80.0, upper=190.0, interval=0.9, p_in_window=0.5,
                     unit="UE*day/mL", p_below_floor=0.3, p_above_ceiling=0.2)
    from ml.dosing import PosteriorSummary
    post = PosteriorSummary(eta_map={}, parameters={}, levels_used=0, levels_bloq=0, converged=True, ess=100.0,
                            n_draws=256, method="test")
    kwargs = dict(patient_id="P01", weight_kg=70.0, doses=doses, forecast=fc, fixed_forecast=fc, window=RECORD,
                  caps=caps, posterior=post, model_name="m", model_status="assumption")
    kwargs.update(change)
    return DoseRecommendation(**kwargs)


def _day(mg, vials, weight=70.0, day=-3):
    return DayDose(day=day, mg=mg, vials=vials, mg_per_kg=mg / weight, start_hour=8.0, infusion_hours=4.0)


def _fc(*doses):
    return AUCForecast(doses_mg=doses, median=120.0, lower=80.0, upper=190.0, interval=0.9, p_in_window=0.5,
                       unit="UE*day/mL", p_below_floor=0.3, p_above_ceiling=0.2)


BAD_RECOMMENDATIONS = [
    (dict(doses=(_day(160.0, 6), _day(150.0, 6, day=-2)), forecast=_fc(160.0, 150.0)),
     "invalid DoseRecommendation: day -3: `mg == vials x vial_mg` must hold, got 160.0 mg, 6 vials of 25 mg; "
     "day -3: 160.0 mg is not a whole number of 25 mg vials"),
    (dict(doses=(_day(375.0, 15), _day(150.0, 6, day=-2)), forecast=_fc(375.0, 150.0)),
     "invalid DoseRecommendation: day -3: 375.0 mg exceeds the daily cap min(5 mg/kg x 70 kg, 500 mg) = 350 mg"),
    (dict(doses=(_day(150.0, 6), _day(150.0, 6, day=-2)), caps=DoseCaps(min_mg_per_day=175.0)),
     "invalid DoseRecommendation: day -3: 150.0 mg is below the daily minimum 175 mg; "
     "day -2: 150.0 mg is below the daily minimum 175 mg"),
    (dict(caps=DoseCaps(course_mg_per_kg=5.0), given_mg=100.0),
     "invalid DoseRecommendation: the course 400 mg exceeds the course cap 5 mg/kg x 70 kg"),
    (dict(forecast=_fc(125.0, 150.0)),
     "invalid DoseRecommendation: the forecast must be for the recommended doses, got (125.0, 150.0) for "
     "(150.0, 150.0)"),
    (dict(window=WindowRecord(lower=100.0, upper=148.5, target=124.0, unit="UE*day/mL", status="candidate")),
     "invalid DoseRecommendation: window status 'candidate' requires a recorded override"),
    (dict(doses=(_day(150.0, 6), _day(150.0, 6))),
     "invalid DoseRecommendation: one dose per day must hold, got days [-3, -3]"),
    (dict(doses=()), "invalid DoseRecommendation: at least one recommended dose must be given"),
]


@pytest.mark.parametrize("change,message", BAD_RECOMMENDATIONS, ids=[m[30:75] for _, m in BAD_RECOMMENDATIONS])
def test_an_unsafe_recommendation_cannot_exist(change, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        _recommendation(**change)
    assert str(err.value) == message


def test_a_safe_recommendation_round_trips():
    rec = _recommendation()
    assert DoseRecommendation.from_dict(json.loads(rec.to_json())) == rec
    cand = WindowRecord(lower=100.0, upper=148.5, target=124.0, unit="UE*day/mL", status="candidate")
    rec = _recommendation(window=cand, override=OVERRIDE)
    assert DoseRecommendation.from_dict(rec.to_dict()).override == OVERRIDE


@pytest.mark.parametrize("make,message", [
    (lambda: DayDose(day=-3, mg=25.0, vials=1.0, mg_per_kg=0.5, start_hour=8.0, infusion_hours=4.0),
     "DayDose: `vials` must be an integer >= 0, got 1.0"),
    (lambda: AUCForecast(doses_mg=(1.0,), median=100.0, lower=120.0, upper=150.0, interval=0.9, p_in_window=0.5,
                         unit="u", p_below_floor=0.3, p_above_ceiling=0.2),
     "AUCForecast: `lower <= median <= upper` must hold, got lower=120.0, median=100.0, upper=150.0"),
    (lambda: AUCForecast(doses_mg=(1.0,), median=100.0, lower=90.0, upper=150.0, interval=0.9, p_in_window=1.2,
                         unit="u", p_below_floor=0.0, p_above_ceiling=0.0),
     "AUCForecast: `0 <= p_in_window <= 1` must hold, got 1.2"),
])
def test_bad_value_objects(make, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        make()
    assert str(err.value) == message


def test_virtual_patients_are_valid_input():
    patients, _ = virtual_patients(3, 0)
    for p in patients:
        PatientData.from_dict(p)
