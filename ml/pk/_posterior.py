"""Posterior of a patient's PK random effects: MAP, Laplace approximation, importance sampling.

:func:`fit_map` finds the maximum a posteriori random effects of many patients at once by a
damped Newton method whose gradient and Hessian come from central finite differences; every
Newton iteration is one vectorised simulation (patients x step lengths x difference stencil).
Two strategies turn the fit into weighted posterior draws:

* :class:`LaplaceImportance` (the engine's default): a multivariate-t proposal centred at the MAP
  with the inverse Hessian as scale (Laplace approximation), corrected by self-normalised
  importance weights, so skewed posteriors (BLOQ levels, saturable elimination) are not forced
  to be Gaussian.
* :class:`PriorImportance` (the reference): draws from the population prior weighted by the
  likelihood; exact as the number of draws grows, slow. The benchmark uses it as "the best any
  engine could do with the same levels".

Both use scrambled Sobol' points (quasi-Monte Carlo) seeded from the caller's generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.special import gammaln, ndtri

from ._likelihood import LevelLikelihood

__all__ = ["LaplaceImportance", "MAPFit", "PosteriorDraws", "PriorImportance", "fit_map", "prune_draws"]

_STEP_LENGTHS = np.array([1.0, 0.5, 0.2, 0.05])
_MAX_STEP = 2.0        # largest Newton step, SD units of the prior
_Z_BOUND = 6.0         # random effects are kept within +-6 prior SDs
_MIN_CURVATURE = 0.25  # Hessian eigenvalues are raised to this (posterior SD <= 2 prior SDs)


def _stencil(d: int, h: float) -> np.ndarray:
    """Offsets of the central-difference stencil for gradient and Hessian, ``(1 + 2d + 2d(d-1), d)``."""
    pts = [np.zeros(d)]
    eye = np.eye(d)
    for i in range(d):
        pts += [h * eye[i], -h * eye[i]]
    for i in range(d):
        for j in range(i + 1, d):
            for si in (1, -1):
                for sj in (1, -1):
                    pts.append(h * (si * eye[i] + sj * eye[j]))
    return np.array(pts)


def _derivatives(f: np.ndarray, d: int, h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Value, gradient and Hessian from stencil values ``f (..., n_stencil)``."""
    f0 = f[..., 0]
    g = np.empty(f.shape[:-1] + (d,))
    H = np.empty(f.shape[:-1] + (d, d))
    for i in range(d):
        fp, fm = f[..., 1 + 2 * i], f[..., 2 + 2 * i]
        g[..., i] = (fp - fm) / (2 * h)
        H[..., i, i] = (fp - 2 * f0 + fm) / h**2
    k = 1 + 2 * d
    for i in range(d):
        for j in range(i + 1, d):
            fpp, fpm, fmp, fmm = (f[..., k + q] for q in range(4))
            H[..., i, j] = H[..., j, i] = (fpp - fpm - fmp + fmm) / (4 * h**2)
            k += 4
    return f0, g, H


def _regularised(H: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues raised to ``floor``: (regularised Hessian, its inverse)."""
    w, V = np.linalg.eigh(H)
    w = np.maximum(w, floor)
    return (V * w[..., None, :]) @ np.swapaxes(V, -1, -2), (V / w[..., None, :]) @ np.swapaxes(V, -1, -2)


@dataclass(frozen=True)
class MAPFit:
    """MAP estimates of ``P`` patients (standardised random effects).

    Attributes
    ----------
    z : numpy.ndarray, shape (P, d)
        MAP of ``eta / omega``.
    hessian : numpy.ndarray, shape (P, d, d)
        Hessian of ``-log posterior`` at the MAP (finite differences, not regularised).
    objective : numpy.ndarray, shape (P,)
        ``-log posterior`` at the MAP (up to a constant).
    pred : numpy.ndarray, shape (P, m)
        Predicted concentrations at the level times at the MAP, UE/mL.
    converged : numpy.ndarray of bool, shape (P,)
    iterations : numpy.ndarray of int, shape (P,)
    """

    z: np.ndarray
    hessian: np.ndarray
    objective: np.ndarray
    pred: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray

    def covariance(self, floor: float = _MIN_CURVATURE) -> np.ndarray:
        """Laplace covariance of ``z``: the inverse Hessian with eigenvalues raised to ``floor``."""
        return _regularised(self.hessian, floor)[1]


def fit_map(lik: LevelLikelihood, *, h: float = 1e-3, tol: float = 1e-8, max_iter: int = 40) -> MAPFit:
    """MAP random effects of every patient of ``lik`` by batched damped Newton.

    Parameters
    ----------
    lik : LevelLikelihood
    h : float
        Finite-difference step, prior SDs.
    tol : float
        Convergence: half the squared Newton decrement, ``g' H^-1 g / 2``, below ``tol``.
    max_iter : int

    Returns
    -------
    MAPFit
    """
    P, d = lik.n_patients, lik.dim
    st = _stencil(d, h)
    n_st = st.shape[0]
    z = np.zeros((P, d))
    f_all, pred_all = lik.neg_log_posterior(z[:, None, :] + st[None], None)
    f, g, H = _derivatives(f_all, d, h)
    pred = pred_all[:, 0, :]
    converged = np.zeros(P, dtype=bool)
    iterations = np.zeros(P, dtype=np.int64)
    A = _STEP_LENGTHS.size
    for _ in range(max_iter):
        Hreg, Hinv = _regularised(H, 1e-3)
        step = -np.einsum("pij,pj->pi", Hinv, g)
        decrement = 0.5 * np.einsum("pi,pi->p", g, -step)
        converged |= decrement < tol
        active = np.flatnonzero(~converged)
        if active.size == 0:
            break
        iterations[active] += 1
        s = step[active]
        norm = np.linalg.norm(s, axis=1, keepdims=True)
        s = s * np.minimum(1.0, _MAX_STEP / np.maximum(norm, 1e-300))
        cand = np.clip(z[active][:, None, :] + _STEP_LENGTHS[None, :, None] * s[:, None, :], -_Z_BOUND, _Z_BOUND)
        pts = (cand[:, :, None, :] + st[None, None]).reshape(active.size, A * n_st, d)
        fc, pc = lik.neg_log_posterior(pts, active)
        fc = fc.reshape(active.size, A, n_st)
        best = np.argmin(fc[:, :, 0], axis=1)
        f_best = fc[np.arange(active.size), best, 0]
        improved = f_best < f[active] - 1e-12
        # no step length decreases the objective: the Newton model is exhausted at this precision
        converged[active[~improved]] = True
        upd = active[improved]
        b = best[improved]
        z[upd] = cand[improved, b]
        f[upd], g[upd], H[upd] = _derivatives(fc[improved, b], d, h)
        pred[upd] = pc.reshape(active.size, A, n_st, -1)[improved, b, 0]
    return MAPFit(z=z, hessian=H, objective=f, pred=pred, converged=converged, iterations=iterations)


@dataclass(frozen=True)
class PosteriorDraws:
    """Weighted draws of standardised random effects for ``P`` patients.

    Attributes
    ----------
    z : numpy.ndarray, shape (P, S, d)
    weight : numpy.ndarray, shape (P, S)
        Normalised importance weights (each row sums to 1).
    ess : numpy.ndarray, shape (P,)
        Effective sample size ``1 / sum(w^2)``.
    method : str
    """

    z: np.ndarray
    weight: np.ndarray
    ess: np.ndarray
    method: str


def prune_draws(draws: PosteriorDraws, fit: MAPFit, mass: float = 1e-3) -> PosteriorDraws:
    """Drop the lightest draws holding at most ``mass`` of the weight (renormalising the rest).

    Draws far in the proposal's tails carry almost no posterior weight but can be stiff (tiny
    V1, huge Vmax), which forces small integration steps on everyone simulated with them. A
    dropped draw is replaced by the MAP with weight 0, so arrays keep their shape; probabilities
    change by at most ``mass``.
    """
    w = draws.weight
    order = np.argsort(w, axis=1)
    cum = np.cumsum(np.take_along_axis(w, order, axis=1), axis=1)
    drop_sorted = cum <= mass
    drop = np.zeros_like(drop_sorted)
    np.put_along_axis(drop, order, drop_sorted, axis=1)
    z = np.where(drop[..., None], fit.z[:, None, :], draws.z)
    w = np.where(drop, 0.0, w)
    w = w / w.sum(axis=1, keepdims=True)
    return PosteriorDraws(z=z, weight=w, ess=draws.ess, method=draws.method)


def _sobol(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    u = stats.qmc.Sobol(d=d, scramble=True, seed=rng).random_base2(int(np.log2(n)))
    return np.clip(u, 1e-12, 1 - 1e-12)


def _normalise(logw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logw = np.where(np.isfinite(logw), logw, -np.inf)
    w = np.exp(logw - logw.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    return w, 1.0 / np.sum(w * w, axis=1)


def _check_power_of_two(n: int, name: str) -> None:
    if not (isinstance(n, (int, np.integer)) and n >= 16 and (n & (n - 1)) == 0):
        raise ValueError(f"{name}: `n_samples` must be a power of 2 >= 16 (Sobol' points), got {n!r}")


class LaplaceImportance:
    """Laplace approximation at the MAP, corrected by importance sampling.

    Proposal: multivariate t with ``df`` degrees of freedom, location the MAP, scale the
    inverse Hessian (eigenvalues floored so the proposal is never narrower than the curvature
    allows); weights ``p(z | levels) / q(z)``.

    Parameters
    ----------
    n_samples : int
        Number of draws per patient (power of 2, Sobol' points).
    df : float
        Degrees of freedom of the t proposal (heavier tails than the posterior keep the
        importance weights bounded).
    """

    def __init__(self, n_samples: int = 256, df: float = 5.0):
        _check_power_of_two(n_samples, "LaplaceImportance")
        if not df > 2:
            raise ValueError(f"LaplaceImportance: `df > 2` must hold, got {df!r}")
        self.n_samples = int(n_samples)
        self.df = float(df)

    def __repr__(self) -> str:
        return f"LaplaceImportance(n_samples={self.n_samples}, df={self.df:g})"

    def draw(self, lik: LevelLikelihood, fit: MAPFit, rng: list[np.random.Generator]) -> PosteriorDraws:
        """Weighted posterior draws for every patient (one generator per patient)."""
        d, S, nu = lik.dim, self.n_samples, self.df
        cov = fit.covariance()
        L = np.linalg.cholesky(cov)
        u = np.stack([_sobol(S, d + 1, r) for r in rng])        # (P, S, d+1)
        x = ndtri(u[..., :d])
        chi2 = stats.chi2.ppf(u[..., d], nu)
        t = x * np.sqrt(nu / chi2)[..., None]
        z = np.clip(fit.z[:, None, :] + np.einsum("pij,psj->psi", L, t), -_Z_BOUND, _Z_BOUND)
        # log density of the t proposal, up to a constant shared by all draws of a patient
        logdet = np.sum(np.log(np.diagonal(L, axis1=1, axis2=2)), axis=1)
        maha = np.sum(t * t, axis=-1)
        logq = -0.5 * (nu + d) * np.log1p(maha / nu) - logdet[:, None]
        logq += gammaln((nu + d) / 2) - gammaln(nu / 2) - 0.5 * d * np.log(nu * np.pi)
        f, _ = lik.neg_log_posterior(z)
        w, ess = _normalise(-f - logq)
        return PosteriorDraws(z=z, weight=w, ess=ess, method=f"laplace+importance (t{nu:g}, {S} draws)")


class PriorImportance:
    """Brute-force posterior: prior draws weighted by the likelihood, then resampled.

    Exact as ``n_samples`` grows (no approximation of the posterior's shape); used as the
    reference "best any engine could do with the same levels".

    Parameters
    ----------
    n_samples : int
        Prior draws per patient (power of 2).
    n_keep : int
        Draws kept for the forecast after systematic resampling (duplicates merged).
    """

    def __init__(self, n_samples: int = 16384, n_keep: int = 1024):
        _check_power_of_two(n_samples, "PriorImportance")
        if not (isinstance(n_keep, int) and 16 <= n_keep <= n_samples):
            raise ValueError(f"PriorImportance: `16 <= n_keep <= n_samples` must hold, got {n_keep!r}")
        self.n_samples = int(n_samples)
        self.n_keep = n_keep

    def __repr__(self) -> str:
        return f"PriorImportance(n_samples={self.n_samples}, n_keep={self.n_keep})"

    def draw(self, lik: LevelLikelihood, fit: MAPFit, rng: list[np.random.Generator]) -> PosteriorDraws:
        P, d, S, K = lik.n_patients, lik.dim, self.n_samples, self.n_keep
        zs, ws, ess = [], [], []
        for p in range(P):  # one patient at a time: S simulations each
            z = ndtri(_sobol(S, d, rng[p]))[None]
            f, _ = lik.neg_log_posterior(z, np.array([p]))
            w, e = _normalise(-f + 0.5 * np.sum(z * z, axis=-1))
            # systematic resampling to K draws in a random order (Sobol' points are ordered: resampling
            # them in sequence order aliases with their structure), duplicates kept as weights
            perm = rng[p].permutation(S)
            c = np.cumsum(w[0, perm])
            pos = (rng[p].uniform() + np.arange(K)) / K
            idx = perm[np.minimum(np.searchsorted(c, pos), S - 1)]
            uniq, counts = np.unique(idx, return_counts=True)
            zk = np.zeros((K, d))
            wk = np.zeros(K)
            zk[:uniq.size], wk[:uniq.size] = z[0, uniq], counts / K
            zk[uniq.size:] = z[0, uniq[0]]
            zs.append(zk)
            ws.append(wk)
            ess.append(e[0])
        return PosteriorDraws(z=np.stack(zs), weight=np.stack(ws), ess=np.array(ess),
                              method=f"prior importance sampling ({S} draws, {K} kept)")
