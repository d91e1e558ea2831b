"""``atgwin runs repair``: mark runs left RUNNING by a process that was killed outright.

A run whose process received SIGKILL (or ran out of memory, or lost power) never closed its MLflow
run. ``atgwin run`` tags each run with its host, process id and process start time; this finds
RUNNING runs of the store whose process no longer exists on this host, marks them ``KILLED``
(tag ``atgwin.repaired`` says why; nested Optuna trial runs too) and writes ``KILLED`` into their
run folder's ``run.json``. ``atgwin run`` does the same before each new run. Runs started on
another host cannot be checked from here: they are listed, and marked only with ``--stale-hours``.
A folder killed while publishing can then be sent again with ``atgwin publish RUN_DIR``.

Exit codes: 0 done (also when nothing needed repair); 1 the store failed.
"""

from __future__ import annotations

import click


@click.group("runs")
def runs() -> None:
    """Look after the MLflow runs of ``atgwin run``."""


@runs.command("repair")
@click.option("--tracking-uri", default=None,
              help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")
@click.option("--dry-run", is_flag=True, help="Only list what would be marked.")
@click.option("--stale-hours", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Also mark runs that cannot be checked from this host (another host, or not started by "
                   "atgwin run) once they have been RUNNING this many hours.")
def repair(tracking_uri: str | None, dry_run: bool, stale_hours: float | None) -> None:
    """Mark KILLED the runs left RUNNING by a process that no longer exists."""
    from ml.tracking import RunTracker, TrackingError, bounded_http, repair_runs

    bounded_http()
    try:
        tracker = RunTracker(tracking_uri).connect()
        report = repair_runs(tracker, dry_run=dry_run, stale_hours=stale_hours)
    except TrackingError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the store refused a search or an update
        raise click.ClickException(f"repairing runs in {tracking_uri or 'the default store'} failed: "
                                   f"{type(exc).__name__}: {exc}") from None
    verb = "would mark" if dry_run else "marked"
    for r in report.repaired:
        extra = f" and {r.nested} nested run(s)" if r.nested else ""
        folder = f"; run folder {r.run_dir}" if r.run_dir else ""
        click.echo(f"{verb} KILLED: run {r.run_id} ({r.run_name}){extra}: {r.reason}{folder}")
    for run_id, name, why in report.unchecked:
        click.echo(f"left RUNNING (cannot check from this host): run {run_id} ({name}): {why}")
    click.echo(f"{len(report.repaired)} run(s) {verb} KILLED, {len(report.unchecked)} left unchecked in "
               f"{tracker.tracking_uri}.")
