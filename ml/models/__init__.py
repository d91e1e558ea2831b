"""Survival and tree models of outcome versus ATG exposure, their evaluation and explanation.

Estimators (scikit-learn contract, survival targets from :mod:`ml.features`):
:class:`XGBSurvival` (``survival:cox`` / ``survival:aft`` with a Breslow baseline),
:class:`XGBEventClassifier` ("event by the horizon", censoring by :class:`IPCW` or
:class:`ExcludeCensored`), :class:`CoxSplineModel` (Cox with a restricted cubic spline on
AUC) and :class:`TunedXGBSurvival` (Optuna inside ``fit``, for nested CV).

Functions return numbers, DataFrames and matplotlib Figures; nothing here logs or imports
MLflow (tracking lives in :mod:`ml.tracking`).
"""

from ml.models._adapters import (
    MIN_TIME,
    cause_specific_target,
    to_xgb_aft_bounds,
    to_xgb_cox_label,
)
from ml.models._baseline import BreslowBaseline, kaplan_meier
from ml.models._cif import cif_from_hazard_increments, cumulative_incidence
from ml.models._classifier import IPCW, ExcludeCensored, XGBEventClassifier, horizon_status
from ml.models._cox_spline import CoxSplineModel, cox_information
from ml.models._evaluation import (
    METRICS,
    SurvivalCVResult,
    calibration_figure,
    calibration_summary,
    calibration_table,
    cross_validate_survival,
    default_time_grid,
    fold_metrics,
    survival_at,
)
from ml.models._risk_curves import bound_setters, risk_curve, risk_curves, risk_curves_figure
from ml.models._shap import (
    BinnedMeans,
    LocalLinear,
    ShapBound,
    ShapWindow,
    interaction_strengths,
    shap_beeswarm_figure,
    shap_bound,
    shap_bound_figure,
    shap_dependence_figure,
    shap_explanation,
    shap_importance,
    shap_waterfall_figure,
    shap_window,
    strongest_interaction,
)
from ml.models._spline import HARRELL_QUANTILES, RestrictedCubicSpline, harrell_knots, rcs_basis
from ml.models._storage import JournalTuningStorage, RDBTuningStorage, tuning_storage
from ml.models._tuning import (
    TunedXGBSurvival,
    TuningResult,
    WorkerReport,
    XGBSearchSpace,
    harrell_c_score,
    quiet_optuna,
    tune_xgb_survival,
)
from ml.models._xgb_survival import XGBSurvival

__all__ = [
    "BinnedMeans",
    "BreslowBaseline",
    "CoxSplineModel",
    "ExcludeCensored",
    "HARRELL_QUANTILES",
    "IPCW",
    "JournalTuningStorage",
    "LocalLinear",
    "METRICS",
    "MIN_TIME",
    "RDBTuningStorage",
    "RestrictedCubicSpline",
    "ShapBound",
    "ShapWindow",
    "SurvivalCVResult",
    "TunedXGBSurvival",
    "TuningResult",
    "WorkerReport",
    "XGBEventClassifier",
    "XGBSearchSpace",
    "XGBSurvival",
    "cif_from_hazard_increments",
    "bound_setters",
    "calibration_figure",
    "calibration_summary",
    "calibration_table",
    "cause_specific_target",
    "cox_information",
    "cross_validate_survival",
    "cumulative_incidence",
    "default_time_grid",
    "fold_metrics",
    "harrell_c_score",
    "harrell_knots",
    "horizon_status",
    "interaction_strengths",
    "kaplan_meier",
    "rcs_basis",
    "risk_curve",
    "risk_curves",
    "risk_curves_figure",
    "shap_beeswarm_figure",
    "shap_bound",
    "shap_bound_figure",
    "shap_dependence_figure",
    "shap_explanation",
    "shap_importance",
    "shap_waterfall_figure",
    "shap_window",
    "strongest_interaction",
    "survival_at",
    "to_xgb_aft_bounds",
    "to_xgb_cox_label",
    "quiet_optuna",
    "tune_xgb_survival",
    "tuning_storage",
]
