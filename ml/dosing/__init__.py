"""Dose individualisation: MAP Bayesian forecast from early levels into a validated window.

:class:`DosingEngine` turns a patient's day -5/-4 levels into day -3/-2 doses (whole vials,
within caps) that maximise the probability that total active-ATG AUC lands in the window of an
``ExposureWindow`` artefact (or, with :class:`HarmWeighted`, minimise a weighted expected harm),
and returns a self-validating :class:`DoseRecommendation` with P(below floor), P(in window) and
P(above ceiling) for the recommended and for the fixed regimen. The engine refuses
(:class:`DosingRefused`) a window open on a side or whose finding is not ``window``
(:func:`check_dosable`), a window in another unit, a window that is not validated unless an
override is recorded, and a ``no-window`` result. :class:`InSilicoTrial`
runs the trial's design (individualised vs fixed) on virtual cohorts; :class:`TrialPlanner` states
it for its planners: power on CMV by day 180 and the n for 80 % in closed form from arm rates
simulated on virtual populations, and what the power hinges on.

The MLflow edge (the pyfunc model served over REST, windows from ``models:/`` URIs) is
:mod:`ml.tracking`: nothing here imports MLflow.
"""

from ml.pk import ForecastGrid, LaplaceImportance, LevelLikelihood, MAPFit, PosteriorDraws, PriorImportance, fit_map

from ._engine import DosingEngine, Thresholds
from ._errors import DosingRefused
from ._forecast import harm_probabilities, weighted_quantile
from ._gates import check_dosable
from ._objective import HarmWeighted, MostProbableInWindow
from ._patient import GivenDose, Level, PatientData, patients_from_cohort
from ._planning import (
    ArmRates,
    PlanRow,
    TrialPlan,
    TrialPlanner,
    closest_regimen_auc,
    endpoint_rates,
    iiv_split,
    replicate_power,
    two_proportion_n,
    two_proportion_power,
)
from ._recommendation import AUCForecast, DayDose, DoseRecommendation, PosteriorSummary
from ._regimen import MAX_REGIMENS, AdjustmentSchedule, DoseCaps
from ._trial import DESIGNS, InSilicoTrial, SamplingDesign, TrialResult
from ._window import (
    WindowOverride,
    WindowRecord,
    admit_window,
    load_window,
    window_from_dict,
    window_pk_model,
    with_model_file,
)

__all__ = [
    "MAX_REGIMENS", "AUCForecast", "AdjustmentSchedule", "DESIGNS", "DayDose", "DoseCaps", "DoseRecommendation",
    "DosingEngine", "DosingRefused", "ForecastGrid", "GivenDose", "HarmWeighted", "InSilicoTrial",
    "LaplaceImportance", "Level", "LevelLikelihood", "MAPFit", "MostProbableInWindow", "PatientData",
    "PosteriorDraws", "PosteriorSummary", "PriorImportance", "SamplingDesign", "Thresholds", "TrialResult",
    "WindowOverride", "WindowRecord", "admit_window", "check_dosable", "fit_map", "harm_probabilities",
    "load_window", "patients_from_cohort", "weighted_quantile", "window_from_dict", "window_pk_model",
    "with_model_file",
    "ArmRates", "PlanRow", "TrialPlan", "TrialPlanner", "closest_regimen_auc", "endpoint_rates", "iiv_split",
    "replicate_power", "two_proportion_n", "two_proportion_power",
]
