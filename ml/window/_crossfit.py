"""Cross-fitted (honest) effect of being inside the window (Faraggi & Simon 1996).

The window is chosen on K-1 folds and used to classify the held-out fold; the pooled held-out
classification is then compared by a Cox model (hazard ratio inside vs outside). No patient's
classification depends on its own outcome, so the hazard ratio is not inflated by selection.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from ml.features import check_survival_target
from ml.window._core import inside_window, search_once
from ml.window._cox import hazard_ratio

__all__ = ["cross_fitted_effect"]


def cross_fitted_effect(x, y, covariates, scores, grid, single_cut, n_folds: int,
                        rng: np.random.Generator, level: float = 0.95, adjust: bool = False,
                        fit_window=None) -> dict:
    """Cross-fitted hazard ratio of the event of interest, inside vs outside the window.

    Parameters
    ----------
    x : numpy.ndarray, shape (n,)
        Exposure (UE*day/mL).
    y : numpy.ndarray
        Survival or competing target (competing events are censored: cause-specific hazard).
    covariates : numpy.ndarray or None
        Passed to the scores strategy; also adjusts the Cox model when ``adjust``.
    scores, grid, single_cut : strategy, strategy, bool
        As in :class:`WindowSearch`.
    n_folds : int
        Number of folds K (>= 2).
    rng : numpy.random.Generator
        Fold assignment.
    level : float
        Confidence level of the hazard-ratio interval.
    adjust : bool
        Adjust the hazard ratio for ``covariates``.
    fit_window : callable, optional
        ``fit_window(x, y, covariates, scores, grid, single_cut, rng) -> (lower, upper)``: how a
        window is chosen on the training folds (default: the window with the largest statistic).

    Returns
    -------
    dict
        ``hr``, ``ci_low``, ``ci_high``, ``p_value``, ``n_inside``, ``n_outside``,
        ``events_inside``, ``events_outside``, ``folds``, ``fold_windows`` (list of (lower, upper)),
        ``method``.
    """
    event, time = check_survival_target(y)
    n = x.shape[0]
    seed = int(rng.integers(0, 2**31 - 1))
    strata = np.asarray(y["event"]).astype(int)
    if np.bincount(strata).min(initial=n) >= n_folds:
        splits = StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(x, strata)
    else:
        splits = KFold(n_folds, shuffle=True, random_state=seed).split(x)
    inside = np.zeros(n, dtype=bool)
    windows = []
    for train, test in splits:
        cov = None if covariates is None else covariates[train]
        if fit_window is None:
            one = search_once(x[train], y[train], cov, scores, grid, single_cut)
            lower, upper = one.lower, one.upper
        else:
            lower, upper = fit_window(x[train], y[train], cov, scores, grid, single_cut, rng)
        windows.append((lower, upper))
        inside[test] = inside_window(x[test], lower, upper)
    out = {
        "n_inside": int(inside.sum()),
        "n_outside": int((~inside).sum()),
        "events_inside": int(event[inside].sum()),
        "events_outside": int(event[~inside].sum()),
        "folds": int(n_folds),
        "fold_windows": windows,
        "method": f"cross-fitted Cox hazard ratio inside vs outside, {n_folds} folds"
                  + (", adjusted for covariates" if adjust else ""),
    }
    if inside.all() or not inside.any():
        out.update(hr=float("nan"), ci_low=float("nan"), ci_high=float("nan"), p_value=float("nan"))
        return out
    fit = hazard_ratio(inside, time, event, covariates if adjust else None, level=level)
    out.update(hr=fit["hr"], ci_low=fit["ci_low"], ci_high=fit["ci_high"], p_value=fit["p_value"])
    return out
