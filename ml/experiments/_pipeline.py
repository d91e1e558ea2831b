"""Run an experiment locally: every step timed, every result written to the run folder first.

:func:`run_experiment` knows nothing of MLflow. It receives the run id (when a tracking run was
opened beforehand, so that the window artefact and the report can name it) and returns a
:class:`RunOutcome`; the command line then hands the folder to :mod:`ml.tracking`. A step that
raises ends the run: the folder records the failed step and the error (every violation for a
refused cohort), the report says so, and the outcome's status is ``FAILED`` so that nothing is
registered. An interruption (``KeyboardInterrupt``: Ctrl-C, or SIGTERM under ``atgwin run``) is
recorded in ``run.json`` as status ``KILLED`` with the step it stopped and is raised again; the
command line then closes the MLflow run the same way.
"""

from __future__ import annotations

import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ml._status import WindowStatus
from ml.experiments import _steps
from ml.report import RunBundle, figures as F

__all__ = ["RunOutcome", "StepFailed", "run_experiment"]


class StepFailed(RuntimeError):
    """A step of the pipeline failed; ``step`` names it, ``details`` lists what went wrong."""

    def __init__(self, step: str, message: str, details: list[str] | None = None):
        self.step = step
        self.details = list(details or [])
        super().__init__(f"step {step!r} failed: {message}")


@dataclass
class RunOutcome:
    """What a local run produced.

    Attributes
    ----------
    bundle : RunBundle
        The run folder.
    status : {"FINISHED", "FAILED"}
    failed_step : str or None
    error : str or None
    window : ExposureWindow or None
        The window artefact (``window/window.json``) when the window step succeeded.
    study : optuna.Study or None
        The tuning study (its trials become nested runs in MLflow).
    steps : list of dict
        ``name``, ``seconds``, ``status`` per step.
    """

    bundle: RunBundle
    status: str
    failed_step: str | None = None
    error: str | None = None
    window: object | None = None
    study: object | None = None
    steps: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "FINISHED"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _f(v):
    return None if v is None or not np.isfinite(v) else float(v)


class _Steps:
    """Times steps, prints one line each, records them in the manifest."""

    def __init__(self, bundle: RunBundle, names: list[str], echo: Callable[[str], None]):
        self.bundle, self.names, self.echo = bundle, names, echo
        self.done: list[dict] = []

    def run(self, name: str, fn, *args, note: Callable | None = None, **kwargs):
        k = self.names.index(name) + 1
        t0 = time.perf_counter()
        try:
            out = fn(*args, **kwargs)
        except BaseException as exc:
            seconds = time.perf_counter() - t0
            state = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
            self.done.append({"name": name, "seconds": round(seconds, 3), "status": state})
            self.echo(f"[{k}/{len(self.names)}] {name:<9} {state} after {seconds:.1f} s")
            self.bundle.update(RunBundle.MANIFEST, steps=self.done)
            raise
        seconds = time.perf_counter() - t0
        self.done.append({"name": name, "seconds": round(seconds, 3), "status": "FINISHED"})
        self.bundle.update(RunBundle.MANIFEST, steps=self.done)
        extra = f"  {note(out)}" if note else ""
        self.echo(f"[{k}/{len(self.names)}] {name:<9} {seconds:6.1f} s{extra}")
        return out


def run_experiment(experiment, *, out_dir: str | Path, run_name: str, run_id: str | None = None,
                   tracking: dict | None = None, echo: Callable[[str], None] = print,
                   progress: bool = False) -> RunOutcome:
    """Run every step of ``experiment`` and write the results to ``out_dir``.

    Parameters
    ----------
    experiment : Experiment
        Parsed experiment (cohort folder already substituted when one was given).
    out_dir : path-like
        The run folder (``runs/<run-name>/``); created.
    run_name : str
    run_id : str, optional
        MLflow run id, recorded in the window artefact and the report.
    tracking : dict, optional
        Where the run is tracked (``tracking_uri``, ``experiment_id``), for the record.
    echo : callable
        Receives one line per step (name, elapsed seconds, a short note).
    progress : bool
        Show tqdm bars inside long steps (terminal only).

    Returns
    -------
    RunOutcome
    """
    from ml.window import code_version

    bundle = RunBundle(out_dir)
    bundle.root.mkdir(parents=True, exist_ok=True)
    names = ["cohort", "poppk", "exposure", "models", "window", "explain"]
    if experiment.transport is not None:
        names.append("transport")
    names.append("report")
    bundle.write_json(RunBundle.MANIFEST, {
        "run_name": run_name, "experiment": experiment.name, "description": experiment.description,
        "experiment_file": experiment.source, "status": "RUNNING", "run_id": run_id,
        "tracking": tracking or {}, "created_at": _now(), "code_version": code_version(),
        "python": platform.python_version(), "cohort_source": experiment.cohort.describe(),
        "model_name": experiment.model_name, "steps": [],
    })
    bundle.write_text(RunBundle.EXPERIMENT, experiment.text)
    steps = _Steps(bundle, names, echo)
    outcome = RunOutcome(bundle=bundle, status="RUNNING")
    seed = experiment.seed
    params = experiment.params()
    metrics: dict[str, float] = {}
    try:
        _run_steps(experiment, bundle, steps, outcome, names, params, metrics, seed, run_id, progress)
    except KeyboardInterrupt as exc:
        _killed(bundle, outcome, steps, names, exc)
        raise
    outcome.steps = steps.done
    return outcome


def _killed(bundle: RunBundle, outcome: RunOutcome, steps: _Steps, names: list[str], exc: KeyboardInterrupt) -> None:
    """Record an interrupted run in ``run.json``: status KILLED, the step it stopped, by which signal."""
    killed = [s["name"] for s in steps.done if s["status"] == "KILLED"]
    step = killed[-1] if killed else (names[len(steps.done)] if len(steps.done) < len(names) else names[-1])
    how = getattr(exc, "signal_name", "SIGINT")
    outcome.status, outcome.failed_step = "KILLED", step
    outcome.error = f"interrupted by {how} during step {step!r}"
    outcome.steps = steps.done
    bundle.update(RunBundle.MANIFEST, status="KILLED", failed_step=step, error=outcome.error, killed_by=how,
                  finished_at=_now())


def _run_steps(experiment, bundle: RunBundle, steps: _Steps, outcome: RunOutcome, names, params, metrics, seed,
               run_id, progress) -> None:
    try:
        cohort = steps.run("cohort", _cohort_step, experiment, bundle, note=_cohort_note)
        pk = steps.run("poppk", _poppk_step, experiment, cohort, bundle, params, metrics, seed, note=_poppk_note)
        data = steps.run("exposure", _exposure_step, experiment, cohort, bundle, metrics, pk,
                         note=lambda d: f"{getattr(d.strategy, 'name', '?').upper()}: n={int(d.keep.sum())} with an "
                                        f"AUC, {d.n_excluded} excluded (no dose, no level or not estimable)")
        models = steps.run("models", _models_step, experiment, data, bundle, params, metrics, seed, progress,
                           note=_models_note)
        outcome.study = models.study
        win = steps.run("window", _window_step, experiment, data, bundle, params, metrics, seed, run_id, progress,
                        note=_window_note)
        outcome.window = win.window
        steps.run("explain", _explain_step, experiment, models, data, win, bundle, metrics,
                  note=_explain_note)
        if experiment.transport is not None:
            steps.run("transport", _transport_step, experiment, win.window, bundle, metrics, seed, progress,
                      strategy=data.strategy, note=lambda t: f"re-derived [{_fmt(t.rederived.window.lower)}, {_fmt(t.rederived.window.upper)})")
        outcome.status = "FINISHED"
    except StepFailed as exc:
        outcome.status, outcome.failed_step, outcome.error = "FAILED", exc.step, str(exc)
        bundle.write_text(RunBundle.ERRORS, "\n".join([str(exc), *exc.details]) + "\n")
    except Exception as exc:  # noqa: BLE001 - any failing step fails the run, with its reason kept
        failed = [s["name"] for s in steps.done if s["status"] == "FAILED"]
        step = failed[-1] if failed else names[len(steps.done)]
        outcome.status, outcome.failed_step = "FAILED", step
        outcome.error = f"step {step!r} failed: {type(exc).__name__}: {exc}"
        bundle.write_text(RunBundle.ERRORS, outcome.error + "\n\n" + traceback.format_exc())
    bundle.update(RunBundle.MANIFEST, params=params, metrics=metrics)
    # The report is rendered even for a failed run: it then shows what failed and why.
    final = "FINISHED" if outcome.ok else "FAILED"
    bundle.update(RunBundle.MANIFEST, status=final, failed_step=outcome.failed_step, error=outcome.error)
    try:
        steps.run("report", _report_step, bundle, note=lambda p: f"{p}")
    except Exception as exc:  # noqa: BLE001
        outcome.status, outcome.failed_step = "FAILED", outcome.failed_step or "report"
        outcome.error = outcome.error or f"step 'report' failed: {type(exc).__name__}: {exc}"
        bundle.write_text(RunBundle.ERRORS, outcome.error + "\n\n" + traceback.format_exc())
    bundle.update(RunBundle.MANIFEST, status=outcome.status, failed_step=outcome.failed_step,
                  error=outcome.error, finished_at=_now())


def _fmt(v) -> str:
    return "open" if v is None else f"{v:.0f}"


# ------------------------------------------------------------------------------------- the steps
def _cohort_step(experiment, bundle: RunBundle):
    from ml.cohort import CohortValidationError

    try:
        cohort = _steps.acquire_cohort(experiment.cohort)
    except CohortValidationError as exc:
        messages = [v.message for v in exc.violations]
        bundle.update(RunBundle.RESULTS, validation={"ok": False, "violations": messages,
                                                      "source": experiment.cohort.describe()})
        raise StepFailed("cohort", f"the cohort was refused: {len(messages)} violation(s) of the cohort format",
                         messages) from None
    except FileNotFoundError as exc:
        raise StepFailed("cohort", str(exc)) from None
    summary = _steps.cohort_summary(cohort)
    bundle.update(RunBundle.RESULTS, cohort=summary,
                  validation={"ok": True, "violations": [], "warnings": list(cohort.warnings),
                              "source": experiment.cohort.describe()})
    spec = experiment.cohort
    source = (str(Path(spec.path).resolve()) if spec.path else
              f"ml.sim.simulate_cohort(scenario={spec.scenario!r}, n={spec.n}, seed={spec.seed})")
    bundle.update(RunBundle.MANIFEST, simulated=summary["simulated"], dataset={
        "name": summary["name"], "digest": summary["digest"], "n": summary["n"],
        "source_kind": "folder" if spec.path else "simulated", "source": source})
    return cohort


def _cohort_note(c) -> str:
    flag = "SIMULATED, " if c.meta.simulated else ""
    return f"{flag}{c.meta.name}: {c.n if hasattr(c, 'n') else len(c.patients)} patients, contract OK" + (
        f", {len(c.warnings)} warning(s)" if c.warnings else "")


def _poppk_note(pk) -> str:
    if pk.status == "fitted":
        return f"fitted to the cohort's levels in {pk.seconds:.1f} s (converged), digest {pk.model.digest[:12]}"
    if pk.status == "fallback":
        return f"WARNING: {pk.warnings[0]}"
    return f"{pk.status}: {pk.origin}"


def _poppk_step(experiment, cohort, bundle: RunBundle, params: dict, metrics: dict, seed: int):
    """Fit the population PK model to the cohort (or take the named one); diagnostics to the run folder."""
    from ml.experiments import _pk

    pk = _pk.population_model(cohort, experiment.features, experiment.poppk, random_state=seed)
    if pk.model is not None and pk.status in ("fitted", "given"):
        bundle.write_text(f"window/{_pk.MODEL_FILE}", pk.model.to_toml_string())
    bundle.update(RunBundle.RESULTS, poppk=pk.summary())
    if pk.warnings:
        bundle.update(RunBundle.MANIFEST, warnings=[*bundle.manifest().get("warnings", []), *pk.warnings])
    params.update({"poppk.status": pk.status, "poppk.model": "" if pk.model is None else pk.model.name,
                   "poppk.model_digest": "" if pk.model is None else pk.model.digest})
    metrics["poppk_fallback"] = float(pk.status == "fallback")
    metrics["poppk_fit_seconds"] = float(pk.seconds)
    est = pk.estimator
    if est is not None and hasattr(est, "result_"):
        import pandas as pd

        r = est.result_
        rse = r.rse()
        est_values = pk.summary()["fit"]["estimates"]
        bundle.write_table("poppk_estimates", pd.DataFrame([
            {"parameter": k, "estimate": v, "se": r.se.get(k), "rse_percent": rse.get(k)}
            for k, v in est_values.items()]))
        metrics.update({f"poppk_rse_{k.replace('.', '_')}": float(v) for k, v in rse.items() if np.isfinite(v)})
        metrics.update({f"poppk_shrinkage_{k}": float(v) for k, v in r.shrinkage.items() if np.isfinite(v)})
        if experiment.poppk.vpc_sims:
            from ml.poppk import plot_vpc

            fitted = "the fitted model" + (" (NOT used: the fit did not converge)" if pk.status == "fallback" else "")
            bundle.save_figure("poppk_vpc", plot_vpc(est.vpc(n_sim=experiment.poppk.vpc_sims, random_state=seed)),
                               section="poppk", title="Visual predictive check of the population PK model",
                               caption=f"Observed 5th, 50th and 95th percentiles of the levels by time bin against "
                               f"the 90% intervals of the same percentiles in {experiment.poppk.vpc_sims} designs "
                               f"simulated from {fitted}; below-LLOQ fractions checked separately.")
    return pk


def _exposure_step(experiment, cohort, bundle: RunBundle, metrics: dict, pk=None) -> _steps.CohortData:
    model, source = (None, None) if pk is None else (pk.model, pk.source)
    data = _steps.prepare_data(cohort, experiment.features.exposure,
                               strategy=experiment.features.strategy(model, source))
    summary = _steps.exposure_summary(data)
    bundle.update(RunBundle.RESULTS, exposure=summary)
    dataset = bundle.manifest().get("dataset", {})
    dataset["schema"] = {str(c): str(t) for c, t in data.frame.reset_index().dtypes.items()}
    bundle.update(RunBundle.MANIFEST, dataset=dataset)
    if summary.get("warnings"):
        bundle.update(RunBundle.MANIFEST, warnings=[*bundle.manifest().get("warnings", []), *summary["warnings"]])
    metrics["exposure_n_not_estimable"] = float(summary["n_not_estimable"])
    for reason, n in (summary.get("excluded") or {}).items():
        metrics[f"exposure_excluded_{reason}"] = float(n)
    metrics["exposure_median"] = float(summary["median"])
    return data


def _models_step(experiment, data, bundle: RunBundle, params: dict, metrics: dict, seed: int, progress: bool):
    models = _steps.fit_models(data, experiment, random_state=seed, progress=progress)
    bundle.write_table("model_metrics", models.metrics_table())
    frames = []
    for fit in models.fits.values():
        p = fit.prefix
        bundle.write_table(f"{p}cv_scores_xgb", fit.xgb_cv.scores)
        bundle.write_table(f"{p}cv_scores_cox", fit.cox_cv.scores)
        trials = fit.tuning.study.trials_dataframe(attrs=("number", "value", "state", "params", "duration"))
        trials["duration"] = trials["duration"].dt.total_seconds()
        frames.append(trials.assign(side=fit.name))
        params.update({f"{p}xgb.{k}": str(v) for k, v in fit.xgb.get_params().items()})
        params.update({f"{p}cox.{k}": str(v) for k, v in fit.cox.get_params().items()})
        metrics.update({f"{p}{k}": v for k, v in fit.tuning.to_dict().items()})
        metrics.update(fit.xgb_cv.to_dict(prefix=f"{p}xgb_"))
        metrics.update(fit.cox_cv.to_dict(prefix=f"{p}cox_"))
        metrics[f"{p}xgb_at_chance"] = float(fit.at_chance)
        what = _side_title(fit)
        bundle.save_figure(f"{p}calibration_xgb", fit.xgb_cv.calibration_figure(
            title=f"Tuned XGBoost, {what}: calibration at day "
                  f"{fit.horizon_days:g}"),
            title=f"Calibration of the tuned XGBoost model of {what}", section="models",
            caption="Out-of-fold predicted vs Kaplan-Meier observed risk by decile of predicted risk, one line per "
                    "CV repeat.")
    import pandas as pd

    bundle.write_table("optuna_trials", pd.concat(frames, ignore_index=True))
    bundle.update(RunBundle.RESULTS, models={
        "kind": models.kind, "n": int(len(models.primary.y)),
        "features": list(experiment.features.columns), "encoded_features": [str(c) for c in models.X_tree.columns],
        "cv": {"folds": experiment.models.cv_folds, "repeats": experiment.models.cv_repeats},
        "n_trials_per_endpoint": experiment.models.n_trials,
        "fits": {name: {"endpoint": fit.endpoint, "horizon_days": fit.horizon_days, "events": int(fit.y["event"].sum()),
                        "best_params": fit.tuning.best_params, "tuning": fit.tuning.to_dict(),
                        "at_chance": fit.at_chance,
                        "xgb": _cv_payload(fit.xgb_cv), "cox": _cv_payload(fit.cox_cv)}
                 for name, fit in models.fits.items()},
    })
    return models


def _cv_payload(cv) -> dict:
    ci = cv.intervals()
    return {metric: {"mean": float(row["mean"]), "sd": float(cv.summary.loc[metric, "sd"]), "se": float(row["se"]),
                     "ci_low": float(row["ci_low"]), "ci_high": float(row["ci_high"])}
            for metric, row in ci.iterrows()}


def _side_title(fit) -> str:
    from ml.window._describe import endpoint_label

    if fit.name == "composite":
        return f"the composite endpoint ({endpoint_label(fit.endpoint)})"
    return f"the {fit.name} endpoint ({endpoint_label(fit.endpoint)})"


def _models_note(m) -> str:
    return "; ".join(f"{name} C={fit.xgb_cv.summary.loc['harrell_c', 'mean']:.3f}"
                     + (" (at chance)" if fit.at_chance else "") for name, fit in m.fits.items()) + \
        f"; {m.primary.tuning.to_dict()['tuning_n_trials']:.0f} trials each"


def _window_note(w) -> str:
    win = w.window
    if win.finding == "overlap":
        return f"OVERLAP: both harms evidenced, no exposure avoids both (joint adjusted p = {win.p_value:.3g})"
    if win.status == WindowStatus.NO_WINDOW:
        return f"NO WINDOW (adjusted p = {win.p_value:.3g})"
    if win.finding in ("floor-only", "ceiling-only"):
        return (f"{win.finding.upper()} [{_fmt(win.lower)}, {_fmt(win.upper)}) {win.unit}, joint adjusted p = "
                f"{win.p_value:.3g}; not a window to dose")
    return f"[{_fmt(win.lower)}, {_fmt(win.upper)}) {win.unit}, adjusted p = {win.p_value:.3g}"


def _window_payload(win, search) -> dict:
    return {
        "artefact": win.to_dict(), "status": win.status, "lower": win.lower, "upper": win.upper,
        "target": win.target, "lower_ci": win.lower_ci, "upper_ci": win.upper_ci, "p_value": win.p_value,
        "finding": win.finding, "search_kind": win.search_kind,
        "naive_p_value": _f(getattr(search, "naive_p_value_", None)), "statistic": _f(search.statistic_),
        "argmax_bounds": [_f(v) for v in search.argmax_bounds_],
        "bagged_bounds": [_f(v) for v in search.bagged_bounds_],
        "n": search.n_, "events": search.n_events_, "n_excluded": search.n_excluded_,
        "effect": {k: v for k, v in search.effect_.items() if k != "fold_windows"},
        "n_permutations": search.n_permutations, "n_bootstraps": search.n_bootstraps,
        "cut_values": [float(v) for v in search.cut_values_],
    }


def _window_step(experiment, data, bundle: RunBundle, params: dict, metrics: dict, seed: int, run_id, progress):
    res = _steps.search_window(data, experiment, random_state=seed, run_id=run_id, progress=progress)
    win, search = res.window, res.search
    bundle.write_text(RunBundle.WINDOW, win.to_json() + "\n")
    bundle.update(RunBundle.RESULTS, window=_window_payload(win, search),
                  incidences=[i.__dict__ for i in res.incidences])
    bundle.write_table("window_scan", search.scan_)
    bundle.write_table("window_frequency", search.window_frequency_)
    bundle.write_table("bootstrap_bounds", _boot_frame(search.bootstrap_bounds_))
    bundle.write_table("incidences", _incidence_frame(res.incidences))
    params.update({f"window.search.{k}": repr(getattr(search, f"{k}_", v)) if k in ("scores", "grid") else str(v)
                   for k, v in search.get_params(deep=False).items()})
    metrics.update(_window_metrics(win, search))
    _window_figures(bundle, data, experiment, res)
    return res


def _boot_frame(boot):
    import pandas as pd

    return pd.DataFrame({"resample": np.arange(len(boot)), "lower": boot[:, 0] if len(boot) else [],
                         "upper": boot[:, 1] if len(boot) else []})


def _incidence_frame(incidences):
    import pandas as pd

    return pd.DataFrame([i.__dict__ for i in incidences])


def _window_metrics(win, search, prefix: str = "window_") -> dict:
    out = {"statistic": search.statistic_, "naive_p_value": getattr(search, "naive_p_value_", None),
           "n": search.n_, "events": search.n_events_, "n_excluded": search.n_excluded_,
           "is_window": 1.0 if win.finding == "window" else 0.0}
    for side in (win.floor, win.ceiling):
        if side is None:
            continue
        out.update({f"{side.side}_p_value": side.p_value, f"{side.side}_events": side.events,
                    f"{side.side}_evidenced": float(side.evidenced), f"{side.side}_bound": side.value})
        if side.effect is not None:
            out.update({f"{side.side}_hr": side.effect.hr, f"{side.side}_hr_ci_low": side.effect.ci_low,
                        f"{side.side}_hr_ci_high": side.effect.ci_high})
    if win.p_value is not None:
        out["p_value"] = win.p_value
    for name in ("lower", "upper"):
        v = getattr(win, name)
        if v is not None:
            out[name] = v
        ci = getattr(win, f"{name}_ci")
        if ci is not None:
            for side, c in zip(("ci_low", "ci_high"), ci):
                if c is not None:
                    out[f"{name}_{side}"] = c
    out["target"] = win.target
    if win.effect is not None:
        out.update(hr=win.effect.hr, hr_ci_low=win.effect.ci_low, hr_ci_high=win.effect.ci_high)
    return {f"{prefix}{k}": float(v) for k, v in out.items() if v is not None and np.isfinite(v)}


def _window_figures(bundle: RunBundle, data, experiment, res, prefix: str = "", label: str = "") -> None:
    win, search = res.window, res.search
    no_window = win.status == WindowStatus.NO_WINDOW
    sim = bool(data.cohort.meta.simulated)
    bundle.save_figure(f"{prefix}exposure", F.exposure_figure(
        data.x, lower=win.lower, upper=win.upper, lower_ci=win.lower_ci, upper_ci=win.upper_ci, unit=win.unit,
        simulated=sim, no_window=no_window, truth=_truth_bounds(data)), section=f"{prefix}window",
        title=f"{label}Exposure distribution", caption="Total active-ATG AUC per patient (histogram); the window "
        "shaded, the 95% CIs of its bounds in orange along the axis"
        + ("; dashed: the simulator's true bounds (on the true AUC)" if _truth_bounds(data) else "") + "."
        + (" No significant window: the best-scoring one hatched." if no_window else ""))
    bundle.save_figure(f"{prefix}statistic_map", F.statistic_map_figure(
        search.scan_, search.cut_values_, window=(win.lower, win.upper), unit=win.unit), section=f"{prefix}window",
        title=f"{label}Statistic map", caption="Standardised linear rank statistic of every candidate window "
        "[lower, upper) on the quantile grid; positive = patients inside do better than expected.")
    if search.n_bootstraps:
        bundle.save_figure(f"{prefix}bootstrap", F.bootstrap_figure(
            search.bootstrap_bounds_, lower=win.lower, upper=win.upper, lower_ci=win.lower_ci,
            upper_ci=win.upper_ci, frequency=search.window_frequency_, cut_values=search.cut_values_,
            unit=win.unit), section=f"{prefix}window", title=f"{label}Bootstrap stability",
            caption=f"Whole search repeated in {search.n_bootstraps} bootstrap resamples: distribution of each "
            "bound and how often each window (snapped to the grid) is chosen.")
    curves = _steps.incidence_curves(data.x, data.cohort.outcomes, win.lower, win.upper, experiment.endpoint.outcomes)
    bundle.write_table(f"{prefix}incidence_curves_summary",
                       curves.groupby(["outcome", "group"], sort=False)
                       .agg(n=("n", "first"), final_incidence=("incidence", "last")).reset_index())
    bundle.save_figure(f"{prefix}incidence_curves", F.incidence_curves_figure(
        curves, horizon=experiment.endpoint.incidence_horizon_days, lower=win.lower, upper=win.upper,
        unit=win.unit), section=f"{prefix}incidence", title=f"{label}Cumulative incidence by window group",
        caption="Aalen-Johansen cumulative incidence (death, or relapse for non-relapse mortality, as competing "
        "events) below, inside and above the window, with 95% pointwise bands (log(-log))"
        + (" (the best-scoring window; not significant)" if no_window else "") + ".")
    if sim and getattr(data.cohort.meta, "truth", None):
        bundle.update(RunBundle.RESULTS, **{f"{prefix}truth": dict(data.cohort.meta.truth)})
    if win.floor is not None and win.ceiling is not None:
        _side_figures(bundle, data, experiment, res, prefix=prefix, label=label)


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


def _truth_bounds(data):
    """A simulated cohort's true floor and ceiling (None for a side without effect), or None."""
    truth = getattr(data.cohort.meta, "truth", None) if data.cohort.meta.simulated else None
    if not truth or truth.get("effect") in (None, "none"):
        return None
    return (truth.get("floor", truth.get("lower")), truth.get("ceiling", truth.get("upper")))


def _side_cuts(win) -> dict[str, tuple]:
    """The exposure groups each side's incidences are read in: the window when one was found; else
    each side's own best cut (both when they do not cross; one per side when they do)."""
    if win.finding == "window":
        return {"floor": (win.lower, win.upper), "ceiling": (win.lower, win.upper)}
    f, c = win.floor.value, win.ceiling.value
    if f is not None and c is not None and f < c:
        return {"floor": (f, c), "ceiling": (f, c)}
    return {"floor": (f, None), "ceiling": (None, c)}


def _side_figures(bundle: RunBundle, data, experiment, res, prefix: str = "", label: str = "") -> None:
    """Per side: the side's profile (one-sided statistic along exposure against its permutation
    critical value), its endpoint's cumulative incidence below / inside / above with bands and numbers
    at risk, and those incidences at the side's horizon (``results.json`` -> ``side_incidences``)."""
    from ml.window import window_incidences
    from ml.window._describe import endpoint_label

    win, search = res.window, res.search
    alpha = experiment.promotion.alpha
    null = getattr(search, "null_statistics_", np.empty((0, 3)))
    crit = {side: (float(np.quantile(null[:, k], 1 - alpha)) if len(null) else None)
            for k, side in ((1, "floor"), (2, "ceiling"))}
    bundle.save_figure(f"{prefix}side_profiles", F.side_profiles_figure(
        search.side_scan_, critical=crit, floor=win.floor.value, ceiling=win.ceiling.value,
        evidenced={"floor": win.floor.evidenced, "ceiling": win.ceiling.evidenced},
        labels={s: endpoint_label(getattr(win, s).endpoints) for s in ("floor", "ceiling")}, alpha=alpha,
        unit=win.unit), section=f"{prefix}window", title=f"{label}The two sides along exposure",
        caption="One-sided standardised statistic of every candidate cut: top, the floor (the floor endpoint is more "
        "frequent below the cut); bottom, the ceiling (the ceiling endpoint is more frequent at or above it). Dashed: "
        f"each side's permutation critical value at alpha = {alpha:g} (the {1 - alpha:.0%} quantile of that side's "
        "maximum over the whole search under permutation). Vertical lines: the reported bounds.")
    cuts = _side_cuts(win)
    out = {}
    for side in ("floor", "ceiling"):
        ev = getattr(win, side)
        endpoint = res.search.composite(side)
        lower, upper = cuts[side]
        horizon = ev.horizon_days if ev.horizon_days is not None else experiment.endpoint.incidence_horizon_days
        inc = window_incidences(data.x, data.cohort.outcomes, lower, upper, [endpoint], horizon)
        out[side] = {"endpoint": endpoint, "label": endpoint_label(ev.endpoints), "horizon_days": horizon,
                     "lower": lower, "upper": upper, "incidences": [i.__dict__ for i in inc]}
        curves = _steps.incidence_curves(data.x, data.cohort.outcomes, lower, upper, [endpoint])
        xmax = max(2.0 * horizon, 365.0)
        times = np.arange(0.0, xmax + 1e-9, 60.0 if xmax <= 400 else 120.0)
        at_risk = _steps.at_risk_table(data.x, data.cohort.outcomes, lower, upper, endpoint, times)
        bundle.write_table(f"{prefix}{side}_at_risk", at_risk)
        evidenced = "" if ev.evidenced else " (not evidenced at alpha: groups of the best-scoring cut, for the record)"
        bundle.save_figure(f"{prefix}{side}_incidence", F.side_incidence_figure(
            curves, at_risk, title=f"{endpoint_label(ev.endpoints)} ({side})", horizon=horizon, lower=lower,
            upper=upper, unit=win.unit, xmax=xmax), section=f"{prefix}incidence",
            title=f"{label}{_sentence_case(endpoint_label(ev.endpoints))}, the {side} endpoint, by exposure group",
            caption=f"Aalen-Johansen cumulative incidence of {endpoint_label(ev.endpoints)} (death without it "
            f"competes) below, inside and above [{_fmt(lower)}, {_fmt(upper)}) {win.unit}, 95% pointwise bands "
            f"(log(-log)); numbers at risk below; dotted line: day {horizon:g}, the {side}'s horizon{evidenced}.")
    bundle.update(RunBundle.RESULTS, **{f"{prefix}side_incidences": out})


def _explain_note(s) -> str:
    parts = []
    for name, e in s.sides.items():
        if e.bound is not None:
            b = e.bound
            parts.append(f"SHAP {name} {'open' if b.open else f'{b.value:.0f}'}"
                         + ("" if e.agrees is None else (" (in the scan's CI)" if e.agrees else " (outside the scan's CI)")))
        elif e.window is not None:
            parts.append(f"SHAP window [{e.window.lower:.0f}, {e.window.upper:.0f}]")
    return "; ".join(parts)


def _explain_step(experiment, models, data, win, bundle: RunBundle, metrics: dict):
    from ml.models import risk_curves_figure, shap_bound_figure, shap_dependence_figure
    from ml.window._describe import endpoint_label

    s = _steps.explain(models, data, experiment, win.window)
    w = win.window
    exposure = experiment.features.exposure
    bundle.write_table("risk_curves", s.curves)
    if s.roles is not None:
        bundle.write_table("bound_setters", s.roles)
    payload = {}
    for name, e in s.sides.items():
        fit = models.fits[name]
        p = fit.prefix
        what = _side_title(fit)
        bundle.write_table(f"{p}shap_importance", e.importance)
        payload[name] = e.to_dict()
        chance = (" The model is at chance (its Harrell's C interval covers 0.5): these contributions describe "
                  "noise, not risk." if e.at_chance else "")
        bundle.save_figure(f"{p}shap_importance", F.importance_figure(e.importance), section="shap",
                           title=f"SHAP importance, {what}", caption="Mean |SHAP value| per encoded feature "
                           f"(log-hazard units) of the tuned XGBoost model of {endpoint_label(fit.endpoint)}." + chance)
        if e.bound is not None:
            b = e.bound
            metrics.update({k: float(v) for k, v in b.to_dict(prefix=p).items()})
            if e.agrees is not None:
                metrics[f"{p}shap_bound_in_scan_ci"] = float(e.agrees)
            word = "stops falling" if name == "floor" else "starts rising"
            bundle.save_figure(f"{p}shap_dependence", shap_bound_figure(
                b, scan_bound=e.scan_bound, scan_ci=e.scan_ci, exposure_unit=w.unit,
                title=f"Exposure's contribution to the hazard of {endpoint_label(fit.endpoint)}"), section="shap",
                title=f"SHAP {name} vs the scan's {name}",
                caption=f"Mean SHAP value of {exposure} (log-hazard of {endpoint_label(fit.endpoint)}) in 20 "
                f"equal-count exposure bins (aggregate: no patient points), its monotone fit, and the SHAP {name}: "
                f"where the contribution {word} (crosses halfway between its highest and lowest level). Orange: the "
                f"scan's {name} with its 95% interval." + chance)
        else:
            sw = e.window
            metrics.update({k: float(v) for k, v in sw.to_dict().items()})
            x = data.x[data.keep]
            scan = (w.lower if w.lower is not None else float(np.min(x)),
                    w.upper if w.upper is not None else float(np.max(x)))
            bundle.save_figure("shap_dependence", shap_dependence_figure(
                e.explanation, exposure, color=e.partner, window=sw, scan_window=scan, exposure_unit=w.unit),
                section="shap", title="SHAP dependence on exposure, SHAP window vs scan window",
                caption=f"Contribution of {exposure} to the log-hazard, coloured by its strongest interaction "
                f"({e.partner}); green: SHAP window (tolerance {sw.tolerance:.2f}); red dashed: the scan's window"
                + (" (best-scoring, not significant)" if w.status == WindowStatus.NO_WINDOW else "") + "." + chance)
    bundle.update(RunBundle.RESULTS, shap={
        "sides": payload, "scan_window": [w.lower, w.upper], "scan_status": w.status, "finding": w.finding,
        "roles": None if s.roles is None else s.roles.to_dict("records")})
    window = (w.lower, w.upper) if (w.lower is not None and w.upper is not None and w.status != WindowStatus.NO_WINDOW) else None
    labels = {o: endpoint_label(o) for o in s.curves["endpoint"].unique()}
    bundle.save_figure("risk_curves", risk_curves_figure(s.curves, window=window, exposure_unit=w.unit, labels=labels),
                       section="risk", title="Risk versus exposure per outcome",
                       caption=f"Cox model with a restricted cubic spline on AUC, one per outcome (cause-specific, "
                       f"day {experiment.endpoint.incidence_horizon_days:g}); log hazard ratio vs the window's "
                       f"target {w.target:.0f} {w.unit}, 95% pointwise bands.")
    return s


def _transport_step(experiment, window, bundle: RunBundle, metrics: dict, seed: int, progress: bool, strategy=None):
    from ml.cohort import CohortValidationError

    spec = experiment.transport
    try:
        cohort = _steps.acquire_cohort(spec)
    except CohortValidationError as exc:
        messages = [v.message for v in exc.violations]
        raise StepFailed("transport", f"the transport cohort was refused: {len(messages)} violation(s)", messages) from None
    # the target's exposure is computed the way the window's was (same strategy, same population model)
    target = _steps.prepare_data(cohort, experiment.features.exposure,
                                 strategy=strategy if strategy is not None else experiment.features.strategy())
    t = _steps.transport(window, experiment, target, random_state=seed, progress=progress)
    rw, ev = t.rederived.window, t.evaluation
    bundle.write_text("transport/target_window.json", rw.to_json())
    ev_dict = {k: v.to_dict() for k, v in ev.items()} if isinstance(ev, dict) else ev.to_dict()
    bundle.write_json("transport/evaluation.json", {"source_window": window.to_dict(), "evaluation": ev_dict,
                                                    "incidences": [i.__dict__ for i in t.incidences]})
    bundle.write_table("transport_incidences", _incidence_frame(t.incidences))
    bundle.update(RunBundle.RESULTS, transport={
        "cohort": _steps.cohort_summary(cohort), "exposure": _steps.exposure_summary(target),
        "evaluation": ev_dict, "incidences": [i.__dict__ for i in t.incidences],
        "rederived": _window_payload(rw, t.rederived.search)})
    flat = {f"{side}_{k}": v for side, d in ev_dict.items() for k, v in d.items()} if isinstance(ev, dict) else ev_dict
    metrics.update({f"transport_eval_{k}": float(v) for k, v in flat.items()
                    if isinstance(v, (int, float)) and v is not None and np.isfinite(v)})
    metrics.update(_window_metrics(rw, t.rederived.search, prefix="transport_window_"))
    src = f"{window.population.donor_source} (derived, n={window.population.n})"
    rows = [
        {"label": src, "lower": window.lower, "upper": window.upper, "lower_ci": window.lower_ci,
         "upper_ci": window.upper_ci, "note": "" if window.status != WindowStatus.NO_WINDOW else "not significant"},
        {"label": f"{cohort.meta.donor_source} (re-derived, n={rw.population.n})", "lower": rw.lower,
         "upper": rw.upper, "lower_ci": rw.lower_ci, "upper_ci": rw.upper_ci,
         "note": "" if rw.status != WindowStatus.NO_WINDOW else "not significant"},
    ]
    bundle.save_figure("transport", F.transport_figure(rows, unit=window.unit), section="transport",
                       title="Transportability", caption=f"The {window.population.donor_source} window and the "
                       f"window re-derived on the {cohort.meta.donor_source} cohort, each bound with its 95% CI.")
    _window_figures(bundle, target, experiment, t.rederived, prefix="transport_",
                    label=f"{cohort.meta.donor_source} cohort: ")
    return t


def _report_step(bundle: RunBundle) -> str:
    from ml.report import write_report

    path = write_report(bundle, bundle.path(RunBundle.REPORT))
    return str(path)
