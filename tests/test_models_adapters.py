"""Backend label adapters, Kaplan-Meier and the Breslow baseline.

References: scikit-survival 0.28's ``kaplan_meier_estimator``, ``nelson_aalen_estimator`` and
``CoxPHSurvivalAnalysis`` (whose survival functions use its own ``BreslowEstimator``), and the
closed form of XGBoost's label conventions (xgboost docs, "Survival Analysis with Accelerated
Failure Time" and the ``survival:cox`` objective: negative label = right-censored).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.nonparametric import kaplan_meier_estimator, nelson_aalen_estimator

from ml.models import (
    MIN_TIME,
    BreslowBaseline,
    XGBSurvival,
    cause_specific_target,
    kaplan_meier,
    to_xgb_aft_bounds,
    to_xgb_cox_label,
)


def _y(event, time):
    y = np.empty(len(event), dtype=[("event", bool), ("time", "f8")])
    y["event"], y["time"] = event, time
    return y


def _survival_data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    t = np.round(rng.exponential(100 * np.exp(-0.5 * X[:, 0])), 0) + 1  # ties on whole days
    c = rng.uniform(20, 300, n).round()
    return X, _y(t <= c, np.minimum(t, c))


def test_cox_label_is_time_with_sign_of_censoring():
    y = _y([True, False, True, False], [5.0, 7.0, 0.0, 0.0])
    np.testing.assert_array_equal(to_xgb_cox_label(y), [5.0, -7.0, MIN_TIME, -MIN_TIME])


def test_aft_bounds_are_degenerate_for_events_and_open_for_censoring():
    lower, upper = to_xgb_aft_bounds(_y([True, False], [5.0, 7.0]))
    np.testing.assert_array_equal(lower, [5.0, 7.0])
    np.testing.assert_array_equal(upper, [5.0, np.inf])


def test_competing_target_is_read_cause_specifically():
    y = np.array([(1, 3.0), (2, 4.0), (0, 5.0)], dtype=[("event", "i1"), ("time", "f8")])
    np.testing.assert_array_equal(to_xgb_cox_label(y), [3.0, -4.0, -5.0])
    np.testing.assert_array_equal(cause_specific_target(y, 2)["event"], [False, True, False])


@pytest.mark.parametrize("y, message", [
    (np.array([1.0, 2.0]), "structured array with fields ('event', 'time')"),
    (_y([True], [-1.0]), "times must be finite and >= 0"),
    (_y([True], [np.nan]), "times must be finite and >= 0"),
])
def test_bad_targets_are_refused(y, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        to_xgb_cox_label(y)
    assert message in str(err.value)


def test_kaplan_meier_matches_scikit_survival():
    _, y = _survival_data()
    t_ref, s_ref = kaplan_meier_estimator(y["event"], y["time"])
    t, s = kaplan_meier(y["event"], y["time"])
    keep = np.isin(t_ref, t)  # sksurv also lists censoring-only times (no drop there)
    np.testing.assert_allclose(t, t_ref[keep])
    np.testing.assert_allclose(s, s_ref[keep], rtol=1e-12)


def test_breslow_with_zero_predictor_is_nelson_aalen():
    _, y = _survival_data()
    base = BreslowBaseline().fit(np.zeros(len(y)), y["event"], y["time"])
    t_ref, h_ref = nelson_aalen_estimator(y["event"], y["time"])
    np.testing.assert_allclose(base.cumulative_hazard(np.zeros(1), t_ref)[0], h_ref, rtol=1e-12)


def test_breslow_matches_scikit_survival_coxph_survival_functions():
    X, y = _survival_data()
    cox = CoxPHSurvivalAnalysis(ties="breslow").fit(X, y)
    base = BreslowBaseline().fit(X @ cox.coef_, y["event"], y["time"])
    ref = cox.predict_survival_function(X[:5], return_array=True)
    ours = base.survival(X[:5] @ cox.coef_, cox.unique_times_)
    np.testing.assert_allclose(ours, ref, rtol=1e-10)


def test_xgb_cox_survival_is_breslow_on_its_margin():
    X, y = _survival_data()
    model = XGBSurvival(n_estimators=20, n_jobs=1, random_state=0).fit(X, y)
    margin = model.predict(X)
    base = BreslowBaseline().fit(margin, y["event"], y["time"])  # closed form, refitted
    times = np.array([1.0, 30.0, 90.0, 400.0])
    np.testing.assert_allclose(model.predict_survival_at(X[:4], times),
                               base.survival(margin[:4], times), rtol=1e-10)
    # H(t | x) = exp(eta(x)) H0(t): hazards of two patients are proportional
    chf = model.predict_cumulative_hazard_function(X[:2], return_array=True)
    ratio = chf[0, 5:] / chf[1, 5:]
    np.testing.assert_allclose(ratio, np.exp(margin[0] - margin[1]), rtol=1e-9)
    fns = model.predict_survival_function(X[:1])
    np.testing.assert_allclose(fns[0](times[1:3]), model.predict_survival_at(X[:1], times[1:3])[0])
