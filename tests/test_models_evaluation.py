"""Repeated stratified cross-validation and calibration (ml.models._evaluation).

References: scikit-survival 0.28 metrics (``concordance_index_censored`` recomputed on the
same folds), the Kaplan-Meier estimate for observed risk, and a closed-form calibrated model
(exponential times with known hazards, no censoring: predicted risk ``1 - exp(-lambda h)``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.metrics import concordance_index_censored

from ml.models import (
    METRICS,
    CoxSplineModel,
    calibration_summary,
    calibration_table,
    cross_validate_survival,
    survival_at,
)


def u_shaped(n=300, seed=0):
    rng = np.random.default_rng(seed)
    auc = rng.lognormal(np.log(125.0), 0.3, n)
    age = rng.normal(45, 12, n)
    lh = 0.8 * ((auc < 100) | (auc >= 150)) + 0.03 * (age - 45)
    t = rng.exponential(200.0 * np.exp(-lh))
    c = rng.uniform(60, 400, n)
    y = np.empty(n, dtype=[("event", bool), ("time", "f8")])
    y["event"], y["time"] = t <= c, np.minimum(t, c)
    return pd.DataFrame({"auc_total": auc, "age": age}), y


@pytest.fixture(scope="module")
def cv_result():
    X, y = u_shaped()
    return X, y, cross_validate_survival(CoxSplineModel(n_knots=3), X, y, horizon=180.0,
                                         n_splits=5, n_repeats=3, random_state=0)


def test_summary_has_every_metric_with_mean_and_spread(cv_result):
    _, _, res = cv_result
    assert list(res.summary.index) == list(METRICS)
    assert res.summary["sd"].notna().all() and (res.summary["sd"] >= 0).all()
    assert res.summary.loc["harrell_c", "mean"] > 0.6  # true effects: U-shape and age
    assert 0 < res.summary.loc["ibs", "mean"] < 0.25  # below the uninformative 0.25
    d = res.to_dict()
    assert set(d) == {f"{m}_{s}" for m in METRICS for s in ("mean", "sd", "ci_low", "ci_high")}
    # mean of per-repeat means
    per_repeat = res.scores[res.scores.metric == "uno_c"].groupby("repeat")["value"].mean()
    np.testing.assert_allclose(d["uno_c_mean"], per_repeat.mean())
    np.testing.assert_allclose(d["uno_c_sd"], per_repeat.std(ddof=1))


def test_fold_scores_are_scikit_survival_metrics_on_event_stratified_folds(cv_result):
    X, y, res = cv_result
    cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=3, random_state=0)
    splits = list(cv.split(np.zeros(len(y)), y["event"]))
    tr, te = splits[7]  # repeat 1, fold 2
    model = CoxSplineModel(n_knots=3).fit(X.iloc[tr], y[tr])
    expected = concordance_index_censored(y["event"][te], y["time"][te], model.predict(X.iloc[te]))[0]
    got = res.scores.query("repeat == 1 and fold == 2 and metric == 'harrell_c'")["value"].item()
    np.testing.assert_allclose(got, expected)
    events_per_fold = [y["event"][te].sum() for _, te in splits[:5]]
    assert max(events_per_fold) - min(events_per_fold) <= 1


def test_same_seed_same_result():
    X, y = u_shaped(150)
    a = cross_validate_survival(CoxSplineModel(n_knots=3), X, y, horizon=150.0, n_splits=3,
                                n_repeats=2, random_state=5)
    b = cross_validate_survival(CoxSplineModel(n_knots=3), X, y, horizon=150.0, n_splits=3,
                                n_repeats=2, random_state=5)
    pd.testing.assert_frame_equal(a.scores, b.scores)


def _calibrated(n=4000, seed=0, horizon=100.0):
    rng = np.random.default_rng(seed)
    lam = rng.choice([0.002, 0.005, 0.01, 0.02], n)
    t = rng.exponential(1 / lam)
    y = np.empty(n, dtype=[("event", bool), ("time", "f8")])
    y["event"], y["time"] = True, t
    return 1 - np.exp(-lam * horizon), y


def test_calibration_of_a_true_model_is_near_perfect_and_a_shift_is_measured():
    risk, y = _calibrated()
    table = calibration_table(risk, y, 100.0, n_groups=10)
    assert table["n"].sum() == len(y)
    summ = calibration_summary(table)
    assert summ["calib_error"] < 0.03
    assert abs(summ["calib_oe"] - 1) < 0.05
    shifted = calibration_summary(calibration_table(risk + 0.2, y, 100.0))
    np.testing.assert_allclose(shifted["calib_error"], 0.2, atol=0.03)
    # O/E of the shifted model: (mean true risk) / (mean true risk + 0.2)
    np.testing.assert_allclose(shifted["calib_oe"], risk.mean() / (risk.mean() + 0.2), rtol=0.03)


def test_calibration_figure_is_a_detached_figure(cv_result):
    fig = cv_result[2].calibration_figure()
    assert isinstance(fig, Figure)
    assert "mean |obs - pred|" in fig.axes[0].get_title()
    assert len(fig.axes[0].lines) == 3 + 1  # one line per repeat and the diagonal


def test_survival_at_handles_pipelines_and_scikit_survival_estimators():
    X, y = u_shaped(150)
    times = np.array([5.0, 50.0, 150.0])
    sk = make_pipeline(StandardScaler(), CoxPHSurvivalAnalysis()).fit(X, y)
    fns = sk.predict_survival_function(X.iloc[:3])
    expected = np.vstack([f(times) for f in fns])
    np.testing.assert_allclose(survival_at(sk, X.iloc[:3], times), expected, rtol=1e-12)


def test_intervals_are_mean_plus_minus_z_times_pooled_fold_se(cv_result):
    _, _, res = cv_result
    ci = res.intervals(0.95)
    assert list(ci.index) == list(METRICS)
    # closed form by hand: fold values about their repeat's mean, pooled (ddof = one mean per repeat)
    d = res.scores[(res.scores.metric == "harrell_c") & (res.scores.fold >= 0)]
    dev = d["value"] - d.groupby("repeat")["value"].transform("mean")
    k = d["fold"].nunique()
    r = d["repeat"].nunique()
    se = np.sqrt((dev ** 2).sum() / (len(d) - r)) / np.sqrt(k)
    m = res.summary.loc["harrell_c", "mean"]
    np.testing.assert_allclose(ci.loc["harrell_c", ["se", "ci_low", "ci_high"]].to_numpy(dtype=float),
                               [se, m - 1.959963984540054 * se, m + 1.959963984540054 * se])
    # per-repeat metrics (calibration): the SD across repeats
    cal = res.scores[res.scores.metric == "calib_error"]["value"]
    np.testing.assert_allclose(ci.loc["calib_error", "se"], cal.std(ddof=1))
    assert not res.at_chance()  # true effects: its C interval lies above 0.5


def test_a_model_of_noise_is_at_chance():
    from ml.models import cross_validate_survival

    rng = np.random.default_rng(3)
    n = 300
    X = pd.DataFrame({"auc_total": rng.normal(120, 30, n), "z": rng.normal(size=n)})
    y = np.empty(n, dtype=[("event", bool), ("time", "f8")])
    t, c = rng.exponential(200.0, n), rng.uniform(50, 400, n)
    y["event"], y["time"] = t <= c, np.minimum(t, c)
    res = cross_validate_survival(CoxSplineModel(), X, y, horizon=180.0, n_splits=5, n_repeats=2, random_state=0)
    assert res.at_chance()
