"""Experiment tracking: the one module that talks to MLflow about runs and the registry.

:class:`RunTracker` opens a run, publishes a run folder to it (parameters, metrics, the dataset
through ``mlflow.data``, artefacts, Optuna trials as nested runs) and closes it;
:func:`register_window` registers an ``ExposureWindow`` as a model version with an alias, with the
population PK model that defined its exposure beside it (``pk_model.toml``, digest in the tags);
:class:`RegistryWindowStore` / :func:`promote_registered` promote a registered candidate to
``validated``; :func:`publish_run` does what ``atgwin run`` needs in one call (and what
``atgwin publish RUN_DIR`` repeats); :class:`MLflowCallback` tracks a run of
``ml.experiments.run_experiment`` (open, publish, close); :func:`repair_runs` marks runs left RUNNING by a killed process;
:func:`store_lock` / :func:`check_reachable` / :func:`bounded_http` make a new local store safe
to open from several processes and an unreachable server quick to report.
:func:`load_window_source` resolves a window file or ``models:/`` URI into the window the dosing
engine doses into; :func:`log_dosing_model` logs and registers the dosing engine as the pyfunc
model ``atg-dosing`` (:class:`DosingPyfunc`), and :func:`scoring_app` / :func:`serve` serve it over
REST. Estimators, pipeline steps and the dosing engine never import MLflow.
"""

from ml.tracking._callback import MLflowCallback
from ml.tracking._dosing_model import (
    DEFAULT_ALIAS,
    EXAMPLE_PATIENT,
    REGISTERED_NAME,
    DosingPyfunc,
    log_dosing_model,
    pyfunc_signature,
    write_artifacts,
)
from ml.tracking._publish import PublishResult, publish_run, run_tags
from ml.tracking._registry import (
    CANDIDATE,
    PK_MODEL_FILE,
    VALIDATED,
    ModelRef,
    RegisteredWindow,
    RegistryWindowStore,
    parse_model_ref,
    pk_model_file,
    promote_registered,
    register_window,
)
from ml.tracking._repair import RepairedRun, RepairReport, mark_folder_killed, process_tags, repair_runs
from ml.tracking._runs import RunTracker, TrackingError
from ml.tracking._serve import (
    MAX_BODY_BYTES,
    BodyLimit,
    LoadReport,
    load_test,
    mlflow_serve_command,
    post_json,
    running_server,
    scoring_app,
    serve,
)
from ml.tracking._store import HTTP_DEFAULTS, bounded_http, check_reachable, store_lock
from ml.tracking._uri import (
    DEFAULT_TRACKING_URI,
    artifact_root,
    is_remote,
    resolve_tracking_uri,
    sqlite_path,
    ui_command,
)
from ml.tracking._windows import (
    is_registry_uri,
    load_registered_pk_model,
    load_registered_window,
    load_window_source,
)

__all__ = [
    "BodyLimit",
    "CANDIDATE",
    "DEFAULT_ALIAS",
    "DEFAULT_TRACKING_URI",
    "EXAMPLE_PATIENT",
    "HTTP_DEFAULTS",
    "LoadReport",
    "MAX_BODY_BYTES",
    "PK_MODEL_FILE",
    "VALIDATED",
    "MLflowCallback",
    "DosingPyfunc",
    "ModelRef",
    "PublishResult",
    "REGISTERED_NAME",
    "RegisteredWindow",
    "RepairReport",
    "RepairedRun",
    "RegistryWindowStore",
    "RunTracker",
    "TrackingError",
    "artifact_root",
    "bounded_http",
    "check_reachable",
    "is_registry_uri",
    "is_remote",
    "load_registered_pk_model",
    "load_registered_window",
    "load_test",
    "load_window_source",
    "log_dosing_model",
    "mark_folder_killed",
    "mlflow_serve_command",
    "parse_model_ref",
    "pk_model_file",
    "process_tags",
    "promote_registered",
    "post_json",
    "publish_run",
    "pyfunc_signature",
    "register_window",
    "repair_runs",
    "resolve_tracking_uri",
    "run_tags",
    "running_server",
    "scoring_app",
    "serve",
    "sqlite_path",
    "store_lock",
    "ui_command",
    "write_artifacts",
]
