"""``atgwin publish RUN_DIR``: send a run folder to MLflow again (or for the first time).

For a run whose upload did not complete: the tracking server was down, the command was killed while
publishing, or the store failed part-way. The run folder (``runs/<run-name>/``) holds every result;
this sends it the way ``atgwin run`` does (``ml/tracking/_publish.py``): parameters, metrics,
tags, the dataset, the folder as artefacts, then the registration of the window (alias
``candidate``) when the pipeline finished and found one, and closes the run with the pipeline's
status. Publishing twice is safe: nothing is registered twice.

* A folder whose run was opened in MLflow is sent to that run (``run.json`` names it and its
  store; ``--tracking-uri`` overrides the store).
* A folder made without a reachable store (no run id) gets a new run, named as the folder's run.
* A folder killed while publishing (``run.json``: ``KILLED`` at step ``track``, with what the
  pipeline said under ``before_kill``) gets the pipeline's own status back: its results were
  complete.
* A folder killed before its pipeline ended stays ``KILLED``: it is sent, nothing is registered.
* A folder that still says ``RUNNING`` is refused: its process may still be running
  (``atgwin runs repair`` marks it if not).

Optuna trials are not sent again as nested runs (the study is not kept in the folder; its
trials are the run folder's ``optuna_trials`` table when the models step ran).

Exit codes: 0 sent; 1 the store failed or refused; 2 not a run folder, or still RUNNING.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import click


@click.command("publish")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--tracking-uri", default=None,
              help="MLflow tracking URI (default: the store named in the run.json of RUN_DIR, else $MLFLOW_TRACKING_URI, "
                   "else sqlite:///mlflow.db).")
def publish(run_dir: Path, tracking_uri: str | None) -> None:
    """Send the run folder RUN_DIR to MLflow and close its run with the run's own status."""
    from ml.record import RunBundle

    bundle = RunBundle(run_dir)
    if not bundle.exists(RunBundle.MANIFEST):
        raise click.UsageError(f"{run_dir}: not a run folder (no {RunBundle.MANIFEST})")
    m = bundle.manifest()
    if m.get("status") == "RUNNING":
        raise click.UsageError(f"{run_dir}: run.json says RUNNING: the run is still going, or its process died "
                               "(run `atgwin runs repair` first, which marks it KILLED if so)")
    if m.get("status") not in ("FINISHED", "FAILED", "KILLED"):
        raise click.UsageError(f"{run_dir}: run.json has no final status ({m.get('status')!r})")

    from ml.tracking import RunTracker, TrackingError, bounded_http, publish_run

    bounded_http()
    uri = tracking_uri or (m.get("tracking") or {}).get("tracking_uri")
    t0 = time.perf_counter()
    try:
        tracker = RunTracker(uri).connect()
        run_id = m.get("run_id")
        if run_id:
            try:
                tracker.client.get_run(run_id)
            except Exception:  # noqa: BLE001
                raise TrackingError(f"run {run_id} (named in {run_dir}/run.json) is not in {tracker.tracking_uri}; "
                                    "give the store it was opened in with --tracking-uri") from None
        else:
            run_id = tracker.start_run(m.get("experiment") or "atgwin", m.get("run_name") or run_dir.name,
                                       tags={"atgwin.experiment": m.get("experiment", "")})
            bundle.update(RunBundle.MANIFEST, run_id=run_id, tracking={"tracking_uri": tracker.tracking_uri,
                                                                       "experiment": m.get("experiment", "")})
            click.echo(f"opened run {run_id} in {tracker.tracking_uri} (the folder had none)", err=True)
        restored = _restore_pipeline_status(bundle)
        if restored:
            click.echo(f"{run_dir}: killed while publishing; its pipeline had ended {restored}: publishing it as "
                       f"{restored}", err=True)
        pub = publish_run(tracker, run_id, bundle, study=None, model_name=m.get("model_name") or "atg-window",
                          gates=_gates(bundle))
        tracker.set_tags(run_id, {"atgwin.republished": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        if restored and "atgwin.killed_by" in tracker.client.get_run(run_id).data.tags:
            tracker.client.delete_tag(run_id, "atgwin.killed_by")  # the kill interrupted the upload only
    except (TrackingError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the store refused a tag or a search
        raise click.ClickException(f"publishing {run_dir} failed: {type(exc).__name__}: {exc}") from None
    what = f"registered {pub.registered.uri} (alias '{pub.registered.alias}')" if pub.registered else pub.note
    click.echo(f"Published {run_dir} to run {pub.run_id} in {tracker.tracking_uri} in "
               f"{time.perf_counter() - t0:.1f} s: run {pub.status}; {what}")


def _restore_pipeline_status(bundle) -> str | None:
    """A folder killed while publishing gets back the status its pipeline ended with."""
    from ml.record import RunBundle

    m = bundle.manifest()
    before = m.get("before_kill")
    if m.get("status") != "KILLED" or not before or m.get("failed_step") != "track":
        return None
    bundle.update(RunBundle.MANIFEST, status=before.get("status"), failed_step=before.get("failed_step"),
                  error=before.get("error"), finished_at=before.get("finished_at"), killed_by=None, before_kill=None,
                  republished={"killed_by": m.get("killed_by"), "killed_at": m.get("finished_at")})
    return before.get("status")


def _gates(bundle):
    """The promotion gates of the experiment file kept in the folder, or None if it cannot be read."""
    from ml.experiments import ExperimentError, RunBundle
    from ml.experiments._config import parse_experiment

    text = bundle.read_text(RunBundle.EXPERIMENT)
    if text is None:
        return None
    try:
        return parse_experiment(text, source=str(bundle.path(RunBundle.EXPERIMENT))).promotion.gates()
    except ExperimentError:
        return None
