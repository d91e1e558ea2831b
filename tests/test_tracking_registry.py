"""Registry-aware promotion: ``atgwin promote models:/NAME@candidate`` on a throw-away MLflow store.

The candidate is a hand-made ``ExposureWindow`` registered by ``ml.tracking.register_window`` the
way ``atgwin run`` registers one (gates of its experiment as version tags), so these tests do not
need a pipeline run.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ml.cli import main
from ml.pk import PopPKModel
from ml.window import ExposureWindow, Population

#: the population PK model that defined the candidate's exposure (a file beside the window, as `atgwin run` writes it)
PK = PopPKModel.default().with_typical(CL=0.61)


def candidate_window(run_id: str) -> ExposureWindow:
    return ExposureWindow(
        exposure="auc_total", exposure_definition="total active-ATG AUC by NCA", unit="UE*day/mL",
        population=Population(donor_source="URD", conditioning="MAC", n=324, events=120),
        endpoint="cmv|ebv|agvhd2|death", horizon_days=180.0, lower=100.0, upper=140.0, target=120.0,
        lower_ci=(95.0, 105.0), upper_ci=(135.0, 145.0), ci_method="bootstrap percentile", p_value=0.001,
        p_value_method="permutation (999)", statistic=4.2, dataset_digest="d" * 64, simulated=True,
        code_version="atg-window test", mlflow_run_id=run_id,
        pk_model={"name": PK.name, "digest": PK.digest, "source": "pk_model.toml"})


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    from ml.tracking import RunTracker, register_window

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root}/mlflow.db"
    tracker = RunTracker(uri)
    run_id = tracker.start_run("registry-test", "derive")
    path = root / "window.json"
    candidate_window(run_id).to_json(path)
    PK.to_toml(root / "pk_model.toml")
    reg = register_window(tracker, run_id, path, "atg-window-reg",
                          tags={"gate.alpha": 0.05, "gate.max_ci_width": 8.0, "gate.min_events": 50})
    tracker.end_run(run_id, "FINISHED")
    return {"uri": uri, "tracker": tracker, "candidate": reg}


def promote(registry, *args):
    return CliRunner().invoke(main, ["promote", *map(str, args)], catch_exceptions=False,
                              env={"MLFLOW_TRACKING_URI": registry["uri"]})


def test_gates_recorded_by_the_experiment_apply_and_failures_are_listed(registry):
    # intervals are 10 UE*day/mL wide; the experiment allowed 8
    r = promote(registry, "models:/atg-window-reg@candidate", "--by", "Dr A", "--reason", "review")
    assert r.exit_code != 0
    assert "2 gate(s) failed" in r.output
    assert "FAILED: lower bound interval width 10 <= 8.0 UE*day/mL" in r.output
    assert "FAILED: upper bound interval width 10 <= 8.0 UE*day/mL" in r.output
    # a gate given on the command line wins over the recorded one
    r = promote(registry, "models:/atg-window-reg@candidate", "--by", "Dr A", "--reason", "review",
                "--max-ci-width", "12", "--min-events", "500")
    assert r.exit_code != 0 and "1 gate(s) failed" in r.output and "FAILED: events 120 >= min_events 500" in r.output


def test_passing_gates_register_a_new_validated_version_with_who_and_why(registry, tmp_path, monkeypatch):
    from ml.tracking import load_window_source as load_window

    client = registry["tracker"].client
    cand = registry["candidate"]
    r = promote(registry, f"models:/atg-window-reg/{cand.version}", "--by", "Dr A", "--reason", "tumour board",
                "--max-ci-width", "12", "--out", tmp_path / "validated.json")
    assert r.exit_code == 0, r.output
    assert "passed: lower bound interval width 10 <= 12.0 UE*day/mL" in r.output and "alias validated" in r.output
    v = client.get_model_version_by_alias("atg-window-reg", "validated")
    assert int(v.version) > int(cand.version)
    assert (v.tags["promoted_by"], v.tags["promotion_reason"]) == ("Dr A", "tumour board")
    assert v.tags["promoted_from_version"] == cand.version and v.tags["window_status"] == "validated"
    promotion_run = client.get_run(v.run_id)
    assert promotion_run.data.tags["atgwin.kind"] == "promotion" and promotion_run.info.status == "FINISHED"
    assert json.loads((tmp_path / "validated.json").read_text())["promoted_by"] == "Dr A"
    # artefacts are immutable: the candidate version still holds the candidate window
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry["uri"])
    assert load_window("models:/atg-window-reg@validated").status == "validated"
    assert load_window(f"models:/atg-window-reg/{cand.version}").status == "candidate"
    assert str(client.get_model_version_by_alias("atg-window-reg", "candidate").version) == cand.version
    # the population PK model travels with the window, also into the promoted version
    from ml.dosing._window import window_pk_model

    for ref in (f"models:/atg-window-reg/{cand.version}", "models:/atg-window-reg@validated"):
        assert window_pk_model(load_window(ref)).digest == PK.digest
    assert v.tags["pk_model_digest"] == PK.digest == client.get_model_version("atg-window-reg", cand.version).tags[
        "pk_model_digest"]


def test_library_promotion_and_unknown_references(registry):
    from ml.tracking import TrackingError, promote_registered
    from ml.window import PromotionError, PromotionGates

    with pytest.raises(PromotionError) as info:
        promote_registered("models:/atg-window-reg@candidate", by="Dr C", reason="x", tracking_uri=registry["uri"])
    assert len(info.value.failed) == 2  # the recorded gates: both interval widths
    where = promote_registered("models:/atg-window-reg@candidate", by="Dr C", reason="second review",
                               gates=PromotionGates(max_ci_width=20.0), tracking_uri=registry["uri"])
    assert where.endswith("(alias validated)")
    with pytest.raises(TrackingError, match="no such registered model version"):
        promote_registered("models:/nope@candidate", by="x", reason="y", tracking_uri=registry["uri"])
    r = promote(registry, "models:/nope@candidate", "--by", "x", "--reason", "y")
    assert r.exit_code != 0 and "no such registered model version" in r.output
