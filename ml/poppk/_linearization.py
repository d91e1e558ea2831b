"""The model linearised around the individual conditional modes (FOCE-I): Fisher information
of the population parameters (standard errors) and conditional weighted residuals.

Around each patient's conditional mode ``phi_i^`` the levels are approximately normal with

    mean  E_i = f(phi_i^) - J_i (phi_i^ - mu_i)
    cov   V_i = J_i Omega J_i' + diag(g(f(phi_i^))^2)

(the first-order conditional estimation with interaction of Beal & Sheiner's NONMEM, as in
Wang 2007, J Pharmacokinet Pharmacodyn 34:575). Standard errors come from the expected Fisher
information of this Gaussian model (Monolix's "linearization" method; block-diagonal in the
mean and the variance parameters), and CWRES are ``V_i^-1/2 (y_i - E_i)`` (Hooker, Staatz &
Karlsson 2007, Pharm Res 24:2187). Censored samples are left out of both (they carry no
residual; dropping them makes the standard errors slightly conservative).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._error import CombinedError
from ._structural import Theta


@dataclass(frozen=True)
class Linearization:
    """Linearised marginal model of every patient (padded cells have unit variance).

    Attributes
    ----------
    mean : numpy.ndarray
        ``(n, m)`` E_i.
    cov : numpy.ndarray
        ``(n, m, m)`` V_i.
    cwres : numpy.ndarray
        ``(n, m)`` conditional weighted residuals (NaN outside quantified levels).
    ofv : float
        ``-2 log-likelihood`` of the quantified levels under the linearised model.
    """

    mean: np.ndarray
    cov: np.ndarray
    cwres: np.ndarray
    ofv: float


def linearize(y, observed, f_hat, jac_phi, phi_hat, mu, omega2, a, b,
              error: CombinedError) -> Linearization:
    """Linearise at the conditional modes (module docstring).

    Parameters
    ----------
    y, observed : numpy.ndarray
        ``(n, m)`` levels and the quantified-level mask.
    f_hat : numpy.ndarray
        ``(n, m)`` predictions at the modes.
    jac_phi : numpy.ndarray
        ``(n, m, 3)`` their derivatives with respect to phi.
    phi_hat, mu : numpy.ndarray
        ``(n, 3)`` modes and population means.
    omega2 : numpy.ndarray
        ``(3,)``.
    a, b : float
        Residual SDs.
    error : CombinedError
    """
    jm = np.where(observed[..., None], jac_phi, 0.0)
    g2 = error.sd(f_hat, a, b) ** 2
    mean = f_hat - np.einsum("nmj,nj->nm", jac_phi, phi_hat - mu)
    cov = np.einsum("nmj,j,nkj->nmk", jm, omega2, jm)
    idx = np.arange(y.shape[1])
    cov[:, idx, idx] += np.where(observed, g2, 1.0)
    r = np.where(observed, y - mean, 0.0)
    chol = np.linalg.cholesky(cov)
    white = np.linalg.solve(chol, r[..., None])[..., 0]
    cwres = np.where(observed, white, np.nan)
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2))
    ofv = float(np.sum(np.where(observed, logdet + np.log(2 * np.pi), 0.0)) + np.sum(white**2))
    return Linearization(mean=mean, cov=cov, cwres=cwres, ofv=ofv)


#: Names of the estimated quantities in the covariance matrix, in its order.
def parameter_names(estimate_exponents: bool) -> list[str]:
    names = ["log_CL", "log_V1", "log_CLsat"]
    if estimate_exponents:
        names += ["CL_weight", "V1_weight", "Vmax_alc"]
    return names + ["log_Q", "log_V2", "log_Km", "omega2_CL", "omega2_V1", "omega2_Vmax",
                    "additive", "proportional"]


def fisher_information(lin: Linearization, observed, f_hat, jac_phi, jac_fixed, x,
                       theta: Theta, error: CombinedError, estimate_exponents: bool) -> np.ndarray:
    """Expected information of the linearised model (order of :func:`parameter_names`)."""
    obs3 = observed[..., None]
    jp = np.where(obs3, jac_phi, 0.0)
    jf = np.where(obs3, jac_fixed, 0.0)
    dm = [jp]
    if estimate_exponents:
        dm.append(jp * x[:, None, :])
    dm.append(jf)
    dm = np.concatenate(dm, axis=2)                                     # (n, m, k_mean)
    vinv = np.linalg.inv(lin.cov)
    mean_block = np.einsum("nmj,nmk,nkl->jl", dm, vinv, dm)

    g = error.sd(f_hat, theta.a, theta.b)
    ga, gb = error.dsd_dlog(f_hat, theta.a, theta.b, g)                 # d g / d log(.)
    dvs = [np.einsum("nm,nk->nmk", jp[..., p], jp[..., p]) for p in range(3)]
    for dlog, value in ((ga, theta.a), (gb, theta.b)):
        d = np.where(observed, 2.0 * g * dlog / value, 0.0)             # d g^2 / d (a or b)
        dvs.append(d[:, :, None] * np.eye(observed.shape[1])[None])
    prod = [np.einsum("nij,njk->nik", vinv, dv) for dv in dvs]
    k = len(dvs)
    var_block = np.empty((k, k))
    for i in range(k):
        for j in range(i, k):
            var_block[i, j] = var_block[j, i] = 0.5 * np.einsum("nij,nji->", prod[i], prod[j])
    out = np.zeros((dm.shape[2] + k,) * 2)
    out[:dm.shape[2], :dm.shape[2]] = mean_block
    out[dm.shape[2]:, dm.shape[2]:] = var_block
    return out
