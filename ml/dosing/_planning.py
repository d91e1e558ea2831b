"""The trial, stated for its planners: power on CMV by day 180, the n for 80 %, and what it hinges on.

The arm event rates come from simulation on large virtual populations (``ml.sim``; SIMULATED):
every patient of one population is dosed both ways -- the fixed regimen (as simulated) and the
engine's individualised day -3/-2 doses -- and the outcome model is applied to each patient's
TRUE total AUC under each, many times over (``outcome_draws``), so the rates carry little Monte
Carlo noise. Power and sample size then follow in closed form for the trial's primary test (the
uncorrected pooled two-proportion z-test, :func:`ml.dosing._trial.two_proportion_test`):

    n per arm = [z(1-alpha/2) sqrt(2 pbar qbar) + z(1-beta) sqrt(p1 q1 + p2 q2)]^2 / (p1 - p2)^2

(Fleiss, Levin & Paik, *Statistical Methods for Rates and Proportions*, 3rd ed. 2003, eq. 4.14
without the continuity correction; Chow, Shao & Wang, *Sample Size Calculations in Clinical
Research*, 2nd ed. 2008, sect. 4.2), with ``pbar = (p1 + p2) / 2``. Patients lost to follow-up
before the horizon without the event are not evaluable (as in :class:`InSilicoTrial`), so the
evaluable share of each arm scales n. :func:`replicate_power` checks the closed form against
Monte Carlo trial replicates drawn from the same population.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

from ml._parallel import SerialExecutor
from ml.pk import PopPKModel

from ._errors import DosingRefused
from ._patient import patients_from_cohort
from ._recommendation import DoseRecommendation
from ._regimen import AdjustmentSchedule, DoseCaps
from ._trial import SamplingDesign, cmv_by, true_auc_under, two_proportion_test

__all__ = ["ArmRates", "PlanRow", "TrialPlan", "TrialPlanner", "closest_regimen_auc", "design_paragraph", "endpoint_rates", "iiv_split",
           "replicate_power", "two_proportion_n", "two_proportion_power"]


# ------------------------------------------------------------------------------------------ closed forms
def two_proportion_power(p1: float, p2: float, n_per_arm: float, alpha: float = 0.05) -> float:
    """Power of the two-sided pooled two-proportion z-test (no continuity correction).

    Parameters
    ----------
    p1, p2 : float
        Event probabilities of the two arms.
    n_per_arm : float
        Evaluable patients per arm.
    alpha : float
        Two-sided significance level.

    Returns
    -------
    float
        ``P(|Z| > z(1-alpha/2))`` under the alternative, both tails (Fleiss et al. 2003, eq. 4.14
        solved for power).
    """
    if not (0 <= p1 <= 1 and 0 <= p2 <= 1):
        raise ValueError(f"two_proportion_power: probabilities must be in [0, 1], got {p1!r}, {p2!r}")
    if n_per_arm <= 0:
        return 0.0
    z = stats.norm.ppf(1 - alpha / 2)
    pbar = 0.5 * (p1 + p2)
    s0 = math.sqrt(2 * pbar * (1 - pbar))
    s1 = math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    if s1 == 0:
        return 1.0 if p1 != p2 else 0.0
    d = abs(p1 - p2) * math.sqrt(n_per_arm)
    return float(stats.norm.cdf((d - z * s0) / s1) + stats.norm.cdf((-d - z * s0) / s1))


def two_proportion_n(p1: float, p2: float, power: float = 0.8, alpha: float = 0.05) -> float:
    """Evaluable patients per arm for ``power`` (Fleiss et al. 2003, eq. 4.14, no continuity correction).

    Returns
    -------
    float
        Not rounded (``math.inf`` when ``p1 == p2``).
    """
    if not 0 < power < 1:
        raise ValueError(f"two_proportion_n: `0 < power < 1` must hold, got {power!r}")
    if p1 == p2:
        return math.inf
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    pbar = 0.5 * (p1 + p2)
    num = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return float(num ** 2 / (p1 - p2) ** 2)


# ------------------------------------------------------------------------------------------ PK worlds
def iiv_split(model: PopPKModel, cl_share: float, name: str | None = None) -> PopPKModel:
    """The model with the between-patient variability of log CL and log V1 split anew.

    The total ``omega_CL^2 + omega_V1^2`` is kept; ``cl_share`` of it goes to CL (the shipped
    prior has 0.35^2 / (0.35^2 + 0.25^2) = 0.66). Early levels inform V1 well and CL poorly, so
    moving variability to CL changes how much individualised dosing can gain.

    Parameters
    ----------
    model : PopPKModel
    cl_share : float
        In [0, 1].
    name : str, optional
        Name of the new model (default: ``<name> CL share <cl_share>``).
    """
    if not 0 <= cl_share <= 1:
        raise ValueError(f"iiv_split: `0 <= cl_share <= 1` must hold, got {cl_share!r}")
    total = model.iiv.get("CL", 0.0) ** 2 + model.iiv.get("V1", 0.0) ** 2
    iiv = {**model.iiv, "CL": math.sqrt(cl_share * total), "V1": math.sqrt((1 - cl_share) * total)}
    return replace(model, iiv=iiv, name=name or f"{model.name} CL share {cl_share:g}")


# ------------------------------------------------------------------------------------------ arm rates
@dataclass(frozen=True)
class ArmRates:
    """CMV by the horizon and window attainment per arm, on one virtual population.

    Attributes
    ----------
    p_individualised, p_fixed : float
        Probability of CMV by the horizon among evaluable patients.
    evaluable_individualised, evaluable_fixed : float
        Share of patients evaluable at the horizon.
    attain_individualised, attain_fixed : float
        Share with TRUE total AUC in the true window.
    above_individualised, above_fixed : float
        Share with TRUE total AUC at or above the true ceiling (the side CMV responds to).
    n : int
        Patients of the population; ``outcome_draws`` outcome samples were drawn per patient and arm.
    outcome_draws : int
    difference_se : float
        Monte Carlo standard error of ``p_individualised - p_fixed`` over the outcome draws (given
        this population's exposures; NaN with one draw).
    """

    p_individualised: float
    p_fixed: float
    evaluable_individualised: float
    evaluable_fixed: float
    attain_individualised: float
    attain_fixed: float
    above_individualised: float
    above_fixed: float
    n: int
    outcome_draws: int
    difference_se: float = math.nan

    @property
    def difference(self) -> float:
        """CMV individualised minus fixed (probability)."""
        return self.p_individualised - self.p_fixed

    def power(self, n_total: int, alpha: float = 0.05) -> float:
        """Closed-form power of the trial with ``n_total`` patients randomised 1:1."""
        ev = 0.5 * (self.evaluable_individualised + self.evaluable_fixed)
        return two_proportion_power(self.p_individualised, self.p_fixed, 0.5 * n_total * ev, alpha)

    def n_for(self, power: float = 0.8, alpha: float = 0.05) -> float:
        """Patients to randomise (both arms, 1:1, rounded up to even) for ``power``; inf without effect."""
        ev = 0.5 * (self.evaluable_individualised + self.evaluable_fixed)
        per_arm = two_proportion_n(self.p_individualised, self.p_fixed, power, alpha) / ev
        return math.inf if not math.isfinite(per_arm) else float(2 * math.ceil(per_arm))


def endpoint_rates(virtual, auc_individualised: np.ndarray, horizon_days: float = 180.0,
                   outcome_draws: int = 20, random_state: int = 0, outcome_model=None) -> ArmRates:
    """Arm rates of one population given each patient's TRUE AUC under individualised dosing.

    Parameters
    ----------
    virtual : ml.sim.VirtualCohort
        The population; its ``truth.auc_total`` is the AUC under the fixed regimen.
    auc_individualised : numpy.ndarray
        TRUE total AUC of every patient under the individualised doses, UE*day/mL.
    horizon_days : float
        Endpoint horizon, days from transplant.
    outcome_draws : int
        Outcome samples per patient and arm (more: less Monte Carlo noise in the rates). Draw k
        uses the same random numbers in both arms (common random numbers), so the difference
        between the arms carries far less noise than either rate.
    random_state : int
    outcome_model : ml.sim.OutcomeModel, optional
        Default: the population's own (another one, e.g. with a different effect size, applies
        to the same exposures).
    """
    om = outcome_model if outcome_model is not None else virtual.outcome_model
    patients = virtual.cohort.patients
    fixed = virtual.truth["auc_total"].to_numpy(float)
    ind = np.asarray(auc_individualised, dtype=float)
    lo, up = om.scenario.lower, om.scenario.upper
    counts, per_draw = {}, {}
    for arm, auc in (("ind", ind), ("fixed", fixed)):
        ev = kn = 0
        per_draw[arm] = []
        for k in range(outcome_draws):
            # common random numbers: draw k uses the same stream in both arms, so a patient's outcome
            # differs between the arms only where the exposure changed the hazard
            rng = np.random.default_rng([int(random_state), k])
            event, known = cmv_by(om.sample(patients, auc, rng), horizon_days)
            ev += int((event & known).sum())
            kn += int(known.sum())
            per_draw[arm].append(int((event & known).sum()) / max(int(known.sum()), 1))
        counts[arm] = (ev / max(kn, 1), kn / (outcome_draws * len(auc)))
    diffs = np.subtract(per_draw["ind"], per_draw["fixed"])
    diff_se = float(diffs.std(ddof=1) / math.sqrt(outcome_draws)) if outcome_draws > 1 else math.nan
    inside = lambda a: float(np.mean((a >= lo) & (a < up)))  # noqa: E731
    return ArmRates(p_individualised=counts["ind"][0], p_fixed=counts["fixed"][0],
                    evaluable_individualised=counts["ind"][1], evaluable_fixed=counts["fixed"][1],
                    attain_individualised=inside(ind), attain_fixed=inside(fixed),
                    above_individualised=float(np.mean(ind >= up)), above_fixed=float(np.mean(fixed >= up)), n=len(fixed),
                    outcome_draws=outcome_draws, difference_se=diff_se)


def replicate_power(virtual, auc_individualised: np.ndarray, n_total: int = 324, reps: int = 1000,
                    alpha: float = 0.05, horizon_days: float = 180.0, random_state: int = 0,
                    outcome_model=None) -> tuple[float, float]:
    """Monte Carlo power of the trial: ``reps`` trials of ``n_total`` patients drawn from the population.

    Each replicate draws patients with replacement, randomises them 1:1, samples their outcomes
    from their TRUE AUC under their arm's dosing and applies the trial's test
    (:func:`two_proportion_test`), as :class:`InSilicoTrial` does.

    Returns
    -------
    (power, standard error)
    """
    om = outcome_model if outcome_model is not None else virtual.outcome_model
    patients = virtual.cohort.patients
    fixed = virtual.truth["auc_total"].to_numpy(float)
    ind = np.asarray(auc_individualised, dtype=float)
    rng = np.random.default_rng(random_state)
    half = n_total // 2
    arm = np.r_[np.ones(half, int), np.zeros(n_total - half, int)]
    hits = 0
    for _ in range(reps):
        pick = rng.integers(0, len(fixed), n_total)
        auc = np.where(arm == 1, ind[pick], fixed[pick])
        event, known = cmv_by(om.sample(patients.iloc[pick].reset_index(drop=True), auc, rng), horizon_days)
        k1, k0 = known & (arm == 1), known & (arm == 0)
        p = two_proportion_test(int(event[k1].sum()), int(k1.sum()), int(event[k0].sum()), int(k0.sum()))
        hits += p < alpha
    power = hits / reps
    return power, math.sqrt(power * (1 - power) / reps)


def closest_regimen_auc(virtual, target: float, caps: DoseCaps | None = None,
                        schedule: AdjustmentSchedule | None = None, pk_model: PopPKModel | None = None) -> np.ndarray:
    """TRUE AUC under the regimen a clinician knowing each patient's TRUE PK would give.

    For every patient, among the even splits of whole vials over the schedule's days within the
    daily caps (first day the larger), the regimen whose TRUE total AUC is closest to ``target``:
    the formulation limit of adjusting those days (no engine can do better on attainment of a
    window around ``target``).

    Returns
    -------
    numpy.ndarray
        TRUE total AUC of each patient under that regimen, UE*day/mL.
    """
    caps = caps or DoseCaps()
    schedule = schedule or AdjustmentSchedule()
    model = pk_model or PopPKModel.default()
    weights = virtual.cohort.patients["weight_kg"].to_numpy(float)
    top = np.array([caps.max_vials(w) for w in weights])
    low = caps.min_vials()
    ind = np.arange(len(weights))
    D = len(schedule.days)
    best, gap = np.full(len(weights), np.nan), np.full(len(weights), np.inf)
    for total in range(low * D, D * int(top.max()) + 1):
        per_day = np.stack([np.clip((total + D - 1 - k) // D, low, top) for k in range(D)], axis=1)
        auc = true_auc_under(model, virtual.cohort, virtual.truth, ind, per_day * caps.vial_mg, schedule)
        g = np.abs(auc - target)
        better = g < gap
        best[better], gap[better] = auc[better], g[better]
    return best


# ------------------------------------------------------------------------------------------ the plan
@dataclass(frozen=True)
class PlanRow:
    """One line of the sensitivity table.

    Attributes
    ----------
    group : str
        What is varied: ``registered design``, ``sampling / adjustment``, ``CL/V1 variability``,
        ``exposure-CMV effect``, ``oracle``.
    assumption : str
        The line's assumption or design, in words.
    rates : ArmRates
    power : float
        Closed-form power at the trial's n.
    n_80 : float
        Patients to randomise for 80 % power (inf: no difference).
    """

    group: str
    assumption: str
    rates: ArmRates
    power: float
    n_80: float


@dataclass(frozen=True)
class TrialPlan:
    """Power of the registered design and its sensitivity (all SIMULATED).

    Attributes
    ----------
    rows : tuple of PlanRow
        The first row is the registered design.
    n_total : int
        Patients randomised (1:1).
    alpha : float
    horizon_days : float
    settings : dict
    """

    rows: tuple
    n_total: int
    alpha: float
    horizon_days: float
    settings: dict

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"group": r.group, "assumption": r.assumption,
                              "attain_individualised": r.rates.attain_individualised,
                              "attain_fixed": r.rates.attain_fixed, "above_individualised": r.rates.above_individualised,
                              "above_fixed": r.rates.above_fixed, "cmv_individualised": r.rates.p_individualised,
                              "cmv_fixed": r.rates.p_fixed, "difference_se": r.rates.difference_se, "power": r.power, "n_for_80": r.n_80} for r in self.rows])

    def paragraph(self) -> str:
        """What this means for the registered design (:func:`design_paragraph`)."""
        return design_paragraph(self.to_frame().to_dict(orient="records"), self.n_total, self.alpha, self.horizon_days)

    def to_markdown(self) -> str:
        head = (f"| varied | assumption / design | in window: individualised / fixed | above ceiling: individualised "
                f"/ fixed | CMV d{self.horizon_days:g}: individualised / fixed | difference (+- MC SE) | "
                f"power at n = {self.n_total} | n for 80 % power |\n|---|---|---:|---:|---:|---:|---:|---:|")
        lines = [head]
        for r in self.rows:
            n80 = _round_n(r.n_80)
            a = r.rates
            lines.append(f"| {r.group} | {r.assumption} | {a.attain_individualised:.1%} / {a.attain_fixed:.1%} | "
                         f"{a.above_individualised:.1%} / {a.above_fixed:.1%} | {a.p_individualised:.1%} / "
                         f"{a.p_fixed:.1%} | {100 * a.difference:+.2f} +- {100 * a.difference_se:.2f} points | "
                         f"{r.power:.1%} | {n80} |")
        return "\n".join(lines)


def _dose_population(engine, virtual, design: SamplingDesign) -> np.ndarray:
    """TRUE AUC of every patient of ``virtual`` under the engine's doses (refused: fixed doses)."""
    patients, _ = patients_from_cohort(virtual.cohort, design.last_sample)
    recs = engine.recommend_many(patients, _true_window(virtual))
    doses = np.full((len(patients), len(engine.schedule.days)), np.nan)
    for k, r in enumerate(recs):
        if isinstance(r, DoseRecommendation):
            doses[k] = [d.mg for d in r.doses]
        elif not isinstance(r, DosingRefused):
            raise TypeError(f"unexpected recommendation {r!r}")
    return true_auc_under(engine.model, virtual.cohort, virtual.truth, np.arange(len(patients)), doses,
                          engine.schedule)


def _true_window(virtual):
    from ml.window import true_window

    s = virtual.outcome_model.scenario
    return true_window(lower=s.lower, upper=s.upper, unit=virtual.cohort.meta.exposure_unit,
                       world=s.name, n=virtual.cohort.n).with_origin(source="scenario truth")


class TrialPlanner:
    """Power of the registered design at ``n_total`` and the n for 80 %, with a sensitivity table.

    Each line simulates one virtual population of ``population`` patients (``ml.sim``,
    SIMULATED), doses all of them with the engine and with the fixed regimen, estimates the arm
    rates (:func:`endpoint_rates`) and gives power and n in closed form. Lines:

    * registered design: levels of days -5/-4, doses of days -3/-2 adjusted;
    * sampling / adjustment: a day -3 pre-dose level added; only the day -2 dose adjusted (levels
      up to the day -2 pre-dose one, day -3 given as fixed);
    * CL/V1 variability: the total log-variance of CL and V1 split with ``cl_shares`` on CL
      (:func:`iiv_split`; the engine's model and the simulator's change together, as in
      :class:`InSilicoTrial`);
    * exposure-CMV effect: every exposure log-hazard ratio times ``effect_scales`` (same doses);
    * oracles: each patient's closest regimen under the TRUE PK (:func:`closest_regimen_auc`),
      and every patient at the window's centre (the most any dosing could gain).

    Parameters
    ----------
    engine : DosingEngine
        The individualised arm's engine; its model is the world's PK (the favourable case).
    scenario : str
        ``ml.sim`` scenario (its window is the true one, dosed into).
    population : int
        Virtual patients per line.
    n_total : int
        Patients randomised (1:1) in the registered design.
    alpha : float
    horizon_days : float
    outcome_draws : int
        Outcome samples per patient and arm.
    cl_shares : tuple of float
    effect_scales : tuple of float
    sensitivity : bool
        False: the registered design's line only.
    random_state : int
    progress : callable, optional
        Called with the name of each line as it starts (with an executor: as it is done).
    executor : SerialExecutor or DaskExecutor, optional
        Where the lines are simulated (:mod:`ml._parallel`; default: here, one after the other).
        Every line is seeded by ``random_state`` alone, so the plan is the same with any executor.
    """

    def __init__(self, engine, scenario: str = "urd", population: int = 1000, n_total: int = 324,
                 alpha: float = 0.05, horizon_days: float = 180.0, outcome_draws: int = 20,
                 cl_shares: tuple = (0.35, 0.95), effect_scales: tuple = (0.5, 1.5, 2.0), sensitivity: bool = True,
                 random_state: int = 0, progress=None, executor=None):
        if not (isinstance(population, int) and population >= 2):
            raise ValueError(f"TrialPlanner: `population >= 2` must hold, got {population!r}")
        if not (isinstance(n_total, int) and n_total >= 4 and n_total % 2 == 0):
            raise ValueError(f"TrialPlanner: `n_total` must be an even integer >= 4 (1:1), got {n_total!r}")
        if not 0 < alpha < 1:
            raise ValueError(f"TrialPlanner: `0 < alpha < 1` must hold, got {alpha!r}")
        self.engine, self.scenario, self.population, self.n_total = engine, scenario, population, n_total
        self.alpha, self.horizon_days, self.outcome_draws = alpha, horizon_days, outcome_draws
        self.cl_shares, self.effect_scales, self.sensitivity = tuple(cl_shares), tuple(effect_scales), sensitivity
        self.random_state, self.progress, self.executor = random_state, progress, executor

    def _row(self, group: str, assumption: str, virtual, auc, outcome_model=None) -> PlanRow:
        if self.progress is not None:
            self.progress(assumption)
        rates = endpoint_rates(virtual, auc, self.horizon_days, self.outcome_draws, self.random_state, outcome_model)
        return PlanRow(group, assumption, rates, rates.power(self.n_total, self.alpha), rates.n_for(0.8, self.alpha))

    def _engine(self, **changes):
        import copy

        e = copy.copy(self.engine)
        for k, v in changes.items():
            setattr(e, k, v)
        return e

    def run(self) -> TrialPlan:
        """Simulate every line (on ``executor`` when given) and collect them in table order."""
        tasks: list = ["registered"]
        if self.sensitivity:
            tasks = ["registered", "day -3 level", "day -2 only", *(("cl", share) for share in self.cl_shares),
                     "oracles"]
        executor = SerialExecutor() if self.executor is None else self.executor
        local = copy.copy(self)
        local.executor, local._base = None, None
        if self.executor is not None:  # lines finish in any order: say which one is done
            local.progress = None
        say = self.progress if self.executor is not None and self.progress is not None else None
        parts = executor.map(_plan_lines, tasks, planner=local,
                             progress=(lambda rows: [say(r.assumption) for r in rows]) if say else None)
        by_task = dict(zip(map(str, tasks), parts))
        rows = list(by_task["registered"][:1])
        if self.sensitivity:
            rows += by_task["day -3 level"] + by_task["day -2 only"]
            rows += [r for t, got in zip(tasks, parts) if isinstance(t, tuple) for r in got]
            rows += by_task["registered"][1:] + by_task["oracles"]
        settings = {"scenario": self.scenario, "population": self.population, "n_total": self.n_total,
                    "alpha": self.alpha, "horizon_days": self.horizon_days, "outcome_draws": self.outcome_draws,
                    "random_state": self.random_state, "engine": repr(self.engine)}
        return TrialPlan(rows=tuple(rows), n_total=self.n_total, alpha=self.alpha, horizon_days=self.horizon_days,
                         settings=settings)

    def _population(self, pk_model):
        """The virtual population of ``pk_model`` (the registered model's is simulated once per process)."""
        from ml.sim import simulate_virtual

        if pk_model is not self.engine.model:
            return simulate_virtual(self.scenario, n=self.population, seed=self.random_state, pk_model=pk_model)
        if getattr(self, "_base", None) is None:
            self._base = simulate_virtual(self.scenario, n=self.population, seed=self.random_state, pk_model=pk_model)
        return self._base

    def _lines(self, task) -> list[PlanRow]:
        """The rows of one task of :meth:`run` (each task simulates its own population: same seed, same one)."""
        from ml.sim import simulate_virtual

        from ._trial import DESIGNS

        model = self.engine.model
        say = self.progress or (lambda _: None)
        if isinstance(task, tuple):  # ("cl", share)
            share = task[1]
            total = model.iiv.get("CL", 0.0) ** 2 + model.iiv.get("V1", 0.0) ** 2
            base_share = model.iiv.get("CL", 0.0) ** 2 / total if total else 0.0
            m = iiv_split(model, share)
            v = self._population(pk_model=m)
            say(f"CL share {share:g}")
            return [self._row("CL/V1 variability",
                              f"{share:.0%} of the CL+V1 log-variance on CL (omega CL {m.iiv['CL']:.2f}, "
                              f"V1 {m.iiv['V1']:.2f}; registered: {base_share:.0%})",
                              v, _dose_population(self._engine(model=m), v, DESIGNS[0]))]
        base = self._population(pk_model=model)
        if task == "registered":  # and the effect sizes, which reuse its doses
            say("registered design")
            auc = _dose_population(self.engine, base, DESIGNS[0])
            rows = [self._row("registered design", "levels days -5/-4, doses days -3/-2 adjusted", base, auc)]
            for scale in self.effect_scales if self.sensitivity else ():
                om = simulate_virtual(self.scenario, n=1, seed=self.random_state, pk_model=model,
                                      effect_scale=scale).outcome_model
                rows.append(self._row("exposure-CMV effect", f"exposure log-hazard ratios x {scale:g}", base, auc, om))
            return rows
        if task == "day -3 level":
            say("day -3 level")
            return [self._row("sampling / adjustment", "+ day -3 pre-dose level", base,
                              _dose_population(self.engine, base, DESIGNS[1]))]
        if task == "day -2 only":
            sched = AdjustmentSchedule(days=(self.engine.schedule.days[-1],), start_hour=self.engine.schedule.start_hour,
                                       infusion_hours=self.engine.schedule.infusion_hours)
            say("day -2 only")
            return [self._row("sampling / adjustment",
                              f"only the day {sched.days[0]} dose adjusted (levels up to its pre-dose level)",
                              base, _dose_population(self._engine(schedule=sched), base,
                                                     SamplingDesign("to day -2 pre-dose", sched.decision_time)))]
        if task == "oracles":
            s = base.outcome_model.scenario
            centre = 0.5 * (s.lower + s.upper)
            return [self._row("oracle", "each patient's closest regimen under the TRUE PK", base,
                              closest_regimen_auc(base, centre, self.engine.caps, self.engine.schedule, model)),
                    self._row("oracle", f"every patient at the window's centre ({centre:g})", base,
                              np.full(self.population, centre))]
        raise ValueError(f"unknown planning task {task!r}")


def _plan_lines(task, planner: TrialPlanner) -> list[PlanRow]:
    """Rows of one task of :meth:`TrialPlanner.run` (module level, so a Dask worker can run it)."""
    return planner._lines(task)


def _round_n(n) -> str:
    """A sample size to two significant digits (the rates behind it are Monte Carlo estimates)."""
    if n is None or not math.isfinite(n):
        return "no n (no difference)"
    digits = max(int(math.floor(math.log10(n))) - 1, 0)
    return f"about {round(n, -digits):,.0f}" if digits else f"{n:,.0f}"


def design_paragraph(rows: list[dict], n_total: int, alpha: float = 0.05, horizon_days: float = 180.0) -> str:
    """What the power analysis means for the registered design, in one paragraph (SIMULATED).

    Parameters
    ----------
    rows : list of dict
        :meth:`TrialPlan.to_frame` records (the first is the registered design); a summary JSON of
        ``atgwin trial --out`` holds them under ``"plan"``.
    n_total : int
        Patients randomised.
    alpha : float
    horizon_days : float

    Returns
    -------
    str
        Plain text, every number taken from ``rows``.
    """
    def n80(r):
        return _round_n(r["n_for_80"])

    base = rows[0]
    text = (f"SIMULATION: in virtual URD patients (ml.sim, engine model = the simulator's PK, the favourable case), "
            f"individualising the day -3/-2 doses from day -5/-4 levels moves attainment of the true window from "
            f"{base['attain_fixed']:.0%} (fixed 10 mg/kg) to {base['attain_individualised']:.0%} and the share above "
            f"the ceiling from {base['above_fixed']:.0%} to {base['above_individualised']:.0%}; CMV by day "
            f"{horizon_days:g} goes from {base['cmv_fixed']:.1%} to {base['cmv_individualised']:.1%}"
            + (f" ({100 * (base['cmv_individualised'] - base['cmv_fixed']):+.2f} +- "
               f"{100 * base['difference_se']:.2f} points, Monte Carlo SE)"
               if base.get("difference_se") is not None and math.isfinite(base["difference_se"]) else "")
            + f". With {n_total} "
            f"patients (1:1, alpha {alpha:g}) the primary comparison has {base['power']:.1%} power; 80 % would need "
            f"{n80(base)} patients.")
    others = rows[1:]
    if others:
        design = [r for r in others if r["group"] == "sampling / adjustment"]
        oracle = [r for r in others if r["group"] == "oracle"]
        if design:
            text += " Sampling and adjustment: " + "; ".join(
                f"{r['assumption']}: power {r['power']:.1%}, n for 80 % {n80(r)}" for r in design) + "."
        effect = [r for r in others if r["group"] == "exposure-CMV effect"]
        split = [r for r in others if r["group"] == "CL/V1 variability"]
        if split:
            text += " If between-patient variability sat elsewhere: " + "; ".join(
                f"{r['assumption'].split(' (')[0]}: power {r['power']:.1%}" for r in split) + "."
        if effect:
            text += " The size of the exposure-CMV effect: " + "; ".join(
                f"{r['assumption']}: power {r['power']:.1%}" for r in effect) + "."
        if oracle:
            text += (" Even dosing with each patient's TRUE PK known ('" + oracle[0]["assumption"] + "') gives "
                     f"{oracle[0]['power']:.1%} power (n for 80 % {n80(oracle[0])}): CMV responds mostly to exposure "
                     "above the ceiling (the simulator's [outcomes.cmv] in ml/sim/default_scenarios.toml), so the "
                     "design is limited by the size of the exposure-CMV effect as much as by the engine.")
    return text
