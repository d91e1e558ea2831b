"""NCA of sparse levels against analytic AUCs.

References
----------
* One-compartment multiple IV infusions by superposition (Gibaldi & Perrier, ch. 1):
  AUC(0, inf) = dose / CL, and AUC(first dose, 0) by exact integration of the closed form.
* Linear two-compartment model: AUC(0, inf) = dose / CL (any Q, V2).
* Terminal slope by adjusted R^2 as in PKNCA (Denney et al., pk.calc.half.life) and WinNonlin:
  on an exact mono-exponential the slope is recovered exactly.
"""

import numpy as np
import pytest
from scipy.integrate import quad

from ml.pk import PKParameters, nca_auc, simulate, terminal_slope
from ml.pk._regimen import Infusions

STARTS = np.array([-5, -4, -3, -2]) + 8 / 24
DURATIONS = np.array([6, 4, 4, 4]) / 24
DESIGN = np.unique(np.r_[STARTS, STARTS + DURATIONS, np.array([-1, 0, 3, 7, 14, 21, 28, 42, 60]) + 8 / 24])


def _one_compartment(t, cl, v, amount):
    k = cl / v
    c = np.zeros_like(t, dtype=float)
    for s, d in zip(STARTS, DURATIONS):
        rate = amount / d
        during = (t > s) & (t <= s + d)
        after = t > s + d
        c[during] += rate / cl * (1 - np.exp(-k * (t[during] - s)))
        c[after] += rate / cl * (1 - np.exp(-k * d)) * np.exp(-k * (t[after] - s - d))
    return c


@pytest.mark.parametrize("cl, v", [(0.5, 4.0), (0.9, 3.0), (0.3, 6.0)])
def test_one_compartment_infusions_within_one_percent(cl, v):
    amount = 22.0
    c = _one_compartment(DESIGN, cl, v, amount)
    res = nca_auc(DESIGN, c, np.zeros(DESIGN.size, int), STARTS[0], STARTS[-1] + DURATIONS[-1])
    exact_total = 4 * amount / cl
    exact_pre = quad(lambda x: _one_compartment(np.array([x]), cl, v, amount)[0], STARTS[0], 0.0,
                     points=list(np.r_[STARTS, STARTS + DURATIONS]), limit=200)[0]
    assert res.auc_total == pytest.approx(exact_total, rel=0.01)
    assert res.auc_pre == pytest.approx(exact_pre, rel=0.01)
    assert res.lambda_z == pytest.approx(cl / v, rel=1e-6)  # exact mono-exponential tail


@pytest.mark.parametrize("q, v2", [(1.0, 3.0), (2.0, 6.0)])
def test_linear_two_compartment_within_one_percent(q, v2):
    cl = np.array([0.4, 0.55, 0.8])
    params = PKParameters(CL=cl, V1=[3.0, 4.0, 5.0], Q=q, V2=v2, Vmax=0.0, Km=5.0)
    inf = Infusions(np.repeat(np.arange(3), 4), np.tile(STARTS, 3), np.tile(DURATIONS, 3), np.full(12, 22.0), 3)
    conc = simulate(params, inf, DESIGN)["concentration"]
    for i in range(3):
        res = nca_auc(DESIGN, conc[i], np.zeros(DESIGN.size, int), STARTS[0], STARTS[-1] + DURATIONS[-1])
        assert res.auc_total == pytest.approx(88.0 / cl[i], rel=0.01)


def test_terminal_slope_exact_on_exponential():
    t = np.array([3.0, 7.0, 14.0, 21.0, 28.0])
    lam, intercept, k = terminal_slope(t, 12.0 * np.exp(-0.11 * t))
    assert lam == pytest.approx(0.11, rel=1e-10) and np.exp(intercept) == pytest.approx(12.0) and k == 5


def test_bloq_handling():
    # Leading BLOQ counts as 0, trailing BLOQ is dropped (the tail is extrapolated instead),
    # BLOQ between quantifiable samples is treated as missing.
    t = np.array([-4.67, -4.42, -1.0, 3.0, 7.0, 14.0, 21.0, 28.0])
    c = 10.0 * np.exp(-0.1 * (t + 4.42))
    c[0] = np.nan
    full = nca_auc(t, c, np.isnan(c).astype(int), -4.67, -1.5)
    dropped_tail = c.copy()
    dropped_tail[-1] = np.nan
    res_tail = nca_auc(t, dropped_tail, np.isnan(dropped_tail).astype(int), -4.67, -1.5)
    assert res_tail.auc_total == pytest.approx(full.auc_total, rel=1e-9)  # exact exponential tail
    hole = c.copy()
    hole[4] = np.nan
    res_hole = nca_auc(t, hole, np.isnan(hole).astype(int), -4.67, -1.5)
    assert res_hole.auc_total == pytest.approx(full.auc_total, rel=1e-9)  # log-down across the gap is exact


def test_no_terminal_phase_gives_nan_not_a_guess():
    t = np.array([-4.67, -4.42, -1.0, 3.0])
    c = np.array([np.nan, 5.0, 8.0, np.nan])
    res = nca_auc(t, c, np.isnan(c).astype(int), -4.67, -1.5)
    assert np.isnan(res.auc_total)
