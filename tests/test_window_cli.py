"""``atgwin discover`` and ``atgwin promote`` end to end on virtual cohorts (ml.sim)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ml.cli import main
from ml.cohort import write_cohort
from ml.sim import simulate_cohort
from ml.window import ExposureWindow

QUICK = ["--permutations", "99", "--bootstraps", "30", "--folds", "3", "--seed", "1"]


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohorts")
    write_cohort(simulate_cohort("urd", n=324, seed=11), root / "urd")
    write_cohort(simulate_cohort("null", n=200, seed=12), root / "null")
    return root


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_discover_writes_a_window_and_prints_a_summary(cohorts, tmp_path):
    out = tmp_path / "w.json"
    r = run("discover", cohorts / "urd", "--out", out, *QUICK)
    assert r.exit_code == 0, r.output
    assert "SIMULATED DATA" in r.output
    assert "adjusted p" in r.output or "No evidence" in r.output
    # the sides' horizons differ (730 and 180 days): incidences are read at the longer one unless told
    assert "Cumulative incidence by day 730" in r.output
    w = ExposureWindow.from_json(out)
    # the default is the benefit-harm search: floor from acute and chronic GVHD (day 730), ceiling from CMV/EBV (day 180)
    assert w.simulated and w.unit == "UE*day/mL" and w.search_kind == "benefit-harm"
    assert (w.floor.endpoints, w.ceiling.endpoints) == (("agvhd2", "cgvhd"), ("cmv", "ebv"))
    assert (w.floor.horizon_days, w.ceiling.horizon_days) == (730.0, 180.0) and w.population.n == 324
    assert w.status == ("candidate" if w.finding in ("window", "floor-only", "ceiling-only") else "no-window")
    assert "floor" in r.output and "ceiling" in r.output and "cross-fitted HR" in r.output
    assert {i.outcome for i in w.incidences} >= {"cmv", "agvhd2", "nrm"}


def test_discover_takes_the_global_test_and_names_it(cohorts, tmp_path):
    for test in ("joint", "min-p"):
        r = run("discover", cohorts / "urd", "--out", tmp_path / f"{test}.json", "--global-test", test, *QUICK)
        assert r.exit_code == 0, r.output
        assert f"{test} test of" in r.output
    r = CliRunner().invoke(main, ["discover", str(cohorts / "urd"), "--out", str(tmp_path / "x.json"),
                                  "--global-test", "sum"])
    assert r.exit_code == 2 and "'sum' is not one of" in r.output


def test_discover_composite_endpoint_runs_the_two_cut_search(cohorts, tmp_path):
    out = tmp_path / "w.json"
    r = run("discover", cohorts / "urd", "--out", out, "--endpoint", "cmv|ebv|agvhd2|death", *QUICK)
    assert r.exit_code == 0, r.output
    w = ExposureWindow.from_json(out)
    assert w.search_kind == "composite" and w.endpoint == "cmv|ebv|agvhd2|death" and w.floor is None
    assert w.status == ("candidate" if w.p_value < 0.05 else "no-window")


def test_composite_options_need_the_composite_search(cohorts, tmp_path):
    r = CliRunner().invoke(main, ["discover", str(cohorts / "urd"), "--out", str(tmp_path / "w.json"),
                                  "--single-cut"])
    assert r.exit_code == 2 and "--single-cut and --covariates belong to the composite search" in r.output


def test_no_evidence_is_said_plainly(cohorts, tmp_path):
    out = tmp_path / "w.json"
    r = run("discover", cohorts / "null", "--out", out, "--alpha", "0.001", *QUICK)
    assert r.exit_code == 0, r.output
    assert "No evidence of an exposure window" in r.output
    assert json.loads(out.read_text())["status"] == "no-window"


def test_too_few_events_is_an_error_and_nothing_is_written(cohorts, tmp_path):
    out = tmp_path / "w.json"
    r = CliRunner().invoke(main, ["discover", str(cohorts / "urd"), "--out", str(out), "--endpoint", "agvhd3",
                                  "--horizon", "3", "--min-events", "10", *QUICK])
    assert r.exit_code == 1
    assert "too few events" in r.output
    assert not out.exists()


def test_constant_exposure_is_an_error(cohorts, tmp_path):
    import pandas as pd

    folder = tmp_path / "flat"
    write_cohort(simulate_cohort("urd", n=60, seed=3), folder)
    patients = pd.read_csv(folder / "patients.csv")
    patients["auc_total"] = 120.0
    patients.to_csv(folder / "patients.csv", index=False)
    (folder / "atg_doses.csv").unlink()
    (folder / "atg_levels.csv").unlink()
    r = CliRunner().invoke(main, ["discover", str(folder), "--out", str(tmp_path / "w.json"), *QUICK])
    assert r.exit_code == 1
    assert "exposure is constant (every value is 120.0)" in r.output


def test_bad_endpoint_lists_valid_names(cohorts, tmp_path):
    r = CliRunner().invoke(main, ["discover", str(cohorts / "urd"), "--out", str(tmp_path / "w.json"),
                                  "--endpoint", "cmb"])
    assert r.exit_code == 2
    assert "valid: cmv, ebv" in r.output


def test_promote_checks_gates_then_validates(cohorts, tmp_path):
    out = tmp_path / "w.json"
    assert run("discover", cohorts / "urd", "--out", out, *QUICK).exit_code == 0
    w = ExposureWindow.from_json(out)
    refused = CliRunner().invoke(main, ["promote", str(out), "--by", "me", "--reason", "test",
                                        "--max-ci-width", "0.001", "--min-events", "100000"])
    assert refused.exit_code == 1
    assert "FAILED: events" in refused.output
    assert ExposureWindow.from_json(out).status == w.status  # untouched
    from test_window_artefact import make

    candidate = tmp_path / "candidate.json"
    make().to_json(candidate)
    validated = tmp_path / "v.json"
    ok = run("promote", candidate, "--by", "me", "--reason", "test", "--max-ci-width", "25", "--min-events", "10",
             "--out", validated)
    assert ok.exit_code == 0, ok.output
    assert "SIMULATED DATA" in ok.output
    v = ExposureWindow.from_json(validated)
    assert v.status == "validated" and v.promoted_by == "me"
    assert ExposureWindow.from_json(candidate).status == "candidate"


def test_evaluate_scores_a_given_window_and_refuses_other_units(cohorts, tmp_path):
    from test_window_artefact import make

    given = tmp_path / "haplo.json"
    make().to_json(given)
    out = tmp_path / "eval.json"
    r = run("discover", cohorts / "urd", "--evaluate", given, "--out", out, "--permutations", "99")
    assert r.exit_code == 0, r.output
    result = json.loads(out.read_text())
    assert result["window"]["lower"] == 100.0 and result["evaluation"]["n_inside"] > 0
    other = tmp_path / "au.json"
    make(unit="AU*day/mL").to_json(other)
    r = CliRunner().invoke(main, ["discover", str(cohorts / "urd"), "--evaluate", str(other)])
    assert r.exit_code == 1
    assert "unit mismatch" in r.output
