"""``atgwin poppk fit``: files written, JSON printed, and the fitted model accepted by the
simulator and the dosing engine in place of the default (a short fit on a small cohort: this
checks the plumbing, not the accuracy, which tests/test_poppk_fit.py checks)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ml.cli import main
from ml.cohort import write_cohort
from ml.pk import PARAMETERS, PopPKModel
from ml.poppk import read_model
from ml.sim import simulate_cohort

FAST = ["--explore", "20", "--smooth", "5", "--seed", "1"]


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("poppk") / "cohort"
    write_cohort(simulate_cohort("urd", n=40, seed=11), folder)
    return folder


@pytest.fixture(scope="module")
def fitted(cohort_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("poppk-out")
    result = CliRunner().invoke(main, ["poppk", "fit", str(cohort_dir), "--out",
                                       str(out / "model.json"), "--json", "--figures",
                                       str(out / "fig"), "--vpc-sims", "20", *FAST])
    return result, out


def test_json_output_has_the_issue_keys(fitted):
    result, _ = fitted
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary) >= {"typical", "iiv_cv", "residual"}
    assert set(summary["typical"]) == set(PARAMETERS)
    assert set(summary["iiv_cv"]) == {"CL", "V1", "Vmax"}
    assert {"additive", "proportional", "lloq"} <= set(summary["residual"])
    assert all(v > 0 for v in summary["typical"].values())


def test_model_json_is_the_declarative_format_and_usable(fitted, cohort_dir):
    _, out = fitted
    data = json.loads((out / "model.json").read_text())
    assert set(data) >= {"model", "typical", "covariates", "iiv", "residual", "fit"}
    assert data["model"]["status"] == "fitted"
    model = read_model(out / "model.json")
    # the same content as TOML is what PopPKModel (simulator, dosing engine) reads
    toml_path = out / "model.toml"
    toml_path.write_text(model.to_toml_string())
    again = PopPKModel.from_toml(toml_path)
    assert again.typical == model.typical and again.iiv == model.iiv
    virtual = simulate_cohort("urd", n=5, seed=2, pk_model=again)
    assert virtual.levels["concentration"].notna().any()
    from ml.dosing import DosingEngine
    assert DosingEngine(model=again).model.typical == model.typical


def test_toml_out_and_table_output(cohort_dir, tmp_path):
    result = CliRunner().invoke(main, ["poppk", "fit", str(cohort_dir), "--out",
                                       str(tmp_path / "m.toml"), *FAST])
    assert result.exit_code == 0, result.output
    assert "typical CL" in result.stdout and "-2LL" in result.stdout
    model = PopPKModel.from_toml(tmp_path / "m.toml")
    assert model.status == "fitted"
    assert "se_typical" in model.extra


def test_figures_are_written(fitted):
    _, out = fitted
    for name in ("gof.png", "vpc.png", "eta.png", "trace.png"):
        assert (out / "fig" / name).stat().st_size > 10_000


def test_cohort_without_levels_is_refused(tmp_path):
    from dataclasses import replace
    cohort = simulate_cohort("urd", n=5, seed=3)
    patients = cohort.patients.assign(auc_total=100.0)
    folder = write_cohort(replace(cohort, patients=patients, doses=None, levels=None), tmp_path / "c")
    result = CliRunner().invoke(main, ["poppk", "fit", str(folder), *FAST])
    assert result.exit_code != 0
    assert "no atg_doses/atg_levels" in result.output
