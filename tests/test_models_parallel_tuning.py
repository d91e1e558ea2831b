"""Parallel tuning: worker processes join one Optuna study on a journal file and agree on its best trial.

The reference is the storage itself: the best trial that ``optuna.load_study(...).best_trial`` reads
back from the journal file after the workers ended (Optuna's own implementation), which every
worker's report and the returned result must name, number, value and parameters alike.
"""

from __future__ import annotations

import multiprocessing
import os
import time

import optuna
import pytest

from ml.models import (
    JournalTuningStorage,
    RDBTuningStorage,
    harrell_c_score,
    quiet_optuna,
    tune_xgb_survival,
    tuning_storage,
)

from test_models_tuning import BASE, SMALL, u_shaped


def slow_c(estimator, X, y) -> float:
    """Harrell's C after 0.1 s: trials last long enough for both workers to take some."""
    time.sleep(0.1)
    return harrell_c_score(estimator, X, y)


def one_worker(path: str, name: str, worker: int):
    """A worker process: joins the study ``name`` in the journal ``path`` (like a second machine would)."""
    X, y = u_shaped(160)
    with quiet_optuna():
        res = tune_xgb_survival(X, y, estimator=BASE, space=SMALL, n_trials=12, n_splits=2, scoring=slow_c,
                                random_state=5, refit=False, storage=JournalTuningStorage(path), study_name=name,
                                first_worker=worker)
    (report,) = res.workers
    return report, res.best_trial


def test_two_worker_processes_share_one_study_and_see_the_same_best_trial(tmp_path):
    path = str(tmp_path / "tuning.log")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        out = pool.starmap(one_worker, [(path, "shared", 0), (path, "shared", 1)])
    reports = [r for r, _ in out]

    study = optuna.load_study(study_name="shared", storage=JournalTuningStorage(path).open())
    best = study.best_trial  # read back from the file, after both workers ended
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len({r.pid for r in reports}) == 2 and os.getpid() not in {r.pid for r in reports}
    assert all(r.n_own_trials >= 1 for r in reports), reports  # both workers ran trials of the one study
    assert sum(r.n_own_trials for r in reports) == len(finished) == len(study.trials)
    assert 12 <= len(study.trials) <= 13  # n_trials is the study's total (+ at most one per extra worker)
    for report, best_number in out:
        assert report.best_trial == best_number == best.number
        assert report.best_value == best.value and report.best_params == best.params
    assert best.value == max(t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)


def test_n_workers_spawns_processes_that_join_the_study(tmp_path):
    X, y = u_shaped(160)
    storage = JournalTuningStorage(str(tmp_path / "tuning.log"))
    with quiet_optuna():
        res = tune_xgb_survival(X, y, estimator=BASE, space=SMALL, n_trials=8, n_splits=2, scoring=slow_c,
                                random_state=1, storage=storage, study_name="two", n_workers=2)
    assert [w.worker for w in res.workers] == [0, 1] and res.workers[0].pid == os.getpid() != res.workers[1].pid
    back = optuna.load_study(study_name="two", storage=storage.open()).best_trial
    assert {(w.best_trial, w.best_value) for w in res.workers} == {(back.number, back.value)}
    assert (res.best_trial, res.best_score, res.best_params) == (back.number, back.value, back.params)
    assert res.best_estimator.get_params()["max_depth"] == back.params["max_depth"]  # refitted on the best
    info = res.storage_info()
    assert info == {"storage": storage.describe(), "study_name": "two", "best_trial": back.number, "n_workers": 2}
    assert res.to_dict()["tuning_n_workers"] == 2.0


def test_several_workers_need_a_shared_storage():
    X, y = u_shaped(160)
    with pytest.raises(ValueError, match="needs a storage every worker can reach"):
        tune_xgb_survival(X, y, estimator=BASE, space=SMALL, n_trials=2, n_workers=2)


def test_storage_from_text_and_what_a_run_records(tmp_path):
    j = tuning_storage(f"journal:{tmp_path}/t.log")
    assert j == JournalTuningStorage(f"{tmp_path}/t.log") and str(j) == f"journal:{tmp_path}/t.log"
    r = tuning_storage("postgresql+psycopg2://atgwin:s3cret@db.example:5432/optuna")
    assert isinstance(r, RDBTuningStorage)
    assert r.describe() == "postgresql+psycopg2://atgwin:***@db.example:5432/optuna"
    assert "s3cret" not in str(r) and "s3cret" not in repr(r)
    for bad in ("journal:", "tuning.log", "redis://x"):
        with pytest.raises(ValueError, match="tuning storage"):
            tuning_storage(bad)


def test_the_experiment_file_names_the_storage_and_the_workers(tmp_path):
    from ml.experiments import ExperimentError, load_experiment

    toml = tmp_path / "e.toml"
    toml.write_text(f'name = "x"\n[models]\ntuning_storage = "journal:{tmp_path}/t.log"\ntuning_workers = 2\n')
    e = load_experiment(toml)
    assert e.models.tuning_storage == JournalTuningStorage(f"{tmp_path}/t.log") and e.models.tuning_workers == 2
    assert e.params()["models.tuning_storage"] == f"journal:{tmp_path}/t.log"  # the run's MLflow parameter
    toml.write_text('name = "x"\n[models]\ntuning_workers = 2\n')
    with pytest.raises(ExperimentError, match="models.tuning_workers: 2 workers need models.tuning_storage"):
        load_experiment(toml)
    toml.write_text('name = "x"\n[models]\ntuning_storage = "tuning.log"\n')
    with pytest.raises(ExperimentError, match="models.tuning_storage: tuning storage 'tuning.log'"):
        load_experiment(toml)
