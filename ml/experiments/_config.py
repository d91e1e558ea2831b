"""Experiment files (``experiments/*.toml``): read once, check every key, map strings to objects.

An experiment file names what a run does: where the cohort comes from when none is given
(a virtual cohort: scenario, n, seed), the floor and ceiling endpoints of the benefit-harm window
(or one composite endpoint) and their horizons, the features of the models,
the window search (scores, grid, permutations, bootstraps), the tuning and cross-validation of
the models, the promotion gates and the registry name. This module is the edge: strings such as
``"logrank"`` become strategy objects here, once; the rest of the pipeline receives objects.

Every problem in a file is reported at once (unknown keys, wrong types, out-of-range values),
as ``ExperimentError`` with one line per problem, before anything is computed.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ml._defaults import BENEFIT_HARM as _BH
from ml._defaults import COMPOSITE_MINPROP, GRID_K, MINPROP
from ml._defaults import PROMOTION as _GATES

__all__ = [
    "CohortSpec",
    "EndpointSpec",
    "Experiment",
    "ExperimentError",
    "FeatureSpec",
    "ModelSpec",
    "PopPKSpec",
    "PromotionSpec",
    "WindowSpec",
    "load_experiment",
    "parse_experiment",
]

#: Window-search score strategies by their name in experiment files.
SCORES = ("logrank", "cox-martingale", "subdistribution")


class ExperimentError(ValueError):
    """An experiment file broke one or more rules; ``problems`` lists them all."""

    def __init__(self, problems: list[str], source: str = "experiment"):
        self.problems = list(problems)
        n = len(self.problems)
        super().__init__("\n".join([f"{source}: {n} problem{'s' if n != 1 else ''}",
                                    *(f"  {p}" for p in self.problems)]))


@dataclass(frozen=True)
class CohortSpec:
    """A cohort: a folder (``path``) or a virtual cohort (``scenario``, ``n``, ``seed``).

    Attributes
    ----------
    scenario : str or None
        ``ml.sim`` scenario (``urd``, ``haplo``, ``null``, ``shifted``, ``hinge``).
    n : int or None
        Virtual patients.
    seed : int
    path : str or None
        A cohort folder (docs/cohort-format.md); wins over ``scenario``.
    """

    scenario: str | None = "urd"
    n: int | None = 324
    seed: int = 0
    path: str | None = None

    def describe(self) -> str:
        """``"folder DIR"`` or ``"SIMULATED urd, n=324, seed=0"``."""
        if self.path:
            return f"folder {self.path}"
        return f"SIMULATED {self.scenario}, n={self.n}, seed={self.seed}"


@dataclass(frozen=True)
class EndpointSpec:
    """What the window is searched for, and the outcomes reported around it.

    By default a benefit-harm window: the floor from the under-exposure endpoint(s), the ceiling
    from the over-exposure endpoint(s) (defaults of ``ml.window.BenefitHarmSearch``). Naming one
    endpoint (``name``) runs the composite two-cut search on it instead.

    Attributes
    ----------
    floor, ceiling : tuple of str
        Endpoints harmed by under- / over-exposure (e.g. ``("agvhd2",)``, ``("cmv|ebv",)``).
    floor_horizon_days, ceiling_horizon_days : float or None
        Days from transplant each side's endpoints are truncated at.
    name : str or None
        A composite endpoint (e.g. ``"cmv|ebv|agvhd2|death"``) for the composite search; None for
        the benefit-harm search.
    horizon_days : float or None
        Horizon of the composite endpoint (days); for the benefit-harm search, the longer of the
        two sides' horizons.
    outcomes : tuple of str
        Endpoints whose cumulative incidence (below / inside / above the window) and risk
        curve along exposure are reported.
    incidence_horizon_days : float
        Day at which incidences are read.
    """

    floor: tuple[str, ...] = _BH["floor_endpoints"]
    ceiling: tuple[str, ...] = _BH["ceiling_endpoints"]
    floor_horizon_days: float | None = _BH["floor_horizon"]
    ceiling_horizon_days: float | None = _BH["ceiling_horizon"]
    name: str | None = None
    horizon_days: float | None = 180.0
    outcomes: tuple[str, ...] = ("cmv", "ebv", "agvhd2", "agvhd3", "cgvhd", "relapse", "nrm")
    incidence_horizon_days: float = 180.0

    @property
    def kind(self) -> str:
        """``"benefit-harm"`` (floor and ceiling) or ``"composite"`` (one endpoint)."""
        return "benefit-harm" if self.name is None else "composite"

    def side(self, side: str) -> tuple[tuple[str, ...], float | None]:
        """Endpoints and horizon (days) of ``side`` (``"floor"`` or ``"ceiling"``)."""
        return getattr(self, side), getattr(self, f"{side}_horizon_days")

    @property
    def label(self) -> str:
        """Short text naming what is searched, e.g. ``floor agvhd2 / ceiling cmv|ebv``."""
        if self.name is not None:
            return self.name
        return f"floor {'+'.join(self.floor)} / ceiling {'+'.join(self.ceiling)}"


@dataclass(frozen=True)
class FeatureSpec:
    """Features of the models: exposure plus covariates (columns of the feature frame).

    Attributes
    ----------
    exposure : str
        Exposure column (``auc_total``, UE*day/mL).
    covariates : tuple of str
        Covariates (contract columns or derived ones such as ``cmv_serostatus``).
    exposure_method : {"map", "nca"}
        How AUCs come from the levels: ``"map"`` (default: individual curves fitted under the
        population PK model, M3 for levels below the LLOQ; ``ml.pk.MAPExposure``) or ``"nca"``
        (model-free; ``ml.pk.NCAExposure``). Turned into a strategy by :meth:`strategy`.
    pk_model : str or None
        The population PK model of ``"map"``: None (default) fits it to the cohort's own levels
        first (``ml.poppk.PopPKFit``, settings in :class:`PopPKSpec`); a model file (TOML/JSON,
        e.g. from ``atgwin poppk fit``) or ``"shipped"`` (the shipped assumption set) uses that
        model without fitting.
    """

    exposure: str = "auc_total"
    covariates: tuple[str, ...] = ("age_years", "sex", "weight_kg", "diagnosis", "disease_status",
                                   "conditioning", "hla_mismatches", "cmv_serostatus", "alc_pre_atg")
    exposure_method: str = "map"
    pk_model: str | None = None

    def strategy(self, model=None, source: str | None = None):
        """The exposure strategy (``ml.pk.exposure_strategy``) under ``model`` (MAP) or NCA."""
        from ml.pk import exposure_strategy

        return exposure_strategy(self.exposure_method, model if self.exposure_method == "map" else None, source)

    @property
    def columns(self) -> tuple[str, ...]:
        """Exposure first, then the covariates."""
        return (self.exposure, *self.covariates)


@dataclass(frozen=True)
class PopPKSpec:
    """The population PK fit that ``atgwin run`` does before the exposure (``[poppk]``).

    Used when ``exposure_method = "map"`` and no ``pk_model`` is named. The fit is
    ``ml.poppk.PopPKFit`` on the cohort's own doses and levels, from the shipped assumption set;
    when it fails or does not converge (:func:`ml.experiments.check_pk_fit`) the run falls back
    to the shipped model with a recorded warning.

    Attributes
    ----------
    n_explore, n_smooth : int or None
        SAEM iterations (the fit's budget: time grows linearly with their sum); None: the
        defaults of ``PopPKFit``.
    n_importance : int
        Importance samples per patient for the fit's -2LL (0 skips it).
    vpc_sims : int
        Simulated replicates of the design for the visual predictive check (0 skips it).
    max_rse : float
        Percent: largest relative standard error of typical CL, V1, Q, V2 and of the omegas for
        the fit to count as converged (Vmax and Km, weakly determined by the design, are not
        checked; docs/benchmarks.md, population PK fit).
    max_drift : float
        Largest change (fraction) of the typical CL, V1, Q, V2 between the last two quarters of
        the exploration iterations: more means SAEM had not reached its stationary phase.
    """

    n_explore: int | None = None
    n_smooth: int | None = None
    n_importance: int = 0
    vpc_sims: int = 100
    max_rse: float = 50.0
    max_drift: float = 0.1


@dataclass(frozen=True)
class WindowSpec:
    """Settings of the window search (``ml.window.WindowSearch``); strategies already built.

    Attributes
    ----------
    scores : object
        Scores strategy (``LogRankScores()``, ``CoxMartingaleScores()``, ``SubdistributionScores()``).
    grid : object
        ``QuantileGrid(k, minprop)``.
    covariates : tuple of str
        Covariates of an adjusted composite search (``cox-martingale`` scores).
    floor_covariates, ceiling_covariates : tuple of str
        Covariates adjusting each side of a benefit-harm search (e.g. ``hla_mismatches`` for the
        floor, ``cmv_serostatus`` for the ceiling).
    permutations, bootstraps, folds : int
    ci_method : {"percentile", "basic"}
    estimate : {"bagged", "argmax"}
    single_cut : bool
    min_events : int
    """

    scores: object
    grid: object
    covariates: tuple[str, ...] = ()
    floor_covariates: tuple[str, ...] = ()
    ceiling_covariates: tuple[str, ...] = ()
    permutations: int = 1000
    bootstraps: int = 1000
    folds: int = 5
    ci_method: str = "percentile"
    estimate: str = "bagged"
    single_cut: bool = False
    min_events: int = 10


@dataclass(frozen=True)
class ModelSpec:
    """Settings of the models, their tuning and cross-validation.

    Attributes
    ----------
    objective : {"survival:cox", "survival:aft"}
    n_trials : int
        Optuna trials (seeded TPE, median pruning).
    tuning_folds : int
    cv_folds, cv_repeats : int
        Repeated, event-stratified cross-validation of the tuned model and the Cox reference.
    horizon_days : float
        Days: survival target truncation of the models and the CV horizon.
    monotone_exposure : int
        XGBoost monotone constraint on exposure (-1, 0, 1).
    shap_tolerance : float or None
        Tolerance of the SHAP window (log-hazard units); None: half the curve's range.
    tuning_storage : JournalTuningStorage or RDBTuningStorage or None
        Where the Optuna studies live (``journal:PATH`` or a database URL in the file;
        ``ml.models.tuning_storage``); None: in memory.
    tuning_workers : int
        Worker processes joining each study (more than 1 needs ``tuning_storage``).
    private_views : bool
        Also draw the individual-level SHAP views (beeswarm, the waterfall of the patient at
        highest predicted risk) into the run's private folder (``RunBundle.private``), which is
        never sent to MLflow; ``atgwin report RUN_FOLDER --private`` shows them. Off by default:
        on a real cohort they show quasi-identifiers (age, weight, diagnosis, serostatus).
    """

    objective: str = "survival:cox"
    n_trials: int = 30
    tuning_folds: int = 5
    cv_folds: int = 5
    cv_repeats: int = 3
    horizon_days: float = 180.0
    monotone_exposure: int = 0
    shap_tolerance: float | None = None
    tuning_storage: object = None
    tuning_workers: int = 1
    private_views: bool = False


@dataclass(frozen=True)
class PromotionSpec:
    """Gates a candidate window must pass to become ``validated`` (``ml.window.PromotionGates``).

    Attributes
    ----------
    alpha : float
        The adjusted p-value must be below it; also decides ``candidate`` vs ``no-window``.
    max_ci_width : float
        UE*day/mL: largest width of each bound's confidence interval.
    min_events : int
    """

    alpha: float = 0.05
    max_ci_width: float = _GATES["max_ci_width"]
    min_events: int = 50

    def gates(self):
        """The gates as ``ml.window.PromotionGates``."""
        from ml.window import PromotionGates

        return PromotionGates(alpha=self.alpha, max_ci_width=self.max_ci_width, min_events=self.min_events)


@dataclass(frozen=True)
class Experiment:
    """A parsed experiment file.

    Attributes
    ----------
    name : str
        Experiment name (MLflow experiment, prefix of run names).
    description : str
    seed : int
        Seeds the tuning, cross-validation, permutations and bootstrap.
    cohort : CohortSpec
    endpoint : EndpointSpec
    features : FeatureSpec
    window : WindowSpec
    models : ModelSpec
    promotion : PromotionSpec
    poppk : PopPKSpec
        The population PK fit before the exposure.
    model_name : str
        Registered model name of the window (e.g. ``atg-window-urd``).
    transport : CohortSpec or None
        A second cohort on which the window is evaluated and re-derived (transportability).
    source : str
        Path of the file, for the record.
    text : str
        The file's text (kept with the run).
    """

    name: str
    cohort: CohortSpec
    endpoint: EndpointSpec
    features: FeatureSpec
    window: WindowSpec
    models: ModelSpec
    promotion: PromotionSpec
    model_name: str
    description: str = ""
    seed: int = 0
    transport: CohortSpec | None = None
    poppk: PopPKSpec = field(default_factory=PopPKSpec)
    source: str = ""
    text: str = field(default="", repr=False)

    def with_cohort(self, path: str | None = None, transport_path: str | None = None) -> Experiment:
        """A copy whose cohort (and/or transport cohort) is the folder given on the command line."""
        from dataclasses import replace

        out = self
        if path is not None:
            out = replace(out, cohort=CohortSpec(scenario=None, n=None, seed=0, path=str(path)))
        if transport_path is not None:
            out = replace(out, transport=CohortSpec(scenario=None, n=None, seed=0, path=str(transport_path)))
        return out

    def params(self) -> dict[str, str]:
        """Flat ``section.key -> text`` of the settings, for logging as run parameters."""
        out = {"experiment.name": self.name, "experiment.seed": str(self.seed),
               "experiment.model_name": self.model_name, "cohort.source": self.cohort.describe()}
        for prefix, spec in (("endpoint", self.endpoint), ("features", self.features),
                             ("models", self.models), ("promotion", self.promotion), ("poppk", self.poppk)):
            for k, v in vars(spec).items():
                out[f"{prefix}.{k}"] = ",".join(map(str, v)) if isinstance(v, tuple) else str(v)
        for k, v in vars(self.window).items():
            out[f"window.{k}"] = ",".join(map(str, v)) if isinstance(v, tuple) else repr(v) if k in ("scores", "grid") else str(v)
        if self.transport is not None:
            out["transport.source"] = self.transport.describe()
        return out


# ---------------------------------------------------------------------------------------- parsing
class _Section:
    """Typed reads from one table of the TOML document, collecting problems instead of raising."""

    def __init__(self, doc: dict, name: str, problems: list[str], known: tuple[str, ...]):
        self.name = name
        self.problems = problems
        raw = doc.get(name, {}) if name else doc
        if not isinstance(raw, dict):
            problems.append(f"[{name}] must be a table, got {type(raw).__name__}")
            raw = {}
        self.raw = raw
        unknown = sorted(k for k, v in raw.items() if k not in known and not (not name and isinstance(v, dict)))
        if unknown:
            where = f"[{name}]" if name else "top level"
            problems.append(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")

    def _key(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def get(self, key: str, default, kind, check=None, rule: str = ""):
        if key not in self.raw:
            return default
        v = self.raw[key]
        ok_type = (isinstance(v, kind) and not (kind in (int, float, (int, float)) and isinstance(v, bool)))
        if kind is float and isinstance(v, int) and not isinstance(v, bool):
            v, ok_type = float(v), True
        if not ok_type:
            self.problems.append(f"{self._key(key)}: must be {getattr(kind, '__name__', kind)}, got {v!r}")
            return default
        if check is not None and not check(v):
            self.problems.append(f"{self._key(key)}: {rule}, got {v!r}")
            return default
        return v

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        v = self.raw.get(key, list(default))
        if not (isinstance(v, list) and all(isinstance(s, str) and s for s in v)):
            self.problems.append(f"{self._key(key)}: must be a list of non-empty strings, got {v!r}")
            return default
        return tuple(v)


def _horizon(section: _Section, key: str, default):
    v = section.raw.get(key, default)
    if v is None or (isinstance(v, str) and v.lower() == "none"):
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
        section.problems.append(f"{section._key(key)}: must be a number of days > 0 or \"none\", got {v!r}")
        return default
    return float(v)


def _endpoint_name(section: _Section, key: str, value: str) -> str:
    from ml.features import parse_endpoint

    try:
        return parse_endpoint(value).name
    except ValueError as exc:
        section.problems.append(f"{section._key(key)}: {exc}")
        return value


def _cohort_spec(s: _Section, default: CohortSpec | None) -> CohortSpec | None:
    if not s.raw:
        return default
    path = s.get("path", None, str)
    scenario = s.get("scenario", None if path else "urd", str)
    n = s.get("n", None, int, lambda v: v >= 20, "must be >= 20 patients")
    seed = s.get("seed", 0, int)
    if scenario is not None and path is None:
        from ml.sim import SimulationConfig

        known = SimulationConfig.default().scenarios
        if scenario not in known:
            s.problems.append(f"{s._key('scenario')}: unknown scenario {scenario!r}; known: {sorted(known)}")
    return CohortSpec(scenario=None if path else scenario, n=n, seed=seed, path=path)


def _scores(name: str):
    from ml.window import CoxMartingaleScores, LogRankScores, SubdistributionScores

    return {"logrank": LogRankScores, "cox-martingale": CoxMartingaleScores,
            "subdistribution": SubdistributionScores}[name]()


def _endpoint_spec(e: _Section) -> EndpointSpec:
    """``[endpoint]``: the benefit-harm sides (default) or one composite endpoint (``name``)."""
    d = EndpointSpec()
    ep_name = e.get("name", None, str)
    ep_name = None if ep_name is None else _endpoint_name(e, "name", ep_name)
    floor = tuple(_endpoint_name(e, "floor", o) for o in e.strings("floor", d.floor))
    ceiling = tuple(_endpoint_name(e, "ceiling", o) for o in e.strings("ceiling", d.ceiling))
    f_h = _horizon(e, "floor_horizon_days", d.floor_horizon_days)
    c_h = _horizon(e, "ceiling_horizon_days", d.ceiling_horizon_days)
    if ep_name is not None and {"floor", "ceiling", "floor_horizon_days", "ceiling_horizon_days"} & set(e.raw):
        e.problems.append("[endpoint]: `name` runs the composite search on one endpoint; floor/ceiling settings "
                          "belong to the benefit-harm search: give one or the other")
    if ep_name is None and "horizon_days" in e.raw:
        e.problems.append("[endpoint].horizon_days: the horizon of a composite endpoint (`name`); the benefit-harm "
                          "search takes floor_horizon_days and ceiling_horizon_days")
    default_h = max(h for h in (f_h, c_h, 0.0) if h is not None) or None
    horizon = _horizon(e, "horizon_days", d.horizon_days) if ep_name is not None else default_h
    outcomes = tuple(_endpoint_name(e, "outcomes", o) for o in e.strings("outcomes", d.outcomes))
    inc_h = _horizon(e, "incidence_horizon_days", horizon or 365.0) or horizon or 365.0
    return EndpointSpec(floor=floor, ceiling=ceiling, floor_horizon_days=f_h, ceiling_horizon_days=c_h,
                        name=ep_name, horizon_days=horizon, outcomes=outcomes, incidence_horizon_days=inc_h)


def _feature_spec(f: _Section) -> FeatureSpec:
    """``[features]``: the exposure column, how it is computed, and the covariates."""
    fd = FeatureSpec()
    exposure = f.get("exposure", fd.exposure, str, lambda v: v in ("auc_total", "auc_pre", "auc_post"),
                     "must be auc_total, auc_pre or auc_post")
    method = f.get("exposure_method", fd.exposure_method, str, lambda v: v in ("map", "nca"), "must be map or nca")
    pk_model = f.get("pk_model", fd.pk_model, str, lambda v: v == "shipped" or Path(v).is_file(),
                     "must be an existing model file or \"shipped\"")
    if pk_model is not None and method != "map":
        f.problems.append("[features].pk_model: only applies to exposure_method = \"map\"")
    if pk_model not in (None, "shipped"):
        from ml.pk import PopPKModel

        try:
            PopPKModel.from_file(pk_model)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            f.problems.append(f"features.pk_model: {pk_model} is not a population PK model: {exc}")
    return FeatureSpec(exposure=exposure, covariates=f.strings("covariates", fd.covariates),
                       exposure_method=method, pk_model=pk_model)


def _poppk_spec(k: _Section) -> PopPKSpec:
    """``[poppk]``: the population PK fit's budget and convergence checks."""
    kd = PopPKSpec()
    return PopPKSpec(
        n_explore=k.get("n_explore", kd.n_explore, int, lambda v: v >= 20, "must be >= 20"),
        n_smooth=k.get("n_smooth", kd.n_smooth, int, lambda v: v >= 1, "must be >= 1"),
        n_importance=k.get("n_importance", kd.n_importance, int, lambda v: v >= 0, "must be >= 0"),
        vpc_sims=k.get("vpc_sims", kd.vpc_sims, int, lambda v: v == 0 or v >= 20, "must be 0 (skip) or >= 20"),
        max_rse=k.get("max_rse", kd.max_rse, float, lambda v: v > 0, "must be > 0 (percent)"),
        max_drift=k.get("max_drift", kd.max_drift, float, lambda v: v > 0, "must be > 0 (fraction)"),
    )


def _window_keys_fit_search(w: _Section, composite: bool, side_cov: dict) -> None:
    """Problems of ``[window]`` keys given to the wrong search (composite vs benefit-harm)."""
    if composite and any(side_cov.values()):
        w.problems.append("window.floor_covariates / ceiling_covariates: only for the benefit-harm search (no "
                          "[endpoint].name); a composite search takes window.covariates")
    if not composite:
        for key in ("covariates", "single_cut", "scores"):
            if key in w.raw and not (key == "scores" and w.raw[key] == "logrank"):
                w.problems.append(f"window.{key}: only for the composite search ([endpoint].name); the benefit-harm "
                                  "search adjusts each side with window.floor_covariates / ceiling_covariates")


def _window_scores(w: _Section) -> tuple[str, tuple[str, ...]]:
    """``[window] scores`` and ``covariates``, checked against each other."""
    scores_name = w.get("scores", "logrank", str, lambda v: v in SCORES, f"must be one of {list(SCORES)}")
    w_cov = w.strings("covariates", ())
    if scores_name == "cox-martingale" and not w_cov:
        w.problems.append("window.covariates: an adjusted search (scores = \"cox-martingale\") needs covariates")
    if w_cov and scores_name != "cox-martingale":
        w.problems.append(f"window.covariates: only used by scores = \"cox-martingale\", got scores = {scores_name!r}")
    return scores_name, w_cov


def _window_spec(w: _Section, endpoint: EndpointSpec) -> WindowSpec:
    """``[window]``: the search's settings (defaults depend on the endpoint's kind)."""
    composite = endpoint.kind == "composite"
    side_cov = {k: w.strings(k, ()) for k in ("floor_covariates", "ceiling_covariates")}
    _window_keys_fit_search(w, composite, side_cov)
    scores_name, w_cov = _window_scores(w)
    grid_k = w.get("grid_k", GRID_K, int, lambda v: v >= 2, "must be >= 2")
    minprop = w.get("minprop", COMPOSITE_MINPROP if composite else MINPROP, float, lambda v: 0.01 <= v <= 0.45,
                    "must be in [0.01, 0.45]")
    folds = w.get("folds", _BH["n_folds"], int, lambda v: v == 0 or v >= 2, "must be 0 (skip) or >= 2")
    bootstraps = w.get("bootstraps", _BH["n_bootstraps"], int, lambda v: v >= 0, "must be >= 0")
    estimate = w.get("estimate", "bagged" if composite else _BH["estimate"], str,
                     lambda v: v in ("bagged", "argmax") or (v == "smoothed" and not composite),
                     "must be smoothed (benefit-harm search only), bagged or argmax")
    if estimate in ("bagged", "smoothed") and bootstraps == 0:
        w.problems.append(f"window.estimate: {estimate!r} comes from the bootstrap windows; needs bootstraps >= 1")
    from ml.window import QuantileGrid

    return WindowSpec(
        scores=_scores(scores_name if scores_name in SCORES else "logrank"),
        grid=QuantileGrid(k=grid_k, minprop=minprop),
        covariates=w_cov,
        floor_covariates=side_cov["floor_covariates"], ceiling_covariates=side_cov["ceiling_covariates"],
        permutations=w.get("permutations", _BH["n_permutations"], int, lambda v: v >= 0, "must be >= 0"),
        bootstraps=bootstraps, folds=folds,
        ci_method=w.get("ci_method", "percentile" if composite else _BH["ci_method"], str,
                        lambda v: v in ("percentile", "basic") or (v == "ij" and not composite),
                        "must be ij (benefit-harm search only), percentile or basic"),
        estimate=estimate,
        single_cut=w.get("single_cut", False, bool),
        min_events=w.get("min_events", _BH["min_events"], int, lambda v: v >= 1, "must be >= 1"),
    )


def _model_spec(m: _Section, horizon: float | None) -> ModelSpec:
    """``[models]``: tuning and cross-validation of the survival models (``horizon``: the endpoint's)."""
    md = ModelSpec()
    storage = _tuning_storage(m)
    workers = m.get("tuning_workers", 1, int, lambda v: v >= 1, "must be >= 1")
    if workers > 1 and storage is None and "tuning_storage" not in m.raw:
        m.problems.append(f"models.tuning_workers: {workers} workers need models.tuning_storage (journal:PATH or a "
                          "database URL): an in-memory study lives in one process")
    return ModelSpec(
        objective=m.get("objective", md.objective, str, lambda v: v in ("survival:cox", "survival:aft"),
                        "must be survival:cox or survival:aft"),
        n_trials=m.get("n_trials", md.n_trials, int, lambda v: v >= 1, "must be >= 1"),
        tuning_folds=m.get("tuning_folds", md.tuning_folds, int, lambda v: v >= 2, "must be >= 2"),
        cv_folds=m.get("cv_folds", md.cv_folds, int, lambda v: v >= 2, "must be >= 2"),
        cv_repeats=m.get("cv_repeats", md.cv_repeats, int, lambda v: v >= 1, "must be >= 1"),
        horizon_days=_horizon(m, "horizon_days", horizon or md.horizon_days) or horizon or md.horizon_days,
        monotone_exposure=m.get("monotone_exposure", 0, int, lambda v: v in (-1, 0, 1), "must be -1, 0 or 1"),
        shap_tolerance=m.get("shap_tolerance", None, float, lambda v: v > 0, "must be > 0 (log-hazard units)"),
        tuning_storage=storage, tuning_workers=workers,
        private_views=m.get("private_views", False, bool),
    )


def _tuning_storage(m: _Section):
    """``[models].tuning_storage`` as a storage object (None: in memory), problems collected."""
    storage = m.get("tuning_storage", None, str)
    if storage is None:
        return None
    from ml.models import tuning_storage

    try:
        return tuning_storage(storage)
    except ValueError as exc:
        m.problems.append(f"models.tuning_storage: {exc}")
        return None


def _promotion_spec(p: _Section) -> PromotionSpec:
    """``[promotion]``: the gates of ``atgwin promote`` (``alpha`` also decides candidate vs no-window)."""
    return PromotionSpec(
        alpha=p.get("alpha", 0.05, float, lambda v: 0 < v < 1, "must be in (0, 1)"),
        max_ci_width=p.get("max_ci_width", _GATES["max_ci_width"], float, lambda v: math.isfinite(v) and v > 0, "must be > 0"),
        min_events=p.get("min_events", 50, int, lambda v: v >= 0, "must be >= 0"),
    )


def parse_experiment(text: str, source: str = "experiment") -> Experiment:
    """Parse the text of an experiment file.

    Parameters
    ----------
    text : str
        TOML.
    source : str
        Name used in messages (the path).

    Returns
    -------
    Experiment

    Raises
    ------
    ExperimentError
        Listing every problem.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError([f"not valid TOML: {exc}"], source) from None
    problems: list[str] = []
    sections = ("cohort", "endpoint", "features", "window", "models", "promotion", "registry", "transport",
                "poppk")
    top = _Section(doc, "", problems, ("name", "description", "seed", *sections))
    for k, v in doc.items():
        if isinstance(v, dict) and k not in sections:
            problems.append(f"[{k}]: unknown section; known: {sorted(sections)}")
    name = top.get("name", "", str, lambda v: v.strip() != "" and "/" not in v, "must be a non-empty name without '/'")
    if "name" not in doc:
        problems.append("name: required (the experiment's name)")
    seed = top.get("seed", 0, int, lambda v: v >= 0, "must be >= 0")

    cohort = _cohort_spec(_Section(doc, "cohort", problems, ("scenario", "n", "seed", "path")), CohortSpec())
    endpoint = _endpoint_spec(_Section(doc, "endpoint", problems, (
        "name", "horizon_days", "floor", "ceiling", "floor_horizon_days", "ceiling_horizon_days", "outcomes",
        "incidence_horizon_days")))
    features = _feature_spec(_Section(doc, "features", problems, ("exposure", "covariates", "exposure_method",
                                                                   "pk_model")))
    poppk = _poppk_spec(_Section(doc, "poppk", problems, ("n_explore", "n_smooth", "n_importance", "vpc_sims",
                                                           "max_rse", "max_drift")))
    window = _window_spec(_Section(doc, "window", problems, (
        "scores", "covariates", "floor_covariates", "ceiling_covariates", "grid_k", "minprop", "permutations",
        "bootstraps", "folds", "ci_method", "estimate", "single_cut", "min_events")), endpoint)
    models = _model_spec(_Section(doc, "models", problems, (
        "objective", "n_trials", "tuning_folds", "cv_folds", "cv_repeats", "horizon_days", "monotone_exposure",
        "shap_tolerance", "tuning_storage", "tuning_workers", "private_views")), endpoint.horizon_days)
    promotion = _promotion_spec(_Section(doc, "promotion", problems, ("alpha", "max_ci_width", "min_events")))
    r = _Section(doc, "registry", problems, ("model_name",))
    model_name = r.get("model_name", f"atg-window-{name or 'default'}", str,
                       lambda v: bool(v.strip()) and "/" not in v and "@" not in v,
                       "must be a non-empty name without '/' or '@'")
    t = _Section(doc, "transport", problems, ("scenario", "n", "seed", "path"))
    transport = _cohort_spec(t, None) if t.raw else None

    if problems:
        raise ExperimentError(problems, source)
    return Experiment(name=name, description=top.get("description", "", str), seed=seed, cohort=cohort,
                      endpoint=endpoint, features=features, window=window, models=models,
                      promotion=promotion, model_name=model_name, transport=transport, poppk=poppk, source=source,
                      text=text)


def load_experiment(path: str | Path) -> Experiment:
    """Read and check an experiment file (see :func:`parse_experiment`)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ExperimentError([f"cannot read: {exc.strerror or exc}"], str(path)) from None
    return parse_experiment(text, str(path))
