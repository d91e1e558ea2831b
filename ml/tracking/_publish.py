"""Publish a finished (or failed) run folder to its MLflow run, register the window, close the run.

The run folder was written first (``ml.experiments.run_experiment``); this only sends it. Order:
parameters, metrics, tags, dataset, Optuna trials, the folder as artefacts; then, only when
every step succeeded and the search found a window, the registration (alias ``candidate``);
then the report is rendered again with the registry entry and the run is closed with the
pipeline's status. A failed run is published the same way (its errors and report included) and
closed ``FAILED``; nothing is registered for it, and a run folder that says ``KILLED`` is sent and
closed ``KILLED``.

Publishing again is safe: ``atgwin publish RUN_DIR`` calls :func:`publish_run` on a folder whose
upload was interrupted; parameters and tags are written with the same values, artefacts are
overwritten, and a window already registered from this run is not registered twice. An
interruption while publishing (Ctrl-C, SIGTERM) closes the run ``KILLED`` and withdraws a
registration made in this call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ml._status import WindowStatus
from ml.record import RunBundle, RunRecord
from ml.tracking._registry import CANDIDATE, RegisteredWindow, register_window
from ml.tracking._runs import RunTracker, TrackingError
from ml.tracking._uri import quiet

__all__ = ["PublishResult", "publish_run", "run_tags"]


@dataclass(frozen=True)
class PublishResult:
    """What was sent.

    Attributes
    ----------
    run_id : str
    status : str
        The run's final MLflow status.
    registered : RegisteredWindow or None
    note : str
        Why nothing was registered, when so.
    nested_runs : int
        Optuna trials logged as child runs.
    """

    run_id: str
    status: str
    registered: RegisteredWindow | None
    note: str
    nested_runs: int


def run_tags(manifest: dict, record: RunRecord | dict) -> dict[str, str]:
    """Searchable tags of a run, and its description (``mlflow.note.content``) for the UI.

    Parameters
    ----------
    manifest : dict
        The run folder's ``run.json``.
    record : RunRecord or dict
        Its ``results.json`` (a dict is read with ``RunRecord.from_dict``).
    """
    if not isinstance(record, RunRecord):
        record = RunRecord.from_dict(record)
    cohort = record.cohort or {}
    window = record.window or {}
    poppk = record.poppk or {}
    sim = bool(manifest.get("simulated", cohort.get("simulated", False)))
    tags = {
        "atgwin.experiment": manifest.get("experiment", ""),
        "atgwin.simulated": str(sim).lower(),
        "atgwin.cohort": cohort.get("name", ""),
        "atgwin.dataset_digest": (manifest.get("dataset") or {}).get("digest", ""),
        "atgwin.code_version": manifest.get("code_version", ""),
        "atgwin.status": manifest.get("status", ""),
        "atgwin.window_status": window.get("status", ""),
        "atgwin.failed_step": manifest.get("failed_step") or "",
        "atgwin.pk_model_status": poppk.get("status", ""),
        "atgwin.pk_model_digest": (poppk.get("model") or {}).get("digest", ""),
        "mlflow.source.name": f"atgwin run {manifest.get('experiment_file', '')}",
        "mlflow.source.type": "LOCAL",
    }
    lines = []
    if sim:
        lines.append("**SIMULATED DATA: a virtual cohort, not patients.**\n")
    for w in manifest.get("warnings") or []:
        lines.append(f"**Warning:** {w}\n")
    if manifest.get("status") != "FINISHED":
        lines.append(f"**FAILED** at step `{manifest.get('failed_step')}`: {manifest.get('error', '')}\n")
    if window:
        if window.get("status") == WindowStatus.NO_WINDOW:
            lines.append(f"No exposure window: adjusted p = {window.get('p_value')}.")
        else:
            lo = "open" if window.get("lower") is None else f"{window['lower']:.1f}"
            hi = "open" if window.get("upper") is None else f"{window['upper']:.1f}"
            lines.append(f"Window [{lo}, {hi}) {window['artefact']['unit']}, adjusted p = {window.get('p_value'):.3g}, "
                         f"status {window.get('status')}.")
    lines.append("\nThe reviewer's report is the artefact `report.html`.")
    tags["mlflow.note.content"] = "\n".join(lines)
    return {k: v for k, v in tags.items() if v is not None}


def publish_run(tracker: RunTracker, run_id: str, bundle, *, study=None, model_name: str,
                gates=None) -> PublishResult:
    """Send the run folder to run ``run_id``, register the window if it may be, close the run.

    Parameters
    ----------
    tracker : RunTracker
    run_id : str
        The run opened before the pipeline (status RUNNING).
    bundle : RunBundle
        The run folder; its ``run.json`` says whether every step succeeded.
    study : optuna.Study, optional
        The tuning study; each finished trial becomes a nested run.
    model_name : str
        Registered model name of the window.
    gates : PromotionGates, optional
        The experiment's promotion gates, recorded as model-version tags (``gate.*``) so that
        ``atgwin promote models:/NAME@candidate`` checks them.

    Returns
    -------
    PublishResult

    Raises
    ------
    ValueError
        The run has not ended (``run.json`` says RUNNING), or its ``results.json`` is a run record
        this version cannot read (``ml.experiments.RecordError``, naming the version).
    TrackingError
        The store failed part-way; the run is marked FAILED when it can be, and the run folder
        keeps every result.
    """
    t0 = time.perf_counter()
    manifest = bundle.manifest()
    if manifest.get("status") not in ("FINISHED", "FAILED", "KILLED"):
        raise ValueError(f"{bundle.root}: run.json says {manifest.get('status')!r}; only a run that ended "
                         "(FINISHED, FAILED or KILLED) can be published")
    record = bundle.record()  # RecordError (a ValueError) for a record this version cannot read
    try:
        with quiet():
            return _publish(tracker, run_id, bundle, manifest, record, study, model_name, gates, t0)
    except Exception as exc:  # noqa: BLE001 - report any store failure the same way
        raise TrackingError(f"publishing to {tracker.tracking_uri} failed: {type(exc).__name__}: {exc}") from exc


def _publish(tracker, run_id, bundle, manifest, record, study, model_name, gates, t0) -> PublishResult:
    from ml.report import write_report

    ok = manifest.get("status") == "FINISHED"
    window = record.window or {}
    registered = None
    try:
        tracker.log_params(run_id, manifest.get("params") or {})
        metrics = dict(manifest.get("metrics") or {})
        metrics.update({f"time_{s['name']}_s": s["seconds"] for s in manifest.get("steps", [])})
        tracker.log_metrics(run_id, metrics)
        tags = run_tags(manifest, record)
        tracker.set_tags(run_id, tags)
        if manifest.get("dataset", {}).get("digest"):
            tracker.log_dataset(run_id, manifest["dataset"])
        nested = tracker.log_trials(run_id, study) if study is not None else 0
        tracker.log_folder(run_id, bundle.root)
        registered, note = None, ""
        previous = _registered_from(tracker, run_id, model_name)
        if not ok:
            verb = "was killed" if manifest.get("status") == "KILLED" else "failed"
            note = f"not registered: the run {verb} at step {manifest.get('failed_step')!r}"
        elif not bundle.exists(RunBundle.WINDOW):
            note = "not registered: no window artefact"
        elif window.get("status") == WindowStatus.NO_WINDOW:
            note = (f"not registered: no exposure window (adjusted p = {window.get('p_value'):.3g} is not below "
                    f"alpha)")
        elif previous is not None:
            registered = previous
        else:
            gate_tags = {} if gates is None else {"gate.alpha": gates.alpha, "gate.max_ci_width": gates.max_ci_width,
                                                  "gate.min_events": gates.min_events}
            registered = register_window(tracker, run_id, bundle.path(RunBundle.WINDOW), model_name,
                                         alias=CANDIDATE, tags=gate_tags)
        steps = [s for s in manifest.get("steps", []) if s["name"] != "track"]
        steps.append({"name": "track", "seconds": round(time.perf_counter() - t0, 3), "status": "FINISHED"})
        bundle.update(RunBundle.MANIFEST, registry=registered.to_dict() if registered else {"note": note},
                      steps=steps)
        try:
            write_report(bundle, bundle.path(RunBundle.REPORT))
        except OSError:
            pass  # disk full or read-only: the pipeline's report, if any, stays as it was (complete)
        tracker.log_file(run_id, bundle.path(RunBundle.MANIFEST))
        if bundle.exists(RunBundle.REPORT):
            tracker.log_file(run_id, bundle.path(RunBundle.REPORT))
        if registered:
            tracker.set_tags(run_id, {"atgwin.registered": registered.uri})
        status = manifest["status"]
        tracker.end_run(run_id, status)
    except BaseException as exc:
        try:
            if registered is not None and registered is not previous:  # a failed run registers nothing
                tracker.client.delete_model_version(registered.name, registered.version)
            tracker.end_run(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        except Exception:  # noqa: BLE001 - the store may be gone altogether
            pass
        raise
    return PublishResult(run_id=run_id, status=status, registered=registered, note=note, nested_runs=nested)


def _registered_from(tracker: RunTracker, run_id: str, model_name: str) -> RegisteredWindow | None:
    """The version of ``model_name`` already registered from run ``run_id`` (a publication repeated)."""
    versions = tracker.client.search_model_versions(f"name = '{model_name}' and run_id = '{run_id}'")
    if not versions:
        return None
    v = max(versions, key=lambda v: int(v.version))
    return RegisteredWindow(name=v.name, version=str(v.version), alias=CANDIDATE, uri=f"models:/{v.name}/{v.version}",
                            run_id=run_id)
