"""When SAEM's exploration has converged: a stationarity test of its convergence indicator.

SAEM with step 1 (exploration) behaves like EM with a Monte Carlo E-step: the estimates move
towards the maximum likelihood estimate and then fluctuate around it. Monolix ends its first
phase automatically once the sequence is stationary instead of after a fixed number of
iterations (Lavielle 2014, *Mixed effects models for the population approach*, Chapman &
Hall, ch. 9), watching the convergence indicator, the complete-data ``-2 log-likelihood``
``-2 sum_i [log p(y_i | phi_i) + log p(phi_i)]`` at the current MCMC state.

The test here compares the two halves of the last ``window`` values of that indicator: the
iterates count as stationary when the mean moved between the halves by at most ``tol``
standard deviations of the whole window plus ``floor``. A steady trend over the window
moves the mean by about 1.7 such standard deviations, Monte Carlo noise around a fixed
point by a fraction of one. The indicator is one number for all parameters: it does not
wait for parameters that the data hardly determine (the CL/Vmax/Km ridge of
:mod:`ml.poppk._saem`), along which it is flat, and it does wait for the well-determined
parameters, whose convergence moves it by hundreds of units. With
``PopPKFit(stopping=None)`` the exploration runs its full budget and the same statistic at
its end is reported (``PopPKFit.convergence_``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["StationarityRule"]


@dataclass(frozen=True)
class StationarityRule:
    """End SAEM's exploration once its convergence indicator is stationary (module
    docstring).

    Parameters
    ----------
    window : int
        Iterations compared (two halves of ``window // 2``).
    tol : float
        Largest shift of the indicator's mean between the halves, in standard deviations of
        the indicator over the window.
    floor : float
        Shift always tolerated, units of ``-2 log-likelihood``.
    min_iterations : int
        Exploration iterations, counted from the end of the hold of Q, V2 and Km
        (:func:`ml.poppk._saem.run_saem`), before the rule may end the exploration (at least
        ``window``).
    """

    window: int = 30
    tol: float = 1.0
    floor: float = 1.0
    min_iterations: int = 0

    def __post_init__(self) -> None:
        if not (isinstance(self.window, (int, np.integer)) and self.window >= 4):
            raise ValueError(f"StationarityRule.window must be an integer >= 4, got {self.window!r}")
        if not self.tol > 0:
            raise ValueError(f"StationarityRule.tol must be > 0, got {self.tol}")
        if not self.floor >= 0:
            raise ValueError(f"StationarityRule.floor must be >= 0, got {self.floor}")

    def drift(self, history: np.ndarray) -> float:
        """Largest standardised shift of the last ``window`` rows of ``history`` (iterations x
        quantities): ``max_j |mean_B - mean_A| / (tol * sd_j + floor)`` with ``sd_j`` the
        standard deviation over the whole window; the iterates count as stationary when it
        is at most 1. ``inf`` with too few rows or non-finite values."""
        history = np.asarray(history, dtype=float)
        if history.ndim == 1:
            history = history[:, None]
        h = self.window // 2
        if history.shape[0] < 2 * h:
            return float("inf")
        last = history[-2 * h:]
        if not np.isfinite(last).all():
            return float("inf")
        shift = np.abs(last[h:].mean(axis=0) - last[:h].mean(axis=0))
        sd = last.std(axis=0, ddof=1)
        return float(np.max(shift / (self.tol * sd + self.floor)))

    def stationary(self, history: np.ndarray) -> bool:
        """Whether the last ``window`` rows of ``history`` are stationary (:meth:`drift`)."""
        return self.drift(history) <= 1.0
