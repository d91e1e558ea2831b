"""``atgwin report RUN_ID --out report.html``: the reviewer's report of a run, rendered again.

RUN_ID is an MLflow run id or run name (its artefacts are downloaded from the tracking store),
or a local run folder (``runs/<run-name>``). The report is one self-contained HTML file. It shows
aggregate views only; ``--private`` adds the per-patient views of a local run folder (drawn when
the experiment sets ``[models] private_views = true``), for a report kept on the local machine.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click


@click.command("report")
@click.argument("run_ref", metavar="RUN_ID")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the HTML report.")
@click.option("--tracking-uri", default=None,
              help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")
@click.option("--trial-plan", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Summary JSON of `atgwin trial --out FILE` (FILE.summary.json): adds what the power analysis "
                   "means for the registered trial design (SIMULATION).")
@click.option("--private", is_flag=True, default=False,
              help="A local, private report: add the per-patient SHAP views (beeswarm, one patient's waterfall) "
                   "that a run draws into RUN_FOLDER.private/ when its experiment sets [models] private_views = "
                   "true. Only for a local run folder; these views are never sent to MLflow. Without it the report "
                   "shows aggregate views only.")
def report(run_ref: str, out: Path, tracking_uri: str | None, trial_plan: Path | None = None,
           private: bool = False) -> None:
    """Write the HTML report of the run RUN_ID (id, name, or a local run folder)."""
    import json

    from ml.cli._common import prepare_out
    from ml.record import RunBundle

    plan = None
    if trial_plan is not None:
        try:
            plan = json.loads(trial_plan.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise click.ClickException(f"{trial_plan}: not a readable summary JSON of `atgwin trial --out`: {exc}") \
                from None
        if not isinstance(plan, dict) or not plan.get("plan"):
            raise click.ClickException(f"{trial_plan}: has no power analysis (key 'plan'); run `atgwin trial` with "
                                       "--population > 0 and --out")
    prepare_out(out)
    local = Path(run_ref)
    if local.is_dir():
        if not RunBundle(local).exists(RunBundle.MANIFEST):
            raise click.ClickException(f"{local}: not a run folder (no run.json)")
        path = _write(local, out, plan, private)
        click.echo(f"{'PRIVATE report (individual patients: keep it local)' if private else 'Report'}: {path.resolve()}")
        return
    if private:
        raise click.ClickException(f"--private needs the local run folder (runs/<run-name>), got {run_ref!r}: the "
                                   "individual-level views are never sent to MLflow")
    from ml.tracking import RunTracker, TrackingError

    try:
        tracker = RunTracker(tracking_uri)
        run_id = tracker.find_run(run_ref)
        with tempfile.TemporaryDirectory() as tmp:
            folder = tracker.download_run(run_id, tmp)
            if not RunBundle(folder).exists(RunBundle.MANIFEST):
                raise click.ClickException(f"run {run_id} has no run folder among its artefacts (not made by atgwin run)")
            path = _write(folder, out, plan)
    except TrackingError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Report of run {run_id}: {path.resolve()}")


def _write(folder: Path, out: Path, plan: dict | None, private: bool = False) -> Path:
    """The report of a run folder; a run record this version cannot read, or a private report of a run
    without private views, is a one-line error."""
    from ml.experiments import RecordError
    from ml.report import write_report

    try:
        return write_report(folder, out, plan, private=private)
    except (RecordError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
