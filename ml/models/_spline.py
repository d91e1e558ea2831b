"""Restricted cubic splines (Harrell's parametrisation) as a scikit-learn transformer.

For knots ``t_1 < ... < t_k`` the basis of a column ``x`` is ``x`` plus, for ``j = 1..k-2``,

    c_j(x) = [ (x - t_j)_+^3
               - (x - t_{k-1})_+^3 (t_k - t_j) / (t_k - t_{k-1})
               + (x - t_k)_+^3 (t_{k-1} - t_j) / (t_k - t_{k-1}) ] / (t_k - t_1)^2

(Stone & Koo 1985; Harrell, Regression Modeling Strategies, 2nd ed., section 2.4.5;
``Hmisc::rcspline.eval(x, knots, inclx=TRUE, norm=2)``). The function is cubic between knots,
linear beyond the outer knots, and the division by ``(t_k - t_1)^2`` keeps every column in the
units of ``x`` (UE*day/mL for exposure). Default knots are Harrell's quantiles.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

#: Harrell's default knot quantiles (Hmisc::rcspline.eval) by number of knots.
HARRELL_QUANTILES = {
    3: (0.10, 0.50, 0.90),
    4: (0.05, 0.35, 0.65, 0.95),
    5: (0.05, 0.275, 0.50, 0.725, 0.95),
    6: (0.05, 0.23, 0.41, 0.59, 0.77, 0.95),
    7: (0.025, 0.1833, 0.3417, 0.50, 0.6583, 0.8167, 0.975),
}


def harrell_knots(x, n_knots: int = 4) -> np.ndarray:
    """Knot locations at Harrell's default quantiles of ``x``.

    As in ``Hmisc::rcspline.eval``: quantiles of type 7 (numpy's default), and for fewer than
    100 values the outer knots move to the 5th smallest and 5th largest value.

    Parameters
    ----------
    x : array-like of float
    n_knots : int in 3..7

    Returns
    -------
    numpy.ndarray
        Strictly increasing knots (duplicates removed).

    Raises
    ------
    ValueError
        If fewer than 3 distinct knots remain.
    """
    if n_knots not in HARRELL_QUANTILES:
        raise ValueError(f"n_knots must be in 3..7, got {n_knots!r}")
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ValueError("cannot place knots: no finite values")
    knots = np.quantile(x, HARRELL_QUANTILES[n_knots])
    if 10 <= x.size < 100:
        xs = np.sort(x)
        knots[0], knots[-1] = xs[4], xs[-5]
    knots = np.unique(knots)
    if knots.size < 3:
        raise ValueError(f"a restricted cubic spline needs >= 3 distinct knots; the data give "
                         f"{knots.size} ({knots.tolist()})")
    return knots


def rcs_basis(x, knots) -> np.ndarray:
    """Harrell's restricted cubic spline basis ``[x, c_1(x), ..., c_{k-2}(x)]``.

    Parameters
    ----------
    x : array-like of float, shape (n,)
    knots : array-like of float, shape (k,), strictly increasing, k >= 3

    Returns
    -------
    numpy.ndarray, shape (n, k - 1)
        Every column in the units of ``x``.
    """
    x = np.asarray(x, dtype=float)
    t = np.asarray(knots, dtype=float)
    k = t.size
    if k < 3 or np.any(np.diff(t) <= 0):
        raise ValueError(f"knots must be >= 3 strictly increasing values, got {t.tolist()}")
    norm = (t[-1] - t[0]) ** 2

    def cube(v):
        return np.maximum(v, 0.0) ** 3

    cols = [x]
    for j in range(k - 2):
        c = (cube(x - t[j])
             - cube(x - t[-2]) * (t[-1] - t[j]) / (t[-1] - t[-2])
             + cube(x - t[-1]) * (t[-2] - t[j]) / (t[-1] - t[-2]))
        cols.append(c / norm)
    return np.column_stack(cols)


class RestrictedCubicSpline(TransformerMixin, BaseEstimator):
    """Restricted cubic spline expansion of each column (Harrell's basis).

    Parameters
    ----------
    n_knots : int in 3..7, default 4
        Knots at Harrell's quantiles of each column (ignored when ``knots`` is given).
    knots : array-like of float, optional
        Fixed knots (used for every column), strictly increasing, at least 3.

    Attributes
    ----------
    knots_ : list of numpy.ndarray or None
        Knots of each input column, in its units; None for a column with fewer than 3
        distinct quantile knots (e.g. binary), which then enters linearly.
    n_features_in_, feature_names_in_
        As in scikit-learn.
    """

    def __init__(self, n_knots: int = 4, knots=None):
        self.n_knots = n_knots
        self.knots = knots

    def fit(self, X, y=None) -> RestrictedCubicSpline:
        """Place the knots of each column."""
        X = validate_data(self, X, reset=True, dtype=np.float64)
        if X.shape[0] < 2:
            raise ValueError(f"a spline needs at least 2 rows, got n_samples={X.shape[0]}")
        if self.knots is not None:
            knots = np.asarray(self.knots, dtype=float)
            if knots.ndim != 1 or knots.size < 3 or np.any(np.diff(knots) <= 0):
                raise ValueError("knots must be >= 3 strictly increasing values, "
                                 f"got {self.knots!r}")
            self.knots_ = [knots.copy() for _ in range(X.shape[1])]
        else:
            self.knots_ = [self._column_knots(X[:, j]) for j in range(X.shape[1])]
        return self

    def _column_knots(self, x) -> np.ndarray | None:
        try:
            return harrell_knots(x, self.n_knots)
        except ValueError:
            if self.n_knots not in HARRELL_QUANTILES:
                raise
            return None  # fewer than 3 distinct values: the column enters linearly

    def transform(self, X) -> np.ndarray:
        """Basis ``[x, c_1, ..., c_{k-2}]`` of each column, side by side."""
        check_is_fitted(self, "knots_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return np.hstack([X[:, [j]] if k is None else rcs_basis(X[:, j], k)
                          for j, k in enumerate(self.knots_)])

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``name`` then ``name_rcs1`` ... per input column."""
        check_is_fitted(self, "knots_")
        if input_features is None:
            input_features = getattr(self, "feature_names_in_",
                                     [f"x{j}" for j in range(self.n_features_in_)])
        out = []
        for name, knots in zip(input_features, self.knots_):
            n_terms = 0 if knots is None else knots.size - 2
            out += [str(name)] + [f"{name}_rcs{j + 1}" for j in range(n_terms)]
        return np.asarray(out, dtype=object)
