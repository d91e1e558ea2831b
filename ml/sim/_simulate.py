"""Virtual cohorts in the contract format, with their ground truth."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ml.cohort._model import Cohort, CohortMeta
from ml.pk import PopPKModel, fixed_regimen_doses, infusions_from_doses, simulate

from ._config import Scenario, SimulationConfig
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
    pk_model: PopPKModel | str | Path | None = None,
    effect_scale: float | None = None,
    name: str | None = None,
    progress: Callable[[int], object] | None = None,
) -> VirtualCohort:
    """Simulate a virtual cohort of a scenario of ``ml/sim/default_scenarios.toml``.

    Parameters
    ----------
    scenario : str
        ``urd``, ``haplo``, ``null``, ``shifted``, ``hinge``, ``floor-only``, ``ceiling-only``,
        ``overlap`` (or any scenario of ``config``).
    n : int, optional
        Number of patients (default: the scenario's).
    seed : int
        Seed; the same seed (and parameters) gives the same cohort, byte for byte when written.
    lower, upper : float, optional
        True window bounds, UE*day/mL (default: the scenario's). The floor side's effects apply
        below ``lower``, the ceiling side's at or above ``upper``.
    config : SimulationConfig, optional
        Simulator assumptions (default: the shipped file).
    pk_model : PopPKModel or path, optional
        Population PK model that generates the true exposures and levels, or the path of a
        model file (TOML or JSON, :meth:`ml.pk.PopPKModel.from_file`). Default:
        ``PopPKModel.default()``, the prior the package ships; another model gives a world
        whose PK differs from that prior.
    effect_scale : float, optional
        Factor (>= 0) on every exposure log-hazard ratio (default: the scenario's, 1 for the
        shipped ones); 0.5 halves the log effect, 1.5 strengthens it.
    name : str, optional
        Cohort name (default ``sim-<scenario>-n<n>-s<seed>``).
    progress : callable, optional
        Called with the number of patients whose PK is done (for progress bars).

    Returns
    -------
    VirtualCohort
    """
    config = config or SimulationConfig.default()
    if pk_model is None:
        pk_model = PopPKModel.default()
    elif not isinstance(pk_model, PopPKModel):
        pk_model = PopPKModel.from_file(pk_model)
    spec = config.scenario(scenario)
    overrides = {k: float(v) for k, v in (("lower", lower), ("upper", upper)) if v is not None}
    if effect_scale is not None:
        overrides["effect_scale"] = effect_scale
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
        truth=_truth(scenario, spec, seed, pk_model),
    )
    cohort = _as_cohort(meta, patients, doses.drop(columns="patient"), levels, outcomes)
    truth = pd.DataFrame({"patient_id": ids, **{p: getattr(params, p) for p in ("CL", "V1", "Q", "V2", "Vmax", "Km")},
                          "auc_pre": pk["auc_pre"], "auc_post": pk["auc_post"], "auc_total": auc_total})
    return VirtualCohort(cohort=cohort, truth=truth, outcome_model=outcome_model)


def _truth(scenario: str, spec: Scenario, seed: int, pk_model: PopPKModel) -> dict:
    """``[truth]`` of a cohort: the keys of old files first, in their order, then the sides."""
    t = spec.truth()
    head = {"scenario": scenario, "effect": t.pop("effect"), "lower": t.pop("lower"),
            "upper": t.pop("upper"), "seed": seed, "pk_model": pk_model.name}
    return {**head, **t}


def _as_cohort(meta, patients, doses, levels, outcomes) -> Cohort:
    """Validate the tables through the contract, exactly as a loaded cohort would be."""
    from ml.cohort import cohort_from_tables

    return cohort_from_tables(meta, patients, doses, levels, outcomes)


def simulate_cohort(scenario: str = "urd", n: int | None = None, seed: int = 0,
                    lower: float | None = None, upper: float | None = None, **kwargs) -> Cohort:
    """Like :func:`simulate_virtual` but only the cohort (what a user would have).

    Keyword arguments (``config``, ``pk_model``, ``effect_scale``, ``name``, ``progress``) are
    those of :func:`simulate_virtual`.
    """
    return simulate_virtual(scenario, n, seed, lower, upper, **kwargs).cohort
