"""WindowSearch: estimator contract, input handling, and statistical behaviour on synthetic data.

Synthetic data have a known truth: exponential event times whose hazard is multiplied by
``hr_outside`` outside [100, 150) UE*day/mL (a step, as in ml/sim/default_scenarios.toml), uniform
censoring. Under the null (``hr_outside = 1``) the permutation p-value must be (close to)
uniform, which the naive min-p is not (Altman 1994; Lausen & Schumacher 1992).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from ml.features import COMPETING_DTYPE, SURVIVAL_DTYPE
from ml.window import (
    CoxMartingaleScores,
    LogRankScores,
    QuantileGrid,
    SubdistributionScores,
    WindowSearch,
    cox_fit,
)

FAST = dict(n_permutations=0, n_bootstraps=0, n_folds=0)


def planted(n, seed, hr_outside=3.0, lower=100.0, upper=150.0):
    rng = np.random.default_rng(seed)
    x = rng.lognormal(np.log(125), 0.3, n)
    rate = 0.01 * np.where((x >= lower) & (x < upper), 1.0, hr_outside)
    t = rng.exponential(1 / rate)
    c = rng.uniform(30, 200, n)
    y = np.empty(n, dtype=SURVIVAL_DTYPE)
    y["time"], y["event"] = np.minimum(t, c), t <= c
    return x, y


def test_clone_and_params_follow_sklearn():
    ws = WindowSearch(LogRankScores(ties="maxstat"), QuantileGrid(k=10, minprop=0.15), n_permutations=5,
                      random_state=3)
    c = clone(ws)
    assert c.get_params()["grid__k"] == 10 and c.get_params()["scores__ties"] == "maxstat"
    assert c.get_params()["n_permutations"] == 5
    assert not hasattr(c, "lower_")


def test_init_stores_only_and_fit_validates():
    ws = WindowSearch(n_permutations=-1)  # no error at construction
    x, y = planted(100, 0)
    with pytest.raises(ValueError, match=r"n_permutations must be an integer >= 0, got -1"):
        ws.fit(x, y)
    with pytest.raises(ValueError, match=r"n_folds must be 0 \(skip\) or an integer >= 2, got 1"):
        WindowSearch(n_folds=1).fit(x, y)
    with pytest.raises(ValueError, match=r"ci_method must be one of \('percentile', 'basic'\), got 'bca'"):
        WindowSearch(ci_method="bca").fit(x, y)


def test_missing_exposure_is_excluded_with_a_warning_naming_the_count():
    x, y = planted(200, 1)
    x[[3, 50, 77]] = np.nan
    with pytest.warns(UserWarning, match=r"3 patient\(s\) with missing exposure excluded"):
        ws = WindowSearch(**FAST).fit(x, y)
    assert ws.n_excluded_ == 3 and ws.n_ == 197


@pytest.mark.parametrize("make, message", [
    (lambda x, y: (np.full_like(x, 120.0), y), r"exposure is constant \(every value is 120.0\): no cut point exists"),
    (lambda x, y: (x, _few_events(y)), r"too few events: 4 events of interest among 200 patients, at least min_events=10"),
    (lambda x, y: (np.where(np.arange(x.size) == 0, np.inf, x), y), r"exposure must be finite or missing"),
    (lambda x, y: (x[:-1], y), r"X and y must have the same number of rows, got 199 and 200"),
])
def test_refuses_bad_data(make, message):
    x, y = planted(200, 2)
    x, y = make(x, y)
    with pytest.raises(ValueError, match=message):
        WindowSearch(**FAST).fit(x, y)


def _few_events(y):
    y = y.copy()
    y["event"] = False
    y["event"][:4] = True
    return y


def test_recovers_a_planted_window():
    x, y = planted(800, 3)
    ws = WindowSearch(n_permutations=199, n_bootstraps=100, random_state=0).fit(x, y)
    assert abs(ws.lower_ - 100) < 8 and abs(ws.upper_ - 150) < 8
    assert ws.p_value_ == pytest.approx(1 / 200)  # no permutation reaches the observed maximum
    assert ws.lower_ci_[0] <= 100 <= ws.lower_ci_[1] and ws.upper_ci_[0] <= 150 <= ws.upper_ci_[1]
    assert ws.effect_["hr"] < 0.6 and ws.effect_["ci_high"] < 1
    top = ws.window_frequency_.iloc[0]
    assert abs(top["lower"] - 100) < 10 and abs(top["upper"] - 150) < 10
    assert ws.predict(np.array([90.0, 120.0, 160.0])).tolist() == [False, True, False]


def test_null_p_value_is_calibrated_and_naive_is_not():
    rejected, naive = [], []
    for seed in range(60):
        x, y = planted(120, 100 + seed, hr_outside=1.0)
        ws = WindowSearch(grid=QuantileGrid(k=20), n_permutations=99, n_bootstraps=0, n_folds=0, random_state=seed).fit(x, y)
        rejected.append(ws.p_value_ <= 0.05)
        naive.append(ws.naive_p_value_ <= 0.05)
    # expected 5 %: 3 of 60; 8 or more has probability < 1 % under Binomial(60, 0.05)
    assert sum(rejected) <= 7
    assert sum(naive) >= 20  # the min-p over ~190 windows rejects far too often


def test_same_seed_same_result_and_streams_are_independent():
    x, y = planted(300, 4)
    a = WindowSearch(n_permutations=50, n_bootstraps=20, random_state=7).fit(x, y)
    b = WindowSearch(n_permutations=50, n_bootstraps=20, random_state=7).fit(x, y)
    np.testing.assert_array_equal(a.null_statistics_, b.null_statistics_)
    np.testing.assert_array_equal(a.bootstrap_bounds_, b.bootstrap_bounds_)
    c = WindowSearch(n_permutations=50, n_bootstraps=0, random_state=7).fit(x, y)
    np.testing.assert_array_equal(a.null_statistics_, c.null_statistics_)  # bootstrap draws nothing from it
    d = WindowSearch(n_permutations=50, n_bootstraps=20, random_state=8).fit(x, y)
    assert not np.array_equal(a.null_statistics_, d.null_statistics_)


def test_single_cut_has_one_open_bound():
    x, y = planted(300, 5, hr_outside=1.0)
    rng = np.random.default_rng(0)
    y["event"] = rng.random(300) < np.where(x < 110, 0.9, 0.4)  # low exposure does worse: threshold
    ws = WindowSearch(single_cut=True, **FAST).fit(x, y)
    assert np.isposinf(ws.upper_) and 100 < ws.lower_ < 120
    assert ws.target_ == pytest.approx(np.median(x[x >= ws.lower_]))


def test_adjusted_scores_remove_confounding():
    # The hazard depends on a covariate z only; exposure is correlated with z. The plain search
    # finds a spurious window, the search adjusted for z (Cox martingale residuals) does not.
    rng = np.random.default_rng(9)
    n = 400
    z = rng.normal(size=n)
    x = 120 + 25 * z + rng.normal(0, 10, n)
    t = rng.exponential(1 / (0.01 * np.exp(1.2 * z)))
    c = rng.uniform(30, 200, n)
    y = np.empty(n, dtype=SURVIVAL_DTYPE)
    y["time"], y["event"] = np.minimum(t, c), t <= c
    X = pd.DataFrame({"auc_total": x, "z": z})
    plain = WindowSearch(n_permutations=199, n_bootstraps=0, n_folds=0, exposure="auc_total",
                         random_state=1).fit(X, y)
    adjusted = WindowSearch(CoxMartingaleScores(), n_permutations=199, n_bootstraps=0, n_folds=0,
                            exposure="auc_total", random_state=1).fit(X, y)
    assert plain.p_value_ < 0.01
    assert adjusted.p_value_ > 0.05
    # the adjusted scores are the martingale residuals of the covariate-only Cox model
    s = CoxMartingaleScores().scores(y, z[:, None])
    np.testing.assert_allclose(s, cox_fit(y["time"], y["event"], z[:, None]).martingale)


def test_competing_targets_are_accepted():
    x, ys = planted(300, 6)
    rng = np.random.default_rng(1)
    y = np.empty(300, dtype=COMPETING_DTYPE)
    y["time"] = ys["time"]
    y["event"] = np.where(ys["event"], 1, np.where(rng.random(300) < 0.3, 2, 0))
    cs = WindowSearch(**FAST).fit(x, y)
    surv = ys.copy()
    surv["event"] = y["event"] == 1
    same = WindowSearch(**FAST).fit(x, surv)
    assert cs.statistic_ == pytest.approx(same.statistic_)  # cause-specific: competing = censored
    sub = WindowSearch(SubdistributionScores(), **FAST).fit(x, y)
    assert np.isfinite(sub.statistic_) and sub.statistic_ != pytest.approx(cs.statistic_)


def test_cross_fitted_hr_is_honest_under_the_null():
    # Under the null the in-sample HR of the selected window is biased away from 1, the
    # cross-fitted one is not: average log-HR over several null data sets.
    from ml.window import hazard_ratio

    cross, naive = [], []
    for seed in range(12):
        x, y = planted(300, 200 + seed, hr_outside=1.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ws = WindowSearch(n_permutations=0, n_bootstraps=0, n_folds=5, random_state=seed).fit(x, y)
        cross.append(np.log(ws.effect_["hr"]))
        naive.append(np.log(hazard_ratio(ws.predict(x), y["time"], y["event"])["hr"]))
    assert np.mean(naive) < -0.2  # selected window looks protective in-sample
    assert abs(np.mean(cross)) < 0.12


def test_bagged_estimate_is_the_median_of_the_bootstrap_windows():
    x, y = planted(400, 10)
    a = WindowSearch(n_permutations=0, n_bootstraps=60, n_folds=3, random_state=2).fit(x, y)
    b = WindowSearch(n_permutations=0, n_bootstraps=60, n_folds=3, estimate="bagged", random_state=2).fit(x, y)
    np.testing.assert_array_equal(a.bootstrap_bounds_, b.bootstrap_bounds_)
    assert (b.lower_, b.upper_) == tuple(np.median(b.bootstrap_bounds_, axis=0))
    assert (a.lower_, a.upper_) == a.argmax_bounds_ == b.argmax_bounds_
    assert b.lower_ci_ == a.lower_ci_  # percentile intervals do not depend on the point estimate
    assert b.target_ == pytest.approx((b.lower_ + b.upper_) / 2)
    with pytest.raises(ValueError, match=r"estimate='bagged' is the median of the bootstrap bounds: it needs n_bootstraps >= 1"):
        WindowSearch(estimate="bagged", n_bootstraps=0).fit(x, y)
