"""``atgwin dose`` and ``atgwin trial`` through the click entry point."""

from __future__ import annotations

import json

from click.testing import CliRunner

from ml.cli import main

from test_dosing_support import virtual_patients, write_window


def _files(tmp_path, **window):
    w = write_window(tmp_path / "window.json", **window)
    patients, _ = virtual_patients(2, seed=4)
    p = tmp_path / "patient.json"
    p.write_text(json.dumps(patients[0]))
    return w, p, patients


def test_dose_one_patient(tmp_path):
    w, p, _ = _files(tmp_path)
    out = tmp_path / "rec.json"
    res = CliRunner().invoke(main, ["dose", "--window", w, "--patient", str(p), "--out", str(out), "--draws", "64"])
    assert res.exit_code == 0, res.output
    assert "T4-0000" in res.output and "forecast AUC median [90% PI]" in res.output
    assert "caveat: the window was derived from simulated data (a virtual cohort): not for clinical use" in res.output
    payload = json.loads(out.read_text())
    assert payload["refusals"] == [] and len(payload["recommendations"]) == 1
    rec = payload["recommendations"][0]
    assert [d["day"] for d in rec["doses"]] == [-3, -2] and rec["override"] is None
    assert all(d["mg"] == 25 * d["vials"] for d in rec["doses"])


REFUSALS = [
    (dict(status="candidate"), [],
     "Error: refused: window status is 'candidate', not 'validated': promote it (atgwin promote) or give an "
     "explicit override stating who and why"),
    (dict(status="candidate"), ["--override-by", "Dr A"],
     "Error: an override needs both --override-by and --override-reason"),
    (dict(unit="AU*day/mL"), [],
     "REFUSED: patient 'T4-0000' refused: unit mismatch: the window is in 'AU*day/mL' but the patient's levels "
     "are in 'UE/mL' (exposure unit 'UE*day/mL'); assays cannot be converted into each other"),
    (dict(status="no-window"), [], "has status 'no-window': the search found no exposure window"),
]


def test_dose_refusals(tmp_path):
    for window, extra, message in REFUSALS:
        w, p, _ = _files(tmp_path, **window)
        res = CliRunner().invoke(main, ["dose", "--window", w, "--patient", str(p), "--draws", "16", *extra])
        assert res.exit_code == 1, (window, res.output)
        assert message in res.output, (window, res.output)
        assert " mg (" not in res.output  # no dose was printed


def test_dose_override_is_recorded(tmp_path):
    w, p, _ = _files(tmp_path, status="candidate")
    out = tmp_path / "rec.json"
    res = CliRunner().invoke(main, ["dose", "--window", w, "--patient", str(p), "--draws", "16", "--out", str(out),
                                    "--override-by", "Dr A", "--override-reason", "protocol amendment 3"])
    assert res.exit_code == 0, res.output
    assert "status candidate (OVERRIDE by Dr A)" in res.output
    rec = json.loads(out.read_text())["recommendations"][0]
    assert rec["override"] == {"by": "Dr A", "reason": "protocol amendment 3"}
    assert "window status 'candidate' used under an override by Dr A: protocol amendment 3" in rec["caveats"]


def test_dose_batch_uses_only_levels_before_the_decision(tmp_path):
    runner = CliRunner()
    cohort = tmp_path / "cohort"
    assert runner.invoke(main, ["simulate", "--n", "6", "--seed", "1", "--out", str(cohort)]).exit_code == 0
    w = write_window(tmp_path / "w.json")
    out = tmp_path / "batch.json"
    res = runner.invoke(main, ["dose", "--window", w, "--patient", str(cohort), "--draws", "32", "--out", str(out)])
    assert res.exit_code == 0, res.output
    # each virtual patient has 2 later doses (days -3, -2) and 12 levels after day -3 08:00
    assert "batch: ignored 12 doses and 72 levels after the decision (day -3 at 8 h)" in res.output
    recs = json.loads(out.read_text())["recommendations"]
    assert len(recs) == 6 and all(r["posterior"]["levels_used"] == 5 for r in recs)


def test_dose_batch_with_a_refused_patient_exits_2(tmp_path):
    w, _, patients = _files(tmp_path)
    bad = dict(patients[1])
    del bad["weight_kg"]
    p = tmp_path / "two.json"
    p.write_text(json.dumps([patients[0], bad]))
    res = CliRunner().invoke(main, ["dose", "--window", w, "--patient", str(p), "--draws", "16"])
    assert res.exit_code == 2, res.output
    assert "REFUSED: patient 'T4-0001' refused: weight_kg is required" in res.output


def test_trial_small(tmp_path):
    out = tmp_path / "trial.csv"
    res = CliRunner().invoke(main, ["trial", "--n", "8", "--reps", "1", "--population", "0", "--seed", "2", "--draws", "16",
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "| days -5/-4 | 1 |" in res.output and "| days -5/-4 + day -3 pre-dose | 1 |" in res.output
    assert "SIMULATED DATA" in res.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("rep,design,attain_ind,attain_fixed,cmv_ind,cmv_fixed,p_value,reject")
    assert len(lines) == 3
    assert json.loads((tmp_path / "trial.csv.summary.json").read_text())["settings"]["n"] == 8


def test_trial_power_analysis_small(tmp_path):
    out = tmp_path / "plan"
    res = CliRunner().invoke(main, ["trial", "--population", "24", "--no-sensitivity", "--outcome-draws", "2",
                                    "--seed", "3", "--draws", "16", "--nodes", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "Registered design (SIMULATED, scenario urd): power" in res.output
    assert "at n = 324" in res.output and ("patients would be needed for 80 % power" in res.output
                                          or "no n reaches 80 %" in res.output)
    plan = (tmp_path / "plan.plan.csv").read_text().splitlines()
    assert plan[0].startswith("group,assumption,attain_individualised") and len(plan) == 2
    summary = json.loads((tmp_path / "plan.summary.json").read_text())
    assert summary["plan"][0]["group"] == "registered design"
    assert not (tmp_path / "plan").exists()  # no replicates asked for


def test_trial_needs_something_to_do():
    res = CliRunner().invoke(main, ["trial", "--population", "0", "--reps", "0"])
    assert res.exit_code == 2 and "nothing to do" in res.output


def test_dose_batch_whose_levels_misfit_the_model_is_refused_unless_asked_to_warn(tmp_path):
    # 70 patients of a world with CL x1.6 and V1 x0.55 of the shipped prior: the engine sees the shift
    # (tests/test_dosing_misfit.py) on the whole batch, although the command doses it in calls of 64 + 6
    from dataclasses import replace

    from ml.pk import PopPKModel

    m = PopPKModel.default()
    far = replace(m, name="far-world", typical={k: v * {"CL": 1.6, "V1": 0.55}.get(k, 1.0) for k, v in m.typical.items()})
    patients, _ = virtual_patients(70, seed=25, pre_dose_day3=False, model=far)
    p = tmp_path / "batch.json"
    p.write_text(json.dumps(patients))
    w = write_window(tmp_path / "w.json")
    res = CliRunner().invoke(main, ["dose", "--window", w, "--patient", str(p), "--draws", "16"])
    assert res.exit_code == 1, res.output  # nobody dosed
    assert res.output.count("REFUSED: patient ") == 70 and "population model misfit" in res.output
    assert " mg (" not in res.output
    res = CliRunner().invoke(main, ["dose", "--window", w, "--patient", str(p), "--draws", "16", "--on-misfit", "warn"])
    assert res.exit_code == 0, res.output
    assert "warning (70 patients: " in res.output and "population model misfit" in res.output
