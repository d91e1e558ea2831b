"""Weibull baselines calibrated to cumulative incidences in the presence of competing risks.

The spec's reference incidences are cumulative incidences: a patient who dies first never has
the event. For the reference patient (in window, CMV-R+, 10/10, CR1, not ALL, age <= 35) each
endpoint's (shape, scale) is solved so that, with death competing,

    CIF(horizon) = incidence  and  CIF(median onset) = incidence / 2.

Relapse and non-relapse mortality compete with each other and are solved jointly by fixed-point
iteration; the reference patient's death-free survival (NRM, and death after relapse with the
post-relapse median) then enters the other endpoints. CIFs are computed on a 0.25-day grid from
latent-time survival functions, ``CIF(t) = sum S_competing(mid) * (F(t_i+1) - F(t_i))``.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

from ._outcomes import weibull_from_incidence

_GRID_STEP = 0.25
_ITERATIONS = 30


def _weibull_survival(t: np.ndarray, shape: float, scale: float) -> np.ndarray:
    return np.exp(-((t / scale) ** shape))


def _cif(t: np.ndarray, survival_event: np.ndarray, survival_competing: np.ndarray) -> np.ndarray:
    mid = 0.5 * (survival_competing[1:] + survival_competing[:-1])
    return np.r_[0.0, np.cumsum(mid * -np.diff(survival_event))]


def _solve(t, spec, survival_competing, start):
    p, h, m = spec["incidence"], spec["horizon_day"], spec["median_onset_day"]
    ih, im = np.searchsorted(t, h), np.searchsorted(t, m)

    def equations(x):
        cif = _cif(t, _weibull_survival(t, np.exp(x[0]), np.exp(x[1])), survival_competing)
        return [cif[ih] - p, cif[im] - p / 2]

    sol = optimize.root(equations, np.log(start), method="hybr")
    if not sol.success or np.max(np.abs(equations(sol.x))) > 1e-6:
        raise ValueError(f"cannot calibrate a Weibull baseline to {spec}: {sol.message}")
    return float(np.exp(sol.x[0])), float(np.exp(sol.x[1]))


def calibrate_baselines(outcomes: dict, follow_up: dict, endpoints: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    """Weibull (shape, scale in days) of each endpoint for the reference patient.

    Parameters
    ----------
    outcomes : dict
        ``[outcomes]`` of the configuration (needs ``relapse`` and ``nrm``).
    follow_up : dict
        ``[follow_up]`` (``post_relapse_death_median_day``).
    endpoints : tuple of str
        Time-to-event endpoints to calibrate.
    """
    t_max = max(outcomes[e]["horizon_day"] for e in endpoints)
    t = np.arange(0.0, t_max + 2 * _GRID_STEP, _GRID_STEP)
    net = {e: weibull_from_incidence(outcomes[e]["incidence"], outcomes[e]["horizon_day"],
                                     outcomes[e]["median_onset_day"]) for e in endpoints}
    nrm, rel = net["nrm"], net["relapse"]
    for _ in range(_ITERATIONS):
        nrm_new = _solve(t, outcomes["nrm"], _weibull_survival(t, *rel), nrm)
        rel_new = _solve(t, outcomes["relapse"], _weibull_survival(t, *nrm_new), rel)
        done = np.allclose(nrm_new + rel_new, nrm + rel, rtol=1e-10)
        nrm, rel = nrm_new, rel_new
        if done:
            break
    base = {"nrm": nrm, "relapse": rel}
    s_nrm, s_rel = _weibull_survival(t, *nrm), _weibull_survival(t, *rel)
    dead_nrm = _cif(t, s_nrm, s_rel)
    relapse_density = np.diff(_cif(t, s_rel, s_nrm))
    rate = np.log(2.0) / follow_up["post_relapse_death_median_day"]
    kernel = -np.expm1(-rate * (t[1:] - t[0] - _GRID_STEP / 2))
    dead_after_relapse = np.r_[0.0, np.convolve(relapse_density, kernel)[: t.size - 1]]
    death_free = 1.0 - dead_nrm - dead_after_relapse
    for e in endpoints:
        if e not in base:
            base[e] = _solve(t, outcomes[e], death_free, net[e])
    return base
