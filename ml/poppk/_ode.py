"""Fitting-grade integration of the ATG model for many parameter rows at once.

A thin adapter over :func:`ml.pk.simulate` with the "estimation" step policy
(:class:`ml.pk.EstimationPolicy`, one integrator for the whole package): parameter rows as an
``(R, 6)`` array, one common grid for all rows of a call (so finite differences of one patient see
the same steps), steps bounded by ``phase_steps`` and by RK4's stability limit
(``h lambda <= 2.5``) instead of the simulator's accuracy bound. Relative error about 1e-3 against
the default :func:`ml.pk.simulate` (tests/test_poppk_units.py), far below the 20 % residual error.
"""

from __future__ import annotations

import numpy as np

from ml.pk import EstimationPolicy, Infusions, PKParameters, simulate

__all__ = ["concentrations"]


def concentrations(p: np.ndarray, inf: Infusions, times: np.ndarray,
                   phase_steps: tuple, t_end: float) -> np.ndarray:
    """Central concentrations ``(R, m)`` at ``times (R, m)`` for parameters ``p (R, 6)`` in
    :data:`ml.pk.PARAMETERS` order (CL, V1, Q, V2, Vmax, Km; L, L/day, mg/day, mg/L)."""
    params = PKParameters(*(p[:, i] for i in range(p.shape[1])))
    out = simulate(params, inf, times, t_end=t_end, policy=EstimationPolicy(phase_steps=tuple(phase_steps)))
    return out["concentration"]
