"""The benefit-harm scan: a one-sided floor statistic, a one-sided ceiling statistic, their joint maximum.

Patients are sorted by exposure; a cut at sorted position ``c`` puts the first ``c`` patients
below it. With side scores ``s`` (``n`` patients, large = did worse than a null model that ignores
exposure), the statistic of a cut is the standardised linear rank statistic of the patients on the
side the clinical hypothesis says is harmed (Lausen & Schumacher 1992; R maxstat):

    floor   (under-exposure harm, e.g. acute GVHD):  z_f(c) = +(S(c) - c * sbar) / sqrt(V_c)
    ceiling (over-exposure harm, e.g. CMV/EBV):      z_c(d) = -(S(d) - d * sbar) / sqrt(V_d)

where ``S(c)`` is the sum of the scores of the ``c`` patients below the cut and
``V_c = c (n - c) / (n^2 (n - 1)) * (n * sum s^2 - (sum s)^2)`` its permutation variance. Both are
one-sided: a floor is evidenced only by *excess* under-exposure harm below it, a ceiling only by
excess over-exposure harm above it. The window ``[floor, ceiling)`` maximises the combined evidence
``z_f(c) + z_c(d)`` over the admissible pairs ``c < d`` (at least ``min_group`` patients below,
inside and above).

A permutation of exposure permutes both sides' scores together (the same patient order for every
endpoint, so their correlation is kept); each permutation re-runs the whole scan from prefix sums,
O(n + K^2) per permutation for K candidate cuts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml._parallel import map_blocks
from ml.window._scan import PERMUTATION_BLOCK

__all__ = ["SideScan", "admissible_pairs", "min_p_value", "side_permutation_maxima", "side_scan"]

#: Sign of each side's statistic: floor = excess harm *below* the cut, ceiling = excess harm *above*.
DIRECTION = {"floor": 1.0, "ceiling": -1.0}


def admissible_pairs(positions: np.ndarray, n: int, min_group: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(i, j)`` into ``positions`` of admissible windows ``[cut_i, cut_j)``.

    A window needs ``i < j`` and at least ``min_group`` patients below the floor, inside and
    above the ceiling.
    """
    k = positions.size
    i, j = np.triu_indices(k, 1)
    p = positions.astype(np.int64)
    keep = (p[i] >= min_group) & (p[j] - p[i] >= min_group) & (n - p[j] >= min_group)
    return i[keep], j[keep]


def _standardised(prefix_at: np.ndarray, counts: np.ndarray, n: int, total: np.ndarray,
                  total_sq: np.ndarray) -> np.ndarray:
    """``(prefix - counts * mean) / sd`` for every side (last axis = side)."""
    var = (counts * (n - counts) / (n**2 * (n - 1)))[..., None] * (n * total_sq - total**2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (prefix_at - counts[..., None] * (total / n)) / np.sqrt(var)


@dataclass(frozen=True)
class SideScan:
    """Every candidate floor, ceiling and window of one data set.

    Attributes
    ----------
    positions : numpy.ndarray of int, shape (K,)
        Candidate cut positions (patients below the cut).
    z_floor, z_ceiling : numpy.ndarray, shape (K,)
        One-sided standardised statistic of each cut as a floor / as a ceiling (large = evidence).
    pair_i, pair_j : numpy.ndarray of int, shape (P,)
        Admissible windows ``[positions[pair_i], positions[pair_j])``.
    joint : numpy.ndarray, shape (P,)
        Combined evidence ``z_floor[pair_i] + z_ceiling[pair_j]``.
    """

    positions: np.ndarray
    z_floor: np.ndarray
    z_ceiling: np.ndarray
    pair_i: np.ndarray
    pair_j: np.ndarray
    joint: np.ndarray

    @property
    def best_pair(self) -> int:
        """Index of the window with the largest combined evidence (first on ties)."""
        return int(np.argmax(self.joint))

    @property
    def best_floor(self) -> int:
        """Index of the cut with the largest floor statistic, ignoring the ceiling."""
        return int(np.argmax(self.z_floor))

    @property
    def best_ceiling(self) -> int:
        """Index of the cut with the largest ceiling statistic, ignoring the floor."""
        return int(np.argmax(self.z_ceiling))


def side_scan(scores_sorted: np.ndarray, positions: np.ndarray, min_group: int) -> SideScan:
    """Floor, ceiling and window statistics for side scores sorted by exposure.

    Parameters
    ----------
    scores_sorted : numpy.ndarray, shape (n, 2)
        Column 0: floor scores, column 1: ceiling scores, rows in ascending order of exposure.
    positions : numpy.ndarray of int
        Candidate cut positions in ``1..n-1`` (see :class:`QuantileGrid`).
    min_group : int
        Smallest number of patients below, inside and above a window.

    Returns
    -------
    SideScan

    Raises
    ------
    ValueError
        When no admissible window exists (too few distinct exposure values for the grid).
    """
    s = np.asarray(scores_sorted, dtype=float)
    n = s.shape[0]
    positions = np.asarray(positions, dtype=np.int64)
    i, j = admissible_pairs(positions, n, min_group)
    if i.size == 0:
        raise ValueError("no admissible window: too few distinct exposure values for the grid's minprop "
                         "(a floor and a ceiling need patients below, inside and above)")
    prefix = np.cumsum(s, axis=0)[positions - 1]
    z = _standardised(prefix, positions.astype(float), n, s.sum(axis=0), np.einsum("ij,ij->j", s, s))
    zf, zc = DIRECTION["floor"] * z[:, 0], DIRECTION["ceiling"] * z[:, 1]
    return SideScan(positions=positions, z_floor=zf, z_ceiling=zc, pair_i=i, pair_j=j, joint=zf[i] + zc[j])


def side_permutation_maxima(scores_sorted: np.ndarray, scan: SideScan, n_permutations: int,
                            rng: np.random.Generator, *, block_elements: int = 2_000_000,
                            progress=None, executor=None) -> np.ndarray:
    """Maxima over the whole search for random permutations of exposure.

    One permutation of the patients is applied to both sides' scores, so the dependence between
    the floor and the ceiling endpoints is kept.

    Parameters
    ----------
    scores_sorted : numpy.ndarray, shape (n, 2)
    scan : SideScan
        The observed scan (defines the cuts and windows searched).
    n_permutations : int
    rng : numpy.random.Generator
    block_elements : int
        Memory bound: permutations per block times n.
    progress : callable or None
        Called with the number of permutations done in each block.
    executor : SerialExecutor or DaskExecutor, optional
        Run the permutations in blocks of :data:`ml.window._scan.PERMUTATION_BLOCK` on it, block
        ``k`` seeded by the ``k``-th ``SeedSequence`` child of ``rng``
        (:func:`ml._parallel.map_blocks`): the same numbers with every executor; None (default)
        draws them all from ``rng`` itself.

    Returns
    -------
    numpy.ndarray, shape (n_permutations, 3)
        Columns: maximal joint statistic (window), maximal floor statistic, maximal ceiling
        statistic.
    """
    s = np.asarray(scores_sorted, dtype=float)
    if executor is not None:
        parts = map_blocks(executor, _side_permutation_block, n_permutations, PERMUTATION_BLOCK, rng,
                           progress=progress, scores_sorted=s, scan=scan, block_elements=block_elements)
        return np.concatenate(parts) if parts else np.empty((0, 3))
    n = s.shape[0]
    pos = scan.positions
    counts = pos.astype(float)
    total, total_sq = s.sum(axis=0), np.einsum("ij,ij->j", s, s)
    out = np.empty((n_permutations, 3))
    block = max(1, min(n_permutations, block_elements // max(n, 1)))
    done = 0
    while done < n_permutations:
        size = min(block, n_permutations - done)
        order = rng.permuted(np.tile(np.arange(n), (size, 1)), axis=1)
        prefix = np.cumsum(s[order], axis=1)[:, pos - 1, :]  # (size, K, 2)
        z = _standardised(prefix, counts, n, total, total_sq)
        zf, zc = DIRECTION["floor"] * z[..., 0], DIRECTION["ceiling"] * z[..., 1]
        out[done:done + size, 0] = (zf[:, scan.pair_i] + zc[:, scan.pair_j]).max(axis=1)
        out[done:done + size, 1] = zf.max(axis=1)
        out[done:done + size, 2] = zc.max(axis=1)
        done += size
        if progress is not None:
            progress(size)
    return out


def _side_permutation_block(task, scores_sorted, scan, block_elements) -> np.ndarray:
    """One block of :func:`side_permutation_maxima`: ``task = (SeedSequence, permutations)``."""
    seed, size = task
    return side_permutation_maxima(scores_sorted, scan, size, np.random.default_rng(seed), block_elements=block_elements)


def min_p_value(null: np.ndarray, observed: np.ndarray) -> float:
    """Permutation p-value of the smallest of several permutation p-values (min-p).

    Each column of ``null`` holds one statistic (e.g. the maximal joint, floor and ceiling
    statistics of :func:`side_permutation_maxima`) for the *same* permutations. The p-value of
    each statistic is the share of its permutation values at or above the observed one; the
    smallest of them is referred to its own permutation distribution, built from the same
    permutations by ranking every permutation's values within their column (Westfall & Young
    1993, the single-step min-p). The test combines statistics on different scales without
    weighting them, and it keeps the permutation test's level: under exchangeability its
    p-value is uniform up to the Monte Carlo granularity ``1 / (B + 1)``.

    Parameters
    ----------
    null : numpy.ndarray, shape (B, m)
        Permutation values of the ``m`` statistics (large = evidence).
    observed : numpy.ndarray, shape (m,)
        Their observed values.

    Returns
    -------
    float
        ``(1 + #{b : min_k p_bk <= min_k p_k}) / (1 + B)``, every p computed against all ``B + 1``
        data sets (the observed one and the permutations).
    """
    null = np.asarray(null, dtype=float)
    observed = np.asarray(observed, dtype=float)
    b = null.shape[0]
    tol = 1e-9 * np.maximum(1.0, np.abs(observed))
    p_observed = (1 + np.sum(null >= observed - tol, axis=0)) / (1 + b)
    ordered = np.sort(null, axis=0)
    p_null = np.empty_like(null)
    for k in range(null.shape[1]):
        col_tol = 1e-9 * np.maximum(1.0, np.abs(null[:, k]))
        # each permutation against all B + 1 data sets (itself and the observed included)
        at_or_above = b - np.searchsorted(ordered[:, k], null[:, k] - col_tol, side="left")
        p_null[:, k] = (at_or_above + (observed[k] >= null[:, k] - col_tol)) / (1 + b)
    smallest = p_observed.min()
    return float((1 + np.sum(p_null.min(axis=1) <= smallest * (1 + 1e-12))) / (1 + b))
