"""``atgwin run EXPERIMENT.toml [--cohort DIR]``: the whole pipeline, written locally, tracked in MLflow.

Opens an MLflow run, runs every step locally into ``runs/<run-name>/`` (one line per step with
its time), then publishes the folder to the run and registers the window with the alias
``candidate`` (only when every step succeeded and a window was found). A refused cohort prints
every violation, ends the run FAILED and registers nothing. If the tracking store cannot be
reached the results stay in the run folder and the command says so.

Exit codes: 0 done; 1 a step failed (run FAILED); 2 bad experiment file or options; 3 the
results are complete locally but could not be tracked.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import click

from ml._format import fmt_p
from ml.cli._common import SIMULATED_BANNER, show_progress


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
    from ml.experiments import ExperimentError, load_experiment, run_experiment

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
    _echo(f"atgwin run {experiment_file}: cohort {experiment.cohort.describe()}"
          + (f", transported to {experiment.transport.describe()}" if experiment.transport else ""))

    tracker, run_id, tracking, track_error = None, None, {}, None
    if not no_tracking:
        t0 = time.perf_counter()
        from ml.tracking import RunTracker, TrackingError

        try:
            tracker = RunTracker(tracking_uri)
            run_id = tracker.start_run(experiment.name, run_name, tags={"atgwin.experiment": experiment.name})
            tracking = {"tracking_uri": tracker.tracking_uri, "experiment": experiment.name}
            _echo(f"[0] tracking  {time.perf_counter() - t0:6.1f} s  run {run_id} in {tracker.tracking_uri}")
        except TrackingError as exc:
            track_error = str(exc)
            _echo(f"warning: {exc}\nContinuing: results are written to {folder} only.")
            tracker = None

    try:
        outcome = run_experiment(experiment, out_dir=folder, run_name=run_name, run_id=run_id, tracking=tracking,
                                 echo=_echo, progress=show_progress())
    except KeyboardInterrupt:
        if tracker is not None:
            tracker.end_run(run_id, "KILLED")
        _echo(f"\nInterrupted: run {run_id or run_name} KILLED; partial results in {folder}; nothing registered.")
        raise SystemExit(130) from None
    if not outcome.ok:
        errors = outcome.bundle.read_text("errors.txt") or outcome.error or ""
        _echo(f"\nRun FAILED at step {outcome.failed_step!r}:")
        _echo(errors.split("\n\nTraceback")[0].rstrip())

    registered_line = ""
    if tracker is not None:
        from ml.tracking import TrackingError, publish_run

        t0 = time.perf_counter()
        try:
            pub = publish_run(tracker, run_id, outcome.bundle, study=outcome.study, model_name=experiment.model_name,
                              gates=experiment.promotion.gates())
            what = (f"registered {pub.registered.uri} with alias '{pub.registered.alias}'" if pub.registered
                    else pub.note)
            _echo(f"[+] track     {time.perf_counter() - t0:6.1f} s  run {pub.status}, {pub.nested_runs} nested "
                  f"trial runs; {what}")
            registered_line = what
        except TrackingError as exc:
            track_error = str(exc)
            _echo(f"error: {exc}")

    _summary(outcome, folder, run_id, tracker, registered_line, track_error)
    if not outcome.ok:
        raise SystemExit(1)
    if track_error and not no_tracking:
        raise SystemExit(3)


def _summary(outcome, folder: Path, run_id, tracker, registered_line: str, track_error: str | None) -> None:
    results = outcome.bundle.results()
    if (results.get("cohort") or {}).get("simulated"):
        click.echo(SIMULATED_BANNER)
    w = results.get("window")
    if w:
        unit = w["artefact"]["unit"]
        lo = "open" if w["lower"] is None else f"{w['lower']:.1f}"
        hi = "open" if w["upper"] is None else f"{w['upper']:.1f}"
        if w["status"] == "no-window":
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
