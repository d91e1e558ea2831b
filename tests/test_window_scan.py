"""The vectorised scan and permutation null against direct (loop) computations.

References: the standardised linear rank statistic of Lausen & Schumacher (1992), as in R
maxstat, ``z = -(S_in - m*mean) / sqrt(m (n-m) / (n (n-1)) * sum (s - mean)^2)``, computed here
patient by patient for every window, with windows defined by exposure values ``L <= x < U``.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from ml.window import QuantileGrid, logrank_scores, permutation_maxima, scan
from ml.window._core import bounds_of, search_once
from ml.window._scan import MAX_CUTS, window_pairs


def _data(n, seed, ties=False):
    rng = np.random.default_rng(seed)
    x = rng.lognormal(np.log(120), 0.3, n)
    if ties:
        x = np.round(x / 5) * 5
    t = np.round(rng.exponential(100, n), 0 if ties else 6)
    e = rng.random(n) < 0.7
    return x, t, e


def _brute_force(x, s, cut_values, min_group, single_cut):
    """Every window [L, U) over cut values and open edges, statistic from its definition."""
    n = x.size
    edges = [-np.inf, *cut_values, np.inf]
    out = {}
    for lo, hi in itertools.combinations(edges, 2):
        if np.isneginf(lo) and np.isposinf(hi):
            continue
        if single_cut and not (np.isneginf(lo) or np.isposinf(hi)):
            continue
        inside = (x >= lo) & (x < hi)
        m = int(inside.sum())
        if m < min_group or n - m < min_group:
            continue
        var = m * (n - m) / (n * (n - 1)) * np.sum((s - s.mean()) ** 2)
        out[(lo, hi)] = -(s[inside].sum() - m * s.mean()) / np.sqrt(var)
    return out


@pytest.mark.parametrize("n, seed, ties, single_cut, k", [
    (60, 1, False, False, 12),
    (75, 2, True, False, 15),
    (90, 3, False, True, None),
    (50, 4, True, True, 8),
])
def test_scan_equals_brute_force(n, seed, ties, single_cut, k):
    x, t, e = _data(n, seed, ties)
    grid = QuantileGrid(k=k, minprop=0.1)
    s = logrank_scores(t, e)
    order = np.argsort(x, kind="stable")
    res = scan(s[order], grid.positions(x[order]), grid.min_group(n), single_cut=single_cut)
    values = bounds_of(x[order], res.edges)
    got = {(values[a], values[b]): z for a, b, z in zip(res.a, res.b, res.z)}
    ref = _brute_force(x, s, values[1:-1], grid.min_group(n), single_cut)
    assert set(got) == set(ref)
    for key, z in ref.items():
        assert got[key] == pytest.approx(z, abs=1e-10)
    best = max(ref, key=ref.get)
    assert res.statistic == pytest.approx(ref[best], abs=1e-12)


def test_cut_points_lie_between_distinct_exposures():
    x, _, _ = _data(200, 5, ties=True)
    xs = np.sort(x)
    for k in (None, 10, 40):
        pos = QuantileGrid(k=k).positions(xs)
        assert np.all(xs[pos - 1] < xs[pos])
        assert pos.min() >= np.floor(200 * 0.1) and pos.max() <= np.floor(200 * 0.9)
        if k is not None:
            assert pos.size <= k
    everything = QuantileGrid(k=None).positions(xs)
    admissible = [c for c in range(20, 181) if xs[c - 1] < xs[c]]
    np.testing.assert_array_equal(everything, admissible)


def test_permutation_maxima_equal_a_loop_over_permuted_scans():
    x, t, e = _data(80, 6)
    grid = QuantileGrid(k=10)
    s = logrank_scores(t, e)
    order = np.argsort(x)
    ss = s[order]
    res = scan(ss, grid.positions(x[order]), grid.min_group(80))
    fast = permutation_maxima(ss, res, 50, np.random.default_rng(3), block_elements=80 * 7)
    rng = np.random.default_rng(3)
    slow = [scan(rng.permutation(ss), res.edges[1:-1], grid.min_group(80)).statistic for _ in range(50)]
    np.testing.assert_allclose(fast, slow, atol=1e-12)


def test_search_once_bounds_are_midpoints_and_open_edges():
    x, t, e = _data(100, 7)
    y = np.empty(100, dtype=[("event", bool), ("time", "f8")])
    y["event"], y["time"] = e, t
    from ml.window import LogRankScores

    one = search_once(x, y, None, LogRankScores(), QuantileGrid(k=None), single_cut=True)
    xs = np.sort(x)
    bound = one.upper if np.isfinite(one.upper) else one.lower
    assert np.isinf(one.lower) or np.isinf(one.upper)
    i = np.searchsorted(xs, bound)
    assert bound == pytest.approx((xs[i - 1] + xs[i]) / 2)


@pytest.mark.parametrize("grid, message", [
    (QuantileGrid(k=0), "k must be a positive integer or None, got 0"),
    (QuantileGrid(minprop=0.6), "0 <= minprop < maxprop <= 1 must hold, got minprop=0.6, maxprop=0.4"),
    (QuantileGrid(minprop=0.1, maxprop=1.5), "0 <= minprop < maxprop <= 1 must hold, got minprop=0.1, maxprop=1.5"),
])
def test_bad_grids(grid, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        grid.positions(np.arange(10.0))
    assert str(err.value) == message


def test_two_cut_scan_refuses_quadratic_blowup():
    edges = np.arange(MAX_CUTS + 1)
    with pytest.raises(ValueError, match="at most 2000 cut points"):
        window_pairs(edges, MAX_CUTS + 1, 1, single_cut=False)
    a, b = window_pairs(edges, MAX_CUTS + 1, 1, single_cut=True)
    assert np.all((a == 0) | (b == edges.size - 1))


def test_single_cut_permutations_use_the_mirror_symmetry_correctly():
    x, t, e = _data(90, 8, ties=True)
    grid = QuantileGrid(k=None)
    s = logrank_scores(t, e)
    order = np.argsort(x, kind="stable")
    ss = s[order]
    res = scan(ss, grid.positions(x[order]), grid.min_group(90), single_cut=True)
    fast = permutation_maxima(ss, res, 40, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    slow = [scan(rng.permutation(ss), res.edges[1:-1], grid.min_group(90), single_cut=True).statistic
            for _ in range(40)]
    np.testing.assert_allclose(fast, slow, atol=1e-12)
