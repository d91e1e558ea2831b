"""Experiments: the experiment file (``experiments/*.toml``) and the pipeline behind ``atgwin run``.

:func:`load_experiment` reads and checks a file, mapping its strings to strategy objects once;
:func:`run_experiment` runs every step locally (cohort, population PK model
(:func:`population_model`), exposure, models, window search, explanations, transport, report)
and writes the run folder. MLflow is not imported here: the
command line hands the folder to :mod:`ml.tracking`.
"""

from ml.experiments._config import (
    CohortSpec,
    EndpointSpec,
    Experiment,
    ExperimentError,
    FeatureSpec,
    ModelSpec,
    PopPKSpec,
    PromotionSpec,
    WindowSpec,
    load_experiment,
    parse_experiment,
)
from ml.experiments._pk import FitCheck, PKModelResult, check_pk_fit, population_model
from ml.experiments._pipeline import RunOutcome, StepFailed, run_experiment
from ml.experiments._steps import incidence_curves

__all__ = [
    "CohortSpec",
    "EndpointSpec",
    "Experiment",
    "ExperimentError",
    "FeatureSpec",
    "FitCheck",
    "ModelSpec",
    "PKModelResult",
    "PopPKSpec",
    "PromotionSpec",
    "RunOutcome",
    "StepFailed",
    "WindowSpec",
    "check_pk_fit",
    "incidence_curves",
    "load_experiment",
    "parse_experiment",
    "population_model",
    "run_experiment",
]
