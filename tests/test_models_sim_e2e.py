"""End to end on a virtual URD cohort (ml.sim, n = 324): features -> tuned XGBoost -> CV ->
SHAP window, and Cox spline risk curves per outcome.

The simulator's truth (``cohort.meta.truth``: a step effect outside [100, 148.5) UE*day/mL,
GVHD rising below and viral reactivation above) is read here only to check the answers.
"""

from __future__ import annotations

import numpy as np
import pytest

from ml.features import DEFAULT_FEATURES, feature_frame, make_preprocessor, survival_target
from ml.models import (
    CoxSplineModel,
    XGBSearchSpace,
    XGBSurvival,
    bound_setters,
    cross_validate_survival,
    quiet_optuna,
    risk_curves,
    shap_explanation,
    shap_window,
    tune_xgb_survival,
)
from ml.pk import exposure_table
from ml.sim import simulate_cohort


@pytest.fixture(scope="module", autouse=True)
def quiet():
    with quiet_optuna():
        yield


@pytest.fixture(scope="module")
def virtual():
    cohort = simulate_cohort(scenario="urd", n=324, seed=0)
    return cohort, feature_frame(cohort, exposure_table(cohort))


def test_feature_frame_of_a_virtual_cohort(virtual):
    cohort, frame = virtual
    assert list(frame.index) == list(cohort.outcomes["patient_id"])
    Xt = make_preprocessor(DEFAULT_FEATURES).fit_transform(frame)
    assert Xt.shape[0] == 324 and not Xt["auc_total"].isna().any()
    assert {"auc_total", "sex=M", "cmv_serostatus=R+/D-"} <= set(Xt.columns)


def test_tuned_xgboost_and_shap_window_recover_the_simulated_window(virtual):
    cohort, frame = virtual
    truth = cohort.meta.truth
    Xt = make_preprocessor(DEFAULT_FEATURES).fit_transform(frame)
    y = survival_target(cohort.outcomes, "cmv|ebv|agvhd2|death", horizon=365)
    res = tune_xgb_survival(Xt, y, estimator=XGBSurvival(n_jobs=1), n_trials=10, n_splits=3,
                            space=XGBSearchSpace(n_estimators=(50, 150, 25)), random_state=0)
    cv = cross_validate_survival(XGBSurvival(n_jobs=1, random_state=0, **res.best_params), Xt,
                                 y, horizon=180.0, n_splits=5, n_repeats=1, random_state=0)
    assert cv.summary.loc["harrell_c", "mean"] > 0.5
    window = shap_window(shap_explanation(res.best_estimator, Xt))
    assert abs(window.lower - truth["lower"]) < 20
    assert abs(window.upper - truth["upper"]) < 25


def test_cox_risk_curves_show_which_outcome_sets_which_bound(virtual):
    cohort, frame = virtual
    Xc = make_preprocessor(DEFAULT_FEATURES, scale_numeric=True, drop_first=True,
                           min_frequency=10).fit_transform(frame)
    targets = {e: survival_target(cohort.outcomes, e, horizon=365) for e in ("agvhd2", "ebv")}
    curves = risk_curves(Xc, targets, model=CoxSplineModel(), reference=125.0)
    roles = bound_setters(curves, (100.0, 148.5)).set_index("endpoint")
    assert roles.loc["agvhd2", "rises_below"] and not roles.loc["agvhd2", "rises_above"]
    assert roles.loc["ebv", "rises_above"] and not roles.loc["ebv", "rises_below"]
    assert np.isfinite(curves["se"]).all()
