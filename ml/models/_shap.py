"""SHAP explanations of the XGBoost survival model, and a SHAP-derived exposure window.

Values come from ``shap.TreeExplainer`` on the booster, in the model's margin: the log-hazard
for ``survival:cox`` (a positive value raises the hazard). For ``survival:aft`` the margin is
the location of log-time; it is negated so that, here too, positive means higher risk.

The SHAP window is a cross-check beside the scan's window: exposure's SHAP contribution to the
(composite-endpoint) log-hazard is smoothed along AUC, and the window is the contiguous
exposure range around the smoothed minimum where the curve stays within ``tolerance``
(log-hazard units; 0.1 means hazards within about 10 % of the lowest; by default half the
range of the smoothed curve) of that minimum. For a model of one side's endpoint (a benefit-harm
window) the one-sided :func:`shap_bound` is the cross-check instead: where the contribution to
the floor endpoint's log-hazard stops falling, or to the ceiling endpoint's starts rising.

Figures are plain :class:`matplotlib.figure.Figure` objects (Agg, never shown). SHAP's own
plots (beeswarm, waterfall) draw through pyplot; the figure is detached from pyplot's registry
before it is returned, so long runs do not accumulate open figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xgboost as xgb
from matplotlib.figure import Figure
from sklearn.pipeline import Pipeline

from ml.models._xgb_survival import XGBSurvival

if TYPE_CHECKING:  # shap is imported lazily: it is slow to import and only needed here
    import shap


# -- explanation ---------------------------------------------------------------------------
def _unwrap(model, X) -> tuple[XGBSurvival, pd.DataFrame]:
    if isinstance(model, Pipeline):
        X = model[:-1].transform(X)
        model = model[-1]
    if not isinstance(model, XGBSurvival):
        raise TypeError(f"SHAP explanations need a fitted XGBSurvival (or a Pipeline ending in "
                        f"one), got {type(model).__name__}")
    if not hasattr(model, "booster_"):
        raise ValueError("the model is not fitted; call fit first")
    if not isinstance(X, pd.DataFrame):
        names = getattr(model, "feature_names_in_", None)
        X = pd.DataFrame(np.asarray(X, dtype=float),
                         columns=names if names is not None else
                         [f"x{j}" for j in range(np.asarray(X).shape[1])])
    return model, X


def shap_explanation(model, X) -> shap.Explanation:
    """SHAP values of an XGBoost survival model on the log-hazard (risk) scale.

    Parameters
    ----------
    model : XGBSurvival or Pipeline ending in one
        Fitted.
    X : DataFrame or array-like
        Patients to explain (raw features when ``model`` is a Pipeline).

    Returns
    -------
    shap.Explanation
        ``values`` (n, p) in log-hazard units, ``base_values``, ``data`` and
        ``feature_names`` (the encoded names, e.g. ``cmv_serostatus=R+/D-``). Row sums plus
        base value equal ``model.predict(X)``.
    """
    import shap

    est, Xt = _unwrap(model, X)
    explainer = shap.TreeExplainer(est.booster_)
    sv = explainer(Xt.to_numpy(dtype=float))
    sign = 1.0 if est.objective == "survival:cox" else -1.0
    return shap.Explanation(
        values=sign * np.asarray(sv.values, dtype=float),
        base_values=sign * np.asarray(sv.base_values, dtype=float),
        data=Xt.to_numpy(dtype=float),
        feature_names=[str(c) for c in Xt.columns],
    )


def shap_importance(explanation: shap.Explanation) -> pd.DataFrame:
    """Global importance: mean |SHAP| per feature (log-hazard units), largest first.

    Returns
    -------
    pandas.DataFrame
        ``feature, mean_abs_shap``.
    """
    imp = np.abs(np.asarray(explanation.values)).mean(axis=0)
    return (pd.DataFrame({"feature": list(explanation.feature_names), "mean_abs_shap": imp})
            .sort_values("mean_abs_shap", ascending=False, kind="mergesort")
            .reset_index(drop=True))


def interaction_strengths(model, X, feature: str = "auc_total") -> pd.DataFrame:
    """Exact SHAP interaction strengths between ``feature`` and every other feature.

    Uses XGBoost's TreeSHAP interaction values (``pred_interactions=True``, Lundberg et al.
    2020): strength of ``j`` is the mean over patients of ``|Phi[feature, j]| + |Phi[j, feature]|``.

    Returns
    -------
    pandas.DataFrame
        ``feature, strength`` sorted descending (``feature`` itself excluded).
    """
    est, Xt = _unwrap(model, X)
    names = [str(c) for c in Xt.columns]
    if feature not in names:
        raise ValueError(f"feature {feature!r} is not among the model's features {names}")
    i = names.index(feature)
    d = xgb.DMatrix(Xt.to_numpy(dtype=float), nthread=est.n_jobs, missing=np.nan)
    phi = est.booster_.predict(d, pred_interactions=True)[:, :-1, :-1]
    strength = np.abs(phi[:, i, :]).mean(axis=0) + np.abs(phi[:, :, i]).mean(axis=0)
    out = pd.DataFrame({"feature": names, "strength": strength}).drop(index=i)
    return out.sort_values("strength", ascending=False, kind="mergesort").reset_index(drop=True)


def strongest_interaction(model, X, feature: str = "auc_total") -> str:
    """Name of the feature with the strongest SHAP interaction with ``feature``."""
    return str(interaction_strengths(model, X, feature)["feature"].iloc[0])


# -- figures drawn by SHAP ---------------------------------------------------------------------
@contextmanager
def _pyplot_figure(figsize):
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=figsize)
    try:
        yield fig
    finally:
        plt.close(fig)


def shap_beeswarm_figure(explanation: shap.Explanation, *, max_display: int = 12,
                         title: str = "SHAP values (log-hazard)") -> Figure:
    """Beeswarm of SHAP values: one dot per patient and feature, coloured by feature value."""
    import shap

    with _pyplot_figure((8, 0.4 * max_display + 1.5)) as fig:
        ax = fig.add_subplot()
        shap.plots.beeswarm(explanation, max_display=max_display, show=False, ax=ax,
                            plot_size=None)
        ax.set_xlabel("SHAP value (contribution to log-hazard)")
        ax.set_title(title, fontsize="medium")
        fig.tight_layout()
    return fig


def shap_waterfall_figure(explanation: shap.Explanation, index: int, *, max_display: int = 10,
                          title: str | None = None) -> Figure:
    """Waterfall of one patient's log-hazard: base value plus each feature's contribution."""
    import shap

    with _pyplot_figure((8, 0.45 * max_display + 1.5)) as fig:
        shap.plots.waterfall(explanation[int(index)], max_display=max_display, show=False)
        fig = fig.axes[0].figure if fig.axes else fig
        if title:
            fig.axes[0].set_title(title, fontsize="medium")
        fig.tight_layout()
    return fig


# -- smoothing strategies and the SHAP window ----------------------------------------------------
@dataclass(frozen=True)
class BinnedMeans:
    """Mean SHAP value in quantile bins of exposure (equal-count bins).

    Parameters
    ----------
    n_bins : int, default 20
    """

    n_bins: int = 20

    def smooth(self, x: np.ndarray, s: np.ndarray) -> pd.DataFrame:
        """``exposure`` (bin median), ``shap`` (bin mean), ``lo``/``hi`` (bin edges), ``n``."""
        order = np.argsort(x, kind="mergesort")
        bins = [b for b in np.array_split(order, min(self.n_bins, len(x))) if b.size]
        edges = [x[b].min() for b in bins] + [x[bins[-1]].max()]
        # a bin runs from its smallest value to the next bin's smallest value
        return pd.DataFrame({
            "exposure": [float(np.median(x[b])) for b in bins],
            "shap": [float(s[b].mean()) for b in bins],
            "lo": edges[:-1], "hi": edges[1:],
            "n": [b.size for b in bins],
        })


@dataclass(frozen=True)
class LocalLinear:
    """Tricube-weighted local linear regression (LOWESS without robustness iterations).

    Parameters
    ----------
    frac : float, default 0.3
        Fraction of patients in each local fit.
    n_points : int, default 100
        Evaluation points, evenly spaced over the observed exposure.
    """

    frac: float = 0.3
    n_points: int = 100

    def smooth(self, x: np.ndarray, s: np.ndarray) -> pd.DataFrame:
        """``exposure`` (grid) and ``shap`` (local linear fit)."""
        grid = np.linspace(x.min(), x.max(), self.n_points)
        k = max(3, int(np.ceil(self.frac * len(x))))
        fit = np.empty_like(grid)
        for g, x0 in enumerate(grid):
            dist = np.abs(x - x0)
            h = np.partition(dist, k - 1)[k - 1] * 1.0001 + 1e-12
            w = np.clip(1 - (dist / h) ** 3, 0, None) ** 3
            sw = w.sum()
            xm = (w * x).sum() / sw
            sm = (w * s).sum() / sw
            var = (w * (x - xm) ** 2).sum()
            slope = (w * (x - xm) * (s - sm)).sum() / var if var > 0 else 0.0
            fit[g] = sm + slope * (x0 - xm)
        return pd.DataFrame({"exposure": grid, "shap": fit})


@dataclass(frozen=True)
class ShapWindow:
    """Exposure range where exposure's SHAP contribution stays near its minimum.

    Attributes
    ----------
    lower, upper : float
        Bounds (UE*day/mL).
    tolerance : float
        Log-hazard units above the minimum of the smoothed curve.
    minimum : float
        Smoothed SHAP value at its minimum (log-hazard).
    argmin : float
        Exposure at the minimum (UE*day/mL).
    open_lower, open_upper : bool
        True when the range reaches the lowest / highest observed exposure (the bound is then
        a data limit, not a rise in risk).
    feature : str
        Exposure feature (x-axis).
    curve : DataFrame
        The smoothed curve (``exposure``, ``shap``, ...), with ``inside`` marking the window.
    """

    lower: float
    upper: float
    tolerance: float
    minimum: float
    argmin: float
    open_lower: bool
    open_upper: bool
    feature: str
    curve: pd.DataFrame = field(repr=False)

    def as_tuple(self) -> tuple[float, float, float]:
        """``(lower, upper, tolerance)``."""
        return (self.lower, self.upper, self.tolerance)

    def to_dict(self) -> dict:
        """Scalars only (for logging next to the scan's window)."""
        return {"shap_window_lower": self.lower, "shap_window_upper": self.upper,
                "shap_window_tolerance": self.tolerance, "shap_window_minimum": self.minimum,
                "shap_window_argmin": self.argmin,
                "shap_window_open_lower": float(self.open_lower),
                "shap_window_open_upper": float(self.open_upper)}


def _crossing(x0, y0, x1, y1, level) -> float:
    if y1 == y0:
        return float(x0)
    return float(x0 + (level - y0) * (x1 - x0) / (y1 - y0))


def _smoothed(explanation, feature: str, tolerance, include: Sequence[str], smoother) -> pd.DataFrame:
    """Exposure's SHAP contribution (plus ``include`` columns), smoothed along exposure."""
    if tolerance is not None and not tolerance > 0:
        raise ValueError(f"tolerance must be > 0 (log-hazard units), got {tolerance!r}")
    names = list(explanation.feature_names)
    cols = [feature, *include]
    missing = [c for c in cols if c not in names]
    if missing:
        raise ValueError(f"feature(s) {missing} not in the explanation's features {names}")
    idx = [names.index(c) for c in cols]
    x = np.asarray(explanation.data)[:, idx[0]].astype(float)
    s = np.asarray(explanation.values)[:, idx].sum(axis=1)
    ok = np.isfinite(x)
    return (BinnedMeans() if smoother is None else smoother).smooth(x[ok], s[ok]).copy()


def shap_window(explanation: shap.Explanation, feature: str = "auc_total", *,
                tolerance: float | None = None, include: Sequence[str] = (),
                smoother=None) -> ShapWindow:
    """SHAP-derived exposure window.

    Parameters
    ----------
    explanation : shap.Explanation
        From :func:`shap_explanation` of a model of the (composite) endpoint.
    feature : str, default "auc_total"
        Exposure feature: the x-axis and the SHAP column summed.
    tolerance : float, optional
        Log-hazard units above the minimum still counted as "in the window". Default: half
        the range (max - min) of the smoothed curve, which for a step-shaped effect puts
        each bound where the curve crosses halfway between the inside and outside levels
        (the unbiased location of a smoothed step). The value used is returned.
    include : sequence of str
        Further exposure columns whose SHAP values are added (e.g. ``("auc_pre",
        "auc_post")`` when the model sees them too).
    smoother : object with ``smooth(x, s) -> DataFrame``, default ``BinnedMeans(20)``
        :class:`BinnedMeans` (bins: bounds at bin edges) or :class:`LocalLinear` (bounds
        interpolated where the curve crosses ``minimum + tolerance``).

    Returns
    -------
    ShapWindow
    """
    curve = _smoothed(explanation, feature, tolerance, include, smoother)
    y = curve["shap"].to_numpy()
    xs = curve["exposure"].to_numpy()
    i_min = int(np.argmin(y))
    if tolerance is None:
        tolerance = 0.5 * float(y.max() - y.min())
    level = y[i_min] + tolerance
    i0 = i_min
    while i0 > 0 and y[i0 - 1] <= level:
        i0 -= 1
    i1 = i_min
    while i1 < len(y) - 1 and y[i1 + 1] <= level:
        i1 += 1
    binned = {"lo", "hi"} <= set(curve.columns)
    if binned:
        lower, upper = float(curve["lo"].iloc[i0]), float(curve["hi"].iloc[i1])
    else:
        lower = float(xs[0]) if i0 == 0 else _crossing(xs[i0 - 1], y[i0 - 1], xs[i0], y[i0], level)
        upper = (float(xs[-1]) if i1 == len(y) - 1
                 else _crossing(xs[i1], y[i1], xs[i1 + 1], y[i1 + 1], level))
    inside = np.zeros(len(y), dtype=bool)
    inside[i0:i1 + 1] = True
    curve["inside"] = inside
    return ShapWindow(lower=lower, upper=upper, tolerance=float(tolerance),
                      minimum=float(y[i_min]), argmin=float(xs[i_min]),
                      open_lower=i0 == 0, open_upper=i1 == len(y) - 1, feature=feature,
                      curve=curve)


SHAP_SIDES = ("floor", "ceiling")


@dataclass(frozen=True)
class ShapBound:
    """One-sided SHAP bound of a model of one side's endpoint(s).

    For a model of the under-exposure endpoint (``side="floor"``, e.g. acute GVHD) the bound is
    where exposure's contribution to the log-hazard stops falling; for a model of the
    over-exposure endpoint (``side="ceiling"``, e.g. CMV or EBV reactivation) where it starts
    rising. The smoothed contribution is made monotone (pool-adjacent-violators: non-increasing
    for a floor, non-decreasing for a ceiling, weighted by bin sizes) and the bound is where it
    crosses ``minimum + tolerance``: by default halfway between its highest and lowest level, the
    location of a smoothed step (as :func:`shap_window`).

    Attributes
    ----------
    side : {"floor", "ceiling"}
    value : float
        The bound (exposure unit, UE*day/mL). With ``open`` it is the observed data limit.
    tolerance : float
        Log-hazard units above the monotone curve's minimum.
    level : float
        ``minimum + tolerance`` (log-hazard).
    drop : float
        Range of the monotone curve (log-hazard): how much exposure moves the side's hazard
        across the observed exposures (0: no fall / rise at all).
    open : bool
        No fall (floor) or rise (ceiling) within the observed exposure: ``value`` is a data limit.
    feature : str
    curve : DataFrame
        The smoothed curve (``exposure``, ``shap``, ...), ``monotone`` and ``harmed`` (the
        points on the harmed side of the bound).
    """

    side: str
    value: float
    tolerance: float
    level: float
    drop: float
    open: bool
    feature: str
    curve: pd.DataFrame = field(repr=False)

    def within(self, interval) -> bool | None:
        """True when ``value`` lies in ``interval`` (low, high; None = unbounded); None when
        the bound is open or there is no interval."""
        if self.open or interval is None:
            return None
        lo, hi = interval
        lo = -np.inf if lo is None or not np.isfinite(lo) else lo
        hi = np.inf if hi is None or not np.isfinite(hi) else hi
        if not (np.isfinite(lo) or np.isfinite(hi)):
            return None
        return bool(lo <= self.value <= hi)

    def to_dict(self, prefix: str = "") -> dict:
        """Scalars only, e.g. ``{"floor_shap_bound": 104.2, ...}`` with ``prefix="floor_"``."""
        return {f"{prefix}shap_bound": self.value, f"{prefix}shap_bound_tolerance": self.tolerance,
                f"{prefix}shap_bound_drop": self.drop, f"{prefix}shap_bound_open": float(self.open)}


def shap_bound(explanation: shap.Explanation, feature: str = "auc_total", *, side: str,
               tolerance: float | None = None, include: Sequence[str] = (), smoother=None) -> ShapBound:
    """One-sided SHAP bound: where exposure's contribution stops falling (floor) or starts rising
    (ceiling).

    Parameters
    ----------
    explanation : shap.Explanation
        From :func:`shap_explanation` of a model of one side's endpoint(s).
    feature : str, default "auc_total"
    side : {"floor", "ceiling"}
        ``"floor"``: the hypothesis is that risk falls with exposure up to the bound;
        ``"ceiling"``: that it rises from the bound on.
    tolerance : float, optional
        Log-hazard units above the monotone curve's minimum (default: half its range).
    include : sequence of str
        Further exposure columns whose SHAP values are added.
    smoother : object with ``smooth(x, s) -> DataFrame``, default ``BinnedMeans(20)``
        With bins the bound is a bin edge; otherwise it is interpolated.

    Returns
    -------
    ShapBound
    """
    from sklearn.isotonic import isotonic_regression

    if side not in SHAP_SIDES:
        raise ValueError(f"side must be one of {SHAP_SIDES}, got {side!r}")
    curve = _smoothed(explanation, feature, tolerance, include, smoother)
    y = curve["shap"].to_numpy(dtype=float)
    xs = curve["exposure"].to_numpy(dtype=float)
    w = curve["n"].to_numpy(dtype=float) if "n" in curve else np.ones_like(y)
    mono = isotonic_regression(y, sample_weight=w, increasing=side == "ceiling")
    curve["monotone"] = mono
    drop = float(mono.max() - mono.min())
    if tolerance is None:
        tolerance = 0.5 * drop
    level = float(mono.min() + tolerance)
    binned = {"lo", "hi"} <= set(curve.columns)
    low = mono <= level + 1e-12
    harmed = np.zeros(len(y), dtype=bool)
    if drop <= 0 or low.all():
        is_open = True
        value = float(curve["lo"].iloc[0] if binned else xs[0]) if side == "floor" else \
            float(curve["hi"].iloc[-1] if binned else xs[-1])
    elif side == "floor":
        i = int(np.argmax(low))  # first point at the low plateau
        is_open = i == 0
        harmed[:i] = True
        value = float(curve["lo"].iloc[i]) if binned else _crossing(xs[i - 1], mono[i - 1], xs[i], mono[i], level)
    else:
        j = int(len(low) - 1 - np.argmax(low[::-1]))  # last point at the low plateau
        is_open = j == len(y) - 1
        harmed[j + 1:] = True
        value = float(curve["hi"].iloc[j]) if binned else (
            float(xs[-1]) if is_open else _crossing(xs[j], mono[j], xs[j + 1], mono[j + 1], level))
    curve["harmed"] = harmed
    return ShapBound(side=side, value=value, tolerance=float(tolerance), level=level, drop=drop,
                     open=bool(is_open), feature=feature, curve=curve)


def shap_bound_figure(bound: ShapBound, *, scan_bound=None, scan_ci=None, exposure_unit: str = "UE*day/mL",
                      title: str | None = None, simulated: bool = False, figsize=(6.4, 4.0)) -> Figure:
    """Aggregate SHAP dependence of one side's model: the binned mean contribution of exposure,
    its monotone fit and the SHAP bound, beside the scan's bound and interval (no patient points).

    Parameters
    ----------
    bound : ShapBound
    scan_bound : float, optional
        The scan's bound of the same side (exposure unit).
    scan_ci : (low, high), optional
        Its interval (None inside = unbounded).
    exposure_unit : str
    title : str, optional
    simulated : bool
        Marks the figure "SIMULATED".
    figsize : (float, float)
        Width and height in inches.
    """
    c = bound.curve
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    if scan_ci is not None:
        lo = c["exposure"].min() if scan_ci[0] is None else scan_ci[0]
        hi = c["exposure"].max() if scan_ci[1] is None else scan_ci[1]
        ax.axvspan(lo, hi, color="tab:orange", alpha=0.18, label="scan bound, 95% CI")
    ax.plot(c["exposure"], c["shap"], "o", color="0.45", ms=5,
            label="mean SHAP value per exposure bin" if "n" in c else "smoothed SHAP value")
    ax.step(c["exposure"], c["monotone"], where="mid", color="k", lw=1.8,
            label="monotone fit (" + ("non-increasing" if bound.side == "floor" else "non-decreasing") + ")")
    ax.axhline(bound.level, color="tab:green", lw=0.8, ls=":")
    ax.axvline(bound.value, color="tab:green", lw=2,
               label=f"SHAP {bound.side} {bound.value:.0f}" + (" (open: data limit)" if bound.open else ""))
    if scan_bound is not None and np.isfinite(scan_bound):
        ax.axvline(scan_bound, color="tab:red", ls="--", lw=1.5, label=f"scan {bound.side} {scan_bound:.0f}")
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set_xlabel(f"{bound.feature} ({exposure_unit})")
    ax.set_ylabel(f"SHAP value of {bound.feature} (log-hazard)")
    ax.set_title(("SIMULATED: " if simulated else "") + (title or f"SHAP {bound.side}"), fontsize="medium")
    ax.legend(fontsize="small")
    return fig


def shap_dependence_figure(explanation: shap.Explanation, feature: str = "auc_total", *,
                           color: str | None = None, window: ShapWindow | None = None,
                           scan_window: tuple[float, float] | None = None,
                           exposure_unit: str = "UE*day/mL", figsize=(7.5, 4.5), points: bool = True,
                           n_bins: int = 20) -> Figure:
    """Dependence of the log-hazard contribution on exposure.

    Parameters
    ----------
    explanation : shap.Explanation
    feature : str, default "auc_total"
    color : str, optional
        Feature colouring the dots, typically :func:`strongest_interaction`; ``"auto"`` uses
        SHAP's approximate interaction ranking.
    window : ShapWindow, optional
        Draws the smoothed curve and shades the SHAP window.
    scan_window : (lower, upper), optional
        The scan's window (UE*day/mL), drawn as dashed lines for the cross-check.
    exposure_unit : str
    figsize : (float, float)
        Width and height in inches.
    points : bool, default True
        One dot per patient. False draws only the mean SHAP value in ``n_bins`` equal-count
        exposure bins (an aggregate view for a shared report: no patient points; ``color`` is
        then ignored).
    n_bins : int, default 20
        Bins of the aggregate view.

    Returns
    -------
    matplotlib.figure.Figure
    """
    names = list(explanation.feature_names)
    if feature not in names:
        raise ValueError(f"feature {feature!r} not in the explanation's features {names}")
    i = names.index(feature)
    x = np.asarray(explanation.data)[:, i]
    s = np.asarray(explanation.values)[:, i]
    if color == "auto":
        import shap

        order = shap.utils.approximate_interactions(i, explanation.values, explanation.data)
        color = names[order[0]]
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    if window is not None:
        ax.axvspan(window.lower, window.upper, color="tab:green", alpha=0.12,
                   label=f"SHAP window [{window.lower:.0f}, {window.upper:.0f}] "
                         f"(tol {window.tolerance:.2f})")
    if not points:
        color = None
        order = np.argsort(x, kind="mergesort")
        bins = [b for b in np.array_split(order, min(int(n_bins), len(x))) if len(b)]
        ax.plot([x[b].mean() for b in bins], [s[b].mean() for b in bins], "o", color="0.45", ms=5,
                label=f"mean SHAP value per exposure bin ({len(bins)} equal-count bins)")
    elif color is not None:
        if color not in names:
            raise ValueError(f"color feature {color!r} not in the explanation's features {names}")
        c = np.asarray(explanation.data)[:, names.index(color)]
        sc = ax.scatter(x, s, c=c, cmap="coolwarm", s=14, alpha=0.8, edgecolors="none")
        fig.colorbar(sc, ax=ax, label=color)
    else:
        ax.scatter(x, s, s=14, alpha=0.7, color="tab:blue", edgecolors="none")
    if window is not None:
        ax.plot(window.curve["exposure"], window.curve["shap"], color="k", lw=2,
                label="smoothed")
        ax.axhline(window.minimum + window.tolerance, color="tab:green", lw=0.8, ls=":")
    if scan_window is not None:
        for b in scan_window:
            ax.axvline(b, color="tab:red", ls="--", lw=1.2)
        ax.plot([], [], color="tab:red", ls="--",
                label=f"scan window [{scan_window[0]:.0f}, {scan_window[1]:.0f})")
    ax.axhline(0.0, color="0.5", lw=0.6)
    ax.set_xlabel(f"{feature} ({exposure_unit})")
    ax.set_ylabel(f"SHAP value of {feature} (log-hazard)")
    ax.set_title(f"Dependence of log-hazard on {feature}"
                 + (f", coloured by {color}" if color else ""), fontsize="medium")
    if window is not None or scan_window is not None or not points:
        ax.legend(fontsize="small")
    return fig
