"""Restricted cubic splines, the Cox spline model and per-outcome risk curves.

References
----------
* R 4 ``survival::coxph`` (ties "breslow" and "efron", ``coxph.control(eps=1e-12)``) on the
  data of :func:`r_data`, with the basis of ``Hmisc::rcspline.eval(x, knots, inclx=TRUE,
  norm=2)`` written out in R and knots ``quantile(auc, c(.05,.35,.65,.95), type=7)``:

      d <- read.csv("d0.csv")   # r_data() written by pandas.DataFrame.to_csv
      k <- quantile(d$auc_total, c(.05,.35,.65,.95), type=7)
      f <- coxph(Surv(time, event) ~ rcs(d$auc_total, k) + age + sex, data=d, ties=...)
      coef(f); sqrt(diag(vcov(f))); vcov(f)[1, 2]

* R ``splines::ns(x, knots=k[2:3], Boundary.knots=k[c(1,4)])`` at 8 points: the natural cubic
  spline space, which with an intercept must equal the span of Harrell's basis.
* scikit-survival's ``CoxPHSurvivalAnalysis`` for the linear special case and for the Breslow
  survival functions.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.utils.estimator_checks import parametrize_with_checks
from sksurv.linear_model import CoxPHSurvivalAnalysis

from ml.models import (
    CoxSplineModel,
    RestrictedCubicSpline,
    bound_setters,
    harrell_knots,
    rcs_basis,
    risk_curve,
    risk_curves,
    risk_curves_figure,
)


def r_data(seed=0, n=324):
    """The data sent to R (numpy PCG64 stream; times rounded to 0.1 day, hence ties)."""
    rng = np.random.default_rng(seed)
    auc = rng.lognormal(np.log(125.0), 0.3, n)
    age = rng.normal(45, 12, n)
    sex = rng.integers(0, 2, n)
    lh = 0.7 * ((auc < 100) | (auc >= 150)) + 0.02 * (age - 45) + 0.3 * sex
    t = rng.exponential(200.0 * np.exp(-lh))
    c = rng.uniform(60, 400, n)
    X = pd.DataFrame({"auc_total": auc, "age": age, "sex": sex.astype(float)})
    y = np.empty(n, dtype=[("event", bool), ("time", "f8")])
    y["event"], y["time"] = t <= c, np.round(np.minimum(t, c), 1)
    return X, y


R_KNOTS = [80.3330305216331, 108.4229765583266, 138.9016228709363, 200.9283074496292]
R_FITS = {  # coef (auc, auc', auc'', age, sex), se, vcov[auc, auc']
    "breslow": ([-2.3518620753e-02, 1.2217855520e-01, -2.6413373103e-01, 2.5609814715e-02,
                 4.2885177345e-01],
                [6.4040923319e-03, 3.4866838428e-02, 8.0984651164e-02, 5.4989002002e-03,
                 1.2792747867e-01], -2.0038540128e-04),
    "efron": ([-2.3523390224e-02, 1.2217006565e-01, -2.6408197584e-01, 2.5623014412e-02,
               4.2910323046e-01],
              [6.4033418465e-03, 3.4864890338e-02, 8.0982196658e-02, 5.4992279390e-03,
               1.2793037022e-01], -2.0034462036e-04),
}
NS_X = [70, 90, 110, 125, 140, 160, 190, 230]
R_NS = [  # splines::ns(NS_X, knots=R_KNOTS[1:3], Boundary.knots=R_KNOTS[c(0, 3)])
    [0.1108050508255042, -0.2760574411581953, 0.1652523903326911],
    [-0.0962189564035833, 0.2510619102957225, -0.1502896666135679],
    [-0.1030686973007299, 0.5845163385541468, -0.3498918076308052],
    [0.1560667160765834, 0.5608903102983255, -0.3253025377019690],
    [0.4244745602996934, 0.4394524392619416, -0.1908020049773271],
    [0.4772054796184879, 0.3511581362876305, 0.0725541643847279],
    [0.0612579766938376, 0.3675783151185681, 0.5692775284035929],
    [-0.7519199031624128, 0.4672282688237466, 1.2846916343386663],
]


@parametrize_with_checks([RestrictedCubicSpline(n_knots=3)])
def test_spline_transformer_follows_the_scikit_learn_contract(estimator, check):
    check(estimator)


def test_knots_at_harrell_quantiles_match_r():
    X, _ = r_data()
    np.testing.assert_allclose(harrell_knots(X["auc_total"], 4), R_KNOTS, rtol=1e-13)
    # fewer than 100 values: outer knots at the 5th smallest / largest (Hmisc rule)
    x = np.arange(1.0, 51.0)
    k = harrell_knots(x, 4)
    assert (k[0], k[-1]) == (5.0, 46.0)


def test_basis_spans_the_natural_cubic_spline_space_of_r():
    B = rcs_basis(np.array(NS_X, float), R_KNOTS)
    design = np.column_stack([np.ones(len(NS_X)), B])
    coef, *_ = np.linalg.lstsq(design, np.array(R_NS), rcond=None)
    np.testing.assert_allclose(design @ coef, R_NS, atol=1e-10)


def test_basis_is_linear_beyond_the_outer_knots_and_smooth_at_knots():
    k = np.array(R_KNOTS)
    for region in (np.linspace(20, k[0], 7), np.linspace(k[-1], 400, 7)):
        second = np.diff(rcs_basis(region, k), n=2, axis=0)
        np.testing.assert_allclose(second, 0.0, atol=1e-9)
    h = 1e-4  # first derivative continuous at every knot
    for t in k:
        left = (rcs_basis([t], k) - rcs_basis([t - h], k)) / h
        right = (rcs_basis([t + h], k) - rcs_basis([t], k)) / h
        np.testing.assert_allclose(left, right, atol=1e-3)


@pytest.mark.r_reference
@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_cox_spline_coefficients_and_covariance_match_r_coxph(ties):
    X, y = r_data()
    model = CoxSplineModel(n_knots=4, alpha=0.0, ties=ties).fit(X, y)
    coef, se, cov01 = R_FITS[ties]
    np.testing.assert_allclose(model.knots_, R_KNOTS, rtol=1e-13)
    np.testing.assert_allclose(model.coef_, coef, rtol=2e-6)
    np.testing.assert_allclose(np.sqrt(np.diag(model.cov_)), se, rtol=2e-6)
    np.testing.assert_allclose(model.cov_[0, 1], cov01, rtol=2e-6)


def test_linear_basis_equals_scikit_survival_coxph():
    X, y = r_data()
    model = CoxSplineModel(knots="linear", alpha=0.0).fit(X, y)
    ref = CoxPHSurvivalAnalysis().fit(X.to_numpy(), y)
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-8)
    np.testing.assert_allclose(model.predict_survival_function(X.iloc[:4], return_array=True),
                               ref.predict_survival_function(X.to_numpy()[:4], return_array=True),
                               rtol=1e-8)


def test_risk_curve_shows_the_u_shape_with_delta_method_band():
    X, y = r_data()
    model = CoxSplineModel().fit(X, y)
    curve = risk_curve(model, [70.0, 125.0, 200.0], reference=125.0, endpoint="composite")
    assert list(curve.columns) == ["endpoint", "exposure", "log_hr", "se", "lower", "upper",
                                   "hr", "reference"]
    low, ref, high = curve.itertuples()
    assert ref.log_hr == 0.0 and ref.se == 0.0
    assert low.lower > 0 and high.lower > 0  # significantly higher risk on both sides
    # delta method by hand: d' Cov d for d = B(a) - B(ref)
    d = rcs_basis([70.0], model.knots_) - rcs_basis([125.0], model.knots_)
    np.testing.assert_allclose(low.se, np.sqrt(d @ model.cov_[:3, :3] @ d.T)[0, 0])
    np.testing.assert_allclose(low.upper - low.log_hr, 1.959964 * low.se, rtol=1e-6)


def _two_outcomes(n=600, seed=2):
    """A GVHD-like endpoint rising below 100 and a virus-like one rising above 150."""
    rng = np.random.default_rng(seed)
    auc = rng.lognormal(np.log(125.0), 0.3, n)
    X = pd.DataFrame({"auc_total": auc, "age": rng.normal(0, 1, n)})
    out = {}
    for name, lh in {"agvhd2": 1.0 * (auc < 100), "cmv": 1.0 * (auc >= 150)}.items():
        t = rng.exponential(150.0 * np.exp(-lh))
        c = rng.uniform(50, 300, n)
        y = np.empty(n, dtype=[("event", bool), ("time", "f8")])
        y["event"], y["time"] = t <= c, np.minimum(t, c)
        out[name] = y
    return X, out


def test_each_outcome_sets_its_bound():
    X, targets = _two_outcomes()
    curves = risk_curves(X, targets, reference=125.0)
    roles = bound_setters(curves, (100.0, 150.0)).set_index("endpoint")["sets"]
    assert roles.to_dict() == {"agvhd2": "lower", "cmv": "upper"}
    fig = risk_curves_figure(curves, window=(100.0, 150.0))
    assert isinstance(fig, Figure)
    labels = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert len([ax for ax in fig.axes if ax.axison]) == 2  # one panel per outcome
    assert "agvhd2 - rises below" in labels and "cmv - rises above" in labels


def test_bound_setters_needs_the_reference_inside_the_window():
    X, targets = _two_outcomes(200)
    curves = risk_curves(X, {"cmv": targets["cmv"]}, reference=90.0)
    with pytest.raises(ValueError, match=r"reference exposure of 'cmv' \(90\) must lie inside"):
        bound_setters(curves, (100.0, 150.0))


def test_constant_covariate_is_dropped_not_fatal():
    X, y = r_data()
    model = CoxSplineModel().fit(X.assign(rare=0.0), y)
    assert model.dropped_features_ == ["rare"]
    assert model.coef_[-1] == 0.0 and np.isfinite(model.cov_).all()


@pytest.mark.parametrize("params, message", [
    ({"exposure": "auc"}, "exposure 'auc' is not a column of X"),
    ({"ties": "exact"}, "ties must be 'breslow' or 'efron', got 'exact'"),
    ({"knots": "cubic"}, "knots must be an array of knots or 'linear', got 'cubic'"),
    ({"knots": [100.0, 90.0, 150.0]}, "knots must be >= 3 strictly increasing values"),
    ({"n_knots": 9}, "n_knots must be in 3..7, got 9"),
])
def test_bad_cox_parameters_are_refused(params, message):
    X, y = r_data(n=120)
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        CoxSplineModel(**params).fit(X, y)
    assert message in str(err.value)
