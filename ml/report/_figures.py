"""Figures of the window search for the reviewer's report (matplotlib, headless).

Each function takes numbers (arrays, DataFrames, bounds in the exposure unit, UE*day/mL) and
returns a :class:`matplotlib.figure.Figure` that is not attached to pyplot. Open bounds are
``None`` (or +/-inf in the search's tables) and are drawn as "open".
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = [
    "bootstrap_figure",
    "exposure_figure",
    "importance_figure",
    "incidence_curves_figure",
    "side_incidence_figure",
    "side_profiles_figure",
    "statistic_map_figure",
    "transport_figure",
]

GROUP_COLOURS = {"below": "tab:blue", "inside": "tab:green", "above": "tab:red"}


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float, np.floating)) and math.isfinite(v)


def _fmt(v) -> str:
    return f"{v:.0f}" if _finite(v) else "open"


def _shade(ax, lower, upper, lo_edge, hi_edge, label=None):
    a = lower if _finite(lower) else lo_edge
    b = upper if _finite(upper) else hi_edge
    ax.axvspan(a, b, color="tab:green", alpha=0.15, zorder=0, label=label)


def exposure_figure(x, *, lower=None, upper=None, lower_ci=None, upper_ci=None, unit="UE*day/mL",
                    simulated=False, no_window=False, truth=None, figsize=(7.5, 3.6)) -> Figure:
    """Histogram of exposure with the window shaded and the bounds' intervals as bands.

    Parameters
    ----------
    x : array-like
        Exposure per patient (``unit``); NaN are left out (not estimable).
    lower, upper : float or None
        The window; None = open on that side.
    lower_ci, upper_ci : (low, high) or None
        Confidence intervals of the bounds (None inside = unbounded).
    unit : str
    simulated : bool
        Adds "SIMULATED" to the title.
    no_window : bool
        The search found no window: the best-scoring window is drawn hatched, for the record.
    truth : (lower, upper), optional
        A simulated cohort's true bounds (None or non-finite = no such bound), drawn dashed and
        labelled beside the estimate.
    """
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    ax.hist(x, bins=min(40, max(10, x.size // 8)), color="0.55", edgecolor="white")
    lo_edge, hi_edge = (float(x.min()), float(x.max())) if x.size else (0.0, 1.0)
    if lower is not None or upper is not None:
        if no_window:
            ax.axvspan(lower if _finite(lower) else lo_edge, upper if _finite(upper) else hi_edge,
                       fill=False, hatch="//", edgecolor="0.4", label="best-scoring window (not significant)")
        else:
            _shade(ax, lower, upper, lo_edge, hi_edge, label=f"window [{_fmt(lower)}, {_fmt(upper)})")
            for ci, name in ((lower_ci, "lower"), (upper_ci, "upper")):
                if ci is None:
                    continue
                a = ci[0] if _finite(ci[0]) else lo_edge
                b = ci[1] if _finite(ci[1]) else hi_edge
                ax.axvspan(a, b, ymin=0.0, ymax=0.06, color="tab:orange", alpha=0.9,
                           label="95% CI of the bounds" if name == "lower" else None)
            for b in (lower, upper):
                if _finite(b):
                    ax.axvline(b, color="tab:green", lw=1.5)
    if truth is not None:
        marks = [b for b in truth if _finite(b)]
        for k, b in enumerate(marks):
            ax.axvline(b, color="k", ls="--", lw=1.3, label="simulator's truth" if k == 0 else None)
    ax.set_xlabel(f"total active-ATG AUC ({unit})")
    ax.set_ylabel("patients")
    ax.set_title(("SIMULATED cohort: " if simulated else "") + f"exposure distribution (n={x.size})",
                 fontsize="medium")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    return fig


def statistic_map_figure(scan: pd.DataFrame, cut_values, *, window=None, unit="UE*day/mL",
                         figsize=(6.8, 5.4)) -> Figure:
    """Heatmap of the standardised statistic of every candidate window [lower, upper).

    Parameters
    ----------
    scan : DataFrame
        ``WindowSearch.scan_``: ``lower``, ``upper`` (-inf / +inf for open), ``statistic``.
    cut_values : array-like
        Candidate cut points (``WindowSearch.cut_values_``).
    window : (lower, upper), optional
        The reported window, marked with a star (open bounds as None).
    """
    cuts = np.sort(np.asarray(cut_values, dtype=float))
    lowers = np.concatenate([[-np.inf], cuts])
    uppers = np.concatenate([cuts, [np.inf]])
    grid = np.full((uppers.size, lowers.size), np.nan)
    li = {v: i for i, v in enumerate(lowers)}
    ui = {v: i for i, v in enumerate(uppers)}
    for lo, up, z in scan[["lower", "upper", "statistic"]].itertuples(index=False):
        i, j = ui.get(float(up)), li.get(float(lo))
        if i is not None and j is not None:
            grid[i, j] = z
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    vmax = np.nanmax(np.abs(grid)) if np.isfinite(grid).any() else 1.0
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="RdBu", vmin=-vmax, vmax=vmax,
                   interpolation="nearest")
    fig.colorbar(im, ax=ax, label="standardised statistic (high = inside does better)")

    def ticks(values):
        step = max(1, len(values) // 8)
        pos = list(range(0, len(values), step))
        return pos, [_fmt(values[p]) for p in pos]

    ax.set_xticks(*ticks(lowers))
    ax.set_yticks(*ticks(uppers))
    ax.set_xlabel(f"lower bound ({unit}); 'open' = no lower bound")
    ax.set_ylabel(f"upper bound ({unit}); 'open' = no upper bound")
    best = scan.loc[scan["statistic"].idxmax()] if len(scan) else None
    if best is not None:
        ax.plot(li[float(best["lower"])], ui[float(best["upper"])], marker="*", ms=16, color="gold",
                markeredgecolor="k", ls="none", label=f"best-scoring [{_fmt(best['lower'])}, {_fmt(best['upper'])})")
    if window is not None:
        lo = -np.inf if window[0] is None else window[0]
        up = np.inf if window[1] is None else window[1]
        j = int(np.argmin(np.abs(np.where(np.isfinite(lowers), lowers, -1e12) - (lo if np.isfinite(lo) else -1e12))))
        i = int(np.argmin(np.abs(np.where(np.isfinite(uppers), uppers, 1e12) - (up if np.isfinite(up) else 1e12))))
        ax.plot(j, i, marker="o", ms=11, mfc="none", mec="k", mew=2, ls="none",
                label=f"reported [{_fmt(window[0])}, {_fmt(window[1])})")
    ax.set_title("Statistic map over (lower, upper)", fontsize="medium")
    ax.legend(fontsize="small", loc="upper left")
    return fig


def bootstrap_figure(boot, *, lower=None, upper=None, lower_ci=None, upper_ci=None,
                     frequency: pd.DataFrame | None = None, cut_values=None, unit="UE*day/mL",
                     figsize=(12, 3.8)) -> Figure:
    """Bootstrap stability: histograms of both bounds and the map of chosen windows.

    Parameters
    ----------
    boot : array, shape (B, 2)
        Bootstrap bounds (-inf / +inf = open, NaN = no window in that resample).
    lower, upper : float or None
        Reported bounds.
    lower_ci, upper_ci : (low, high) or None
    frequency : DataFrame, optional
        ``WindowSearch.window_frequency_`` (``lower``, ``upper``, ``share``).
    cut_values : array-like, optional
        Candidate cut points (axis of the frequency map).
    """
    boot = np.asarray(boot, dtype=float).reshape(-1, 2)
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, 3)
    for j, (ax, name, est, ci) in enumerate(zip(axes[:2], ("lower", "upper"), (lower, upper),
                                                (lower_ci, upper_ci))):
        v = boot[:, j]
        ok = ~np.isnan(v)
        open_share = float(np.mean(~np.isfinite(v[ok]))) if ok.any() else 0.0
        fin = v[np.isfinite(v)]
        if fin.size:
            ax.hist(fin, bins=30, color="0.6", edgecolor="white")
        if _finite(est):
            ax.axvline(est, color="tab:green", lw=2, label=f"estimate {est:.0f}")
        if ci is not None:
            for c in ci:
                if _finite(c):
                    ax.axvline(c, color="tab:orange", ls="--", lw=1.2)
            ax.plot([], [], color="tab:orange", ls="--", label=f"95% CI [{_fmt(ci[0])}, {_fmt(ci[1])}]")
        ax.set_title(f"{name} bound, {boot.shape[0]} resamples" + (f" ({100 * open_share:.0f}% open)" if open_share else ""),
                     fontsize="medium")
        ax.set_xlabel(unit)
        ax.set_ylabel("resamples")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="x-small")
    ax = axes[2]
    if frequency is not None and len(frequency) and cut_values is not None:
        cuts = np.sort(np.asarray(cut_values, dtype=float))
        lowers = np.concatenate([[-np.inf], cuts])
        uppers = np.concatenate([cuts, [np.inf]])
        m = np.zeros((uppers.size, lowers.size))
        for lo, up, share in frequency[["lower", "upper", "share"]].itertuples(index=False):
            j = int(np.argmin(np.abs(np.where(np.isfinite(lowers), lowers, -1e12) - (lo if np.isfinite(lo) else -1e12))))
            i = int(np.argmin(np.abs(np.where(np.isfinite(uppers), uppers, 1e12) - (up if np.isfinite(up) else 1e12))))
            m[i, j] += share
        im = ax.imshow(np.where(m > 0, m, np.nan), origin="lower", aspect="auto", cmap="viridis",
                       interpolation="nearest")
        fig.colorbar(im, ax=ax, label="share of resamples")
        step = max(1, len(lowers) // 6)
        ax.set_xticks(range(0, len(lowers), step), [_fmt(lowers[p]) for p in range(0, len(lowers), step)])
        ax.set_yticks(range(0, len(uppers), step), [_fmt(uppers[p]) for p in range(0, len(uppers), step)])
        top = frequency.iloc[0]
        ax.set_title(f"window frequency (top: [{_fmt(top['lower'])}, {_fmt(top['upper'])}) "
                     f"{100 * top['share']:.0f}%)", fontsize="medium")
        ax.set_xlabel("lower bound")
        ax.set_ylabel("upper bound")
    else:
        ax.text(0.5, 0.5, "no bootstrap", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    return fig


def _label(endpoint: str) -> str:
    from ml.window._describe import endpoint_label

    return endpoint_label(endpoint)


def _group_names(lower, upper) -> dict[str, str]:
    return {"below": f"below {_fmt(lower)}", "inside": f"[{_fmt(lower)}, {_fmt(upper)})",
            "above": f"{_fmt(upper)} and above"}


def _draw_incidence(ax, c: pd.DataFrame, names: dict, bands: bool = True) -> None:
    for group, g in c.groupby("group", sort=False):
        colour = GROUP_COLOURS.get(group, "k")
        ax.step(g["time"], g["incidence"], where="post", color=colour, lw=1.8,
                label=f"{names.get(group, group)} (n={int(g['n'].iloc[0])})")
        if bands and {"ci_low", "ci_high"} <= set(g.columns):
            ax.fill_between(g["time"], g["ci_low"], g["ci_high"], step="post", color=colour, alpha=0.15, lw=0)


def incidence_curves_figure(curves: pd.DataFrame, *, horizon: float, lower=None, upper=None,
                            unit="UE*day/mL", ncols: int = 3) -> Figure:
    """Cumulative incidence (Aalen-Johansen, competing risks) by window group, one panel per outcome.

    Parameters
    ----------
    curves : DataFrame
        ``outcome, group, time, incidence`` step-function points, optionally ``ci_low`` /
        ``ci_high`` pointwise bands (from :func:`ml.experiments.incidence_curves`).
    horizon : float
        Day marked on every panel (where the table's incidences are read).
    lower, upper : float or None
        The window (for the legend).
    """
    outcomes = list(dict.fromkeys(curves["outcome"]))
    n = max(1, len(outcomes))
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.6 * ncols, 3.7 * nrows + 0.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True)).ravel()
    names = _group_names(lower, upper)
    for ax, outcome in zip(axes, outcomes):
        c = curves[curves["outcome"] == outcome]
        _draw_incidence(ax, c, names)
        ax.axvline(horizon, color="0.4", ls=":", lw=1)
        ax.set_xlim(0, max(2 * horizon, 365.0))
        ax.set_title(_label(outcome), fontsize="large")
        top = float(c[["incidence"] + (["ci_high"] if "ci_high" in c else [])].max().max()) if len(c) else 1.0
        ax.set_ylim(0, max(0.05, min(1.0, top * 1.1)))
        ax.set_ylabel("cumulative incidence")
        ax.legend(fontsize="small", loc="upper left", title=unit, title_fontsize="small")
    for k, ax in enumerate(axes[:len(outcomes)]):
        if k + ncols >= len(outcomes):  # the lowest panel of its column carries the axis
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel("days from transplant")
    for ax in axes[len(outcomes):]:
        ax.set_axis_off()
    fig.suptitle(f"Cumulative incidence by exposure group; shaded: 95% pointwise band; dotted line: day {horizon:g}",
                 fontsize="medium")
    return fig


def side_incidence_figure(curves: pd.DataFrame, at_risk: pd.DataFrame, *, title: str, horizon: float,
                          lower=None, upper=None, unit="UE*day/mL", simulated: bool = False,
                          xmax: float | None = None, figsize=(7.2, 5.6)) -> Figure:
    """One endpoint's cumulative incidence by exposure group, with bands and numbers at risk.

    Parameters
    ----------
    curves : DataFrame
        ``group, n, time, incidence, ci_low, ci_high`` of one outcome.
    at_risk : DataFrame
        ``group, time, at_risk`` (:func:`ml.experiments.at_risk_table`); its times are the ticks.
    title : str
        Clinical name of the endpoint (e.g. "acute GVHD grade II-IV").
    horizon : float
        Day marked (where the side's incidences are read).
    lower, upper : float or None
        The groups' cuts (None = open).
    simulated : bool
        Marks the title "SIMULATED".
    xmax : float, optional
        Last day shown (default: twice the horizon, at least 365).
    """
    xmax = float(xmax if xmax is not None else max(2 * horizon, 365.0))
    fig = Figure(figsize=figsize, layout="constrained")
    gs = fig.add_gridspec(2, 1, height_ratios=[4.2, 1.0])
    ax = fig.add_subplot(gs[0])
    names = _group_names(lower, upper)
    _draw_incidence(ax, curves, names)
    ax.axvline(horizon, color="0.4", ls=":", lw=1.2)
    ax.set_xlim(-0.04 * xmax, xmax * 1.02)  # room for the first column of numbers at risk
    top = float(curves[["incidence", "ci_high"]].max().max()) if len(curves) else 1.0
    ax.set_ylim(0, max(0.05, min(1.0, top * 1.1)))
    ax.set_ylabel("cumulative incidence")
    ax.set_title(("SIMULATED: " if simulated else "") + title, fontsize="large")
    ax.legend(fontsize="medium", loc="upper left", title=f"total active-ATG AUC ({unit})", title_fontsize="small")
    ax.grid(alpha=0.25)
    times = sorted(at_risk["time"].unique()) if len(at_risk) else []
    ax.set_xticks(times)
    ax.set_xlabel("days from transplant")
    tab = fig.add_subplot(gs[1], sharex=ax)
    groups = [g for g in ("below", "inside", "above") if g in set(at_risk["group"])]
    for k, g in enumerate(groups):
        row = at_risk[at_risk["group"] == g]
        y = len(groups) - 1 - k
        for t, n in zip(row["time"], row["at_risk"]):
            tab.text(t, y, str(int(n)), ha="center", va="center", fontsize="small", color=GROUP_COLOURS[g])
    tab.set_ylim(-0.6, len(groups) - 0.4)
    tab.set_yticks(range(len(groups)), [names[g] for g in groups[::-1]], fontsize="small")
    tab.tick_params(axis="x", labelbottom=False, length=0)
    for side in ("top", "right", "bottom"):
        tab.spines[side].set_visible(False)
    tab.set_title("numbers at risk", fontsize="small", loc="left")
    return fig


def side_profiles_figure(side_scan: pd.DataFrame, *, critical: dict, floor=None, ceiling=None,
                         evidenced: dict | None = None, labels: dict | None = None, alpha: float = 0.05,
                         unit="UE*day/mL", simulated: bool = False, figsize=(8.0, 5.6)) -> Figure:
    """The two sides of a benefit-harm search along exposure, each against its critical value.

    Parameters
    ----------
    side_scan : DataFrame
        ``BenefitHarmSearch.side_scan_``: ``cut``, ``z_floor``, ``z_ceiling``.
    critical : dict
        ``{"floor": c_f, "ceiling": c_c}``: each side's permutation critical value at ``alpha``
        (the ``1 - alpha`` quantile of its maximum over the search; None without permutations).
    floor, ceiling : float or None
        The reported (or best) bounds, marked.
    evidenced : dict, optional
        ``{"floor": bool, "ceiling": bool}`` (for the legend).
    labels : dict, optional
        Clinical names of each side's endpoint(s).
    """
    evidenced = evidenced or {}
    labels = labels or {}
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    x = side_scan["cut"].to_numpy(dtype=float)
    for ax, side, colour, bound in ((axes[0], "floor", "tab:blue", floor), (axes[1], "ceiling", "tab:red", ceiling)):
        z = side_scan[f"z_{side}"].to_numpy(dtype=float)
        ax.plot(x, z, "-o", ms=3, color=colour, label=f"{side} statistic")
        c = critical.get(side)
        if c is not None and np.isfinite(c):
            ax.axhline(c, color="k", ls="--", lw=1, label=f"critical value at alpha = {alpha:g} ({c:.2f})")
        if _finite(bound):
            ax.axvline(bound, color=colour, lw=2, alpha=0.6,
                       label=f"{side} {bound:.0f}" + ("" if evidenced.get(side, True) else " (not evidenced)"))
        ax.axhline(0, color="0.6", lw=0.6)
        who = labels.get(side, side)
        where = "below the cut" if side == "floor" else "at or above the cut"
        ax.set_ylabel("standardised statistic")
        ax.set_title(f"{side.capitalize()}: {who} more frequent {where}", fontsize="medium")
        ax.legend(fontsize="small", loc="best")
        ax.grid(alpha=0.25)
    axes[1].set_xlabel(f"candidate cut, total active-ATG AUC ({unit})")
    if simulated:
        fig.suptitle("SIMULATED cohort", color="#b00020", fontsize="medium", fontweight="bold")
    return fig


def transport_figure(rows: list[dict], *, unit="UE*day/mL", figsize=(7.5, 2.8)) -> Figure:
    """Windows of several cohorts side by side, each bound with its confidence interval.

    Parameters
    ----------
    rows : list of dict
        ``label``, ``lower``, ``upper`` (None = open), ``lower_ci``, ``upper_ci``
        ((low, high) or None), optional ``note``.
    """
    fig = Figure(figsize=(figsize[0], 1.1 * len(rows) + 1.4), layout="constrained")
    ax = fig.add_subplot()
    finite = [v for r in rows for v in (r.get("lower"), r.get("upper"), *(r.get("lower_ci") or ()),
                                         *(r.get("upper_ci") or ())) if _finite(v)]
    lo_edge = min(finite) * 0.9 if finite else 0.0
    hi_edge = max(finite) * 1.1 if finite else 1.0
    for k, r in enumerate(rows[::-1]):
        lo = r["lower"] if _finite(r.get("lower")) else lo_edge
        up = r["upper"] if _finite(r.get("upper")) else hi_edge
        ax.plot([lo, up], [k, k], color="tab:green", lw=9, alpha=0.5, solid_capstyle="butt",
                label="window" if k == 0 else None)
        for ci, dy, colour, name in ((r.get("lower_ci"), -0.22, "tab:blue", "lower"),
                                     (r.get("upper_ci"), 0.22, "tab:red", "upper")):
            if ci is not None:
                a = ci[0] if _finite(ci[0]) else lo_edge
                b = ci[1] if _finite(ci[1]) else hi_edge
                ax.plot([a, b], [k + dy, k + dy], color=colour, lw=1.5, marker="|", ms=9,
                        label=f"95% CI of the {name} bound" if k == 0 else None)
        ax.text(hi_edge, k, f"  [{_fmt(r.get('lower'))}, {_fmt(r.get('upper'))})" + (f"  {r['note']}" if r.get("note") else ""),
                va="center", fontsize="small")
    ax.set_yticks(range(len(rows)), [r["label"] for r in rows[::-1]])
    ax.set_xlim(lo_edge, hi_edge * 1.45)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(f"total active-ATG AUC ({unit}); an interval reaching the edge is unbounded there")
    ax.set_title("Transportability: windows side by side", fontsize="medium")
    ax.legend(fontsize="x-small", loc="lower right")
    return fig


def importance_figure(importance: pd.DataFrame, *, max_display: int = 12, figsize=(7.0, 4.2)) -> Figure:
    """Horizontal bars of mean |SHAP| per feature (``feature``, ``mean_abs_shap``), largest on top."""
    top = importance.head(max_display).iloc[::-1]
    fig = Figure(figsize=(figsize[0], 0.3 * len(top) + 1.2), layout="constrained")
    ax = fig.add_subplot()
    colours = ["tab:red" if str(f).startswith("auc_") else "tab:blue" for f in top["feature"]]
    ax.barh(top["feature"].astype(str), top["mean_abs_shap"], color=colours)
    ax.set_xlabel("mean |SHAP value| (log-hazard)")
    ax.set_title("Global importance (exposure in red)", fontsize="medium")
    return fig
