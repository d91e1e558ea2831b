"""Faults during ``atgwin run``, each followed by the state it must leave (issue 16, run states).

Kill at each pipeline step (SIGTERM sent by the step itself, in this process; SIGTERM, SIGINT and
SIGKILL from outside, to a separate process), disk full, read-only output folder, two first runs
on a new store at once, a tracking server that does not answer. After each: the MLflow run's
status, the run folder's ``run.json``, what the command announced, what was registered.

The pipeline is made small: a tiny virtual cohort (SIMULATED, ml.sim), the shipped PK model, and
stand-ins for the models / window / explain steps (tests/fault_driver.py); the real steps are
tested in tests/test_run_pipeline.py. The reference for every expected state is the behaviour
promised in ml/cli/_run.py, ml/cli/_publish.py and ml/cli/_runs.py.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ml.cli import main

HERE = Path(__file__).parent
ROOT = HERE.parent

TINY = """\
name = "{name}"
seed = 0
[cohort]
scenario = "urd"
n = 60
seed = 1
[endpoint]
outcomes = ["cmv"]
[window]
permutations = 4
bootstraps = 2
folds = 2
grid_k = 6
[models]
n_trials = 1
tuning_folds = 2
cv_folds = 2
cv_repeats = 1
[features]
pk_model = "shipped"
covariates = ["age_years"]
[poppk]
vpc_sims = 0
[registry]
model_name = "atg-window-faults"
"""

PIPELINE = ["cohort", "poppk", "exposure", "models", "window", "explain", "report"]


def tiny(path: Path, name: str = "faults") -> Path:
    path.write_text(TINY.format(name=name))
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One local store for the module (created once: a new store costs seconds of migrations)."""
    from ml.tracking import RunTracker

    root = tmp_path_factory.mktemp("faults")
    uri = f"sqlite:///{root}/mlflow.db"
    RunTracker(uri).connect()
    return {"root": root, "uri": uri, "toml": tiny(root / "tiny.toml")}


@pytest.fixture
def http_env(monkeypatch):
    """MLflow's HTTP settings as the user left them (unset), restored after the test."""
    from ml.tracking import HTTP_DEFAULTS

    for key in HTTP_DEFAULTS:
        monkeypatch.delenv(key, raising=False)


def atgwin(*args, uri=None, env=None):
    env = {**({"MLFLOW_TRACKING_URI": uri} if uri else {}), **(env or {})}
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, env=env)


def client(uri):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def runs_named(uri, name):
    c = client(uri)
    exps = [e.experiment_id for e in c.search_experiments()]
    return c.search_runs(exps, filter_string=f"attributes.run_name = '{name}'") if exps else []


def the_run(uri, name):
    runs = runs_named(uri, name)
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


def manifest(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


def leftovers(folder: Path) -> list[str]:
    """Temporary files of the atomic writer left behind (there must be none)."""
    return sorted(p.name for p in folder.rglob(".*.tmp*"))


# --------------------------------------------------------------------------- SIGTERM at each step
@pytest.mark.parametrize("step", [*PIPELINE, "track"])
def test_sigterm_at_each_step_ends_the_run_killed_in_mlflow_and_in_run_json(store, tmp_path, monkeypatch, step):
    from tests.fault_driver import install

    install(step, tmp_path / "marker", mode="SIGTERM", setattr=monkeypatch.setattr)
    before = signal.getsignal(signal.SIGTERM)
    name = f"term-{step}"
    result = atgwin("run", store["toml"], "--out-dir", tmp_path / "runs", "--run-name", name, uri=store["uri"])
    assert result.exit_code == 128 + signal.SIGTERM, result.output
    assert "Interrupted by SIGTERM" in result.output

    r = the_run(store["uri"], name)
    assert r.info.status == "KILLED"
    assert r.data.tags["atgwin.status"] == "KILLED" and r.data.tags["atgwin.killed_by"] == "SIGTERM"
    folder = tmp_path / "runs" / name
    m = manifest(folder)
    assert (m["status"], m["failed_step"], m["killed_by"]) == ("KILLED", step, "SIGTERM")
    assert m["run_id"] == r.info.run_id and m["finished_at"]
    if step == "track":  # the pipeline had ended: what it said is kept for atgwin publish
        assert m["before_kill"]["status"] == "FINISHED"
        assert [s["status"] for s in m["steps"]] == ["FINISHED"] * len(PIPELINE)
        assert "atgwin publish" in result.output
    else:
        assert m["steps"][-1] == {**m["steps"][-1], "name": step, "status": "KILLED"}
        assert [s["name"] for s in m["steps"]] == PIPELINE[:PIPELINE.index(step) + 1]
        # the report was not rendered, and nothing announces one
        assert not (folder / "report.html").exists() and "Report:" not in result.output
    assert not client(store["uri"]).search_model_versions(f"run_id = '{r.info.run_id}'")
    assert leftovers(folder) == []
    assert signal.getsignal(signal.SIGTERM) is before  # the command put the handler back


@pytest.mark.parametrize("step", ["models", "track"])
def test_sigint_says_killed_in_run_json_too(store, tmp_path, monkeypatch, step):
    from tests.fault_driver import install

    install(step, tmp_path / "marker", mode="SIGINT", setattr=monkeypatch.setattr)
    name = f"int-{step}"
    result = atgwin("run", store["toml"], "--out-dir", tmp_path / "runs", "--run-name", name, uri=store["uri"])
    assert result.exit_code == 130, result.output
    assert the_run(store["uri"], name).info.status == "KILLED"
    m = manifest(tmp_path / "runs" / name)
    assert (m["status"], m["failed_step"], m["killed_by"]) == ("KILLED", step, "SIGINT")


# ------------------------------------------------------------------- signals from another process
def spawn(tmp_path, uri, step, name, *, how="light", toml=None, marker="marker"):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": uri}
    args = [sys.executable, str(HERE / "fault_driver.py"), step, str(tmp_path / marker), how, "--", "run",
            str(toml or tiny(tmp_path / "tiny.toml")), "--out-dir", str(tmp_path / "runs"), "--run-name", name]
    return subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_marker(proc, path: Path, timeout=120.0) -> None:
    t0 = time.monotonic()
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before the pause: {proc.stdout.read()}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError("the run never reached the pause")
        time.sleep(0.1)


def test_sigterm_from_outside_during_a_real_step_ends_the_run_killed(store, tmp_path):
    proc = spawn(tmp_path, store["uri"], "models", "outside", how="real", toml=store["toml"])
    wait_marker(proc, tmp_path / "marker")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert "Traceback" not in out and "Interrupted by SIGTERM" in out
    r = the_run(store["uri"], "outside")
    assert r.info.status == "KILLED" and r.data.tags["atgwin.killed_by"] == "SIGTERM"
    m = manifest(tmp_path / "runs" / "outside")
    assert (m["status"], m["failed_step"], m["killed_by"]) == ("KILLED", "models", "SIGTERM")
    # exposure ran for real before the kill; its results stayed
    assert m["steps"][2] == {**m["steps"][2], "name": "exposure", "status": "FINISHED"}


def test_sigkill_leaves_running_runs_that_the_next_run_marks_killed_and_publish_completes(store, tmp_path,
                                                                                         monkeypatch):
    from tests.fault_driver import install

    # two processes killed outright: one in the middle of the pipeline, one while publishing
    victims = {"mid-pipeline": spawn(tmp_path, store["uri"], "window", "mid-pipeline", marker="m1"),
               "half-published": spawn(tmp_path, store["uri"], "track", "half-published", marker="m2")}
    # both reach their step before either is killed: a run that starts after the other's death repairs
    # it at once (as it should), which would leave nothing RUNNING to look at
    for proc, marker in zip(victims.values(), ("m1", "m2")):
        wait_marker(proc, tmp_path / marker)
    for proc in victims.values():
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
    runs = {name: the_run(store["uri"], name) for name in victims}
    assert {r.info.status for r in runs.values()} == {"RUNNING"}  # what SIGKILL leaves
    mid, half = tmp_path / "runs" / "mid-pipeline", tmp_path / "runs" / "half-published"
    assert manifest(mid)["status"] == "RUNNING" and manifest(half)["status"] == "FINISHED"
    c = client(store["uri"])
    run_id = runs["half-published"].info.run_id
    # parameters, metrics and tags were sent; the artefacts were not
    assert runs["half-published"].data.params and "report.html" not in [f.path for f in c.list_artifacts(run_id)]

    dry = atgwin("runs", "repair", "--dry-run", "--tracking-uri", store["uri"])
    assert dry.exit_code == 0, dry.output
    for name, r in runs.items():
        assert f"would mark KILLED: run {r.info.run_id} ({name})" in dry.output
        assert the_run(store["uri"], name).info.status == "RUNNING"

    # the next atgwin run on the same store finds both and marks them
    install(None, setattr=monkeypatch.setattr)
    nxt = atgwin("run", store["toml"], "--out-dir", tmp_path / "runs", "--run-name", "next", uri=store["uri"])
    assert nxt.exit_code == 0, nxt.output
    for name, r in runs.items():
        assert f"[0] repaired  run {r.info.run_id} ({name})" in nxt.output
        r = the_run(store["uri"], name)
        assert r.info.status == "KILLED" and r.data.tags["atgwin.killed_by"] == "SIGKILL or crash"
        assert f"process {victims[name].pid}" in r.data.tags["atgwin.repaired"]
    m = manifest(mid)
    assert (m["status"], m["failed_step"], m["killed_by"]) == ("KILLED", "window", "SIGKILL or crash")
    m = manifest(half)
    assert (m["status"], m["failed_step"], m["before_kill"]["status"]) == ("KILLED", "track", "FINISHED")

    # the half-published run, sent again from its folder: every artefact, the pipeline's own status
    pub = atgwin("publish", half)
    assert pub.exit_code == 0, pub.output
    assert f"to run {run_id}" in pub.output and "run FINISHED" in pub.output
    r = the_run(store["uri"], "half-published")
    assert r.info.status == "FINISHED" and "atgwin.republished" in r.data.tags
    assert "atgwin.killed_by" not in r.data.tags and "atgwin.repaired" in r.data.tags  # the history stays
    assert {"report.html", "run.json", "results.json"} <= {f.path for f in c.list_artifacts(run_id)}
    m = manifest(half)
    assert m["status"] == "FINISHED" and m["republished"]["killed_by"] == "SIGKILL or crash"
    assert atgwin("publish", half).exit_code == 0  # twice is harmless
    assert the_run(store["uri"], "half-published").info.status == "FINISHED"
    # the one killed mid-pipeline is sent as it is: KILLED, nothing registered
    pub = atgwin("publish", mid)
    assert pub.exit_code == 0 and "run KILLED" in pub.output and "not registered: the run was killed" in pub.output
    assert the_run(store["uri"], "mid-pipeline").info.status == "KILLED"


def test_runs_repair_marks_dead_processes_and_their_trials_and_lists_what_it_cannot_check(store, tmp_path):
    from ml.tracking import RunTracker, process_tags

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a process id that existed and is gone
    tracker = RunTracker(store["uri"])
    folder = tmp_path / "runs" / "orphan"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"status": "RUNNING", "steps": [{"name": "cohort",
                                                                                  "status": "FINISHED"}]}))
    tags = {**process_tags(folder), "atgwin.pid": str(dead.pid), "atgwin.pid_start": ""}
    orphan = tracker.start_run("repair-test", "orphan", tags=tags)
    exp = client(store["uri"]).get_run(orphan).info.experiment_id
    trial = client(store["uri"]).create_run(exp, run_name="trial", tags={"mlflow.parentRunId": orphan}).info.run_id
    alive = tracker.start_run("repair-test", "alive", tags=process_tags(tmp_path))  # this process: alive
    elsewhere = tracker.start_run("repair-test", "elsewhere", tags={**process_tags(), "atgwin.host": "other-host"})

    res = atgwin("runs", "repair", "--tracking-uri", store["uri"])
    assert res.exit_code == 0, res.output
    assert f"marked KILLED: run {orphan} (orphan) and 1 nested run(s)" in res.output
    assert f"left RUNNING (cannot check from this host): run {elsewhere} (elsewhere): started on host other-host" \
        in res.output
    get = client(store["uri"]).get_run
    assert (get(orphan).info.status, get(trial).info.status) == ("KILLED", "KILLED")
    assert get(alive).info.status == get(elsewhere).info.status == "RUNNING"
    m = manifest(folder)
    assert (m["status"], m["failed_step"]) == ("KILLED", "poppk")  # the first step not done

    res = atgwin("runs", "repair", "--tracking-uri", store["uri"], "--stale-hours", "0.000001")
    assert f"marked KILLED: run {elsewhere} (elsewhere)" in res.output
    assert get(elsewhere).info.status == "KILLED" and get(alive).info.status == "RUNNING"
    tracker.end_run(alive, "FINISHED")


def test_publish_sends_a_folder_made_without_a_store_and_refuses_one_still_running(store, tmp_path, monkeypatch):
    from tests.fault_driver import install

    install(None, setattr=monkeypatch.setattr)
    res = atgwin("run", store["toml"], "--out-dir", tmp_path / "runs", "--run-name", "offline-first",
                 "--no-tracking")
    assert res.exit_code == 0, res.output
    folder = tmp_path / "runs" / "offline-first"
    assert manifest(folder)["run_id"] is None
    pub = atgwin("publish", folder, "--tracking-uri", store["uri"])
    assert pub.exit_code == 0, pub.output
    r = the_run(store["uri"], "offline-first")
    assert r.info.status == "FINISHED" and manifest(folder)["run_id"] == r.info.run_id

    running = tmp_path / "running"
    running.mkdir()
    (running / "run.json").write_text(json.dumps({"status": "RUNNING"}))
    res = atgwin("publish", running, "--tracking-uri", store["uri"])
    assert res.exit_code == 2 and "atgwin runs repair" in res.output
    res = atgwin("publish", tmp_path, "--tracking-uri", store["uri"])
    assert res.exit_code == 2 and "not a run folder" in res.output


# ----------------------------------------------------------------------------------- disk, folder
def test_disk_full_at_the_report_ends_failed_and_announces_no_report(store, tmp_path, monkeypatch):
    import ml._atomic
    from tests.fault_driver import install

    install(None, setattr=monkeypatch.setattr)
    fsync = ml._atomic._fsync

    def full(path):  # the disk fills while report.html is written (ENOSPC surfaces at fsync or write)
        if ".report.html." in path.name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        fsync(path)

    monkeypatch.setattr(ml._atomic, "_fsync", full)
    res = atgwin("run", store["toml"], "--out-dir", tmp_path / "runs", "--run-name", "full", uri=store["uri"])
    assert res.exit_code == 1, res.output
    folder = tmp_path / "runs" / "full"
    assert not (folder / "report.html").exists() and "Report:" not in res.output
    assert leftovers(folder) == []
    m = manifest(folder)
    assert (m["status"], m["failed_step"]) == ("FAILED", "report") and "No space left" in m["error"]
    r = the_run(store["uri"], "full")
    assert r.info.status == "FAILED" and r.data.tags["atgwin.failed_step"] == "report"
    assert not client(store["uri"]).search_model_versions(f"run_id = '{r.info.run_id}'")


def test_disk_full_from_the_start_is_refused_before_mlflow_and_from_the_first_write_ends_failed(store, tmp_path,
                                                                                              monkeypatch):
    import ml._atomic
    from tests.fault_driver import install

    install(None, setattr=monkeypatch.setattr)
    fsync = ml._atomic._fsync
    room_for = set()  # what still fits: nothing, or only the folder check and the reserve

    def full(path):
        if not any(name in path.name for name in room_for):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        fsync(path)

    monkeypatch.setattr(ml._atomic, "_fsync", full)
    res = atgwin("run", store["toml"], "--out-dir", tmp_path / "runs", "--run-name", "full-before", uri=store["uri"])
    assert res.exit_code == 2 and "No space left on device" in res.output, res.output
    assert runs_named(store["uri"], "full-before") == []  # refused before anything was opened

    room_for.update({"atgwin-write-test", "atgwin-reserve"})
    res = atgwin("run", store["toml"], "--out-dir", tmp_path / "runs", "--run-name", "full-early", uri=store["uri"])
    assert res.exit_code == 1, res.output
    assert "No space left on device" in res.output and "Traceback" not in res.output
    assert the_run(store["uri"], "full-early").info.status == "FAILED"
    folder = tmp_path / "runs" / "full-early"
    assert not (folder / "run.json").exists() and leftovers(folder) == []  # nothing half-written
    assert not (folder / ".atgwin-reserve").exists()


def mount_tmpfs(path: Path, size: int) -> bool:
    path.mkdir(parents=True)
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def test_a_real_full_disk_at_any_point_ends_failed_and_says_so_in_run_json(store, tmp_path, monkeypatch):
    """A small tmpfs (root only), so that the disk fills at different points of the run."""
    from ml.cli._run import RESERVE_BYTES
    from tests.fault_driver import install

    install(None, setattr=monkeypatch.setattr)
    failed_at = set()
    for k in (1, 3, 4, 5, 8):  # pages of 4 KiB beyond the reserve the run keeps while it runs
        disk = tmp_path / f"disk{k}"
        if not mount_tmpfs(disk, RESERVE_BYTES + 8192 + 4096 * k):
            pytest.skip("a small tmpfs needs root and mount; the patched-writer tests above cover disk full")
        try:
            name = f"tmpfs-{k}"
            res = atgwin("run", store["toml"], "--out-dir", disk, "--run-name", name, uri=store["uri"])
            folder = disk / name
            m = manifest(folder)  # always complete JSON
            assert leftovers(folder) == [] and not (folder / ".atgwin-reserve").exists()
            if res.exit_code == 0:
                assert m["status"] == "FINISHED" and (folder / "report.html").read_text().rstrip().endswith("</html>")
                continue
            assert res.exit_code == 1, res.output
            assert "No space left on device" in res.output and "Report:" not in res.output, res.output
            assert not (folder / "report.html").exists()
            assert m["status"] == "FAILED" and m["failed_step"] and "No space left" in m["error"], m
            assert the_run(store["uri"], name).info.status == "FAILED"
            failed_at.add(m["failed_step"])
        finally:
            subprocess.run(["umount", str(disk)], check=True)
    assert len(failed_at) >= 2, failed_at  # the disk filled at two different points at least


def read_only_folder(path: Path):
    """A folder nobody can write: permissions, or (as root, who ignores them) a read-only tmpfs."""
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        return lambda: path.chmod(0o755)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"running as root and cannot mount a read-only tmpfs: {done.stderr.decode().strip()}")
    return lambda: subprocess.run(["umount", str(path)], check=True)


def test_a_read_only_output_folder_is_a_clear_error_and_opens_no_run(store, tmp_path):
    ro = tmp_path / "ro"
    undo = read_only_folder(ro)
    try:
        res = atgwin("run", store["toml"], "--out-dir", ro, "--run-name", "read-only", uri=store["uri"])
    finally:
        undo()
    assert res.exit_code == 2, res.output
    # refused before any work: the --out-dir check of every command (ml.cli._common.prepare_out) names the
    # folder; the run folder's own write test (ml/cli/_run.py) would name the file system's reason
    assert (f"--out-dir {ro}: the folder {ro} is not writable" in res.output
            or (f"cannot write the run folder {ro / 'read-only'}" in res.output
                and ("Read-only file system" in res.output or "Permission denied" in res.output)))
    assert "Traceback" not in res.output
    assert runs_named(store["uri"], "read-only") == []  # no orphan RUNNING run


# ------------------------------------------------------------------------------------- the store
def test_two_first_runs_on_a_new_store_both_succeed(tmp_path):
    uri = f"sqlite:///{tmp_path}/new/mlflow.db"
    toml = tiny(tmp_path / "tiny.toml", name="together")
    procs = [spawn(tmp_path, uri, "none", f"together-{k}", toml=toml, marker=f"m{k}") for k in (1, 2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out
        assert "already exists" not in out and "Traceback" not in out
    for k in (1, 2):
        assert the_run(uri, f"together-{k}").info.status == "FINISHED"


# The message MLflow 3.10 raised in CI (lowest job) when two first runs logged one cohort at the same moment.
_CONFLICT = ("(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, datasets.name, "
             "datasets.digest")


def test_a_dataset_inserted_by_another_run_meanwhile_is_logged_again_not_failed(tmp_path):
    from mlflow.exceptions import MlflowException

    from ml.tracking._runs import _log_input_once

    calls = []

    def log():  # the store's insert loses the race once, then finds the other run's row
        calls.append(1)
        if len(calls) == 1:
            raise MlflowException(_CONFLICT)

    _log_input_once(log, f"sqlite:///{tmp_path}/mlflow.db")
    assert len(calls) == 2


@pytest.mark.parametrize("message, expected_calls", [(_CONFLICT, 3), ("database is unreachable", 1)])
def test_only_a_uniqueness_conflict_is_retried_and_never_forever(tmp_path, message, expected_calls):
    from mlflow.exceptions import MlflowException

    from ml.tracking._runs import _log_input_once

    calls = []

    def log():
        calls.append(1)
        raise MlflowException(message)

    with pytest.raises(MlflowException, match=re.escape(message[:20])):
        _log_input_once(log, "http://127.0.0.1:1", attempts=3)
    assert len(calls) == expected_calls


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    held, stop = [], threading.Event()

    def accept():
        s.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(s.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield s.getsockname()[1]
    stop.set()
    t.join()
    for c in held:
        c.close()
    s.close()


@pytest.mark.parametrize("server", ["closed port", "silent"])
def test_an_unreachable_server_is_reported_within_15_s_and_the_results_are_kept(tmp_path, monkeypatch, http_env,
                                                                                server, request):
    from tests.fault_driver import install

    install(None, setattr=monkeypatch.setattr)
    port = closed_port() if server == "closed port" else request.getfixturevalue("silent_server")
    t0 = time.monotonic()
    res = atgwin("run", tiny(tmp_path / "t.toml"), "--out-dir", tmp_path / "runs", "--run-name", "offline",
                 uri=f"http://127.0.0.1:{port}")
    elapsed = time.monotonic() - t0
    assert res.exit_code == 3, res.output
    assert f"the tracking server http://127.0.0.1:{port} does not answer" in res.output
    assert "atgwin publish" in res.output and "every result is in" in res.output
    folder = tmp_path / "runs" / "offline"
    assert (folder / "report.html").is_file() and manifest(folder)["status"] == "FINISHED"
    # the whole command (the pipeline included) within 15 s of giving up on the server
    assert elapsed < 15 + sum(s["seconds"] for s in manifest(folder)["steps"]), elapsed
