"""Run an experiment: every step timed, every result written to the run folder first.

:func:`run_experiment` knows nothing of MLflow. Tracking comes in through callbacks
(``ml/experiments/_callbacks.py``; ``ml.tracking.MLflowCallback`` for MLflow), so a tracked run
starts from Python as from ``atgwin run``::

    from ml.experiments import run_experiment; from ml.tracking import MLflowCallback
    outcome = run_experiment("experiments/urd_window.toml", callbacks=[MLflowCallback()])

Each step (``ml/experiments/_folder_steps.py``) returns a :class:`~ml.experiments.StepResult`;
the pipeline merges their run-record sections into a :class:`~ml.record.RunRecord`
(``results.json``, rewritten whole after each step) and their parameters and metrics into
``run.json``. A step that raises ends the run: the folder records the failed step and the error
(every violation for a refused cohort), the report says so, and the outcome's status is
``FAILED`` so that nothing is registered. An interruption (``KeyboardInterrupt``: Ctrl-C, or
SIGTERM under ``atgwin run``) is recorded in ``run.json`` as status ``KILLED`` with the step it
stopped, the callbacks are told, and it is raised again. A run folder that cannot be written any
more (disk full, read-only) ends the run ``FAILED`` with a one-line reason (in ``run.json`` when
there is room), and the ``OSError`` is raised again.
"""

from __future__ import annotations

import platform
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ml.experiments import _folder_steps as S
from ml.experiments._callbacks import RunCallback, RunStart
from ml.experiments._results import StepContext, StepFailed, StepResult
from ml.record import RunBundle, RunRecord

__all__ = ["RunOutcome", "run_experiment", "run_folder_error"]

#: The steps of every run, in order (``transport`` only for experiments with a [transport] section).
STEPS = ("cohort", "poppk", "exposure", "models", "window", "explain", "transport", "report")


@dataclass(frozen=True)
class RunOutcome:
    """What a run produced.

    Attributes
    ----------
    bundle : RunBundle
        The run folder.
    status : {"FINISHED", "FAILED"}
    failed_step : str or None
    error : str or None
    window : ExposureWindow or None
        The window artefact (``window/window.json``) when the window step succeeded.
    study : optuna.Study or None
        The tuning study (its trials become nested runs in MLflow).
    steps : tuple of dict
        ``name``, ``seconds``, ``status`` per step.
    record : RunRecord
        What ``results.json`` holds.
    results : tuple of StepResult
        Every finished step's result, in order.
    run_id : str or None
        The tracking run's id (from a callback), as recorded in ``run.json``.
    """

    bundle: RunBundle
    status: str
    failed_step: str | None = None
    error: str | None = None
    window: object | None = None
    study: object | None = None
    steps: tuple = ()
    record: RunRecord = field(default_factory=RunRecord)
    results: tuple = ()
    run_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "FINISHED"

    @property
    def params(self) -> dict:
        """The run's parameters: the experiment's settings, then every step's (``run.json`` ``params``)."""
        return dict(self.bundle.manifest().get("params") or {})

    @property
    def metrics(self) -> dict:
        """Every step's metrics (``run.json`` ``metrics``)."""
        return dict(self.bundle.manifest().get("metrics") or {})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _Steps:
    """Times steps, prints one line each, records each step's result in the folder as it finishes."""

    def __init__(self, bundle: RunBundle, names: list[str], echo: Callable[[str], None]):
        self.bundle, self.names, self.echo = bundle, names, echo
        self.done: list[dict] = []
        self.results: list[StepResult] = []
        self.record = RunRecord()

    def run(self, name: str, fn, *args, note: Callable | None = None, **kwargs) -> StepResult:
        k = self.names.index(name) + 1
        t0 = time.perf_counter()
        try:
            out = fn(*args, **kwargs)
            self._keep(out)
        except BaseException as exc:
            seconds = time.perf_counter() - t0
            state = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
            self.done.append({"name": name, "seconds": round(seconds, 3), "status": state})
            self.echo(f"[{k}/{len(self.names)}] {name:<9} {state} after {seconds:.1f} s")
            self.bundle.update(RunBundle.MANIFEST, steps=self.done)
            raise
        seconds = time.perf_counter() - t0
        self.done.append({"name": name, "seconds": round(seconds, 3), "status": "FINISHED"})
        self.bundle.update(RunBundle.MANIFEST, steps=self.done)
        extra = f"  {note(out.value)}" if note else ""
        self.echo(f"[{k}/{len(self.names)}] {name:<9} {seconds:6.1f} s{extra}")
        return out

    def _keep(self, out: StepResult) -> None:
        """Write what the step recorded: its run-record sections, its run.json fields and warnings."""
        self.results.append(out)
        self.add_record(out.record)
        fields = dict(out.manifest)
        if out.warnings:
            fields["warnings"] = [*self.bundle.manifest().get("warnings", []), *out.warnings]
        if fields:
            self.bundle.update(RunBundle.MANIFEST, **fields)

    def add_record(self, sections: Mapping) -> None:
        if sections:
            self.record = self.record.with_sections(**sections)
            self.bundle.write_record(self.record)

    def params_metrics(self, params: dict) -> tuple[dict, dict]:
        """The experiment's ``params``, then every finished step's parameters; every step's metrics."""
        params, metrics = dict(params), {}
        for r in self.results:
            params.update(r.params)
            metrics.update(r.metrics)
        return params, metrics


def _value(steps: _Steps, name: str, fn, *args, **kwargs):
    return steps.run(name, fn, *args, note=S.NOTES[name], **kwargs).value


def _default_run_name(experiment) -> str:
    return f"{experiment.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def run_folder_error(folder: str | Path, exc: OSError) -> str:
    """The one-line reason a run folder could not be written (``run.json`` ``error``, the CLI's message)."""
    return f"cannot write the run folder {folder}: {exc.strerror or exc}" + (
        f" ({exc.filename})" if getattr(exc, "filename", None) else "")


def run_experiment(experiment, *, callbacks: Iterable[RunCallback] = (), out_dir: str | Path | None = None,
                   run_name: str | None = None, run_id: str | None = None, tracking: dict | None = None,
                   echo: Callable[[str], None] = print, progress: bool = False) -> RunOutcome:
    """Run every step of ``experiment`` and write the results to its run folder.

    Two lines run a tracked experiment from a notebook (MLflow store: ``$MLFLOW_TRACKING_URI``,
    else ``sqlite:///mlflow.db``)::

        from ml.experiments import run_experiment; from ml.tracking import MLflowCallback
        outcome = run_experiment("experiments/urd_window.toml", callbacks=[MLflowCallback()])

    Parameters
    ----------
    experiment : Experiment or path-like
        A parsed experiment (cohort folder already substituted when one was given), or an
        experiment file (read with :func:`ml.experiments.load_experiment`).
    callbacks : iterable of RunCallback
        Told when the run starts, ends, or stops early (``ml/experiments/_callbacks.py``), in
        order; e.g. ``ml.tracking.MLflowCallback()``.
    out_dir : path-like, optional
        The run folder; default ``runs/<run_name>``. Created.
    run_name : str, optional
        Default ``<experiment>-<date>-<time>``.
    run_id : str, optional
        A tracking run id opened beforehand (a callback's :class:`RunStart` takes precedence),
        recorded in ``run.json``, the window artefact and the report.
    tracking : dict, optional
        Where that run is tracked (``tracking_uri``, ``experiment``), for the record.
    echo : callable
        Receives one line per step (name, elapsed seconds, a short note).
    progress : bool
        Show tqdm bars inside long steps (terminal only).

    Returns
    -------
    RunOutcome

    Raises
    ------
    KeyboardInterrupt
        Interrupted: ``run.json`` says KILLED, the callbacks were told.
    OSError
        The run folder could not be written any more: ``run.json`` says FAILED when there was
        room (the reason: :func:`run_folder_error`), the callbacks were told.
    """
    from ml.experiments._config import Experiment, load_experiment

    if not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment)
    run_name = run_name or _default_run_name(experiment)
    folder = Path(out_dir) if out_dir is not None else Path("runs") / run_name
    folder.mkdir(parents=True, exist_ok=True)
    callbacks = tuple(callbacks)
    for cb in callbacks:
        start = cb.on_run_start(experiment, run_name=run_name, folder=folder)
        if isinstance(start, RunStart):
            run_id, tracking = start.run_id, dict(start.tracking)
    try:
        outcome = _run(experiment, folder, run_name, run_id, tracking, echo, progress)
    except KeyboardInterrupt as exc:  # run.json says KILLED (_run wrote it)
        _abort(callbacks, folder, "KILLED", killed_by=getattr(exc, "signal_name", "SIGINT"))
        raise
    except OSError as exc:
        reason = run_folder_error(folder, exc)
        _abort(callbacks, folder, "FAILED", error=reason)
        _best_effort_failed(folder, reason)
        raise
    except BaseException:  # an unexpected error: a tracking run must not stay RUNNING
        _abort(callbacks, folder, "FAILED")
        raise
    for cb in callbacks:
        cb.on_run_end(outcome)
    return outcome


def _abort(callbacks, folder: Path, status: str, **why) -> None:
    for cb in callbacks:
        cb.on_run_abort(folder, status=status, **why)


def _run(experiment, folder: Path, run_name: str, run_id, tracking, echo, progress) -> RunOutcome:
    from ml.window import code_version

    bundle = RunBundle(folder)
    bundle.root.mkdir(parents=True, exist_ok=True)
    names = [s for s in STEPS if s != "transport" or experiment.transport is not None]
    bundle.write_json(RunBundle.MANIFEST, {
        "run_name": run_name, "experiment": experiment.name, "description": experiment.description,
        "experiment_file": experiment.source, "status": "RUNNING", "run_id": run_id,
        "tracking": tracking or {}, "created_at": _now(), "code_version": code_version(),
        "python": platform.python_version(), "cohort_source": experiment.cohort.describe(),
        "model_name": experiment.model_name, "steps": [],
    })
    bundle.write_text(RunBundle.EXPERIMENT, experiment.text)
    steps = _Steps(bundle, names, echo)
    ctx = StepContext(experiment=experiment, bundle=bundle, seed=experiment.seed, run_id=run_id, progress=progress)
    try:
        status, failed_step, error, found = _run_steps(ctx, steps, names)
    except KeyboardInterrupt as exc:
        _killed(bundle, steps, names, exc)
        raise
    return RunOutcome(bundle=bundle, status=status, failed_step=failed_step, error=error,
                      window=getattr(found.get("window"), "window", None),
                      study=getattr(found.get("models"), "study", None), steps=tuple(steps.done),
                      record=steps.record, results=tuple(steps.results), run_id=run_id)


def _killed(bundle: RunBundle, steps: _Steps, names: list[str], exc: KeyboardInterrupt) -> None:
    """Record an interrupted run in ``run.json``: status KILLED, the step it stopped, by which signal."""
    killed = [s["name"] for s in steps.done if s["status"] == "KILLED"]
    step = killed[-1] if killed else (names[len(steps.done)] if len(steps.done) < len(names) else names[-1])
    how = getattr(exc, "signal_name", "SIGINT")
    error = f"interrupted by {how} during step {step!r}"
    bundle.update(RunBundle.MANIFEST, status="KILLED", failed_step=step, error=error, killed_by=how,
                  finished_at=_now())


def _compute(ctx: StepContext, steps: _Steps, found: dict) -> None:
    """The steps before the report; ``found`` receives each step's value."""
    cohort = found["cohort"] = _value(steps, "cohort", S.cohort_step, ctx)
    pk = found["poppk"] = _value(steps, "poppk", S.poppk_step, ctx, cohort=cohort)
    data = found["exposure"] = _value(steps, "exposure", S.exposure_step, ctx, cohort=cohort, pk=pk,
                                      dataset=ctx.bundle.manifest().get("dataset"))
    models = found["models"] = _value(steps, "models", S.models_step, ctx, data=data)
    win = found["window"] = _value(steps, "window", S.window_step, ctx, data=data)
    found["explain"] = _value(steps, "explain", S.explain_step, ctx, models=models, data=data, win=win)
    if ctx.experiment.transport is not None:
        found["transport"] = _value(steps, "transport", S.transport_step, ctx, window=win.window,
                                    strategy=data.strategy)


def _run_steps(ctx: StepContext, steps: _Steps, names: list[str]) -> tuple[str, str | None, str | None, dict]:
    """Every step, then the report (also for a failed run); returns status, failed step, error, values."""
    bundle = ctx.bundle
    found: dict = {}
    status, failed_step, error = "FINISHED", None, None
    try:
        _compute(ctx, steps, found)
    except StepFailed as exc:
        status, failed_step, error = "FAILED", exc.step, str(exc)
        steps.add_record(exc.record)
        bundle.write_text(RunBundle.ERRORS, "\n".join([str(exc), *exc.details]) + "\n")
    except Exception as exc:  # noqa: BLE001 - any failing step fails the run, with its reason kept
        failed = [s["name"] for s in steps.done if s["status"] == "FAILED"]
        failed_step = failed[-1] if failed else names[len(steps.done)]
        status, error = "FAILED", f"step {failed_step!r} failed: {type(exc).__name__}: {exc}"
        bundle.write_text(RunBundle.ERRORS, error + "\n\n" + traceback.format_exc())
    params, metrics = steps.params_metrics(ctx.experiment.params())
    bundle.update(RunBundle.MANIFEST, params=params, metrics=metrics)
    # The report is rendered even for a failed run: it then shows what failed and why.
    bundle.update(RunBundle.MANIFEST, status=status, failed_step=failed_step, error=error)
    try:
        steps.run("report", S.report_step, ctx, note=S.NOTES["report"])
    except Exception as exc:  # noqa: BLE001
        status, failed_step = "FAILED", failed_step or "report"
        error = error or f"step 'report' failed: {type(exc).__name__}: {exc}"
        bundle.write_text(RunBundle.ERRORS, error + "\n\n" + traceback.format_exc())
    bundle.update(RunBundle.MANIFEST, status=status, failed_step=failed_step, error=error, finished_at=_now())
    return status, failed_step, error, found


def _best_effort_failed(folder: Path, reason: str) -> None:
    """Say FAILED in run.json, with the step, if there is room to (it is written whole or not at all).

    A report already rendered is removed: it was rendered before the failure and says the run
    FINISHED (``atgwin publish`` renders it again).
    """
    b = RunBundle(folder)
    if not b.exists(RunBundle.MANIFEST):
        return
    b.path(RunBundle.REPORT).unlink(missing_ok=True)
    try:
        m = b.manifest()
        steps = m.get("steps") or []
        done = {s.get("name") for s in steps if s.get("status") == "FINISHED"}
        unfinished = [s.get("name") for s in steps if s.get("status") != "FINISHED"]
        order = [s for s in STEPS if s != "transport"]
        step = m.get("failed_step") or (unfinished or [next((s for s in order if s not in done), "report")])[0]
        b.update(RunBundle.MANIFEST, status="FAILED", failed_step=step, error=reason)
    except OSError:
        pass
