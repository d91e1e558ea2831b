"""Experiment files: the shipped ones parse to the documented defaults; bad files list every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.experiments import ExperimentError, load_experiment, parse_experiment
from ml.window import LogRankScores, QuantileGrid

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def test_default_experiment_is_the_done_when_pipeline():
    e = load_experiment(EXPERIMENTS / "urd_window.toml")
    assert (e.cohort.scenario, e.cohort.n) == ("urd", 324) and e.cohort.path is None
    assert (e.window.permutations, e.window.bootstraps, e.models.n_trials) == (1000, 1000, 30)
    assert isinstance(e.window.scores, LogRankScores) and isinstance(e.window.grid, QuantileGrid)
    assert e.window.grid.get_params() == {"k": 40, "minprop": 0.1, "maxprop": None}
    # the benefit-harm window: a floor against acute and chronic GVHD by day 730, a ceiling against CMV/EBV by day 180
    assert e.endpoint.kind == "benefit-harm" and e.endpoint.name is None
    assert (e.endpoint.floor, e.endpoint.ceiling) == (("agvhd2", "cgvhd"), ("cmv", "ebv"))
    assert (e.endpoint.floor_horizon_days, e.endpoint.ceiling_horizon_days) == (730, 180)
    assert e.model_name == "atg-window-urd" and e.transport is None
    assert e.promotion.gates().max_ci_width == 50.0
    # exposure: MAP + M3 under a population model fitted to the cohort first ([poppk] budget)
    assert e.features.exposure_method == "map" and e.features.pk_model is None
    assert (e.poppk.n_explore, e.poppk.n_smooth) == (None, None) and e.poppk.vpc_sims > 0  # PopPKFit defaults
    assert parse_experiment('name = "d"\n').poppk.n_explore is None  # without [poppk]: PopPKFit's defaults
    from ml.pk import MAPExposure, NCAExposure

    assert isinstance(e.features.strategy(), MAPExposure)
    assert isinstance(parse_experiment('name = "n"\n[features]\nexposure_method = "nca"\n').features.strategy(),
                      NCAExposure)


def test_transport_experiment_derives_on_haplo_and_transports_to_urd():
    e = load_experiment(EXPERIMENTS / "haplo_transport.toml")
    assert (e.cohort.scenario, e.cohort.n) == ("haplo", 106)
    assert e.transport is not None and (e.transport.scenario, e.transport.n) == ("urd", 324)


def test_cohort_folder_replaces_the_virtual_cohort(tmp_path):
    e = load_experiment(EXPERIMENTS / "urd_window.toml").with_cohort(tmp_path)
    assert e.cohort.path == str(tmp_path) and e.cohort.scenario is None
    assert e.cohort.describe() == f"folder {tmp_path}"
    assert e.params()["cohort.source"] == f"folder {tmp_path}"


def test_strings_become_strategy_objects_once():
    e = parse_experiment('name = "adj"\n[endpoint]\nname = "cmv"\n[window]\nscores = "cox-martingale"\n'
                         'covariates = ["age_years"]\n')
    assert e.endpoint.kind == "composite"
    from ml.window import CoxMartingaleScores

    assert isinstance(e.window.scores, CoxMartingaleScores) and e.window.covariates == ("age_years",)
    assert e.params()["window.scores"] == "CoxMartingaleScores()"


@pytest.mark.parametrize("text, expected", [
    ('name = "x"\n[endpoint]\nname = "cmv"\n[window]\nscores = "magic"\n',
     "window.scores: must be one of ['logrank', 'cox-martingale', 'subdistribution'], got 'magic'"),
    ('name = "x"\n[window]\npermutations = -1\n', "window.permutations: must be >= 0, got -1"),
    ('name = "x"\n[window]\nbootstraps = 0\n',
     "window.estimate: 'smoothed' comes from the bootstrap windows; needs bootstraps >= 1"),
    ('name = "x"\n[endpoint]\nname = "cmv"\n[window]\nci_method = "ij"\n',
     "window.ci_method: must be ij (benefit-harm search only), percentile or basic, got 'ij'"),
    ('name = "x"\n[window]\ngrid_k = "forty"\n', "window.grid_k: must be int, got 'forty'"),
    ('name = "x"\n[endpoint]\nname = "cmv"\n[window]\nscores = "cox-martingale"\n',
     'window.covariates: an adjusted search (scores = "cox-martingale") needs covariates'),
    ('name = "x"\n[endpoint]\nname = "cmv|flu"\n', "endpoint.name: "),
    ('name = "x"\n[endpoint]\nname = "cmv"\nhorizon_days = -3\n',
     'endpoint.horizon_days: must be a number of days > 0 or "none", got -3'),
    ('name = "x"\n[endpoint]\nfloor_horizon_days = -3\n',
     'endpoint.floor_horizon_days: must be a number of days > 0 or "none", got -3'),
    ('name = "x"\n[endpoint]\nceiling = ["cmv", "flu"]\n', "endpoint.ceiling: "),
    ('name = "x"\n[endpoint]\nhorizon_days = 100\n', "[endpoint].horizon_days: the horizon of a composite endpoint"),
    ('name = "x"\n[endpoint]\nname = "cmv"\nfloor = ["agvhd2"]\n',
     "[endpoint]: `name` runs the composite search on one endpoint; floor/ceiling settings belong"),
    ('name = "x"\n[window]\ncovariates = ["age_years"]\n', "window.covariates: only for the composite search"),
    ('name = "x"\n[endpoint]\nname = "cmv"\n[window]\nfloor_covariates = ["hla_mismatches"]\n',
     "window.floor_covariates / ceiling_covariates: only for the benefit-harm search"),
    ('name = "x"\n[cohort]\nscenario = "mars"\n', "cohort.scenario: unknown scenario 'mars'"),
    ('name = "x"\n[cohort]\nn = 5\n', "cohort.n: must be >= 20 patients, got 5"),
    ('name = "x"\n[models]\nobjective = "survival:weibull"\n', "models.objective: must be survival:cox or survival:aft"),
    ('name = "x"\n[models]\nprivate_views = "yes"\n', "models.private_views: must be bool, got 'yes'"),
    ('name = "x"\n[promotion]\nalpha = 1.5\n', "promotion.alpha: must be in (0, 1), got 1.5"),
    ('name = "x"\n[registry]\nmodel_name = "a/b"\n', "registry.model_name: must be a non-empty name without '/' or '@'"),
    ('name = "x"\n[window]\npermutation = 10\n', "[window]: unknown key(s) ['permutation']"),
    ('name = "x"\n[windows]\n', "[windows]: unknown section"),
    ('name = "x"\n[features]\nexposure_method = "auc"\n', "features.exposure_method: must be map or nca, got 'auc'"),
    ('name = "x"\n[features]\npk_model = "no/such/model.toml"\n',
     'features.pk_model: must be an existing model file or "shipped"'),
    ('name = "x"\n[features]\nexposure_method = "nca"\npk_model = "shipped"\n',
     '[features].pk_model: only applies to exposure_method = "map"'),
    ('name = "x"\n[features]\npk_model = "pyproject.toml"\n', "features.pk_model: pyproject.toml is not a population PK model"),
    ('name = "x"\n[poppk]\nn_explore = 5\n', "poppk.n_explore: must be >= 20, got 5"),
    ('name = "x"\n[poppk]\nvpc_sims = 3\n', "poppk.vpc_sims: must be 0 (skip) or >= 20, got 3"),
    ('[window]\n', "name: required"),
    ('name = "x"\n[window\n', "not valid TOML"),
])
def test_bad_experiment_files_are_refused_with_the_rule(text, expected):
    with pytest.raises(ExperimentError) as info:
        parse_experiment(text, "bad.toml")
    assert any(expected in p for p in info.value.problems), info.value.problems


def test_every_problem_is_listed_at_once():
    with pytest.raises(ExperimentError) as info:
        parse_experiment('name = "x"\n[endpoint]\nname = "cmv"\n[window]\nscores = "magic"\npermutations = -1\n'
                         '[models]\nn_trials = 0\n', "f.toml")
    assert len(info.value.problems) == 3
    assert str(info.value).startswith("f.toml: 3 problems")
