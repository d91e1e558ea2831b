"""Per-outcome risk-versus-exposure curves from Cox spline models.

The curve of an endpoint is its log hazard ratio along total AUC against a reference AUC, with
a pointwise confidence band. Drawn together, the curves show which outcome sets which bound of
the window: acute GVHD rising below it (too little T-cell depletion), viral reactivation
rising above it (too much).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from ml.models._cox_spline import CoxSplineModel

CURVE_COLUMNS = ["endpoint", "exposure", "log_hr", "se", "lower", "upper", "hr", "reference"]


def _final_cox(model) -> CoxSplineModel:
    final = model[-1] if isinstance(model, Pipeline) else model
    if not isinstance(final, CoxSplineModel):
        raise TypeError("risk curves need a fitted CoxSplineModel (or a Pipeline ending in one), "
                        f"got {type(final).__name__}")
    return final


def risk_curve(model, grid=None, *, reference: float | None = None, endpoint: str = "",
               level: float = 0.95) -> pd.DataFrame:
    """Log hazard ratio versus exposure with a pointwise confidence band.

    Parameters
    ----------
    model : CoxSplineModel or Pipeline ending in one
        Fitted on one endpoint.
    grid : array-like of float, optional
        Exposure values (UE*day/mL). Default: 60 points spanning the 2.5th-97.5th
        percentiles of the training exposure.
    reference : float, optional
        Reference exposure (UE*day/mL) where log HR = 0; default the training median.
    endpoint : str
        Label stored in the ``endpoint`` column.
    level : float, default 0.95
        Confidence level of the pointwise band (Wald, delta method).

    Returns
    -------
    pandas.DataFrame
        Columns ``endpoint, exposure, log_hr, se, lower, upper, hr, reference``.
    """
    cox = _final_cox(model)
    if grid is None:
        grid = np.linspace(*cox.exposure_range_, 60)
    grid = np.asarray(grid, dtype=float)
    ref = cox.exposure_reference_ if reference is None else float(reference)
    log_hr, se = cox.log_hazard_ratio(grid, ref)
    z = stats.norm.ppf(0.5 + level / 2)
    return pd.DataFrame({
        "endpoint": endpoint, "exposure": grid, "log_hr": log_hr, "se": se,
        "lower": log_hr - z * se, "upper": log_hr + z * se, "hr": np.exp(log_hr),
        "reference": ref,
    })[CURVE_COLUMNS]


def risk_curves(X, targets: Mapping[str, np.ndarray], grid=None, *, model=None,
                reference: float | None = None, level: float = 0.95) -> pd.DataFrame:
    """Fit one Cox spline model per endpoint and stack their risk curves.

    Parameters
    ----------
    X : DataFrame
        Features (exposure plus encoded covariates, or raw frame when ``model`` is a
        Pipeline with a preprocessor).
    targets : mapping of endpoint name to survival target
        E.g. ``{"agvhd2": survival_target(outcomes, "agvhd2", 180), "cmv": ...}``.
    grid : array-like of float, optional
        Common exposure grid (UE*day/mL); default from the first endpoint's model.
    model : estimator, optional
        Template, cloned per endpoint; default ``CoxSplineModel()``.
    reference : float, optional
        Common reference exposure; default the training median of exposure.
    level : float, default 0.95

    Returns
    -------
    pandas.DataFrame
        Long format, columns as :func:`risk_curve`.
    """
    template = CoxSplineModel() if model is None else model
    frames = []
    for name, y in targets.items():
        fitted = clone(template).fit(X, y)
        if grid is None:
            grid = np.linspace(*_final_cox(fitted).exposure_range_, 60)
        frames.append(risk_curve(fitted, grid, reference=reference, endpoint=name, level=level))
    return pd.concat(frames, ignore_index=True)


def bound_setters(curves: pd.DataFrame, window: tuple[float, float]) -> pd.DataFrame:
    """Which endpoint sets which bound of a window.

    An endpoint *sets the lower bound* when its hazard is significantly higher than at the
    reference (inside the window) somewhere below ``lower``: the band's lower edge exceeds 0.
    Likewise above ``upper``.

    Parameters
    ----------
    curves : DataFrame
        From :func:`risk_curve` / :func:`risk_curves`.
    window : (lower, upper)
        UE*day/mL.

    Returns
    -------
    pandas.DataFrame
        One row per endpoint: ``max_log_hr_below``, ``max_log_hr_above`` (of the curve
        outside the window), ``rises_below``, ``rises_above`` (bool), ``sets`` in
        ``{"lower", "upper", "both", "neither"}``.

    Raises
    ------
    ValueError
        If a curve's reference exposure lies outside the window (contrasts would not be
        against the inside).
    """
    lower, upper = map(float, window)
    if not lower < upper:
        raise ValueError(f"`lower < upper` must hold, got lower={lower}, upper={upper}")
    rows = []
    for name, c in curves.groupby("endpoint", sort=False):
        ref = float(c["reference"].iloc[0])
        if not lower <= ref <= upper:
            raise ValueError(f"the reference exposure of {name!r} ({ref:g}) must lie inside the "
                             f"window [{lower:g}, {upper:g}]; recompute with reference inside")
        below, above = c[c["exposure"] < lower], c[c["exposure"] >= upper]
        rb = bool((below["lower"] > 0).any())
        ra = bool((above["lower"] > 0).any())
        rows.append({
            "endpoint": name,
            "max_log_hr_below": float(below["log_hr"].max()) if len(below) else np.nan,
            "max_log_hr_above": float(above["log_hr"].max()) if len(above) else np.nan,
            "rises_below": rb, "rises_above": ra,
            "sets": {(True, True): "both", (True, False): "lower",
                     (False, True): "upper", (False, False): "neither"}[(rb, ra)],
        })
    return pd.DataFrame(rows)


def risk_curves_figure(curves: pd.DataFrame, *, window: tuple[float, float] | None = None,
                       exposure_unit: str = "UE*day/mL", title: str | None = None,
                       figsize=None, ncols: int = 3, labels: dict | None = None) -> Figure:
    """Risk-versus-exposure curves, one panel per endpoint (shared axes), the window shaded.

    Parameters
    ----------
    curves : DataFrame
        From :func:`risk_curves` (or stacked :func:`risk_curve` outputs).
    window : (lower, upper), optional
        Shaded (UE*day/mL); with it, panel titles say which bound each endpoint sets
        (see :func:`bound_setters`), provided the reference lies inside the window.
    exposure_unit : str
    title : str, optional
    figsize : tuple, optional
        Default: 4.3 x 3.2 inches per panel.
    ncols : int, default 3
    labels : dict, optional
        Display names of the endpoints (e.g. clinical names); default the endpoint codes.

    Returns
    -------
    matplotlib.figure.Figure
        Not attached to pyplot (headless; save with ``fig.savefig``). Each panel's legend names
        its endpoint (with the bound it sets, e.g. ``"agvhd2 - rises below"``).
    """
    import math

    labels = labels or {}
    names = list(dict.fromkeys(curves["endpoint"]))
    n = max(1, len(names))
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=figsize or (4.3 * ncols, 3.2 * nrows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=True)).ravel()
    roles = {}
    if window is not None:
        try:
            roles = bound_setters(curves, window).set_index("endpoint")["sets"].to_dict()
        except ValueError:
            roles = {}
    note = {"lower": " - rises below", "upper": " - rises above", "both": " - rises both sides",
            "neither": ""}
    colours = [f"C{k}" for k in range(10)]
    for k, (ax, name) in enumerate(zip(axes, names)):
        c = curves[curves["endpoint"] == name]
        if window is not None:
            ax.axvspan(*window, color="0.88", zorder=0)
        colour = colours[k % len(colours)]
        ax.plot(c["exposure"], c["log_hr"], lw=2, color=colour,
                label=f"{name}{note.get(roles.get(name, 'neither'), '')}")
        ax.fill_between(c["exposure"], c["lower"], c["upper"], color=colour, alpha=0.2)
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_title(labels.get(name, name), fontsize="medium")
        ax.legend(fontsize="small", loc="upper center")
        ax.grid(alpha=0.25)
    for ax in axes[len(names):]:
        ax.set_axis_off()
    for k, ax in enumerate(axes[:len(names)]):
        if k + ncols >= len(names):  # the lowest panel of its column carries the axis
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel(f"total active-ATG AUC ({exposure_unit})")
    for ax in axes[::ncols]:
        ax.set_ylabel("log hazard ratio vs reference")
    refs = curves["reference"].unique()
    ref = f"; reference {refs[0]:.0f}" if len(refs) == 1 else ""
    shade = f"; shaded: window [{window[0]:.0f}, {window[1]:.0f})" if window is not None else ""
    fig.suptitle(title or f"Risk versus exposure (Cox, restricted cubic spline; 95% CI{ref}{shade})",
                 fontsize="medium")
    return fig
