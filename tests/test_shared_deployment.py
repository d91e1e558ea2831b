"""Shared deployment: a real PostgreSQL, an MLflow tracking server on it, and ``atgwin`` through HTTP only.

The set-up is the one docs/deployment.md describes, on loopback and in a throw-away folder:
``initdb`` / ``pg_ctl`` (Debian's ``postgresql`` package; run as the ``postgres`` user when the tests
run as root), a database ``mlflow``, then ``python -m mlflow server --backend-store-uri
postgresql+psycopg2://... --artifacts-destination DIR --serve-artifacts``. Every ``atgwin`` command
below is given nothing but ``MLFLOW_TRACKING_URI=http://127.0.0.1:PORT``: ``run`` (a small
SIMULATED experiment), ``promote`` of the registered candidate, ``dose --window
models:/...@validated``, ``report RUN_ID``, and the dosing pyfunc registered by ``dose --register``
loaded back from the server. The fixtures stop what they started (the server's whole process
group, then PostgreSQL) even when the test fails.

Without PostgreSQL's server binaries the module is skipped with the reason; ``.ci/run`` installs
them, so CI never skips it.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from ml.cli import main

pytestmark = pytest.mark.server

#: the small experiment of the test (seed 112: a cohort whose window the search finds with both sides
#: evidenced, README "A first example"); reduced settings keep the run short
EXPERIMENT = """\
name = "shared_urd"
seed = 0
[cohort]
scenario = "urd"
n = 324
seed = 112
[window]
permutations = 49
bootstraps = 10
folds = 3
[models]
n_trials = 2
tuning_folds = 2
cv_folds = 2
cv_repeats = 1
tuning_storage = "{optuna_url}"
tuning_workers = 2
[features]
pk_model = "shipped"
[promotion]
alpha = 0.05
max_ci_width = 1000
min_events = 7
[registry]
model_name = "atg-window-shared"
"""


def pg_bin() -> Path | None:
    """Folder of ``initdb``, ``pg_ctl`` and ``createdb``: on PATH, else Debian's newest ``/usr/lib/postgresql/*/bin``."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        folder = Path(found).resolve().parent  # Debian links some of them into /usr/local/bin, not createdb
        if (folder / "createdb").is_file():
            return folder
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True):
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its binaries as the ``postgres`` user."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _check(cmd: list[str], what: str, **kw) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stdout}\n{done.stderr}")


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server on a free loopback port with a database ``mlflow``; stopped and removed afterwards."""
    bin_dir = pg_bin()
    if bin_dir is None and os.environ.get("CI") == "true":
        pytest.fail("CI must run the shared-deployment test: .ci/run installs postgresql, but initdb/pg_ctl are missing")
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql "
                    "(.ci/run installs it)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as the postgres user")
    root = Path(tempfile.mkdtemp(prefix="atgwin-pg-"))  # under /tmp: reachable by the postgres user
    data, password, port = root / "data", "atgwin-test-password", free_port()
    (root / "pw").write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(root / "pw", "postgres")
    started = False
    try:
        _check([*_as_owner(), str(bin_dir / "initdb"), "-D", str(data), "-U", "atgwin", f"--pwfile={root / 'pw'}",
                "--auth=scram-sha-256", "-E", "UTF8", "--no-instructions"], "initdb")
        started = True
        _check([*_as_owner(), str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "postgres.log"), "-w",
                "-t", "60", "-o", f"-h 127.0.0.1 -p {port} -k {root}", "start"], "pg_ctl start")
        for db in ("mlflow", "optuna"):
            _check([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "atgwin", db],
                   "createdb", env={**os.environ, "PGPASSWORD": password})
        # no password in the URLs: libpq reads PGPASSWORD (docs/deployment.md)
        yield {"url": f"postgresql+psycopg2://atgwin@127.0.0.1:{port}/mlflow",
               "optuna_url": f"postgresql+psycopg2://atgwin@127.0.0.1:{port}/optuna", "port": port,
               "password": password}
    finally:
        if started:
            subprocess.run([*_as_owner(), str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def server(postgres, tmp_path_factory):
    """``mlflow server`` on PostgreSQL with served artefacts, on a free loopback port; its process group is
    stopped afterwards (SIGTERM, then SIGKILL after 15 s)."""
    root = tmp_path_factory.mktemp("mlflow-server")
    artifacts, port = root / "artifacts", free_port()
    uri = f"http://127.0.0.1:{port}"
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed in the finaliser
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "PGPASSWORD": postgres["password"]}  # no job-runner process: nothing to wait for
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", postgres["url"],
         "--artifacts-destination", str(artifacts), "--serve-artifacts", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=root)
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited ({proc.returncode}):\n{(root / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:  # noqa: S310 - loopback
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not answer in 180 s:\n{(root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield {"uri": uri, "artifacts": artifacts, "log": root / "server.log", "db": postgres}
    finally:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                # the group may hold uvicorn's worker still: make sure it is gone too
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


def atgwin(server, *args):
    """One ``atgwin`` command, given only the server's URI (no local store)."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False,
                              env={"MLFLOW_TRACKING_URI": server["uri"], "MLFLOW_REGISTRY_URI": None,
                                   "PGPASSWORD": server["db"]["password"]})


def _pg_rows(postgres, sql: str, *params, db: str = "mlflow") -> list[tuple]:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=postgres["port"], user="atgwin", password=postgres["password"],
                            dbname=db)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def test_run_promote_dose_report_and_pyfunc_through_a_postgres_backed_server(server, tmp_path, monkeypatch):
    import mlflow
    import pandas as pd

    from ml.tracking import EXAMPLE_PATIENT
    from ml.tracking._uri import fluent_uri

    monkeypatch.chdir(tmp_path)  # nothing may be written to a local store here
    toml = tmp_path / "shared.toml"
    toml.write_text(EXPERIMENT.format(optuna_url=server["db"]["optuna_url"]))

    # run: tracked in the server, the window registered there with alias candidate
    result = atgwin(server, "run", toml, "--out-dir", tmp_path / "runs", "--run-name", "centre-a")
    assert result.exit_code == 0, result.output
    assert f"in {server['uri']}" in result.output
    assert "registered models:/atg-window-shared/1 with alias 'candidate'" in result.output
    assert "View run" not in result.output  # MLflow's per-run links stay out of atgwin's output
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlartifacts").exists()

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=server["uri"], registry_uri=server["uri"])
    (run,) = client.search_runs([client.get_experiment_by_name("shared_urd").experiment_id],
                                filter_string="attributes.run_name = 'centre-a'")
    assert run.info.status == "FINISHED" and run.info.artifact_uri.startswith("mlflow-artifacts:")
    # the run is a row of PostgreSQL, its artefacts files in the server's artefact store
    assert _pg_rows(server["db"], "SELECT status FROM runs WHERE run_uuid = %s", run.info.run_id) == [("FINISHED",)]
    assert list(server["artifacts"].rglob("report.html")) and list(server["artifacts"].rglob("window.json"))
    # tuning: one study per side in the optuna database, two worker processes each, recorded in the run
    assert run.data.params["models.tuning_storage"] == server["db"]["optuna_url"]
    assert run.data.params["models.tuning_workers"] == "2"
    assert run.data.metrics["floor_tuning_n_workers"] == run.data.metrics["ceiling_tuning_n_workers"] == 2.0
    studies = sorted(n for (n,) in _pg_rows(server["db"], "SELECT study_name FROM studies", db="optuna"))
    assert [n.rsplit("-", 1)[0] for n in studies] == ["shared_urd-xgb-ceiling", "shared_urd-xgb-floor"], studies
    results = json.loads((tmp_path / "runs" / "centre-a" / "results.json").read_text())
    for side, fit in results["models"]["fits"].items():
        info = fit["tuning_storage"]
        assert info["storage"] == server["db"]["optuna_url"] and info["n_workers"] == 2
        assert info["study_name"] in studies and info["study_name"].startswith(f"shared_urd-xgb-{side}")

    # promote the registered candidate: a new version with alias validated
    validated = tmp_path / "validated.json"
    result = atgwin(server, "promote", "models:/atg-window-shared@candidate", "--by", "Dr A",
                    "--reason", "shared-server test", "--out", validated)
    assert result.exit_code == 0, result.output
    version = client.get_model_version_by_alias("atg-window-shared", "validated")
    assert version.tags["promoted_by"] == "Dr A" and version.version == "2"

    # dose through the alias: the window and its PK model come from the server
    from test_dosing_support import virtual_patients

    patients, _ = virtual_patients(2, seed=4)
    (tmp_path / "patients.json").write_text(json.dumps(patients))
    result = atgwin(server, "dose", "--window", "models:/atg-window-shared@validated", "--patient",
                    tmp_path / "patients.json", "--out", tmp_path / "doses.json", "--draws", "16")
    assert result.exit_code == 0, result.output
    recs = json.loads((tmp_path / "doses.json").read_text())["recommendations"]
    assert len(recs) == 2 and all(r["doses"] for r in recs)

    # the reviewer's report from the run's artefacts on the server
    result = atgwin(server, "report", run.info.run_id, "--out", tmp_path / "report.html")
    assert result.exit_code == 0, result.output
    assert run.info.run_id in (tmp_path / "report.html").read_text()

    # the dosing pyfunc: registered in the server, loaded back from it, recommends for the request example
    result = atgwin(server, "dose", "--window", validated, "--register", "--draws", "16")
    assert result.exit_code == 0, result.output
    (dosing,) = client.search_model_versions("name = 'atg-dosing'")
    with fluent_uri(server["uri"]):
        model = mlflow.pyfunc.load_model(f"models:/atg-dosing/{dosing.version}")
    answer = model.predict(pd.DataFrame([EXAMPLE_PATIENT]))
    assert "recommended" in str(answer), answer
