"""``atgwin run`` end to end against a throw-away MLflow store (sqlite in tmp_path).

Small settings (few trials, permutations and bootstraps) keep the module under ~1 minute; the
full default is timed by scripts/bench_pipeline.py. Cohorts are SIMULATED (ml.sim).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from ml.cli import main
from ml.cohort import write_cohort
from ml.sim import simulate_cohort

QUICK = """\
name = "{name}"
seed = 0
[cohort]
scenario = "{scenario}"
n = {n}
seed = {seed}
[endpoint]
outcomes = ["cmv", "agvhd2", "nrm"]
[window]
permutations = 49
bootstraps = 20
folds = 3
[models]
n_trials = 4
tuning_folds = 3
cv_folds = 3
cv_repeats = 2
[features]
{features}
[poppk]
n_explore = 40
n_smooth = 10
vpc_sims = 20
max_drift = 1.0
[promotion]
alpha = {alpha}
max_ci_width = 1.5
min_events = 7
[registry]
model_name = "{model}"
{extra}"""


#: the shipped population PK model, no fit (fast); the tests of the popPK step pass ``features=""`` (fit it)
SHIPPED = 'pk_model = "shipped"'


def quick_toml(path, *, name, model, scenario="urd", n=324, seed=0, alpha=0.05, extra="", features=SHIPPED):
    path.write_text(QUICK.format(name=name, model=model, scenario=scenario, n=n, seed=seed, alpha=alpha, extra=extra,
                                 features=features))
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    return {"root": root, "uri": f"sqlite:///{root}/mlflow.db", "runs": root / "runs"}


def atgwin(store, *args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False,
                              env={"MLFLOW_TRACKING_URI": store["uri"], **(env or {})})


def run(store, toml, name, *more):
    return atgwin(store, "run", toml, "--out-dir", store["runs"], "--run-name", name, *more)


def client(store):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=store["uri"], registry_uri=store["uri"])


def the_run(store, name):
    c = client(store)
    runs = c.search_runs([e.experiment_id for e in c.search_experiments()],
                         filter_string=f"attributes.run_name = '{name}'")
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


# ------------------------------------------------------------------------------------------ success
# One test, so that the run is made once even when pytest-xdist spreads a module over workers.
def test_pipeline_run_is_tracked_registered_and_reportable(store, tmp_path, monkeypatch):
    from ml.tracking import load_window_source as load_window
    from ml.window import ExposureWindow

    toml = quick_toml(store["root"] / "good.toml", name="quick_urd", model="atg-window-test", features="")
    result = run(store, toml, "good")
    assert result.exit_code == 0, result.output
    assert "alembic" not in result.output and " INFO " not in result.output  # a new store's migrations stay quiet

    # progress: one line per step with its seconds; where the report is; how to open the UI
    for k, step in enumerate(["cohort", "poppk", "exposure", "models", "window", "explain", "report"], start=1):
        assert f"[{k}/7] {step}" in result.output
    assert "[+] track" in result.output and " s  " in result.output
    assert "SIMULATED DATA" in result.output
    assert "Report: " in result.output and "report.html" in result.output and "atgwin ui" in result.output

    # the run: parameters (get_params of every estimator), metrics with spread, tags
    r = the_run(store, "good")
    assert r.info.status == "FINISHED"
    p, m, t = r.data.params, r.data.metrics, r.data.tags
    assert p["window.search.n_permutations"] == "49" and p["window.search.n_bootstraps"] == "20"
    assert p["window.search.scores"] == "LogRankScores()" and "QuantileGrid" in p["window.search.grid"]
    assert {"floor_xgb.max_depth", "ceiling_xgb.learning_rate", "floor_cox.n_knots", "endpoint.name"} <= set(p)
    for key in ("window_lower", "window_upper", "window_p_value", "window_floor_p_value", "window_ceiling_p_value",
                "window_floor_hr", "window_ceiling_hr", "window_floor_events", "time_models_s", "time_window_s"):
        assert key in m, key
    # models per side: each side's tuned XGBoost and Cox reference, metrics with spread and interval, its SHAP bound
    for side in ("floor", "ceiling"):
        for key in ("xgb_harrell_c_mean", "xgb_harrell_c_sd", "xgb_harrell_c_ci_low", "xgb_uno_c_mean",
                    "xgb_mean_auc_mean", "xgb_ibs_mean", "cox_harrell_c_mean", "cox_ibs_mean", "tuning_best_score",
                    "xgb_at_chance", "shap_bound"):
            assert f"{side}_{key}" in m, f"{side}_{key}"
        assert m[f"{side}_xgb_harrell_c_ci_low"] < m[f"{side}_xgb_harrell_c_mean"] < m[f"{side}_xgb_harrell_c_ci_high"]
        assert f"{side}_xgb.max_depth" in p
    assert not any(k.startswith("xgb_") or k.startswith("shap_window") for k in m)  # no unlabelled single model
    assert t["atgwin.simulated"] == "true" and t["atgwin.window_status"] == "candidate"
    assert "SIMULATED" in t["mlflow.note.content"]

    # the dataset: name, digest, schema; no rows
    (ds_input,) = r.inputs.dataset_inputs
    ds = ds_input.dataset
    cohort = simulate_cohort("urd", n=324, seed=0)
    assert ds.name == cohort.meta.name and cohort.digest.startswith(ds.digest)
    assert t["atgwin.dataset_digest"] == cohort.digest
    schema = json.loads(ds.schema)["mlflow_colspec"]
    assert {"auc_total", "age_years", "cmv_serostatus"} <= {c["name"] for c in schema}
    assert not ds.profile  # schema only: no rows, not even a row profile

    # artefacts: the run folder (report, figures, aggregate tables, window JSON)
    c = client(store)
    arts = {a.path for a in c.list_artifacts(r.info.run_id)}
    assert {"report.html", "run.json", "results.json", "experiment.toml", "window", "figures", "tables"} <= arts
    figures = {a.path.split("/")[-1] for a in c.list_artifacts(r.info.run_id, "figures")}
    assert {"exposure.png", "statistic_map.png", "bootstrap.png", "incidence_curves.png", "risk_curves.png",
            "side_profiles.png", "floor_incidence.png", "ceiling_incidence.png", "floor_shap_dependence.png",
            "ceiling_shap_dependence.png", "floor_shap_importance.png", "floor_calibration_xgb.png",
            "ceiling_calibration_xgb.png"} <= figures
    # individual-level views stay out of the shared run folder (aggregate SHAP views only)
    assert not {"shap_waterfall.png", "shap_beeswarm.png"} & figures
    tables = {a.path.split("/")[-1] for a in c.list_artifacts(r.info.run_id, "tables")}
    assert not any("patient" in name for name in tables)

    # Optuna trials as nested runs
    kids = c.search_runs([r.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{r.info.run_id}'")
    assert len(kids) == 8  # 4 trials per side
    assert sorted(k.data.tags.get("side") for k in kids) == ["ceiling"] * 4 + ["floor"] * 4
    assert all("max_depth" in k.data.params for k in kids)
    assert any("cv_harrell_c" in k.data.metrics for k in kids)
    assert sorted(k.info.run_name for k in kids) == sorted(f"trial-{i:02d} {side} xgb" for side in ("floor", "ceiling")
                                                           for i in range(4))

    # written locally, and registered as 'candidate' with the experiment's gates
    folder = store["runs"] / "good"
    local = ExposureWindow.from_json(folder / "window" / "window.json")
    assert local.mlflow_run_id == r.info.run_id and local.status == "candidate" and local.simulated
    mv = c.get_model_version_by_alias("atg-window-test", "candidate")
    assert mv.run_id == r.info.run_id
    assert mv.tags["gate.alpha"] == "0.05" and mv.tags["gate.max_ci_width"] == "1.5"
    assert mv.tags["window_status"] == "candidate"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["uri"])
    target = load_window("models:/atg-window-test@candidate")  # as the dosing engine reads it
    assert (target.lower, target.upper, target.status) == (local.lower, local.upper, "candidate")
    manifest = json.loads((folder / "run.json").read_text())
    assert manifest["registry"]["version"] == str(mv.version) and manifest["status"] == "FINISHED"

    # the population PK model: fitted first, exposures under it, diagnostics in the run, registered beside the window
    from ml.pk import PopPKModel

    results = json.loads((folder / "results.json").read_text())
    pk = results["poppk"]
    assert pk["status"] == "fitted" and pk["model"]["source"] == "pk_model.toml", pk
    fitted = PopPKModel.from_file(folder / "window" / "pk_model.toml")
    assert fitted.digest == pk["model"]["digest"] and fitted.status == "fitted"
    assert local.pk_model == pk["model"] and fitted.digest[:12] in local.exposure_definition
    assert "MAP Bayesian, M3" in local.exposure_definition
    assert results["exposure"]["pk_model"] == pk["model"] and results["exposure"]["n_not_estimable"] == 0
    assert "poppk_rse_typical_CL" in m and "poppk_shrinkage_CL" in m and m["poppk_fallback"] == 0.0
    assert p["poppk.model_digest"] == fitted.digest and t["atgwin.pk_model_digest"] == fitted.digest
    assert "poppk_vpc.png" in figures and "poppk_estimates.csv" in tables
    assert mv.tags["pk_model_digest"] == fitted.digest
    html = (folder / "report.html").read_text()
    assert "id='poppk-status'" in html and fitted.digest in html and "id='fig-poppk_vpc'" in html
    assert target.pk_model == pk["model"]

    # dosing from the registry brings that model along (no --model); another model is a warning in every recommendation
    from test_dosing_support import virtual_patients

    patients, _ = virtual_patients(2, seed=4)
    pfile = tmp_path / "patients.json"
    pfile.write_text(json.dumps(patients))
    override = ["--override-by", "test", "--override-reason", "candidate window in a test", "--draws", "16"]
    dose = atgwin(store, "dose", "--window", "models:/atg-window-test@candidate", "--patient", pfile,
                  "--out", tmp_path / "rec.json", *override)
    assert dose.exit_code == 0, dose.output
    assert f"population PK model: {fitted.name} (digest {fitted.digest[:12]}), the window's" in dose.output
    recs = json.loads((tmp_path / "rec.json").read_text())["recommendations"]
    assert len(recs) == 2 and all(r["model_name"] == fitted.name for r in recs)
    assert not any("mismatch" in w for r in recs for w in r["warnings"])
    shipped = tmp_path / "shipped.toml"
    PopPKModel.default().to_toml(shipped)
    dose = atgwin(store, "dose", "--window", "models:/atg-window-test@candidate", "--patient", pfile,
                  "--model", shipped, "--out", tmp_path / "rec2.json", *override)
    assert dose.exit_code == 0, dose.output
    recs = json.loads((tmp_path / "rec2.json").read_text())["recommendations"]
    assert all(any("population PK model mismatch" in w and fitted.digest[:12] in w for w in r["warnings"])
               for r in recs)

    # the report again, from the run's artefacts (by id and by name)
    out = tmp_path / "report.html"
    again = atgwin(store, "report", r.info.run_id, "--out", out)
    assert again.exit_code == 0, again.output
    text = out.read_text()
    assert r.info.run_id in text and "id='fig-statistic_map'" in text and "SIMULATED DATA" in text
    assert "id='sides'" in text and "id='window-sentence'" in text and "id='fig-side_profiles'" in text
    results = json.loads((folder / "results.json").read_text())
    assert set(results["models"]["fits"]) == {"floor", "ceiling"}
    assert results["models"]["fits"]["floor"]["endpoint"] == "agvhd2|cgvhd"  # the floor side's endpoints, first event
    assert results["models"]["fits"]["ceiling"]["endpoint"] == "cmv|ebv"
    assert {s["shap_bound"] is not None for s in results["shap"]["sides"].values()} == {True}
    assert {i["group"] for i in results["side_incidences"]["floor"]["incidences"]} >= {"below", "inside", "above"}
    by_name = atgwin(store, "report", "good", "--out", tmp_path / "by_name.html")
    assert by_name.exit_code == 0, by_name.output
    missing = atgwin(store, "report", "no-such-run", "--out", tmp_path / "x.html")
    assert missing.exit_code != 0 and "no run" in missing.output


# -------------------------------------------------------------------------------------------- failure
def test_refused_cohort_fails_the_run_lists_every_violation_and_registers_nothing(store, tmp_path):
    cohort_dir = write_cohort(simulate_cohort("urd", n=60, seed=3), tmp_path / "bad")
    patients = pd.read_csv(cohort_dir / "patients.csv", dtype=str, keep_default_na=False)
    patients.loc[1, "age_years"] = "150"
    patients.loc[3, "sex"] = "X"
    patients.to_csv(cohort_dir / "patients.csv", index=False)
    toml = quick_toml(tmp_path / "refused.toml", name="refused", model="atg-window-refused")

    result = run(store, toml, "refused", "--cohort", cohort_dir)
    assert result.exit_code == 1
    assert "patients.age_years" in result.output and "rows [3]" in result.output
    assert "patients.sex" in result.output and "rows [5]" in result.output
    assert "[1/7] cohort    FAILED" in result.output

    r = the_run(store, "refused")
    assert r.info.status == "FAILED" and r.data.tags["atgwin.failed_step"] == "cohort"
    c = client(store)
    assert not c.search_registered_models(filter_string="name = 'atg-window-refused'")
    assert not r.inputs.dataset_inputs
    errors = (store["runs"] / "refused" / "errors.txt").read_text()
    assert "patients.age_years" in errors and "patients.sex" in errors
    arts = {a.path for a in c.list_artifacts(r.info.run_id)}
    assert {"errors.txt", "report.html", "run.json"} <= arts and "window" not in arts
    report = (store["runs"] / "refused" / "report.html").read_text()
    assert "This run FAILED" in report and "patients.sex" in report


def test_no_window_is_said_plainly_and_nothing_is_registered(store, tmp_path):
    toml = quick_toml(tmp_path / "null.toml", name="quick_null", model="atg-window-null", scenario="null", n=200, seed=5,
                      alpha=0.01)
    result = run(store, toml, "null")
    assert result.exit_code == 0, result.output
    assert "No exposure window" in result.output and "nothing registered" in result.output
    r = the_run(store, "null")
    assert r.info.status == "FINISHED" and r.data.tags["atgwin.window_status"] == "no-window"
    assert not client(store).search_registered_models(filter_string="name = 'atg-window-null'")
    assert "No exposure window." in (store["runs"] / "null" / "report.html").read_text()


def test_individual_views_only_in_a_private_folder_and_a_local_private_report(store, tmp_path):
    """``[models] private_views = true``: per-patient SHAP views beside the run folder, never in MLflow;
    ``atgwin report FOLDER --private`` shows them under a PRIVATE banner, the default report does not."""
    toml = quick_toml(tmp_path / "private.toml", name="private", model="atg-window-private", n=120,
                      extra="")
    toml.write_text(toml.read_text().replace("[models]\n", "[models]\nprivate_views = true\n"))
    result = run(store, toml, "private")
    assert result.exit_code == 0, result.output
    folder = store["runs"] / "private"
    private = store["runs"] / "private.private"
    assert f"Individual-level views (PRIVATE, not sent to MLflow): {private}" in result.output
    drawn = {f.name for f in (private / "figures").glob("*.png")}
    assert drawn == {f"{side}_shap_{view}.png" for side in ("floor", "ceiling") for view in ("beeswarm", "waterfall")}
    # nothing individual-level in the run folder or among the run's artefacts in MLflow
    assert not [f for f in folder.rglob("*") if "beeswarm" in f.name or "waterfall" in f.name]
    c, run_id = client(store), the_run(store, "private").info.run_id
    stack, sent = [""], []
    while stack:
        for a in c.list_artifacts(run_id, stack.pop() or None):
            (stack if a.is_dir else sent).append(a.path)
    assert sent and not [p for p in sent if "beeswarm" in p or "waterfall" in p or "private" in p]

    shared, local = tmp_path / "shared.html", tmp_path / "private.html"
    assert atgwin(store, "report", folder, "--out", shared).exit_code == 0
    out = atgwin(store, "report", folder, "--private", "--out", local)
    assert out.exit_code == 0 and "PRIVATE report" in out.output, out.output
    html_private, html_shared = local.read_text(), shared.read_text()
    for fig in ("floor_shap_beeswarm", "floor_shap_waterfall", "ceiling_shap_beeswarm", "ceiling_shap_waterfall"):
        assert f"id='fig-{fig}'" in html_private and fig not in html_shared
    assert "id='private-banner'" in html_private and "private-banner" not in html_shared
    # a tracked run id (its artefacts never hold the views), or a folder without them: a clear error
    by_id = atgwin(store, "report", run_id, "--private", "--out", tmp_path / "x.html")
    assert by_id.exit_code != 0 and "--private needs the local run folder" in by_id.output
    private.rename(tmp_path / "moved.private")
    none = atgwin(store, "report", folder, "--private", "--out", tmp_path / "y.html")
    assert none.exit_code != 0 and "private_views = true" in none.output and "Traceback" not in none.output


def test_unreachable_tracking_server_keeps_every_result_locally(store, tmp_path):
    toml = quick_toml(tmp_path / "offline.toml", name="offline", model="atg-window-offline", n=120)
    env = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
           "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"}
    result = atgwin(store, "run", toml, "--out-dir", tmp_path / "runs", "--run-name", "offline", env=env)
    assert result.exit_code == 3, result.output
    folder = tmp_path / "runs" / "offline"
    assert (folder / "report.html").is_file() and (folder / "window" / "window.json").is_file()
    assert "every result is in" in result.output


def test_a_failed_pk_fit_falls_back_to_the_shipped_model_and_says_so(store, tmp_path, monkeypatch):
    from ml.pk import PopPKModel
    from ml.poppk import PopPKFit

    def broken(self, cohort, y=None):
        raise ValueError("the fit blew up (test)")

    monkeypatch.setattr(PopPKFit, "fit", broken)
    toml = quick_toml(tmp_path / "fallback.toml", name="fallback", model="atg-window-fallback", n=120, features="")
    result = atgwin(store, "run", toml, "--out-dir", tmp_path / "runs", "--run-name", "fallback", "--no-tracking")
    assert result.exit_code == 0, result.output
    assert "poppk" in result.output and "WARNING: the population PK fit failed" in result.output
    folder = tmp_path / "runs" / "fallback"
    results = json.loads((folder / "results.json").read_text())
    assert results["poppk"]["status"] == "fallback"
    assert results["poppk"]["model"] == {"name": "atg-2cmt-linear-mm", "digest": PopPKModel.default().digest,
                                         "source": "shipped"}
    manifest = json.loads((folder / "run.json").read_text())
    assert any("the fit blew up (test)" in w for w in manifest["warnings"])
    assert not (folder / "window" / "pk_model.toml").exists()
    assert "source shipped" in results["exposure"]["definition"]
    html = (folder / "report.html").read_text()
    assert "id='poppk-warning'" in html and "the fit blew up (test)" in html


def test_bad_experiment_file_is_a_usage_error(store, tmp_path):
    toml = tmp_path / "bad.toml"
    toml.write_text('name = "x"\n[window]\nscores = "magic"\npermutations = -1\n')
    result = run(store, toml, "bad")
    assert result.exit_code == 2
    assert "window.scores: must be one of" in result.output and "window.permutations: must be >= 0" in result.output


def test_transport_experiment_puts_both_windows_side_by_side(store, tmp_path):
    extra = "[transport]\nscenario = \"urd\"\nn = 200\nseed = 1\n"
    toml = quick_toml(tmp_path / "transport.toml", name="transport", model="atg-window-haplo-test",
                      scenario="haplo", n=106, extra=extra)
    result = atgwin(store, "run", toml, "--out-dir", tmp_path / "runs", "--run-name", "transport", "--no-tracking")
    assert result.exit_code == 0, result.output
    assert "[7/8] transport" in result.output
    folder = tmp_path / "runs" / "transport"
    results = json.loads((folder / "results.json").read_text())
    t = results["transport"]
    assert results["window"]["artefact"]["population"]["donor_source"] == "haplo"
    assert t["cohort"]["donor_source"] == "URD" and t["rederived"]["artefact"]["population"]["n"] == 200
    # a benefit-harm window is scored side by side on the other cohort (each side's harmed group vs the rest)
    assert set(t["evaluation"]) <= {"floor", "ceiling"}
    for side in t["evaluation"].values():
        assert side["n"] == 200 and side["n_permutations"] == 49
    # one window artefact for the registry (the haplo window); the URD windows live under transport/
    windows = [p for p in folder.rglob("*.json")
               if {"unit", "status", "target"} <= set(json.loads(p.read_text()))]
    assert sorted(p.relative_to(folder).as_posix() for p in windows) == ["transport/target_window.json",
                                                                         "window/window.json"]
    html = (folder / "report.html").read_text()
    assert "id='transport-side-by-side'" in html and "id='fig-transport'" in html
    assert "haplo window (derived)" in html and "URD window (re-derived)" in html
    assert "id='fig-transport_side_profiles'" in html and "id='fig-transport_floor_incidence'" in html


def test_a_failing_middle_step_fails_the_run_and_registers_nothing(store, tmp_path):
    features = f'covariates = ["age_years", "blood_group"]\n{SHIPPED}'
    toml = quick_toml(tmp_path / "broken.toml", name="broken", model="atg-window-broken", features=features)
    result = run(store, toml, "broken")
    assert result.exit_code == 1
    assert "[4/7] models    FAILED" in result.output and "Run FAILED at step 'models'" in result.output
    assert "blood_group" in result.output
    r = the_run(store, "broken")
    assert r.info.status == "FAILED" and r.data.tags["atgwin.failed_step"] == "models"
    assert not client(store).search_registered_models(filter_string="name = 'atg-window-broken'")
    manifest = json.loads((store["runs"] / "broken" / "run.json").read_text())
    assert manifest["registry"]["note"] == "not registered: the run failed at step 'models'"


def test_a_composite_run_keeps_one_model_of_its_endpoint(tmp_path):
    extra = ""
    toml = quick_toml(tmp_path / "composite.toml", name="composite", model="atg-window-composite", n=200, seed=2,
                      extra=extra)
    text = toml.read_text().replace('[endpoint]\n', '[endpoint]\nname = "cmv|ebv|agvhd2|death"\n')
    toml.write_text(text.replace("bootstraps = 20", "bootstraps = 10").replace("permutations = 49", "permutations = 19"))
    result = CliRunner().invoke(main, ["run", str(toml), "--out-dir", str(tmp_path / "runs"), "--run-name", "c",
                                       "--no-tracking"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "runs" / "c"
    results = json.loads((folder / "results.json").read_text())
    assert list(results["models"]["fits"]) == ["composite"]
    assert results["models"]["fits"]["composite"]["endpoint"] == "cmv|ebv|agvhd2|death"
    metrics = json.loads((folder / "run.json").read_text())["metrics"]
    assert {"xgb_harrell_c_mean", "cox_ibs_mean", "shap_window_lower"} <= set(metrics)
    assert not any(k.startswith(("floor_", "ceiling_")) for k in metrics)
    html = (folder / "report.html").read_text()
    assert "id='sides'" not in html and "id='window-sentence'" in html and "id='fig-shap_dependence'" in html
