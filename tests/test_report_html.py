"""The report renderer on hand-made run folders: failures, no-window results, escaping, bundles."""

from __future__ import annotations

import json

import pytest

from ml.experiments import RunBundle
from ml.report import render_report, write_report


def failed_bundle(tmp_path, violations):
    b = RunBundle(tmp_path / "failed")
    b.write_json(RunBundle.MANIFEST, {"run_name": "r1", "experiment": "urd_window", "status": "FAILED",
                                      "failed_step": "cohort", "run_id": "abc123", "steps": [
                                          {"name": "cohort", "seconds": 0.2, "status": "FAILED"}],
                                      "registry": {"note": "not registered: the run failed at step 'cohort'"}})
    b.write_json(RunBundle.RESULTS, {"validation": {"ok": False, "violations": violations}})
    b.write_text(RunBundle.ERRORS, "step 'cohort' failed\n" + "\n".join(violations))
    return b


def test_failed_run_report_lists_every_violation_escaped(tmp_path):
    violations = ["patients.age_years: 0 < age <= 100, rows [3] (1 row)",
                  "patients.sex: one of M, F, rows [5] (1 row) <script>alert(1)</script>"]
    html = render_report(failed_bundle(tmp_path, violations))
    assert "This run FAILED at step 'cohort'" in html and "Nothing was registered" in html
    assert "patients.age_years: 0 &lt; age &lt;= 100, rows [3] (1 row)" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    for section in ("cohort", "exposure", "window", "models", "shap", "provenance"):
        assert f"id='{section}'" in html
    assert "not available (the run failed at step <b>cohort</b>)" in html
    assert "id='simulated-banner'" not in html  # nothing known about the data: no claim either way


def test_no_window_is_stated_plainly(tmp_path):
    b = RunBundle(tmp_path / "nw")
    b.write_json(RunBundle.MANIFEST, {"run_name": "r2", "experiment": "x", "status": "FINISHED", "simulated": True})
    art = {"unit": "UE*day/mL", "endpoint": "cmv", "horizon_days": 180.0, "search": {"alpha": 0.05, "estimate": "bagged"},
           "p_value_method": "permutation", "ci_method": "bootstrap", "population": {"donor_source": "URD"}}
    b.write_json(RunBundle.RESULTS, {"cohort": {"simulated": True}, "window": {
        "artefact": art, "status": "no-window", "lower": 90.0, "upper": 150.0, "target": 120.0, "lower_ci": None,
        "upper_ci": [100.0, None], "p_value": 0.31, "naive_p_value": 0.01, "statistic": 2.1,
        "argmax_bounds": [90.0, 150.0], "n": 200, "events": 120, "n_excluded": 2, "effect": {},
        "n_permutations": 999, "n_bootstraps": 100}})
    html = render_report(b)
    assert "<b>No exposure window.</b> The adjusted p-value 0.31" in html and "nothing is registered" in html
    assert "SIMULATED DATA" in html
    assert "[100.0, +&infin;]" in html  # an interval unbounded above


def test_render_needs_a_run_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        render_report(tmp_path)


def test_bundle_json_is_strict_and_updates_merge(tmp_path):
    b = RunBundle(tmp_path)
    b.update("run.json", a=1, x=float("nan"))
    b.update("run.json", b=(1.0, float("inf")))
    assert json.loads((tmp_path / "run.json").read_text()) == {"a": 1, "x": None, "b": [1.0, None]}
    out = write_report(failed_bundle(tmp_path, ["t.c: rule"]), tmp_path / "out" / "r.html")
    assert out.read_text().startswith("<!DOCTYPE html>")


def _plan_rows():
    row = dict(group="registered design", assumption="levels days -5/-4, doses days -3/-2 adjusted",
               attain_individualised=0.481, attain_fixed=0.424, above_individualised=0.2, above_fixed=0.25,
               cmv_individualised=0.642, cmv_fixed=0.657, difference_se=0.004, power=0.061, n_for_80=20412.0)
    oracle = dict(row, group="oracle", assumption="each patient's closest regimen under the TRUE PK",
                  attain_individualised=0.95, above_individualised=0.02, cmv_individualised=0.61, power=0.31,
                  n_for_80=1260.0)
    return [row, oracle]


def test_trial_design_section_states_the_plan_numbers(tmp_path):
    plan = {"settings": {"n": 324, "alpha": 0.05, "scenario": "urd", "population": 1000}, "plan": _plan_rows()}
    html = render_report(failed_bundle(tmp_path, ["t.c: rule"]), trial_plan=plan)
    assert "id='trial-design'" in html and "href='#trial-design'" in html
    para = html.split("id='trial-paragraph'>")[1].split("</p>")[0]
    assert para.startswith("SIMULATION:")
    for text in ("from 42% (fixed 10 mg/kg) to 48%", "from 65.7% to 64.2% (-1.50 +- 0.40 points", "has 6.1% power",
                 "would need about 20,000 patients", "gives 31.0% power (n for 80 % about 1,300)"):
        assert text in para, text
    assert "about 20,000</td>" in html
    # from a file, as `atgwin report --trial-plan` passes it
    f = tmp_path / "plan.summary.json"
    f.write_text(json.dumps(plan))
    assert "id='trial-paragraph'" in render_report(failed_bundle(tmp_path / "b2", ["t.c: rule"]), trial_plan=f)


def test_trial_design_section_without_a_plan_says_how_to_add_it(tmp_path):
    html = render_report(failed_bundle(tmp_path, ["t.c: rule"]))
    assert "id='trial-design'" in html and "atgwin report RUN_ID --trial-plan plan.summary.json" in html
    assert "id='trial-paragraph'" not in html
