"""Cumulative incidence below / inside / above a window.

Each group's incidence must equal scikit-survival's Aalen-Johansen estimate
(``cumulative_incidence_competing_risks``) on that group's patients alone; the estimator itself
is checked against R cmprsk in test_window_reference.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sksurv.nonparametric import cumulative_incidence_competing_risks

from ml.features import competing_target
from ml.window import incidence_at, window_incidences


@pytest.fixture(scope="module")
def outcomes():
    rng = np.random.default_rng(4)
    n = 300
    fu = rng.uniform(200, 700, n).round()
    death = np.where(rng.random(n) < 0.2, (rng.random(n) * fu).round(), np.nan)
    fu = np.where(np.isnan(death), fu, death)
    cmv = np.where(rng.random(n) < 0.6, rng.uniform(10, 150, n).round(), np.nan)
    cmv = np.where(cmv <= fu, cmv, np.nan)
    agvhd2 = np.where(rng.random(n) < 0.3, rng.uniform(5, 90, n).round(), np.nan)
    agvhd2 = np.where(agvhd2 <= fu, agvhd2, np.nan)
    frame = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)], "last_followup_day": fu, "death_day": death,
                          "cmv_day": cmv, "agvhd2_day": agvhd2})
    x = rng.lognormal(np.log(120), 0.35, n)
    return frame, x


def _sksurv_at(codes, time, horizon):
    t, ci = cumulative_incidence_competing_risks(codes.astype(int), time)  # sksurv overflows on int8
    k = np.searchsorted(t, horizon, side="right") - 1
    return ci[1][k]


def test_groups_partition_and_match_scikit_survival(outcomes):
    frame, x = outcomes
    rows = window_incidences(x, frame, 100.0, 148.5, ["cmv", "agvhd2"], horizon=180.0)
    groups = {"below": x < 100, "inside": (x >= 100) & (x < 148.5), "above": x >= 148.5}
    groups["outside"] = ~groups["inside"]
    assert {(r.outcome, r.group) for r in rows} == {(o, g) for o in ("cmv", "agvhd2") for g in groups}
    for r in rows:
        y = competing_target(frame, r.outcome)
        m = groups[r.group]
        assert r.n == m.sum()
        assert r.incidence == pytest.approx(_sksurv_at(y["event"][m], y["time"][m], 180.0), abs=1e-12)
        assert r.ci_low <= r.incidence <= r.ci_high
        assert r.events == int(((y["event"][m] == 1) & (y["time"][m] <= 180)).sum())


def test_p_value_is_the_wald_test_of_the_difference(outcomes):
    frame, x = outcomes
    rows = {(r.outcome, r.group): r for r in window_incidences(x, frame, 100.0, 148.5, ["cmv"], horizon=180.0)}
    y = competing_target(frame, "cmv")
    inside = (x >= 100) & (x < 148.5)
    a = incidence_at(y["time"][inside], y["event"][inside], 180.0)
    b = incidence_at(y["time"][~inside], y["event"][~inside], 180.0)
    z = (b["incidence"] - a["incidence"]) / np.sqrt(a["var"] + b["var"])
    assert rows["cmv", "outside"].p_value == pytest.approx(2 * stats.norm.sf(abs(z)))
    assert rows["cmv", "inside"].p_value is None


def test_open_bound_has_no_group_on_that_side(outcomes):
    frame, x = outcomes
    rows = window_incidences(x, frame, None, 130.0, ["cmv"], horizon=180.0)
    assert {r.group for r in rows} == {"inside", "above", "outside"}


def test_log_log_interval_matches_its_formula():
    rng = np.random.default_rng(0)
    time = rng.integers(1, 100, 200).astype(float)
    codes = rng.choice([0, 1, 2], 200, p=[0.3, 0.5, 0.2])
    r = incidence_at(time, codes, 50.0)
    f, se = r["incidence"], np.sqrt(r["var"])
    w = stats.norm.ppf(0.975) * se / (f * np.log(f))
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(tuple(sorted((f ** np.exp(w), f ** np.exp(-w)))))
