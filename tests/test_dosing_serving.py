"""The engine as an MLflow pyfunc: logged with its window and population model, registered as
``atg-dosing``, loaded back, and served over REST by ``mlflow models serve`` (loopback only, a free
port, bounded wait, the server always killed).

Everything that needs a tracking store runs in ONE test on one temporary SQLite store: creating a
store costs seconds, and under ``pytest -n 2`` a module fixture would be built once per worker.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from ml.dosing import (
    DoseRecommendation, DosingEngine, DosingRefused, LaplaceImportance, PatientData, WindowOverride, load_window,
)
from test_dosing_support import virtual_patients, write_window

mlflow = pytest.importorskip("mlflow")
from ml.dosing.serving import DosingPyfunc, load_registered_window, log_dosing_model, write_artifacts  # noqa: E402

PATIENTS, _ = virtual_patients(3, seed=9)


def test_register_read_and_serve(tmp_path, monkeypatch):
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):  # restored after the test
        monkeypatch.delenv(key, raising=False)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    info = log_dosing_model(write_window(tmp_path / "window.json"), n_samples=64, tracking_uri=uri)
    registry = (uri, info, tmp_path)
    _registered_model_and_its_window(registry)
    _windows_registered_by_ml_tracking_are_read_and_gated(registry)
    _cli_registers_and_doses_from_the_registry(registry, tmp_path)
    _rest_recommendation_from_mlflow_models_serve(registry)


def _registered_model_and_its_window(registry):
    uri, info, _ = registry
    assert info.registered_model_version == 1
    w = load_registered_window("models:/atg-dosing/1", tracking_uri=uri)
    assert (w.lower, w.upper, w.status, w.source) == (100.0, 148.5, "validated", "models:/atg-dosing/1")
    with pytest.raises(DosingRefused, match="cannot read window models:/nothing/1"):
        load_registered_window("models:/nothing/1", tracking_uri=uri)


def _cli_registers_and_doses_from_the_registry(registry, tmp_path):
    from click.testing import CliRunner

    from ml.cli import main

    uri, _, tmp = registry
    runner = CliRunner(env={"MLFLOW_TRACKING_URI": uri})
    res = runner.invoke(main, ["dose", "--window", str(tmp / "window.json"), "--register", "--draws", "16"])
    assert res.exit_code == 0, res.output
    assert "registered atg-dosing version 2" in res.output
    patient = tmp_path / "patient.json"
    patient.write_text(json.dumps(PATIENTS[0]))
    res = runner.invoke(main, ["dose", "--window", "models:/atg-dosing/2", "--patient", str(patient), "--draws", "16"])
    assert res.exit_code == 0, res.output
    assert "window [100.0, 148.5) UE*day/mL, target 124.0, status validated" in res.output
    res = runner.invoke(main, ["dose", "--window", "models:/atg-dosing/9", "--patient", str(patient)])
    assert res.exit_code == 1 and "refused: cannot read window models:/atg-dosing/9" in res.output


def _windows_registered_by_ml_tracking_are_read_and_gated(registry):
    """Interop with the window registry (ml.tracking): one window JSON per version, its status decides."""
    from ml.tracking import RunTracker, register_window

    uri, _, tmp = registry
    tracker = RunTracker(uri)
    run_id = tracker.start_run("atg-window-test", "window")
    register_window(tracker, run_id, write_window(tmp / "v.json"), "atg-window-test", alias="validated")
    register_window(tracker, run_id, write_window(tmp / "c.json", status="candidate"), "atg-window-test",
                    alias="candidate")
    tracker.end_run(run_id, "FINISHED")
    validated = load_registered_window("models:/atg-window-test@validated", tracking_uri=uri)
    candidate = load_registered_window("models:/atg-window-test@candidate", tracking_uri=uri)
    assert (validated.status, candidate.status) == ("validated", "candidate")
    engine = DosingEngine(posterior=LaplaceImportance(16))
    assert engine.recommend(PatientData.from_dict(PATIENTS[0]), validated).window.source == \
        "models:/atg-window-test@validated"
    with pytest.raises(DosingRefused, match="window status is 'candidate', not 'validated'"):
        engine.recommend(PatientData.from_dict(PATIENTS[0]), candidate)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rest_recommendation_from_mlflow_models_serve(registry):
    uri, _, tmp = registry
    port = _free_port()
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, MLFLOW_REGISTRY_URI=uri,
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    log = open(tmp / "serve.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/atg-dosing/1", "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp / "serve.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "server did not start within 90 s"
            time.sleep(0.5)
        au = dict(copy.deepcopy(PATIENTS[2]), concentration_unit="AU/mL")
        body = json.dumps({"dataframe_records": copy.deepcopy(PATIENTS[:2]) + [au]}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            answer = json.loads(r.read())
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()
    rows = answer["predictions"]
    assert [r["status"] for r in rows] == ["recommended", "recommended", "refused"]
    assert "unit mismatch" in rows[2]["error"] and rows[2]["doses_mg"] == [] and rows[2]["recommendation"] is None
    rec = DoseRecommendation.from_dict(json.loads(rows[0]["recommendation"]))  # re-validated on arrival
    assert rec.window.status == "validated" and all(d.mg == 25 * d.vials for d in rec.doses)
    assert rows[0]["doses_mg"] == [d.mg for d in rec.doses]
    # the server's answer is the engine's (same seed and patient; numerics independent of the batch)
    local = DosingEngine(posterior=LaplaceImportance(64), random_state=0).recommend(
        PatientData.from_dict(PATIENTS[0]), load_window(tmp / "window.json"))
    assert [d.mg for d in local.doses] == [d.mg for d in rec.doses]
    assert local.forecast.median == pytest.approx(rec.forecast.median, rel=1e-12)


def test_a_window_the_engine_refuses_is_never_logged(tmp_path):
    db = tmp_path / "m.db"
    for kwargs, message in [(dict(status="candidate"), "window status is 'candidate', not 'validated'"),
                            (dict(unit="AU*day/mL"), "unit mismatch")]:
        window = write_window(tmp_path / "w.json", **kwargs)
        with pytest.raises(DosingRefused, match=message):
            log_dosing_model(window, tracking_uri=f"sqlite:///{db}")
    assert not db.exists()  # refused before MLflow was touched


def test_pyfunc_records_the_override_and_refuses_bad_rows(tmp_path):
    window = write_window(tmp_path / "c.json", status="candidate")
    ov = WindowOverride(by="Dr A", reason="pilot")
    artifacts, _, recorded = write_artifacts(tmp_path, window, n_samples=16, override=ov)
    assert recorded == ov
    model = DosingPyfunc()
    model.load_context(SimpleNamespace(artifacts=artifacts))
    bad = copy.deepcopy(PATIENTS[1])
    del bad["doses"]
    out = model.predict(None, pd.DataFrame(copy.deepcopy(PATIENTS[:1]) + [bad]))
    assert out["status"].tolist() == ["recommended", "refused"]
    assert json.loads(out["recommendation"][0])["override"] == {"by": "Dr A", "reason": "pilot"}
    assert out["error"][1] == ("patient 'T9-0001' refused: doses: at least one ATG dose already given is required "
                               "(none given)")
