"""One search on one data set: scores -> sort by exposure -> grid -> scan -> bounds.

Shared by the estimator, the bootstrap and the cross-fitting, so all three search alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.window._scan import ScanResult, scan

__all__ = ["SearchOnce", "search_once", "bounds_of", "inside_window"]


@dataclass(frozen=True)
class SearchOnce:
    """Everything one search computes.

    Attributes
    ----------
    order : numpy.ndarray of int
        Patients sorted by exposure (stable).
    x_sorted, scores_sorted : numpy.ndarray
    result : ScanResult
    lower, upper : float
        Bounds of the best window [lower, upper) in exposure units; -inf / +inf when open.
    """

    order: np.ndarray
    x_sorted: np.ndarray
    scores_sorted: np.ndarray
    result: ScanResult
    lower: float
    upper: float


def bounds_of(x_sorted: np.ndarray, positions) -> np.ndarray:
    """Exposure value of cut positions: midway between the neighbours; -inf at 0, +inf at n."""
    pos = np.asarray(positions, dtype=np.int64)
    n = x_sorted.shape[0]
    inner = np.clip(pos, 1, n - 1)
    values = (x_sorted[inner - 1] + x_sorted[inner]) / 2.0
    values = np.where(pos <= 0, -np.inf, values)
    return np.where(pos >= n, np.inf, values)


def inside_window(x, lower: float, upper: float) -> np.ndarray:
    """True where ``lower <= x < upper`` (open bounds are +/-inf)."""
    x = np.asarray(x, dtype=float)
    return (x >= lower) & (x < upper)


def search_once(x, y, covariates, scores, grid, single_cut: bool) -> SearchOnce:
    """Run one window search (no permutations, no bootstrap).

    Parameters
    ----------
    x : numpy.ndarray, shape (n,)
        Exposure (no missing values), e.g. total active-ATG AUC in UE*day/mL.
    y : numpy.ndarray
        Survival or competing target, rows aligned with ``x``.
    covariates : numpy.ndarray (n, p) or None
        Passed to the scores strategy.
    scores : object with ``scores(y, covariates)``
    grid : QuantileGrid
    single_cut : bool
    """
    s = scores.scores(y, covariates)
    order = np.argsort(x, kind="stable")
    xs, ss = x[order], s[order]
    result = scan(ss, grid.positions(xs), grid.min_group(x.shape[0]), single_cut=single_cut)
    lo, hi = bounds_of(xs, [result.edges[result.a[result.best]], result.edges[result.b[result.best]]])
    return SearchOnce(order=order, x_sorted=xs, scores_sorted=ss, result=result, lower=float(lo), upper=float(hi))
