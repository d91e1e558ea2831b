"""ml.pk simulation against closed forms and scipy's LSODA.

References
----------
* Linear two-compartment model: AUC(0, inf) = dose / CL for any distribution (mass balance of
  a linear system with elimination only from the central compartment).
* One-compartment IV infusion (rate R for T days, k = CL/V): C(t) = R/CL (1 - e^{-kt}) during,
  C(T) e^{-k(t-T)} after (Gibaldi & Perrier, Pharmacokinetics, 2nd ed., ch. 1).
* scipy.integrate.solve_ivp(method="LSODA", rtol=1e-11, atol=1e-12) segment by segment between
  infusion boundaries.
"""

import numpy as np
import pytest
from scipy.integrate import solve_ivp, trapezoid

from ml.pk import Infusions, PKParameters, PopPKModel, fixed_regimen_doses, infusions_from_doses, simulate

FIXED_STARTS = np.array([-5, -4, -3, -2]) + 8 / 24
FIXED_DURATIONS = np.array([6, 4, 4, 4]) / 24


def _regimen(amount_mg: float = 22.0, n: int = 1) -> Infusions:
    return Infusions(np.repeat(np.arange(n), 4), np.tile(FIXED_STARTS, n), np.tile(FIXED_DURATIONS, n),
                     np.full(4 * n, amount_mg), n)


def _lsoda(p: dict, inf: Infusions, times: np.ndarray, t_end: float = 90.0):
    """Reference solution with AUC state, integrated between infusion boundaries."""
    def rate(t):
        on = (inf.start <= t) & (t < inf.end)
        return float(np.sum(inf.rate[on]))

    def rhs(t, y):
        c = y[0] / p["V1"]
        return [rate(t) - p["CL"] * c - p["Vmax"] * c / (p["Km"] + c) - p["Q"] * c + p["Q"] * y[1] / p["V2"],
                p["Q"] * c - p["Q"] * y[1] / p["V2"], c]

    bounds = np.unique(np.r_[inf.start, inf.end, t_end])
    pieces, y = [], np.zeros(3)
    for a, b in zip(bounds[:-1], bounds[1:]):
        sol = solve_ivp(rhs, (a, b), y, method="LSODA", rtol=1e-11, atol=1e-12, dense_output=True)
        pieces.append((a, b, sol.sol))
        y = sol.y[:, -1]

    def at(t):
        for a, b, f in pieces:
            if a <= t <= b:
                return f(t)
        return np.zeros(3)

    conc = np.array([at(t)[0] / p["V1"] for t in times])
    auc0 = at(0.0)[2]
    total = y[2] + (y[0] + y[1]) / (p["CL"] + p["Vmax"] / p["Km"])
    return conc, auc0, total


@pytest.mark.parametrize("p", [
    dict(CL=0.5, V1=3.5, Q=1.0, V2=3.0, Vmax=2.0, Km=5.0),     # typical
    dict(CL=0.3, V1=1.5, Q=1.0, V2=3.0, Vmax=30.0, Km=5.0),    # stiff: big lymphocyte sink, small V1
    dict(CL=1.2, V1=6.0, Q=0.5, V2=8.0, Vmax=0.0, Km=5.0),     # linear
], ids=["typical", "stiff", "linear"])
def test_agrees_with_lsoda(p):
    inf = _regimen()
    times = np.array([-4.9, -4.6, -3.0, -1.0, 0.0, 0.3, 3.3, 7.3, 14.3, 28.3, 60.3])
    out = simulate(PKParameters(**p), inf, times)
    conc, auc0, total = _lsoda(p, inf, times)
    np.testing.assert_allclose(out["concentration"][0], conc, rtol=2e-5, atol=1e-9)
    np.testing.assert_allclose(out["auc_pre"][0], auc0, rtol=2e-5)
    np.testing.assert_allclose(out["auc_pre"][0] + out["auc_post"][0], total, rtol=2e-5)


@pytest.mark.parametrize("q, v2", [(1.0, 3.0), (5.0, 20.0), (0.1, 1.0)])
def test_linear_model_auc_equals_dose_over_cl(q, v2):
    # Vmax = 0: AUC(0, inf) = total active dose / CL exactly (closed form).
    cl = np.array([0.3, 0.55, 1.1])
    params = PKParameters(CL=cl, V1=[2.0, 4.0, 7.0], Q=q, V2=v2, Vmax=0.0, Km=5.0)
    out = simulate(params, _regimen(22.0, 3))
    np.testing.assert_allclose(out["auc_pre"] + out["auc_post"], 88.0 / cl, rtol=1e-6)


def test_one_compartment_infusion_closed_form():
    # Q -> 0 decouples the peripheral compartment: a one-compartment infusion.
    cl, v, rate, dur = 0.8, 4.0, 60.0, 0.25
    inf = Infusions([0], [0.0], [dur], [rate * dur], 1)
    params = PKParameters(CL=cl, V1=v, Q=1e-12, V2=1.0, Vmax=0.0, Km=5.0)
    t = np.array([0.05, 0.2, 0.25, 1.0, 5.0, 12.0])
    k = cl / v
    c_end = rate / cl * (1 - np.exp(-k * dur))
    expected = np.where(t <= dur, rate / cl * (1 - np.exp(-k * t)), c_end * np.exp(-k * (t - dur)))
    out = simulate(params, inf, t, t_split=-1.0)
    np.testing.assert_allclose(out["concentration"][0], expected, rtol=1e-6)


def test_mass_balance_with_saturable_elimination():
    # Everything infused leaves by the linear or the saturable path: dose = int (CL C + Vmax C/(Km+C)) dt.
    p = dict(CL=0.5, V1=3.5, Q=1.0, V2=3.0, Vmax=6.0, Km=5.0)
    inf = _regimen(22.0)
    t = np.linspace(FIXED_STARTS[0], 150.0, 60001)
    c = simulate(PKParameters(**p), inf, t, t_end=150.0)["concentration"][0]
    eliminated = trapezoid(p["CL"] * c + p["Vmax"] * c / (p["Km"] + c), t)
    assert eliminated == pytest.approx(88.0, rel=1e-4)


def test_vectorised_equals_one_at_a_time_and_per_patient_times():
    model = PopPKModel.default()
    rng = np.random.default_rng(3)
    n = 7
    weight = rng.uniform(45, 100, n)
    params = model.individual(weight, rng.uniform(0.05, 2.0, n), model.sample_eta(n, rng))
    doses = fixed_regimen_doses(weight)
    doses["patient_id"] = doses["patient"].astype(str)
    inf = infusions_from_doses(doses, np.arange(n).astype(str), model.active_fraction)
    times = np.sort(rng.uniform(-5, 30, (n, 6)), axis=1)
    together = simulate(params, inf, times, chunk_size=3)
    for i in range(n):
        alone = simulate(params.take([i]), inf.take([i]), times[i])
        np.testing.assert_allclose(together["concentration"][i], alone["concentration"][0], rtol=1e-5, atol=1e-10)
        np.testing.assert_allclose(together["auc_post"][i], alone["auc_post"][0], rtol=1e-6)


def test_concentration_is_zero_before_the_first_dose():
    out = simulate(PKParameters(CL=0.5, V1=4, Q=1, V2=3, Vmax=2, Km=5), _regimen(), [-7.0, -5.0])
    assert np.all(out["concentration"] == 0.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(CL=-1.0), "PK parameter CL must be finite and > 0"),
    (dict(V1=np.nan), "PK parameter V1 must be finite and > 0"),
    (dict(Km=0.0), "PK parameter Km must be finite and > 0"),
])
def test_bad_parameters_are_refused(kwargs, message):
    base = dict(CL=0.5, V1=4.0, Q=1.0, V2=3.0, Vmax=2.0, Km=5.0)
    with pytest.raises(ValueError, match=message):
        PKParameters(**{**base, **kwargs})


def test_model_file_round_trip(tmp_path):
    model = PopPKModel.default()
    path = tmp_path / "model.toml"
    model.with_typical(CL=0.61).to_toml(path)
    again = PopPKModel.from_toml(path)
    assert again.typical["CL"] == 0.61
    assert again.iiv == model.iiv and again.residual == model.residual and again.covariates == model.covariates


def test_model_file_errors_name_the_key():
    text = PopPKModel.default().to_toml_string().replace("CL = 0.55", "CL = -0.55")
    with pytest.raises(ValueError, match=r"\[typical\].CL must be finite and > 0"):
        PopPKModel.from_toml_string(text)


def test_model_file_as_json_reads_the_same(tmp_path):
    import json
    import tomllib

    model = PopPKModel.default().with_typical(Vmax=2.4)
    (tmp_path / "m.json").write_text(json.dumps(tomllib.loads(model.to_toml_string())))
    again = PopPKModel.from_file(tmp_path / "m.json")
    assert again.typical == model.typical and again.iiv == model.iiv and again.residual == model.residual
    with pytest.raises(ValueError, match=r"must have the tables \['typical'\]"):
        PopPKModel.from_dict({"covariates": {}, "residual": {}})
