"""``WindowSearch``: the optimal exposure window with honest p-value, intervals and effect."""

from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ml.features import check_competing_target, check_survival_target
from ml.window._bootstrap import CI_METHODS, bootstrap_bounds, bound_intervals, window_frequency
from ml.window._core import bounds_of, inside_window, search_once
from ml.window._crossfit import cross_fitted_effect
from ml.window._grid import QuantileGrid
from ml.window._scan import permutation_maxima
from ml.window._scores import LogRankScores

__all__ = ["ESTIMATES", "WindowSearch", "split_exposure"]

#: Point estimates of the bounds (see ``WindowSearch(estimate=...)``).
ESTIMATES = ("argmax", "bagged")


def split_exposure(X, exposure) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Exposure vector and covariate matrix from ``X`` (1-D array, 2-D array or DataFrame).

    Parameters
    ----------
    X : array-like, shape (n,) or (n, p)
    exposure : int or str
        Column of ``X`` holding exposure (position, or name for a DataFrame).

    Returns
    -------
    x : numpy.ndarray, shape (n,)
    covariates : numpy.ndarray, shape (n, p - 1), or None when ``X`` has one column
    names : list of str
        Covariate names (column names of a DataFrame, else ``x<i>``).
    """
    if isinstance(X, pd.DataFrame):
        if isinstance(exposure, str):
            if exposure not in X.columns:
                raise ValueError(f"exposure column {exposure!r} not in X (columns: {list(X.columns)})")
            col = X.columns.get_loc(exposure)
        else:
            col = int(exposure)
        x = X.iloc[:, col].to_numpy(dtype=float)
        rest = X.drop(columns=X.columns[col])
        names = [str(c) for c in rest.columns]
        cov = rest.to_numpy(dtype=float) if rest.shape[1] else None
        return x, cov, names
    arr = np.asarray(X, dtype=float)
    if arr.ndim == 1:
        return arr.copy(), None, []
    if arr.ndim != 2:
        raise ValueError(f"X must be 1- or 2-dimensional, got shape {arr.shape}")
    if isinstance(exposure, str):
        raise ValueError("exposure given by name needs X as a DataFrame")
    col = int(exposure)
    x = arr[:, col].copy()
    rest = np.delete(arr, col, axis=1)
    names = [f"x{i}" for i in range(arr.shape[1]) if i != col]
    return x, (rest if rest.shape[1] else None), names


@contextmanager
def _progress(enabled: bool, total: int, desc: str):
    if not enabled or total <= 0:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False, disable=not sys.stderr.isatty())
    try:
        yield bar.update
    finally:
        bar.close()


class WindowSearch(BaseEstimator):
    """Find the exposure window [lower, upper) whose patients do best, with honest uncertainty.

    Scores from a null model that ignores exposure are summed inside every candidate window and
    standardised by their permutation variance; the window with the largest statistic (the one
    whose patients do *better* than expected) is the estimate. Around it: the permutation p-value
    of the maximum over the whole search, bootstrap intervals of both bounds and how often each
    window is chosen, and a cross-fitted hazard ratio inside vs outside.

    Parameters
    ----------
    scores : scores strategy, default LogRankScores()
        :class:`LogRankScores` (plain search), :class:`CoxMartingaleScores` (adjusted for the
        covariate columns of ``X``) or :class:`SubdistributionScores` (cumulative incidence with
        competing risks).
    grid : QuantileGrid, default QuantileGrid(k=40, minprop=0.1)
        Candidate cut points.
    single_cut : bool, default False
        One bound at the edge of the exposure range (a threshold instead of a window); its
        statistic is R maxstat's ``smethod = "LogRank"``.
    n_permutations : int, default 1000
        Permutations of the scores for the p-value of the maximum (0: skip).
    n_bootstraps : int, default 1000
        Bootstrap resamples for the bound intervals (0: skip).
    ci_level : float, default 0.95
    ci_method : {"percentile", "basic"}, default "percentile"
        Interval of the bounds from the bootstrap distribution.
    n_folds : int, default 5
        Folds of the cross-fitted hazard ratio (0: skip).
    min_events : int, default 10
        Fewer events of interest is an error.
    exposure : int or str, default 0
        Column of ``X`` holding exposure; the other columns are covariates.
    estimate : {"argmax", "bagged"}, default "argmax"
        Reported bounds: those of the window with the largest statistic, or the median of the
        bootstrap bounds (bagging, Breiman 1996), which scans the same data many times and is
        less variable (docs/benchmarks.md, section "window"). The cross-fitted effect uses the
        same rule inside every fold (bagged with ``min(n_bootstraps, 200)`` resamples).
    random_state : int, numpy.random.Generator or None
        Seeds the permutations, the bootstrap and the folds (independent streams).
    progress : bool, default False
        Show tqdm progress bars on stderr (only on a terminal).
    executor : SerialExecutor or DaskExecutor, optional
        Where the permutations and bootstrap resamples run (:mod:`ml._parallel`; worth it at large
        n). With an executor they are drawn in fixed blocks, each seeded from ``random_state``
        through ``SeedSequence.spawn``, so every executor (serial, 2 workers, a remote cluster)
        gives the same numbers; these differ from ``executor=None`` (one stream, the default)
        by Monte Carlo noise only.

    Attributes
    ----------
    lower_, upper_ : float
        The window [lower_, upper_) in exposure units (UE*day/mL for AUC); -inf / +inf when the
        bound is open (the window reaches the edge of the observed exposure range).
    target_ : float
        Best point inside the window: its midpoint, or the median exposure of the patients
        inside when a bound is open.
    statistic_ : float
        Maximal standardised statistic (large = inside does better).
    p_value_ : float
        Permutation p-value of the maximum over the whole search,
        ``(1 + #{null max >= observed}) / (1 + n_permutations)``; NaN without permutations.
    naive_p_value_ : float
        Two-sided normal p-value of the chosen window as if it had been pre-specified. Biased
        low; reported only for contrast.
    null_statistics_ : numpy.ndarray
        Maximal statistic of each permutation.
    scan_ : pandas.DataFrame
        Every admissible window: ``lower``, ``upper``, ``n_inside``, ``statistic``.
    cut_values_ : numpy.ndarray
        Candidate cut points (exposure units).
    bootstrap_bounds_ : numpy.ndarray, shape (n_bootstraps, 2)
    lower_ci_, upper_ci_ : tuple of float
        Intervals of the bounds (NaN without bootstrap).
    window_frequency_ : pandas.DataFrame
        How often each window (snapped to the grid) wins in the bootstrap.
    argmax_bounds_ : tuple of float
        Bounds of the window with the largest statistic.
    bagged_bounds_ : tuple of float
        Median of the bootstrap bounds (NaN without bootstrap).
    effect_ : dict
        Cross-fitted hazard ratio inside vs outside (:func:`cross_fitted_effect`).
    n_, n_events_, n_excluded_ : int
        Patients used, their events of interest, patients left out for missing exposure.
    n_features_in_ : int
    """

    def __init__(self, scores=None, grid=None, *, single_cut: bool = False, n_permutations: int = 1000,
                 n_bootstraps: int = 1000, ci_level: float = 0.95, ci_method: str = "percentile",
                 n_folds: int = 5, min_events: int = 10, exposure: int | str = 0, estimate: str = "argmax",
                 random_state=None, progress: bool = False, executor=None):
        self.scores = scores
        self.grid = grid
        self.single_cut = single_cut
        self.n_permutations = n_permutations
        self.n_bootstraps = n_bootstraps
        self.ci_level = ci_level
        self.ci_method = ci_method
        self.n_folds = n_folds
        self.min_events = min_events
        self.exposure = exposure
        self.random_state = random_state
        self.estimate = estimate
        self.progress = progress
        self.executor = executor

    # ----------------------------------------------------------------------------------- checks
    def _check_params(self):
        for name in ("n_permutations", "n_bootstraps", "min_events"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
        if not (isinstance(self.n_folds, (int, np.integer)) and (self.n_folds == 0 or self.n_folds >= 2)):
            raise ValueError(f"n_folds must be 0 (skip) or an integer >= 2, got {self.n_folds!r}")
        if not (0 < self.ci_level < 1):
            raise ValueError(f"0 < ci_level < 1 must hold, got ci_level={self.ci_level}")
        if self.estimate not in ESTIMATES:
            raise ValueError(f"estimate must be one of {ESTIMATES}, got {self.estimate!r}")
        if self.estimate == "bagged" and self.n_bootstraps < 1:
            raise ValueError("estimate='bagged' is the median of the bootstrap bounds: it needs n_bootstraps >= 1")
        if self.ci_method not in CI_METHODS:
            raise ValueError(f"ci_method must be one of {CI_METHODS}, got {self.ci_method!r}")
        scores = LogRankScores() if self.scores is None else self.scores
        grid = QuantileGrid() if self.grid is None else self.grid
        if not hasattr(scores, "scores"):
            raise TypeError(f"scores must be a scores strategy with a .scores(y, covariates) method, got {scores!r}")
        if not (hasattr(grid, "positions") and hasattr(grid, "min_group")):
            raise TypeError(f"grid must be a grid strategy with .positions() and .min_group(), got {grid!r}")
        return scores, grid

    def _prepare(self, X, y):
        x, cov, names = split_exposure(X, self.exposure)
        y = np.asarray(y)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"X and y must have the same number of rows, got {x.shape[0]} and {y.shape[0]}")
        event, _ = check_survival_target(y)
        if y["event"].dtype != bool:
            check_competing_target(y)
        missing = np.isnan(x)
        if np.isinf(x).any():
            raise ValueError("exposure must be finite or missing (NaN), found +/-inf")
        if missing.any():
            warnings.warn(f"{int(missing.sum())} patient(s) with missing exposure excluded from the window search",
                          UserWarning, stacklevel=3)
        keep = ~missing
        if cov is not None and not np.isfinite(cov[keep]).all():
            bad = sorted(set(np.flatnonzero(~np.isfinite(cov[keep]).all(axis=0)).tolist()))
            raise ValueError(f"covariates must not have missing values; columns {[names[i] for i in bad]} do")
        x, y, event = x[keep], y[keep], event[keep]
        cov = None if cov is None else cov[keep]
        n_events = int(event.sum())
        if n_events < self.min_events:
            raise ValueError(f"too few events: {n_events} events of interest among {x.size} patients, "
                             f"at least min_events={self.min_events} are needed")
        if x.size and np.all(x == x[0]):
            raise ValueError(f"exposure is constant (every value is {float(x[0])!r}): no cut point exists")
        return x, y, cov, int(missing.sum()), n_events

    # -------------------------------------------------------------------------------------- fit
    def fit(self, X, y):
        """Search the window.

        Parameters
        ----------
        X : array-like, shape (n,) or (n, p), or DataFrame
            Exposure (column ``exposure``; e.g. total active-ATG AUC in UE*day/mL; NaN = missing,
            excluded with a warning) and, for adjusted scores, covariates.
        y : numpy.ndarray
            Survival target ``(event: bool, time)`` or competing target ``(event: 0/1/2, time)``
            from :mod:`ml.features` (times in days).

        Returns
        -------
        self
        """
        scores, grid = self._check_params()
        x, y, cov, n_excluded, n_events = self._prepare(X, y)
        cov_used = cov if getattr(scores, "needs_covariates", False) else None
        self.n_features_in_ = 1 if np.ndim(X) == 1 else int(np.shape(X)[1])
        self.n_, self.n_events_, self.n_excluded_ = int(x.size), n_events, n_excluded

        root = np.random.default_rng(self.random_state)
        perm_rng, boot_rng, fold_rng = root.spawn(3)

        one = search_once(x, y, cov_used, scores, grid, self.single_cut)
        res = one.result
        self.argmax_bounds_ = (one.lower, one.upper)
        self.statistic_ = res.statistic
        self.naive_p_value_ = float(2 * stats.norm.sf(abs(self.statistic_)))
        self.cut_values_ = bounds_of(one.x_sorted, res.edges[1:-1])
        all_bounds = bounds_of(one.x_sorted, res.edges)
        self.scan_ = pd.DataFrame({
            "lower": all_bounds[res.a], "upper": all_bounds[res.b],
            "n_inside": res.edges[res.b] - res.edges[res.a], "statistic": res.z,
        })

        if self.n_permutations:
            with _progress(self.progress, self.n_permutations, "permutations") as tick:
                self.null_statistics_ = permutation_maxima(one.scores_sorted, res, self.n_permutations,
                                                           perm_rng, progress=tick, executor=self.executor)
            tol = 1e-9 * max(1.0, abs(self.statistic_))
            exceed = int(np.sum(self.null_statistics_ >= self.statistic_ - tol))
            self.p_value_ = (1 + exceed) / (1 + self.n_permutations)
        else:
            self.null_statistics_ = np.empty(0)
            self.p_value_ = float("nan")

        if self.n_bootstraps:
            with _progress(self.progress, self.n_bootstraps, "bootstrap") as tick:
                boot = bootstrap_bounds(x, y, cov_used, scores, grid, self.single_cut,
                                        self.n_bootstraps, boot_rng, progress=tick, executor=self.executor)
            self.bootstrap_bounds_ = boot
            self.bagged_bounds_ = _bagged(boot)
            self.window_frequency_ = window_frequency(boot, self.cut_values_)
        else:
            self.bagged_bounds_ = (float("nan"), float("nan"))
            self.bootstrap_bounds_ = np.empty((0, 2))
            self.window_frequency_ = pd.DataFrame(columns=["lower", "upper", "count", "share"])

        self.lower_, self.upper_ = self.argmax_bounds_
        if self.estimate == "bagged":
            lo, hi = self.bagged_bounds_
            if lo < hi:
                self.lower_, self.upper_ = lo, hi
            else:
                warnings.warn(f"bagged bounds ({lo}, {hi}) do not form a window; reporting the argmax window",
                              RuntimeWarning, stacklevel=2)
        if self.n_bootstraps:
            self.lower_ci_, self.upper_ci_ = bound_intervals((self.lower_, self.upper_), self.bootstrap_bounds_,
                                                             self.ci_level, self.ci_method)
        else:
            self.lower_ci_ = self.upper_ci_ = (float("nan"), float("nan"))
        inside = inside_window(x, self.lower_, self.upper_)
        finite = np.isfinite([self.lower_, self.upper_])
        self.target_ = float((self.lower_ + self.upper_) / 2) if finite.all() else float(np.median(x[inside]))

        if self.n_folds:
            fit_window = _argmax_rule if self.estimate == "argmax" else _BaggedRule(min(self.n_bootstraps, 200))
            self.effect_ = cross_fitted_effect(x, y, cov_used, scores, grid, self.single_cut, self.n_folds,
                                               fold_rng, level=self.ci_level, adjust=cov_used is not None,
                                               fit_window=fit_window)
        else:
            self.effect_ = {}
        return self

    # ---------------------------------------------------------------------------------- helpers
    def predict(self, X) -> np.ndarray:
        """True where the exposure of ``X`` lies inside the fitted window [lower_, upper_)."""
        check_is_fitted(self, "lower_")
        x, _, _ = split_exposure(X, self.exposure)
        return inside_window(x, self.lower_, self.upper_)

    def summary(self) -> dict:
        """The fitted results as plain Python values (open bounds as None)."""
        check_is_fitted(self, "lower_")

        def f(v):
            return None if not np.isfinite(v) else float(v)

        return {
            "lower": f(self.lower_), "upper": f(self.upper_), "target": f(self.target_),
            "lower_ci": [f(v) if not np.isnan(v) else None for v in self.lower_ci_],
            "upper_ci": [f(v) if not np.isnan(v) else None for v in self.upper_ci_],
            "statistic": float(self.statistic_), "p_value": float(self.p_value_),
            "naive_p_value": float(self.naive_p_value_), "n": self.n_, "events": self.n_events_,
            "n_excluded": self.n_excluded_, "effect": dict(self.effect_),
        }


def _bagged(boot: np.ndarray) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column
        return tuple(float(v) for v in np.nanmedian(boot, axis=0))


def _argmax_rule(x, y, covariates, scores, grid, single_cut, rng):
    one = search_once(x, y, covariates, scores, grid, single_cut)
    return one.lower, one.upper


class _BaggedRule:
    """Window rule for cross-fitting: median of ``n_bootstraps`` bootstrap bounds."""

    def __init__(self, n_bootstraps: int):
        self.n_bootstraps = n_bootstraps

    def __call__(self, x, y, covariates, scores, grid, single_cut, rng):
        lo, hi = _bagged(bootstrap_bounds(x, y, covariates, scores, grid, single_cut, self.n_bootstraps, rng))
        return (lo, hi) if lo < hi else _argmax_rule(x, y, covariates, scores, grid, single_cut, rng)
