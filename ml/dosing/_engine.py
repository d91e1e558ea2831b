"""The dosing engine: early levels -> posterior PK -> forecast AUC per real regimen -> best regimen."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr

from ml._status import WindowStatus
from ml.pk import (
    LaplaceImportance,
    LevelLikelihood,
    MAPFit,
    PopPKModel,
    PosteriorDraws,
    fit_map,
    prune_draws,
    round_to_vials,
    take_patients,
)

from ._errors import DosingRefused
from ._forecast import harm_probabilities, node_levels, simulate_total_auc, spline_grid, weighted_quantile
from ._gates import check_dosable
from ._misfit import population_misfit
from ._objective import MostProbableInWindow
from ._patient import PatientData
from ._recommendation import AUCForecast, DayDose, DoseRecommendation, PosteriorSummary
from ._regimen import AdjustmentSchedule, DoseCaps
from ._window import WindowOverride, WindowRecord, check_status, check_units, model_mismatch

__all__ = ["MISFIT_POLICIES", "DosingEngine", "Thresholds"]

#: what the engine does with a batch its population model misfits (see ``DosingEngine.on_misfit``)
MISFIT_POLICIES = ("refuse", "warn")

_TIME_TOL = 1.0 / 86400.0  # one second, days


@dataclass(frozen=True)
class Thresholds:
    """When the engine says it is unsure (each crossing adds a warning to the recommendation).

    Attributes
    ----------
    min_probability : float
        Warn when no regimen reaches the window with at least this probability (default 0.35:
        with days -5/-4 levels and the default model the best probability is typically 0.45-0.57,
        so the warning marks patients who cannot be brought into the window within the caps or
        whose forecast is unusually uncertain; 0.5 would flag about half of all patients).
    residual_z : float
        Warn when a level is this many residual SDs from the best-fit prediction (for a BLOQ
        level: the prediction this many SDs above the LLOQ): the level is implausible for the
        doses given.
    eta_z : float
        Warn when a MAP random effect is this many population SDs from the typical patient.
    min_ess : float
        Warn when the effective sample size of the posterior draws is below this.
    max_interval_ratio : float
        Warn when the forecast interval of the recommended regimen is this wide relative to its
        median, ``(upper - lower) / median`` (default 1.5; typically about 1.0, 99th percentile
        1.2-1.4 on virtual patients).
    surrogate_tolerance : float
        Warn when the probability in window from the interpolated forecast differs from the
        direct simulation of the chosen regimen by more than this.
    max_floor_increase : float
        Warn when the recommended regimen's P(below floor) exceeds the fixed regimen's by more
        than this (default 0.10): the recommendation trades under-exposure for something else,
        and the reader must see it with both numbers.
    """

    min_probability: float = 0.35
    residual_z: float = 3.5
    eta_z: float = 3.5
    min_ess: float = 30.0
    max_interval_ratio: float = 1.5
    surrogate_tolerance: float = 0.05
    max_floor_increase: float = 0.10

    def __post_init__(self) -> None:
        for name in ("min_probability", "surrogate_tolerance", "max_floor_increase"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ValueError(f"Thresholds: `0 <= {name} <= 1` must hold, got {v!r}")
        for name in ("residual_z", "eta_z", "min_ess", "max_interval_ratio"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"Thresholds: `{name} > 0` must hold, got {v!r}")


def _patient_seed(seed: int, patient_id: str) -> np.random.Generator:
    digest = int.from_bytes(hashlib.sha256(patient_id.encode()).digest()[:8], "little")
    return np.random.default_rng(np.random.SeedSequence([int(seed), digest]))


class DosingEngine:
    """Individualise the adjustable ATG doses so total AUC lands in an exposure window.

    For each patient: MAP Bayesian fit of the population PK model to the levels measured before
    the decision (below-LLOQ aware), weighted posterior draws (``posterior`` strategy), forecast
    of total AUC (UE*day/mL) under every regimen of whole vials within the caps on the
    schedule's days, the probabilities of landing below the floor, in ``[lower, upper)`` and at
    or above the ceiling, and the regimen with the best ``objective`` score (default
    :class:`MostProbableInWindow`: the highest probability in the window;
    :class:`HarmWeighted` weighs the two harms). Near-ties (score within ``tie_tolerance`` of
    the best) go to the forecast median closest to the window's target; medians within
    ``target_tolerance`` x the window width of the closest count as equally close, and among those the most even split
    between days wins, then the smaller total, then the larger first dose. (Total AUC depends
    almost only on the total dose, so without the last rules the split between days would be
    decided by noise.) For the choice the probability is estimated with a smoothed indicator
    (a normal CDF of bandwidth ``smoothing`` x the window width at each bound) so that it varies
    smoothly with the dose instead of in Monte Carlo steps; the reported probability uses the
    plain indicator. Every recommendation reports the three probabilities for the recommended
    and for the fixed regimen, from the same draws, and warns when the recommendation raises
    P(below floor) over the fixed regimen's by more than ``thresholds.max_floor_increase``.

    Only a two-sided window is dosed into (:func:`ml.dosing._gates.check_dosable`): a window
    open on a side, or whose ``finding`` is not ``"window"``, is refused whatever its status.

    Parameters
    ----------
    model : PopPKModel, optional
        Population PK model (default :meth:`PopPKModel.default`).
    caps : DoseCaps
        Per-day caps, minimum, vial size, optional course cap.
    schedule : AdjustmentSchedule
        Adjustable days, start hour and infusion duration (default days -3, -2 at 08:00, 4 h).
    posterior : LaplaceImportance or PriorImportance
        How posterior draws are made (default ``LaplaceImportance(256)``).
    nodes_per_day : int or None
        Doses simulated per day before cubic interpolation across the vial grid; None simulates
        every regimen directly (slow, exact).
    tie_tolerance : float
        Scores within this of the best count as ties (probability units for both objectives).
    target_tolerance : float
        Forecast medians within this fraction of the window width of the closest to the target
        count as equally close (default 0.05: 2.4 UE*day/mL for [100, 148.5), about a third of
        what one 25 mg vial adds for a typical patient).
    smoothing : float
        Bandwidth of the smoothed indicator used to rank regimens, fraction of the window width
        (default 0.05).
    interval : float
        Coverage of the reported forecast interval (0.9: 5th-95th percentile).
    fixed_mg_per_kg_per_day : float
        The fixed regimen shown for comparison, mg/kg on each adjustable day (rounded to vials).
    thresholds : Thresholds
        When to warn.
    objective : MostProbableInWindow or HarmWeighted
        How regimens are ranked (default ``MostProbableInWindow()``); see
        :mod:`ml.dosing._objective`.
    random_state : int, numpy.random.Generator or None
        An int gives every patient its own stream derived from the seed and the patient id, so
        a recommendation does not depend on the other patients of a batch; a Generator is used
        as given (spawned per patient); None draws fresh entropy.
    on_misfit : {"refuse", "warn"}
        What :meth:`recommend_many` does when the batch shows that the population model does not
        describe these patients (:func:`ml.dosing._misfit.population_misfit`: at least 20
        patients whose mean MAP deviation of CL or V1 is at least 0.25 population SD away from
        0, at |t| >= 4). ``"refuse"`` (default): every patient of the batch is refused with the
        reason, and a centre gives the fixed regimen; in the closed-loop benchmark
        (docs/benchmarks.md, "closed-loop") dosing such a batch with the misfit model put more
        patients below the true floor than fixed dosing (81 % against 70 %). ``"warn"``: the
        patients are dosed and every recommendation carries the warning. One patient at a time
        (fewer than 20) is never judged.
    """

    def __init__(self, model: PopPKModel | None = None, caps: DoseCaps | None = None,
                 schedule: AdjustmentSchedule | None = None, posterior=None, nodes_per_day: int | None = 4,
                 tie_tolerance: float = 0.02, target_tolerance: float = 0.05, smoothing: float = 0.05,
                 interval: float = 0.9, fixed_mg_per_kg_per_day: float = 2.5,
                 thresholds: Thresholds | None = None, random_state: int | np.random.Generator | None = 0,
                 objective=None, on_misfit: str = "refuse"):
        self.model = model if model is not None else PopPKModel.default()
        self.caps = caps if caps is not None else DoseCaps()
        self.schedule = schedule if schedule is not None else AdjustmentSchedule()
        self.posterior = posterior if posterior is not None else LaplaceImportance()
        self.nodes_per_day = nodes_per_day
        self.tie_tolerance = tie_tolerance
        self.target_tolerance = target_tolerance
        self.smoothing = smoothing
        self.interval = interval
        self.fixed_mg_per_kg_per_day = fixed_mg_per_kg_per_day
        self.thresholds = thresholds if thresholds is not None else Thresholds()
        self.random_state = random_state
        self.objective = objective if objective is not None else MostProbableInWindow()
        self.on_misfit = on_misfit
        _check_objective(self.objective)
        if on_misfit not in MISFIT_POLICIES:
            raise ValueError(f"DosingEngine: `on_misfit` must be one of {MISFIT_POLICIES}, got {on_misfit!r}")
        if nodes_per_day is not None and not (isinstance(nodes_per_day, int) and nodes_per_day >= 2):
            raise ValueError(f"DosingEngine: `nodes_per_day >= 2` must hold (or None), got {nodes_per_day!r}")
        if not 0 <= tie_tolerance < 1:
            raise ValueError(f"DosingEngine: `0 <= tie_tolerance < 1` must hold, got {tie_tolerance!r}")
        for name, value in (("target_tolerance", target_tolerance), ("smoothing", smoothing)):
            if not (isinstance(value, (int, float)) and 0 <= value < 1):
                raise ValueError(f"DosingEngine: `0 <= {name} < 1` must hold, got {value!r}")
        if not 0 < interval < 1:
            raise ValueError(f"DosingEngine: `0 < interval < 1` must hold, got {interval!r}")

    def __repr__(self) -> str:
        return (f"DosingEngine(model={self.model.name!r}, caps={self.caps}, schedule={self.schedule}, "
                f"posterior={self.posterior!r}, nodes_per_day={self.nodes_per_day}, objective={self.objective!r}, "
                f"on_misfit={self.on_misfit!r})")

    # ------------------------------------------------------------------ public entry points
    def recommend(self, patient: PatientData, window,
                  override: WindowOverride | None = None) -> DoseRecommendation:
        """Recommendation for one patient.

        Parameters
        ----------
        patient : PatientData
        window : ml.window.ExposureWindow
            The window to dose into (read with :func:`ml.tracking.load_window_source` or
            :func:`ml.dosing.load_window`; or built: :func:`ml.window.protocol_window`,
            :func:`ml.window.true_window`).
        override : WindowOverride, optional
            Needed (and recorded) to dose into a window that is not ``validated``.

        Raises
        ------
        DosingRefused
            Window in another unit, open on a side or with a finding other than ``window``, not
            validated without ``override``, ``no-window``; patient input that cannot be dosed
            (doses after the decision, no doses, ...).
        """
        out = self.recommend_many([patient], window, override)[0]
        if isinstance(out, DosingRefused):
            raise out
        return out

    def recommend_many(self, patients: list[PatientData | DosingRefused], window,
                       override: WindowOverride | None = None, batch_size: int = 64,
                       check_batch: bool = True) -> list[DoseRecommendation | DosingRefused]:
        """Recommendations for many patients, vectorised in batches of ``batch_size``.

        A patient that cannot be dosed (including levels in a unit other than the window's)
        gets its :class:`DosingRefused` in its place in the list; a window that cannot be used
        at all (``no-window``, open on a side, finding other than ``window``, not validated
        without an override) refuses the whole call. With ``check_batch`` the results then pass
        :meth:`check_batch` (the population model's fit to the batch, ``on_misfit``).

        Parameters
        ----------
        patients : list of PatientData or DosingRefused
            A refusal (an input that could not be read) keeps its place in the results.
        window : ml.window.ExposureWindow
            The window to dose into (see :meth:`recommend`).
        override : WindowOverride, optional
            Needed (and recorded) to dose into a window that is not ``validated``.
        batch_size : int
            Patients per vectorised batch.
        check_batch : bool
            Judge the population model's fit to the batch (:meth:`check_batch`).

        Returns
        -------
        list of DoseRecommendation or DosingRefused
            One per patient, in order.

        Raises
        ------
        TypeError
            ``window`` is not an ``ExposureWindow``.
        DosingRefused
        """
        window = WindowRecord.of(window)
        _check_objective(self.objective)
        if window.status == WindowStatus.NO_WINDOW:
            check_status(window, override)
        check_dosable(window)
        recorded = check_status(window, override)
        results: list = [None] * len(patients)
        ok = []
        for i, p in enumerate(patients):
            if isinstance(p, DosingRefused):
                results[i] = p
                continue
            problem = self._patient_problem(p, window)
            if problem:
                results[i] = DosingRefused(f"patient {p.patient_id!r} refused: {problem}")
            else:
                ok.append(i)
        rng = self._generators([patients[i] for i in ok])
        for lo in range(0, len(ok), batch_size):
            idx = ok[lo:lo + batch_size]
            batch = [patients[i] for i in idx]
            recs = self._isolated_batch(batch, window, rng[lo:lo + batch_size], recorded)
            for i, r in zip(idx, recs):
                results[i] = r
        return self.check_batch(results) if check_batch else results

    def check_batch(self, results: list) -> list:
        """The batch check of the population model over ``results`` (one call's, or several joined).

        :meth:`recommend_many` makes it on its own results; a caller that splits one batch into
        several calls (``check_batch=False``, e.g. for a progress bar) makes it once on them all.

        Parameters
        ----------
        results : list of DoseRecommendation or DosingRefused

        Returns
        -------
        list
            ``results`` as they are when the model fits the batch (or it has fewer than 20
            recommendations); else, by ``on_misfit``, every recommendation refused with the reason
            (``"refuse"``) or carrying it as a warning (``"warn"``).
        """
        misfit = population_misfit(results, self.model.iiv)
        if misfit is not None and self.on_misfit == "refuse":
            return _refused_for_misfit(results, misfit)
        return _with_batch_warning(results, misfit)

    def patient_problem(self, patient: PatientData, window) -> str | None:
        """Why this patient's input cannot be dosed into ``window`` before any forecast, else None.

        The checks :meth:`recommend_many` makes per patient: levels in another unit than the
        window's (or the population model's), and a dose or level at or after the first
        adjustable dose (the day -3 decision).

        Parameters
        ----------
        patient : PatientData
        window : ml.window.ExposureWindow

        Returns
        -------
        str or None
        """
        return self._patient_problem(patient, WindowRecord.of(window))

    def _patient_problem(self, patient: PatientData, window: WindowRecord) -> str | None:
        try:
            check_units(window, patient.concentration_unit, self.model.concentration_unit)
        except DosingRefused as exc:
            return str(exc)
        return self._timing_problem(patient)

    def _isolated_batch(self, batch: list[PatientData], window: WindowRecord, rng, override) -> list:
        """:meth:`_recommend_batch`, with one patient's failure kept to that patient.

        When the vectorised batch fails (an extreme patient can break the joint MAP fit or the
        posterior), each patient is redone alone with its own generator (so its draws are the same
        as in the batch); a patient that still fails becomes a :class:`DosingRefused` naming the
        error, and the others are recommended.
        """
        fresh = [copy.deepcopy(g) for g in rng]  # the draws of a redo are those the batch would have used
        try:
            with np.errstate(all="ignore"):
                return self._recommend_batch(batch, window, rng, override)
        except Exception as exc:  # noqa: BLE001 - isolate below, patient by patient
            if len(batch) == 1:
                return [_failed(batch[0], exc)]
        out = []
        for p, g in zip(batch, fresh):
            try:
                with np.errstate(all="ignore"):
                    out.extend(self._recommend_batch([p], window, [g], override))
            except Exception as exc:  # noqa: BLE001 - any numerical failure refuses this patient only
                out.append(_failed(p, exc))
        return out

    def estimate(self, patients: list[PatientData],
                 random_state=None) -> tuple[LevelLikelihood, MAPFit, PosteriorDraws]:
        """MAP fit and weighted posterior draws of each patient (for diagnostics and benchmarks).

        Returns
        -------
        likelihood : LevelLikelihood
        fit : MAPFit
            MAP random effects, Hessian, predictions at the level times.
        draws : PosteriorDraws
            Weighted posterior draws of the standardised random effects.
        """
        for p in patients:
            if p.concentration_unit != self.model.concentration_unit:
                raise DosingRefused(f"patient {p.patient_id!r} refused: unit mismatch: the population PK model is "
                                    f"in {self.model.concentration_unit!r} but the patient's levels are in "
                                    f"{p.concentration_unit!r}")
            problem = self._timing_problem(p)
            if problem:
                raise DosingRefused(f"patient {p.patient_id!r} refused: {problem}")
        lik = LevelLikelihood.build(self.model, patients)
        fit = fit_map(lik)
        draws = prune_draws(self.posterior.draw(lik, fit, self._generators(patients, random_state)), fit)
        return lik, fit, draws

    def forecast_auc(self, patients: list[PatientData], doses_mg: np.ndarray,
                     random_state=None) -> pd.DataFrame:
        """Forecast total AUC of each patient under given doses on the adjustable days.

        Parameters
        ----------
        patients : list of PatientData
        doses_mg : array-like, shape (P, D)
            Total Thymoglobulin, mg, on each adjustable day of the schedule.

        Returns
        -------
        pandas.DataFrame
            ``patient_id``, ``median``, ``lower``, ``upper`` (the ``interval`` bounds), UE*day/mL,
            and ``ess``.
        """
        lik, fit, draws = self.estimate(patients, random_state)
        doses = np.asarray(doses_mg, dtype=float).reshape(len(patients), -1)
        auc = simulate_total_auc(lik, draws.z, [d[None, :] for d in doses], self.schedule)
        a = 0.5 * (1 - self.interval)
        q = np.array([weighted_quantile(auc[p][:, 0], draws.weight[p], [a, 0.5, 1 - a]) for p in range(len(patients))])
        return pd.DataFrame({"patient_id": [p.patient_id for p in patients], "median": q[:, 1],
                             "lower": q[:, 0], "upper": q[:, 2], "ess": draws.ess})

    # ------------------------------------------------------------------ internals
    def _generators(self, patients: list[PatientData], random_state=None) -> list[np.random.Generator]:
        rs = self.random_state if random_state is None else random_state
        if isinstance(rs, np.random.Generator):
            return list(rs.spawn(len(patients)))
        if rs is None:
            return list(np.random.default_rng().spawn(len(patients)))
        return [_patient_seed(int(rs), p.patient_id) for p in patients]

    def _timing_problem(self, p: PatientData) -> str | None:
        t = self.schedule.decision_time
        late = [d for d in p.doses if d.start >= t - _TIME_TOL]
        if late:
            d = late[0]
            return (f"a dose given on day {d.day} at {d.start_hour:g} h starts at or after the first adjustable "
                    f"infusion (day {self.schedule.days[0]} at {self.schedule.start_hour:g} h): the engine only "
                    f"recommends the doses of days {list(self.schedule.days)}")
        after = [lv for lv in p.levels if lv.day > t + _TIME_TOL]
        if after:
            return (f"a level at day {after[0].day:.4f} was drawn after the first adjustable infusion starts "
                    f"(day {t:.4f}); only levels drawn before the decision can be used")
        return None

    def _recommend_batch(self, patients: list[PatientData], window: WindowRecord, rng,
                         override: WindowOverride | None):
        model, caps, sched = self.model, self.caps, self.schedule
        P, D = len(patients), len(sched.days)
        lik = LevelLikelihood.build(model, patients)
        fit = fit_map(lik)
        draws = prune_draws(self.posterior.draw(lik, fit, rng), fit)
        S = draws.z.shape[1]
        lo_w, up_w = window.bounds
        scale = _window_scale(window)

        # grids of real regimens and the node regimens simulated for each patient
        grids, nodes, levels, refusals = [], [], [], {}
        for i, p in enumerate(patients):
            given = sum(d.dose_mg for d in p.doses)
            try:
                grid = caps.grid(p.weight_kg, D, given)
            except DosingRefused as exc:
                refusals[i] = DosingRefused(f"patient {p.patient_id!r} refused: {exc}")
                grid = np.zeros((1, D), dtype=int)
            lo, hi = int(grid.min()), int(grid.max())
            lv = np.arange(lo, hi + 1)
            nd = node_levels(lo, hi, self.nodes_per_day)
            grids.append(grid)
            levels.append(lv)
            nodes.append(nd)
        node_regs = [np.stack(np.meshgrid(*([nd] * D), indexing="ij"), -1).reshape(-1, D) * caps.vial_mg
                     for nd in nodes]
        # the fixed comparator rides along with the node regimens (one simulation, same draws)
        fixed = [np.full(D, float(round_to_vials(self.fixed_mg_per_kg_per_day * p.weight_kg, caps.vial_mg)))
                 for p in patients]
        sims = simulate_total_auc(lik, draws.z, [np.vstack([r, f]) for r, f in zip(node_regs, fixed)], sched)
        auc_nodes = [x[:, :-1] for x in sims]
        auc_fixed = [x[:, -1] for x in sims]

        chosen, surrogate_p = [], []
        for i in range(P):
            full = spline_grid(auc_nodes[i], nodes[i], levels[i], D)          # (S, n_levels^D)
            lv0, n_lv = levels[i][0], levels[i].size
            flat = np.ravel_multi_index(tuple((grids[i] - lv0).T), (n_lv,) * D)
            auc = full[:, flat]                                              # (S, R)
            w = draws.weight[i]
            below, inside, above = (w @ x for x in _soft_harms(auc, lo_w, up_w, self.smoothing * scale))
            score = np.asarray(self.objective.score(below, inside, above), dtype=float)
            med = weighted_quantile(auc.T, w, 0.5)
            best = self._choose(score, med, grids[i], window.target, self.target_tolerance * scale)
            chosen.append(grids[i][best])
            surrogate_p.append(float(inside[best]))

        # the chosen regimen is always simulated directly (unless it is a node: then it already was)
        exact_chosen: list = [None] * P
        todo = []
        for i in range(P):
            hit = np.flatnonzero((node_regs[i] == chosen[i] * caps.vial_mg).all(axis=1))
            if hit.size:
                exact_chosen[i] = auc_nodes[i][:, hit[0]]
            else:
                todo.append(i)
        if todo:
            sub = take_patients(lik, todo)
            redo = simulate_total_auc(sub, draws.z[todo], [chosen[i][None, :] * caps.vial_mg for i in todo], sched)
            for i, x in zip(todo, redo):
                exact_chosen[i] = x[:, 0]
        exact = [np.column_stack([c, f]) for c, f in zip(exact_chosen, auc_fixed)]
        a = 0.5 * (1 - self.interval)
        out = []
        for i, p in enumerate(patients):
            if i in refusals:
                out.append(refusals[i])
                continue
            w = draws.weight[i]
            exact_soft = float(w @ _soft_harms(exact[i][:, 0], lo_w, up_w, self.smoothing * scale)[1])
            fc = []
            for k, doses in enumerate((chosen[i] * caps.vial_mg, fixed[i])):
                x = exact[i][:, k]
                q = weighted_quantile(x, w, [a, 0.5, 1 - a])
                p_below, p_in, p_above = harm_probabilities(x, w, lo_w, up_w)
                fc.append(AUCForecast(doses_mg=tuple(doses), median=float(q[1]), lower=float(q[0]),
                                      upper=float(q[2]), interval=self.interval, p_in_window=p_in,
                                      unit=window.unit, p_below_floor=p_below, p_above_ceiling=p_above))
            doses = tuple(DayDose(day=day, mg=float(v * caps.vial_mg), vials=int(v),
                                  mg_per_kg=float(v * caps.vial_mg / p.weight_kg), start_hour=sched.start_hour,
                                  infusion_hours=sched.infusion_hours)
                          for day, v in zip(sched.days, chosen[i]))
            eta = {n: float(fit.z[i, j] * lik.omega[j]) for j, n in enumerate(lik.names)}
            par = model.individual(p.weight_kg, p.alc, eta).as_array()[0]
            _, _, bloq = p.level_arrays()
            summary = PosteriorSummary(
                eta_map=eta, parameters={k: float(v) for k, v in zip(("CL", "V1", "Q", "V2", "Vmax", "Km"), par)},
                levels_used=len(p.levels), levels_bloq=int(bloq.sum()), converged=bool(fit.converged[i]),
                ess=float(draws.ess[i]), n_draws=int(S), method=draws.method)
            warnings = self._warnings(i, p, lik, fit, draws, fc[0], surrogate_p[i] - exact_soft, grids[i],
                                      chosen[i], window, fc[1])
            out.append(DoseRecommendation(
                patient_id=p.patient_id, weight_kg=p.weight_kg, doses=doses, forecast=fc[0], fixed_forecast=fc[1],
                window=window, caps=caps, posterior=summary, model_name=model.name, model_status=model.status,
                given_mg=float(sum(d.dose_mg for d in p.doses)), override=override, warnings=warnings,
                caveats=self._caveats(window, override), objective=self.objective.describe()))
        return out

    def _choose(self, score: np.ndarray, median: np.ndarray, grid: np.ndarray, target: float,
                target_tolerance: float) -> int:
        """Index of the chosen regimen (see the class docstring for the rule)."""
        cand = np.flatnonzero(score >= score.max() - self.tie_tolerance)
        dist = np.abs(median[cand] - target)
        cand = cand[dist <= dist.min() + target_tolerance]
        g = grid[cand]
        keys = (-g[:, 0], g.sum(axis=1), g.max(axis=1) - g.min(axis=1))  # np.lexsort: last key first
        return int(cand[np.lexsort(keys)[0]])

    def _warnings(self, i, p, lik, fit, draws, forecast, surrogate_gap, grid, chosen, window,
                  fixed) -> tuple[str, ...]:
        w = self._fit_warnings(i, p, lik, fit)
        w += self._forecast_warnings(i, draws, forecast, surrogate_gap, grid, chosen, window, fixed)
        return tuple(w)

    def _fit_warnings(self, i, p, lik, fit) -> list[str]:
        """Warnings about patient ``i``'s levels and MAP fit: none quantifiable, implausible, atypical."""
        th, unit = self.thresholds, p.concentration_unit
        w = []
        day, conc, bloq = p.level_arrays()
        if day.size == 0 or bloq.all():
            w.append("no quantifiable level before the decision: the forecast rests on the population model alone")
        res = lik.standardised_residuals(fit.pred)[i, :day.size]
        pred = fit.pred[i, :day.size]
        for k in np.flatnonzero(np.abs(np.nan_to_num(res)) > th.residual_z):
            if bloq[k]:
                if res[k] < 0:
                    w.append(f"level at day {day[k]:.3f} is below the LLOQ but the best fit predicts "
                             f"{pred[k]:.2f} {unit}: implausible for the doses given (check sample and dosing records)")
            else:
                w.append(f"level at day {day[k]:.3f} ({conc[k]:.3g} {unit}) is {abs(res[k]):.1f} residual SDs from "
                         f"the best fit ({pred[k]:.3g} {unit}): implausible for the doses given "
                         "(check sample time, dose records and assay)")
        for j, name in enumerate(lik.names):
            if abs(fit.z[i, j]) > th.eta_z:
                w.append(f"{name} is {fit.z[i, j]:+.1f} population SDs from typical: the levels are atypical for "
                         "the doses given")
        if not fit.converged[i]:
            w.append("the MAP search did not converge: treat the forecast with caution")
        return w

    def _forecast_warnings(self, i, draws, forecast, surrogate_gap, grid, chosen, window, fixed) -> list[str]:
        """Warnings about the posterior draws and the chosen regimen's forecast."""
        th = self.thresholds
        w = []
        if draws.ess[i] < th.min_ess:
            w.append(f"posterior approximation unreliable: effective sample size {draws.ess[i]:.0f} "
                     f"of {draws.z.shape[1]} draws")
        if forecast.p_in_window < th.min_probability:
            w.append(f"no regimen within the caps reaches the window with probability >= {th.min_probability:g} "
                     f"(best {forecast.p_in_window:.2f}); forecast median {forecast.median:.1f} {window.unit}")
        ratio = (forecast.upper - forecast.lower) / max(forecast.median, 1e-9)
        if ratio > th.max_interval_ratio:
            w.append(f"high uncertainty: {100 * self.interval:g} % forecast interval {forecast.lower:.0f}-"
                     f"{forecast.upper:.0f} {window.unit} is {ratio:.2f} x the median wide")
        if abs(surrogate_gap) > th.surrogate_tolerance:
            w.append(f"interpolated forecast disagrees with direct simulation of the chosen regimen (probability "
                     f"in window off by {surrogate_gap:+.2f}); the choice may not be optimal")
        hi = grid.max(axis=0)
        if np.all(chosen == hi) and forecast.median < window.bounds[0]:
            w.append("the recommended doses are at the cap and the forecast stays below the window")
        rise = forecast.p_below_floor - fixed.p_below_floor
        if rise > th.max_floor_increase:
            w.append(f"the recommended doses raise P(below floor) from {fixed.p_below_floor:.2f} (fixed regimen) "
                     f"to {forecast.p_below_floor:.2f} (+{rise:.2f}, more than the margin "
                     f"{th.max_floor_increase:.2f}): more risk of under-exposure than fixed dosing")
        mismatch = model_mismatch(window, self.model)
        if mismatch:
            w.append(mismatch)
        return w

    def _caveats(self, window: WindowRecord, override: WindowOverride | None) -> tuple[str, ...]:
        c = []
        if self.model.status != "fitted":
            c.append(f"population PK model {self.model.name!r} has status {self.model.status!r}: its parameters "
                     "are not fitted to patient data")
        if window.simulated:
            c.append("the window was derived from simulated data (a virtual cohort): not for clinical use")
        if window.protocol:
            c.append(f"PROTOCOL window, taken from {window.protocol}: not derived from this population's outcomes")
        if window.pk_model is None:
            c.append(f"the window does not name the population PK model that defined its exposure; the doses are "
                     f"forecast under {self.model.name!r} (digest {self.model.digest[:12]})")
        if override is not None:
            unsigned = (" (unsigned: its content could not be checked)"
                        if window.status == WindowStatus.VALIDATED and window.integrity == "unsigned" else "")
            c.append(f"window status {window.status!r}{unsigned} used under an override by {override.by}: "
                     f"{override.reason}")
        return tuple(c)


def _failed(p: PatientData, exc: Exception) -> DosingRefused:
    """The refusal of one patient whose forecast raised ``exc``."""
    if isinstance(exc, DosingRefused):
        return DosingRefused(f"patient {p.patient_id!r} refused: {exc}")
    first = str(exc).splitlines()[0][:200] if str(exc) else ""
    return DosingRefused(f"patient {p.patient_id!r} refused: the forecast failed for this patient "
                         f"({type(exc).__name__}{': ' + first if first else ''}); check its doses, levels and weight")


def _window_scale(window: WindowRecord) -> float:
    """Width of the (two-sided, :func:`check_dosable`) window, in its unit."""
    return window.upper - window.lower


def _soft_harms(auc: np.ndarray, lo: float, up: float, bandwidth: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smooth indicators of ``auc + e`` below ``lo``, in ``[lo, up)``, at or above ``up`` for
    ``e ~ N(0, bandwidth^2)`` (plain indicators when ``bandwidth <= 0``); they sum to 1."""
    if bandwidth <= 0:
        return (auc < lo).astype(float), ((auc >= lo) & (auc < up)).astype(float), (auc >= up).astype(float)
    return (ndtr((lo - auc) / bandwidth), ndtr((auc - lo) / bandwidth) - ndtr((auc - up) / bandwidth),
            ndtr((auc - up) / bandwidth))


def _check_objective(objective) -> None:
    if not (callable(getattr(objective, "score", None)) and callable(getattr(objective, "describe", None))):
        raise TypeError("DosingEngine: `objective` must be a strategy object with score(p_below, p_in, p_above) and "
                        f"describe() (e.g. MostProbableInWindow() or HarmWeighted(floor=2, ceiling=1)), "
                        f"got {objective!r}")


def _refused_for_misfit(results: list, misfit: str) -> list:
    """Every recommendation of ``results`` replaced by its refusal: the model misfits the batch."""
    reason = (f"{misfit}. Not dosed (engine on_misfit='refuse'): give the fixed regimen, or dose with a model "
              "fitted on this centre's patients; `atgwin dose --on-misfit warn` doses anyway")
    return [DosingRefused(f"patient {r.patient_id!r} refused: {reason}") if isinstance(r, DoseRecommendation) else r
            for r in results]


def _with_batch_warning(results: list, warning: str | None) -> list:
    """``results`` with ``warning`` (if any) added to every recommendation."""
    if warning is None:
        return results
    return [dataclasses.replace(r, warnings=(*r.warnings, warning)) if isinstance(r, DoseRecommendation) else r
            for r in results]
