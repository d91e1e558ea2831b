"""Endpoint builders (ml.features._endpoints) against hand-derived targets.

The outcomes table below is written by hand; every expected (code, time) pair was derived by
reading the table with the rules of docs/cohort-format.md ("Endpoints derived from outcomes"):
death competes with cmv/ebv/agvhd/cgvhd/relapse, relapse competes with nrm, os and dfs have no
competing event, a composite is the first of its components, a tie between an event and the
competing death counts as the event, a relapse on the day of death makes the death
relapse-related (competing for nrm), and anything after the horizon is censored at the horizon.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from ml.features import (
    COMPETING_DTYPE,
    ENDPOINTS,
    SURVIVAL_DTYPE,
    check_competing_target,
    check_survival_target,
    competing_target,
    parse_endpoint,
    survival_target,
)

NA = np.nan
# patient:        A      B      C      D      E
OUTCOMES = pd.DataFrame({
    "patient_id": ["A", "B", "C", "D", "E"],
    "last_followup_day": [400.0, 100.0, 90.0, 300.0, 250.0],
    "death_day": [NA, 100.0, 90.0, NA, 250.0],
    "relapse_day": [NA, 50.0, NA, NA, 250.0],
    "cmv_day": [30.0, NA, 90.0, NA, 200.0],
    "ebv_day": [60.0, NA, NA, NA, NA],
    "agvhd2_day": [20.0, NA, 10.0, NA, NA],
    "agvhd3_day": [NA, NA, 15.0, NA, NA],
    "cgvhd_day": [200.0, NA, NA, NA, NA],
})

# endpoint, horizon -> [(code, time)] for A..E
EXPECTED = {
    ("cmv", None): [(1, 30), (2, 100), (1, 90), (0, 300), (1, 200)],
    ("cmv", 180): [(1, 30), (2, 100), (1, 90), (0, 180), (0, 180)],
    ("ebv", None): [(1, 60), (2, 100), (2, 90), (0, 300), (2, 250)],
    ("agvhd2", None): [(1, 20), (2, 100), (1, 10), (0, 300), (2, 250)],
    ("agvhd3", 100): [(0, 100), (2, 100), (1, 15), (0, 100), (0, 100)],
    ("cgvhd", None): [(1, 200), (2, 100), (2, 90), (0, 300), (2, 250)],
    ("relapse", None): [(0, 400), (1, 50), (2, 90), (0, 300), (1, 250)],
    ("nrm", None): [(0, 400), (2, 50), (1, 90), (0, 300), (2, 250)],
    ("os", None): [(0, 400), (1, 100), (1, 90), (0, 300), (1, 250)],
    ("dfs", None): [(0, 400), (1, 50), (1, 90), (0, 300), (1, 250)],
    ("cmv|ebv|agvhd2|death", None): [(1, 20), (1, 100), (1, 10), (0, 300), (1, 200)],
    ("cmv|ebv|agvhd2|death", 180): [(1, 20), (1, 100), (1, 10), (0, 180), (0, 180)],
    ("cmv|ebv", None): [(1, 30), (2, 100), (1, 90), (0, 300), (1, 200)],
    ("relapse|cgvhd", 150): [(0, 150), (1, 50), (2, 90), (0, 150), (0, 150)],
}


@pytest.mark.parametrize("endpoint, horizon", list(EXPECTED))
def test_competing_target_matches_hand_derivation(endpoint, horizon):
    y = competing_target(OUTCOMES, endpoint, horizon)
    assert y.dtype == COMPETING_DTYPE
    assert [(int(c), float(t)) for c, t in y] == [(c, float(t)) for c, t in EXPECTED[endpoint, horizon]]


@pytest.mark.parametrize("endpoint, horizon", list(EXPECTED))
def test_survival_target_is_cause_specific_view(endpoint, horizon):
    y = survival_target(OUTCOMES, endpoint, horizon)
    assert y.dtype == SURVIVAL_DTYPE
    expected = EXPECTED[endpoint, horizon]
    np.testing.assert_array_equal(y["event"], [c == 1 for c, _ in expected])
    np.testing.assert_array_equal(y["time"], [t for _, t in expected])


def test_every_named_endpoint_builds_and_rows_align():
    shuffled = OUTCOMES.iloc[[3, 0, 4, 2, 1]].reset_index(drop=True)
    for endpoint in ENDPOINTS:
        a = competing_target(OUTCOMES, endpoint)
        b = competing_target(shuffled, endpoint)
        np.testing.assert_array_equal(b, a[[3, 0, 4, 2, 1]])


def test_composite_normalisation():
    d = parse_endpoint(" CMV | ebv|cmv ")
    assert d.name == "cmv|ebv"
    assert d.competing == "death_day"
    assert parse_endpoint("cmv|death").competing is None


@pytest.mark.parametrize("endpoint, horizon, message", [
    ("cmvv", None, "unknown endpoint 'cmvv'; valid: cmv, ebv, agvhd2, agvhd3, cgvhd, relapse, nrm, os, dfs"),
    ("cmv|foo", None, "unknown component(s) ['foo'] in composite endpoint 'cmv|foo'"),
    ("nrm|cmv", None, "unknown component(s) ['nrm']"),
    ("", None, "endpoint must be a non-empty string"),
    ("cmv", 0, "horizon must be a finite number of days > 0 or None, got 0"),
    ("cmv", -5.0, "horizon must be a finite number of days > 0 or None, got -5.0"),
    ("cmv", float("nan"), "horizon must be a finite number of days > 0 or None, got nan"),
])
def test_bad_endpoint_or_horizon(endpoint, horizon, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        competing_target(OUTCOMES, endpoint, horizon)
    assert message in str(err.value)


def test_missing_column_is_named():
    with pytest.raises(ValueError, match=r"outcomes lacks column\(s\) \['ebv_day'\] needed for endpoint 'ebv'"):
        survival_target(OUTCOMES.drop(columns="ebv_day"), "ebv")


def test_checkers():
    y = competing_target(OUTCOMES, "cmv")
    event, time = check_survival_target(y)
    np.testing.assert_array_equal(event, y["event"] == 1)
    codes, _ = check_competing_target(survival_target(OUTCOMES, "cmv"))
    assert set(codes.tolist()) <= {0, 1}
    with pytest.raises(ValueError, match="structured array with fields"):
        check_survival_target(np.ones(3))
    bad = y.copy()
    bad["time"][0] = -1
    with pytest.raises(ValueError, match="finite and >= 0"):
        check_survival_target(bad)
