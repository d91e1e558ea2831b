"""The written run record (issue 13): ``RunRecord`` (``results.json``), the typed step results, and
``run_experiment(config, callbacks=[...])``.

References: the round trip is checked against the JSON text itself (``json.loads`` of what was
written); legacy files are the ``results.json`` layout the pipeline wrote before the record had a
``schema_version`` (the section names of ``ml/record/_record.py``, as tests/test_report_html.py
and tests/test_report_sides.py still write them); the tracked run is checked against what MLflow's
own client reads back from the store. The pipeline runs on a tiny SIMULATED cohort (ml.sim), the
shipped PK model, with the three slow steps replaced by tests/fault_driver.py's stand-ins (the real
steps are covered by tests/test_run_pipeline.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import FrozenInstanceError, fields
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ml.experiments import (
    SCHEMA_VERSION,
    RecordError,
    RunBundle,
    RunCallback,
    RunRecord,
    StepFailed,
    StepResult,
    run_experiment,
)

from test_run_faults import TINY as FAULTS_TINY

# the fault tests' tiny experiment, registered under its own model name
TINY = FAULTS_TINY.replace("atg-window-faults", "atg-window-record")


def tiny(path: Path, name: str = "record") -> Path:
    path.write_text(TINY.format(name=name))
    return path


# ------------------------------------------------------------------------------------- RunRecord
def test_record_round_trips_through_its_json_form_and_the_run_folder(tmp_path):
    rec = RunRecord(cohort={"name": "c", "simulated": True, "n": np.int64(60), "age_iqr": (40.0, 61.5)},
                    window={"status": "candidate", "lower": 88.7, "upper": None, "p_value": float("nan")},
                    incidences=[{"group": "inside", "incidence": np.float64(0.25)}])
    # cleaned on construction: numpy scalars -> Python numbers, tuples -> lists, NaN -> None
    assert rec.cohort["n"] == 60 and type(rec.cohort["n"]) is int and rec.cohort["age_iqr"] == [40.0, 61.5]
    assert rec.window["p_value"] is None
    d = rec.to_dict()
    assert d["schema_version"] == SCHEMA_VERSION == 1
    assert set(d) == {"schema_version", "cohort", "window", "incidences"}  # unrecorded sections left out
    assert RunRecord.from_dict(d) == rec
    assert RunRecord.from_dict(json.loads(json.dumps(d, allow_nan=False))) == rec
    b = RunBundle(tmp_path)
    b.write_record(rec)
    assert json.loads(b.path(RunBundle.RESULTS).read_text()) == d
    assert b.record() == rec
    assert RunBundle(tmp_path / "none").record() == RunRecord()  # no results.json yet: an empty record
    with pytest.raises(FrozenInstanceError):
        rec.cohort = {}
    assert [f.name for f in fields(RunRecord)] == ["schema_version", *RunRecord.SECTIONS]


def test_a_results_json_without_schema_version_is_read_as_version_1():
    legacy = {"validation": {"ok": True, "violations": []}, "cohort": {"simulated": True, "name": "c"},
              "window": {"status": "no-window", "lower": None, "upper": None, "p_value": 0.4,
                         "artefact": {"unit": "UE*day/mL"}},
              "truth": {"floor": 90.0}, "side_incidences": {"floor": {"horizon_days": 180}}}
    rec = RunRecord.from_dict(legacy)
    assert rec.schema_version == 1 and rec.to_dict() == {"schema_version": 1, **legacy}
    assert rec.simulated is True and rec.window_status == "no-window"
    assert RunRecord().simulated is None and RunRecord().window_status is None


@pytest.mark.parametrize("doc,message", [
    ({"schema_version": 2, "cohort": {}},
     "schema_version 2 is newer than this version of atgwin reads (schema_version 1)"),
    ({"schema_version": 0}, "schema_version must be a positive integer, got 0"),
    ({"schema_version": "1"}, "schema_version must be a positive integer, got '1'"),
    ({"cohort": {}, "windows": {}}, "unknown section(s) ['windows'] for schema_version 1"),
    ([1, 2], "expected a JSON object"),
])
def test_a_record_this_version_cannot_read_is_refused_with_a_clear_error(doc, message):
    with pytest.raises(RecordError) as err:
        RunRecord.from_dict(doc, source="runs/x/results.json")
    assert message in str(err.value) and str(err.value).startswith("runs/x/results.json: ")


def test_with_sections_replaces_and_refuses_unknown_names():
    rec = RunRecord().with_sections(cohort={"n": 3}).with_sections(window={"status": "candidate"})
    assert rec.cohort == {"n": 3} and rec.window_status == "candidate" and rec.section("cohort") == {"n": 3}
    with pytest.raises(KeyError, match="no section"):
        rec.with_sections(cohorts={})
    with pytest.raises(KeyError, match="no section"):
        rec.section("cohorts")


def test_atgwin_report_refuses_a_newer_record_in_one_line(tmp_path):
    from ml.cli import main

    b = RunBundle(tmp_path / "run")
    b.write_json(RunBundle.MANIFEST, {"run_name": "r", "experiment": "x", "status": "FINISHED"})
    b.write_json(RunBundle.RESULTS, {"schema_version": 7, "cohort": {"simulated": True}})
    res = CliRunner().invoke(main, ["report", str(b.root), "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 1, res.output
    assert "schema_version 7 is newer" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "r.html").exists()


def test_step_results_are_frozen():
    r = StepResult(value=1, params={"a": "1"}, metrics={"m": 0.5}, record={"cohort": {"n": 1}})
    with pytest.raises(TypeError):
        r.metrics["m"] = 2.0  # a read-only mapping
    with pytest.raises(FrozenInstanceError):
        r.value = 2
    assert StepFailed("cohort", "refused", ["a"], record={"validation": {"ok": False}}).record == {
        "validation": {"ok": False}}


# ------------------------------------------------------------------------------ run_experiment
class Recorder(RunCallback):
    def __init__(self):
        self.calls = []

    def on_run_start(self, experiment, *, run_name, folder):
        self.calls.append(("start", run_name, Path(folder).name))

    def on_run_end(self, outcome):
        self.calls.append(("end", outcome.status))

    def on_run_abort(self, folder, *, status, error=None, killed_by=None):
        self.calls.append(("abort", status, killed_by))


def test_each_step_knows_its_record_params_metrics_and_figures(tmp_path, monkeypatch):
    from tests import fault_driver

    # stand-ins for the models and the explanations; the window search is real (its figures and tables)
    monkeypatch.setattr(fault_driver, "STAND_INS", ("models", "explain"))
    fault_driver.install(None, setattr=monkeypatch.setattr)
    rec = Recorder()
    outcome = run_experiment(tiny(tmp_path / "t.toml"), callbacks=[rec], out_dir=tmp_path / "run",
                             run_name="steps", echo=lambda line: None)
    assert outcome.ok and rec.calls == [("start", "steps", "run"), ("end", "FINISHED")]
    names = [s["name"] for s in outcome.steps]
    assert names == ["cohort", "poppk", "exposure", "models", "window", "explain", "report"]
    assert all(isinstance(r, StepResult) for r in outcome.results) and len(outcome.results) == len(names)
    m = json.loads((tmp_path / "run" / "run.json").read_text())
    # run.json's params and metrics are the experiment's settings plus the steps' own, merged in order
    merged_params, merged_metrics = {}, {}
    for r in outcome.results:
        merged_params.update(r.params)
        merged_metrics.update(r.metrics)
    assert {k: m["params"][k] for k in merged_params} == dict(merged_params) and merged_params
    assert m["metrics"] == merged_metrics and "exposure_median" in merged_metrics
    # the figures in the folder's index are exactly those the steps say they saved
    index = json.loads((tmp_path / "run" / "figures" / "index.json").read_text())
    assert sorted(index) == sorted(f.name for r in outcome.results for f in r.figures)
    window = outcome.results[names.index("window")]
    assert {"exposure", "statistic_map"} <= {f.name for f in window.figures} and "window" in window.record
    assert window.metrics["window_n"] == 60 and window.params["window.search.n_permutations"] == "4"
    # results.json is the record the outcome holds, and holds every section the steps recorded
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert RunRecord.from_dict(on_disk) == outcome.record and on_disk["schema_version"] == SCHEMA_VERSION
    assert set(on_disk) - {"schema_version"} == {k for r in outcome.results for k in r.record}
    assert outcome.record.simulated is True and m["simulated"] is True and m["dataset"]["schema"]


def test_an_interrupted_run_tells_the_callbacks_and_says_killed(tmp_path, monkeypatch):
    from ml.experiments import _folder_steps

    def interrupted(ctx, **inputs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_folder_steps, "exposure_step", interrupted)
    rec = Recorder()
    with pytest.raises(KeyboardInterrupt):
        run_experiment(tiny(tmp_path / "t.toml"), callbacks=[rec], out_dir=tmp_path / "run", run_name="killed",
                       echo=lambda line: None)
    assert rec.calls == [("start", "killed", "run"), ("abort", "KILLED", "SIGINT")]
    m = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (m["status"], m["failed_step"], m["killed_by"]) == ("KILLED", "exposure", "SIGINT")


def test_a_tracked_run_from_a_notebook_in_two_lines(tmp_path, monkeypatch):
    """The two lines of ml/experiments/_pipeline.py's docstring, on a tiny experiment file."""
    from ml.tracking import HTTP_DEFAULTS
    from tests.fault_driver import install

    install(None, setattr=monkeypatch.setattr)
    for key, value in HTTP_DEFAULTS.items():  # MLflowCallback sets them (as atgwin run does); undone after
        monkeypatch.setenv(key, value)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    tiny(Path("tiny.toml"), name="notebook")

    from ml.experiments import run_experiment; from ml.tracking import MLflowCallback  # noqa: I001
    outcome = run_experiment("tiny.toml", callbacks=[MLflowCallback()])

    assert outcome.ok and outcome.run_id
    folder = outcome.bundle.root
    assert folder.parent == Path("runs") and folder.name.startswith("notebook-")
    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri=uri).get_run(outcome.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == folder.name
    assert run.data.params["window.permutations"] == "4" and "exposure_median" in run.data.metrics
    assert run.data.tags["atgwin.simulated"] == "true"
    m = json.loads((folder / "run.json").read_text())
    assert m["run_id"] == outcome.run_id and m["tracking"]["tracking_uri"] == uri
    assert math.isclose(run.data.metrics["exposure_median"], m["metrics"]["exposure_median"])
