"""The steps of ``run_experiment`` as the run folder sees them.

Each step calls the computation of :mod:`ml.experiments._steps` (plain functions of explicit
inputs), writes its tables and figures to the run folder, and returns a
:class:`~ml.experiments._results.StepResult` with the sections of the run record, the parameters,
metrics and figures it produced (``ml/experiments/_results.py``). Steps take the run's
:class:`~ml.experiments._results.StepContext` and the earlier steps' values by keyword.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ml._status import WindowStatus
from ml.experiments import _steps
from ml.experiments._results import FigureRef, StepContext, StepFailed, StepResult
from ml.record import RunBundle

__all__ = ["NOTES", "cohort_step", "explain_step", "exposure_step", "models_step", "poppk_step", "report_step",
           "transport_step", "window_step"]


class _Out:
    """What one step records while it writes its tables and figures; :meth:`result` freezes it."""

    def __init__(self, bundle: RunBundle):
        self.bundle = bundle
        self.record: dict = {}
        self.params: dict = {}
        self.metrics: dict = {}
        self.manifest: dict = {}
        self.figures: list[FigureRef] = []
        self.warnings: list[str] = []

    def figure(self, name: str, fig, *, title: str, caption: str = "", section: str = "") -> None:
        self.bundle.save_figure(name, fig, title=title, caption=caption, section=section)
        self.figures.append(FigureRef(name=name, title=title, section=section))

    def table(self, name: str, frame) -> None:
        self.bundle.write_table(name, frame)

    def result(self, value) -> StepResult:
        return StepResult(value=value, record=self.record, params=self.params, metrics=self.metrics,
                          figures=self.figures, manifest=self.manifest, warnings=self.warnings)


def _figures():
    from ml.report import figures

    return figures


def _f(v):
    return None if v is None or not np.isfinite(v) else float(v)


def _fmt(v) -> str:
    return "open" if v is None else f"{v:.0f}"


# ------------------------------------------------------------------------------------- the steps
def cohort_step(ctx: StepContext) -> StepResult:
    """Load (validated) or simulate the cohort; its summary and where it came from."""
    from ml.cohort import CohortValidationError

    experiment = ctx.experiment
    try:
        cohort = _steps.acquire_cohort(experiment.cohort)
    except CohortValidationError as exc:
        messages = [v.message for v in exc.violations]
        raise StepFailed("cohort", f"the cohort was refused: {len(messages)} violation(s) of the cohort format",
                         messages, record={"validation": {"ok": False, "violations": messages,
                                                          "source": experiment.cohort.describe()}}) from None
    except FileNotFoundError as exc:
        raise StepFailed("cohort", str(exc)) from None
    summary = _steps.cohort_summary(cohort)
    spec = experiment.cohort
    source = (str(Path(spec.path).resolve()) if spec.path else
              f"ml.sim.simulate_cohort(scenario={spec.scenario!r}, n={spec.n}, seed={spec.seed})")
    return StepResult(value=cohort, record={
        "cohort": summary, "validation": {"ok": True, "violations": [], "warnings": list(cohort.warnings),
                                          "source": experiment.cohort.describe()}},
        manifest={"simulated": summary["simulated"], "dataset": {
            "name": summary["name"], "digest": summary["digest"], "n": summary["n"],
            "source_kind": "folder" if spec.path else "simulated", "source": source}})


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


def poppk_step(ctx: StepContext, *, cohort) -> StepResult:
    """Fit the population PK model to the cohort (or take the named one); diagnostics to the run folder."""
    from ml.experiments import _pk

    experiment, seed, out = ctx.experiment, ctx.seed, _Out(ctx.bundle)
    pk = _pk.population_model(cohort, experiment.features, experiment.poppk, random_state=seed)
    if pk.model is not None and pk.status in ("fitted", "given"):
        out.bundle.write_text(f"window/{_pk.MODEL_FILE}", pk.model.to_toml_string())
    out.record.update(poppk=pk.summary())
    out.warnings.extend(pk.warnings)
    out.params.update({"poppk.status": pk.status, "poppk.model": "" if pk.model is None else pk.model.name,
                   "poppk.model_digest": "" if pk.model is None else pk.model.digest})
    out.metrics["poppk_fallback"] = float(pk.status == "fallback")
    out.metrics["poppk_fit_seconds"] = float(pk.seconds)
    est = pk.estimator
    if est is not None and hasattr(est, "result_"):
        import pandas as pd

        r = est.result_
        rse = r.rse()
        est_values = pk.summary()["fit"]["estimates"]
        out.table("poppk_estimates", pd.DataFrame([
            {"parameter": k, "estimate": v, "se": r.se.get(k), "rse_percent": rse.get(k)}
            for k, v in est_values.items()]))
        out.metrics.update({f"poppk_rse_{k.replace('.', '_')}": float(v) for k, v in rse.items() if np.isfinite(v)})
        out.metrics.update({f"poppk_shrinkage_{k}": float(v) for k, v in r.shrinkage.items() if np.isfinite(v)})
        if experiment.poppk.vpc_sims:
            from ml.poppk import plot_vpc

            fitted = "the fitted model" + (" (NOT used: the fit did not converge)" if pk.status == "fallback" else "")
            out.figure("poppk_vpc", plot_vpc(est.vpc(n_sim=experiment.poppk.vpc_sims, random_state=seed)),
                               section="poppk", title="Visual predictive check of the population PK model",
                               caption=f"Observed 5th, 50th and 95th percentiles of the levels by time bin against "
                               f"the 90% intervals of the same percentiles in {experiment.poppk.vpc_sims} designs "
                               f"simulated from {fitted}; below-LLOQ fractions checked separately.")
    return out.result(pk)


def exposure_step(ctx: StepContext, *, cohort, pk=None, dataset: dict | None = None) -> StepResult:
    """Each patient's exposure under the population PK model (or NCA), and the feature frame.

    ``dataset`` is the run's dataset record (``run.json``), completed here with the frame's schema.
    """
    experiment, out = ctx.experiment, _Out(ctx.bundle)
    model, source = (None, None) if pk is None else (pk.model, pk.source)
    data = _steps.prepare_data(cohort, experiment.features.exposure,
                               strategy=experiment.features.strategy(model, source))
    summary = _steps.exposure_summary(data)
    out.record.update(exposure=summary)
    out.manifest["dataset"] = {**(dataset or {}),
                               "schema": {str(c): str(t) for c, t in data.frame.reset_index().dtypes.items()}}
    out.warnings.extend(summary.get("warnings") or [])
    out.metrics["exposure_n_not_estimable"] = float(summary["n_not_estimable"])
    for reason, n in (summary.get("excluded") or {}).items():
        out.metrics[f"exposure_excluded_{reason}"] = float(n)
    out.metrics["exposure_median"] = float(summary["median"])
    return out.result(data)


def models_step(ctx: StepContext, *, data) -> StepResult:
    """Tune and cross-validate the survival models of every endpoint; their metrics and calibration."""
    experiment, out = ctx.experiment, _Out(ctx.bundle)
    models = _steps.fit_models(data, experiment, random_state=ctx.seed, progress=ctx.progress)
    out.table("model_metrics", models.metrics_table())
    frames = []
    for fit in models.fits.values():
        p = fit.prefix
        out.table(f"{p}cv_scores_xgb", fit.xgb_cv.scores)
        out.table(f"{p}cv_scores_cox", fit.cox_cv.scores)
        trials = fit.tuning.study.trials_dataframe(attrs=("number", "value", "state", "params", "duration"))
        trials["duration"] = trials["duration"].dt.total_seconds()
        frames.append(trials.assign(side=fit.name))
        out.params.update({f"{p}xgb.{k}": str(v) for k, v in fit.xgb.get_params().items()})
        out.params.update({f"{p}cox.{k}": str(v) for k, v in fit.cox.get_params().items()})
        out.metrics.update({f"{p}{k}": v for k, v in fit.tuning.to_dict().items()})
        out.metrics.update(fit.xgb_cv.to_dict(prefix=f"{p}xgb_"))
        out.metrics.update(fit.cox_cv.to_dict(prefix=f"{p}cox_"))
        out.metrics[f"{p}xgb_at_chance"] = float(fit.at_chance)
        what = _side_title(fit)
        out.figure(f"{p}calibration_xgb", fit.xgb_cv.calibration_figure(
            title=f"Tuned XGBoost, {what}: calibration at day "
                  f"{fit.horizon_days:g}"),
            title=f"Calibration of the tuned XGBoost model of {what}", section="models",
            caption="Out-of-fold predicted vs Kaplan-Meier observed risk by decile of predicted risk, one line per "
                    "CV repeat.")
    import pandas as pd

    out.table("optuna_trials", pd.concat(frames, ignore_index=True))
    out.record.update(models={
        "kind": models.kind, "n": len(models.primary.y),
        "features": list(experiment.features.columns), "encoded_features": [str(c) for c in models.X_tree.columns],
        "cv": {"folds": experiment.models.cv_folds, "repeats": experiment.models.cv_repeats},
        "n_trials_per_endpoint": experiment.models.n_trials,
        "fits": {name: {"endpoint": fit.endpoint, "horizon_days": fit.horizon_days, "events": int(fit.y["event"].sum()),
                        "best_params": fit.tuning.best_params, "tuning": fit.tuning.to_dict(),
                        "tuning_storage": fit.tuning.storage_info(),
                        "at_chance": fit.at_chance,
                        "xgb": _cv_payload(fit.xgb_cv), "cox": _cv_payload(fit.cox_cv)}
                 for name, fit in models.fits.items()},
    })
    return out.result(models)


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


def window_step(ctx: StepContext, *, data) -> StepResult:
    """The window search (``ml.window.discover``); the artefact, its tables and figures."""
    experiment, out = ctx.experiment, _Out(ctx.bundle)
    res = _steps.search_window(data, experiment, random_state=ctx.seed, run_id=ctx.run_id, progress=ctx.progress)
    win, search = res.window, res.search
    out.bundle.write_text(RunBundle.WINDOW, win.to_json() + "\n")
    out.record.update(window=_window_payload(win, search),
                  incidences=[i.__dict__ for i in res.incidences])
    out.table("window_scan", search.scan_)
    out.table("window_frequency", search.window_frequency_)
    out.table("bootstrap_bounds", _boot_frame(search.bootstrap_bounds_))
    out.table("incidences", _incidence_frame(res.incidences))
    out.params.update({f"window.search.{k}": repr(getattr(search, f"{k}_", v)) if k in ("scores", "grid") else str(v)
                   for k, v in search.get_params(deep=False).items()})
    out.metrics.update(_window_metrics(win, search))
    _window_figures(out, data, experiment, res)
    return out.result(res)


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


def _window_figures(out: _Out, data, experiment, res, prefix: str = "", label: str = "") -> None:
    F = _figures()
    win, search = res.window, res.search
    no_window = win.status == WindowStatus.NO_WINDOW
    sim = bool(data.cohort.meta.simulated)
    out.figure(f"{prefix}exposure", F.exposure_figure(
        data.x, lower=win.lower, upper=win.upper, lower_ci=win.lower_ci, upper_ci=win.upper_ci, unit=win.unit,
        simulated=sim, no_window=no_window, truth=_truth_bounds(data)), section=f"{prefix}window",
        title=f"{label}Exposure distribution", caption="Total active-ATG AUC per patient (histogram); the window "
        "shaded, the 95% CIs of its bounds in orange along the axis"
        + ("; dashed: the simulator's true bounds (on the true AUC)" if _truth_bounds(data) else "") + "."
        + (" No significant window: the best-scoring one hatched." if no_window else ""))
    out.figure(f"{prefix}statistic_map", F.statistic_map_figure(
        search.scan_, search.cut_values_, window=(win.lower, win.upper), unit=win.unit), section=f"{prefix}window",
        title=f"{label}Statistic map", caption="Standardised linear rank statistic of every candidate window "
        "[lower, upper) on the quantile grid; positive = patients inside do better than expected.")
    if search.n_bootstraps:
        out.figure(f"{prefix}bootstrap", F.bootstrap_figure(
            search.bootstrap_bounds_, lower=win.lower, upper=win.upper, lower_ci=win.lower_ci,
            upper_ci=win.upper_ci, frequency=search.window_frequency_, cut_values=search.cut_values_,
            unit=win.unit), section=f"{prefix}window", title=f"{label}Bootstrap stability",
            caption=f"Whole search repeated in {search.n_bootstraps} bootstrap resamples: distribution of each "
            "bound and how often each window (snapped to the grid) is chosen.")
    curves = _steps.incidence_curves(data.x, data.cohort.outcomes, win.lower, win.upper, experiment.endpoint.outcomes)
    out.table(f"{prefix}incidence_curves_summary",
                       curves.groupby(["outcome", "group"], sort=False)
                       .agg(n=("n", "first"), final_incidence=("incidence", "last")).reset_index())
    out.figure(f"{prefix}incidence_curves", F.incidence_curves_figure(
        curves, horizon=experiment.endpoint.incidence_horizon_days, lower=win.lower, upper=win.upper,
        unit=win.unit), section=f"{prefix}incidence", title=f"{label}Cumulative incidence by window group",
        caption="Aalen-Johansen cumulative incidence (death, or relapse for non-relapse mortality, as competing "
        "events) below, inside and above the window, with 95% pointwise bands (log(-log))"
        + (" (the best-scoring window; not significant)" if no_window else "") + ".")
    if sim and getattr(data.cohort.meta, "truth", None):
        out.record.update(**{f"{prefix}truth": dict(data.cohort.meta.truth)})
    if win.floor is not None and win.ceiling is not None:
        _side_figures(out, data, experiment, res, prefix=prefix, label=label)


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


def _side_figures(out: _Out, data, experiment, res, prefix: str = "", label: str = "") -> None:
    """Per side: the side's profile (one-sided statistic along exposure against its permutation
    critical value), its endpoint's cumulative incidence below / inside / above with bands and numbers
    at risk, and those incidences at the side's horizon (``results.json`` -> ``side_incidences``)."""
    from ml.window import window_incidences
    from ml.window._describe import endpoint_label

    F = _figures()
    win, search = res.window, res.search
    alpha = experiment.promotion.alpha
    null = getattr(search, "null_statistics_", np.empty((0, 3)))
    crit = {side: (float(np.quantile(null[:, k], 1 - alpha)) if len(null) else None)
            for k, side in ((1, "floor"), (2, "ceiling"))}
    out.figure(f"{prefix}side_profiles", F.side_profiles_figure(
        search.side_scan_, critical=crit, floor=win.floor.value, ceiling=win.ceiling.value,
        evidenced={"floor": win.floor.evidenced, "ceiling": win.ceiling.evidenced},
        labels={s: endpoint_label(getattr(win, s).endpoints) for s in ("floor", "ceiling")}, alpha=alpha,
        unit=win.unit), section=f"{prefix}window", title=f"{label}The two sides along exposure",
        caption="One-sided standardised statistic of every candidate cut: top, the floor (the floor endpoint is more "
        "frequent below the cut); bottom, the ceiling (the ceiling endpoint is more frequent at or above it). Dashed: "
        f"each side's permutation critical value at alpha = {alpha:g} (the {1 - alpha:.0%} quantile of that side's "
        "maximum over the whole search under permutation). Vertical lines: the reported bounds.")
    cuts = _side_cuts(win)
    sides = {}
    for side in ("floor", "ceiling"):
        ev = getattr(win, side)
        endpoint = res.search.composite(side)
        lower, upper = cuts[side]
        horizon = ev.horizon_days if ev.horizon_days is not None else experiment.endpoint.incidence_horizon_days
        inc = window_incidences(data.x, data.cohort.outcomes, lower, upper, [endpoint], horizon)
        sides[side] = {"endpoint": endpoint, "label": endpoint_label(ev.endpoints), "horizon_days": horizon,
                     "lower": lower, "upper": upper, "incidences": [i.__dict__ for i in inc]}
        curves = _steps.incidence_curves(data.x, data.cohort.outcomes, lower, upper, [endpoint])
        xmax = max(2.0 * horizon, 365.0)
        times = np.arange(0.0, xmax + 1e-9, 60.0 if xmax <= 400 else 120.0)
        at_risk = _steps.at_risk_table(data.x, data.cohort.outcomes, lower, upper, endpoint, times)
        out.table(f"{prefix}{side}_at_risk", at_risk)
        evidenced = "" if ev.evidenced else " (not evidenced at alpha: groups of the best-scoring cut, for the record)"
        out.figure(f"{prefix}{side}_incidence", F.side_incidence_figure(
            curves, at_risk, title=f"{endpoint_label(ev.endpoints)} ({side})", horizon=horizon, lower=lower,
            upper=upper, unit=win.unit, xmax=xmax), section=f"{prefix}incidence",
            title=f"{label}{_sentence_case(endpoint_label(ev.endpoints))}, the {side} endpoint, by exposure group",
            caption=f"Aalen-Johansen cumulative incidence of {endpoint_label(ev.endpoints)} (death without it "
            f"competes) below, inside and above [{_fmt(lower)}, {_fmt(upper)}) {win.unit}, 95% pointwise bands "
            f"(log(-log)); numbers at risk below; dotted line: day {horizon:g}, the {side}'s horizon{evidenced}.")
    out.record.update(**{f"{prefix}side_incidences": sides})


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


def explain_step(ctx: StepContext, *, models, data, win) -> StepResult:
    """SHAP bounds of every endpoint's model beside the scan's, and the Cox risk curves."""
    from ml.models import risk_curves_figure, shap_bound_figure, shap_dependence_figure
    from ml.window._describe import endpoint_label

    F = _figures()
    experiment, out = ctx.experiment, _Out(ctx.bundle)
    s = _steps.explain(models, data, experiment, win.window)
    w = win.window
    exposure = experiment.features.exposure
    out.table("risk_curves", s.curves)
    if s.roles is not None:
        out.table("bound_setters", s.roles)
    payload = {}
    for name, e in s.sides.items():
        fit = models.fits[name]
        p = fit.prefix
        what = _side_title(fit)
        out.table(f"{p}shap_importance", e.importance)
        payload[name] = e.to_dict()
        chance = (" The model is at chance (its Harrell's C interval covers 0.5): these contributions describe "
                  "noise, not risk." if e.at_chance else "")
        out.figure(f"{p}shap_importance", F.importance_figure(e.importance), section="shap",
                           title=f"SHAP importance, {what}", caption="Mean |SHAP value| per encoded feature "
                           f"(log-hazard units) of the tuned XGBoost model of {endpoint_label(fit.endpoint)}." + chance)
        if e.bound is not None:
            b = e.bound
            out.metrics.update({k: float(v) for k, v in b.to_dict(prefix=p).items()})
            if e.agrees is not None:
                out.metrics[f"{p}shap_bound_in_scan_ci"] = float(e.agrees)
            word = "stops falling" if name == "floor" else "starts rising"
            out.figure(f"{p}shap_dependence", shap_bound_figure(
                b, scan_bound=e.scan_bound, scan_ci=e.scan_ci, exposure_unit=w.unit,
                title=f"Exposure's contribution to the hazard of {endpoint_label(fit.endpoint)}"), section="shap",
                title=f"SHAP {name} vs the scan's {name}",
                caption=f"Mean SHAP value of {exposure} (log-hazard of {endpoint_label(fit.endpoint)}) in 20 "
                f"equal-count exposure bins (aggregate: no patient points), its monotone fit, and the SHAP {name}: "
                f"where the contribution {word} (crosses halfway between its highest and lowest level). Orange: the "
                f"scan's {name} with its 95% interval." + chance)
        else:
            sw = e.window
            out.metrics.update({k: float(v) for k, v in sw.to_dict().items()})
            x = data.x[data.keep]
            scan = (w.lower if w.lower is not None else float(np.min(x)),
                    w.upper if w.upper is not None else float(np.max(x)))
            out.figure("shap_dependence", shap_dependence_figure(
                e.explanation, exposure, window=sw, scan_window=scan, exposure_unit=w.unit, points=False),
                section="shap", title="SHAP dependence on exposure, SHAP window vs scan window",
                caption=f"Mean contribution of {exposure} to the log-hazard in 20 equal-count exposure bins "
                f"(aggregate: no patient points) and its smoothed curve; green: SHAP window (tolerance "
                f"{sw.tolerance:.2f}); red dashed: the scan's window"
                + (" (best-scoring, not significant)" if w.status == WindowStatus.NO_WINDOW else "") + "." + chance)
    if experiment.models.private_views:
        _private_views(ctx.bundle, s, models)
    out.record.update(shap={
        "sides": payload, "scan_window": [w.lower, w.upper], "scan_status": w.status, "finding": w.finding,
        "roles": None if s.roles is None else s.roles.to_dict("records")})
    window = (w.lower, w.upper) if (w.lower is not None and w.upper is not None and w.status != WindowStatus.NO_WINDOW) else None
    labels = {o: endpoint_label(o) for o in s.curves["endpoint"].unique()}
    out.figure("risk_curves", risk_curves_figure(s.curves, window=window, exposure_unit=w.unit, labels=labels),
                       section="risk", title="Risk versus exposure per outcome",
                       caption=f"Cox model with a restricted cubic spline on AUC, one per outcome (cause-specific, "
                       f"day {experiment.endpoint.incidence_horizon_days:g}); log hazard ratio vs the window's "
                       f"target {w.target:.0f} {w.unit}, 95% pointwise bands.")
    return out.result(s)


def _private_views(bundle: RunBundle, s, models) -> None:
    """Per-patient SHAP views of each side's model into the run's private folder.

    A beeswarm (one dot per patient and feature) and the waterfall of the patient the model puts at
    the highest log-hazard. They go to :meth:`RunBundle.private`, outside the run folder that is
    sent to MLflow, and only when the experiment asks (``[models] private_views = true``).
    """
    from ml.models import shap_beeswarm_figure, shap_waterfall_figure
    from ml.window._describe import endpoint_label

    private = bundle.private()
    private.write_json(RunBundle.MANIFEST, {"private": True, "run_folder": bundle.root.name,
                                            "simulated": bool(bundle.manifest().get("simulated"))})
    for name, e in s.sides.items():
        fit = models.fits[name]
        label = endpoint_label(fit.endpoint)
        values = np.asarray(e.explanation.values, dtype=float)
        top = int(np.argmax(values.sum(axis=1) + np.asarray(e.explanation.base_values, dtype=float).reshape(-1)))
        private.save_figure(f"{fit.prefix}shap_beeswarm", shap_beeswarm_figure(
            e.explanation, title=f"SHAP values per patient, {label}"), section="private",
            title=f"PRIVATE: SHAP values per patient, {_side_title(fit)}",
            caption="One dot per patient and feature (log-hazard units), coloured by the feature's value.")
        private.save_figure(f"{fit.prefix}shap_waterfall", shap_waterfall_figure(
            e.explanation, top, title=f"Patient at the highest predicted log-hazard of {label}"), section="private",
            title=f"PRIVATE: one patient's log-hazard, {_side_title(fit)}",
            caption=f"The patient (row {top} of the model's data) the tuned model puts at the highest log-hazard "
            f"of {label}: the base value plus each feature's contribution, with the patient's feature values.")


def transport_step(ctx: StepContext, *, window, strategy=None) -> StepResult:
    """The window evaluated on the transport cohort, and that cohort's own window."""
    from ml.cohort import CohortValidationError

    F = _figures()
    experiment, seed, progress, out = ctx.experiment, ctx.seed, ctx.progress, _Out(ctx.bundle)
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
    out.bundle.write_text("transport/target_window.json", rw.to_json())
    ev_dict = {k: v.to_dict() for k, v in ev.items()} if isinstance(ev, dict) else ev.to_dict()
    out.bundle.write_json("transport/evaluation.json", {"source_window": window.to_dict(), "evaluation": ev_dict,
                                                    "incidences": [i.__dict__ for i in t.incidences]})
    out.table("transport_incidences", _incidence_frame(t.incidences))
    out.record.update(transport={
        "cohort": _steps.cohort_summary(cohort), "exposure": _steps.exposure_summary(target),
        "evaluation": ev_dict, "incidences": [i.__dict__ for i in t.incidences],
        "rederived": _window_payload(rw, t.rederived.search)})
    flat = {f"{side}_{k}": v for side, d in ev_dict.items() for k, v in d.items()} if isinstance(ev, dict) else ev_dict
    out.metrics.update({f"transport_eval_{k}": float(v) for k, v in flat.items()
                    if isinstance(v, (int, float)) and v is not None and np.isfinite(v)})
    out.metrics.update(_window_metrics(rw, t.rederived.search, prefix="transport_window_"))
    src = f"{window.population.donor_source} (derived, n={window.population.n})"
    rows = [
        {"label": src, "lower": window.lower, "upper": window.upper, "lower_ci": window.lower_ci,
         "upper_ci": window.upper_ci, "note": "" if window.status != WindowStatus.NO_WINDOW else "not significant"},
        {"label": f"{cohort.meta.donor_source} (re-derived, n={rw.population.n})", "lower": rw.lower,
         "upper": rw.upper, "lower_ci": rw.lower_ci, "upper_ci": rw.upper_ci,
         "note": "" if rw.status != WindowStatus.NO_WINDOW else "not significant"},
    ]
    out.figure("transport", F.transport_figure(rows, unit=window.unit), section="transport",
                       title="Transportability", caption=f"The {window.population.donor_source} window and the "
                       f"window re-derived on the {cohort.meta.donor_source} cohort, each bound with its 95% CI.")
    _window_figures(out, target, experiment, t.rederived, prefix="transport_",
                    label=f"{cohort.meta.donor_source} cohort: ")
    return out.result(t)


def report_step(ctx: StepContext) -> StepResult:
    """Render ``report.html`` from the run folder (also for a failed run: it then says what failed)."""
    from ml.report import write_report

    path = write_report(ctx.bundle, ctx.bundle.path(RunBundle.REPORT))
    return StepResult(value=str(path))


def _exposure_note(d) -> str:
    return (f"{getattr(d.strategy, 'name', '?').upper()}: n={int(d.keep.sum())} with an AUC, {d.n_excluded} excluded "
            "(no dose, no level or not estimable)")


def _transport_note(t) -> str:
    return f"re-derived [{_fmt(t.rederived.window.lower)}, {_fmt(t.rederived.window.upper)})"


#: The one-line note printed after each step, from the step's value.
NOTES = {"cohort": _cohort_note, "poppk": _poppk_note, "exposure": _exposure_note, "models": _models_note,
         "window": _window_note, "explain": _explain_note, "transport": _transport_note, "report": str}
