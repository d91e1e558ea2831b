"""Sampling design and noisy, LLOQ-censored active-ATG levels of virtual patients."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.pk._regimen import HOURS_PER_DAY


def sampling_times(doses: pd.DataFrame, sampling: dict) -> np.ndarray:
    """Common sampling times (days from transplant) of the fixed design.

    Before and at the end of each infusion of the first patient's regimen (every virtual
    patient of a cohort shares it), then ``sampling.days`` at ``sampling.hour``.
    """
    first = doses[doses["patient"] == doses["patient"].iloc[0]]
    start = first["day"].to_numpy(float) + first["start_hour"].to_numpy(float) / HOURS_PER_DAY
    end = start + first["infusion_hours"].to_numpy(float) / HOURS_PER_DAY
    around = np.r_[start, end] if sampling.get("around_infusions", True) else np.zeros(0)
    fixed = np.asarray(sampling["days"], dtype=float) + sampling["hour"] / HOURS_PER_DAY
    return np.unique(np.r_[around, fixed])


def observe(pred: np.ndarray, residual: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Add residual error and apply the LLOQ.

    ``obs = pred * (1 + prop * e1) + add * e2`` with standard normal ``e1, e2``; values below the
    LLOQ become NaN with ``bloq = 1``.

    Returns
    -------
    concentration : numpy.ndarray
        Observed concentrations (UE/mL), NaN where below LLOQ; rounded to 0.001.
    bloq : numpy.ndarray of int
    """
    e1, e2 = rng.standard_normal(pred.shape), rng.standard_normal(pred.shape)
    obs = pred * (1.0 + residual["proportional"] * e1) + residual["additive"] * e2
    bloq = obs < residual["lloq"]
    return np.where(bloq, np.nan, np.round(obs, 3)), bloq.astype(int)
