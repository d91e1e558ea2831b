"""Window search: the optimal exposure window with honest uncertainty, and its artefact.

:func:`discover` is the entry point. By default it runs :class:`BenefitHarmSearch`: a floor from
the under-exposure harm (acute GVHD), a ceiling from the over-exposure harm (CMV/EBV), one joint
permutation test; :class:`WindowSearch` is the composite two-cut search on one endpoint. Scores
strategies (:class:`LogRankScores`, :class:`CoxMartingaleScores`, :class:`SubdistributionScores`)
and the candidate grid (:class:`QuantileGrid`) are passed in. :class:`ExposureWindow` is the
exported artefact, :func:`promote_window` its gate-checked promotion. The method is described in
docs/design.md.
"""

from ml._status import WindowStatus
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
    WindowOrigin,
)
from ml.window._benefit_harm import SIDES, BenefitHarmSearch, SideResult
from ml.window._bootstrap import CI_METHODS, bootstrap_bounds, bound_intervals, window_frequency
from ml.window._cox import CoxFit, cox_fit, hazard_ratio
from ml.window._crossfit import cross_fitted_effect
from ml.window._discover import DEFAULT_INCIDENCE_OUTCOMES, Discovery, composite_search, discover
from ml.window._evaluate import WindowEvaluation, evaluate_window
from ml.window._export import (
    AUC_TOTAL_DEFINITION,
    benefit_harm_window,
    code_version,
    exposure_window,
    population_of,
)
from ml.window._grid import QuantileGrid
from ml.window._incidence import aalen_johansen, incidence_at, window_incidences
from ml.window._integrity import (
    IntegrityError,
    SigningKey,
    changed_fields,
    check_registered,
    content_digest,
    field_digests,
    sign_window,
    verify_window,
)
from ml.window._promotion import PromotionError, PromotionGates, promote_window, run_finished_gate
from ml.window._protocol import PRESETS, protocol_window, true_window
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
    "WindowStatus",
    "AUC_TOTAL_DEFINITION",
    "DEFAULT_INCIDENCE_OUTCOMES",
    "Discovery",
    "benefit_harm_window",
    "composite_search",
    "discover",
    "FINDINGS",
    "PRESETS",
    "SEARCH_KINDS",
    "SIDES",
    "BenefitHarmSearch",
    "BoundEvidence",
    "SideEffect",
    "WindowOrigin",
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
    "IntegrityError",
    "PromotionError",
    "PromotionGates",
    "QuantileGrid",
    "ScanResult",
    "SigningKey",
    "SubdistributionScores",
    "WindowEvaluation",
    "WindowSearch",
    "aalen_johansen",
    "bootstrap_bounds",
    "bound_intervals",
    "changed_fields",
    "check_registered",
    "code_version",
    "content_digest",
    "field_digests",
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
    "protocol_window",
    "true_window",
    "run_finished_gate",
    "scan",
    "sign_window",
    "split_exposure",
    "subdistribution_hazard",
    "verify_window",
    "window_frequency",
    "window_incidences",
]
