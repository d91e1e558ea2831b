"""The two-cut scan: standardised linear rank statistics of every window, by prefix sums.

Patients are sorted by exposure; a window between sorted cut positions ``a < b`` holds patients
``a .. b-1``. With scores ``s`` (``n`` patients, mean ``sbar``), the statistic of a window of
``m`` patients is

    z = -(sum_inside s - m * sbar) / sqrt(V_m),
    V_m = m (n - m) / (n^2 (n - 1)) * (n * sum s^2 - (sum s)^2),

the permutation mean and variance of the inside sum (Lausen & Schumacher 1992; R maxstat). The
minus sign makes ``z`` large when the window's patients do *better* than expected. ``V_m``
depends only on ``m``, so a permutation of the scores changes only the inside sums, which come
from prefix sums at the cut positions: every window of every permutation costs O(n + K^2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml._parallel import map_blocks

__all__ = ["PERMUTATION_BLOCK", "ScanResult", "permutation_maxima", "scan", "window_pairs"]

#: Permutations per block when an executor is given (each block seeded on its own; see
#: :func:`ml._parallel.map_blocks`). Fixed, so the result does not depend on the executor.
PERMUTATION_BLOCK = 250

#: Largest number of cut positions (edges included) of a two-cut scan (about 2 million windows).
MAX_CUTS = 2002


def window_pairs(edges: np.ndarray, n: int, min_group: int, single_cut: bool) -> tuple[np.ndarray, np.ndarray]:
    """Admissible windows as index pairs into ``edges`` (cut positions with 0 and n at the ends).

    A window needs at least ``min_group`` patients inside and outside; the whole cohort is not a
    window. In single-cut mode one bound sits at an edge (0 or n).
    """
    k = edges.size
    if single_cut:
        inner = np.arange(1, k - 1)
        a = np.concatenate([np.zeros(inner.size, dtype=np.int64), inner])
        b = np.concatenate([inner, np.full(inner.size, k - 1, dtype=np.int64)])
    else:
        if k > MAX_CUTS:
            raise ValueError(
                f"a two-cut scan over {k - 2} cut points would have {(k - 1) * k // 2} windows; "
                f"at most {MAX_CUTS - 2} cut points are allowed (use QuantileGrid(k=...))"
            )
        a, b = np.triu_indices(k, 1)
    m = edges[b] - edges[a]
    keep = (m >= min_group) & (n - m >= min_group) & ~((a == 0) & (b == k - 1))
    return a[keep], b[keep]


@dataclass(frozen=True)
class ScanResult:
    """Statistics of every admissible window of one data set.

    Attributes
    ----------
    edges : numpy.ndarray of int
        Cut positions, including 0 (open lower bound) and n (open upper bound).
    a, b : numpy.ndarray of int
        Window ``w`` holds sorted patients ``edges[a[w]] .. edges[b[w]] - 1``.
    z : numpy.ndarray
        Standardised statistic of each window (large = inside does better).
    best : int
        Index of the maximal window (first one on ties).
    """

    edges: np.ndarray
    a: np.ndarray
    b: np.ndarray
    z: np.ndarray
    best: int

    @property
    def statistic(self) -> float:
        """The maximal standardised statistic."""
        return float(self.z[self.best])


def _standardise(inside: np.ndarray, m: np.ndarray, n: int, total: float, total_sq: float) -> np.ndarray:
    var = m * (n - m) / (n**2 * (n - 1)) * (n * total_sq - total**2)
    return -(inside - m * (total / n)) / np.sqrt(var)


def scan(scores_sorted: np.ndarray, positions: np.ndarray, min_group: int, single_cut: bool = False) -> ScanResult:
    """Statistics of all windows on cut ``positions`` for scores sorted by exposure.

    Parameters
    ----------
    scores_sorted : numpy.ndarray, shape (n,)
        Null-model scores in ascending order of exposure.
    positions : numpy.ndarray of int
        Candidate cut positions in ``1..n-1`` (see :class:`QuantileGrid`).
    min_group : int
        Smallest number of patients inside and outside a window.
    single_cut : bool
        Only windows with one bound at an edge of the exposure range.

    Returns
    -------
    ScanResult
    """
    n = scores_sorted.shape[0]
    edges = np.concatenate([[0], np.asarray(positions, dtype=np.int64), [n]])
    a, b = window_pairs(edges, n, min_group, single_cut)
    if a.size == 0:
        raise ValueError("no admissible window: too few distinct exposure values for the grid's minprop")
    prefix = np.concatenate([[0.0], np.cumsum(scores_sorted)])[edges]
    z = _standardise(prefix[b] - prefix[a], (edges[b] - edges[a]).astype(float), n,
                     float(prefix[-1]), float(np.dot(scores_sorted, scores_sorted)))
    return ScanResult(edges=edges, a=a, b=b, z=z, best=int(np.argmax(z)))


def permutation_maxima(
    scores_sorted: np.ndarray,
    result: ScanResult,
    n_permutations: int,
    rng: np.random.Generator,
    *,
    block_elements: int = 4_000_000,
    progress=None,
    executor=None,
) -> np.ndarray:
    """Maximum window statistic over the whole search for random permutations of the scores.

    Permutations are drawn in blocks (a matrix of permuted score vectors); each block's segment
    sums between cut positions give the inside sums of every window at once.

    Parameters
    ----------
    scores_sorted : numpy.ndarray, shape (n,)
    result : ScanResult
        The observed scan (defines the windows searched).
    n_permutations : int
    rng : numpy.random.Generator
    block_elements : int
        Memory bound: permutations per block times n.
    progress : callable or None
        Called with the number of permutations done in each block.
    executor : SerialExecutor or DaskExecutor, optional
        Run the permutations in blocks of :data:`PERMUTATION_BLOCK` on it, block ``k`` seeded
        by the ``k``-th ``SeedSequence`` child of ``rng`` (:func:`ml._parallel.map_blocks`): the
        same numbers with every executor; None (default) draws them all from ``rng`` itself.

    Returns
    -------
    numpy.ndarray, shape (n_permutations,)
    """
    s = np.asarray(scores_sorted, dtype=float)
    if executor is not None:
        parts = map_blocks(executor, _permutation_block, n_permutations, PERMUTATION_BLOCK, rng, progress=progress,
                           scores_sorted=s, result=result, block_elements=block_elements)
        return np.concatenate(parts) if parts else np.empty(0)
    n = s.size
    edges, a, b = result.edges, result.a, result.b
    # single cut: the window above a cut mirrors the one below it (same size rule, z_above =
    # -z_below), so the maximum over both is max |z_below| and half the windows suffice
    mirrored = bool(np.all((a == 0) | (b == edges.size - 1)))
    if mirrored:
        below = a == 0
        if 2 * int(below.sum()) != a.size:
            mirrored = False
        else:
            a, b = a[below], b[below]
    m = (edges[b] - edges[a]).astype(float)
    total, total_sq = float(s.sum()), float(np.dot(s, s))
    starts = edges[:-1]
    block = max(1, min(n_permutations, block_elements // max(n, 1), 4 * block_elements // max(a.size, 1)))
    out = np.empty(n_permutations)
    done = 0
    buf = np.empty((block, n))
    while done < n_permutations:
        size = min(block, n_permutations - done)
        mat = buf[:size]
        for r in range(size):
            mat[r] = rng.permutation(s)
        seg = np.add.reduceat(mat, starts, axis=1)
        prefix = np.concatenate([np.zeros((size, 1)), np.cumsum(seg, axis=1)], axis=1)
        z = _standardise(prefix[:, b] - prefix[:, a], m, n, total, total_sq)
        out[done:done + size] = np.abs(z).max(axis=1) if mirrored else z.max(axis=1)
        done += size
        if progress is not None:
            progress(size)
    return out


def _permutation_block(task, scores_sorted, result, block_elements) -> np.ndarray:
    """One block of :func:`permutation_maxima`: ``task = (SeedSequence, permutations)``."""
    seed, size = task
    return permutation_maxima(scores_sorted, result, size, np.random.default_rng(seed), block_elements=block_elements)
