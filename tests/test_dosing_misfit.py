"""The batch check of the population model (ml.dosing._misfit).

Patients simulated from the engine's own model must not raise it (their MAP deviations have mean 0
under the model); patients from a world whose typical CL and V1 are far from the model's must: by default every
patient of the batch is refused with the reason (on_misfit="refuse"), or, asked to warn, every
recommendation carries it. The closed-loop benchmark (docs/benchmarks.md) is where a
misspecified world's harm is measured.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from ml.dosing import DoseRecommendation, DosingEngine, DosingRefused, PatientData
from ml.dosing._misfit import MIN_PATIENTS, population_misfit
from ml.pk import PopPKModel

from test_dosing_support import dosing_window, virtual_patients

WINDOW = dosing_window(source="test", simulated=True)
MISFIT = "population model misfit"


def _patients(model: PopPKModel, n: int, seed: int) -> list:
    raw, _ = virtual_patients(n, seed=seed, pre_dose_day3=False, model=model)
    return [PatientData.from_dict(p) for p in raw]


def _batch(model: PopPKModel, n: int, seed: int, on_misfit: str = "warn") -> list:
    return DosingEngine(random_state=0, on_misfit=on_misfit).recommend_many(_patients(model, n, seed), WINDOW)


def _far(name: str = "far-world") -> PopPKModel:
    m = PopPKModel.default()
    return replace(m, name=name, typical={k: v * {"CL": 1.6, "V1": 0.55}.get(k, 1.0) for k, v in m.typical.items()})


def test_patients_of_the_model_raise_no_misfit_warning():
    recs = _batch(PopPKModel.default(), 60, seed=21, on_misfit="refuse")
    assert all(isinstance(r, DoseRecommendation) for r in recs)
    assert not any(MISFIT in w for r in recs for w in r.warnings)


def test_a_world_far_from_the_model_is_flagged_on_every_recommendation_when_asked_to_warn():
    recs = _batch(_far(), 60, seed=22, on_misfit="warn")
    flagged = [[w for w in r.warnings if MISFIT in w] for r in recs if isinstance(r, DoseRecommendation)]
    assert flagged and all(len(f) == 1 for f in flagged)
    assert "V1 -" in flagged[0][0] and "atgwin poppk fit" in flagged[0][0]


def test_by_default_every_patient_of_a_misfit_batch_is_refused_with_the_reason():
    recs = _batch(_far(), 60, seed=22, on_misfit="refuse")
    assert len(recs) == 60 and all(isinstance(r, DosingRefused) for r in recs)
    assert all(MISFIT in str(r) and "fixed regimen" in str(r) and "--on-misfit warn" in str(r) for r in recs)
    assert all(str(r).startswith(f"patient {p.patient_id!r} refused: ") for r, p in zip(recs, _patients(_far(), 60, 22)))


def test_a_batch_split_into_calls_is_judged_as_a_whole():
    # 40 patients in calls of 30 + 10: the second call alone is below MIN_PATIENTS, the batch is not
    engine = DosingEngine(random_state=0, on_misfit="refuse")
    patients = _patients(_far(), 40, seed=24)
    parts = [engine.recommend_many(patients[a:b], WINDOW, check_batch=False) for a, b in ((0, 30), (30, 40))]
    assert all(isinstance(r, DoseRecommendation) for part in parts for r in part)
    joined = engine.check_batch(parts[0] + parts[1])
    assert all(isinstance(r, DosingRefused) for r in joined)
    assert [str(r) for r in joined] == [str(r) for r in engine.recommend_many(patients, WINDOW)]


def test_the_misfit_policy_is_checked():
    with pytest.raises(ValueError, match="on_misfit"):
        DosingEngine(on_misfit="ignore")


def test_too_few_patients_are_not_judged():
    m = PopPKModel.default()
    recs = _batch(_far(), MIN_PATIENTS - 1, seed=23, on_misfit="refuse")
    assert all(isinstance(r, DoseRecommendation) for r in recs)
    assert population_misfit(recs, m.iiv) is None
    assert not any(MISFIT in w for r in recs for w in r.warnings)
