"""SHAP explanations and the SHAP-derived exposure window (ml.models._shap).

References: SHAP's local accuracy (values + base value = model margin, Lundberg & Lee 2017)
checked against the booster's own margin; closed-form windows on hand-made explanations.
"""

from __future__ import annotations

import io
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import shap
from matplotlib.figure import Figure

from ml.models import (
    BinnedMeans,
    CoxSplineModel,
    LocalLinear,
    XGBSurvival,
    interaction_strengths,
    shap_beeswarm_figure,
    shap_dependence_figure,
    shap_explanation,
    shap_importance,
    shap_waterfall_figure,
    shap_window,
    strongest_interaction,
)

PARAMS = dict(n_estimators=80, learning_rate=0.1, max_depth=2, n_jobs=1, random_state=0)


def u_shaped(n=500, seed=0, interaction=False):
    rng = np.random.default_rng(seed)
    auc = rng.lognormal(np.log(125.0), 0.3, n)
    X = pd.DataFrame({"auc_total": auc, "age_years": rng.normal(45, 12, n),
                      "z0": rng.normal(size=n), "z1": rng.normal(size=n)})
    outside = ((auc < 100) | (auc >= 150)).astype(float)
    lh = (1.4 * outside * (X["z0"] > 0) if interaction else 0.8 * outside) + 0.02 * (X["age_years"] - 45)
    t = rng.exponential(200.0 * np.exp(-lh))
    c = rng.uniform(60, 400, n)
    y = np.empty(n, dtype=[("event", bool), ("time", "f8")])
    y["event"], y["time"] = t <= c, np.minimum(t, c)
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = u_shaped()
    model = XGBSurvival(**PARAMS).fit(X, y)
    return model, X, shap_explanation(model, X)


def test_values_add_up_to_the_log_hazard_margin(fitted):
    model, X, expl = fitted
    np.testing.assert_allclose(expl.values.sum(axis=1) + expl.base_values, model.predict(X),
                               atol=1e-5)
    assert expl.feature_names == ["auc_total", "age_years", "z0", "z1"]


def test_aft_values_are_on_the_risk_scale():
    X, y = u_shaped(200)
    model = XGBSurvival("survival:aft", **PARAMS).fit(X, y)
    expl = shap_explanation(model, X)
    np.testing.assert_allclose(expl.values.sum(axis=1) + expl.base_values, model.predict(X),
                               atol=1e-4)


def test_exposure_is_the_most_important_feature(fitted):
    imp = shap_importance(fitted[2])
    assert list(imp.columns) == ["feature", "mean_abs_shap"]
    assert imp["feature"].iloc[0] == "auc_total"
    assert imp["mean_abs_shap"].is_monotonic_decreasing


def test_shap_window_roughly_covers_the_true_window(fitted):
    expl = fitted[2]
    for smoother in (BinnedMeans(), LocalLinear(frac=0.15)):
        w = shap_window(expl, smoother=smoother)
        assert 85 < w.lower < 112 and 138 < w.upper < 165, (smoother, w)
        assert not (w.open_lower or w.open_upper)
        assert w.lower < w.argmin < w.upper
        assert w.as_tuple() == (w.lower, w.upper, w.tolerance)
        assert w.curve["inside"].any()


def _explanation(x, s):
    return shap.Explanation(values=np.asarray(s, float)[:, None],
                            base_values=np.zeros(len(x)), data=np.asarray(x, float)[:, None],
                            feature_names=["auc_total"])


def test_binned_window_of_a_step_is_exact_at_bin_edges():
    x = np.arange(50.0, 200.0)  # 150 values, 15 bins of 10: edges at 50, 60, ..., 190
    s = np.where((x >= 100) & (x < 150), -0.3, 0.4)
    w = shap_window(_explanation(x, s), smoother=BinnedMeans(15))
    assert (w.lower, w.upper) == (100.0, 150.0)
    assert w.tolerance == pytest.approx(0.35)  # default: half the range of the curve
    assert w.minimum == pytest.approx(-0.3)


def test_local_linear_window_of_a_v_is_the_closed_form_crossing():
    x = np.linspace(50.0, 200.0, 301)
    s = np.abs(x - 125.0) / 100.0
    w = shap_window(_explanation(x, s), tolerance=0.1, smoother=LocalLinear(frac=0.04, n_points=151))
    # away from the tip the local linear fit is exact, so the curve reaches minimum + 0.1 where
    # |x - 125| / 100 = minimum + 0.1; the smoothed minimum sits a little above 0 at the tip
    assert 0 < w.minimum < 0.02 and w.argmin == pytest.approx(125.0)
    half_width = 100.0 * (w.minimum + 0.1)
    assert w.lower == pytest.approx(125.0 - half_width, abs=1e-6)
    assert w.upper == pytest.approx(125.0 + half_width, abs=1e-6)


def test_window_reaching_the_data_edge_is_flagged_open():
    x = np.arange(50.0, 200.0)
    w = shap_window(_explanation(x, x / 100.0), tolerance=0.2, smoother=BinnedMeans(15))
    assert w.open_lower and not w.open_upper and w.lower == 50.0


@pytest.mark.parametrize("kwargs, message", [
    ({"feature": "auc"}, "feature(s) ['auc'] not in the explanation's features"),
    ({"tolerance": 0.0}, "tolerance must be > 0 (log-hazard units), got 0.0"),
])
def test_bad_window_arguments(fitted, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        shap_window(fitted[2], **kwargs)
    assert message in str(err.value)


def test_strongest_interaction_finds_the_planted_one():
    X, y = u_shaped(600, seed=1, interaction=True)
    model = XGBSurvival(**PARAMS).fit(X, y)
    assert strongest_interaction(model, X, "auc_total") == "z0"
    table = interaction_strengths(model, X, "auc_total")
    assert "auc_total" not in set(table["feature"])


def test_figures_are_detached_matplotlib_figures(fitted):
    model, X, expl = fitted
    before = plt.get_fignums()
    figs = [
        shap_beeswarm_figure(expl),
        shap_waterfall_figure(expl, 3),
        shap_dependence_figure(expl, color=strongest_interaction(model, X),
                               window=shap_window(expl), scan_window=(100.0, 150.0)),
        shap_dependence_figure(expl, color="auto"),
    ]
    assert plt.get_fignums() == before  # nothing left open in pyplot
    for fig in figs:
        assert isinstance(fig, Figure)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        assert buf.getvalue()[:4] == b"\x89PNG"


def test_aggregate_dependence_draws_bin_means_and_no_patient_points(fitted):
    """``points=False`` (the shared report's view): only the mean of each equal-count exposure bin."""
    _, _, expl = fitted
    fig = shap_dependence_figure(expl, color="z0", window=shap_window(expl), points=False, n_bins=20)
    ax = fig.axes[0]
    assert not ax.collections or all(len(c.get_offsets()) == 0 for c in ax.collections)  # no scatter of patients
    assert len(fig.axes) == 1  # no colour bar: the colour feature is ignored
    names = list(expl.feature_names)
    x = np.asarray(expl.data)[:, names.index("auc_total")]
    v = np.asarray(expl.values)[:, names.index("auc_total")]
    order = np.argsort(x, kind="mergesort")
    expected = [(x[b].mean(), v[b].mean()) for b in np.array_split(order, 20)]  # by hand: 20 bins of equal count
    (means,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("mean SHAP value per exposure bin")]
    np.testing.assert_allclose(np.column_stack(means.get_data()), expected)


def test_explaining_something_else_is_refused(fitted):
    X = fitted[1]
    with pytest.raises(TypeError, match="need a fitted XGBSurvival"):
        shap_explanation(CoxSplineModel(), X)
    with pytest.raises(ValueError, match="the model is not fitted"):
        shap_explanation(XGBSurvival(), X)


# -- one-sided SHAP bounds (a model of one side's endpoint) ---------------------------------------
def test_shap_floor_and_ceiling_of_steps_are_exact_at_bin_edges():
    from ml.models import shap_bound

    x = np.arange(50.0, 200.0)  # 15 bins of 10: edges at 50, 60, ..., 190
    floor = shap_bound(_explanation(x, np.where(x < 100, 0.5, -0.2)), side="floor", smoother=BinnedMeans(15))
    assert floor.value == 100.0 and not floor.open
    assert floor.drop == pytest.approx(0.7) and floor.tolerance == pytest.approx(0.35)
    assert floor.curve["harmed"].sum() == 5  # the bins below 100
    ceiling = shap_bound(_explanation(x, np.where(x >= 150, 0.6, -0.1)), side="ceiling", smoother=BinnedMeans(15))
    assert ceiling.value == 150.0 and not ceiling.open and ceiling.curve["harmed"].sum() == 5


def test_shap_bound_is_monotone_so_a_bump_on_the_protected_side_does_not_move_it():
    from ml.models import shap_bound

    x = np.arange(50.0, 200.0)
    s = np.where(x < 100, 0.5, -0.2) + np.where((x >= 160) & (x < 170), 0.3, 0.0)  # one noisy bin above
    b = shap_bound(_explanation(x, s), side="floor", smoother=BinnedMeans(15))
    # pool-adjacent-violators pools the bump with its neighbours: still non-increasing, floor unchanged
    assert b.value == 100.0 and np.all(np.diff(b.curve["monotone"]) <= 1e-12)


def test_shap_bound_without_a_fall_or_rise_is_open_and_not_compared():
    from ml.models import shap_bound

    x = np.arange(50.0, 200.0)
    flat_floor = shap_bound(_explanation(x, x / 100.0), side="floor", smoother=BinnedMeans(15))
    assert flat_floor.open and flat_floor.drop == pytest.approx(0.0) and flat_floor.value == 50.0
    assert flat_floor.within((40.0, 60.0)) is None
    no_rise = shap_bound(_explanation(x, -x / 100.0), side="ceiling", smoother=BinnedMeans(15))
    assert no_rise.open and no_rise.value == 199.0


def test_shap_bound_within_an_interval_and_interpolated_crossing():
    from ml.models import shap_bound

    x = np.linspace(50.0, 200.0, 301)
    s = np.clip((x - 120.0) / 20.0, 0.0, 1.0)  # rises linearly from 120 to 140
    b = shap_bound(_explanation(x, s), side="ceiling", smoother=LocalLinear(frac=0.03, n_points=151))
    assert b.value == pytest.approx(130.0, abs=1.0)  # halfway up the ramp
    assert b.within((125.0, 135.0)) is True and b.within((140.0, None)) is False
    assert b.within((None, 131.0)) is True and b.within(None) is None
    with pytest.raises(ValueError, match="side must be one of"):
        shap_bound(_explanation(x, s), side="both")


def test_shap_bound_figure_is_aggregate():
    from ml.models import shap_bound, shap_bound_figure

    x = np.arange(50.0, 200.0)
    b = shap_bound(_explanation(x, np.where(x < 100, 0.5, -0.2)), side="floor", smoother=BinnedMeans(15))
    fig = shap_bound_figure(b, scan_bound=104.0, scan_ci=(95.0, None), simulated=True)
    assert isinstance(fig, Figure)
    points = [line for line in fig.axes[0].lines if line.get_marker() == "o"]
    assert len(points) == 1 and len(points[0].get_xdata()) == 15  # one dot per bin, none per patient
