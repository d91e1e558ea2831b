"""atgwin simulate / validate / exposure, end to end through the click entry point."""

import pandas as pd
from click.testing import CliRunner

from ml.cli import main


def test_simulate_validate_exposure(tmp_path):
    runner = CliRunner()
    out = tmp_path / "cohort"
    res = runner.invoke(main, ["simulate", "--scenario", "urd", "--n", "60", "--seed", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "SIMULATED" in res.output and "true floor 100, ceiling 148.5 UE*day/mL" in res.output
    res = runner.invoke(main, ["validate", str(out)])
    assert res.exit_code == 0, res.output
    table_path = tmp_path / "auc.csv"
    res = runner.invoke(main, ["exposure", str(out), "--out", str(table_path)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(table_path)
    assert list(table.columns[:4]) == ["patient_id", "auc_pre", "auc_post", "auc_total"]
    assert len(table) == 60 and (table["unit"] == "UE*day/mL").all() and table["simulated"].all()
    assert ((table["auc_total"] - table["auc_pre"] - table["auc_post"]).abs() < 1e-3).all()


def test_simulate_refuses_to_overwrite_and_unknown_scenario(tmp_path):
    runner = CliRunner()
    out = tmp_path / "c"
    assert runner.invoke(main, ["simulate", "--n", "5", "--out", str(out)]).exit_code == 0
    res = runner.invoke(main, ["simulate", "--n", "5", "--out", str(out)])
    assert res.exit_code != 0 and "already" in res.output
    res = runner.invoke(main, ["simulate", "--scenario", "bogus", "--out", str(tmp_path / "d")])
    assert res.exit_code != 0 and "unknown scenario 'bogus'" in res.output


def test_exposure_refuses_an_invalid_cohort(tmp_path):
    runner = CliRunner()
    out = tmp_path / "c"
    runner.invoke(main, ["simulate", "--n", "5", "--out", str(out)])
    patients = (out / "patients.csv").read_text().splitlines()
    patients[2] = patients[2].replace("URD", "XYZ", 1)
    (out / "patients.csv").write_text("\n".join(patients) + "\n")
    res = runner.invoke(main, ["exposure", str(out)])
    assert res.exit_code == 1
    assert "patients.donor_type" in res.output and "rows [3]" in res.output


def test_exposure_by_map_and_its_option_errors(tmp_path):
    runner = CliRunner()
    out = tmp_path / "c"
    runner.invoke(main, ["simulate", "--n", "30", "--seed", "2", "--out", str(out)])
    res = runner.invoke(main, ["exposure", str(out), "--exposure-method", "map", "--out", str(tmp_path / "a.csv")])
    assert res.exit_code == 0, res.output
    assert "MAP Bayesian, M3 for levels below the LLOQ; population PK model atg-2cmt-linear-mm" in res.output
    assert "30 with an AUC, 0 excluded" in res.output
    table = pd.read_csv(tmp_path / "a.csv")
    assert (table["method"] == "map").all() and table["auc_total"].notna().all()
    res = runner.invoke(main, ["exposure", str(out), "--exposure-method", "nca", "--pk-model", "pyproject.toml"])
    assert res.exit_code == 2 and "--pk-model only applies to --exposure-method map" in res.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[typical]\nCL = 1\n")
    res = runner.invoke(main, ["exposure", str(out), "--exposure-method", "map", "--pk-model", str(bad)])
    assert res.exit_code == 1 and "not a population PK model" in res.output
