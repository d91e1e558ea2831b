"""Recovery of the generating parameters on a 324-patient virtual cohort (issue 6).

The cohort comes from the project's simulator (``ml.sim.simulate_cohort("urd", n=324)``, the
default PK model of spec/simulator.md, residual error ``f*(1 + 0.2 e1) + 0.3 e2``, LLOQ 0.5):
the reference values are the simulator's own parameters. The tolerances are the issue's:
typical values within 15 %, between-patient variabilities within 30 %. A start with every
typical value doubled reaches the same V1, Q, CL + Vmax/Km, omega and residual error, but not
the same split of elimination between CL, Vmax and Km (a strict xfail documents that limitation). Both fits use
fewer SAEM iterations than the default to keep the run near one minute; scripts/bench_poppk.py
runs the default settings over 20 cohorts.
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from ml.pk import PARAMETERS, PopPKModel
from ml.poppk import PopPKFit, plot_eta, plot_goodness_of_fit, plot_trace, plot_vpc
from ml.sim import simulate_cohort

pytestmark = pytest.mark.slow

TRUE = PopPKModel.default()
SETTINGS = {"n_explore": 100, "n_smooth": 60, "n_importance": 100}


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort("urd", n=324, seed=7)


@pytest.fixture(scope="module")
def fitted(cohort):
    return PopPKFit(random_state=0, **SETTINGS).fit(cohort)


@pytest.fixture(scope="module")
def misspecified(cohort):
    start = TRUE.with_typical(**{p: 2.0 * v for p, v in TRUE.typical.items()})
    return PopPKFit(start, random_state=1, **SETTINGS).fit(cohort)


@pytest.mark.parametrize("parameter", PARAMETERS)
def test_typical_values_within_15_percent(fitted, parameter):
    est = fitted.result_.typical[parameter]
    assert est == pytest.approx(TRUE.typical[parameter], rel=0.15)


@pytest.mark.parametrize("parameter", ["CL", "V1", "Vmax"])
def test_variabilities_within_30_percent(fitted, parameter):
    assert fitted.result_.omega[parameter] == pytest.approx(TRUE.iiv[parameter], rel=0.30)


def test_residual_error_recovered(fitted):
    res = fitted.result_.residual
    assert res["proportional"] == pytest.approx(0.20, rel=0.10)
    assert res["additive"] == pytest.approx(0.30, rel=0.25)


def test_misspecified_start_agrees_on_the_well_determined_parameters(fitted, misspecified):
    a, b = fitted.result_, misspecified.result_
    assert b.typical["V1"] == pytest.approx(a.typical["V1"], rel=0.05)
    assert b.typical["Q"] == pytest.approx(a.typical["Q"], rel=0.15)
    assert b.omega["V1"] == pytest.approx(a.omega["V1"], rel=0.10)
    assert b.residual["proportional"] == pytest.approx(a.residual["proportional"], rel=0.05)
    # the total clearance at low concentrations is determined even where its split is not
    def low_clearance(r):
        return r.typical["CL"] + r.typical["Vmax"] / r.typical["Km"]
    assert low_clearance(b) == pytest.approx(low_clearance(a), rel=0.10)
    # the doubled start does not find a better optimum than the default start
    assert b.ofv > a.ofv - 3 * np.hypot(a.ofv_se, b.ofv_se)


@pytest.mark.xfail(strict=True, reason=(
    "known limitation: the split of elimination between the linear (CL) and the saturable "
    "(Vmax, Km) path is weakly determined by this design; from a start with every typical "
    "value doubled SAEM stops elsewhere on that nearly flat ridge (CL 10-30 %, Vmax and Km up "
    "to ~80 % away, CL + Vmax/Km and -2LL close); see docs/benchmarks.md (poppk)"))
def test_misspecified_start_reaches_the_same_typical_values(fitted, misspecified):
    a, b = fitted.result_, misspecified.result_
    for p in PARAMETERS:
        assert b.typical[p] == pytest.approx(a.typical[p], rel=0.05), p


def test_standard_errors_are_plausible(fitted):
    res = fitted.result_
    rse = res.rse()
    for p in PARAMETERS:
        assert 0 < rse[f"typical.{p}"] < 60, (p, rse[f"typical.{p}"])
        # the truth lies within 3.5 standard errors
        assert abs(res.typical[p] - TRUE.typical[p]) < 3.5 * res.se[f"typical.{p}"], p


def test_diagnostics(fitted):
    pred = fitted.predictions_
    q = pred[pred["bloq"] == 0]
    assert len(q) == fitted.result_.n_observations
    assert abs(q["cwres"].mean()) < 0.2 and 0.8 < q["cwres"].std() < 1.25
    assert abs(q["iwres"].mean()) < 0.2
    shrink = fitted.result_.shrinkage
    assert all(0.0 <= shrink[p] < 0.6 for p in ("CL", "V1", "Vmax")), shrink
    ind = fitted.individual_
    assert len(ind) == 324 and np.isfinite(ind[list(PARAMETERS)].to_numpy()).all()


def test_vpc_and_figures(fitted):
    check = fitted.vpc(n_sim=50, random_state=3)
    # a correct model: observed percentiles mostly inside their 90 % simulated intervals
    assert check.outside_fraction() < 0.3
    for fig in (plot_goodness_of_fit(fitted), plot_eta(fitted), plot_trace(fitted),
                plot_vpc(check)):
        assert isinstance(fig, Figure) and fig.axes


def test_fitted_model_is_the_declarative_format(fitted, tmp_path):
    model = fitted.model_
    assert model.status == "fitted"
    path = tmp_path / "fitted.toml"
    model.to_toml(path)
    assert PopPKModel.from_toml(path) == model
    assert model.typical == pytest.approx(fitted.result_.typical)
