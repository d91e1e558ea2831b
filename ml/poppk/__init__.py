"""Population PK estimation of active ATG from a cohort's own doses and levels.

:class:`PopPKFit` estimates the model of ml/pk/default_model.toml (typical values, covariate
exponents, between-patient variability, combined residual error, M3 for censored samples) by
SAEM (Kuhn & Lavielle 2005) and writes it in the declarative format of
``ml/pk/default_model.toml`` (:func:`write_model`), which the simulator and the dosing engine
read in place of the default. Diagnostics: goodness-of-fit plots with CWRES, a visual
predictive check (:func:`vpc`), eta shrinkage.
"""

from ._data import PopPKData
from ._error import CombinedError
from ._estimator import ALGORITHM, PopPKFit
from ._io import model_from_dict, model_to_dict, read_model, write_model
from ._plots import plot_eta, plot_goodness_of_fit, plot_trace, plot_vpc
from ._result import PopPKResult, cv_from_omega
from ._saem import SAEMTrace
from ._simulate import SPEC_SAMPLING_DAYS, simulate_pk_cohort, simulate_replicates
from ._vpc import VPCResult, time_bins, vpc

__all__ = [
    "ALGORITHM", "CombinedError", "PopPKData", "PopPKFit", "PopPKResult", "SAEMTrace",
    "SPEC_SAMPLING_DAYS", "VPCResult", "cv_from_omega", "model_from_dict", "model_to_dict",
    "plot_eta", "plot_goodness_of_fit", "plot_trace", "plot_vpc", "read_model",
    "simulate_pk_cohort", "simulate_replicates", "time_bins", "vpc", "write_model",
]
