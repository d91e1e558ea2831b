"""The adaptive end of SAEM's exploration, the convergence flag of ``PopPKFit`` and the
coarse integration grid of the exploration.

References: the closed form of the stationarity statistic for a linear trend (the shift
between the halves of ``0, 1, ..., 2h - 1`` is ``h``, their sample standard deviation
``sqrt(2h (2h + 1) / 12)``, so the statistic is ``sqrt(6h / (2h + 1))``); ml.pk.simulate with a 30-minute step as the reference solution
of the ODE (as in tests/test_poppk_units.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.pk import PopPKModel, simulate
from ml.poppk import PopPKData, PopPKFit, simulate_pk_cohort
from ml.poppk._convergence import StationarityRule
from ml.poppk._structural import EXPLORE_STEPS, Predictor

MODEL = PopPKModel.default()


@pytest.fixture(scope="module")
def small():
    cohort = simulate_pk_cohort(MODEL, n=40, seed=5)
    data = PopPKData.from_cohort(cohort, active_fraction=0.14, lloq=0.5)
    return cohort, data


# -- the stationarity statistic -------------------------------------------------------------
@pytest.mark.parametrize("window", [10, 30, 41])
def test_drift_of_a_linear_trend_is_its_closed_form(window):
    h = window // 2
    rule = StationarityRule(window=window, tol=1.0, floor=0.0)
    trend = 5.0 + 0.3 * np.arange(100.0)
    expected = math.sqrt(6 * h / (2 * h + 1))                # 1.73 for large h
    assert rule.drift(trend) == pytest.approx(expected, rel=1e-12)
    assert not rule.stationary(trend)
    # tol rescales the yardstick
    assert StationarityRule(window=window, tol=2.0, floor=0.0).drift(trend) == \
        pytest.approx(expected / 2, rel=1e-12)


def test_drift_of_noise_and_of_a_constant():
    rule = StationarityRule(window=30)
    assert rule.drift(np.full(50, 15000.0)) == 0.0          # floor keeps 0/0 away
    rng = np.random.default_rng(0)
    # independent noise: the shift between halves has SD 0.37 window-SDs, so the statistic
    # exceeds 1 in well under 1 % of windows
    values = [rule.drift(rng.normal(15000.0, 50.0, 30)) for _ in range(400)]
    assert np.mean(np.array(values) <= 1.0) > 0.98
    assert rule.drift(np.arange(10.0)) == math.inf            # fewer rows than the window
    assert rule.drift(np.r_[np.ones(29), np.nan]) == math.inf


@pytest.mark.parametrize("kwargs, message", [
    ({"window": 3}, "StationarityRule.window must be an integer >= 4, got 3"),
    ({"tol": 0.0}, "StationarityRule.tol must be > 0, got 0.0"),
    ({"floor": -1.0}, "StationarityRule.floor must be >= 0, got -1.0"),
])
def test_rule_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=__import__("re").escape(message)):
        StationarityRule(**kwargs)


# -- the coarse exploration grid -------------------------------------------------------------
def test_exploration_grid_is_within_one_percent(small):
    _, data = small
    params = MODEL.individual(data.weight_kg, data.alc,
                              MODEL.sample_eta(data.n, np.random.default_rng(6)))
    ref = simulate(params, data.infusions, data.times, t_end=61.0,
                   phase_steps=((-np.inf, 1 / 48), (1.0, 1 / 48)))["concentration"]
    got = Predictor(data, phase_steps=EXPLORE_STEPS)(np.log(params.as_array()))
    rel = np.abs(got - ref) / np.maximum(ref, MODEL.residual["lloq"])
    assert rel.max() < 1e-2


# -- the fit ----------------------------------------------------------------------------------
def test_adaptive_exploration_ends_early_and_converges(small):
    cohort, _ = small
    fit = PopPKFit(n_explore=200, n_smooth=10, n_importance=0, random_state=0).fit(cohort)
    conv = fit.convergence_
    assert fit.converged_ and fit.result_.converged
    assert conv["stationary"] and conv["drift"] <= 1.0
    # not before the hold of Q, V2, Km (40) plus one window (30), well before the budget
    assert 70 <= conv["explore_iterations"] < 200
    assert conv["smooth_iterations"] == 10
    assert fit.result_.iterations == conv["explore_iterations"] + 10 == fit.trace_.theta.shape[0]
    ind = fit.trace_.indicator
    assert ind.shape == (fit.result_.iterations,) and np.isfinite(ind).all()
    assert fit.result_.summary()["fit"]["converged"] is True


def test_fixed_budget_runs_every_iteration(small):
    cohort, _ = small
    fit = PopPKFit(n_explore=75, n_smooth=5, n_importance=0, stopping=None, explore_steps=None,
                   random_state=0).fit(cohort)
    assert fit.trace_.n_explore == 75 and fit.result_.iterations == 80
    assert np.isfinite(fit.convergence_["drift"])             # reported even when not used


def test_fit_out_of_exploration_budget_is_not_converged(small):
    """With 20 exploration iterations the rule never gets a full window after the hold:
    the fit must say it did not converge (the pipeline then falls back to the prior)."""
    cohort, _ = small
    fit = PopPKFit(n_explore=20, n_smooth=5, n_importance=0, random_state=0).fit(cohort)
    assert fit.trace_.n_explore == 20
    assert not fit.convergence_["stationary"] and not fit.converged_
    assert fit.result_.converged is False


def test_fit_rejects_a_stopping_string(small):
    cohort, _ = small
    with pytest.raises(ValueError, match="stopping must be a StationarityRule or None"):
        PopPKFit(stopping="auto").fit(cohort)
