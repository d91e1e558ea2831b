"""Track a run of ``run_experiment`` in MLflow: the callback behind ``atgwin run``.

:class:`MLflowCallback` opens the MLflow run before the first step (marking first, one line
each, the runs of this store left RUNNING by a killed process), publishes the complete run folder
to it afterwards (:func:`ml.tracking.publish_run`: parameters, metrics, dataset, nested Optuna
trials, artefacts, then the registration of a window with the alias ``candidate``) and closes it
with the pipeline's status. A run that stops early is closed ``KILLED`` (SIGINT / SIGTERM) or
``FAILED`` with tags saying why. A store that cannot be reached (a server gets 5 s to answer) is
reported in one line and the run goes on untracked (``error`` says why; ``atgwin publish RUN_DIR``
sends the folder later). From a notebook::

    from ml.experiments import run_experiment; from ml.tracking import MLflowCallback
    outcome = run_experiment("experiments/urd_window.toml", callbacks=[MLflowCallback()])
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ml.experiments import RunCallback, RunStart
from ml.tracking._publish import PublishResult, publish_run
from ml.tracking._repair import mark_folder_killed, process_tags, repair_runs
from ml.tracking._runs import RunTracker, TrackingError
from ml.tracking._store import bounded_http

__all__ = ["MLflowCallback"]


class MLflowCallback(RunCallback):
    """Open, publish and close the MLflow run of one ``run_experiment`` call.

    Parameters
    ----------
    tracking_uri : str, optional
        Default: ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``.
    echo : callable
        Receives the lines it reports (the run opened, runs repaired, what was published, a store
        that cannot be reached).

    Attributes
    ----------
    tracker : RunTracker or None
        The store, once reached (None when it could not be).
    run_id : str or None
        The MLflow run opened.
    published : PublishResult or None
        What was sent, once the run folder was published.
    error : str or None
        Why the run is not (fully) tracked: the store could not be reached, or publishing failed.
    interrupted : {"start", "publish"} or None
        Where an interruption (SIGINT / SIGTERM) reached this callback, if it did.
    """

    def __init__(self, tracking_uri: str | None = None, *, echo: Callable[[str], None] = print):
        self.tracking_uri = tracking_uri
        self.echo = echo
        self.tracker: RunTracker | None = None
        self.run_id: str | None = None
        self.published: PublishResult | None = None
        self.error: str | None = None
        self.interrupted: str | None = None
        self._experiment = None
        self._folder: Path | None = None

    # ------------------------------------------------------------------------------- hooks
    def on_run_start(self, experiment, *, run_name: str, folder: Path) -> RunStart | None:
        """Reach the store, repair its orphaned runs, open the run (RUNNING)."""
        self._experiment, self._folder = experiment, Path(folder)
        t0 = time.perf_counter()
        bounded_http()
        tracker = None
        try:
            tracker = RunTracker(self.tracking_uri).connect()
            self._repair(tracker)
            self.run_id = tracker.start_run(experiment.name, run_name,
                                            tags={"atgwin.experiment": experiment.name, **process_tags(folder)})
        except KeyboardInterrupt as exc:  # before the pipeline started
            self.tracker, self.interrupted = tracker, "start"
            self._close("KILLED", {"atgwin.status": "KILLED", "atgwin.killed_by": getattr(exc, "signal_name", "SIGINT")})
            raise
        except TrackingError as exc:
            self.error = str(exc)
            self.echo(f"warning: {exc}\nContinuing: results are written to {folder} only; send them later with "
                      f"atgwin publish {folder}")
            return None
        self.tracker = tracker
        self.echo(f"[0] tracking  {time.perf_counter() - t0:6.1f} s  run {self.run_id} in {tracker.tracking_uri}")
        return RunStart(run_id=self.run_id, tracking={"tracking_uri": tracker.tracking_uri,
                                                      "experiment": experiment.name})

    def on_run_end(self, outcome) -> None:
        """Publish the complete run folder, register its window if it may be, close the run."""
        if self.tracker is None:
            return
        t0 = time.perf_counter()
        exp, folder = self._experiment, self._folder
        try:
            pub = publish_run(self.tracker, self.run_id, outcome.bundle, study=outcome.study,
                              model_name=exp.model_name, gates=exp.promotion.gates())
        except KeyboardInterrupt as exc:  # publish_run closed the run KILLED
            how = getattr(exc, "signal_name", "SIGINT")
            self.interrupted = "publish"
            mark_folder_killed(folder, how, step="track")
            self._close("KILLED", {"atgwin.status": "KILLED", "atgwin.killed_by": how})
            raise
        except TrackingError as exc:
            self.error = str(exc)
            self.echo(f"error: {exc}\nThe run folder is complete; send it again with: atgwin publish {folder}")
            return
        self.published = pub
        self.echo(f"[+] track     {time.perf_counter() - t0:6.1f} s  run {pub.status}, {pub.nested_runs} nested "
                  f"trial runs; {self.registered}")

    def on_run_abort(self, folder: Path, *, status: str, error: str | None = None,
                     killed_by: str | None = None) -> None:
        """Close the run with ``status`` and tags saying why."""
        tags = {"atgwin.status": status}
        if killed_by:
            tags["atgwin.killed_by"] = killed_by
        if error:
            tags["atgwin.error"] = error
        self._close(status, tags)

    # ------------------------------------------------------------------------------ helpers
    @property
    def registered(self) -> str:
        """What the publication registered (``registered models:/NAME/V with alias 'candidate'``), or why not."""
        pub = self.published
        if pub is None:
            return ""
        return (f"registered {pub.registered.uri} with alias '{pub.registered.alias}'" if pub.registered
                else pub.note)

    def _repair(self, tracker: RunTracker) -> None:
        """Mark runs of this store left RUNNING by a killed process (one line each)."""
        try:
            report = repair_runs(tracker)
        except Exception as exc:  # noqa: BLE001 - a repair that fails must not stop a new run
            self.echo(f"warning: could not check for runs left RUNNING: {exc}")
            return
        for r in report.repaired:
            self.echo(f"[0] repaired  run {r.run_id} ({r.run_name}) was left RUNNING by a process that no longer "
                      "exists: marked KILLED")

    def _close(self, status: str, tags: dict) -> None:
        """End the run with ``status`` (and tags saying why); a store that fails here is reported."""
        if self.tracker is None or self.run_id is None:
            return
        try:
            self.tracker.set_tags(self.run_id, tags)
            self.tracker.end_run(self.run_id, status)
        except Exception as exc:  # noqa: BLE001
            self.echo(f"warning: could not mark run {self.run_id} {status} in {self.tracker.tracking_uri}: {exc}; "
                      "atgwin runs repair will find it")
