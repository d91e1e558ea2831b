"""ml.tracking pieces that need no tracking store: references, URIs, tags, the one-window rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.tracking import (
    DEFAULT_TRACKING_URI,
    ModelRef,
    TrackingError,
    artifact_root,
    parse_model_ref,
    resolve_tracking_uri,
    run_tags,
    ui_command,
)
from ml.tracking._registry import _find_window_json


@pytest.mark.parametrize("ref, expected", [
    ("models:/atg-window-urd@candidate", ModelRef("atg-window-urd", alias="candidate")),
    ("models:/atg-window-urd/3", ModelRef("atg-window-urd", version="3")),
    (" models:/w@validated ", ModelRef("w", alias="validated")),
])
def test_model_references(ref, expected):
    assert parse_model_ref(ref) == expected
    assert str(parse_model_ref(ref)) == ref.strip()


@pytest.mark.parametrize("ref", ["models:/", "models:/a@", "models:/a/b", "runs:/abc/window", "window.json",
                                 "models:/a@b/3"])
def test_malformed_references_are_refused(ref):
    with pytest.raises(ValueError, match="use models:/NAME@ALIAS or models:/NAME/VERSION"):
        parse_model_ref(ref)


def test_tracking_uri_default_env_and_explicit(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri() == DEFAULT_TRACKING_URI == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert resolve_tracking_uri() == "http://tracking:5000"
    assert resolve_tracking_uri("sqlite:///x.db") == "sqlite:///x.db"


def test_artefacts_live_beside_a_local_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert artifact_root("sqlite:///mlflow.db") == (tmp_path / "mlartifacts").as_uri()
    assert artifact_root(f"sqlite:///{tmp_path}/sub/m.db") == (tmp_path / "sub" / "mlartifacts").as_uri()
    assert artifact_root("http://server:5000") is None


def test_ui_command_serves_the_local_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cmd = ui_command("sqlite:///mlflow.db", port=5123)
    assert cmd[1:4] == ["-m", "mlflow", "ui"]
    assert cmd[cmd.index("--backend-store-uri") + 1] == "sqlite:///mlflow.db"
    assert cmd[cmd.index("--port") + 1] == "5123"
    assert cmd[cmd.index("--default-artifact-root") + 1] == (tmp_path / "mlartifacts").as_uri()


def test_ui_command_line_prints_the_command(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from ml.cli import main

    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["ui", "--print-command", "--tracking-uri", "sqlite:///mlflow.db"])
    assert r.exit_code == 0 and "mlflow ui --backend-store-uri sqlite:///mlflow.db" in r.output
    remote = CliRunner().invoke(main, ["ui", "--tracking-uri", "https://mlflow.example.org"])
    assert remote.exit_code == 0 and "open https://mlflow.example.org" in remote.output


def _window(status="candidate"):
    return {"unit": "UE*day/mL", "status": status, "target": 120.0, "lower": 100.0, "upper": 140.0}


def test_a_version_must_hold_exactly_one_window_json(tmp_path: Path):
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "MLmodel.json").write_text(json.dumps({"flavors": {}}))  # not a window: ignored
    with pytest.raises(TrackingError, match="exactly one ExposureWindow JSON, found 0"):
        _find_window_json(tmp_path)
    (tmp_path / "artifacts" / "window.json").write_text(json.dumps(_window()))
    assert _find_window_json(tmp_path)["status"] == "candidate"
    (tmp_path / "artifacts" / "other.json").write_text(json.dumps(_window("validated")))
    with pytest.raises(TrackingError, match="found 2"):
        _find_window_json(tmp_path)


def test_run_tags_flag_simulated_data_and_failures():
    manifest = {"experiment": "urd_window", "simulated": True, "status": "FAILED", "failed_step": "cohort",
                "error": "step 'cohort' failed: the cohort was refused", "dataset": {"digest": "abc"},
                "experiment_file": "experiments/urd_window.toml"}
    tags = run_tags(manifest, {"cohort": {"name": "c", "simulated": True}})
    assert tags["atgwin.simulated"] == "true" and tags["atgwin.failed_step"] == "cohort"
    assert tags["atgwin.dataset_digest"] == "abc"
    assert tags["mlflow.note.content"].startswith("**SIMULATED DATA")
    assert "**FAILED** at step `cohort`" in tags["mlflow.note.content"]
    real = run_tags({"status": "FINISHED", "simulated": False}, {"window": {
        "status": "candidate", "lower": 100.0, "upper": None, "p_value": 0.004, "artefact": {"unit": "UE*day/mL"}}})
    assert real["atgwin.simulated"] == "false"
    assert "Window [100.0, open) UE*day/mL, adjusted p = 0.004" in real["mlflow.note.content"]


def test_the_window_pyfunc_classifies_exposure_without_the_package(tmp_path):
    """The logged model code is self-contained: load it by path, as MLflow does."""
    import importlib.util

    import pandas as pd

    from ml.tracking._registry import MODEL_CODE

    text = MODEL_CODE.read_text()
    assert "import ml\n" not in text and "import ml." not in text and "from ml" not in text
    spec = importlib.util.spec_from_file_location("window_model_under_test", MODEL_CODE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = tmp_path / "window.json"
    path.write_text(json.dumps({**_window(), "lower": None}))

    class Context:
        artifacts = {"window": str(path)}

    model = module.ExposureWindowModel()
    model.load_context(Context())
    out = model.predict(None, pd.DataFrame({"auc_total": [20.0, 139.9, 140.0]}))
    assert list(out["group"]) == ["inside", "inside", "above"]
    assert list(out["in_window"]) == [True, True, False] and set(out["status"]) == {"candidate"}
