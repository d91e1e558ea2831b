"""Simulating levels from a population model: for visual predictive checks and for
stochastic simulation and estimation (SSE) studies of the estimator itself."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ml.cohort._model import Cohort, CohortMeta
from ml.pk import PopPKModel, fixed_regimen_doses, simulate

from ._data import PopPKData
from ._error import CombinedError

#: Sampling schedule of ml/sim/default_scenarios.toml, days from transplant: before (08:00) and at the end
#: of each infusion on days -5..-2 (6 h first, 4 h later), then days -1, 0, 3, ..., 60 at 08:00.
SPEC_SAMPLING_DAYS = tuple(
    [d + h / 24.0 for d, end in zip((-5, -4, -3, -2), (14, 12, 12, 12)) for h in (8, end)]
    + [d + 8 / 24.0 for d in (-1, 0, 3, 7, 14, 21, 28, 42, 60)])


def add_residual_error(f: np.ndarray, model: PopPKModel, rng: np.random.Generator,
                       error: CombinedError = CombinedError()) -> tuple[np.ndarray, np.ndarray]:
    """Noisy levels from predictions, censored at the model's LLOQ.

    Parameters
    ----------
    f : numpy.ndarray
        Model predictions, concentration unit.
    model : PopPKModel
        Gives ``residual.additive`` (concentration unit), ``residual.proportional`` (fraction)
        and ``residual.lloq``.
    rng : numpy.random.Generator
    error : CombinedError
        The residual error model.

    Returns
    -------
    conc : numpy.ndarray
        Levels (NaN where censored).
    bloq : numpy.ndarray of bool
        Below the limit of quantification.
    """
    res = model.residual
    y = f + error.sd(f, res["additive"], res["proportional"]) * rng.standard_normal(f.shape)
    bloq = y < res["lloq"]
    return np.where(bloq, np.nan, y), bloq


def simulate_replicates(model: PopPKModel, data: PopPKData, n_rep: int,
                        rng: np.random.Generator, error: CombinedError = CombinedError(),
                        batch: int = 8192) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulate the design of ``data`` ``n_rep`` times from ``model``: new random effects,
    residual error and censoring at the LLOQ of ``data``.

    Returns
    -------
    conc, bloq, pred : numpy.ndarray
        ``(n_rep, n, m)`` levels (NaN where censored), censoring flags and noiseless
        individual predictions.
    """
    from ._structural import Predictor

    n, m = data.times.shape
    conc = np.empty((n_rep, n, m))
    bloq = np.empty((n_rep, n, m), bool)
    pred = np.empty((n_rep, n, m))
    per = max(1, batch // n)
    lloq_model = replace(model, residual={**model.residual, "lloq": data.lloq})
    predict = Predictor(data, max_stiffness=np.inf)
    for lo in range(0, n_rep, per):
        k = min(per, n_rep - lo)
        rows = np.tile(np.arange(n), k)
        params = model.individual(data.weight_kg[rows], data.alc[rows], model.sample_eta(rows.size, rng))
        f = predict(np.log(params.as_array()), rows)
        c, b = add_residual_error(f, lloq_model, rng, error)
        conc[lo:lo + k] = c.reshape(k, n, m)
        bloq[lo:lo + k] = b.reshape(k, n, m)
        pred[lo:lo + k] = f.reshape(k, n, m)
    return conc, bloq, pred


def simulate_pk_cohort(model: PopPKModel | None = None, n: int = 324, seed: int = 0, *,
                       sampling_days=SPEC_SAMPLING_DAYS,
                       error: CombinedError = CombinedError()) -> Cohort:
    """A PK-only virtual cohort (no outcomes) drawn from ``model``, for testing the estimator.

    Patients follow ml/sim/default_scenarios.toml: weight normal 63 kg (SD 11) truncated to 40..120 kg,
    ALC log-normal with median 0.3 x10^9/L and log-SD 0.8, the fixed regimen (2.5 mg/kg/day on
    days -5..-2, 25 mg vials, 08:00, 6 h then 4 h) and the spec's sampling schedule.

    Parameters
    ----------
    model : PopPKModel, optional
        The generating model (default: :meth:`ml.pk.PopPKModel.default`).
    n : int
        Number of patients.
    seed : int
        Seed; the same seed gives the same cohort.
    sampling_days : sequence of float
        Sampling times, days from transplant.
    error : CombinedError
        Residual error model.

    Returns
    -------
    ml.cohort.Cohort
        ``patients`` (``patient_id``, ``weight_kg``, ``alc_pre_atg``), ``doses``, ``levels``;
        ``outcomes`` is empty. ``meta.truth`` holds the generating model as TOML text.
    """
    model = PopPKModel.default() if model is None else model
    rng = np.random.default_rng(seed)
    weight = np.empty(0)
    while weight.size < n:
        draw = rng.normal(63.0, 11.0, size=2 * n)
        weight = np.r_[weight, draw[(draw >= 40.0) & (draw <= 120.0)]]
    weight = np.round(weight[:n], 1)
    alc = np.round(np.exp(np.log(0.3) + 0.8 * rng.standard_normal(n)), 3)
    ids = np.array([f"P{i:04d}" for i in range(n)])
    patients = pd.DataFrame({"patient_id": ids, "weight_kg": weight, "alc_pre_atg": alc})
    doses = fixed_regimen_doses(weight)
    doses.insert(0, "patient_id", ids[doses.pop("patient")])
    times = np.asarray(sampling_days, float)
    data = PopPKData.from_tables(
        patients, doses,
        pd.DataFrame({"patient_id": np.repeat(ids, times.size), "day": np.tile(times, n),
                      "concentration": 1.0, "bloq": 0}),
        active_fraction=model.active_fraction, lloq=model.residual["lloq"])
    params = model.individual(weight, alc, model.sample_eta(n, rng))
    f = simulate(params, data.infusions, times, t_end=float(times.max()) + 0.5)["concentration"]
    conc, bloq = add_residual_error(f, model, rng, error)
    levels = pd.DataFrame({"patient_id": np.repeat(ids, times.size), "day": np.tile(times, n),
                           "concentration": conc.ravel(), "bloq": bloq.ravel().astype(np.int64)})
    meta = CohortMeta(name=f"pk-virtual-{seed}", donor_source="URD",
                      concentration_unit=model.concentration_unit, simulated=True,
                      description="PK-only virtual cohort (ml.poppk.simulate_pk_cohort)",
                      truth={"pk_model": model.to_toml_string()})
    return Cohort(meta=meta, patients=patients, doses=doses, levels=levels,
                  outcomes=pd.DataFrame({"patient_id": ids}), digest=f"virtual-pk-{seed}-{n}")
