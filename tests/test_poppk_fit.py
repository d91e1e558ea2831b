"""Recovery of the generating parameters on a 324-patient virtual cohort (issue 6).

The cohort comes from the project's simulator (``ml.sim.simulate_cohort("urd", n=324)``, the
default PK model of ml/pk/default_model.toml, residual error ``f*(1 + 0.2 e1) + 0.3 e2``, LLOQ 0.5):
the reference values are the simulator's own parameters. The tolerances are the issue's:
typical values within 15 %, between-patient variabilities within 30 %. A start with every
typical value doubled reaches the same V1, Q, CL + Vmax/Km, omega and residual error, and a point
of equal likelihood (by importance sampling with common random numbers), but not the same split
of elimination between CL, Vmax and Km: the likelihood is flat along that ridge (a strict xfail
documents it). Both fits use
PopPKFit's default SAEM settings (exploration ended by the stationarity rule, then 40
smoothing iterations with two chains; fewer importance samples for -2LL);
scripts/bench_poppk.py runs the same settings over 20 cohorts.
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from ml.pk import PARAMETERS, PopPKModel
from ml.poppk import CombinedError, PopPKFit, plot_eta, plot_goodness_of_fit, plot_trace, plot_vpc
from ml.poppk._objective import MarginalObjective
from ml.poppk._structural import Predictor, Theta, covariate_matrix
from ml.sim import simulate_cohort

pytestmark = pytest.mark.slow

TRUE = PopPKModel.default()
SETTINGS = {"n_importance": 100}


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


@pytest.fixture(scope="module")
def crn_ofv(fitted, misspecified):
    """-2LL of both fits by importance sampling with common random numbers (the same 500
    standardised draws per patient for both parameter vectors)."""
    data = fitted.data_
    obj = MarginalObjective(Predictor(data), covariate_matrix(data, TRUE.covariates),
                            CombinedError(), n_samples=500, random_state=11)
    return [obj.importance(Theta.from_model(f.model_)) for f in (fitted, misspecified)]


@pytest.mark.parametrize("parameter", PARAMETERS)
def test_typical_values_within_15_percent(fitted, parameter):
    est = fitted.result_.typical[parameter]
    assert est == pytest.approx(TRUE.typical[parameter], rel=0.15)


@pytest.mark.parametrize("parameter", ["CL", "V1", "Vmax"])
def test_variabilities_within_30_percent(fitted, parameter):
    assert fitted.result_.omega[parameter] == pytest.approx(TRUE.iiv[parameter], rel=0.30)


def test_default_fit_converges_early(fitted):
    conv = fitted.convergence_
    assert fitted.converged_ and conv["stationary"] and conv["information_positive_definite"]
    assert conv["explore_iterations"] < fitted.n_explore          # the rule ended it
    assert fitted.result_.iterations == conv["explore_iterations"] + fitted.n_smooth


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


def test_misspecified_start_ends_on_an_equally_likely_point(fitted, misspecified, crn_ofv):
    """The two end points are equally supported by the data.

    Compared on a precise objective: importance sampling with common random numbers (the same
    500 standardised draws per patient for both parameter vectors, so the paired difference
    is less noisy than two independent -2LL). On this cohort the difference is +2.2 while Km
    differs by about 70 % (other draw sets: +0.3 and -2.1 with 500 draws, -0.6 to +1.3 with
    1000: equal within Monte Carlo error). The tolerance is 3.84, the 95 % critical value of
    a likelihood-ratio test with one degree of freedom: neither end point is significantly more
    likely than the other, so the spread of Vmax and Km between them is within the data's own
    uncertainty (docs/benchmarks.md,
    poppk: profile likelihood along Km).
    """
    a, b = crn_ofv
    assert abs(b.ofv - a.ofv) < 3.84


@pytest.mark.xfail(strict=True, reason=(
    "limit of the data, not only of the algorithm: the split of elimination between the "
    "linear (CL) and the saturable (Vmax, Km) path is weakly determined by this design; from "
    "a start with every typical value doubled SAEM stops elsewhere on a ridge along which "
    "the likelihood is flat within Monte Carlo error (CL -30 %, Vmax +170 %, Km +70 % here at a "
    "common-random-number -2LL difference between -2 and +2 over draw sets; profile "
    "likelihood along Km within 3.84 of its minimum over a range far wider than 15 %; longer "
    "SAEM runs do not bring the two together); see docs/benchmarks.md "
    "(poppk) and test_misspecified_start_ends_on_an_equally_likely_point"))
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
