"""Experiments: the experiment file (``experiments/*.toml``) and the pipeline behind ``atgwin run``.

:func:`load_experiment` reads and checks a file, mapping its strings to strategy objects once;
:func:`run_experiment` runs every step locally (cohort, population PK model
(:func:`population_model`), exposure, models, window search, explanations, transport, report)
and writes the run folder (:class:`RunBundle`), whose ``results.json`` is a versioned
:class:`RunRecord`. Each step returns a :class:`StepResult` (its record sections, parameters,
metrics and figures). MLflow is not imported here: tracking comes in as a :class:`RunCallback`
(``ml.tracking.MLflowCallback``).
"""

from ml.experiments._callbacks import RunCallback, RunStart
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
from ml.experiments._pipeline import RunOutcome, run_experiment, run_folder_error
from ml.experiments._pk import FitCheck, PKModelResult, check_pk_fit, population_model
from ml.experiments._results import FigureRef, StepContext, StepFailed, StepResult
from ml.experiments._steps import incidence_curves
from ml.record import SCHEMA_VERSION, RecordError, RunBundle, RunRecord

__all__ = [
    "SCHEMA_VERSION",
    "CohortSpec",
    "EndpointSpec",
    "Experiment",
    "ExperimentError",
    "FeatureSpec",
    "FigureRef",
    "FitCheck",
    "ModelSpec",
    "PKModelResult",
    "PopPKSpec",
    "PromotionSpec",
    "RecordError",
    "RunBundle",
    "RunCallback",
    "RunOutcome",
    "RunRecord",
    "RunStart",
    "StepContext",
    "StepFailed",
    "StepResult",
    "WindowSpec",
    "check_pk_fit",
    "incidence_curves",
    "load_experiment",
    "parse_experiment",
    "population_model",
    "run_experiment",
    "run_folder_error",
]
