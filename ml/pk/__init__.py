"""Pharmacokinetics of active ATG: population model, simulation, NCA, exposure, MAP estimation."""

from ._exposure import (
    EXPOSURE_COLUMNS,
    EXPOSURE_METHODS,
    EXPOSURE_STATUSES,
    MAPExposure,
    NCAExposure,
    default_exposure,
    exposure_definition,
    exposure_strategy,
    exposure_table,
)
from ._integrator import AccuracyPolicy, EstimationPolicy, ForecastGrid, State, StepPolicy, integrate, tail_auc
from ._likelihood import LevelLikelihood, take_patients
from ._missing import ExposureMissingness, exposure_missingness
from ._nca import NCAResult, nca_auc, terminal_slope
from ._params import PARAMETERS, PKParameters, PopPKModel
from ._posterior import LaplaceImportance, MAPFit, PosteriorDraws, PriorImportance, fit_map, prune_draws
from ._regimen import (
    HOURS_PER_DAY,
    Infusions,
    fixed_regimen_doses,
    infusions_from_doses,
    round_to_vials,
)
from ._simulate import Exposure, model_exposure, simulate

__all__ = [
    "AccuracyPolicy", "EstimationPolicy", "StepPolicy", "EXPOSURE_COLUMNS", "EXPOSURE_METHODS", "EXPOSURE_STATUSES", "Exposure", "ExposureMissingness",
    "ForecastGrid", "HOURS_PER_DAY", "Infusions", "LaplaceImportance", "LevelLikelihood", "MAPExposure", "MAPFit",
    "NCAExposure", "NCAResult", "PARAMETERS", "PKParameters", "PopPKModel", "PosteriorDraws", "PriorImportance",
    "State", "default_exposure", "exposure_definition", "exposure_missingness", "exposure_strategy",
    "exposure_table", "fit_map", "fixed_regimen_doses", "infusions_from_doses", "integrate", "model_exposure",
    "nca_auc", "prune_draws", "round_to_vials", "simulate", "tail_auc", "take_patients", "terminal_slope",
]
