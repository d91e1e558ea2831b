"""Diagnostic figures of a population PK fit (matplotlib, returned as Figure objects)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import norm

from ._result import IIV_NAMES


def _identity(ax, x, y) -> None:
    v = np.r_[x, y]
    v = v[np.isfinite(v) & (v > 0)]
    if v.size:
        lo, hi = v.min(), v.max()
        ax.plot([lo, hi], [lo, hi], color="k", lw=1)


def _running_median(ax, x, y, bins: int = 12) -> None:
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2 * bins:
        return
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, edges.size - 2)
    mid = [np.median(x[idx == j]) for j in range(edges.size - 1) if (idx == j).any()]
    med = [np.median(y[idx == j]) for j in range(edges.size - 1) if (idx == j).any()]
    ax.plot(mid, med, color="tab:red", lw=1.5)


def plot_goodness_of_fit(fit) -> Figure:
    """Observed vs population and individual predictions, CWRES vs time and vs PRED.

    Parameters
    ----------
    fit : PopPKFit
        A fitted estimator.
    """
    p = fit.predictions_
    unit = fit.result_.concentration_unit
    q = p[p["bloq"] == 0]
    fig = Figure(figsize=(10, 8), layout="constrained")
    axes = fig.subplots(2, 2)
    for ax, col, label in ((axes[0, 0], "pred", "population prediction (PRED)"),
                           (axes[0, 1], "ipred", "individual prediction (IPRED)")):
        ax.scatter(q[col], q["dv"], s=6, alpha=0.35, color="tab:blue", edgecolors="none")
        _identity(ax, q[col].to_numpy(), q["dv"].to_numpy())
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"{label}, {unit}")
        ax.set_ylabel(f"observed, {unit}")
    ax = axes[1, 0]
    ax.scatter(q["time"], q["cwres"], s=6, alpha=0.35, color="tab:blue", edgecolors="none")
    _running_median(ax, q["time"].to_numpy(), q["cwres"].to_numpy())
    ax.set_xlabel("time, days from transplant")
    ax.set_ylabel("CWRES")
    ax = axes[1, 1]
    ax.scatter(q["pred"], q["cwres"], s=6, alpha=0.35, color="tab:blue", edgecolors="none")
    _running_median(ax, q["pred"].to_numpy(), q["cwres"].to_numpy())
    ax.set_xscale("log")
    ax.set_xlabel(f"population prediction (PRED), {unit}")
    ax.set_ylabel("CWRES")
    for ax in axes[1]:
        for level in (-2, 0, 2):
            ax.axhline(level, color="k", lw=1 if level == 0 else 0.6, ls="-" if level == 0 else "--")
    fig.suptitle(f"Goodness of fit: {fit.result_.n_patients} patients, "
                 f"{fit.result_.n_observations} levels ({fit.result_.n_bloq} below LLOQ, "
                 "not shown)")
    return fig


def plot_vpc(result, *, log_scale: bool = True) -> Figure:
    """Visual predictive check: observed percentiles (lines) against the simulated intervals
    of the same percentiles (bands), and the fraction of censored samples.

    Parameters
    ----------
    result : VPCResult
    log_scale : bool
        Logarithmic concentration axis.
    """
    fig = Figure(figsize=(10, 8), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    t = result.bin_time
    quant = ~result.bloq
    top.scatter(result.times[quant], result.conc[quant], s=4, alpha=0.25, color="grey",
                edgecolors="none", label="observed levels")
    colours = ("tab:blue", "tab:red", "tab:blue")
    for j, pc in enumerate(result.percentiles):
        c = colours[min(j, 2)] if len(result.percentiles) == 3 else "tab:blue"
        band = result.simulated[:, j]
        top.fill_between(t, band[:, 0], band[:, 2], color=c, alpha=0.2, lw=0,
                         label=f"simulated P{pc:g}, {100 * result.ci:g} % interval")
        top.plot(t, result.observed[:, j], color=c, lw=2, label=f"observed P{pc:g}")
    top.axhline(result.lloq, color="k", ls=":", lw=1, label="LLOQ")
    if log_scale:
        top.set_yscale("log")
    top.set_ylabel(f"active ATG, {result.concentration_unit}")
    top.legend(fontsize=7, ncol=2)
    top.set_title(f"Visual predictive check ({result.n_sim} simulated designs)")
    bottom.fill_between(t, result.bloq_simulated[:, 0], result.bloq_simulated[:, 2],
                        color="tab:green", alpha=0.25, lw=0)
    bottom.plot(t, result.bloq_observed, color="tab:green", lw=2, marker="o", ms=3)
    bottom.set_ylabel("fraction < LLOQ")
    bottom.set_xlabel("time, days from transplant")
    bottom.set_ylim(-0.02, 1.02)
    return fig


def plot_eta(fit) -> Figure:
    """Empirical Bayes estimates of the random effects: histograms against N(0, omega^2) with
    their shrinkage, and against the covariates.

    Parameters
    ----------
    fit : PopPKFit
    """
    ind = fit.individual_
    res = fit.result_
    fig = Figure(figsize=(11, 6.5), layout="constrained")
    axes = fig.subplots(2, 3)
    covariate = {"CL": "weight_kg", "V1": "weight_kg", "Vmax": "alc"}
    for j, p in enumerate(IIV_NAMES):
        eta = ind[f"eta_{p}"].to_numpy()
        omega = res.omega[p]
        ax = axes[0, j]
        ax.hist(eta, bins=25, density=True, color="tab:blue", alpha=0.6)
        grid = np.linspace(-3.5 * omega, 3.5 * omega, 200)
        ax.plot(grid, norm.pdf(grid, 0.0, omega), color="k", lw=1)
        ax.set_title(f"eta {p}: omega {omega:.2f}, shrinkage {100 * res.shrinkage[p]:.0f} %")
        ax.set_xlabel(f"eta {p}")
        ax = axes[1, j]
        ax.scatter(ind[covariate[p]], eta, s=8, alpha=0.5, edgecolors="none")
        ax.axhline(0.0, color="k", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("weight, kg" if covariate[p] == "weight_kg" else "ALC, x10^9/L")
        ax.set_ylabel(f"eta {p}")
    return fig


def plot_trace(fit) -> Figure:
    """SAEM parameter traces (convergence check); the dashed line ends the exploration."""
    tr = fit.trace_
    names = tr.COLUMNS
    fig = Figure(figsize=(12, 8), layout="constrained")
    axes = fig.subplots(4, 4).ravel()
    for j, name in enumerate(names):
        ax = axes[j]
        ax.plot(tr.theta[:, j], lw=1)
        ax.axvline(tr.n_explore, color="k", ls="--", lw=0.8)
        ax.set_title(name, fontsize=9)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    fig.suptitle("SAEM iterations")
    return fig
