"""The batch check of the population model (ml.dosing._misfit).

Patients simulated from the engine's own model must not raise it (their MAP deviations have mean 0
under the model); patients from a world whose typical CL and V1 are far from the model's must, on
every recommendation of the batch. The closed-loop benchmark (docs/benchmarks.md) is where a
misspecified world's harm is measured.
"""

from __future__ import annotations

from dataclasses import replace

from ml.dosing import DoseRecommendation, DosingEngine, PatientData, WindowTarget
from ml.dosing._misfit import MIN_PATIENTS, population_misfit
from ml.pk import PopPKModel

from test_dosing_support import virtual_patients

WINDOW = WindowTarget(lower=100.0, upper=148.5, target=124.0, unit="UE*day/mL", status="validated",
                      source="test", simulated=True)
MISFIT = "population model misfit"


def _batch(model: PopPKModel, n: int, seed: int) -> list:
    raw, _ = virtual_patients(n, seed=seed, pre_dose_day3=False, model=model)
    return DosingEngine(random_state=0).recommend_many([PatientData.from_dict(p) for p in raw], WINDOW)


def test_patients_of_the_model_raise_no_misfit_warning():
    recs = _batch(PopPKModel.default(), 60, seed=21)
    assert all(isinstance(r, DoseRecommendation) for r in recs)
    assert not any(MISFIT in w for r in recs for w in r.warnings)


def test_a_world_far_from_the_model_is_flagged_on_every_recommendation():
    m = PopPKModel.default()
    world = replace(m, name="far-world", typical={k: v * {"CL": 1.6, "V1": 0.55}.get(k, 1.0) for k, v in m.typical.items()})
    recs = _batch(world, 60, seed=22)
    flagged = [[w for w in r.warnings if MISFIT in w] for r in recs if isinstance(r, DoseRecommendation)]
    assert flagged and all(len(f) == 1 for f in flagged)
    assert "V1 -" in flagged[0][0] and "atgwin poppk fit" in flagged[0][0]


def test_too_few_patients_are_not_judged():
    m = PopPKModel.default()
    world = replace(m, typical={k: v * {"CL": 1.6, "V1": 0.55}.get(k, 1.0) for k, v in m.typical.items()})
    recs = _batch(world, MIN_PATIENTS - 1, seed=23)
    assert population_misfit(recs, m.iiv) is None
    assert not any(MISFIT in w for r in recs for w in r.warnings)
