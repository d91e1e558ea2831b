"""Pharmacokinetics of active ATG: population model, simulation, NCA, exposure."""

from ._exposure import EXPOSURE_COLUMNS, exposure_table
from ._nca import NCAResult, nca_auc, terminal_slope
from ._params import PARAMETERS, PKParameters, PopPKModel
from ._regimen import (
    HOURS_PER_DAY,
    Infusions,
    fixed_regimen_doses,
    infusions_from_doses,
    round_to_vials,
)
from ._simulate import Exposure, model_exposure, simulate

__all__ = [
    "EXPOSURE_COLUMNS", "Exposure", "HOURS_PER_DAY", "Infusions", "NCAResult", "PARAMETERS",
    "PKParameters", "PopPKModel", "exposure_table", "fixed_regimen_doses",
    "infusions_from_doses", "model_exposure", "nca_auc", "round_to_vials", "simulate",
    "terminal_slope",
]
