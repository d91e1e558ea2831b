"""In-silico trial: individualised vs fixed ATG dosing on virtual patients (the URD trial's design).

Each replicate draws a virtual cohort (:func:`ml.sim.simulate_virtual`), randomises it 1:1,
gives the fixed arm the fixed 10 mg/kg regimen (as simulated) and the individualised arm the
engine's day -3/-2 doses computed from the levels of each sampling design, then computes every
patient's TRUE total AUC under the doses received and draws outcomes from the simulator's
outcome model with it. Per arm: attainment of the true window and CMV reactivation by day 180;
the primary comparison is a two-sided two-proportion z-test of CMV by day 180 (patients lost to
follow-up before day 180 without CMV are left out; deaths before CMV count as no CMV, as in a
cumulative incidence with death competing). Power is the share of replicates with p < alpha.
Outcome random numbers are shared by the sampling designs of a replicate, so designs are
compared on the same patients and the same luck.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from ml._parallel import SerialExecutor
from ml.pk import Infusions, PKParameters, PopPKModel, simulate

from ._engine import DosingEngine
from ._errors import DosingRefused
from ._patient import patients_from_cohort
from ._recommendation import DoseRecommendation
from ._window import WindowRecord

__all__ = ["DESIGNS", "InSilicoTrial", "SamplingDesign", "TrialResult"]


@dataclass(frozen=True)
class SamplingDesign:
    """Which levels the engine may use: those drawn up to ``last_sample`` (days from transplant).

    Attributes
    ----------
    name : str
    last_sample : float
        Latest sampling time used, days from transplant.
    """

    name: str
    last_sample: float


#: days -5/-4 only (levels before and after the day -5 and day -4 infusions), and the same plus the
#: day -3 pre-dose level (drawn at 08:00, just before the first adjustable infusion)
DESIGNS = (SamplingDesign("days -5/-4", -3 + 8 / 24 - 1e-3), SamplingDesign("days -5/-4 + day -3 pre-dose", -3 + 8 / 24))


def two_proportion_test(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (1.0 when undefined)."""
    if min(n1, n2) == 0:
        return 1.0
    p = (x1 + x2) / (n1 + n2)
    se = np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    return float(2 * stats.norm.sf(abs(x1 / n1 - x2 / n2) / se))


def cmv_by(outcomes: pd.DataFrame, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """(CMV by ``horizon``, evaluable) per patient, as the trial counts them.

    A patient lost to follow-up before ``horizon`` (days from transplant) without CMV is not
    evaluable; death before CMV counts as no CMV (death competing).
    """
    cmv = outcomes["cmv_day"].to_numpy(float)
    last = outcomes["last_followup_day"].to_numpy(float)
    died = ~np.isnan(outcomes["death_day"].to_numpy(float))
    event = cmv <= horizon
    return event, event | (last >= horizon) | died


@dataclass(frozen=True)
class TrialResult:
    """Per-replicate results of an in-silico trial and their summary.

    Attributes
    ----------
    replicates : pandas.DataFrame
        One row per replicate and design: attainment and CMV by day 180 per arm, p-value,
        refusals and warnings in the individualised arm.
    alpha : float
    settings : dict
    """

    replicates: pd.DataFrame
    alpha: float
    settings: dict = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Per design: mean attainment and CMV per arm, power with its Monte Carlo SE."""
        r = self.replicates
        g = r.groupby("design", sort=False)
        out = g.agg(reps=("rep", "size"), attain_individualised=("attain_ind", "mean"),
                    attain_fixed=("attain_fixed", "mean"), cmv180_individualised=("cmv_ind", "mean"),
                    cmv180_fixed=("cmv_fixed", "mean"), power=("reject", "mean"),
                    refused=("refused", "sum"), warned=("warned", "mean"))
        out["power_se"] = np.sqrt(out["power"] * (1 - out["power"]) / out["reps"])
        return out.reset_index()

    def to_markdown(self) -> str:
        s = self.summary()
        lines = ["| sampling design | reps | in window: individualised | in window: fixed | CMV d180: individualised "
                 "| CMV d180: fixed | power (alpha %g) |" % self.alpha, "|---|---|---|---|---|---|---|"]
        for row in s.itertuples(index=False):
            lines.append(f"| {row.design} | {row.reps} | {row.attain_individualised:.1%} | {row.attain_fixed:.1%} | "
                         f"{row.cmv180_individualised:.1%} | {row.cmv180_fixed:.1%} | "
                         f"{row.power:.1%} +- {row.power_se:.1%} |")
        return "\n".join(lines)


class InSilicoTrial:
    """1:1 individualised vs fixed dosing on virtual cohorts.

    Parameters
    ----------
    engine : DosingEngine
        The individualised arm's engine.
    window : ml.window.ExposureWindow or None
        The window the engine doses into; None uses the scenario's true window
        (:func:`ml.window.true_window`, target at its centre), i.e. a perfectly discovered window.
    scenario : str
        ``ml.sim`` scenario (outcomes follow its true window).
    n : int
        Patients per replicate (both arms).
    reps : int
    designs : tuple of SamplingDesign
    alpha : float
    horizon_days : float
        CMV endpoint horizon, days from transplant.
    random_state : int
        Seeds replicate ``k`` through child ``k`` of ``SeedSequence(random_state)``, so a replicate's
        numbers do not depend on where it runs.
    progress : bool
        Show a progress bar over replicates.
    executor : SerialExecutor or DaskExecutor, optional
        Where the replicates run (:mod:`ml._parallel`; default: here, one after the other). The
        result is the same with any executor.
    """

    def __init__(self, engine: DosingEngine, window=None, scenario: str = "urd",
                 n: int = 324, reps: int = 200, designs: tuple[SamplingDesign, ...] = DESIGNS,
                 alpha: float = 0.05, horizon_days: float = 180.0, random_state: int = 0, progress: bool = True,
                 executor=None):
        if not (isinstance(n, int) and n >= 4 and n % 2 == 0):
            raise ValueError(f"InSilicoTrial: `n` must be an even integer >= 4 (1:1 allocation), got {n!r}")
        if not (isinstance(reps, int) and reps >= 1):
            raise ValueError(f"InSilicoTrial: `reps >= 1` must hold, got {reps!r}")
        if not 0 < alpha < 1:
            raise ValueError(f"InSilicoTrial: `0 < alpha < 1` must hold, got {alpha!r}")
        self.engine, self.window, self.scenario = engine, window, scenario
        self.n, self.reps, self.designs, self.alpha = n, reps, tuple(designs), alpha
        self.horizon_days, self.random_state, self.progress = horizon_days, random_state, progress
        self.executor = executor

    def run(self) -> TrialResult:
        """Run the replicates (on ``executor`` when given) and collect them in replicate order."""
        seeds = np.random.SeedSequence(self.random_state).spawn(self.reps)
        executor = SerialExecutor() if self.executor is None else self.executor
        local = copy.copy(self)
        local.executor, local.progress = None, False  # what the workers receive
        with tqdm(total=self.reps, desc="in-silico trial", unit="rep", disable=not self.progress) as bar:
            per_rep = executor.map(_run_replicate, list(enumerate(seeds)), trial=local,
                                   progress=lambda _: bar.update(1))
        rows = [row for rep_rows in per_rep for row in rep_rows]
        settings = {"scenario": self.scenario, "n": self.n, "reps": self.reps, "alpha": self.alpha,
                    "horizon_days": self.horizon_days, "random_state": self.random_state,
                    "engine": repr(self.engine), "window": None if self.window is None else WindowRecord.of(self.window).to_dict()}
        return TrialResult(replicates=pd.DataFrame(rows), alpha=self.alpha, settings=settings)

    def _one(self, rep: int, ss: np.random.SeedSequence) -> list[dict]:
        from ml.sim import simulate_virtual

        cohort_seed, alloc_seed, outcome_seed = (int(s.generate_state(1)[0]) for s in ss.spawn(3))
        v = simulate_virtual(self.scenario, n=self.n, seed=cohort_seed, pk_model=self.engine.model)
        return self._replicate(rep, v, np.random.default_rng(alloc_seed), outcome_seed)

    def _replicate(self, rep: int, v, rng: np.random.Generator, outcome_seed: int) -> list[dict]:
        from ml.window import true_window

        cohort, truth, om = v.cohort, v.truth, v.outcome_model
        lo, up = om.scenario.lower, om.scenario.upper
        window = self.window or true_window(lower=lo, upper=up, unit=cohort.meta.exposure_unit, world=self.scenario,
                                           n=self.n).with_origin(source=f"scenario {self.scenario} truth")
        arm = rng.permutation(np.r_[np.zeros(self.n // 2, int), np.ones(self.n // 2, int)])  # 1 = individualised
        ind = np.flatnonzero(arm == 1)
        fixed_auc = truth["auc_total"].to_numpy(float)
        out = []
        for design in self.designs:
            patients, _ = patients_from_cohort(cohort, design.last_sample)
            sub = [patients[i] for i in ind]
            recs = self.engine.recommend_many(sub, window)
            auc = fixed_auc.copy()
            auc[ind] = _true_auc(self.engine.model, cohort, truth, ind, recs, self.engine.schedule)
            refused = sum(isinstance(r, DosingRefused) for r in recs)
            warned = np.mean([bool(r.warnings) for r in recs if isinstance(r, DoseRecommendation)] or [0.0])
            outcomes = om.sample(cohort.patients, auc, np.random.default_rng(outcome_seed))
            event, known = cmv_by(outcomes, self.horizon_days)
            inside = (auc >= lo) & (auc < up)
            k1, k0 = known & (arm == 1), known & (arm == 0)
            x1, n1, x0, n0 = int(event[k1].sum()), int(k1.sum()), int(event[k0].sum()), int(k0.sum())
            p = two_proportion_test(x1, n1, x0, n0)
            out.append({"rep": rep, "design": design.name, "attain_ind": float(inside[arm == 1].mean()),
                        "attain_fixed": float(inside[arm == 0].mean()), "cmv_ind": x1 / max(n1, 1),
                        "cmv_fixed": x0 / max(n0, 1), "p_value": p, "reject": p < self.alpha,
                        "refused": refused, "warned": float(warned)})
        return out


def _run_replicate(task: tuple[int, np.random.SeedSequence], trial: InSilicoTrial) -> list[dict]:
    """Rows of replicate ``task = (rep, seed)`` (module level, so a Dask worker can run it)."""
    rep, ss = task
    return trial._one(rep, ss)


def _true_auc(model: PopPKModel, cohort, truth: pd.DataFrame, ind: np.ndarray, recs: list, schedule) -> np.ndarray:
    """True total AUC of the individualised patients under the doses they receive.

    Days -5/-4 doses as given; days -3/-2 as recommended (a refused patient gets the fixed
    regimen's doses, as a centre would).
    """
    doses = np.full((len(ind), len(schedule.days)), np.nan)
    for k, rec in enumerate(recs):
        if isinstance(rec, DoseRecommendation):
            doses[k] = [d.mg for d in rec.doses]
    return true_auc_under(model, cohort, truth, ind, doses, schedule)


def true_auc_under(model: PopPKModel, cohort, truth: pd.DataFrame, ind: np.ndarray, doses_mg: np.ndarray,
                   schedule) -> np.ndarray:
    """True total AUC (UE*day/mL) of patients ``ind`` of a virtual cohort under given adjustable doses.

    Parameters
    ----------
    model : PopPKModel
        Only its ``active_fraction`` is used (the PK parameters are each patient's true ones).
    cohort : ml.cohort.Cohort
        The virtual cohort (its doses before the schedule's decision time are kept as given).
    truth : pandas.DataFrame
        ``VirtualCohort.truth`` (true individual PK parameters).
    ind : numpy.ndarray of int
        Rows of ``cohort.patients``.
    doses_mg : numpy.ndarray, shape (len(ind), len(schedule.days))
        Thymoglobulin, mg, on each adjustable day; a row of NaN keeps the cohort's own (fixed)
        doses for that patient.
    schedule : AdjustmentSchedule
        Adjustable days, start hour, infusion duration.
    """
    ind = np.asarray(ind, dtype=int)
    doses_mg = np.asarray(doses_mg, dtype=float).reshape(len(ind), len(schedule.days))
    keep_given = np.isnan(doses_mg).any(axis=1)
    ids = cohort.patients["patient_id"].astype(str).to_numpy()[ind]
    doses = cohort.doses
    pid = doses["patient_id"].astype(str)
    pos = {p: k for k, p in enumerate(ids)}
    start_all = doses["day"].to_numpy(float) + doses["start_hour"].fillna(8.0).to_numpy(float) / 24.0
    rows, start, dur, amt = [], [], [], []
    for p, s, h, mg in zip(pid, start_all, doses["infusion_hours"], doses["dose_mg"]):
        k = pos.get(p)
        if k is None:
            continue
        if s < schedule.decision_time - 1e-6 or keep_given[k]:
            rows.append(k), start.append(s), dur.append(h / 24.0), amt.append(mg * model.active_fraction)
    for k in np.flatnonzero(~keep_given):
        for s, mg in zip(schedule.starts, doses_mg[k]):
            rows.append(k), start.append(s), dur.append(schedule.infusion_hours / 24.0)
            amt.append(mg * model.active_fraction)
    t = truth.set_index(truth["patient_id"].astype(str)).loc[ids]
    params = PKParameters(**{p: t[p].to_numpy(float) for p in ("CL", "V1", "Q", "V2", "Vmax", "Km")})
    out = simulate(params, Infusions(np.array(rows), np.array(start), np.array(dur), np.array(amt), len(ids)))
    return out["auc_pre"] + out["auc_post"]
