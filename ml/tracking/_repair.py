"""Runs left RUNNING by a process that died without closing them (SIGKILL, out of memory, power loss).

``atgwin run`` tags its MLflow run with the process that runs it (:func:`process_tags`: host,
process id, the process's start time, the run folder). A run still RUNNING whose process is gone
from this host (or whose process id now belongs to a younger process) cannot finish any more:
:func:`repair_runs` marks it ``KILLED``, with a tag saying why (``atgwin.repaired``), marks its
nested Optuna trial runs the same way, and writes the same state into its run folder's
``run.json`` (``status: KILLED``) when the folder is still there. Runs started on another host (or
without these tags) cannot be checked from here; they are listed, and marked only when they
started more than ``stale_hours`` ago and the caller asked for that.

A run folder whose pipeline had ended before the kill (killed while publishing) keeps what the
pipeline said in ``run.json`` under ``before_kill``, so that ``atgwin publish RUN_DIR`` can send it
again and close the run with the pipeline's own status.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["RepairReport", "RepairedRun", "mark_folder_killed", "process_tags", "repair_runs"]

TAG_PID, TAG_HOST, TAG_START, TAG_DIR = "atgwin.pid", "atgwin.host", "atgwin.pid_start", "atgwin.run_dir"


def _start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux ``/proc``), else ``""``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # the command name (field 2) may hold spaces and parentheses: split after its closing one
    return stat.rsplit(")", 1)[1].split()[19]


def process_tags(run_dir: str | Path | None = None) -> dict[str, str]:
    """Tags naming this process, for the run it opens: host, pid, process start, run folder."""
    tags = {TAG_PID: str(os.getpid()), TAG_HOST: socket.gethostname(), TAG_START: _start_ticks(os.getpid())}
    if run_dir is not None:
        tags[TAG_DIR] = str(Path(run_dir).resolve())
    return tags


def _alive(pid: int, start: str) -> bool:
    """Whether process ``pid`` (started at ``start`` ticks, when known) still exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if start:
        now = _start_ticks(pid)
        if now and now != start:
            return False  # the id was reused by a younger process
    return True


@dataclass(frozen=True)
class RepairedRun:
    """A run found RUNNING without a live process, and what was done.

    Attributes
    ----------
    run_id, run_name, experiment_id : str
    reason : str
        Why it cannot be running (the ``atgwin.repaired`` tag).
    run_dir : str or None
        Its run folder (``run.json`` updated when it exists).
    nested : int
        Nested (Optuna trial) runs marked with it.
    marked : bool
        False in a dry run.
    """

    run_id: str
    run_name: str
    experiment_id: str
    reason: str
    run_dir: str | None
    nested: int
    marked: bool


@dataclass(frozen=True)
class RepairReport:
    """Result of :func:`repair_runs`.

    Attributes
    ----------
    repaired : tuple of RepairedRun
    unchecked : tuple of (run_id, run_name, why) tuples
        RUNNING runs whose process cannot be checked from this host; left as they are.
    """

    repaired: tuple[RepairedRun, ...] = field(default_factory=tuple)
    unchecked: tuple[tuple[str, str, str], ...] = field(default_factory=tuple)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def mark_folder_killed(run_dir: str | Path, how: str, *, step: str | None = None) -> bool:
    """Write ``status: KILLED`` into a run folder's ``run.json`` (no-op if absent or already KILLED).

    What the pipeline had recorded (status, failed step, error) is kept under ``before_kill``
    when the pipeline had ended; ``atgwin publish`` restores it.

    Parameters
    ----------
    run_dir : path-like
    how : str
        What ended the process (``SIGTERM``, ``SIGKILL or crash``, ...).
    step : str, optional
        The step that was running; default: the first step not recorded as done (``track`` after
        the pipeline ended).

    Returns
    -------
    bool
        Whether ``run.json`` was changed.
    """
    from ml.record import RunBundle

    bundle = RunBundle(run_dir)
    if not bundle.exists(RunBundle.MANIFEST):
        return False
    m = bundle.manifest()
    if m.get("status") == "KILLED":
        return False
    # the pipeline has ended once it wrote its final status with ``finished_at`` (after the report)
    ended = m.get("status") in ("FINISHED", "FAILED") and bool(m.get("finished_at"))
    if step is None:
        step = "track" if ended else _running_step(m)
    fields = {"status": "KILLED", "failed_step": step, "killed_by": how,
              "error": f"interrupted by {how} during step {step!r}", "finished_at": _now()}
    if ended:
        fields["before_kill"] = {k: m.get(k) for k in ("status", "failed_step", "error", "finished_at")}
    bundle.update(RunBundle.MANIFEST, **fields)
    return True


def _running_step(manifest: dict) -> str:
    done = [s.get("name") for s in manifest.get("steps") or [] if s.get("status") == "FINISHED"]
    order = ["cohort", "poppk", "exposure", "models", "window", "explain", "transport", "report"]
    left = [s for s in order if s not in done]
    return left[0] if left else "track"


def repair_runs(tracker, *, dry_run: bool = False, stale_hours: float | None = None) -> RepairReport:
    """Find RUNNING runs whose process is gone and mark them KILLED.

    Parameters
    ----------
    tracker : RunTracker
    dry_run : bool
        Only report.
    stale_hours : float, optional
        Also mark runs that cannot be checked from this host (another host, or no process tags)
        when they started more than this many hours ago.

    Returns
    -------
    RepairReport
    """
    from mlflow.entities import ViewType

    client = tracker.client
    host = socket.gethostname()
    exps = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    if not exps:
        return RepairReport()
    running = []
    token = None
    while True:  # every RUNNING run, page by page
        page = client.search_runs(exps, filter_string="attributes.status = 'RUNNING'",
                                  run_view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token)
        running.extend(page)
        token = page.token
        if not token:
            break
    parents = [r for r in running if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in running if "mlflow.parentRunId" in r.data.tags]
    repaired, unchecked = [], []
    now_ms = time.time() * 1000
    for run in parents:
        tags = run.data.tags
        pid, run_host = tags.get(TAG_PID), tags.get(TAG_HOST)
        name = run.info.run_name or ""
        if pid and run_host == host:
            if _alive(int(pid), tags.get(TAG_START, "")):
                continue
            reason = (f"process {pid} on {host} ended without closing the run (SIGKILL, out of memory or a crash); "
                      f"marked KILLED by atgwin runs repair at {_now()}")
        else:
            why = f"started on host {run_host}" if run_host else "no process tags (not started by this atgwin)"
            age_h = (now_ms - (run.info.start_time or now_ms)) / 3.6e6
            if stale_hours is None or age_h < stale_hours:
                unchecked.append((run.info.run_id, name, f"{why}; running for {age_h:.1f} h"))
                continue
            reason = (f"{why}; still RUNNING {age_h:.1f} h after it started (more than {stale_hours:g} h); marked "
                      f"KILLED by atgwin runs repair at {_now()}")
        kids = [c for c in children if c.data.tags.get("mlflow.parentRunId") == run.info.run_id]
        run_dir = tags.get(TAG_DIR)
        if not dry_run:
            for kid in kids:
                tracker.end_run(kid.info.run_id, "KILLED")
            tracker.set_tags(run.info.run_id, {"atgwin.status": "KILLED", "atgwin.killed_by": "SIGKILL or crash",
                                               "atgwin.repaired": reason})
            tracker.end_run(run.info.run_id, "KILLED")
            if run_dir:
                try:
                    mark_folder_killed(run_dir, "SIGKILL or crash")
                except OSError:
                    pass  # the folder is gone or read-only: the store says it
        repaired.append(RepairedRun(run_id=run.info.run_id, run_name=name, experiment_id=run.info.experiment_id,
                                    reason=reason, run_dir=run_dir, nested=len(kids), marked=not dry_run))
    return RepairReport(repaired=tuple(repaired), unchecked=tuple(unchecked))
