"""The steps of a run, each a plain function of explicit inputs (no MLflow, no global state).

``cohort -> exposure -> models (tuning + repeated CV) -> window search -> explanations (SHAP,
risk curves) -> transport``. The window search calls exactly what ``atgwin discover`` calls
(:func:`ml.window.discover`); the models the public API of :mod:`ml.models`. In a benefit-harm
run the models are fitted per side (the floor endpoint(s), the ceiling endpoint(s)), and each
side's SHAP bound is checked against the scan's bound of that side; a composite run keeps one
model of its endpoint. Results come back as small dataclasses; the pipeline writes them to the
run folder.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml._status import WindowStatus

__all__ = [
    "CohortData",
    "EndpointModels",
    "EndpointShap",
    "ModelsResult",
    "ShapResult",
    "TransportResult",
    "WindowResult",
    "acquire_cohort",
    "cohort_summary",
    "explain",
    "fit_models",
    "at_risk_table",
    "incidence_curves",
    "model_endpoints",
    "prepare_data",
    "search_window",
    "transport",
]


# ----------------------------------------------------------------------------------------- cohort
def acquire_cohort(spec):
    """Load a cohort folder (validated against the contract) or simulate a virtual cohort.

    Parameters
    ----------
    spec : CohortSpec

    Returns
    -------
    ml.cohort.Cohort

    Raises
    ------
    ml.cohort.CohortValidationError
        The folder breaks the contract; ``.violations`` lists every violation.
    FileNotFoundError
        No such folder.
    """
    from pathlib import Path

    from ml.cohort import CohortValidationError, validate_cohort

    if spec.path:
        path = Path(spec.path)
        if not path.is_dir():
            raise FileNotFoundError(f"cohort folder {spec.path!r} does not exist")
        report = validate_cohort(path)
        if not report.ok:
            raise CohortValidationError(report.violations, source=f"cohort {spec.path!r}")
        return report.cohort
    from ml.sim import simulate_cohort

    return simulate_cohort(scenario=spec.scenario, n=spec.n, seed=spec.seed)


def cohort_summary(cohort) -> dict:
    """Aggregate description of a cohort (no patient-level values).

    Returns
    -------
    dict
        Name, donor source, units, simulated flag, digest, n, warnings, covariate summaries
        (median age, share male, conditioning, diagnosis counts, CMV serostatus counts) and
        event counts per outcome column.
    """
    p, o = cohort.patients, cohort.outcomes
    out = {
        "name": cohort.meta.name, "donor_source": cohort.meta.donor_source,
        "description": cohort.meta.description, "simulated": bool(cohort.meta.simulated),
        "concentration_unit": cohort.meta.concentration_unit, "exposure_unit": cohort.meta.exposure_unit,
        "digest": cohort.digest, "n": int(len(p)), "warnings": list(cohort.warnings),
        "has_levels": bool(getattr(cohort, "has_levels", True)),
    }
    if "age_years" in p:
        out["age_median"] = float(p["age_years"].median())
        out["age_iqr"] = [float(p["age_years"].quantile(0.25)), float(p["age_years"].quantile(0.75))]
    if "weight_kg" in p:
        out["weight_median"] = float(p["weight_kg"].median())
    if "sex" in p:
        out["male_share"] = float((p["sex"] == "M").mean())
    for col in ("conditioning", "diagnosis", "disease_status", "donor_type", "hla_mismatches"):
        if col in p:
            out[f"{col}_counts"] = {str(k): int(v) for k, v in p[col].value_counts().sort_index().items()}
    if {"cmv_recipient", "cmv_donor"} <= set(p.columns):
        pair = "R" + p["cmv_recipient"].map({"pos": "+", "neg": "-"}) + "/D" + p["cmv_donor"].map({"pos": "+", "neg": "-"})
        out["cmv_serostatus_counts"] = {str(k): int(v) for k, v in pair.value_counts().sort_index().items()}
    out["followup_median_days"] = float(o["last_followup_day"].median())
    days = [c for c in o.columns if c.endswith("_day") and c != "last_followup_day"]
    engraftment = ("neutrophil_day", "platelet_day")
    out["events"] = {c.removesuffix("_day"): int(o[c].notna().sum()) for c in days if c not in engraftment}
    out["engraftment"] = {c.removesuffix("_day"): int(o[c].notna().sum()) for c in days if c in engraftment}
    return out


@dataclass(frozen=True)
class CohortData:
    """A cohort with its exposure, aligned with ``cohort.outcomes`` row by row.

    Attributes
    ----------
    cohort : ml.cohort.Cohort
    exposure : DataFrame
        ``ml.pk.exposure_table`` (one row per patient; NaN = not estimable).
    frame : DataFrame
        ``ml.features.feature_frame``: covariates plus exposure, rows in outcomes order.
    x : numpy.ndarray
        The experiment's exposure column (unit ``unit``), NaN where not estimable.
    keep : numpy.ndarray of bool
        Patients with an estimable exposure (the others are reported and excluded).
    unit : str
        Exposure unit (e.g. ``"UE*day/mL"``).
    definition : str
        How the exposure was computed (the strategy's ``definition``), recorded in the window.
    pk_model : dict or None
        ``{"name", "digest", "source"}`` of the population PK model the exposure was computed
        under (None under NCA or without levels), recorded in the window.
    missingness : ml.pk.ExposureMissingness or None
        Exclusions by reason and, under NCA, the comparison of the patients it could not estimate.
    strategy : object or None
        The exposure strategy (``ml.pk.MAPExposure`` / ``NCAExposure``), reused for a transport cohort.
    """

    cohort: object
    exposure: pd.DataFrame
    frame: pd.DataFrame
    x: np.ndarray
    keep: np.ndarray
    unit: str
    definition: str
    pk_model: dict | None = None
    missingness: object | None = None
    strategy: object | None = None

    @property
    def n_excluded(self) -> int:
        return int((~self.keep).sum())

    @property
    def outcomes(self) -> pd.DataFrame:
        """Outcomes of the patients with an estimable exposure."""
        return self.cohort.outcomes.loc[self.keep].reset_index(drop=True)


def prepare_data(cohort, exposure_column: str = "auc_total", method: str = "map",
                 pk_model=None, *, strategy=None) -> CohortData:
    """Exposure (MAP or NCA) and the feature frame of a cohort.

    Parameters
    ----------
    cohort : ml.cohort.Cohort
    exposure_column : str
        ``auc_total`` (default), ``auc_pre`` or ``auc_post``.
    method : {"map", "nca"}
        Name of the exposure strategy (``ml.pk.exposure_strategy``); ignored with ``strategy``.
    pk_model : str or ml.pk.PopPKModel, optional
        Population PK model for ``"map"``: a model file or a model (default: the shipped
        assumption set).
    strategy : object, optional
        An exposure strategy (``ml.pk.MAPExposure(model, source)``, ``ml.pk.NCAExposure()``).
    """
    from ml.features import feature_frame
    from ml.pk import PopPKModel, exposure_missingness, exposure_strategy

    if strategy is None:
        model, source = pk_model, None
        if isinstance(pk_model, str):  # recorded as an absolute path (a window file resolves relative ones)
            from pathlib import Path

            model, source = PopPKModel.from_file(pk_model), str(Path(pk_model).resolve())
        strategy = exposure_strategy(method, model, source)
    table = strategy.table(cohort)
    frame = feature_frame(cohort, table.drop(columns=["lambda_z", "method", "status"], errors="ignore"))
    x = frame[exposure_column].to_numpy(dtype=float)
    return CohortData(cohort=cohort, exposure=table, frame=frame, x=x, keep=np.isfinite(x),
                      unit=cohort.meta.exposure_unit, definition=table.attrs["definition"],
                      pk_model=table.attrs["pk_model"], missingness=exposure_missingness(cohort, table),
                      strategy=strategy)


def exposure_summary(data: CohortData) -> dict:
    """Quantiles of exposure, the exclusions by reason and the warnings about them."""
    x = data.x[data.keep]
    q = np.quantile(x, [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]) if x.size else [np.nan] * 7
    out = {"unit": data.unit, "n": int(x.size), "n_not_estimable": data.n_excluded,
           "min": q[0], "p10": q[1], "p25": q[2], "median": q[3], "p75": q[4], "p90": q[5], "max": q[6],
           "mean": float(x.mean()) if x.size else np.nan, "definition": data.definition,
           "method": getattr(data.strategy, "name", None), "pk_model": data.pk_model}
    if data.missingness is not None:
        m = data.missingness.to_dict()
        out.update(excluded=m["excluded"], n_not_converged=m["n_not_converged"], missingness_comparison=m["comparison"],
                   warnings=m["warnings"])
    return out


# ----------------------------------------------------------------------------------------- models
class _TrialBar:
    """Optuna callback advancing a tqdm bar (terminal only)."""

    def __init__(self, total: int):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc="tuning", file=sys.stderr, leave=False,
                        disable=not sys.stderr.isatty())

    def __call__(self, study, trial) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


@dataclass(frozen=True)
class EndpointModels:
    """Tuned XGBoost survival model and Cox spline reference of one endpoint, with their repeated-CV
    metrics.

    Attributes
    ----------
    name : {"floor", "ceiling", "composite"}
        Which side of a benefit-harm window the endpoint speaks to (or the composite endpoint).
    endpoint : str
        The endpoint the models predict, e.g. ``"agvhd2"`` or ``"cmv|ebv"`` (first event among a
        side's endpoints; death without the event censors, cause-specific).
    horizon_days : float
        Days: survival target truncation and CV horizon.
    tuning : ml.models.TuningResult
        Optuna study (all trials) and the refitted best model.
    xgb : XGBSurvival
        Tuned model, fitted on all patients with exposure.
    xgb_cv, cox_cv : ml.models.SurvivalCVResult
    cox : CoxSplineModel
        Reference model (unfitted template).
    y : structured array
        Survival target.
    """

    name: str
    endpoint: str
    horizon_days: float
    tuning: object
    xgb: object
    xgb_cv: object
    cox_cv: object
    cox: object
    y: np.ndarray

    @property
    def prefix(self) -> str:
        """Prefix of this endpoint's metric, parameter and figure names (``"floor_"``; none for the
        composite, whose names are unchanged)."""
        return "" if self.name == "composite" else f"{self.name}_"

    @property
    def at_chance(self) -> bool:
        """The tuned model's Harrell's C interval covers 0.5."""
        return self.xgb_cv.at_chance("harrell_c")

    def metrics_table(self) -> pd.DataFrame:
        """``side, endpoint, model, metric, mean, sd, se, ci_low, ci_high, n_repeats`` for both models."""
        rows = []
        for model, cv in (("XGBoost (tuned)", self.xgb_cv), ("Cox RCS spline", self.cox_cv)):
            ci = cv.intervals()
            for metric, r in cv.summary.iterrows():
                rows.append({"side": self.name, "endpoint": self.endpoint, "model": model, "metric": metric,
                             "mean": float(r["mean"]), "sd": float(r["sd"]), "se": float(ci.loc[metric, "se"]),
                             "ci_low": float(ci.loc[metric, "ci_low"]), "ci_high": float(ci.loc[metric, "ci_high"]),
                             "n_repeats": int(r["n_repeats"])})
        return pd.DataFrame(rows)


@dataclass(frozen=True)
class ModelsResult:
    """The models of a run: one :class:`EndpointModels` per side of a benefit-harm window (floor
    endpoint(s), ceiling endpoint(s)), or one for a composite search.

    Attributes
    ----------
    kind : {"benefit-harm", "composite"}
    fits : dict of str to EndpointModels
        ``{"floor": ..., "ceiling": ...}`` or ``{"composite": ...}``.
    X_tree, X_cox : DataFrame
        Encoded features (trees: raw numeric; Cox: standardised, reference-coded), shared.
    study : optuna.Study
        Every tuning trial of every endpoint (each trial's ``side`` user attribute says whose),
        for the tracking server's nested runs.
    """

    kind: str
    fits: dict
    X_tree: pd.DataFrame
    X_cox: pd.DataFrame
    study: object

    @property
    def primary(self) -> EndpointModels:
        """The first endpoint's models (the floor, or the composite)."""
        return next(iter(self.fits.values()))

    def metrics_table(self) -> pd.DataFrame:
        """Every endpoint's :meth:`EndpointModels.metrics_table`, stacked."""
        return pd.concat([f.metrics_table() for f in self.fits.values()], ignore_index=True)


def model_endpoints(experiment) -> dict[str, tuple[str, float]]:
    """The endpoints the models predict and their horizons (days).

    A benefit-harm experiment gets one per side (``"floor"``: first event among the floor
    endpoints, at the floor horizon; ``"ceiling"`` likewise); a composite experiment one,
    ``"composite"``, at ``[models] horizon_days``. A side without a horizon uses that one too.
    """
    from ml.window import BenefitHarmSearch

    ep, m = experiment.endpoint, experiment.models
    if ep.kind == "composite":
        return {"composite": (ep.name, float(m.horizon_days))}
    search = BenefitHarmSearch(ep.floor, ep.ceiling)
    out = {}
    for side in ("floor", "ceiling"):
        _, horizon = ep.side(side)
        out[side] = (search.composite(side), float(m.horizon_days if horizon is None else horizon))
    return out


def _merged_study(studies: dict, name: str):
    """One in-memory study holding every endpoint's trials (user attribute ``side``), in order."""
    import optuna

    if len(studies) == 1:
        return next(iter(studies.values()))
    merged = optuna.create_study(direction="maximize", study_name=name)
    for side, study in studies.items():
        for t in study.trials:
            if not t.state.is_finished():
                continue
            merged.add_trial(optuna.trial.create_trial(
                state=t.state, value=t.value if t.state == optuna.trial.TrialState.COMPLETE else None,
                params=t.params, distributions=t.distributions, user_attrs={**t.user_attrs, "side": side},
                intermediate_values=t.intermediate_values))
    return merged


def fit_models(data: CohortData, experiment, *, random_state: int, progress: bool = False) -> ModelsResult:
    """Tune XGBoost survival hyperparameters by Optuna, then cross-validate it and the Cox reference,
    once per endpoint of :func:`model_endpoints` (each side of a benefit-harm window, or the
    composite).

    Every endpoint gets the experiment's full ``[models] n_trials`` (measured on the default
    experiment: about 9 s per side on the 2-core reference machine). With ``[models]
    tuning_storage`` each endpoint's study lives there under a new unique name (a run never adds
    trials to another run's study) and ``tuning_workers`` processes join it.

    Parameters
    ----------
    data : CohortData
    experiment : Experiment
        Features, endpoint and model settings.
    random_state : int
        Seeds the TPE sampler, the folds and the models.
    progress : bool
        A tqdm bar over trials (terminal only).
    """
    from ml.features import make_preprocessor, survival_target
    from ml.models import CoxSplineModel, XGBSurvival, cross_validate_survival, quiet_optuna, tune_xgb_survival

    m = experiment.models
    cols = list(experiment.features.columns)
    frame = data.frame.loc[data.keep]
    X_tree = make_preprocessor(cols).fit_transform(frame)
    X_cox = make_preprocessor(cols, scale_numeric=True, drop_first=True, min_frequency=10).fit_transform(frame)
    fits = {}
    for name, (endpoint, horizon) in model_endpoints(experiment).items():
        y = survival_target(data.outcomes, endpoint, horizon=horizon)
        template = XGBSurvival(objective=m.objective, monotone_exposure=m.monotone_exposure,
                               exposure_feature=experiment.features.exposure, n_jobs=1)
        bar = _TrialBar(m.n_trials) if progress else None
        suffix = "" if name == "composite" else f"-{name}"
        study_name = f"{experiment.name}-xgb{suffix}"
        if m.tuning_storage is not None:  # shared storage: one new study per run and endpoint
            import uuid

            study_name = f"{study_name}-{uuid.uuid4().hex[:12]}"
        try:
            with quiet_optuna():
                tuning = tune_xgb_survival(X_tree, y, estimator=template, n_trials=m.n_trials,
                                           n_splits=m.tuning_folds, callbacks=[bar] if bar else (),
                                           random_state=random_state, study_name=study_name,
                                           storage=m.tuning_storage, n_workers=m.tuning_workers)
        finally:
            if bar:
                bar.close()
        tuned = tuning.best_estimator
        cv_kw = dict(horizon=horizon, n_splits=m.cv_folds, n_repeats=m.cv_repeats, random_state=random_state)
        xgb_cv = cross_validate_survival(tuned, X_tree, y, **cv_kw)
        cox = CoxSplineModel(exposure=experiment.features.exposure)
        cox_cv = cross_validate_survival(cox, X_cox, y, **cv_kw)
        fits[name] = EndpointModels(name=name, endpoint=endpoint, horizon_days=horizon, tuning=tuning, xgb=tuned,
                                    xgb_cv=xgb_cv, cox_cv=cox_cv, cox=cox, y=y)
    kind = "composite" if "composite" in fits else "benefit-harm"
    with quiet_optuna():
        study = _merged_study({k: f.tuning.study for k, f in fits.items()}, f"{experiment.name}-xgb")
    return ModelsResult(kind=kind, fits=fits, X_tree=X_tree, X_cox=X_cox, study=study)


# ----------------------------------------------------------------------------------------- window
@dataclass(frozen=True)
class WindowResult:
    """The fitted search and the exported artefact.

    Attributes
    ----------
    search : ml.window.WindowSearch
        Fitted (scan, permutations, bootstrap, cross-fitted effect).
    window : ml.window.ExposureWindow
        Status ``candidate`` or ``no-window``.
    incidences : tuple of ml.window.Incidence
    """

    search: object
    window: object
    incidences: tuple = field(default_factory=tuple)


def _window_design(data: CohortData, spec) -> object:
    """Exposure, or exposure plus encoded covariates for an adjusted composite search."""
    if not spec.covariates:
        return data.x
    from ml.features import adjustment_covariates

    X = adjustment_covariates(data.frame, spec.covariates).copy()
    X.insert(0, "__exposure__", data.x)
    return X


def window_search(experiment, *, random_state: int, progress: bool = False):
    """The experiment's search, unfitted: ``BenefitHarmSearch`` (default) or, when the experiment
    names one composite endpoint, ``WindowSearch``."""
    from ml.window import BenefitHarmSearch, WindowSearch

    spec, ep = experiment.window, experiment.endpoint
    common = dict(grid=spec.grid, n_permutations=spec.permutations, n_bootstraps=spec.bootstraps,
                  n_folds=spec.folds, ci_method=spec.ci_method, min_events=spec.min_events,
                  random_state=random_state, progress=progress, estimate=spec.estimate)
    if ep.kind == "composite":
        return WindowSearch(spec.scores, single_cut=spec.single_cut, **common)
    return BenefitHarmSearch(ep.floor, ep.ceiling, floor_horizon=ep.floor_horizon_days,
                             ceiling_horizon=ep.ceiling_horizon_days, floor_covariates=spec.floor_covariates,
                             ceiling_covariates=spec.ceiling_covariates, alpha=experiment.promotion.alpha, **common)


def search_window(data: CohortData, experiment, *, random_state: int, run_id: str | None = None,
                  progress: bool = False) -> WindowResult:
    """Window search with adjusted p-values, bootstrap intervals, cross-fitted effects, incidences.

    Calls :func:`ml.window.discover`, exactly as ``atgwin discover`` does. The artefact is a
    ``candidate`` when the search found evidence at the experiment's promotion ``alpha`` (see its
    ``finding``), else ``no-window``.
    """
    from ml.window import discover

    ep, spec = experiment.endpoint, experiment.window
    found = discover(data.cohort, data.x, search=window_search(experiment, random_state=random_state,
                                                               progress=progress),
                     endpoint=ep.name, horizon_days=ep.horizon_days, covariates=spec.covariates,
                     alpha=experiment.promotion.alpha, outcomes=ep.outcomes,
                     incidence_horizon=ep.incidence_horizon_days, exposure_column=experiment.features.exposure,
                     exposure_definition=data.definition, pk_model=getattr(data, "pk_model", None),
                     mlflow_run_id=run_id)
    return WindowResult(search=found.search, window=found.window, incidences=found.incidences)


def _window_groups(x: np.ndarray, lower, upper) -> dict[str, np.ndarray]:
    ok = np.isfinite(x)
    lo = -np.inf if lower is None else lower
    hi = np.inf if upper is None else upper
    return {"below": ok & (x < lo), "inside": ok & (x >= lo) & (x < hi), "above": ok & (x >= hi)}


def incidence_curves(x, outcomes: pd.DataFrame, lower, upper, endpoints, level: float = 0.95) -> pd.DataFrame:
    """Aalen-Johansen cumulative incidence curves below / inside / above a window, per endpoint.

    Parameters
    ----------
    x : array-like
        Exposure per row of ``outcomes`` (NaN rows left out).
    outcomes : DataFrame
    lower, upper : float or None
        The window (None = open).
    endpoints : iterable of str
    level : float
        Level of the pointwise bands (log(-log) scale, as :func:`ml.window.incidence_at`).

    Returns
    -------
    DataFrame
        ``outcome, group, n, time, incidence, ci_low, ci_high`` step points (time 0 included),
        aggregated per group (event times and the group's incidence; no patient identifiers).
    """
    from scipy import stats

    from ml.features import check_competing_target, competing_target
    from ml.window import aalen_johansen

    x = np.asarray(x, dtype=float)
    z = stats.norm.ppf(0.5 + level / 2)
    frames = []
    for endpoint in endpoints:
        codes, time = check_competing_target(competing_target(outcomes, endpoint))
        for g, mask in _window_groups(x, lower, upper).items():
            if not mask.any():
                continue
            t, f, v = aalen_johansen(time[mask], codes[mask])
            with np.errstate(divide="ignore", invalid="ignore"):
                w = z * np.sqrt(v) / (f * np.log(f))
                a, b = f ** np.exp(w), f ** np.exp(-w)
            good = (f > 0) & (f < 1) & (v > 0)
            lo = np.where(good, np.minimum(a, b), f)
            hi = np.where(good, np.maximum(a, b), f)
            end = float(time[mask].max())
            last = lambda arr: [arr[-1] if arr.size else 0.0]  # noqa: E731
            frames.append(pd.DataFrame({"outcome": endpoint, "group": g, "n": int(mask.sum()),
                                        "time": np.concatenate([[0.0], t, [end]]),
                                        "incidence": np.concatenate([[0.0], f, last(f)]),
                                        "ci_low": np.concatenate([[0.0], lo, last(lo)]),
                                        "ci_high": np.concatenate([[0.0], hi, last(hi)])}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["outcome", "group", "n", "time", "incidence", "ci_low", "ci_high"])


def at_risk_table(x, outcomes: pd.DataFrame, lower, upper, endpoint: str, times) -> pd.DataFrame:
    """Numbers at risk (neither the endpoint, nor its competing event, nor censoring yet) per
    window group at given days, as printed under a cumulative incidence plot.

    Returns
    -------
    DataFrame
        ``group, time, at_risk`` (aggregate counts; no patient identifiers).
    """
    from ml.features import check_competing_target, competing_target

    x = np.asarray(x, dtype=float)
    _, time = check_competing_target(competing_target(outcomes, endpoint))
    rows = [{"group": g, "time": float(t), "at_risk": int(np.sum(time[mask] >= t))}
            for g, mask in _window_groups(x, lower, upper).items() if mask.any() for t in times]
    return pd.DataFrame(rows, columns=["group", "time", "at_risk"])


# --------------------------------------------------------------------------------- explanations
@dataclass(frozen=True)
class EndpointShap:
    """SHAP explanation of one endpoint's tuned model and its exposure bound(s) beside the scan's.

    Attributes
    ----------
    name : {"floor", "ceiling", "composite"}
    endpoint : str
    explanation : shap.Explanation
    importance : DataFrame
    partner : str or None
        Feature with the strongest SHAP interaction with exposure.
    bound : ml.models.ShapBound or None
        One-sided SHAP bound (a side's model): where exposure's contribution stops falling
        (floor) or starts rising (ceiling).
    window : ml.models.ShapWindow or None
        Two-sided SHAP window (the composite model).
    scan_bound : float or None
        The scan's bound of the same side (exposure unit).
    scan_ci : (float or None, float or None) or None
        Its interval (as the window artefact reports it).
    agrees : bool or None
        The SHAP bound lies inside the scan bound's interval (None: open SHAP bound or no interval).
    at_chance : bool
        The model's Harrell's C interval covers 0.5: its explanations describe noise.
    """

    name: str
    endpoint: str
    explanation: object
    importance: pd.DataFrame
    partner: str | None
    bound: object = None
    window: object = None
    scan_bound: float | None = None
    scan_ci: tuple | None = None
    agrees: bool | None = None
    at_chance: bool = False

    def to_dict(self) -> dict:
        """Scalars for ``results.json`` (no patient-level values)."""
        out = {"name": self.name, "endpoint": self.endpoint, "partner": self.partner, "at_chance": self.at_chance,
               "top_features": self.importance.head(10).to_dict("records"), "scan_bound": self.scan_bound,
               "scan_ci": None if self.scan_ci is None else list(self.scan_ci), "agrees": self.agrees}
        if self.bound is not None:
            out.update({"side": self.bound.side, "shap_bound": self.bound.value, "tolerance": self.bound.tolerance,
                        "drop": self.bound.drop, "open": self.bound.open})
        if self.window is not None:
            out.update(self.window.to_dict())
        return out


@dataclass(frozen=True)
class ShapResult:
    """SHAP explanation of every endpoint's tuned model, and the Cox risk curves per outcome.

    Attributes
    ----------
    sides : dict of str to EndpointShap
        ``{"floor": ..., "ceiling": ...}`` or ``{"composite": ...}``.
    curves : DataFrame
        Cox-spline risk curves per outcome (log HR vs the window's target exposure).
    roles : DataFrame or None
        Which outcome sets which bound (:func:`ml.models.bound_setters`).
    """

    sides: dict
    curves: pd.DataFrame
    roles: pd.DataFrame | None


def _ci_tuple(ci):
    if ci is None:
        return None
    vals = tuple(None if v is None or not np.isfinite(v) else float(v) for v in ci)
    return None if all(v is None for v in vals) else vals


def explain(models: ModelsResult, data: CohortData, experiment, window) -> ShapResult:
    """SHAP values, importance, strongest interaction and the SHAP bound(s) of every endpoint's
    model; Cox risk curves per outcome.

    A side's model gets a one-sided :func:`ml.models.shap_bound` (floor: where exposure's
    contribution to the floor endpoint's log-hazard stops falling; ceiling: where it starts
    rising), compared with the scan's bound of that side and its interval. The composite model
    gets the two-sided :func:`ml.models.shap_window`.

    Parameters
    ----------
    models : ModelsResult
    data : CohortData
    experiment : Experiment
    window : ml.window.ExposureWindow
        Its target is the reference exposure of the risk curves (log HR = 0 there).
    """
    from ml.features import survival_target
    from ml.models import (
        bound_setters,
        risk_curves,
        shap_bound,
        shap_explanation,
        shap_importance,
        shap_window,
        strongest_interaction,
    )

    exposure = experiment.features.exposure
    tol = experiment.models.shap_tolerance
    sides = {}
    for name, fit in models.fits.items():
        expl = shap_explanation(fit.xgb, models.X_tree)
        try:
            partner = strongest_interaction(fit.xgb, models.X_tree, exposure)
        except (ValueError, IndexError):
            partner = None
        common = dict(name=name, endpoint=fit.endpoint, explanation=expl, importance=shap_importance(expl),
                      partner=partner, at_chance=fit.at_chance)
        if name == "composite":
            sides[name] = EndpointShap(window=shap_window(expl, exposure, tolerance=tol), **common)
            continue
        bound = shap_bound(expl, exposure, side=name, tolerance=tol)
        ev = getattr(window, name, None)
        scan_bound = None if ev is None else ev.value
        scan_ci = None if ev is None else _ci_tuple(ev.ci)
        sides[name] = EndpointShap(bound=bound, scan_bound=scan_bound, scan_ci=scan_ci,
                                   agrees=bound.within(scan_ci), **common)
    targets = {o: survival_target(data.outcomes, o, horizon=experiment.endpoint.incidence_horizon_days)
               for o in experiment.endpoint.outcomes}
    x = data.x[data.keep]
    grid = np.linspace(*np.quantile(x, [0.025, 0.975]), 60)
    curves = risk_curves(models.X_cox, targets, grid, model=models.primary.cox, reference=float(window.target))
    roles = None
    if window.lower is not None and window.upper is not None and window.status != WindowStatus.NO_WINDOW:
        try:
            roles = bound_setters(curves, (window.lower, window.upper))
        except ValueError:
            roles = None
    return ShapResult(sides=sides, curves=curves, roles=roles)


# ------------------------------------------------------------------------------------ transport
@dataclass(frozen=True)
class TransportResult:
    """A window applied to another cohort, and that cohort's own window.

    Attributes
    ----------
    data : CohortData
        The target cohort.
    evaluation : ml.window.WindowEvaluation or dict
        The source window scored on the target cohort (pre-specified: no search, no adjustment);
        for a benefit-harm window, ``{"floor": ..., "ceiling": ...}`` (each side's harmed group vs
        the rest, on its own endpoints).
    incidences : tuple of Incidence
        Target cohort's incidences below / inside / above the source window.
    rederived : WindowResult
        The window searched afresh on the target cohort.
    """

    data: CohortData
    evaluation: object
    incidences: tuple
    rederived: WindowResult


def _evaluate_sides(window, experiment, target: CohortData, random_state: int) -> dict:
    """A benefit-harm window scored on another cohort, side by side: the floor endpoints below vs at
    or above the floor, the ceiling endpoints at or above vs below the ceiling (pre-specified cuts:
    no search, no adjustment). Each side is a :class:`ml.window.WindowEvaluation` whose "inside" is
    the side's *harmed* group."""
    from ml.features import competing_target
    from ml.window import BenefitHarmSearch, evaluate_window

    ep = experiment.endpoint
    composite = BenefitHarmSearch(ep.floor, ep.ceiling)
    out = {}
    for side, lower, upper in (("floor", None, window.lower), ("ceiling", window.upper, None)):
        if (window.lower if side == "floor" else window.upper) is None:
            continue
        _, horizon = ep.side(side)
        y = competing_target(target.cohort.outcomes, composite.composite(side), horizon)
        out[side] = evaluate_window(target.x, y, lower, upper, n_permutations=experiment.window.permutations,
                                    random_state=random_state)
    return out


def transport(window, experiment, target: CohortData, *, random_state: int, progress: bool = False) -> TransportResult:
    """Evaluate ``window`` on the target cohort and re-derive the target's own window.

    Raises
    ------
    ValueError
        When the target cohort's exposure unit differs from the window's (assays cannot be
        converted into each other).
    """
    from ml.features import competing_target
    from ml.window import evaluate_window, window_incidences

    if target.unit != window.unit:
        raise ValueError(f"unit mismatch: the window is in {window.unit!r} but the transport cohort's exposure is "
                         f"in {target.unit!r}; assays cannot be converted, refusing to transport")
    ep = experiment.endpoint
    spec = experiment.window
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*missing exposure.*")
        if ep.kind == "benefit-harm":
            ev = _evaluate_sides(window, experiment, target, random_state)
        else:
            y = competing_target(target.cohort.outcomes, ep.name, ep.horizon_days)
            cov = None
            if spec.covariates:
                cov = _window_design(target, spec).drop(columns="__exposure__").to_numpy(dtype=float)
            ev = evaluate_window(target.x, y, window.lower, window.upper, scores=spec.scores, covariates=cov,
                                 n_permutations=spec.permutations, random_state=random_state)
    incidences = window_incidences(target.x, target.cohort.outcomes, window.lower, window.upper, ep.outcomes,
                                   ep.incidence_horizon_days)
    rederived = search_window(target, experiment, random_state=random_state, progress=progress)
    return TransportResult(data=target, evaluation=ev, incidences=incidences, rederived=rederived)
