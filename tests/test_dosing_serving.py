"""The engine as an MLflow pyfunc (ml.tracking): logged from code with its window and population
model, registered as ``atg-dosing`` with an alias and tags, loaded back, and fed by registry
windows. Serving it over REST is tests/test_serving.py.

Everything that needs a tracking store runs in ONE test on one temporary SQLite store: creating a
store costs seconds, and under ``pytest -n 2`` a module fixture would be built once per worker.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from ml.dosing import (
    DosingEngine,
    DosingRefused,
    LaplaceImportance,
    PatientData,
    WindowOverride,
)

from test_dosing_support import virtual_patients, write_window

mlflow = pytest.importorskip("mlflow")
from ml.tracking import DosingPyfunc, load_registered_window, log_dosing_model, write_artifacts  # noqa: E402

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
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    _the_logged_model_loads_where_the_project_is_not_installed(registry, tmp_path)


def _registered_model_and_its_window(registry):
    uri, info, _ = registry
    assert info.registered_model_version == 1
    mv = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version_by_alias("atg-dosing", "current")
    assert str(mv.version) == "1" and mv.tags["window_status"] == "validated" and mv.tags["simulated"] == "true"
    assert mv.tags["window_integrity"] == "signed" and mv.tags["n_samples"] == "64"
    w = load_registered_window("models:/atg-dosing/1", tracking_uri=uri)
    assert (w.lower, w.upper, w.status, w.origin.source) == (100.0, 148.5, "validated", "models:/atg-dosing/1")
    with pytest.raises(DosingRefused, match="cannot read window models:/nothing/1"):
        load_registered_window("models:/nothing/1", tracking_uri=uri)


def _cli_registers_and_doses_from_the_registry(registry, tmp_path):
    from click.testing import CliRunner

    from ml.cli import main

    uri, _, tmp = registry
    runner = CliRunner(env={"MLFLOW_TRACKING_URI": uri})
    res = runner.invoke(main, ["dose", "--window", str(tmp / "window.json"), "--register", "--draws", "16"])
    assert res.exit_code == 0, res.output
    assert "registered atg-dosing version 2 (models:/atg-dosing/2, alias current)" in res.output
    patient = tmp_path / "patient.json"
    patient.write_text(json.dumps(PATIENTS[0]))
    res = runner.invoke(main, ["dose", "--window", "models:/atg-dosing/2", "--patient", str(patient), "--draws", "16"])
    assert res.exit_code == 0, res.output
    assert "window [100.0, 148.5) UE*day/mL, target 124.0, status validated" in res.output
    res = runner.invoke(main, ["dose", "--window", "models:/atg-dosing/9", "--patient", str(patient)])
    assert res.exit_code == 1 and "refused: cannot read window models:/atg-dosing/9" in res.output
    # a registered window is registered with the engine too (its registry digest travels with it)
    res = runner.invoke(main, ["dose", "--window", "models:/atg-window-test@validated", "--register", "--draws", "16",
                               "--alias", "ward-a"])
    assert res.exit_code == 0, res.output
    assert "registered atg-dosing version 3 (models:/atg-dosing/3, alias ward-a)" in res.output
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    mv = client.get_model_version_by_alias("atg-dosing", "ward-a")
    assert mv.tags["window_source"] == "models:/atg-window-test@validated" and mv.tags["window_digest"]
    assert str(client.get_model_version_by_alias("atg-dosing", "current").version) == "2"  # untouched


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


def _the_logged_model_loads_where_the_project_is_not_installed(registry, tmp_path):
    """The model version carries the ``ml`` package (code_paths): a Python that cannot import the
    project otherwise (no PYTHONPATH, no site .pth files, hence no editable install) loads and runs it."""
    import subprocess
    import sysconfig

    local = mlflow.artifacts.download_artifacts("models:/atg-dosing@current", dst_path=str(tmp_path / "model"))
    reqs = Path(local, "requirements.txt").read_text().split()
    assert {r.split("==")[0] for r in reqs} >= {"mlflow", "numpy", "scipy", "pandas"}
    assert all("==" in r for r in reqs)
    code = ("import sys, json; sys.path.append(sys.argv[1])\n"
            "try:\n    import ml; print('project importable', ml.__file__); sys.exit(3)\n"
            "except ImportError: pass\n"
            "import mlflow, pandas as pd\n"
            "m = mlflow.pyfunc.load_model(sys.argv[2])\n"
            "import ml; assert ml.__file__.startswith(sys.argv[2]), ml.__file__\n"
            "print(json.dumps(m.predict(pd.DataFrame([json.loads(sys.argv[3])]))))")
    res = subprocess.run([sys.executable, "-I", "-S", "-c", code, sysconfig.get_paths()["purelib"], local,
                          json.dumps(PATIENTS[0])], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    row = json.loads(res.stdout.strip().splitlines()[-1])[0]
    assert row["status"] == "recommended" and row["simulated"] is True and row["doses_mg"]


def test_a_window_the_engine_refuses_is_never_logged(tmp_path):
    db = tmp_path / "m.db"
    for kwargs, message in [(dict(status="candidate"), "window status is 'candidate', not 'validated'"),
                            (dict(unit="AU*day/mL"), "unit mismatch")]:
        window = write_window(tmp_path / "w.json", **kwargs)
        with pytest.raises(DosingRefused, match=message):
            log_dosing_model(window, tracking_uri=f"sqlite:///{db}")
    assert not db.exists()  # refused before MLflow was touched


def test_pyfunc_records_the_override_and_rejects_bad_rows(tmp_path):
    from mlflow.exceptions import MlflowException

    window = write_window(tmp_path / "c.json", status="candidate")
    ov = WindowOverride(by="Dr A", reason="pilot")
    artifacts, _, recorded = write_artifacts(tmp_path, window, n_samples=16, override=ov)
    assert recorded == ov
    model = DosingPyfunc()
    model.load_context(SimpleNamespace(artifacts=artifacts))
    out = model.predict(None, pd.DataFrame(copy.deepcopy(PATIENTS[:1])))
    assert [row["status"] for row in out] == ["recommended"]
    assert out[0]["recommendation"]["override"] == {"by": "Dr A", "reason": "pilot"}
    assert out[0]["simulated"] is True and "under an override by Dr A" in " ".join(out[0]["caveats"])
    bad = copy.deepcopy(PATIENTS[1])
    del bad["doses"]
    # a request with a row that cannot be dosed is rejected as a whole (HTTP 400 from the scoring server)
    with pytest.raises(MlflowException) as err:
        model.predict(None, pd.DataFrame(copy.deepcopy(PATIENTS[:1]) + [bad]))
    assert err.value.get_http_status_code() == 400
    assert err.value.message == ("request rejected, nothing was dosed: row 1: patient 'T9-0001' refused: doses: at "
                                 "least one ATG dose already given is required (none given)")


def test_integers_are_accepted_where_numbers_are_meant(tmp_path):
    """``"dose_mg": 175`` (what JSON.stringify sends for 175.0) passes the model's input schema; the
    same request with decimals gets the same answer."""
    from mlflow.models.utils import _enforce_schema
    from mlflow.pyfunc.scoring_server import infer_and_parse_data

    from ml.tracking import EXAMPLE_PATIENT, pyfunc_signature

    schema = pyfunc_signature().inputs
    as_ints = copy.deepcopy(EXAMPLE_PATIENT)
    as_ints.update(weight_kg=70, doses=[{k: int(v) for k, v in d.items()} for d in as_ints["doses"]])
    parsed = _enforce_schema(infer_and_parse_data({"dataframe_records": [as_ints]}, schema), schema)
    assert parsed["doses"][0][0]["dose_mg"] == 175
    artifacts, _, _ = write_artifacts(tmp_path, write_window(tmp_path / "w.json"), n_samples=16)
    model = DosingPyfunc()
    model.load_context(SimpleNamespace(artifacts=artifacts))
    as_floats = _enforce_schema(infer_and_parse_data({"dataframe_records": [EXAMPLE_PATIENT]}, schema), schema)
    assert model.predict(None, parsed) == model.predict(None, as_floats)
