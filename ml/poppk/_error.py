"""Residual error model and the conditional likelihood of levels, with M3 for BLOQ samples.

A quantified level ``y`` given the model prediction ``f`` is normal with mean ``f`` and
standard deviation ``g(f)``; a sample below the limit of quantification contributes the
probability ``P(y < LLOQ) = Phi((LLOQ - f) / g)``: the M3 method of Beal (2001), "Ways to fit
a PK model with some data below the quantification limit", J Pharmacokinet Pharmacodyn 28:481.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr

_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class CombinedError:
    """Combined additive and proportional residual error.

    ``form="variance"`` (default, NONMEM's two-epsilon form ``y = f*(1 + eps1) + eps2``):
    ``g(f)^2 = a^2 + (b*f)^2``. ``form="sd"`` (Monolix "combined1"): ``g(f) = a + b*f``.

    ``a`` is the additive SD in concentration units (UE/mL), ``b`` the proportional SD (a
    fraction). Written to a model file as ``[residual] additive = a, proportional = b``.
    """

    form: str = "variance"

    def __post_init__(self) -> None:
        if self.form not in ("variance", "sd"):
            raise ValueError(f"CombinedError.form must be 'variance' or 'sd', got {self.form!r}")

    def sd(self, f: np.ndarray, a: float, b: float) -> np.ndarray:
        """Residual SD at prediction ``f`` (concentration unit)."""
        if self.form == "variance":
            return np.sqrt(a * a + (b * f) ** 2)
        return a + b * np.abs(f)

    def dsd_df(self, f: np.ndarray, a: float, b: float, g: np.ndarray) -> np.ndarray:
        """Derivative of the SD with respect to the prediction."""
        if self.form == "variance":
            return b * b * f / g
        return np.full_like(f, b)

    def dsd_dlog(self, f: np.ndarray, a: float, b: float, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Derivatives of the SD with respect to ``log a`` and ``log b``."""
        if self.form == "variance":
            return a * a / g, (b * f) ** 2 / g
        return np.full_like(f, a), b * np.abs(f)


def _mills(z: np.ndarray) -> np.ndarray:
    """Inverse Mills ratio phi(z)/Phi(z), stable for very negative z."""
    return np.exp(-0.5 * z * z - 0.5 * _LOG_2PI - log_ndtr(z))


def loglik_terms(f: np.ndarray, y: np.ndarray, observed: np.ndarray, bloq: np.ndarray,
                 lloq: float, a: float, b: float, error: CombinedError) -> np.ndarray:
    """Log-likelihood contribution of every cell (0 in padding cells).

    Parameters
    ----------
    f : numpy.ndarray
        Predictions, ``(..., m)``.
    y : numpy.ndarray
        Quantified levels (NaN elsewhere), broadcastable to ``f``.
    observed, bloq : numpy.ndarray of bool
        Which cells are quantified levels and which are censored, broadcastable to ``f``.
    lloq : float
        Limit of quantification.
    a, b : float
        Additive SD (concentration unit) and proportional SD (fraction).
    error : CombinedError
        The residual error model.
    """
    g = error.sd(f, a, b)
    r = np.where(observed, y - f, 0.0) / g
    normal = -0.5 * _LOG_2PI - np.log(g) - 0.5 * r * r
    censored = log_ndtr((lloq - f) / g)
    return np.where(observed, normal, 0.0) + np.where(bloq, censored, 0.0)


def loglik(f, y, observed, bloq, lloq, a, b, error) -> np.ndarray:
    """Log-likelihood of each row (patient or chain), summed over its cells."""
    return loglik_terms(f, y, observed, bloq, lloq, a, b, error).sum(axis=-1)


def score_and_information(f, y, observed, bloq, lloq, a, b, error):
    """Derivative of each cell's log-likelihood with respect to its prediction, and a positive
    curvature (the expected information for a quantified level, the exact negative second
    derivative in z for a censored one), for Gauss-Newton / Fisher-scoring steps.

    Returns
    -------
    score, info : numpy.ndarray
        Same shape as ``f``; 0 in padding cells.
    """
    g = error.sd(f, a, b)
    dg = error.dsd_df(f, a, b, g)
    r = np.where(observed, y - f, 0.0) / g
    s_obs = r / g + (r * r - 1.0) * dg / g
    i_obs = 1.0 / g**2 + 2.0 * (dg / g) ** 2
    z = (lloq - f) / g
    dz = -(1.0 + z * dg) / g
    lam = _mills(z)
    s_cen = lam * dz
    i_cen = lam * (z + lam) * dz * dz
    score = np.where(observed, s_obs, 0.0) + np.where(bloq, s_cen, 0.0)
    info = np.where(observed, i_obs, 0.0) + np.where(bloq, i_cen, 0.0)
    return score, info


def residual_gradient(f, y, observed, bloq, lloq, a, b, error) -> np.ndarray:
    """Gradient of the total log-likelihood with respect to ``(log a, log b)``."""
    g = error.sd(f, a, b)
    ga, gb = error.dsd_dlog(f, a, b, g)
    r = np.where(observed, y - f, 0.0) / g
    d_obs = (r * r - 1.0) / g                     # d loglik / d g, quantified
    z = (lloq - f) / g
    d_cen = -_mills(z) * z / g                    # d loglik / d g, censored
    dg = np.where(observed, d_obs, 0.0) + np.where(bloq, d_cen, 0.0)
    return np.array([(dg * ga).sum(), (dg * gb).sum()])
