"""``BenefitHarmSearch``: a floor from the under-exposure harm, a ceiling from the over-exposure harm.

Too little ATG exposure raises acute GVHD; too much raises CMV/EBV reactivation. The window is the
range between the lowest exposure that protects against the first and the highest that does not
yet raise the second. Each bound is searched on its own endpoint(s) with a one-sided statistic
(:mod:`ml.window._sides`); the two are searched together under ``floor < ceiling``.

Testing is a closed procedure over the two one-sided hypotheses "no floor" (H_f) and "no ceiling"
(H_c). Their intersection, the global null of no exposure effect on either side, is tested on one
set of permutations of exposure against all outcomes at once, each re-running the whole search. By
default (``global_test="min-p"``) the global test takes the smallest of three permutation p-values:
of the maximal joint statistic (floor + ceiling, best over all windows), of the maximal floor
statistic and of the maximal ceiling statistic, referred to its own permutation distribution
(Westfall & Young 1993). The joint statistic alone (``global_test="joint"``) is diluted when only
one harm exists: in 100 simulated cohorts with a floor and no ceiling it rejected in 62 % against 79 %
for min-p, with the same power for a two-sided window (docs/benchmarks.md, "benefit-harm"). A side is declared evidenced only when the global
null is rejected *and* its own maximum over its whole search is (Marcus, Peritz & Gabriel 1976), so
the family-wise error over both bounds stays at ``alpha``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ml._defaults import BENEFIT_HARM as _D
from ml._defaults import GLOBAL_TEST_NAMES, GRID_K, MINPROP
from ml._parallel import map_blocks
from ml.features import competing_target, parse_endpoint
from ml.window._bootstrap import (
    BOOTSTRAP_BLOCK,
    CI_METHODS,
    bound_intervals,
    infinitesimal_jackknife_sd,
)
from ml.window._core import bounds_of, inside_window
from ml.window._cox import hazard_ratio
from ml.window._grid import QuantileGrid
from ml.window._scores import CoxMartingaleScores, LogRankScores
from ml.window._search import WindowSearch, _progress, split_exposure
from ml.window._sides import SideScan, min_p_value, side_permutation_maxima, side_scan

__all__ = ["BH_CI_METHODS", "BH_ESTIMATES", "FINDINGS", "GLOBAL_TESTS", "SIDES", "BenefitHarmSearch", "SideResult"]

#: Point estimates of the bounds: the best-scoring window, the median of the bootstrap bounds
#: (bagging, Breiman 1996) or their mean (smoothing, Efron 2014).
BH_ESTIMATES = ("argmax", "bagged", "smoothed")
#: Intervals of the bounds: bootstrap percentile or basic, or a normal interval around the smoothed
#: estimate with the infinitesimal-jackknife standard error (``"ij"``; needs ``estimate="smoothed"``).
BH_CI_METHODS = (*CI_METHODS, "ij")

#: Tests of the global null (no exposure effect on either side), over the columns of the permutation
#: maxima (joint, floor, ceiling): the min-p of all three, or the joint statistic alone.
GLOBAL_TESTS = {"min-p": (0, 1, 2), "joint": (0,)}
assert tuple(GLOBAL_TESTS) == GLOBAL_TEST_NAMES
#: What a benefit-harm search can find.
FINDINGS = ("window", "floor-only", "ceiling-only", "overlap", "no-window")
#: The two sides, in the order of the bounds they set (floor -> lower, ceiling -> upper).
SIDES = ("floor", "ceiling")
#: Bootstrap resamples behind each fold's smoothed (or bagged) bounds in the cross-fitting: a point
#: estimate per fold needs fewer than the intervals do.
_FOLD_BOOTSTRAPS = 100


@dataclass(frozen=True)
class SideResult:
    """What one side of the search found.

    Attributes
    ----------
    side : {"floor", "ceiling"}
    endpoints : tuple of str
        Endpoints whose scores are summed on this side (e.g. ``("agvhd2",)``).
    horizon_days : float or None
        Days from transplant the side's endpoints are truncated at.
    bound : float
        The side's reported bound (exposure unit): the window's floor / ceiling when both sides
        are evidenced, else this side's own best cut (argmax or bagged).
    statistic : float
        One-sided standardised statistic at ``bound``'s cut (large = harm on the harmed side).
    p_value : float
        Adjusted p-value of the cut at ``bound``: share of permutations whose maximal statistic of
        this side, over its whole search, reaches it.
    best_p_value : float
        Adjusted p-value of this side's best cut (its evidence, used for the finding).
    evidenced : bool
        True when the closed test rejects "no effect on this side" at ``alpha``.
    ci : (float, float)
        Bootstrap interval of the bound (exposure unit).
    events : int
        Patients with an event of the side's endpoints by its horizon.
    effect : dict
        Cross-fitted hazard ratio of the side's endpoints, harmed vs protected side of the bound
        (floor: below vs above; ceiling: above vs below); empty without cross-fitting.
    covariates : tuple of str
        Columns of ``X`` adjusting this side's null model.
    """

    side: str
    endpoints: tuple
    horizon_days: float | None
    bound: float
    statistic: float
    p_value: float
    best_p_value: float
    evidenced: bool
    ci: tuple
    events: int
    effect: dict
    covariates: tuple = ()


def _as_tuple(v) -> tuple:
    if v is None:
        return ()
    if isinstance(v, str):
        return (v,)
    return tuple(v)


class BenefitHarmSearch(BaseEstimator):
    """The benefit-harm exposure window: floor from the under-exposure endpoint(s), ceiling from the
    over-exposure endpoint(s), with one permutation test of the global null, per-bound adjusted p-values,
    bootstrap intervals and cross-fitted effects.

    Parameters
    ----------
    floor_endpoints : str or sequence of str, default ("agvhd2", "cgvhd")
        Endpoints harmed by *under*-exposure (acute GVHD II-IV and chronic GVHD); their null-model
        scores are standardised and summed. Any endpoint of :func:`ml.features.parse_endpoint`,
        composites ``a|b`` included. Chronic GVHD beside acute raised the power from 90 % to 93 %
        and the right finding in a world with a floor only from 77 % to 86 % (docs/benchmarks.md,
        "benefit-harm"); ``("agvhd2",)`` with ``floor_horizon=180`` is acute GVHD alone.
    ceiling_endpoints : str or sequence of str, default ("cmv", "ebv")
        Endpoints harmed by *over*-exposure: CMV and EBV reactivation, each endpoint's scores
        standardised and summed (a composite ``"cmv|ebv"`` counts only the first of the two).
    floor_horizon, ceiling_horizon : float or None, default 730.0 and 180.0
        Days from transplant each side's endpoints are truncated at (None: none); chronic GVHD needs
        the longer horizon.
    scores : scores strategy, default LogRankScores()
        Null-model scores of every endpoint (:class:`LogRankScores`, :class:`CoxMartingaleScores`
        for a covariate-adjusted side, :class:`SubdistributionScores`). Death without the event
        (and relapse, per endpoint) competes: log-rank and martingale scores are cause-specific.
    floor_covariates, ceiling_covariates : sequence of str, default ()
        Columns of ``X`` (a DataFrame) that adjust that side's null model, e.g. HLA mismatch for
        the floor and CMV serostatus for the ceiling. An adjusted side uses Cox martingale
        residuals (:class:`CoxMartingaleScores`) unless ``scores`` already takes covariates; its
        cross-fitted hazard ratio is adjusted too.
    grid : QuantileGrid, default QuantileGrid(k=40, minprop=0.1)
        Candidate cut points; ``minprop`` is the smallest share of patients below, inside and
        above the window.
    n_permutations : int, default 1000
        Permutations of exposure for the adjusted p-values.
    n_bootstraps : int, default 1000
        Bootstrap resamples of patients (the whole search repeated) for the bound intervals.
    ci_level : float, default 0.95
    ci_method : {"percentile", "basic", "ij"}, default "ij"
        Intervals of the bounds: bootstrap percentile / basic intervals of the reported bound, or
        (``"ij"``, with ``estimate="smoothed"``) a normal interval around the smoothed bound with
        the infinitesimal-jackknife standard error of a bagged estimate (Efron 2014; Wager, Hastie
        & Efron 2014), which needs no extra resamples.
    n_folds : int, default 5
        Folds of the cross-fitted effects (0: skip).
    alpha : float, default 0.05
        Level of the closed test deciding the finding.
    global_test : {"min-p", "joint"}, default "min-p"
        Test of the global null that opens the closed test: the smallest permutation p-value of
        the maximal joint, floor and ceiling statistics, referred to its own permutation
        distribution (``"min-p"``, Westfall & Young 1993), or the maximal joint statistic alone
        (``"joint"``, weaker when only one harm exists).
    min_events : int, default 10
        Fewer events on a side is an error.
    exposure : int or str, default 0
        Column of ``X`` holding exposure.
    estimate : {"argmax", "bagged", "smoothed"}, default "smoothed"
        Reported bounds: those of the best-scoring window, the medians of the bootstrap bounds
        (bagging), or their means (smoothing; the estimate the ``"ij"`` interval belongs to).
    random_state : int, numpy.random.Generator or None
    progress : bool, default False
        Show tqdm bars on stderr (only on a terminal).
    executor : SerialExecutor or DaskExecutor, optional
        Where the permutations and the bootstrap resamples of the full data run
        (:mod:`ml._parallel`; worth it at large n). With an executor they are drawn in fixed
        blocks, each seeded from ``random_state`` through ``SeedSequence.spawn``, so every executor
        gives the same numbers; these differ from ``executor=None`` (one stream, the default) by
        Monte Carlo noise only. Cross-fitting stays serial.

    Attributes
    ----------
    finding_ : {"window", "floor-only", "ceiling-only", "overlap", "no-window"}
        ``window``: both sides evidenced, and a window [floor, ceiling) whose bounds are each
        evidenced exists. ``floor-only`` / ``ceiling-only``: one side has no evidence at ``alpha``
        and its bound stays open. ``overlap``: both harms are evidenced but the best floor lies at
        or above the best ceiling (judged on the bootstrap estimates of each side's best cut), or
        too close below it for an admissible window: no exposure avoids both harms.
        ``no-window``: the global null is not rejected.
    lower_, upper_ : float
        The window [lower_, upper_) in exposure units; -inf / +inf for a bound left open.
    target_ : float
        Midpoint of the window (or, with an open bound, the median exposure on the protected side).
    statistic_ : float
        Joint statistic of the best window (floor + ceiling statistics).
    p_value_ : float
        Permutation p-value of the global hypothesis (no exposure effect on either side), by
        ``global_test``; it is adjusted for the whole search.
    floor_, ceiling_ : SideResult
    null_statistics_ : numpy.ndarray, shape (n_permutations, 3)
        Permutation maxima: joint, floor, ceiling.
    scan_ : pandas.DataFrame
        Every admissible window: ``lower``, ``upper``, ``n_inside``, ``statistic`` (joint).
    side_scan_ : pandas.DataFrame
        Every cut: ``cut``, ``n_below``, ``z_floor``, ``z_ceiling``, ``p_floor``, ``p_ceiling``.
    cut_values_ : numpy.ndarray
    bootstrap_bounds_ : numpy.ndarray, shape (n_bootstraps, 4)
        Per resample: window lower, window upper, best floor, best ceiling (NaN when the resample
        had no admissible window).
    argmax_bounds_, bagged_bounds_ : tuple of float
    lower_ci_, upper_ci_ : tuple of float
    window_frequency_ : pandas.DataFrame
    effect_ : dict
        ``{"floor": {...}, "ceiling": {...}}`` cross-fitted hazard ratios.
    scores_, grid_ : object
        The scores and grid strategies used (defaults filled in).
    n_, n_events_, n_excluded_ : int
        Patients used, patients with an event of either side, patients without exposure.
    """

    def __init__(self, floor_endpoints=_D["floor_endpoints"], ceiling_endpoints=_D["ceiling_endpoints"], *,
                 floor_horizon: float | None = _D["floor_horizon"], ceiling_horizon: float | None = _D["ceiling_horizon"],
                 scores=None, floor_covariates=(), ceiling_covariates=(), grid=None,
                 n_permutations: int = _D["n_permutations"], n_bootstraps: int = _D["n_bootstraps"],
                 ci_level: float = _D["ci_level"], ci_method: str = _D["ci_method"], n_folds: int = _D["n_folds"],
                 alpha: float = _D["alpha"], global_test: str = _D["global_test"], min_events: int = _D["min_events"],
                 exposure: int | str = 0,
                 estimate: str = _D["estimate"], random_state=None, progress: bool = False, executor=None):
        self.floor_endpoints = floor_endpoints
        self.ceiling_endpoints = ceiling_endpoints
        self.floor_horizon = floor_horizon
        self.ceiling_horizon = ceiling_horizon
        self.scores = scores
        self.floor_covariates = floor_covariates
        self.ceiling_covariates = ceiling_covariates
        self.grid = grid
        self.n_permutations = n_permutations
        self.n_bootstraps = n_bootstraps
        self.ci_level = ci_level
        self.ci_method = ci_method
        self.n_folds = n_folds
        self.alpha = alpha
        self.global_test = global_test
        self.min_events = min_events
        self.exposure = exposure
        self.estimate = estimate
        self.random_state = random_state
        self.progress = progress
        self.executor = executor

    # ------------------------------------------------------------------------------- settings
    def endpoints(self, side: str) -> tuple[str, ...]:
        """Canonical endpoint names of ``side`` (``"floor"`` or ``"ceiling"``)."""
        return tuple(parse_endpoint(e).name for e in _as_tuple(getattr(self, f"{side}_endpoints")))

    def horizon(self, side: str) -> float | None:
        """Horizon of ``side`` in days (None: none)."""
        h = getattr(self, f"{side}_horizon")
        return None if h is None else float(h)

    def composite(self, side: str) -> str:
        """The side's endpoints as one composite (first event among them), e.g. ``"cmv|ebv"``."""
        parts = []
        for e in self.endpoints(side):
            parts.extend(p for p in e.split("|") if p not in parts)
        return parse_endpoint("|".join(parts)).name

    def _check_params(self):
        self._check_counts()
        self._check_methods()
        self._check_sides()
        return self._strategies()

    def _check_counts(self) -> None:
        """Counts and levels: permutations, bootstraps, folds, events, ``ci_level`` and ``alpha``."""
        for name in ("n_permutations", "n_bootstraps", "min_events"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
        if not (isinstance(self.n_folds, (int, np.integer)) and (self.n_folds == 0 or self.n_folds >= 2)):
            raise ValueError(f"n_folds must be 0 (skip) or an integer >= 2, got {self.n_folds!r}")
        for name in ("ci_level", "alpha"):
            if not (0 < getattr(self, name) < 1):
                raise ValueError(f"0 < {name} < 1 must hold, got {name}={getattr(self, name)}")

    def _check_methods(self) -> None:
        """The estimate, global test and interval method, and their combinations."""
        if self.estimate not in BH_ESTIMATES:
            raise ValueError(f"estimate must be one of {BH_ESTIMATES}, got {self.estimate!r}")
        if self.estimate != "argmax" and self.n_bootstraps < 1:
            raise ValueError(f"estimate={self.estimate!r} comes from the bootstrap bounds: it needs n_bootstraps >= 1")
        if self.global_test not in GLOBAL_TESTS:
            raise ValueError(f"global_test must be one of {tuple(GLOBAL_TESTS)}, got {self.global_test!r}")
        if self.ci_method not in BH_CI_METHODS:
            raise ValueError(f"ci_method must be one of {BH_CI_METHODS}, got {self.ci_method!r}")
        if self.ci_method == "ij" and self.estimate != "smoothed":
            raise ValueError("ci_method='ij' is the interval of the smoothed (bootstrap-mean) estimate: it needs "
                             f"estimate='smoothed', got estimate={self.estimate!r}")

    def _check_sides(self) -> None:
        """Each side names at least one endpoint, and a positive horizon or None."""
        for side in SIDES:
            if not self.endpoints(side):
                raise ValueError(f"{side}_endpoints must name at least one endpoint")
            h = self.horizon(side)
            if h is not None and not (np.isfinite(h) and h > 0):
                raise ValueError(f"{side}_horizon must be > 0 days or None, got {h!r}")

    def _strategies(self):
        """The scores and grid strategies (the defaults for None), checked for their methods."""
        scores = LogRankScores() if self.scores is None else self.scores
        grid = QuantileGrid(k=GRID_K, minprop=MINPROP) if self.grid is None else self.grid
        if not hasattr(scores, "scores"):
            raise TypeError(f"scores must be a scores strategy with a .scores(y, covariates) method, got {scores!r}")
        if not (hasattr(grid, "positions") and hasattr(grid, "min_group")):
            raise TypeError(f"grid must be a grid strategy with .positions() and .min_group(), got {grid!r}")
        return scores, grid

    # ---------------------------------------------------------------------------------- data
    def _prepare(self, X, y):
        x, cov, names = split_exposure(X, self.exposure)
        if not isinstance(y, pd.DataFrame):
            raise TypeError("y must be the cohort's outcomes table (a pandas DataFrame, one row per row of X), "
                            f"got {type(y).__name__}")
        if len(y) != x.shape[0]:
            raise ValueError(f"X and y must have the same number of rows, got {x.shape[0]} and {len(y)}")
        if np.isinf(x).any():
            raise ValueError("exposure must be finite or missing (NaN), found +/-inf")
        keep = ~np.isnan(x)
        if not keep.all():
            warnings.warn(f"{int((~keep).sum())} patient(s) with missing exposure excluded from the window search",
                          UserWarning, stacklevel=3)
        outcomes = y.reset_index(drop=True).loc[keep].reset_index(drop=True)
        x = x[keep]
        side_cov = {}
        for side in SIDES:
            wanted = _as_tuple(getattr(self, f"{side}_covariates"))
            unknown = [c for c in wanted if c not in names]
            if unknown:
                raise ValueError(f"{side}_covariates {unknown} are not columns of X (covariate columns: {names})")
            if wanted:
                Z = cov[keep][:, [names.index(c) for c in wanted]]
                if not np.isfinite(Z).all():
                    raise ValueError(f"{side}_covariates must not have missing values")
                side_cov[side] = Z
            else:
                side_cov[side] = None
        if x.size and np.all(x == x[0]):
            raise ValueError(f"exposure is constant (every value is {float(x[0])!r}): no cut point exists")
        targets = {side: [competing_target(outcomes, e, self.horizon(side)) for e in self.endpoints(side)]
                   for side in SIDES}
        composite = {side: competing_target(outcomes, self.composite(side), self.horizon(side)) for side in SIDES}
        for side in SIDES:
            events = int((composite[side]["event"] == 1).sum())
            if events < self.min_events:
                raise ValueError(f"too few events on the {side} side: {events} events of {self.composite(side)!r} "
                                 f"among {x.size} patients, at least min_events={self.min_events} are needed")
        either = competing_target(outcomes, _union(self.composite("floor"), self.composite("ceiling")), None)
        return x, targets, composite, side_cov, int((~keep).sum()), int((either["event"] == 1).sum())

    # ----------------------------------------------------------------------------------- fit
    def fit(self, X, y):
        """Search the benefit-harm window.

        Parameters
        ----------
        X : array-like, shape (n,) or (n, p), or DataFrame
            Exposure (column ``exposure``, e.g. total active-ATG AUC in UE*day/mL; NaN = missing,
            excluded with a warning) and, for adjusted sides, covariate columns.
        y : pandas.DataFrame
            The cohort's outcomes table, one row per row of ``X`` (event days from transplant; see
            docs/cohort-format.md). Each side's targets are built from it.

        Returns
        -------
        self
        """
        scores, grid = self._check_params()
        self.scores_, self.grid_ = scores, grid
        x, targets, composite, side_cov, n_excluded, n_events = self._prepare(X, y)
        self.n_features_in_ = 1 if np.ndim(X) == 1 else int(np.shape(X)[1])
        self.n_, self.n_events_, self.n_excluded_ = int(x.size), n_events, n_excluded
        root = np.random.default_rng(self.random_state)
        perm_rng, boot_rng, fold_rng = root.spawn(3)
        data = _SearchData(x, targets, side_cov, scores, grid)

        one = data.search(np.arange(x.size))
        scan, xs = one.scan, one.x_sorted
        self.cut_values_ = bounds_of(xs, scan.positions)
        self._record_scan(one)

        if self.n_permutations:
            with _progress(self.progress, self.n_permutations, "permutations") as tick:
                self.null_statistics_ = side_permutation_maxima(one.scores_sorted, scan, self.n_permutations,
                                                                perm_rng, progress=tick, executor=self.executor)
        else:
            self.null_statistics_ = np.empty((0, 3))
        p_floor = self._adjusted(scan.z_floor, 1)
        p_ceiling = self._adjusted(scan.z_ceiling, 2)
        self.side_scan_["p_floor"], self.side_scan_["p_ceiling"] = p_floor, p_ceiling

        if self.n_bootstraps:
            with _progress(self.progress, self.n_bootstraps, "bootstrap") as tick:
                self.bootstrap_bounds_, self._boot_counts = data.bootstrap(self.n_bootstraps, boot_rng, progress=tick,
                                                                           counts=True, executor=self.executor)
        else:
            self.bootstrap_bounds_, self._boot_counts = np.empty((0, 4)), np.empty((0, x.size))

        pick = self._decide(scan, p_floor, p_ceiling)
        self._set_bounds(scan, xs, pick)
        self._set_sides(scan, xs, p_floor, p_ceiling, composite, side_cov, data, fold_rng)
        return self

    def _record_scan(self, one) -> None:
        scan, xs = one.scan, one.x_sorted
        cuts = bounds_of(xs, scan.positions)
        best = scan.best_pair
        self.statistic_ = float(scan.joint[best])
        self.argmax_bounds_ = (float(cuts[scan.pair_i[best]]), float(cuts[scan.pair_j[best]]))
        self.scan_ = pd.DataFrame({
            "lower": cuts[scan.pair_i], "upper": cuts[scan.pair_j],
            "n_inside": scan.positions[scan.pair_j] - scan.positions[scan.pair_i], "statistic": scan.joint})
        self.side_scan_ = pd.DataFrame({"cut": cuts, "n_below": scan.positions, "z_floor": scan.z_floor,
                                        "z_ceiling": scan.z_ceiling})

    def _adjusted(self, z: np.ndarray, column: int) -> np.ndarray:
        """Adjusted p of each cut: share of permutation maxima (over the side's whole search) >= z."""
        if not self.n_permutations:
            return np.full(z.shape, np.nan)
        null = np.sort(self.null_statistics_[:, column])
        tol = 1e-9 * np.maximum(1.0, np.abs(z))
        exceed = null.size - np.searchsorted(null, z - tol, side="left")
        return (1 + exceed) / (1 + null.size)

    def _decide(self, scan: SideScan, p_floor: np.ndarray, p_ceiling: np.ndarray) -> dict:
        """The finding and the cuts it reports (indices into the scan)."""
        if self.n_permutations:
            columns = list(GLOBAL_TESTS[self.global_test])
            observed = np.array([self.statistic_, scan.z_floor[scan.best_floor], scan.z_ceiling[scan.best_ceiling]])
            self.p_value_ = min_p_value(self.null_statistics_[:, columns], observed[columns])
        else:
            self.p_value_ = float("nan")
        a = self.alpha
        best_f, best_c = scan.best_floor, scan.best_ceiling
        global_ok = not self.n_permutations or self.p_value_ < a
        floor_ok = global_ok and (not self.n_permutations or p_floor[best_f] < a)
        ceiling_ok = global_ok and (not self.n_permutations or p_ceiling[best_c] < a)
        both = (p_floor[scan.pair_i] < a) & (p_ceiling[scan.pair_j] < a) if self.n_permutations else \
            np.ones(scan.joint.size, dtype=bool)
        self._evidenced = {"floor": floor_ok, "ceiling": ceiling_ok}
        if floor_ok and ceiling_ok and not self._crossed(scan) and both.any():
            pair = int(np.flatnonzero(both)[np.argmax(scan.joint[both])])
            self.finding_ = "window"
            return {"pair": pair, "floor": scan.pair_i[pair], "ceiling": scan.pair_j[pair]}
        if floor_ok and ceiling_ok:
            # both harms are evidenced, but the best floor lies at or above the best ceiling (or
            # so close below it that no admissible window has both bounds evidenced): no exposure
            # avoids both harms.
            self.finding_ = "overlap"
            return {"pair": None, "floor": best_f, "ceiling": best_c}
        if floor_ok:
            self.finding_ = "floor-only"
        elif ceiling_ok:
            self.finding_ = "ceiling-only"
        else:
            self.finding_ = "no-window"
        return {"pair": scan.best_pair if self.finding_ == "no-window" else None, "floor": best_f, "ceiling": best_c}

    def _crossed(self, scan: SideScan) -> bool:
        """Does the best floor lie at or above the best ceiling?

        Judged on the bootstrap estimates of each side's best cut (their mean or median, as
        ``estimate``), which are far less variable than the single best cuts; without bootstrap,
        on the best cuts themselves.
        """
        boot = self.bootstrap_bounds_
        if self.estimate != "argmax" and len(boot):
            f, c = (_nanmean if self.estimate == "smoothed" else _nanmedian)(boot[:, 2:])
            if np.isfinite(f) and np.isfinite(c):
                return bool(f >= c)
        return bool(scan.positions[scan.best_floor] >= scan.positions[scan.best_ceiling])

    def _set_bounds(self, scan: SideScan, xs: np.ndarray, pick: dict) -> None:
        cuts = bounds_of(xs, scan.positions)
        boot = self.bootstrap_bounds_
        point = _nanmean if self.estimate == "smoothed" else _nanmedian
        self.bagged_bounds_ = point(boot[:, :2]) if len(boot) else (np.nan, np.nan)
        bagged_sides = point(boot[:, 2:]) if len(boot) else (np.nan, np.nan)
        f = self.finding_
        if f in ("window", "no-window") and pick["pair"] is not None:
            lo, hi = float(cuts[scan.pair_i[pick["pair"]]]), float(cuts[scan.pair_j[pick["pair"]]])
            if self.estimate != "argmax" and self.bagged_bounds_[0] < self.bagged_bounds_[1]:
                lo, hi = self.bagged_bounds_
            cols = (0, 1)
        else:
            lo, hi = float(cuts[pick["floor"]]), float(cuts[pick["ceiling"]])
            if self.estimate != "argmax":
                lo = bagged_sides[0] if np.isfinite(bagged_sides[0]) else lo
                hi = bagged_sides[1] if np.isfinite(bagged_sides[1]) else hi
            cols = (2, 3)
        self._bound_columns = cols
        self._side_bounds = (lo, hi)
        if not len(boot):
            ci = ((np.nan, np.nan), (np.nan, np.nan))
        elif self.ci_method == "ij":
            from scipy import stats

            zq = stats.norm.ppf(0.5 + self.ci_level / 2)
            sds = [infinitesimal_jackknife_sd(boot[:, c], self._boot_counts) for c in cols]
            ci = tuple((float(b - zq * sd), float(b + zq * sd)) for b, sd in zip((lo, hi), sds))
        else:
            ci = bound_intervals((lo, hi), boot[:, list(cols)], self.ci_level, self.ci_method)
        self._side_ci = ci
        self.lower_, self.upper_ = lo, hi
        self.lower_ci_, self.upper_ci_ = ci
        if f == "floor-only":
            self.upper_, self.upper_ci_ = np.inf, (np.nan, np.nan)
        elif f == "ceiling-only":
            self.lower_, self.lower_ci_ = -np.inf, (np.nan, np.nan)
        elif f == "overlap":
            self.lower_, self.upper_ = -np.inf, np.inf
            self.lower_ci_ = self.upper_ci_ = (np.nan, np.nan)
        finite = np.isfinite([self.lower_, self.upper_])
        if finite.all():
            self.target_ = float((self.lower_ + self.upper_) / 2)
        else:
            inside = inside_window(xs, self.lower_, self.upper_)
            self.target_ = float(np.median(xs[inside])) if inside.any() else float(np.median(xs))
        from ml.window._bootstrap import window_frequency

        self.window_frequency_ = window_frequency(boot[:, :2], self.cut_values_) if len(boot) else \
            pd.DataFrame(columns=["lower", "upper", "count", "share"])

    def _set_sides(self, scan, xs, p_floor, p_ceiling, composite, side_cov, data, fold_rng) -> None:
        lo, hi = self._side_bounds
        effects = self._cross_fit(data, composite, side_cov, fold_rng) if self.n_folds else {"floor": {}, "ceiling": {}}
        self.effect_ = effects
        results = {}
        for k, side in enumerate(SIDES):
            bound = (lo, hi)[k]
            z, p = (scan.z_floor, p_floor) if side == "floor" else (scan.z_ceiling, p_ceiling)
            cut_index = int(np.argmin(np.abs(self.cut_values_ - bound)))
            best = scan.best_floor if side == "floor" else scan.best_ceiling
            results[side] = SideResult(
                side=side, endpoints=self.endpoints(side), horizon_days=self.horizon(side), bound=float(bound),
                statistic=float(z[cut_index]), p_value=float(p[cut_index]), best_p_value=float(p[best]),
                evidenced=bool(self._evidenced[side]), ci=tuple(float(v) for v in self._side_ci[k]),
                events=int((composite[side]["event"] == 1).sum()), effect=effects[side],
                covariates=_as_tuple(getattr(self, f"{side}_covariates")))
        self.floor_, self.ceiling_ = results["floor"], results["ceiling"]

    def _cross_fit(self, data, composite, side_cov, rng) -> dict:
        """Cross-fitted hazard ratio per side: bounds chosen on K-1 folds, applied to the held-out fold."""
        from sklearn.model_selection import KFold

        n = data.x.size
        seed = int(rng.integers(0, 2**31 - 1))
        harmed = {side: np.zeros(n, dtype=bool) for side in SIDES}
        cols = self._bound_columns
        point = {"bagged": _nanmedian, "smoothed": _nanmean}.get(self.estimate)
        for train, test in KFold(self.n_folds, shuffle=True, random_state=seed).split(data.x):
            if point is not None:
                boot = data.bootstrap(min(self.n_bootstraps, _FOLD_BOOTSTRAPS), rng, subset=train)
                lo, hi = point(boot[:, list(cols)])
            else:
                lo, hi = np.nan, np.nan
            if not (np.isfinite(lo) and np.isfinite(hi)):
                one = data.search(train)
                cuts = bounds_of(one.x_sorted, one.scan.positions)
                if cols == (0, 1):
                    b = one.scan.best_pair
                    lo, hi = cuts[one.scan.pair_i[b]], cuts[one.scan.pair_j[b]]
                else:
                    lo, hi = cuts[one.scan.best_floor], cuts[one.scan.best_ceiling]
            harmed["floor"][test] = data.x[test] < lo
            harmed["ceiling"][test] = data.x[test] >= hi
        out = {}
        for side in SIDES:
            y = composite[side]
            event = np.asarray(y["event"]) == 1
            group = harmed[side]
            what = "below vs at or above the floor" if side == "floor" else "at or above vs below the ceiling"
            e = {"method": f"cross-fitted Cox hazard ratio of {self.composite(side)!r}, {what}, {self.n_folds} folds"
                           + (" (cause-specific; competing events censored)"),
                 "n_harmed": int(group.sum()), "n_reference": int((~group).sum()),
                 "events_harmed": int(event[group].sum()), "events_reference": int(event[~group].sum())}
            if group.all() or not group.any():
                e.update(hr=float("nan"), ci_low=float("nan"), ci_high=float("nan"), p_value=float("nan"))
            else:
                cov = side_cov[side]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    fit = hazard_ratio(group, np.asarray(y["time"], dtype=float), event, cov, level=self.ci_level)
                e.update(hr=fit["hr"], ci_low=fit["ci_low"], ci_high=fit["ci_high"], p_value=fit["p_value"])
            out[side] = e
        return out

    # ------------------------------------------------------------------------------- helpers
    #: True where the exposure of ``X`` lies inside the fitted window [lower_, upper_) (the same rule
    #: as the composite search's).
    predict = WindowSearch.predict

    def summary(self) -> dict:
        """The fitted results as plain Python values (open bounds as None)."""
        check_is_fitted(self, "lower_")

        def f(v):
            return None if v is None or not np.isfinite(v) else float(v)

        def side(r: SideResult) -> dict:
            return {"endpoints": list(r.endpoints), "horizon_days": r.horizon_days, "bound": f(r.bound),
                    "statistic": r.statistic, "p_value": f(r.p_value), "best_p_value": f(r.best_p_value),
                    "evidenced": r.evidenced, "ci": [f(v) for v in r.ci], "events": r.events,
                    "effect": {k: v for k, v in r.effect.items()}}

        return {"finding": self.finding_, "lower": f(self.lower_), "upper": f(self.upper_), "target": f(self.target_),
                "lower_ci": [f(v) for v in self.lower_ci_], "upper_ci": [f(v) for v in self.upper_ci_],
                "statistic": float(self.statistic_), "p_value": f(self.p_value_), "n": self.n_,
                "events": self.n_events_, "n_excluded": self.n_excluded_,
                "floor": side(self.floor_), "ceiling": side(self.ceiling_)}


def _union(a: str, b: str) -> str:
    parts = []
    for e in (a + "|" + b).split("|"):
        if e not in parts:
            parts.append(e)
    return "|".join(parts)


def _nanmean(values: np.ndarray) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column
        return tuple(float(v) for v in np.nanmean(values, axis=0))


def _nanmedian(values: np.ndarray) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column
        return tuple(float(v) for v in np.nanmedian(values, axis=0))


@dataclass(frozen=True)
class _OneSearch:
    x_sorted: np.ndarray
    scores_sorted: np.ndarray
    scan: SideScan


class _SearchData:
    """Exposure, side targets and strategies: runs the scan on any subset of patients."""

    def __init__(self, x, targets, side_cov, scores, grid):
        self.x, self.targets, self.side_cov, self.scores, self.grid = x, targets, side_cov, scores, grid

    def side_scores(self, idx: np.ndarray) -> np.ndarray:
        """``(len(idx), 2)`` floor and ceiling scores of the patients ``idx`` (null models refitted)."""
        out = np.zeros((idx.size, 2))
        for k, side in enumerate(SIDES):
            cov = self.side_cov[side]
            cov = None if cov is None else cov[idx]
            strategy = self.scores
            if cov is not None and not getattr(strategy, "needs_covariates", False):
                strategy = CoxMartingaleScores()  # an adjusted side: martingale residuals of a Cox null model
            many = len(self.targets[side]) > 1
            for y in self.targets[side]:
                s = strategy.scores(y[idx], cov)
                if many:
                    sd = s.std()
                    s = s / sd if sd > 0 else np.zeros_like(s)
                out[:, k] += s
        return out

    def search(self, idx: np.ndarray) -> _OneSearch:
        s = self.side_scores(idx)
        x = self.x[idx]
        order = np.argsort(x, kind="stable")
        xs = x[order]
        scan = side_scan(s[order], self.grid.positions(xs), self.grid.min_group(x.size))
        return _OneSearch(x_sorted=xs, scores_sorted=s[order], scan=scan)

    def bootstrap(self, n_bootstraps: int, rng: np.random.Generator, *, subset: np.ndarray | None = None,
                  progress=None, counts: bool = False, executor=None):
        """Bounds in ``n_bootstraps`` resamples of ``subset`` (default: everyone).

        With an ``executor`` the resamples run in blocks of
        :data:`ml.window._bootstrap.BOOTSTRAP_BLOCK`, block ``k`` seeded by the ``k``-th
        ``SeedSequence`` child of ``rng`` (:func:`ml._parallel.map_blocks`): the same numbers with
        every executor.

        Returns
        -------
        numpy.ndarray, shape (n_bootstraps, 4)
            Window lower, window upper, best floor, best ceiling (exposure units; NaN when a
            resample had no admissible window).
        numpy.ndarray, shape (n_bootstraps, len(subset))
            Only with ``counts``: how often each patient was drawn in each resample.
        """
        if executor is not None:
            parts = map_blocks(executor, _bootstrap_block, n_bootstraps, BOOTSTRAP_BLOCK, rng, progress=progress,
                               data=self, subset=subset, counts=counts)
            out = np.concatenate([p[0] for p in parts]) if parts else np.empty((0, 4))
            failed = int(np.isnan(out).all(axis=1).sum())
            if failed:
                warnings.warn(f"{failed} of {n_bootstraps} bootstrap resamples had no admissible window and were "
                              "left out", RuntimeWarning, stacklevel=2)
            if not counts:
                return out
            size = self.x.size if subset is None else len(subset)
            return out, (np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, size)))
        base = np.arange(self.x.size) if subset is None else np.asarray(subset)
        out = np.full((n_bootstraps, 4), np.nan)
        drawn = np.zeros((n_bootstraps, base.size)) if counts else None
        failed = 0
        for r in range(n_bootstraps):
            pick = rng.integers(0, base.size, base.size)
            idx = base[pick]
            if counts:
                drawn[r] = np.bincount(pick, minlength=base.size)
            try:
                one = self.search(idx)
            except (ValueError, np.linalg.LinAlgError):
                failed += 1
            else:
                cuts = bounds_of(one.x_sorted, one.scan.positions)
                b = one.scan.best_pair
                out[r] = (cuts[one.scan.pair_i[b]], cuts[one.scan.pair_j[b]], cuts[one.scan.best_floor],
                          cuts[one.scan.best_ceiling])
            if progress is not None:
                progress(1)
        if failed:
            warnings.warn(f"{failed} of {n_bootstraps} bootstrap resamples had no admissible window and were "
                          "left out", RuntimeWarning, stacklevel=2)
        return (out, drawn) if counts else out


def _bootstrap_block(task, data: _SearchData, subset, counts: bool) -> tuple:
    """One block of :meth:`_SearchData.bootstrap`: ``task = (SeedSequence, resamples)``; failures stay NaN rows."""
    seed, size = task
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # counted and reported by the caller
        got = data.bootstrap(size, np.random.default_rng(seed), subset=subset, counts=counts)
    return got if counts else (got,)
