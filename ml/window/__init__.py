"""Window search: the optimal exposure window with honest uncertainty, and its artefact.

See DESIGN.md, "The window search". :class:`WindowSearch` is the estimator; scores strategies
(:class:`LogRankScores`, :class:`CoxMartingaleScores`, :class:`SubdistributionScores`) and the
candidate grid (:class:`QuantileGrid`) are passed in. :class:`ExposureWindow` is the exported
artefact, :func:`promote_window` its gate-checked promotion.
"""

from ml.window._artefact import (
    FINDINGS,
    SCHEMA_VERSION,
    SEARCH_KINDS,
    STATUSES,
    BoundEvidence,
    Effect,
    ExposureWindow,
    Incidence,
    Population,
    SideEffect,
)
from ml.window._benefit_harm import SIDES, BenefitHarmSearch, SideResult
from ml.window._bootstrap import CI_METHODS, bootstrap_bounds, bound_intervals, window_frequency
from ml.window._cox import CoxFit, cox_fit, hazard_ratio
from ml.window._crossfit import cross_fitted_effect
from ml.window._evaluate import WindowEvaluation, evaluate_window
from ml.window._export import AUC_TOTAL_DEFINITION, code_version, exposure_window, population_of
from ml.window._grid import QuantileGrid
from ml.window._promotion import PromotionError, PromotionGates, promote_window
from ml.window._incidence import aalen_johansen, incidence_at, window_incidences
from ml.window._scan import ScanResult, permutation_maxima, scan
from ml.window._scores import (
    CoxMartingaleScores,
    LogRankScores,
    SubdistributionScores,
    logrank_scores,
    subdistribution_hazard,
)
from ml.window._search import ESTIMATES, WindowSearch, split_exposure

__all__ = [
    "AUC_TOTAL_DEFINITION",
    "FINDINGS",
    "SEARCH_KINDS",
    "SIDES",
    "BenefitHarmSearch",
    "BoundEvidence",
    "SideEffect",
    "SideResult",
    "CI_METHODS",
    "ESTIMATES",
    "SCHEMA_VERSION",
    "STATUSES",
    "CoxFit",
    "CoxMartingaleScores",
    "Effect",
    "ExposureWindow",
    "Incidence",
    "LogRankScores",
    "Population",
    "PromotionError",
    "PromotionGates",
    "QuantileGrid",
    "ScanResult",
    "SubdistributionScores",
    "WindowEvaluation",
    "WindowSearch",
    "aalen_johansen",
    "bootstrap_bounds",
    "bound_intervals",
    "code_version",
    "cox_fit",
    "cross_fitted_effect",
    "evaluate_window",
    "exposure_window",
    "hazard_ratio",
    "incidence_at",
    "logrank_scores",
    "permutation_maxima",
    "population_of",
    "promote_window",
    "scan",
    "split_exposure",
    "subdistribution_hazard",
    "window_frequency",
    "window_incidences",
]
