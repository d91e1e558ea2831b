"""Score a given (pre-specified) window on a cohort, without searching.

Used for transportability: the haplo window applied to URD patients. No selection happens on the
data, so the plain statistic, its permutation p-value and a plain Cox hazard ratio are honest.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from ml.features import check_competing_target, check_survival_target
from ml.window._cox import hazard_ratio
from ml.window._scores import LogRankScores

__all__ = ["WindowEvaluation", "evaluate_window"]


@dataclass(frozen=True)
class WindowEvaluation:
    """A pre-specified window scored on one data set.

    Attributes
    ----------
    lower, upper : float or None
        The window [lower, upper) (None = open), exposure units.
    n, events, n_inside, events_inside, n_excluded : int
    statistic : float
        Standardised linear rank statistic of the window (large = inside does better).
    p_value : float
        Two-sided permutation p-value of ``statistic`` (a single, pre-specified window).
    p_value_normal : float
        Two-sided normal approximation.
    hr, hr_ci_low, hr_ci_high, hr_p_value : float
        Cox hazard ratio inside vs outside (NaN when a group is empty).
    n_permutations : int
    """

    lower: float | None
    upper: float | None
    n: int
    events: int
    n_inside: int
    events_inside: int
    n_excluded: int
    statistic: float
    p_value: float
    p_value_normal: float
    hr: float
    hr_ci_low: float
    hr_ci_high: float
    hr_p_value: float
    n_permutations: int

    def to_dict(self) -> dict:
        """Plain dict (NaN kept as float NaN)."""
        return asdict(self)


def evaluate_window(x, y, lower: float | None, upper: float | None, *, scores=None, covariates=None,
                    n_permutations: int = 1000, random_state=None, level: float = 0.95) -> WindowEvaluation:
    """Score the window [lower, upper) on exposure ``x`` and target ``y``.

    Parameters
    ----------
    x : array-like, shape (n,)
        Exposure in the window's unit (NaN: excluded with a warning).
    y : numpy.ndarray
        Survival or competing target (days).
    lower, upper : float or None
        The window; None = open on that side.
    scores : scores strategy, default LogRankScores()
    covariates : array-like (n, p), optional
        For adjusted scores; also adjusts the hazard ratio.
    n_permutations : int
    random_state : int, Generator or None
    level : float

    Returns
    -------
    WindowEvaluation
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y)
    if y["event"].dtype != bool:
        check_competing_target(y)
    keep = ~np.isnan(x)
    if not keep.all():
        warnings.warn(f"{int((~keep).sum())} patient(s) with missing exposure excluded", UserWarning, stacklevel=2)
    x, y = x[keep], y[keep]
    cov = None if covariates is None else np.asarray(covariates, dtype=float)[keep]
    event, time = check_survival_target(y)
    scores = LogRankScores() if scores is None else scores
    s = scores.scores(y, cov if getattr(scores, "needs_covariates", False) else None)
    lo = -np.inf if lower is None else float(lower)
    hi = np.inf if upper is None else float(upper)
    inside = (x >= lo) & (x < hi)
    n, m = x.size, int(inside.sum())
    if m == 0 or m == n:
        raise ValueError(f"the window [{lower}, {upper}) holds {m} of {n} patients: nothing to compare")
    total, total_sq = s.sum(), np.dot(s, s)
    var = m * (n - m) / (n**2 * (n - 1)) * (n * total_sq - total**2)

    def z_of(inside_sum):
        return -(inside_sum - m * total / n) / np.sqrt(var)

    z = float(z_of(s[inside].sum()))
    rng = np.random.default_rng(random_state)
    exceed = 0
    for _ in range(n_permutations):
        exceed += abs(z_of(rng.permutation(s)[:m].sum())) >= abs(z) - 1e-12
    p_perm = (1 + exceed) / (1 + n_permutations) if n_permutations else float("nan")
    hr = hazard_ratio(inside, time, event, cov if getattr(scores, "needs_covariates", False) else None, level=level)
    return WindowEvaluation(
        lower=None if lower is None else float(lower), upper=None if upper is None else float(upper),
        n=n, events=int(event.sum()), n_inside=m, events_inside=int(event[inside].sum()),
        n_excluded=int((~keep).sum()), statistic=z, p_value=float(p_perm),
        p_value_normal=float(2 * stats.norm.sf(abs(z))), hr=hr["hr"], hr_ci_low=hr["ci_low"],
        hr_ci_high=hr["ci_high"], hr_p_value=hr["p_value"], n_permutations=int(n_permutations),
    )
