"""Bootstrap distribution of the window bounds, their intervals, and how often each window wins.

Each replicate resamples patients with replacement and repeats the whole search (null-model
scores, grid, scan), so the spread includes the selection itself (Hollander, Sauerbrei &
Schumacher 2004).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ml._parallel import map_blocks
from ml.window._core import search_once

__all__ = ["BOOTSTRAP_BLOCK", "CI_METHODS", "bootstrap_bounds", "bound_intervals", "infinitesimal_jackknife_sd",
           "window_frequency"]

#: Interval methods for the bounds (see :func:`bound_intervals`).
CI_METHODS = ("percentile", "basic")

#: Resamples per block when an executor is given (each block seeded on its own; see
#: :func:`ml._parallel.map_blocks`). Fixed, so the result does not depend on the executor.
BOOTSTRAP_BLOCK = 25


def bootstrap_bounds(x, y, covariates, scores, grid, single_cut, n_bootstraps: int,
                     rng: np.random.Generator, progress=None, executor=None) -> np.ndarray:
    """Bounds of the best window in ``n_bootstraps`` resamples.

    With an ``executor`` (:mod:`ml._parallel`) the resamples run in blocks of
    :data:`BOOTSTRAP_BLOCK`, block ``k`` seeded by the ``k``-th ``SeedSequence`` child of ``rng``
    (:func:`ml._parallel.map_blocks`): the same numbers with every executor. Without one (the
    default) every resample is drawn from ``rng`` itself.

    Returns
    -------
    numpy.ndarray, shape (n_bootstraps, 2)
        Columns lower, upper (exposure units; -inf / +inf for an open bound; NaN when a resample
        had no admissible window).
    """
    if executor is not None:
        parts = map_blocks(executor, _bootstrap_block, n_bootstraps, BOOTSTRAP_BLOCK, rng, progress=progress,
                           x=x, y=y, covariates=covariates, scores=scores, grid=grid, single_cut=single_cut)
        out = np.concatenate(parts) if parts else np.empty((0, 2))
        failed = int(np.isnan(out).any(axis=1).sum())
        if failed:
            warnings.warn(f"{failed} of {n_bootstraps} bootstrap resamples had no admissible window "
                          "and were left out", RuntimeWarning, stacklevel=2)
        return out
    n = x.shape[0]
    out = np.full((n_bootstraps, 2), np.nan)
    failed = 0
    for r in range(n_bootstraps):
        idx = rng.integers(0, n, n)
        try:
            one = search_once(x[idx], y[idx], None if covariates is None else covariates[idx],
                              scores, grid, single_cut)
            out[r] = one.lower, one.upper
        except (ValueError, np.linalg.LinAlgError):
            failed += 1
        if progress is not None:
            progress(1)
    if failed:
        warnings.warn(f"{failed} of {n_bootstraps} bootstrap resamples had no admissible window "
                      "and were left out", RuntimeWarning, stacklevel=2)
    return out


def _bootstrap_block(task, x, y, covariates, scores, grid, single_cut) -> np.ndarray:
    """One block of :func:`bootstrap_bounds`: ``task = (SeedSequence, resamples)``; failures stay NaN rows."""
    seed, size = task
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # counted and reported by the caller
        return bootstrap_bounds(x, y, covariates, scores, grid, single_cut, size, np.random.default_rng(seed))


def _quantiles(values: np.ndarray, probs) -> np.ndarray:
    v = values[~np.isnan(values)]
    if v.size == 0:
        return np.full(len(probs), np.nan)
    return np.quantile(v, probs, method="inverted_cdf")


def bound_intervals(estimate: tuple[float, float], boot: np.ndarray, level: float = 0.95,
                    method: str = "percentile") -> tuple[tuple[float, float], tuple[float, float]]:
    """Confidence intervals of the lower and upper bound from their bootstrap distribution.

    Parameters
    ----------
    estimate : (float, float)
        The bounds found on the full data.
    boot : numpy.ndarray, shape (B, 2)
        Bootstrap bounds (:func:`bootstrap_bounds`).
    level : float
        Confidence level.
    method : {"percentile", "basic"}
        ``"percentile"``: the ``(1-level)/2`` and ``(1+level)/2`` quantiles. ``"basic"``: those
        quantiles reflected around the estimate (``2 * estimate - q``).

    Returns
    -------
    (lower_ci, upper_ci) : tuple of (float, float)
        Each ``(low, high)``; -inf / +inf means the interval reaches an open bound.
    """
    if method not in CI_METHODS:
        raise ValueError(f"ci_method must be one of {CI_METHODS}, got {method!r}")
    probs = [(1 - level) / 2, (1 + level) / 2]
    out = []
    for j in range(2):
        q = _quantiles(boot[:, j], probs)
        if method == "basic":
            with np.errstate(invalid="ignore"):
                q = np.sort(2 * estimate[j] - q[::-1])
            q = np.where(np.isnan(q), estimate[j], q)
        out.append((float(q[0]), float(q[1])))
    return out[0], out[1]


def window_frequency(boot: np.ndarray, cut_values: np.ndarray) -> pd.DataFrame:
    """How often each window of the original grid is chosen in the bootstrap.

    Bootstrap bounds are snapped to the nearest original candidate cut value (open bounds stay
    open), then counted.

    Returns
    -------
    pandas.DataFrame
        Columns ``lower``, ``upper``, ``count``, ``share``, most frequent first.
    """
    ok = ~np.isnan(boot).any(axis=1)
    b = boot[ok]
    cuts = np.sort(np.asarray(cut_values, dtype=float))

    def snap(v):
        if cuts.size == 0:
            return v
        finite = np.isfinite(v)
        idx = np.clip(np.searchsorted(cuts, v[finite]), 1, cuts.size - 1) if cuts.size > 1 else np.zeros(finite.sum(), int)
        if cuts.size > 1:
            left, right = cuts[idx - 1], cuts[idx]
            snapped = np.where(np.abs(v[finite] - left) <= np.abs(right - v[finite]), left, right)
        else:
            snapped = np.full(finite.sum(), cuts[0])
        out = v.copy()
        out[finite] = snapped
        return out

    frame = pd.DataFrame({"lower": snap(b[:, 0]), "upper": snap(b[:, 1])})
    counts = frame.value_counts(sort=True).rename("count").reset_index()
    counts["share"] = counts["count"] / max(len(frame), 1)
    return counts.sort_values(["count", "lower", "upper"], ascending=[False, True, True], ignore_index=True)


def infinitesimal_jackknife_sd(values: np.ndarray, counts: np.ndarray, *, corrected: bool = True) -> float:
    """Standard error of a bagged (bootstrap-averaged) estimate by the infinitesimal jackknife.

    For the smoothed estimate ``mean_b t_b`` over bootstrap resamples ``b``, Efron (2014,
    "Estimation and accuracy after model selection", JASA 109:991) gives
    ``var = sum_i cov_b(N_bi, t_b)^2`` with ``N_bi`` the number of times patient ``i`` is in
    resample ``b``; the Monte Carlo bias of that sum, ``n / B^2 * sum_b (t_b - mean t)^2``, is
    subtracted as in Wager, Hastie & Efron (2014, JMLR 15:1625). When the corrected variance is
    not positive (too few resamples) the uncorrected one is returned, which errs wide.

    Parameters
    ----------
    values : numpy.ndarray, shape (B,)
        The statistic in each resample (NaN: resample left out).
    counts : numpy.ndarray, shape (B, n)
        How often each patient is drawn in each resample.
    corrected : bool
        Subtract the Monte Carlo bias (False: the raw sum, which is wider by the resampling noise
        of B resamples).

    Returns
    -------
    float
        NaN with fewer than two usable resamples.
    """
    ok = ~np.isnan(values)
    t, N = values[ok], counts[ok]
    B, n = N.shape
    if B < 2:
        return float("nan")
    centred = t - t.mean()
    cov = (N - 1.0).T @ centred / B
    raw = float(np.sum(cov**2))
    fixed = raw - n * float(np.sum(centred**2)) / B**2
    return float(np.sqrt(fixed if corrected and fixed > 0 else raw))
