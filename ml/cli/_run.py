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

import time
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


def _run(experiment, folder: Path, run_name: str, tracking_uri: str | None, no_tracking: bool) -> None:
    from ml.experiments import run_experiment

    tracker, run_id, tracking, track_error = None, None, {}, None
    if not no_tracking:
        t0 = time.perf_counter()
        from ml.tracking import RunTracker, TrackingError, bounded_http, process_tags

        bounded_http()
        try:
            tracker = RunTracker(tracking_uri).connect()
            _repair(tracker)
            run_id = tracker.start_run(experiment.name, run_name,
                                       tags={"atgwin.experiment": experiment.name, **process_tags(folder)})
            tracking = {"tracking_uri": tracker.tracking_uri, "experiment": experiment.name}
            _echo(f"[0] tracking  {time.perf_counter() - t0:6.1f} s  run {run_id} in {tracker.tracking_uri}")
        except KeyboardInterrupt as exc:  # before the pipeline started
            how = getattr(exc, "signal_name", "SIGINT")
            _close(tracker, run_id, "KILLED", {"atgwin.status": "KILLED", "atgwin.killed_by": how})
            _echo(f"\nInterrupted by {how} before the pipeline started" + (f": run {run_id} KILLED" if run_id else ""))
            raise SystemExit(getattr(exc, "exit_code", 130)) from None
        except TrackingError as exc:
            track_error = str(exc)
            _echo(f"warning: {exc}\nContinuing: results are written to {folder} only; send them later with "
                  f"atgwin publish {folder}")
            tracker = None

    try:
        try:
            outcome = run_experiment(experiment, out_dir=folder, run_name=run_name, run_id=run_id, tracking=tracking,
                                     echo=_echo, progress=show_progress())
        finally:
            (folder / RESERVE).unlink(missing_ok=True)
    except KeyboardInterrupt as exc:  # run.json already says KILLED (run_experiment wrote it)
        how = getattr(exc, "signal_name", "SIGINT")
        _close(tracker, run_id, "KILLED", {"atgwin.status": "KILLED", "atgwin.killed_by": how})
        _echo(f"\nInterrupted by {how}: run {run_id or run_name} KILLED; partial results in {folder}; nothing "
              "registered.")
        raise SystemExit(getattr(exc, "exit_code", 130)) from None
    except OSError as exc:  # the run folder cannot be written any more (disk full, read-only, removed)
        reason = f"cannot write the run folder {folder}: {exc.strerror or exc}" + (
            f" ({exc.filename})" if getattr(exc, "filename", None) else "")
        _close(tracker, run_id, "FAILED", {"atgwin.status": "FAILED", "atgwin.error": reason})
        _best_effort_failed(folder, reason)
        _echo(f"\nerror: {reason}\nRun FAILED: {run_id or run_name}; nothing registered; no report announced.")
        raise SystemExit(1) from None
    except BaseException:  # an unexpected error: the MLflow run must not stay RUNNING
        _close(tracker, run_id, "FAILED", {"atgwin.status": "FAILED"})
        raise
    if not outcome.ok:
        errors = outcome.bundle.read_text("errors.txt") or outcome.error or ""
        _echo(f"\nRun FAILED at step {outcome.failed_step!r}:")
        _echo(errors.split("\n\nTraceback")[0].rstrip())

    registered_line = ""
    if tracker is not None:
        from ml.tracking import TrackingError, mark_folder_killed, publish_run

        t0 = time.perf_counter()
        try:
            pub = publish_run(tracker, run_id, outcome.bundle, study=outcome.study, model_name=experiment.model_name,
                              gates=experiment.promotion.gates())
            what = (f"registered {pub.registered.uri} with alias '{pub.registered.alias}'" if pub.registered
                    else pub.note)
            _echo(f"[+] track     {time.perf_counter() - t0:6.1f} s  run {pub.status}, {pub.nested_runs} nested "
                  f"trial runs; {what}")
            registered_line = what
        except KeyboardInterrupt as exc:  # publish_run closed the run KILLED
            how = getattr(exc, "signal_name", "SIGINT")
            mark_folder_killed(folder, how, step="track")
            _close(tracker, run_id, "KILLED", {"atgwin.status": "KILLED", "atgwin.killed_by": how})
            _echo(f"\nInterrupted by {how} while publishing: run {run_id} KILLED. The run folder {folder} is "
                  f"complete; send it again with: atgwin publish {folder}")
            raise SystemExit(getattr(exc, "exit_code", 130)) from None
        except TrackingError as exc:
            track_error = str(exc)
            _echo(f"error: {exc}\nThe run folder is complete; send it again with: atgwin publish {folder}")

    _summary(outcome, folder, run_id, tracker, registered_line, track_error)
    if not outcome.ok:
        raise SystemExit(1)
    if track_error and not no_tracking:
        raise SystemExit(3)


def _repair(tracker) -> None:
    """Mark runs of this store left RUNNING by a killed process (one line each)."""
    from ml.tracking import repair_runs

    try:
        report = repair_runs(tracker)
    except Exception as exc:  # noqa: BLE001 - a repair that fails must not stop a new run
        _echo(f"warning: could not check for runs left RUNNING: {exc}")
        return
    for r in report.repaired:
        _echo(f"[0] repaired  run {r.run_id} ({r.run_name}) was left RUNNING by a process that no longer exists: "
              "marked KILLED")


def _close(tracker, run_id: str | None, status: str, tags: dict) -> None:
    """End the MLflow run with ``status`` (and tags saying why); a store that fails here is reported."""
    if tracker is None or run_id is None:
        return
    try:
        tracker.set_tags(run_id, tags)
        tracker.end_run(run_id, status)
    except Exception as exc:  # noqa: BLE001
        _echo(f"warning: could not mark run {run_id} {status} in {tracker.tracking_uri}: {exc}; "
              "atgwin runs repair will find it")


def _best_effort_failed(folder: Path, reason: str) -> None:
    """Say FAILED in run.json, with the step, if there is room to (it is written whole or not at all).

    The reserve (``RESERVE``) was freed just before. A report already rendered is removed: it was
    rendered before the failure and says the run FINISHED (``atgwin publish`` renders it again).
    """
    from ml.report import RunBundle

    b = RunBundle(folder)
    if not b.exists(RunBundle.MANIFEST):
        return
    b.path(RunBundle.REPORT).unlink(missing_ok=True)
    try:
        m = b.manifest()
        steps = m.get("steps") or []
        done = {s.get("name") for s in steps if s.get("status") == "FINISHED"}
        unfinished = [s.get("name") for s in steps if s.get("status") != "FINISHED"]
        order = ["cohort", "poppk", "exposure", "models", "window", "explain", "report"]
        step = m.get("failed_step") or (unfinished or [next((s for s in order if s not in done), "report")])[0]
        b.update(RunBundle.MANIFEST, status="FAILED", failed_step=step, error=reason)
    except OSError:
        pass


def _summary(outcome, folder: Path, run_id, tracker, registered_line: str, track_error: str | None) -> None:
    results = outcome.bundle.results()
    if (results.get("cohort") or {}).get("simulated"):
        click.echo(SIMULATED_BANNER)
    w = results.get("window")
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
    if outcome.bundle.exists("window/window.json"):
        click.echo(f"Window artefact: {outcome.bundle.path('window/window.json')}")
    if run_id and tracker is not None and not track_error:
        click.echo(f"MLflow run: {run_id} in {tracker.tracking_uri}" + (f"; {registered_line}" if registered_line else ""))
        from ml.tracking import DEFAULT_TRACKING_URI
        from ml.tracking._uri import is_remote

        uri = tracker.tracking_uri
        if is_remote(uri):
            click.echo(f"MLflow UI: open {uri}")
        else:
            opt = "" if uri == DEFAULT_TRACKING_URI else f" --tracking-uri {uri}"
            click.echo(f"MLflow UI: atgwin ui{opt}   (then open http://127.0.0.1:5000)")
    elif track_error:
        click.echo(f"Not tracked ({track_error.splitlines()[0]}); every result is in {folder}.")
