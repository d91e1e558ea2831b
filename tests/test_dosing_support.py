"""Shared inputs of the dosing tests (no tests here): windows and virtual patients.

Windows are real :class:`ml.window.ExposureWindow` artefacts written to JSON, the
only form the engine trusts. Patients are drawn from the population model itself (so the engine
is tested against the truth it assumes); their levels follow the simulator's sampling design
(before and at the end of each infusion on days -5 and -4, plus the day -3 pre-dose sample) and
residual model.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np

from ml.pk import Infusions, PopPKModel, simulate
from ml.window import ExposureWindow, Population, SigningKey

WINDOW = (100.0, 148.5, 124.0)


def exposure_window(status: str = "validated", unit: str = "UE*day/mL", lower=100.0, upper=148.5,
                    target=124.0, simulated: bool = True, **fields) -> ExposureWindow:
    """A window artefact with the published URD/haplo bounds (``fields``: any other field, set before
    a validated window is signed)."""
    w = ExposureWindow(
        exposure="auc_total", exposure_definition="total active-ATG AUC, first dose to infinity", unit=unit,
        population=Population(donor_source="URD", conditioning="MAC", n=324, events=200), endpoint="cmv",
        horizon_days=180.0, lower=lower, upper=upper, target=target, lower_ci=(90.0, 110.0),
        upper_ci=(135.0, 160.0), ci_method="bootstrap", p_value=0.01, p_value_method="permutation",
        statistic=3.2, dataset_digest="sha256:test", simulated=simulated, code_version="test", **fields)
    if status == "validated":
        w = replace(w, status="validated", gates_passed=("test gate",), promoted_by="test", promotion_reason="test")
        key = SigningKey.from_env()  # the suite's test key (tests/conftest.py), as a centre signs at promotion
        w = w if key is None else w.signed(key)
    elif status != "candidate":
        w = replace(w, status=status)
    return w


def dosing_window(lower=100.0, upper=148.5, target=124.0, *, unit: str = "UE*day/mL", status: str = "validated",
                  source: str = "", simulated: bool = False, integrity: str = "in-memory", **fields) -> ExposureWindow:
    """An ExposureWindow built in code for the engine (the one shape it takes), with its origin.

    No intervals, not signed: ``integrity`` is the origin's (``in-memory`` unless a test says how a
    read window was checked). ``fields``: any other artefact field (``finding``, ``pk_model``, ...).
    """
    w = ExposureWindow(
        exposure="auc_total", exposure_definition="total active-ATG AUC, first dose to infinity", unit=unit,
        population=Population(donor_source="URD", conditioning="MAC", n=324, events=200), endpoint="cmv",
        horizon_days=180.0, lower=lower, upper=upper, target=target, lower_ci=None, upper_ci=None,
        ci_method="bootstrap", p_value=0.01, p_value_method="permutation", statistic=3.2,
        dataset_digest="sha256:test", simulated=simulated, code_version="test", **fields)
    if status == "validated":
        w = replace(w, status="validated", gates_passed=("test gate",), promoted_by="test", promotion_reason="test")
    elif status != "candidate":
        w = replace(w, status=status, finding=fields.get("finding", "no-window"))
    return w.with_origin(source=source, integrity=integrity)


def hand_edited(window: ExposureWindow, **fields) -> ExposureWindow:
    """A copy of ``window`` with ``fields`` forced after construction, past the artefact's own checks (an
    object edited by hand in memory, e.g. a validated window whose bound was set to None): what the
    engine's gates must still refuse."""
    edited = copy.copy(window)
    for name, value in fields.items():
        object.__setattr__(edited, name, value)
    return edited


def write_window(path, **kwargs) -> str:
    exposure_window(**kwargs).to_json(path)
    return str(path)


def virtual_patients(n: int, seed: int, *, pre_dose_day3: bool = True, model: PopPKModel | None = None):
    """``n`` virtual patients: (patient dicts in the engine's JSON form, true PK parameters).

    Covariates as in ml/sim/default_scenarios.toml (weight normal 63 +- 11 kg truncated 40..120, ALC
    log-normal median 0.3 x10^9/L log-SD 0.8); days -5/-4 doses 2.5 mg/kg in 25 mg vials.
    """
    model = model or PopPKModel.default()
    rng = np.random.default_rng(seed)
    weight = np.round(np.clip(rng.normal(63, 11, n), 40, 120), 1)
    alc = np.round(0.3 * np.exp(rng.normal(0, 0.8, n)), 3)
    params = model.individual(weight, alc, model.sample_eta(n, rng))
    dose = np.maximum(np.round(2.5 * weight / 25), 1) * 25
    start = np.array([-5, -4]) + 8 / 24
    dur = np.array([6, 4]) / 24
    inf = Infusions(np.repeat(np.arange(n), 2), np.tile(start, n), np.tile(dur, n),
                    np.repeat(dose * model.active_fraction, 2), n)
    times = np.r_[start[0], start[0] + dur[0], start[1], start[1] + dur[1]]
    if pre_dose_day3:
        times = np.r_[times, -3 + 8 / 24]
    pred = simulate(params, inf, times)["concentration"]
    r = model.residual
    obs = pred * (1 + r["proportional"] * rng.standard_normal(pred.shape)) + r["additive"] * rng.standard_normal(pred.shape)
    patients = []
    for i in range(n):
        levels = [{"day": float(round(t, 6)), "bloq": 1} if o < r["lloq"] else
                  {"day": float(round(t, 6)), "concentration": float(round(o, 3)), "bloq": 0}
                  for t, o in zip(times, obs[i])]
        patients.append({
            "patient_id": f"T{seed}-{i:04d}", "weight_kg": float(weight[i]), "alc_pre_atg": float(alc[i]),
            "concentration_unit": model.concentration_unit,
            "doses": [{"day": -5, "start_hour": 8.0, "dose_mg": float(dose[i]), "infusion_hours": 6.0},
                      {"day": -4, "start_hour": 8.0, "dose_mg": float(dose[i]), "infusion_hours": 4.0}],
            "levels": levels,
        })
    return patients, params


def true_total_auc(params, patients, doses_mg: np.ndarray, model: PopPKModel | None = None) -> np.ndarray:
    """True total AUC (UE*day/mL, library-default accuracy) of each patient given day -3/-2 doses."""
    model = model or PopPKModel.default()
    n = len(patients)
    rows, start, dur, amt = [], [], [], []
    for i, p in enumerate(patients):
        for d in p["doses"]:
            rows.append(i)
            start.append(d["day"] + d["start_hour"] / 24)
            dur.append(d["infusion_hours"] / 24)
            amt.append(d["dose_mg"] * model.active_fraction)
        for day, mg in zip((-3, -2), doses_mg[i]):
            rows.append(i)
            start.append(day + 8 / 24)
            dur.append(4 / 24)
            amt.append(mg * model.active_fraction)
    out = simulate(params, Infusions(np.array(rows), np.array(start), np.array(dur), np.array(amt), n))
    return out["auc_pre"] + out["auc_post"]
