"""``atgwin run EXPERIMENT.toml [--cohort DIR]``: the whole pipeline, written locally, tracked in MLflow.

Opens an MLflow run, runs every step locally into ``runs/<run-name>/`` (one line per step with
its time), then publishes the folder to the run and registers the window with the alias
``candidate`` (only when every step succeeded and a window was found). A refused cohort prints
every violation, ends the run FAILED and registers nothing. If the tracking store cannot be
reached (a server gets 5 s to answer) the results stay in the run folder and the command says so;
``atgwin publish RUN_DIR`` sends them later.

Run states tell the truth: SIGTERM or Ctrl-C ends the MLflow run ``KILLED`` and ``run.json`` says the
same (with the step and the signal); a run left RUNNING by a process that was killed outright
(SIGKILL) is found and marked ``KILLED`` by the next ``atgwin run`` on the same store (or
``atgwin runs repair``); a folder that cannot be written (read-only, disk full) ends the run
``FAILED`` with a one-line reason, and every file is written whole or not at all.

Exit codes: 0 done; 1 a step failed (run FAILED), or the run folder could not be written; 2 bad
experiment file or options (nothing opened in MLflow); 3 the results are complete locally but
could not be tracked; 130 / 143 interrupted by SIGINT / SIGTERM (run KILLED).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from ml._atomic import write_atomic
from ml._format import fmt_p
from ml._status import WindowStatus
from ml.cli._common import SIMULATED_BANNER, show_progress
from ml.cli._signals import interrupts_raise


def _echo(line: str) -> None:
    click.echo(line, err=True)


@click.command("run")
@click.argument("experiment_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--cohort", "cohort_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Cohort folder (docs/cohort-format.md) instead of the experiment's virtual cohort.")
@click.option("--transport-cohort", "transport_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Cohort folder the window is transported to (experiments with a [transport] section).")
@click.option("--out-dir", default=Path("runs"), show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run folders are written here first (runs/<run-name>/).")
@click.option("--tracking-uri", default=None,
              help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")
@click.option("--run-name", default=None, help="Default: <experiment>-<date>-<time>.")
@click.option("--no-tracking", is_flag=True, help="Only write the run folder; nothing is sent to MLflow.")
def run(experiment_file: Path, cohort_dir: Path | None, transport_dir: Path | None, out_dir: Path,
        tracking_uri: str | None, run_name: str | None, no_tracking: bool) -> None:
    """Run the experiment EXPERIMENT_FILE end to end and track it in MLflow."""
    from ml.cli._common import prepare_out
    from ml.experiments import ExperimentError, load_experiment

    prepare_out(out_dir, "--out-dir", folder=True)
    try:
        experiment = load_experiment(experiment_file).with_cohort(cohort_dir, transport_dir)
    except ExperimentError as exc:
        raise click.UsageError(str(exc)) from None
    if transport_dir is not None and experiment.transport is None:
        raise click.UsageError(f"{experiment_file} has no [transport] section; --transport-cohort does not apply")
    run_name = run_name or f"{experiment.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    folder = out_dir / run_name
    if folder.exists() and any(folder.iterdir()):
        raise click.UsageError(f"{folder} already exists; choose another --run-name or --out-dir")
    _writable(folder)  # before anything is opened in MLflow: no orphan run for a folder that cannot be written
    _echo(f"atgwin run {experiment_file}: cohort {experiment.cohort.describe()}"
          + (f", transported to {experiment.transport.describe()}" if experiment.transport else ""))
    with interrupts_raise():
        _run(experiment, folder, run_name, tracking_uri, no_tracking)


#: Space set aside in the run folder while the pipeline runs (a hidden file, removed before
#: publishing): if the disk fills, freeing it leaves room to record the run as FAILED.
RESERVE, RESERVE_BYTES = ".atgwin-reserve", 256 * 1024


def _writable(folder: Path) -> None:
    """Create the run folder, write a probe file and the reserve in it; a clear usage error when that fails."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = write_atomic(folder / ".atgwin-write-test", "ok\n")
        probe.unlink()
        write_atomic(folder / RESERVE, bytes(RESERVE_BYTES))
    except OSError as exc:
        (folder / RESERVE).unlink(missing_ok=True)
        raise click.UsageError(f"cannot write the run folder {folder}: {exc.strerror or exc}; choose another "
                               "--out-dir") from None


class _Console:
    """``atgwin run``'s own hooks (a ``ml.experiments.RunCallback``): free the reserve before anything
    is published, and say why a run failed before it is tracked."""

    def __init__(self, folder: Path):
        self.folder = folder

    def on_run_start(self, experiment, *, run_name: str, folder: Path) -> None:
        return None

    def on_run_end(self, outcome) -> None:
        (self.folder / RESERVE).unlink(missing_ok=True)
        if not outcome.ok:
            errors = outcome.bundle.read_text("errors.txt") or outcome.error or ""
            _echo(f"\nRun FAILED at step {outcome.failed_step!r}:")
            _echo(errors.split("\n\nTraceback")[0].rstrip())

    def on_run_abort(self, folder: Path, **why) -> None:
        (self.folder / RESERVE).unlink(missing_ok=True)


def _run(experiment, folder: Path, run_name: str, tracking_uri: str | None, no_tracking: bool) -> None:
    from ml.experiments import run_experiment, run_folder_error

    tracking = None
    if not no_tracking:
        from ml.tracking import MLflowCallback

        tracking = MLflowCallback(tracking_uri, echo=_echo)
    try:
        outcome = run_experiment(experiment, callbacks=[_Console(folder), *([tracking] if tracking else [])],
                                 out_dir=folder, run_name=run_name, echo=_echo, progress=show_progress())
    except KeyboardInterrupt as exc:  # run.json says KILLED, the MLflow run is closed KILLED
        _interrupted(exc, tracking, folder, run_name)
    except OSError as exc:  # the run folder cannot be written any more (disk full, read-only, removed)
        run_id = tracking.run_id if tracking else None
        _echo(f"\nerror: {run_folder_error(folder, exc)}\nRun FAILED: {run_id or run_name}; nothing registered; no "
              "report announced.")
        raise SystemExit(1) from None
    finally:
        (folder / RESERVE).unlink(missing_ok=True)
    track_error = tracking.error if tracking else None
    _summary(outcome, folder, tracking, track_error)
    if not outcome.ok:
        raise SystemExit(1)
    if track_error:
        raise SystemExit(3)


def _interrupted(exc: KeyboardInterrupt, tracking, folder: Path, run_name: str) -> None:
    """Say where the run was interrupted and exit 130 / 143 (the MLflow run is already KILLED)."""
    how = getattr(exc, "signal_name", "SIGINT")
    run_id = tracking.run_id if tracking else None
    where = tracking.interrupted if tracking else None
    if where == "start":
        _echo(f"\nInterrupted by {how} before the pipeline started" + (f": run {run_id} KILLED" if run_id else ""))
    elif where == "publish":
        _echo(f"\nInterrupted by {how} while publishing: run {run_id} KILLED. The run folder {folder} is "
              f"complete; send it again with: atgwin publish {folder}")
    else:
        _echo(f"\nInterrupted by {how}: run {run_id or run_name} KILLED; partial results in {folder}; nothing "
              "registered.")
    raise SystemExit(getattr(exc, "exit_code", 130)) from None


def _summary(outcome, folder: Path, tracking, track_error: str | None) -> None:
    record = outcome.record
    if record.simulated:
        click.echo(SIMULATED_BANNER)
    w = record.window
    if w:
        unit = w["artefact"]["unit"]
        lo = "open" if w["lower"] is None else f"{w['lower']:.1f}"
        hi = "open" if w["upper"] is None else f"{w['upper']:.1f}"
        if w["status"] == WindowStatus.NO_WINDOW:
            click.echo(f"No exposure window: adjusted p = {fmt_p(w['p_value'])} is not below alpha; nothing registered.")
        else:
            click.echo(f"Window [{lo}, {hi}) {unit}, adjusted p = {fmt_p(w['p_value'])}, status {w['status']}.")
    status = "FINISHED" if outcome.ok else "FAILED"
    click.echo(f"Run {status}: {folder}")
    report = outcome.bundle.path("report.html")
    if report.is_file():
        click.echo(f"Report: {report.resolve()}  (open it in a browser)")
    private = outcome.bundle.private()
    if private.figures("private"):
        click.echo(f"Individual-level views (PRIVATE, not sent to MLflow): {private.root}; "
                   f"`atgwin report {folder} --private --out FILE` shows them in a local report")
    if outcome.bundle.exists("window/window.json"):
        click.echo(f"Window artefact: {outcome.bundle.path('window/window.json')}")
    tracker = tracking.tracker if tracking else None
    if tracker is not None and tracking.run_id and not track_error:
        registered_line = tracking.registered
        click.echo(f"MLflow run: {tracking.run_id} in {tracker.tracking_uri}"
                   + (f"; {registered_line}" if registered_line else ""))
        from ml.tracking import DEFAULT_TRACKING_URI, is_remote

        uri = tracker.tracking_uri
        if is_remote(uri):
            click.echo(f"MLflow UI: open {uri}")
        else:
            opt = "" if uri == DEFAULT_TRACKING_URI else f" --tracking-uri {uri}"
            click.echo(f"MLflow UI: atgwin ui{opt}   (then open http://127.0.0.1:5000)")
    elif track_error:
        click.echo(f"Not tracked ({track_error.splitlines()[0]}); every result is in {folder}.")
