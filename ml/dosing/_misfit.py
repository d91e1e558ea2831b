"""A batch-level check that the population PK model describes the patients being dosed.

Each patient's MAP deviation from the typical value, in population SDs (``eta / omega``), has mean
0 across patients when the model is right (shrinkage pulls it towards 0, never away). A batch
whose mean deviation of CL or V1 sits far from 0 says the typical values are wrong for this
population, and the forecasts of every patient in it are biased the same way: in the closed-loop
benchmark (docs/benchmarks.md, "closed-loop"), dosing a world whose true CL is 1.25x and V1 0.8x the
shipped prior's with that prior put 81 % of patients below the true floor (fixed dosing: 70 %), while
the model fitted on the centre's cohort cut it to 48 %. The engine cannot see the truth, but it can
see this shift: by default it then refuses every patient of the batch with the reason (they get the
fixed regimen), or, with ``DosingEngine(on_misfit="warn")`` (``atgwin dose --on-misfit warn``), says
so in every recommendation. On the closed loop's 1,000 new patients per world dosed with the shipped
prior, the check flagged the misspecified world (V1 -0.39 SD, t = -11.2) and neither the world of
the prior (largest shift V1 +0.07 SD) nor the world whose variability sits on CL (V1 +0.09 SD,
t = +5.4: a real but small shift, under ``MIN_SHIFT_SD``). One patient at a time is never judged.
"""

from __future__ import annotations

import math

import numpy as np

from ._recommendation import DoseRecommendation

__all__ = ["MIN_PATIENTS", "MIN_SHIFT_SD", "MIN_T", "population_misfit"]

#: fewer recommended patients than this: no batch check (the mean of a few deviations says little)
MIN_PATIENTS = 20
#: mean deviation that matters, population SDs (a quarter SD moves every forecast the same way)
MIN_SHIFT_SD = 0.25
#: and that is not chance: |mean| / standard error above this (about 1 in 15,000 under the model)
MIN_T = 4.0


def population_misfit(recs: list, omega: dict[str, float], *, min_patients: int = MIN_PATIENTS,
                      min_shift: float = MIN_SHIFT_SD, min_t: float = MIN_T) -> str | None:
    """A warning when the batch's MAP deviations are systematically off the model, else None.

    Parameters
    ----------
    recs : list
        The engine's results; only :class:`DoseRecommendation` items are read.
    omega : dict of str to float
        The population model's between-patient SDs (log scale) by parameter.
    min_patients : int
        Smallest number of recommendations checked.
    min_shift : float
        Smallest absolute mean deviation reported, population SDs.
    min_t : float
        Smallest ``|mean| / standard error`` reported.

    Returns
    -------
    str or None
        One sentence naming each shifted parameter with its mean deviation, or None.
    """
    rows = [r for r in recs if isinstance(r, DoseRecommendation)]
    if len(rows) < min_patients:
        return None
    shifted = []
    for name in ("CL", "V1"):
        sd = omega.get(name, 0.0)
        if not sd > 0:
            continue
        z = np.array([r.posterior.eta_map.get(name, math.nan) for r in rows], float) / sd
        z = z[np.isfinite(z)]
        if len(z) < min_patients:
            continue
        mean, se = float(z.mean()), float(z.std(ddof=1) / math.sqrt(len(z)))
        if abs(mean) >= min_shift and se > 0 and abs(mean) / se >= min_t:
            shifted.append(f"{name} {mean:+.2f} SD (t = {mean / se:+.1f})")
    if not shifted:
        return None
    return (f"population model misfit: across the {len(rows)} patients of this batch the levels put "
            f"{' and '.join(shifted)} away from the model's typical values; the model may not describe this "
            "population and every forecast is biased the same way: fit it on a cohort of this centre "
            "(`atgwin poppk fit`) before trusting these doses")
