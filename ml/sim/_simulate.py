"""Virtual cohorts in the contract format, with their ground truth."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ml.cohort._model import Cohort, CohortMeta
from ml.pk import PopPKModel, fixed_regimen_doses, infusions_from_doses, simulate

from ._config import SimulationConfig
from ._levels import observe, sampling_times
from ._outcomes import OutcomeModel
from ._patients import sample_patients

_STREAMS = ("patients", "pk", "residual", "outcomes")


@dataclass(frozen=True)
class VirtualCohort:
    """A simulated cohort and what discovery never sees.

    Attributes
    ----------
    cohort : Cohort
        The cohort, as any loader would return it (``meta.simulated`` is True, ``meta.truth``
        holds the window).
    truth : pandas.DataFrame
        Per patient: individual PK parameters and the noiseless model AUCs ``auc_pre``,
        ``auc_post``, ``auc_total`` (UE*day/mL).
    outcome_model : OutcomeModel
        The outcome model that generated ``cohort.outcomes`` (for in-silico trials).
    """

    cohort: Cohort
    truth: pd.DataFrame
    outcome_model: OutcomeModel


def simulate_virtual(
    scenario: str = "urd",
    n: int | None = None,
    seed: int = 0,
    lower: float | None = None,
    upper: float | None = None,
    *,
    config: SimulationConfig | None = None,
    pk_model: PopPKModel | None = None,
    name: str | None = None,
    progress: Callable[[int], object] | None = None,
) -> VirtualCohort:
    """Simulate a virtual cohort of a scenario of spec/simulator.md.

    Parameters
    ----------
    scenario : str
        ``urd``, ``haplo``, ``null``, ``shifted`` or ``hinge`` (or any scenario of ``config``).
    n : int, optional
        Number of patients (default: the scenario's).
    seed : int
        Seed; the same seed (and parameters) gives the same cohort, byte for byte when written.
    lower, upper : float, optional
        True window bounds, UE*day/mL (default: the scenario's).
    config : SimulationConfig, optional
        Simulator assumptions (default: the shipped file).
    pk_model : PopPKModel, optional
        Population PK model (default: ``PopPKModel.default()``; a fitted model file works too).
    name : str, optional
        Cohort name (default ``sim-<scenario>-n<n>-s<seed>``).
    progress : callable, optional
        Called with the number of patients whose PK is done (for progress bars).

    Returns
    -------
    VirtualCohort
    """
    config = config or SimulationConfig.default()
    pk_model = pk_model or PopPKModel.default()
    spec = config.scenario(scenario)
    overrides = {k: float(v) for k, v in (("lower", lower), ("upper", upper)) if v is not None}
    if overrides:
        spec = replace(spec, **overrides)
    n = spec.n if n is None else int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rngs = dict(zip(_STREAMS, (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(_STREAMS)))))

    patients = sample_patients(config.covariates, spec.donor_type, n, rngs["patients"])
    ids = patients["patient_id"].to_numpy()
    r = config.regimen
    doses = fixed_regimen_doses(patients["weight_kg"].to_numpy(), r["mg_per_kg_per_day"], tuple(r["days"]),
                                r["vial_mg"], r["start_hour"], r["first_infusion_hours"], r["later_infusion_hours"])
    doses.insert(0, "patient_id", ids[doses["patient"].to_numpy()])
    eta = pk_model.sample_eta(n, rngs["pk"])
    params = pk_model.individual(patients["weight_kg"].to_numpy(), patients["alc_pre_atg"].to_numpy(), eta)
    infusions = infusions_from_doses(doses, ids, pk_model.active_fraction)
    times = sampling_times(doses, config.sampling)
    pk = simulate(params, infusions, times, progress=progress)
    conc, bloq = observe(pk["concentration"], pk_model.residual, rngs["residual"])
    levels = pd.DataFrame({
        "patient_id": np.repeat(ids, times.size),
        "day": np.tile(np.round(times, 6), n),
        "concentration": conc.ravel(),
        "bloq": bloq.ravel(),
    })
    auc_total = pk["auc_pre"] + pk["auc_post"]
    outcome_model = OutcomeModel(config.outcomes, config.follow_up, config.engraftment, spec)
    outcomes = outcome_model.sample(patients, auc_total, rngs["outcomes"])

    meta = CohortMeta(
        name=name or f"sim-{scenario}-n{n}-s{seed}",
        donor_source=spec.donor_type,
        concentration_unit=pk_model.concentration_unit,
        simulated=True,
        description=f"SIMULATED virtual cohort, scenario {scenario}: {spec.description}",
        truth={"scenario": scenario, "effect": spec.effect, "lower": spec.lower, "upper": spec.upper,
               "seed": seed, "pk_model": pk_model.name},
    )
    cohort = _as_cohort(meta, patients, doses.drop(columns="patient"), levels, outcomes)
    truth = pd.DataFrame({"patient_id": ids, **{p: getattr(params, p) for p in ("CL", "V1", "Q", "V2", "Vmax", "Km")},
                          "auc_pre": pk["auc_pre"], "auc_post": pk["auc_post"], "auc_total": auc_total})
    return VirtualCohort(cohort=cohort, truth=truth, outcome_model=outcome_model)


def _as_cohort(meta, patients, doses, levels, outcomes) -> Cohort:
    """Validate the tables through the contract, exactly as a loaded cohort would be."""
    from ml.cohort import cohort_from_tables

    return cohort_from_tables(meta, patients, doses, levels, outcomes)


def simulate_cohort(scenario: str = "urd", n: int | None = None, seed: int = 0,
                    lower: float | None = None, upper: float | None = None, **kwargs) -> Cohort:
    """Like :func:`simulate_virtual` but only the cohort (what a user would have)."""
    return simulate_virtual(scenario, n, seed, lower, upper, **kwargs).cohort
