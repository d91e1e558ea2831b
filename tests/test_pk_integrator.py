"""The one integrator of the ATG model (ml/pk/_integrator.py): each step policy against references.

References
----------
* scipy.integrate.solve_ivp(method="LSODA", rtol=1e-11, atol=1e-12), segment by segment between
  infusion boundaries (``_lsoda`` of tests/test_pk_model.py).
* Linear two-compartment model (Vmax = 0): AUC(0, inf) = dose / CL exactly (mass balance of a linear
  system with elimination only from the central compartment).

The policies trade accuracy for speed: "accuracy" (the simulator's grid) ~1e-6, "forecast"
(MAP, dosing) and "estimation" (SAEM) coarser; the bounds below are the documented ones.
"""

from __future__ import annotations

import numpy as np
import pytest

from ml.pk import (
    AccuracyPolicy,
    EstimationPolicy,
    ForecastGrid,
    Infusions,
    PKParameters,
    PopPKModel,
    integrate,
    simulate,
    tail_auc,
)
from ml.pk._integrator import FIT_GRID
from ml.poppk._structural import EXPLORE_STEPS, FIT_STEPS

from test_pk_model import _lsoda, _regimen

CASES = [
    {"CL": 0.5, "V1": 3.5, "Q": 1.0, "V2": 3.0, "Vmax": 2.0, "Km": 5.0},     # typical
    {"CL": 0.3, "V1": 1.5, "Q": 1.0, "V2": 3.0, "Vmax": 30.0, "Km": 5.0},    # stiff: big lymphocyte sink, small V1
    {"CL": 1.2, "V1": 6.0, "Q": 0.5, "V2": 8.0, "Vmax": 0.0, "Km": 5.0},     # linear
]
IDS = ["typical", "stiff", "linear"]
TIMES = np.array([-4.5, -4.0, -3.0, -1.0, 0.0, 0.3, 3.3, 7.3, 14.3, 28.3, 60.3])


def _forecast(params: PKParameters, inf: Infusions, times: np.ndarray, grid: ForecastGrid):
    """Concentrations at ``times`` and total AUC by the forecast policy (resumed at day -3, as dosing does)."""
    n = params.n
    record = np.broadcast_to(times, (n, times.size)).copy()
    decision = -3 + 8 / 24
    state, c1 = integrate(params, inf, float(inf.start.min()), decision, grid=grid, dosing_until=decision,
                          record=np.where(record <= decision, record, decision))
    end, c2 = integrate(params, inf, decision, grid.t_end, state=state, grid=grid,
                        record=np.where(record > decision, record, decision))
    conc = np.where(record <= decision, c1, c2)
    return conc, end.auc + tail_auc(params, end)


# policy -> (relative tolerance of concentrations, of total AUC), against LSODA
TOLERANCE = {"accuracy": (2e-5, 2e-5), "estimation": (1e-2, 5e-3), "forecast": (2e-2, 3e-3)}


@pytest.mark.parametrize("p", CASES, ids=IDS)
@pytest.mark.parametrize("policy", sorted(TOLERANCE))
def test_each_policy_agrees_with_lsoda(policy, p):
    inf, params = _regimen(), PKParameters(**p)
    conc_ref, _, total_ref = _lsoda(p, inf, TIMES)
    if policy == "forecast":
        conc, total = _forecast(params, inf, TIMES, ForecastGrid())
    else:
        chosen = AccuracyPolicy() if policy == "accuracy" else EstimationPolicy(phase_steps=FIT_STEPS)
        out = simulate(params, inf, TIMES, policy=chosen)
        conc, total = out["concentration"], out["auc_pre"] + out["auc_post"]
    rtol_c, rtol_auc = TOLERANCE[policy]
    np.testing.assert_allclose(conc[0], conc_ref, rtol=rtol_c, atol=1e-6)
    np.testing.assert_allclose(total[0], total_ref, rtol=rtol_auc)


@pytest.mark.parametrize("policy", [AccuracyPolicy(), EstimationPolicy(phase_steps=FIT_STEPS),
                                    EstimationPolicy(phase_steps=EXPLORE_STEPS), ForecastGrid()],
                         ids=["accuracy", "estimation-fit", "estimation-explore", "forecast"])
def test_linear_model_auc_equals_dose_over_cl(policy):
    cl = np.array([0.3, 0.55, 1.1, 2.0])
    params = PKParameters(CL=cl, V1=[2.0, 4.0, 7.0, 1.5], Q=[1.0, 5.0, 0.1, 3.0], V2=[3.0, 20.0, 1.0, 2.0],
                          Vmax=0.0, Km=5.0)
    inf = _regimen(22.0, 4)
    if isinstance(policy, ForecastGrid):
        _, total = _forecast(params, inf, TIMES, policy)
    else:
        out = simulate(params, inf, policy=policy)
        total = out["auc_pre"] + out["auc_post"]
    rtol = 1e-6 if type(policy) is AccuracyPolicy else 3e-3
    np.testing.assert_allclose(total, 88.0 / cl, rtol=rtol)


def test_accuracy_policy_is_the_simulators_default():
    rng = np.random.default_rng(3)
    model = PopPKModel.default()
    params = model.individual(rng.uniform(40, 120, 50), 0.3 * np.exp(rng.normal(0, 0.8, 50)), model.sample_eta(50, rng))
    inf = _regimen(20.0, 50)
    a, b = simulate(params, inf, TIMES), simulate(params, inf, TIMES, policy=AccuracyPolicy())
    for key in a:
        assert np.array_equal(a[key], b[key])


def test_forecast_rows_do_not_depend_on_their_batch():
    """A patient's result is the same alone or in a batch (the forecast policy's grid is per group)."""
    model = PopPKModel.default()
    rng = np.random.default_rng(5)
    n = 60
    params = model.individual(np.clip(rng.normal(63, 11, n), 40, 120), 0.3 * np.exp(rng.normal(0, 0.8, n)),
                              {k: 1.5 * v for k, v in model.sample_eta(n, rng).items()})
    starts = np.array([-5, -4, -3, -2]) + 8 / 24
    durs = np.array([6, 4, 4, 30]) / 24  # includes a 30-hour infusion crossing day -1
    mg = rng.integers(0, 16, size=(n, 4)) * 25.0
    inf = Infusions(np.repeat(np.arange(n), 4), np.tile(starts, n), np.tile(durs, n), mg.ravel() * 0.14, n)
    decision = -3 + 8 / 24
    state, _ = integrate(params, inf, starts[0], decision, grid=FIT_GRID, group=np.arange(n), dosing_until=decision)
    alone, _ = integrate(params.take(np.array([7])), inf.take(np.array([7])), starts[0], decision, grid=FIT_GRID,
                         dosing_until=decision)
    assert alone.auc[0] == state.auc[7] and alone.a1[0] == state.a1[7]


def test_record_needs_breakpoints():
    params, inf = PKParameters(**CASES[0]), _regimen()
    with pytest.raises(ValueError, match="ForecastGrid"):
        integrate(params, inf, -5.0, 10.0, grid=AccuracyPolicy(), record=np.array([[1.0]]))
    with pytest.raises(ValueError, match="rate_cap"):
        AccuracyPolicy(rate_cap=3.0)
