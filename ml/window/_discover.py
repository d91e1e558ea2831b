"""``discover``: the one library entry point of window discovery, used by ``atgwin discover`` and
the experiment runner alike.

By default it runs the benefit-harm search (:class:`BenefitHarmSearch`: a floor from the
under-exposure endpoint, a ceiling from the over-exposure endpoint); given ``endpoint``, it runs the
composite two-cut search (:class:`WindowSearch`) on that one endpoint instead, for comparison.
Either way it returns the fitted search, the exported :class:`ExposureWindow` and the cumulative
incidences below / inside / above the window.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone

from ml._defaults import COMPOSITE_MINPROP, GRID_K
from ml.window._artefact import ExposureWindow, Incidence
from ml.window._benefit_harm import SIDES, BenefitHarmSearch
from ml.window._export import AUC_TOTAL_DEFINITION, benefit_harm_window, exposure_window, population_of
from ml.window._grid import QuantileGrid
from ml.window._incidence import window_incidences
from ml.window._scores import CoxMartingaleScores, LogRankScores
from ml.window._search import WindowSearch

__all__ = ["DEFAULT_INCIDENCE_OUTCOMES", "Discovery", "composite_search", "discover"]

#: Outcomes whose cumulative incidence is reported below / inside / above the window.
DEFAULT_INCIDENCE_OUTCOMES = ("cmv", "ebv", "agvhd2", "agvhd3", "cgvhd", "relapse", "nrm")


@dataclass(frozen=True)
class Discovery:
    """What :func:`discover` found.

    Attributes
    ----------
    search : BenefitHarmSearch or WindowSearch
        Fitted.
    window : ExposureWindow
        The artefact (status ``candidate`` or ``no-window``; ``finding`` says what was found).
    incidences : tuple of Incidence
        Aalen-Johansen cumulative incidence of each reported outcome below / inside / above.
    exposure : numpy.ndarray
        Exposure per row of the cohort's outcomes table (NaN: none; excluded and counted).
    kind : {"benefit-harm", "composite"}
    """

    search: object
    window: ExposureWindow
    incidences: tuple[Incidence, ...]
    exposure: np.ndarray
    kind: str

    @property
    def n_excluded(self) -> int:
        """Patients without an exposure (left out of the search)."""
        return int(np.isnan(self.exposure).sum())


def composite_search(covariates: bool = False, **params) -> WindowSearch:
    """The composite two-cut search as ``atgwin discover --endpoint a|b|c`` runs it.

    Its defaults differ from :class:`WindowSearch`'s library defaults where the power study
    (docs/benchmarks.md, "Power study") chose better ones: minprop 0.2 and bagged bounds.
    """
    base = dict(scores=CoxMartingaleScores() if covariates else LogRankScores(),
                grid=QuantileGrid(k=GRID_K, minprop=COMPOSITE_MINPROP), estimate="bagged")
    base.update(params)
    return WindowSearch(**base)


def _exposure_column(cohort, exposure, column: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Exposure aligned with ``cohort.outcomes`` rows, and the feature frame (covariates)."""
    from ml.features import feature_frame

    if not isinstance(exposure, pd.DataFrame):
        x = np.asarray(exposure, dtype=float)
        if x.shape != (len(cohort.outcomes),):
            raise ValueError(f"exposure must have one value per patient of the outcomes table "
                             f"({len(cohort.outcomes)}), got shape {x.shape}")
        exposure = pd.DataFrame({"patient_id": cohort.outcomes["patient_id"].to_numpy(), column: x})
    frame = feature_frame(cohort, exposure[["patient_id", column]])
    return frame[column].to_numpy(dtype=float), frame


def _encoded(frame: pd.DataFrame, names, prefix: str) -> pd.DataFrame:
    from ml.features import adjustment_covariates

    Z = adjustment_covariates(frame, list(names))
    return Z.rename(columns=lambda c: f"{prefix}{c}")


def discover(cohort, exposure, *, search=None, endpoint: str | None = None, horizon_days: float | None = 180.0,
             covariates=(), alpha: float = 0.05, outcomes=DEFAULT_INCIDENCE_OUTCOMES,
             incidence_horizon: float | None = None, exposure_column: str = "auc_total",
             exposure_definition: str = AUC_TOTAL_DEFINITION, pk_model: dict | None = None,
             mlflow_run_id: str | None = None) -> Discovery:
    """Discover the exposure window of a cohort.

    Parameters
    ----------
    cohort : ml.cohort.Cohort
        A validated cohort (its outcomes, covariates, unit and provenance are used).
    exposure : pandas.DataFrame or array-like
        Per-patient exposure: a table with ``patient_id`` and ``exposure_column`` (e.g. from
        ``ml.pk`` in UE*day/mL), or an array aligned with ``cohort.outcomes`` rows. NaN = no
        exposure: the patient is excluded and counted.
    search : BenefitHarmSearch or WindowSearch, optional
        The search and its settings (default: ``BenefitHarmSearch()``, or :func:`composite_search`
        when ``endpoint`` is given). Its side covariates (``floor_covariates``,
        ``ceiling_covariates``) name cohort columns (e.g. ``cmv_serostatus``); they are encoded
        here (numeric standardised, categorical reference-coded).
    endpoint : str, optional
        Run the composite two-cut search on this endpoint (e.g. ``"cmv|ebv|agvhd2|death"``)
        instead of the benefit-harm search.
    horizon_days : float or None
        Horizon of the composite endpoint (days); ignored by the benefit-harm search, whose sides
        carry their own.
    covariates : sequence of str
        Adjustment covariates of the composite search (cohort columns).
    alpha : float
        Significance level: a composite window below it is a ``candidate``; the benefit-harm
        search uses its own ``alpha`` (set here when the search is the default one).
    outcomes : sequence of str
        Outcomes whose cumulative incidence is reported below / inside / above the window.
    incidence_horizon : float, optional
        Day at which incidences are read (default: the endpoint's horizon, else 365).
    exposure_column : str
    exposure_definition : str
        How the exposure was computed (recorded in the artefact).
    pk_model : dict, optional
        ``name``, ``digest``, ``source`` of the population PK model behind the exposure.
    mlflow_run_id : str, optional

    Returns
    -------
    Discovery

    Raises
    ------
    ValueError
        When the search cannot run (too few events on a side, constant exposure, unknown
        covariates), with the reason.
    """
    x, frame = _exposure_column(cohort, exposure, exposure_column)
    common = dict(unit=cohort.meta.exposure_unit, dataset_digest=cohort.digest,
                  simulated=bool(cohort.meta.simulated), exposure=exposure_column,
                  exposure_definition=exposure_definition, mlflow_run_id=mlflow_run_id, pk_model=pk_model)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*missing exposure.*")
        if endpoint is None:
            search, X = _benefit_harm(search, x, frame, alpha)
            search.fit(X, cohort.outcomes)
            kind, horizon = "benefit-harm", max(search.horizon(s) or 0.0 for s in SIDES) or None
        else:
            search, X, y = _composite(search, x, frame, cohort, endpoint, horizon_days, covariates)
            search.fit(X, y)
            kind, horizon = "composite", horizon_days
    lower = search.lower_ if np.isfinite(search.lower_) else None
    upper = search.upper_ if np.isfinite(search.upper_) else None
    inc_horizon = incidence_horizon or horizon or 365.0
    incidences = window_incidences(x, cohort.outcomes, lower, upper, list(outcomes), inc_horizon)
    population = population_of(cohort, search.n_, search.n_events_)
    if kind == "benefit-harm":
        window = benefit_harm_window(search, population=population, incidences=incidences, **common)
    else:
        window = exposure_window(search, endpoint=endpoint, horizon_days=horizon_days, population=population,
                                 alpha=alpha, incidences=incidences, **common)
        if covariates:
            from dataclasses import replace

            window = replace(window, search={**window.search, "covariates": list(covariates)})
    return Discovery(search=search, window=window, incidences=incidences, exposure=x, kind=kind)


def _benefit_harm(search, x, frame, alpha):
    search = BenefitHarmSearch(alpha=alpha) if search is None else clone(search)
    if not isinstance(search, BenefitHarmSearch):
        raise TypeError(f"without an endpoint the search is a BenefitHarmSearch, got {type(search).__name__} "
                        "(pass endpoint=... for the composite search)")
    parts, encoded = [pd.Series(x, name="__exposure__")], {}
    for side in SIDES:
        names = list(getattr(search, f"{side}_covariates") or ())
        if names:
            Z = _encoded(frame, names, f"{side}:")
            parts.append(Z)
            encoded[f"{side}_covariates"] = list(Z.columns)
    X = pd.concat(parts, axis=1) if len(parts) > 1 else x
    search.set_params(exposure="__exposure__" if len(parts) > 1 else 0, **encoded)
    return search, X


def _composite(search, x, frame, cohort, endpoint, horizon_days, covariates):
    from ml.features import competing_target, parse_endpoint

    endpoint = parse_endpoint(endpoint).name
    search = composite_search(covariates=bool(covariates)) if search is None else clone(search)
    if not isinstance(search, WindowSearch):
        raise TypeError(f"the composite search is a WindowSearch, got {type(search).__name__}")
    y = competing_target(cohort.outcomes, endpoint, horizon_days)
    if not covariates:
        return search, x, y
    X = _encoded(frame, covariates, "")
    X.insert(0, "__exposure__", x)
    search.set_params(exposure="__exposure__")
    return search, X, y
