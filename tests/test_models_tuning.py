"""Optuna tuning of XGBoost survival models (seeded TPE, per-fold pruning, callbacks)."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest

from ml.models import (
    TunedXGBSurvival,
    XGBSearchSpace,
    XGBSurvival,
    cross_validate_survival,
    quiet_optuna,
    tune_xgb_survival,
)

# a small space so trials take milliseconds
SMALL = XGBSearchSpace(n_estimators=(10, 40, 10), max_depth=(1, 2))
BASE = XGBSurvival(n_jobs=1)


def u_shaped(n=200, seed=0):
    rng = np.random.default_rng(seed)
    auc = rng.lognormal(np.log(125.0), 0.3, n)
    lh = 0.9 * ((auc < 100) | (auc >= 150))
    t = rng.exponential(200.0 * np.exp(-lh))
    c = rng.uniform(60, 400, n)
    y = np.empty(n, dtype=[("event", bool), ("time", "f8")])
    y["event"], y["time"] = t <= c, np.minimum(t, c)
    return pd.DataFrame({"auc_total": auc, "noise": rng.normal(size=n)}), y


@pytest.fixture(scope="module", autouse=True)
def quiet():
    with quiet_optuna():
        yield


def test_tuning_reports_every_fold_calls_callbacks_and_refits():
    X, y = u_shaped()
    seen = []
    res = tune_xgb_survival(X, y, estimator=BASE, space=SMALL, n_trials=6, n_splits=3,
                            callbacks=[lambda study, trial: seen.append(trial.number)],
                            random_state=0)
    assert seen == list(range(6))  # every trial reaches the callbacks (e.g. a progress bar)
    assert set(res.best_params) == {"max_depth", "learning_rate", "n_estimators",
                                    "min_child_weight", "subsample", "colsample_bytree",
                                    "reg_lambda", "reg_alpha"}
    complete = [t for t in res.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    for t in complete:  # the running mean after each fold, for the pruner
        assert sorted(t.intermediate_values) == [0, 1, 2]
        assert t.value == pytest.approx(t.intermediate_values[2])
    assert res.best_score == max(t.value for t in complete)
    assert res.best_estimator.get_params()["max_depth"] == res.best_params["max_depth"]
    assert res.best_score > 0.5
    assert res.to_dict()["tuning_n_trials"] == 6.0


def test_same_seed_same_study():
    X, y = u_shaped(120)
    kw = dict(estimator=BASE, space=SMALL, n_trials=4, n_splits=2, refit=False, random_state=3)
    a = tune_xgb_survival(X, y, **kw)
    b = tune_xgb_survival(X, y, **kw)
    assert [t.params for t in a.study.trials] == [t.params for t in b.study.trials]
    assert [t.value for t in a.study.trials] == [t.value for t in b.study.trials]


def test_pruner_stops_trials_after_a_fold():
    X, y = u_shaped(120)
    always = optuna.pruners.ThresholdPruner(lower=1.01)  # no C-index reaches it
    with pytest.raises(RuntimeError, match="no Optuna trial completed \\(3 run, all pruned"):
        tune_xgb_survival(X, y, estimator=BASE, space=SMALL, n_trials=3, n_splits=3,
                          pruner=always, random_state=0)


def test_median_pruner_prunes_some_of_many_trials():
    X, y = u_shaped(150)
    res = tune_xgb_survival(X, y, estimator=BASE, space=SMALL, n_trials=20, n_splits=3,
                            refit=False, random_state=1)
    states = [t.state for t in res.study.trials]
    pruned = [t for t in res.study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, states
    assert all(len(t.intermediate_values) < 3 for t in pruned)


def test_nested_cross_validation_tunes_inside_each_outer_fold():
    X, y = u_shaped(150)
    tuned = TunedXGBSurvival(BASE, space=SMALL, n_trials=2, n_splits=2, random_state=0)
    res = cross_validate_survival(tuned, X, y, horizon=150.0, n_splits=2, n_repeats=1,
                                  random_state=0)
    assert np.isfinite(res.summary.loc["harrell_c", "mean"])
    fitted = tuned.fit(X, y)
    assert len(fitted.study_.trials) == 2 and fitted.best_params_
    np.testing.assert_array_equal(fitted.predict(X), fitted.best_estimator_.predict(X))
