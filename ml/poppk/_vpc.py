"""Visual predictive check: observed percentiles of the levels against the distribution of the
same percentiles over designs simulated from the model (Holford 2005, "The visual predictive
check: superiority to standard diagnostic (Rorschach) plots", PAGE 14, abstr 738; censored
samples as in Bergstrand et al. 2009, AAPS J 11:371: a percentile below the LLOQ is not
shown, and the fraction of censored samples gets its own check)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.pk import PopPKModel

from ._data import PopPKData
from ._error import CombinedError
from ._simulate import simulate_replicates


@dataclass(frozen=True)
class VPCResult:
    """Percentiles by time bin, observed and simulated.

    Attributes
    ----------
    bin_edges : numpy.ndarray
        ``(k + 1,)`` bin edges, days from transplant.
    bin_time : numpy.ndarray
        ``(k,)`` median sampling time in each bin, days.
    percentiles : tuple of float
        The percentiles checked (e.g. 5, 50, 95).
    observed : numpy.ndarray
        ``(k, p)`` observed percentiles (NaN where below the LLOQ).
    simulated : numpy.ndarray
        ``(k, p, 3)`` lower bound, median and upper bound (``ci``) of each percentile across the
        simulated replicates (NaN where below the LLOQ).
    bloq_observed : numpy.ndarray
        ``(k,)`` fraction of samples below the LLOQ.
    bloq_simulated : numpy.ndarray
        ``(k, 3)`` lower bound, median, upper bound of that fraction across replicates.
    n_per_bin : numpy.ndarray
        ``(k,)`` samples per bin.
    times, conc, bloq : numpy.ndarray
        The observed samples (flat): time (days), level (NaN if censored), censoring flag.
    lloq : float
    ci : float
        Coverage of the simulated intervals (e.g. 0.9).
    n_sim : int
    concentration_unit : str
    """

    bin_edges: np.ndarray
    bin_time: np.ndarray
    percentiles: tuple
    observed: np.ndarray
    simulated: np.ndarray
    bloq_observed: np.ndarray
    bloq_simulated: np.ndarray
    n_per_bin: np.ndarray
    times: np.ndarray
    conc: np.ndarray
    bloq: np.ndarray
    lloq: float
    ci: float
    n_sim: int
    concentration_unit: str = "UE/mL"

    def outside_fraction(self) -> float:
        """Fraction of (bin, percentile) pairs whose observed value is outside its simulated
        interval (only pairs where both are above the LLOQ); about ``1 - ci`` for a good model."""
        lo, hi = self.simulated[..., 0], self.simulated[..., 2]
        ok = np.isfinite(self.observed) & np.isfinite(lo) & np.isfinite(hi)
        if not ok.any():
            return float("nan")
        out = (self.observed < lo) | (self.observed > hi)
        return float(out[ok].mean())


def time_bins(times: np.ndarray, max_bins: int = 20, tol: float = 0.05) -> np.ndarray:
    """Bin edges around clusters of sampling times.

    Times closer than ``tol`` days form one cluster; while there are more than ``max_bins``
    clusters, the two adjacent clusters closest in time are merged. Edges lie midway between
    clusters.
    """
    t = np.unique(np.asarray(times, float))
    groups = [[t[0]]]
    for v in t[1:]:
        if v - groups[-1][-1] <= tol:
            groups[-1].append(v)
        else:
            groups.append([v])
    lo = [g[0] for g in groups]
    hi = [g[-1] for g in groups]
    while len(lo) > max_bins:
        gaps = np.array(lo[1:]) - np.array(hi[:-1])
        j = int(np.argmin(gaps))
        hi[j] = hi[j + 1]
        del lo[j + 1], hi[j + 1]
    inner = [(hi[i] + lo[i + 1]) / 2.0 for i in range(len(lo) - 1)]
    return np.array([lo[0] - 1e-6] + inner + [hi[-1] + 1e-6])


def _percentiles_by_bin(values, bloq, which, lloq, q):
    """Percentiles per bin; censored values count as 0 (below everything quantified)."""
    k = which.max() + 1
    out = np.full((k, len(q)), np.nan)
    frac = np.full(k, np.nan)
    v = np.where(bloq, 0.0, values)
    for j in range(k):
        sel = which == j
        if sel.any():
            out[j] = np.percentile(v[sel], q)
            frac[j] = bloq[sel].mean()
    out[out < lloq] = np.nan
    return out, frac


def vpc(model: PopPKModel, data: PopPKData, *, n_sim: int = 200,
        percentiles: tuple = (5.0, 50.0, 95.0), ci: float = 0.90, max_bins: int = 20,
        random_state=None, error: CombinedError = CombinedError()) -> VPCResult:
    """Visual predictive check of ``model`` on the design of ``data``.

    Parameters
    ----------
    model : PopPKModel
        The model to check (e.g. ``PopPKFit.model_``).
    data : PopPKData
        The observed design and levels.
    n_sim : int
        Simulated replicates of the whole design.
    percentiles : tuple of float
        Percentiles of the levels to compare, percent.
    ci : float
        Coverage of the simulated intervals.
    max_bins : int
        Largest number of time bins.
    random_state : int or numpy.random.Generator, optional
    error : CombinedError
        Residual error model used to simulate.
    """
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    if n_sim < 20:
        raise ValueError(f"n_sim must be >= 20 for percentile intervals, got {n_sim}")
    rng = np.random.default_rng(random_state)
    cells = data.observed | data.bloq
    times = data.times[cells]
    edges = time_bins(times, max_bins=max_bins)
    which = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, edges.size - 2)
    q = np.asarray(percentiles, float)
    obs, frac = _percentiles_by_bin(data.conc[cells], data.bloq[cells], which, data.lloq, q)

    sim_conc, sim_bloq, _ = simulate_replicates(model, data, n_sim, rng, error)
    k = edges.size - 1
    sims = np.empty((n_sim, k, q.size))
    fracs = np.empty((n_sim, k))
    for r in range(n_sim):
        sims[r], fracs[r] = _percentiles_by_bin(sim_conc[r][cells], sim_bloq[r][cells], which,
                                                data.lloq, q)
    alpha = (1.0 - ci) / 2.0
    levels = [100 * alpha, 50.0, 100 * (1 - alpha)]
    filled = np.where(np.isnan(sims), 0.0, sims)         # below LLOQ counts as 0
    band = np.moveaxis(np.percentile(filled, levels, axis=0), 0, -1)
    band[band < data.lloq] = np.nan
    bloq_band = np.moveaxis(np.percentile(fracs, levels, axis=0), 0, -1)
    bin_time = np.array([np.median(times[which == j]) if (which == j).any() else np.nan
                         for j in range(k)])
    return VPCResult(bin_edges=edges, bin_time=bin_time, percentiles=tuple(q.tolist()),
                     observed=obs, simulated=band, bloq_observed=frac,
                     bloq_simulated=bloq_band, n_per_bin=np.bincount(which, minlength=k),
                     times=times, conc=data.conc[cells], bloq=data.bloq[cells], lloq=data.lloq,
                     ci=ci, n_sim=n_sim, concentration_unit=data.concentration_unit)
