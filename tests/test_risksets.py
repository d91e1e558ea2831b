"""Risk-set sums (ml/_risksets.py) against their definitions and scikit-survival.

References
----------
* The definitions, summed patient by patient (O(n^2)): ``S_k(t) = sum_{j: t_j >= t} w_j z_j^k``.
* scikit-survival 0.28: ``nelson_aalen_estimator`` (Nelson-Aalen cumulative hazard, tied times
  sharing one risk set) and ``CoxPHSurvivalAnalysis(ties="breslow")`` (the Breslow partial
  likelihood's maximiser, where the score vanishes).
* Score and information: central finite differences of the log partial likelihood.
"""

from __future__ import annotations

import numpy as np
import pytest
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.nonparametric import kaplan_meier_estimator, nelson_aalen_estimator
from sksurv.util import Surv

from ml._risksets import (
    breslow_partial_likelihood,
    event_table,
    nelson_aalen,
    risk_set_sums,
    tie_bounds,
)


def _data(seed: int, n: int = 80, p: int = 2):
    rng = np.random.default_rng(seed)
    time = np.sort(np.round(rng.exponential(100, n)) + 1)    # rounded: many ties
    event = (rng.uniform(size=n) < 0.6).astype(float)
    return time, event, rng.normal(size=(n, p)), rng.uniform(0.2, 3.0, n)


@pytest.mark.parametrize("seed", [0, 1])
def test_risk_set_sums_are_their_definition(seed):
    time, _, Z, w = _data(seed)
    s0, s1, s2 = risk_set_sums(time, w, Z)
    at_risk = time[None, :] >= time[:, None]                     # row i: who is at risk at t_i
    np.testing.assert_allclose(s0, at_risk @ w, rtol=1e-12)
    np.testing.assert_allclose(s1, at_risk @ (w[:, None] * Z), rtol=1e-12)
    np.testing.assert_allclose(s2, np.einsum("ij,j,jk,jl->ikl", at_risk, w, Z, Z), rtol=1e-12)
    np.testing.assert_array_equal(risk_set_sums(time, np.ones_like(w)), at_risk.sum(axis=1))
    first, last = tie_bounds(time)
    assert np.all(time[first] == time) and np.all(time[last] == time)
    assert np.all((first == 0) | (time[np.maximum(first - 1, 0)] < time))
    assert np.all((last == time.size - 1) | (time[np.minimum(last + 1, time.size - 1)] > time))


def test_nelson_aalen_matches_scikit_survival():
    time, event, _, _ = _data(2)
    h = nelson_aalen(time, event, risk_set_sums(time, np.ones_like(time)))
    t_ref, h_ref = nelson_aalen_estimator(event.astype(bool), time)
    np.testing.assert_allclose(h, h_ref[np.searchsorted(t_ref, time)], rtol=1e-12)


def test_event_table_counts_and_kaplan_meier():
    time, event, _, w = _data(3)
    times, index, events, at_risk = event_table(time, event)
    np.testing.assert_array_equal(times[index], time)
    np.testing.assert_array_equal(events, [event[time == t].sum() for t in times])
    np.testing.assert_array_equal(at_risk, [(time >= t).sum() for t in times])
    _, s_ref = kaplan_meier_estimator(event.astype(bool), time)
    np.testing.assert_allclose(np.cumprod(1 - events / at_risk), s_ref, rtol=1e-12)
    _, _, ew, rw = event_table(time, event, weight=w, risk=2 * w)
    np.testing.assert_allclose(ew, [(w * event)[time == t].sum() for t in times], rtol=1e-12)
    np.testing.assert_allclose(rw, [2 * w[time >= t].sum() for t in times], rtol=1e-12)


def test_breslow_partial_likelihood_score_information_and_maximiser():
    time, event, Z, _ = _data(4, n=200, p=3)
    beta = np.array([0.3, -0.2, 0.1])
    _, score, info = breslow_partial_likelihood(beta, time, event, Z)
    h = 1e-5
    e = np.eye(3) * h
    fd_score = [(breslow_partial_likelihood(beta + e[k], time, event, Z)[0]
                 - breslow_partial_likelihood(beta - e[k], time, event, Z)[0]) / (2 * h) for k in range(3)]
    fd_info = [-(breslow_partial_likelihood(beta + e[k], time, event, Z)[1]
                 - breslow_partial_likelihood(beta - e[k], time, event, Z)[1]) / (2 * h) for k in range(3)]
    np.testing.assert_allclose(score, fd_score, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(info, np.array(fd_info), rtol=1e-6, atol=1e-8)
    ref = CoxPHSurvivalAnalysis(ties="breslow").fit(Z, Surv.from_arrays(event.astype(bool), time))
    _, score_at_ref, _ = breslow_partial_likelihood(ref.coef_, time, event, Z)
    np.testing.assert_allclose(score_at_ref, 0.0, atol=1e-6)
