"""MLflow runs of ``atgwin run``: open a run, publish a run folder to it, close it.

:class:`RunTracker` holds an explicit :class:`mlflow.MlflowClient` and tracking URI; every call
names its run id. The fluent API (needed by ``mlflow.log_input`` and ``mlflow.pyfunc.log_model``) is used only inside :meth:`RunTracker.active`,
which points it at this tracker's store and this run for one block.

What a published run holds:

* parameters: the experiment's settings and ``get_params()`` of every estimator (window
  search, tuned XGBoost, Cox spline), as recorded in the run folder;
* metrics: window bounds, intervals, p-values, effect; CV metrics with spread; tuning;
  SHAP window; seconds per step (``time_<step>_s``);
* the dataset (``mlflow.data``): name, digest, source and schema, no rows;
* tags: simulated flag, cohort, dataset digest, code version, window status, failed step, and a
  run description (``mlflow.note.content``);
* the run folder as artefacts (report, figures, tables, window JSON, errors);
* one nested run per Optuna trial, named ``trial-NN SIDE MODEL``.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from ml.tracking._store import bounded_http, check_reachable, store_lock
from ml.tracking._uri import artifact_root, fluent_uri, is_remote, quiet, resolve_tracking_uri, sqlite_path

__all__ = ["RunTracker", "TrackingError"]

#: MLflow limits: parameter values (characters), entries per ``log_batch`` call.
_MAX_PARAM_VALUE = 6000
_BATCH = 100


class TrackingError(RuntimeError):
    """The tracking server or registry could not be reached or refused a request."""


def _dtype(kind: str) -> str:
    kind = kind.lower()
    if kind.startswith(("float", "double")):
        return "double"
    if kind.startswith(("int", "uint")):
        return "long"
    if kind.startswith("bool"):
        return "boolean"
    if kind.startswith("datetime"):
        return "datetime"
    return "string"


#: what a store says when two runs insert the same dataset at once (SQLite, PostgreSQL, MySQL)
_UNIQUE_CONFLICT = ("UNIQUE constraint failed", "duplicate key value violates unique constraint", "Duplicate entry")


def _is_unique_conflict(exc: BaseException) -> bool:
    """True when ``exc`` is a store's uniqueness violation (a row another writer inserted first)."""
    return any(text in str(exc) for text in _UNIQUE_CONFLICT)


def _log_input_once(log, tracking_uri: str, attempts: int = 3) -> None:
    """Call ``log`` (an ``mlflow.log_input``) so that two runs logging one dataset both succeed.

    MLflow's stores look a dataset up by (experiment, name, digest) and insert it when absent, in
    two steps: two runs of one cohort published at the same moment both insert, and the second
    fails on the uniqueness constraint (seen in CI with MLflow 3.10 on SQLite). A local SQLite store
    is locked for the call; on a shared server, where no lock can be held, the loser's transaction
    is rolled back and the call is made again, and then finds the winner's row.

    Parameters
    ----------
    log : callable
        Logs the input; no arguments.
    tracking_uri : str
        The store (locked when it is a local ``sqlite:///`` file).
    attempts : int
        Calls at most; a uniqueness violation on the last one is raised.
    """
    import time

    for attempt in range(1, attempts + 1):
        try:
            with store_lock(tracking_uri):
                log()
            return
        except Exception as exc:  # noqa: BLE001 - MLflow wraps the store's IntegrityError in MlflowException
            if attempt == attempts or not _is_unique_conflict(exc):
                raise
            time.sleep(0.2 * attempt)


class RunTracker:
    """Runs in one MLflow store.

    Parameters
    ----------
    tracking_uri : str, optional
        Default: ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` (artefacts in
        ``mlartifacts/`` beside it).

    Raises
    ------
    TrackingError
        A tracking server (``http(s)://``) does not answer within 5 s.

    Notes
    -----
    A new local store is created under a file lock (``ml/tracking/_store.py``), so that
    processes opening the same new store at once all succeed. A server's own database handles
    concurrent clients: no lock.
    """

    def __init__(self, tracking_uri: str | None = None):
        from mlflow import MlflowClient

        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self._initialised = False
        if is_remote(self.tracking_uri):  # a server that does not answer: one line within seconds, not a traceback
            bounded_http()
            try:
                check_reachable(self.tracking_uri)
            except ConnectionError as exc:
                raise TrackingError(str(exc)) from None
        # MlflowClient opens (and on a new local store creates and migrates) the tracking store at
        # once, the registry store on first use: both under the lock, one process at a time
        try:
            # quiet: a new local store logs the creation of its tables (MLflow, alembic) at INFO
            with store_lock(self.tracking_uri), quiet():
                self.client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
                if sqlite_path(self.tracking_uri) is not None:
                    with quiet():
                        self.client.search_registered_models(max_results=1)
                    self._initialised = True
        except (OSError, TimeoutError) as exc:  # the store's folder cannot be written, or stays locked
            raise TrackingError(f"cannot open the tracking store {self.tracking_uri}: {exc}") from exc

    def connect(self, timeout: float = 5.0) -> "RunTracker":
        """Make sure the store answers, creating a new local store (one process at a time).

        Parameters
        ----------
        timeout : float
            Seconds a tracking server has to answer.

        Returns
        -------
        RunTracker
            self.

        Raises
        ------
        TrackingError
            The server does not answer, or the store cannot be opened or created.
        """
        if self._initialised:
            return self
        try:
            check_reachable(self.tracking_uri, timeout=timeout)
            with store_lock(self.tracking_uri), quiet():
                # the first contact creates (and migrates) the tracking tables, then the registry's
                self.client.search_experiments(max_results=1)
                self.client.search_registered_models(max_results=1)
        except Exception as exc:  # noqa: BLE001 - unreachable, refused, locked: all mean "cannot use it"
            raise TrackingError(f"cannot use the tracking store {self.tracking_uri}: {exc}") from exc
        self._initialised = True
        return self

    # --------------------------------------------------------------------------------- runs
    def experiment_id(self, name: str) -> str:
        """Id of the MLflow experiment ``name``, created (artefacts beside a local store) if new."""
        self.connect()
        with store_lock(self.tracking_uri):  # two first runs of one experiment: one creates it
            return self._experiment_id(name)

    def _experiment_id(self, name: str) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                self.client.restore_experiment(exp.experiment_id)
            return exp.experiment_id
        root = artifact_root(self.tracking_uri)
        location = None if root is None else f"{root}/{name}"
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except Exception:  # a server shared with another process that created it first
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    def start_run(self, experiment_name: str, run_name: str, tags: dict[str, str] | None = None) -> str:
        """Open a run (status RUNNING) and return its id.

        Raises
        ------
        TrackingError
            The store cannot be reached.
        """
        self.connect()
        try:
            with quiet():
                exp_id = self.experiment_id(experiment_name)
            run = self.client.create_run(exp_id, run_name=run_name, tags={k: str(v) for k, v in (tags or {}).items()})
        except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds; all mean "not reachable"
            raise TrackingError(f"cannot open a run in {self.tracking_uri}: {exc}") from exc
        return run.info.run_id

    def end_run(self, run_id: str, status: str) -> None:
        """Close the run with ``status`` (``FINISHED``, ``FAILED`` or ``KILLED``)."""
        with quiet():  # a tracking server: no "View run ... at: URL" on stdout
            self.client.set_terminated(run_id, status=status)

    def run_status(self, run_id: str) -> str:
        return self.client.get_run(run_id).info.status

    @contextmanager
    def active(self, run_id: str):
        """The fluent API pointed at this store, with ``run_id`` as the active run, for one block."""
        import mlflow

        with fluent_uri(self.tracking_uri), quiet():
            run = self.client.get_run(run_id)
            with mlflow.start_run(run_id=run_id, experiment_id=run.info.experiment_id, log_system_metrics=False):
                yield
        # Leaving start_run(...) marks the run FINISHED: put back the status it had (the
        # command line closes the run itself, with the pipeline's outcome).
        if run.info.status == "RUNNING":
            self.client.update_run(run_id, status="RUNNING")
        else:
            with quiet():
                self.client.set_terminated(run_id, status=run.info.status, end_time=run.info.end_time)

    # ------------------------------------------------------------------------------ publish
    def log_params(self, run_id: str, params: dict) -> None:
        """Parameters in batches (values cut at MLflow's limit)."""
        from mlflow.entities import Param

        items = [Param(str(k), str(v)[:_MAX_PARAM_VALUE]) for k, v in params.items()]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(run_id, params=items[i:i + _BATCH], synchronous=True)

    def log_metrics(self, run_id: str, metrics: dict) -> None:
        """Metrics (finite numbers only) in batches."""
        import math
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(str(k), float(v), now, 0) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and math.isfinite(float(v))]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(run_id, metrics=items[i:i + _BATCH], synchronous=True)

    def log_dataset(self, run_id: str, dataset: dict) -> None:
        """The cohort as an ``mlflow.data`` dataset: name, digest, source and schema; no rows.

        Parameters
        ----------
        dataset : dict
            ``name``, ``digest`` (the cohort's SHA-256), ``source_kind`` (``folder`` or
            ``simulated``), ``source`` (path or generating call), ``schema`` (column -> dtype).
        """
        import mlflow
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.types.schema import ColSpec, Schema

        schema = Schema([ColSpec(_dtype(t), name) for name, t in (dataset.get("schema") or {}).items()]) \
            if dataset.get("schema") else None
        if dataset.get("source_kind") == "folder":
            source = resolve_dataset_source(dataset["source"])
        else:
            source = CodeDatasetSource(tags={"generator": str(dataset.get("source", "")), "simulated": "true"})
        # MLflow keeps at most 36 characters of a digest; the full SHA-256 is a run tag.
        ds = MetaDataset(source=source, name=dataset["name"], digest=dataset["digest"][:32], schema=schema)
        with self.active(run_id):
            _log_input_once(lambda: mlflow.log_input(ds, context="training",
                                                     tags={"n_patients": str(dataset.get("n", ""))}),
                            self.tracking_uri)

    def log_trials(self, run_id: str, study, *, metric_name: str = "cv_harrell_c") -> int:
        """One nested run per finished Optuna trial, logged through this tracker's client.

        The trials ran before (the run folder is written first). Each child run (tag
        ``mlflow.parentRunId``) is named ``trial-NN SIDE MODEL`` (e.g. ``trial-07 floor xgb``;
        NN counts the trials of one side from 0) and holds the trial's parameters, its value as
        ``metric_name``, and tags ``side``, ``number``, ``state`` and ``atgwin.kind=optuna-trial``.

        Parameters
        ----------
        run_id : str
            The parent run.
        study : optuna.Study
            Trials; the user attribute ``side`` (floor/ceiling) names the side, and a study name
            ending in ``-xgb`` (or ``-xgb-SIDE``) names the model.
        metric_name : str
            Name of the trial value (cross-validated Harrell's C by default).

        Returns
        -------
        int
            Nested runs created.
        """
        from mlflow.entities import Metric, Param

        exp_id = self.client.get_run(run_id).info.experiment_id
        name = getattr(study, "study_name", "") or ""
        model = "xgb" if "-xgb" in name else ""
        counts: dict[str, int] = {}
        n = 0
        for trial in study.trials:
            if not trial.state.is_finished():
                continue
            side = str(trial.user_attrs.get("side", ""))
            number = counts.get(side, 0)
            counts[side] = number + 1
            run_name = " ".join(part for part in (f"trial-{number:02d}", side, model) if part)
            tags = {"mlflow.parentRunId": run_id, "atgwin.kind": "optuna-trial", "number": str(trial.number),
                    "state": trial.state.name, **{str(k): str(v) for k, v in trial.user_attrs.items()}}
            child = self.client.create_run(exp_id, run_name=run_name, tags=tags).info.run_id
            params = [Param(str(k), str(v)[:_MAX_PARAM_VALUE]) for k, v in trial.params.items()]
            metrics = []
            if trial.value is not None:
                stamp = int(trial.datetime_complete.timestamp() * 1000) if trial.datetime_complete else 0
                metrics.append(Metric(metric_name, float(trial.value), stamp, 0))
            self.client.log_batch(child, params=params[:_BATCH], metrics=metrics, synchronous=True)
            self.end_run(child, "FINISHED" if trial.state.name == "COMPLETE" else "FAILED")
            n += 1
        return n

    def log_folder(self, run_id: str, folder: str | Path, artifact_path: str | None = None) -> None:
        """Every file of ``folder`` as artefacts of the run."""
        self.client.log_artifacts(run_id, str(folder), artifact_path)

    def log_file(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path)

    def set_tags(self, run_id: str, tags: dict) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(str(k), str(v)[:5000]) for k, v in tags.items() if v is not None]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(run_id, tags=items[i:i + _BATCH], synchronous=True)

    # --------------------------------------------------------------------------------- read
    def download_run(self, run_id: str, dst: str | Path) -> Path:
        """Download a run's artefacts (its run folder) into ``dst``."""
        Path(dst).mkdir(parents=True, exist_ok=True)
        with quiet():
            try:
                self.client.get_run(run_id)
            except Exception as exc:  # noqa: BLE001
                raise TrackingError(f"no run {run_id!r} in {self.tracking_uri}: {exc}") from exc
            return Path(self.client.download_artifacts(run_id, "", str(dst)))

    def find_run(self, name_or_id: str) -> str:
        """A run id from an id or a run name (the most recent run of that name)."""
        try:
            return self.client.get_run(name_or_id).info.run_id
        except Exception:  # noqa: BLE001 - not an id; try names
            pass
        exps = [e.experiment_id for e in self.client.search_experiments()]
        runs = self.client.search_runs(exps, filter_string=f"attributes.run_name = '{name_or_id}'",
                                       order_by=["attributes.start_time DESC"], max_results=1) if exps else []
        if not runs:
            raise TrackingError(f"no run with id or name {name_or_id!r} in {self.tracking_uri}")
        return runs[0].info.run_id
