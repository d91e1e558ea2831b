"""Candidate cut points of the window search: a quantile grid of exposure."""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["QuantileGrid"]


class QuantileGrid(BaseEstimator):
    """Candidate cut points at quantiles of exposure, each group at least ``minprop`` of the cohort.

    A cut point at sorted position ``c`` splits the patients (sorted by exposure) into the first
    ``c`` and the rest; it is only a candidate between two *distinct* exposure values, so patients
    with tied exposure are never separated. Positions run over
    ``max(1, floor(n * minprop)) <= c <= floor(n * maxprop)`` as in R maxstat (``minprop`` 0.1 and
    ``maxprop`` 0.9 by default there and here). The window search adds the two edges of the
    exposure range itself (an open bound).

    Parameters
    ----------
    k : int or None, default 40
        Number of quantile targets; each is moved to the nearest position between distinct values
        and duplicates are dropped, so at most ``k`` cut points come out. None: every admissible
        position (R maxstat's set of cut points).
    minprop : float, default 0.1
        Smallest share of patients below a cut point, and smallest window / outside share.
    maxprop : float or None, default None
        Largest share below a cut point; None means ``1 - minprop``.
    """

    def __init__(self, k: int | None = 40, minprop: float = 0.1, maxprop: float | None = None):
        self.k = k
        self.minprop = minprop
        self.maxprop = maxprop

    def _check(self) -> tuple[float, float]:
        if self.k is not None and (not isinstance(self.k, (int, np.integer)) or self.k < 1):
            raise ValueError(f"k must be a positive integer or None, got {self.k!r}")
        maxprop = 1 - self.minprop if self.maxprop is None else self.maxprop
        if not (0 <= self.minprop < maxprop <= 1):
            raise ValueError(
                f"0 <= minprop < maxprop <= 1 must hold, got minprop={self.minprop}, maxprop={maxprop}"
            )
        return float(self.minprop), float(maxprop)

    def min_group(self, n: int) -> int:
        """Smallest admissible group size (window or outside) for ``n`` patients."""
        minprop, _ = self._check()
        return max(1, math.floor(n * minprop))

    def positions(self, x_sorted: np.ndarray) -> np.ndarray:
        """Cut positions (number of patients below the cut) for exposure sorted ascending.

        Parameters
        ----------
        x_sorted : numpy.ndarray, shape (n,)
            Exposure sorted ascending (UE*day/mL).

        Returns
        -------
        numpy.ndarray of int
            Strictly increasing positions in ``1..n-1``; possibly empty.
        """
        minprop, maxprop = self._check()
        n = x_sorted.shape[0]
        lo, hi = max(1, math.floor(n * minprop)), math.floor(n * maxprop)
        c = np.arange(1, n)
        valid = c[(x_sorted[1:] > x_sorted[:-1]) & (c >= lo) & (c <= hi)]
        if valid.size == 0 or self.k is None or self.k >= valid.size:
            return valid
        targets = lo + (hi - lo) * np.linspace(0.0, 1.0, self.k)
        right = np.clip(np.searchsorted(valid, targets), 0, valid.size - 1)
        left = np.clip(right - 1, 0, valid.size - 1)
        pick = np.where(np.abs(valid[left] - targets) <= np.abs(valid[right] - targets), left, right)
        return np.unique(valid[pick])
