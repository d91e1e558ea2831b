"""Cumulative incidence with competing risks from cause-specific models (ml.models._cif).

Reference: scikit-survival 0.28 ``cumulative_incidence_competing_risks`` (Aalen-Johansen),
which the plug-in formula must reproduce exactly when both cause-specific hazards are
covariate-free (Nelson-Aalen increments, here the Breslow baseline at eta = 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sksurv.nonparametric import cumulative_incidence_competing_risks

from ml.models import (
    BreslowBaseline,
    XGBSurvival,
    cause_specific_target,
    cif_from_hazard_increments,
    cumulative_incidence,
)


def competing(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t1 = rng.exponential(150.0 * np.exp(-0.7 * x))  # e.g. CMV reactivation
    t2 = rng.exponential(300.0, n)  # e.g. death without CMV
    c = rng.uniform(30, 400, n)
    t = np.round(np.minimum.reduce([t1, t2, c]))  # whole days: ties
    code = np.select([t1 <= np.minimum(t2, c), t2 <= np.minimum(t1, c)], [1, 2], 0)
    y = np.empty(n, dtype=[("event", "i1"), ("time", "f8")])
    y["event"], y["time"] = code, t
    return pd.DataFrame({"x": x, "noise": rng.normal(size=n)}), y


def test_plugin_with_covariate_free_hazards_is_aalen_johansen():
    _, y = competing()
    grid = np.unique(y["time"][y["event"] > 0])
    d = []
    for cause in (1, 2):
        yc = cause_specific_target(y, cause)
        base = BreslowBaseline().fit(np.zeros(len(y)), yc["event"], yc["time"])
        h = base.cumulative_hazard(np.zeros(1), grid)
        d.append(np.diff(h, axis=1, prepend=0.0))
    # (int64 codes: sksurv 0.28 overflows on int8 event codes)
    times, cif = cumulative_incidence_competing_risks(y["event"].astype(np.int64), y["time"])
    ours = cif_from_hazard_increments(grid, d[0], d[1], times)[0]
    np.testing.assert_allclose(ours, cif[1], atol=1e-12)


def test_model_cumulative_incidence_is_a_proper_probability():
    X, y = competing()
    params = dict(n_estimators=30, n_jobs=1, random_state=0)
    m1 = XGBSurvival(**params).fit(X, cause_specific_target(y, 1))
    m2 = XGBSurvival(**params).fit(X, cause_specific_target(y, 2))
    times = np.array([30.0, 90.0, 180.0, 365.0])
    cif1 = cumulative_incidence(m1, m2, X.iloc[:20], times)
    cif2 = cumulative_incidence(m2, m1, X.iloc[:20], times)
    assert np.all(np.diff(cif1, axis=1) >= 0)
    assert np.all(cif1 + cif2 <= 1 + 1e-12)
    # the naive 1 - S_1 ignores that death removes patients from CMV risk: never smaller
    naive = m1.predict_cumulative_incidence(X.iloc[:20], 365.0)
    assert np.all(cif1[:, -1] <= naive + 1e-12)
    # higher x, higher cause-1 hazard, higher incidence
    hi, lo = X["x"].iloc[:20].idxmax(), X["x"].iloc[:20].idxmin()
    assert cif1[hi, -1] > cif1[lo, -1]
