"""Per-patient scores from a null model that ignores exposure (strategies for ``WindowSearch``).

A score is large when the patient did worse than the null model expected (an event, early).
The window statistic is the sum of the scores of the patients inside a window; under the null
hypothesis of no exposure effect the scores are exchangeable, which is what the permutation
p-value relies on.

Every strategy has ``scores(y, covariates=None) -> ndarray`` and ``needs_covariates``. Targets
may be survival targets ``(event: bool, time)`` or competing targets ``(event: 0/1/2, time)``;
competing events (code 2) count as censoring, so the scores are cause-specific.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator

from ml._risksets import event_table, nelson_aalen, tie_bounds
from ml.features import check_competing_target, check_survival_target
from ml.window._cox import cox_fit

__all__ = ["CoxMartingaleScores", "LogRankScores", "SubdistributionScores", "logrank_scores", "subdistribution_hazard"]


def logrank_scores(time, event, ties: str = "breslow") -> np.ndarray:
    """Log-rank (Savage) scores ``event - H(time)`` with ``H`` the Nelson-Aalen cumulative hazard.

    Parameters
    ----------
    time : array-like, shape (n,)
        Days.
    event : array-like of bool, shape (n,)
    ties : {"breslow", "maxstat"}
        ``"breslow"``: tied times share one risk set, ``H`` jumps by ``d / r`` (the Mantel-Haenszel
        log-rank statistic). ``"maxstat"``: the formula of R ``exactRankTests::cscores.Surv`` used
        by ``maxstat`` (each tied event divides by ``N - maxrank + 1``); identical without ties.

    Returns
    -------
    numpy.ndarray, shape (n,)
        Scores summing to zero.
    """
    time = np.asarray(time, dtype=float)
    ev = np.asarray(event, dtype=float)
    n = time.shape[0]
    order = np.argsort(time, kind="stable")
    ts, ds = time[order], ev[order]
    first, last = tie_bounds(ts)  # last: max rank - 1 (0-based)
    if ties == "breslow":
        at_risk = n - first
    elif ties == "maxstat":
        at_risk = n - last
    else:
        raise ValueError(f"ties must be 'breslow' or 'maxstat', got {ties!r}")
    hazard = nelson_aalen(ts, ds, at_risk)
    out = np.empty(n)
    out[order] = ds - hazard
    return out


class LogRankScores(BaseEstimator):
    """Log-rank scores of a null model without covariates (the plain search).

    Parameters
    ----------
    ties : {"breslow", "maxstat"}, default "breslow"
        Handling of tied event times, see :func:`logrank_scores`. ``"maxstat"`` reproduces R
        maxstat exactly; ``"breslow"`` is the usual (Mantel-Haenszel) log-rank statistic.
    """

    needs_covariates = False

    def __init__(self, ties: str = "breslow"):
        self.ties = ties

    def scores(self, y, covariates=None) -> np.ndarray:
        """Scores for target ``y`` (covariates ignored)."""
        event, time = check_survival_target(y)
        return logrank_scores(time, event, ties=self.ties)


class CoxMartingaleScores(BaseEstimator):
    """Martingale residuals of a Cox model on covariates (the adjusted search).

    The null model contains the covariates but not exposure, so the window is searched for the
    part of the outcome the covariates do not explain. Without covariates this reduces to
    :class:`LogRankScores` (Breslow ties).

    Parameters
    ----------
    columns : list of int or None, default None
        Which covariate columns to use; None uses all that ``WindowSearch`` passes.
    """

    needs_covariates = True

    def __init__(self, columns: list[int] | None = None):
        self.columns = columns

    def scores(self, y, covariates=None) -> np.ndarray:
        """Martingale residuals for target ``y`` given covariate matrix ``covariates`` (n, p)."""
        event, time = check_survival_target(y)
        Z = None
        if covariates is not None:
            Z = np.asarray(covariates, dtype=float).reshape(len(time), -1)
            if self.columns is not None:
                Z = Z[:, list(self.columns)]
        if Z is None or Z.shape[1] == 0:
            warnings.warn("CoxMartingaleScores without covariates: same as log-rank scores", stacklevel=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return cox_fit(time, event, Z).martingale


class SubdistributionScores(BaseEstimator):
    """Scores of the Fine-Gray null model: the subdistribution (cumulative-incidence) view.

    Patients with a competing event stay in the risk set, weighted by the censoring survival
    ``G(t) / G(T_i)`` (IPCW), so the window is judged by the cumulative incidence of the event of
    interest rather than by its cause-specific hazard. The score of patient ``i`` is
    ``N_i - integral w_i(t) Y_i(t) dLambda_1(t)`` with ``Lambda_1`` the null subdistribution
    hazard. Without competing events it equals :class:`LogRankScores` (Breslow ties).
    """

    needs_covariates = False

    def scores(self, y, covariates=None) -> np.ndarray:
        """Scores for a competing target ``y`` (a survival target has no competing events)."""
        codes, time = check_competing_target(y)
        grid, dlam, g_before, idx = subdistribution_hazard(time, codes)
        lam = np.cumsum(dlam)
        comp_tail = np.cumsum((g_before * dlam)[::-1])[::-1]  # sum_{s >= t} G(s-) dLambda(s)
        out = (codes == 1) - lam[idx]
        is2 = codes == 2
        # after T_i a competing patient stays at risk with weight G(s-)/G(T_i-), s > T_i
        nxt = idx[is2] + 1
        tail = np.where(nxt < grid.size, comp_tail[np.minimum(nxt, grid.size - 1)], 0.0)
        out[is2] -= tail / g_before[idx[is2]]
        return out


def subdistribution_hazard(time, codes):
    """Null (Fine-Gray) subdistribution hazard increments with IPCW-weighted risk sets.

    Parameters
    ----------
    time : numpy.ndarray, shape (n,)
        Days.
    codes : numpy.ndarray of int, shape (n,)
        0 censored, 1 event of interest, 2 competing event.

    Returns
    -------
    grid : numpy.ndarray
        Distinct times.
    dlam : numpy.ndarray
        Increments of the cumulative subdistribution hazard at ``grid``;
        ``1 - prod(1 - dlam)`` is the Aalen-Johansen cumulative incidence.
    g_before : numpy.ndarray
        Censoring survival (Kaplan-Meier, censorings after same-day events) just before each
        grid time, ``G(t-)``.
    idx : numpy.ndarray of int
        Grid index of each patient's time.
    """
    time = np.asarray(time, dtype=float)
    codes = np.asarray(codes)
    grid, idx, events, at_risk = event_table(time, codes != 0)
    cens = np.bincount(idx[codes == 0], minlength=grid.size)
    # censorings at a time count after that time's events (then S(t-) G(t-) = at-risk / n)
    after_events = at_risk - events
    g_after = np.cumprod(1.0 - np.divide(cens, after_events, out=np.zeros(grid.size), where=after_events > 0))
    g_before = np.concatenate([[1.0], g_after[:-1]])
    # weighted risk set at t: patients with T_i >= t (weight 1) and competing patients with
    # T_j < t, weight G(t-) / G(T_j-)
    comp_idx = idx[codes == 2]
    inv = np.bincount(comp_idx, weights=1.0 / g_before[comp_idx], minlength=grid.size)
    cum_inv_before = np.concatenate([[0.0], np.cumsum(inv)[:-1]])
    risk = at_risk + g_before * cum_inv_before
    d1 = np.bincount(idx[codes == 1], minlength=grid.size).astype(float)
    dlam = np.divide(d1, risk, out=np.zeros_like(d1), where=risk > 0)
    return grid, dlam, g_before, idx
