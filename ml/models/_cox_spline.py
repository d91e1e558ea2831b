"""Cox proportional-hazards model with a restricted cubic spline on exposure.

The transparent reference model: the log-hazard is ``f(AUC) + beta' z``, with ``f`` a
restricted cubic spline (Harrell's basis, knots at quantiles of AUC) and ``z`` the encoded
covariates. Coefficients come from scikit-survival's ``CoxPHSurvivalAnalysis``; the covariance
is the inverse observed information of the (penalised) partial likelihood, computed here
because scikit-survival does not expose it, and checked against R's ``survival::coxph``.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data
from sksurv.linear_model import CoxPHSurvivalAnalysis

from ml._risksets import breslow_partial_likelihood, risk_set_sums
from ml.models._adapters import check_survival_target
from ml.models._base import SurvivalCurvesMixin
from ml.models._baseline import BreslowBaseline
from ml.models._spline import harrell_knots, rcs_basis


def cox_information(X, event, time, coef, ties: str = "breslow") -> np.ndarray:
    """Observed information (negative Hessian of the log partial likelihood) of a Cox model.

    Parameters
    ----------
    X : array, shape (n, p)
    event : bool array, shape (n,)
    time : float array, shape (n,)
        Days.
    coef : array, shape (p,)
    ties : {"breslow", "efron"}
        Handling of tied event times (as in ``survival::coxph(ties=...)``).

    Returns
    -------
    numpy.ndarray, shape (p, p)
    """
    X = np.asarray(X, dtype=float)
    event = np.asarray(event, dtype=bool)
    time = np.asarray(time, dtype=float)
    coef = np.asarray(coef, dtype=float)
    order = np.argsort(time, kind="stable")
    Xs, ts, es = X[order], time[order], event[order]
    if ties != "efron":
        return breslow_partial_likelihood(coef, ts, es.astype(float), Xs)[2]
    eta = Xs @ coef
    rs = np.exp(eta - eta.max())
    s0, s1, s2 = risk_set_sums(ts, rs, Xs)
    p = X.shape[1]
    info = np.zeros((p, p))
    for t in np.unique(ts[es]):
        at = np.flatnonzero(ts == t)
        dead = at[es[at]]
        d = dead.size
        S0, S1, S2 = s0[at[0]], s1[at[0]], s2[at[0]]  # risk set {time >= t}
        D0 = rs[dead].sum()
        D1 = (rs[dead, None] * Xs[dead]).sum(axis=0)
        D2 = (rs[dead, None, None] * Xs[dead, :, None] * Xs[dead, None, :]).sum(axis=0)
        for ell in range(d):
            f = ell / d
            a0, a1, a2 = S0 - f * D0, S1 - f * D1, S2 - f * D2
            info += a2 / a0 - np.outer(a1, a1) / a0**2
    return info


class CoxSplineModel(SurvivalCurvesMixin, BaseEstimator):
    """Cox model with a restricted cubic spline on exposure plus linear covariates.

    Parameters
    ----------
    exposure : str or int, default "auc_total"
        Exposure column (a name with DataFrame input, or an index), in UE*day/mL. Every
        other column enters linearly (encode and scale them beforehand, e.g. with
        ``make_preprocessor(features, scale_numeric=True, drop_first=True)``).
    n_knots : int in 3..7, default 4
        Knots at Harrell's quantiles of the training exposure (ignored if ``knots`` given).
    knots : array-like of float, optional
        Fixed knots (UE*day/mL). ``knots="linear"`` gives a linear term only.
    alpha : float, default 1e-3
        Ridge penalty ``alpha/2 * ||beta||^2`` (scikit-survival's convention). The small
        default keeps the fit finite when a rare category has no events or two dummies
        coincide (both happen in CV folds of a few hundred patients) and moves standardised
        coefficients by well under their SE; ``alpha=0`` gives the plain partial likelihood
        (as ``survival::coxph``).
    ties : {"breslow", "efron"}, default "breslow"
    n_iter : int, default 100
    tol : float, default 1e-9

    Attributes
    ----------
    coef_ : numpy.ndarray
        Coefficients of the design ``[spline(exposure)..., covariates...]``.
    cov_ : numpy.ndarray
        Covariance of ``coef_`` (inverse penalised observed information).
    design_names_ : list of str
    dropped_features_ : list of str
        Covariates constant in the training data (coefficient fixed at 0).
    knots_ : numpy.ndarray or None
        Spline knots (UE*day/mL); None for a linear term.
    exposure_index_ : int
    exposure_reference_ : float
        Median training exposure, the default reference of :meth:`log_hazard_ratio`.
    exposure_range_ : tuple of float
        2.5th and 97.5th percentiles of training exposure (default curve range).
    cox_ : sksurv.linear_model.CoxPHSurvivalAnalysis
    baseline_ : BreslowBaseline
    unique_times_ : numpy.ndarray
        Distinct training times (days), as in scikit-survival.
    """

    def __init__(self, exposure: str | int = "auc_total", *, n_knots: int = 4, knots=None,
                 alpha: float = 1e-3, ties: str = "breslow", n_iter: int = 100,
                 tol: float = 1e-9):
        self.exposure = exposure
        self.n_knots = n_knots
        self.knots = knots
        self.alpha = alpha
        self.ties = ties
        self.n_iter = n_iter
        self.tol = tol

    def _basis(self, a) -> np.ndarray:
        a = np.asarray(a, dtype=float)
        return a[:, None] if self.knots_ is None else rcs_basis(a, self.knots_)

    def _design(self, X) -> np.ndarray:
        a = X[:, self.exposure_index_]
        if np.isnan(a).any():
            raise ValueError("exposure must not be missing in a Cox model")
        rest = np.delete(X, self.exposure_index_, axis=1)
        return np.hstack([self._basis(a), rest])

    def fit(self, X, y) -> CoxSplineModel:
        """Fit on features (exposure plus encoded covariates) and a survival target (days).

        Returns
        -------
        self
        """
        if self.ties not in ("breslow", "efron"):
            raise ValueError(f"ties must be 'breslow' or 'efron', got {self.ties!r}")
        X = validate_data(self, X, reset=True, dtype=np.float64)
        names = [str(c) for c in getattr(self, "feature_names_in_",
                                         [f"x{j}" for j in range(X.shape[1])])]
        if isinstance(self.exposure, numbers.Integral):
            if not 0 <= self.exposure < X.shape[1]:
                raise ValueError(f"exposure index must be in [0, {X.shape[1]}), "
                                 f"got {self.exposure}")
            self.exposure_index_ = int(self.exposure)
        elif self.exposure in names:
            self.exposure_index_ = names.index(self.exposure)
        else:
            raise ValueError(f"exposure {self.exposure!r} is not a column of X (columns: {names})")
        event, time = check_survival_target(y)
        if len(event) != X.shape[0]:
            raise ValueError("X and y must have the same number of rows, "
                             f"got {X.shape[0]} and {len(event)}")
        a = X[:, self.exposure_index_]
        if isinstance(self.knots, str):
            if self.knots != "linear":
                raise ValueError(f"knots must be an array of knots or 'linear', got {self.knots!r}")
            self.knots_ = None
        elif self.knots is not None:
            self.knots_ = np.asarray(self.knots, dtype=float)
            rcs_basis(a[:1], self.knots_)  # validates the knots
        else:
            self.knots_ = harrell_knots(a, self.n_knots)
        design = self._design(X)
        expo = names[self.exposure_index_]
        n_spline = 1 if self.knots_ is None else self.knots_.size - 1
        self.design_names_ = ([expo] + [f"{expo}_rcs{j}" for j in range(1, n_spline)]
                              + [n for j, n in enumerate(names) if j != self.exposure_index_])
        self.n_spline_terms_ = n_spline
        yy = np.empty(len(event), dtype=[("event", bool), ("time", "f8")])
        yy["event"], yy["time"] = event, time
        # a constant covariate (e.g. a category absent from this training fold) is not
        # identifiable in a Cox model: it is left out with coefficient 0 and variance 0.
        keep = np.ptp(design, axis=0) > 0
        keep[:n_spline] = True
        self.dropped_features_ = [n for n, k in zip(self.design_names_, keep) if not k]
        self.cox_ = CoxPHSurvivalAnalysis(alpha=self.alpha, ties=self.ties, n_iter=self.n_iter,
                                          tol=self.tol).fit(design[:, keep], yy)
        self.coef_ = np.zeros(design.shape[1])
        self.coef_[keep] = np.asarray(self.cox_.coef_, dtype=float)
        info = cox_information(design[:, keep], event, time, self.coef_[keep], self.ties)
        info += self.alpha * np.eye(info.shape[0])
        self.cov_ = np.zeros((design.shape[1], design.shape[1]))
        self.cov_[np.ix_(keep, keep)] = linalg.pinvh(info)
        eta = design @ self.coef_
        self.baseline_ = BreslowBaseline().fit(eta, event, time)
        self.unique_times_ = np.unique(time)
        self.exposure_reference_ = float(np.median(a))
        lo, hi = np.quantile(a, [0.025, 0.975])
        self.exposure_range_ = (float(lo), float(hi))
        return self

    def _validated(self, X) -> np.ndarray:
        check_is_fitted(self, "coef_")
        return validate_data(self, X, reset=False, dtype=np.float64)

    def predict(self, X) -> np.ndarray:
        """Linear predictor (log hazard ratio against all-zero covariates)."""
        return self._design(self._validated(X)) @ self.coef_

    def _survival_at(self, X, times) -> np.ndarray:
        return self.baseline_.survival(self.predict(X), times)

    def log_hazard_ratio(self, exposure, reference: float | None = None):
        """Log hazard ratio of exposure values against a reference exposure, with its SE.

        ``log HR(a) = (B(a) - B(a_ref)) beta_spline``; its variance by the delta method
        (exact here, the contrast being linear in beta): ``d' Cov d`` with
        ``d = B(a) - B(a_ref)``.

        Parameters
        ----------
        exposure : array-like of float
            UE*day/mL.
        reference : float, optional
            Reference exposure (UE*day/mL); default the training median.

        Returns
        -------
        log_hr, se : numpy.ndarray
        """
        check_is_fitted(self, "coef_")
        ref = self.exposure_reference_ if reference is None else float(reference)
        a = np.atleast_1d(np.asarray(exposure, dtype=float))
        d = self._basis(a) - self._basis(np.array([ref]))
        k = self.n_spline_terms_
        log_hr = d @ self.coef_[:k]
        cov = self.cov_[:k, :k]
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", d, cov, d), 0.0))
        return log_hr, se
