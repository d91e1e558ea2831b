"""Shared prediction surface of the survival estimators (sksurv-compatible)."""

from __future__ import annotations

import numpy as np
from sksurv.base import SurvivalAnalysisMixin
from sksurv.functions import StepFunction


class SurvivalCurvesMixin(SurvivalAnalysisMixin):
    """Survival, cumulative hazard and cumulative incidence from ``_survival_at``.

    Subclasses implement ``_survival_at(X, times) -> (n, len(times))`` and set
    ``unique_times_`` (distinct training times, days, as in scikit-survival). ``score``
    (Harrell's C) comes from scikit-survival's mixin, so ``cross_val_score`` and Optuna
    objectives work unchanged.
    """

    def predict_survival_at(self, X, times) -> np.ndarray:
        """Survival probability S(t | x) at ``times``.

        Parameters
        ----------
        X : array-like or DataFrame, shape (n, p)
        times : array-like of float
            Days from transplant.

        Returns
        -------
        numpy.ndarray, shape (n, len(times))
        """
        return self._survival_at(X, np.atleast_1d(np.asarray(times, dtype=float)))

    def predict_cumulative_incidence(self, X, horizon: float) -> np.ndarray:
        """Probability of the event by ``horizon``, ``1 - S(horizon | x)``.

        With a cause-specific target (competing events censored) this is the complement of
        the cause-specific survival, which overstates the cumulative incidence when competing
        events are frequent; :func:`ml.models.cumulative_incidence` combines cause-specific
        models into the proper (Aalen-Johansen-type) cumulative incidence.

        Parameters
        ----------
        X : array-like or DataFrame
        horizon : float
            Days from transplant.

        Returns
        -------
        numpy.ndarray, shape (n,)
        """
        return 1.0 - self.predict_survival_at(X, [float(horizon)])[:, 0]

    def predict_survival_function(self, X, return_array: bool = False):
        """Survival functions on the training event times (scikit-survival convention).

        Parameters
        ----------
        X : array-like or DataFrame
        return_array : bool, default False
            True: array (n, len(unique_times_)); False: array of
            :class:`sksurv.functions.StepFunction`.
        """
        surv = self._survival_at(X, self.unique_times_)
        if return_array:
            return surv
        return np.array([StepFunction(self.unique_times_, s) for s in surv], dtype=object)

    def predict_cumulative_hazard_function(self, X, return_array: bool = False):
        """Cumulative hazard functions on the training event times (see survival function)."""
        with np.errstate(divide="ignore"):
            chf = -np.log(np.clip(self._survival_at(X, self.unique_times_), 1e-300, None))
        if return_array:
            return chf
        return np.array([StepFunction(self.unique_times_, c) for c in chf], dtype=object)
