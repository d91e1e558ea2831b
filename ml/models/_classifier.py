"""XGBoost classifier for "event by the horizon", with honest handling of censoring.

A patient censored before the horizon has an unknown status at the horizon: counting them as
"no event" biases the risk down. Two strategies, passed as objects:

* :class:`IPCW` (default): inverse probability of censoring weighting. Patients whose status at
  the horizon is known get weight ``1 / G(min(T, h)-)``, where ``G`` is the Kaplan-Meier
  estimate of the censoring distribution on the training data; patients censored before the
  horizon get weight 0 (they are represented by the up-weighted known patients). This gives
  consistent estimates of ``P(event by h | x)`` when censoring is independent of x.
* :class:`ExcludeCensored`: drop patients censored before the horizon (weight 0, others 1).
  Simple but biased towards events when censoring is heavy.

With a competing-risk target (codes 0/1/2), a competing event before the horizon is a known
"no event of interest by h" (the cumulative-incidence definition), not censoring.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import xgboost as xgb
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ml.models._adapters import check_competing_target
from ml.models._baseline import kaplan_meier, step_values
from ml.models._xgb_survival import _seed, booster_params


def horizon_status(y, horizon: float, cause: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Status at the horizon of each patient.

    Parameters
    ----------
    y : structured array
        Survival target, or competing target (codes 0/1/2).
    horizon : float
        Days from transplant.
    cause : int, default 1
        Event code of interest in a competing target.

    Returns
    -------
    label : numpy.ndarray of int
        1 if the event of interest happened at or before the horizon, else 0.
    known : numpy.ndarray of bool
        False for patients censored before the horizon (status unknown).
    """
    codes, time = check_competing_target(y)
    label = ((codes == cause) & (time <= horizon)).astype(int)
    known = (time >= horizon) | (codes != 0)
    return label, known


@dataclass(frozen=True)
class ExcludeCensored:
    """Weight 1 for patients with a known status at the horizon, 0 for those censored before."""

    def weights(self, y, horizon: float, cause: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(label, weight)`` for training; see :func:`horizon_status`."""
        label, known = horizon_status(y, horizon, cause)
        return label, known.astype(float)


@dataclass(frozen=True)
class IPCW:
    """Inverse probability of censoring weights (Kaplan-Meier censoring distribution).

    Parameters
    ----------
    min_survival : float, default 0.05
        Floor on ``G`` so that a few late patients cannot dominate (weights at most 20).
    """

    min_survival: float = 0.05

    def weights(self, y, horizon: float, cause: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(label, weight)``; weights of known patients average 1."""
        label, known = horizon_status(y, horizon, cause)
        codes, time = check_competing_target(y)
        # censoring "events" are code 0; on ties events happen before censoring, hence G(t-).
        c_times, c_surv = kaplan_meier(codes == 0, time)
        at = np.minimum(time, horizon)
        g = step_values(c_times, c_surv, at, before=1.0, left=True)
        w = np.where(known, 1.0 / np.maximum(g, self.min_survival), 0.0)
        if known.any():
            w *= known.sum() / w.sum()
        return label, w


class XGBEventClassifier(ClassifierMixin, BaseEstimator):
    """Probability of the event by a horizon, from boosted trees (``binary:logistic``).

    Parameters
    ----------
    horizon : float, default 180.0
        Days from transplant (e.g. day 180, the URD trial's primary CMV endpoint).
    censoring : IPCW or ExcludeCensored, default IPCW()
        How patients censored before the horizon enter (see module docstring).
    cause : int, default 1
        Event code of interest when ``y`` is a competing target.
    n_estimators, learning_rate, max_depth, min_child_weight, subsample, colsample_bytree, reg_lambda, reg_alpha, max_bin, n_jobs, random_state : int, float or None
        As in :class:`XGBSurvival`.

    Attributes
    ----------
    booster_ : xgboost.Booster
    classes_ : numpy.ndarray
        ``[0, 1]``.
    n_known_ : int
        Training patients with a known status at the horizon (non-zero weight).
    """

    def __init__(
        self,
        horizon: float = 180.0,
        *,
        censoring=None,
        cause: int = 1,
        n_estimators: int = 150,
        learning_rate: float = 0.03,
        max_depth: int = 2,
        min_child_weight: float = 1.0,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        reg_alpha: float = 0.0,
        max_bin: int = 64,
        n_jobs: int = 1,
        random_state=None,
    ):
        self.horizon = horizon
        self.censoring = censoring
        self.cause = cause
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.max_bin = max_bin
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None) -> XGBEventClassifier:
        """Fit on features and a survival or competing target (days).

        Returns
        -------
        self
        """
        if not (isinstance(self.horizon, numbers.Real) and self.horizon > 0):
            raise ValueError(f"horizon must be a number of days > 0, got {self.horizon!r}")
        strategy = IPCW() if self.censoring is None else self.censoring
        if not hasattr(strategy, "weights"):
            raise TypeError("censoring must be a strategy with weights(y, horizon, cause), "
                            f"e.g. IPCW() or ExcludeCensored(); got {strategy!r}")
        X = validate_data(self, X, reset=True, dtype=np.float64, ensure_all_finite="allow-nan")
        label, weight = strategy.weights(y, float(self.horizon), self.cause)
        if len(label) != X.shape[0]:
            raise ValueError("X and y must have the same number of rows, "
                             f"got {X.shape[0]} and {len(label)}")
        if sample_weight is not None:
            weight = weight * np.asarray(sample_weight, dtype=float)
        keep = weight > 0
        if len(np.unique(label[keep])) < 2:
            raise ValueError("need patients with and without the event by the horizon among those "
                             f"with a known status; got labels {np.unique(label[keep]).tolist()}")
        params = booster_params(self, "binary:logistic", _seed(self.random_state))
        d = xgb.DMatrix(X[keep], label=label[keep], weight=weight[keep], nthread=self.n_jobs,
                        missing=np.nan)
        self.booster_ = xgb.train(params, d, num_boost_round=self.n_estimators)
        self.classes_ = np.array([0, 1])
        self.n_known_ = int(keep.sum())
        return self

    def predict_proba(self, X) -> np.ndarray:
        """``[P(no event by horizon), P(event by horizon)]`` per row, shape (n, 2)."""
        check_is_fitted(self, "booster_")
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        p = self.booster_.predict(xgb.DMatrix(X, nthread=self.n_jobs, missing=np.nan))
        return np.column_stack([1.0 - p, p]).astype(float)

    def predict(self, X) -> np.ndarray:
        """1 when ``P(event by horizon) >= 0.5``."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def score(self, X, y, sample_weight=None) -> float:
        """Negative weighted Brier score at the horizon (higher is better).

        Labels and weights come from the ``censoring`` strategy applied to ``y`` (the test
        target), so patients censored before the horizon are handled as in training.
        """
        strategy = IPCW() if self.censoring is None else self.censoring
        label, weight = strategy.weights(y, float(self.horizon), self.cause)
        if sample_weight is not None:
            weight = weight * np.asarray(sample_weight, dtype=float)
        p = self.predict_proba(X)[:, 1]
        return -float(np.sum(weight * (p - label) ** 2) / np.sum(weight))
