"""How the engine ranks regimens: strategy objects over the three harms of a forecast.

Every regimen's forecast total AUC splits the posterior into three groups: below the window's
floor (too little ATG: the harm a floor protects against, e.g. acute GVHD), in the window, and
above its ceiling (too much ATG: e.g. CMV reactivation, relapse). An objective turns the three
probabilities of each regimen into a score (higher is better); :class:`ml.dosing.DosingEngine`
takes the regimens whose score is within ``tie_tolerance`` of the best and breaks the tie by the
forecast median closest to the window's target.

- :class:`MostProbableInWindow` (default): score = P(in window).
- :class:`HarmWeighted`: score = -(w_floor x P(below) + w_ceiling x P(above)) / max(w_floor,
  w_ceiling), i.e. the smallest expected loss when a patient below the floor costs ``w_floor`` and
  one above the ceiling costs ``w_ceiling``. "GVHD costs twice CMV" is ``HarmWeighted(floor=2,
  ceiling=1)``. Dividing by the larger weight keeps scores in probability units (so the engine's
  ``tie_tolerance`` means the same thing for every objective) and makes the objective depend only on
  the ratio of the weights; ``HarmWeighted(1, 1)`` ranks exactly as :class:`MostProbableInWindow`
  (its score is P(in window) - 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["HarmWeighted", "MostProbableInWindow", "objective_from_dict"]


@dataclass(frozen=True)
class MostProbableInWindow:
    """Choose the regimen most likely to land in the window (the engine's default)."""

    def score(self, p_below: np.ndarray, p_in: np.ndarray, p_above: np.ndarray) -> np.ndarray:
        """Score of each regimen (higher is better), probability units.

        Parameters
        ----------
        p_below, p_in, p_above : numpy.ndarray, shape (R,)
            Probability of total AUC below the floor, in the window, above the ceiling.
        """
        return np.asarray(p_in, dtype=float)

    def describe(self) -> str:
        """One line for recommendations and reports."""
        return "most probable in window"

    def to_dict(self) -> dict:
        return {"name": "most-probable-in-window"}


@dataclass(frozen=True)
class HarmWeighted:
    """Choose the regimen of smallest expected loss ``floor x P(below) + ceiling x P(above)``.

    Parameters
    ----------
    floor : float
        Cost of a patient ending below the window's floor (relative units, > 0).
    ceiling : float
        Cost of a patient ending above the window's ceiling (relative units, > 0).

    Examples
    --------
    GVHD (under-exposure) costs twice CMV (over-exposure):

    >>> HarmWeighted(floor=2, ceiling=1).describe()
    'harm-weighted: expected loss = 2 x P(below floor) + 1 x P(above ceiling)'
    """

    floor: float = 1.0
    ceiling: float = 1.0

    def __post_init__(self) -> None:
        for name in ("floor", "ceiling"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0):
                raise ValueError(f"HarmWeighted: `{name} > 0` must hold (a finite weight), got {v!r}")
        object.__setattr__(self, "floor", float(self.floor))
        object.__setattr__(self, "ceiling", float(self.ceiling))

    def score(self, p_below: np.ndarray, p_in: np.ndarray, p_above: np.ndarray) -> np.ndarray:
        """Minus the expected loss over the larger weight, probability units (higher is better)."""
        loss = self.floor * np.asarray(p_below, dtype=float) + self.ceiling * np.asarray(p_above, dtype=float)
        return -loss / max(self.floor, self.ceiling)

    def describe(self) -> str:
        return (f"harm-weighted: expected loss = {self.floor:g} x P(below floor) + "
                f"{self.ceiling:g} x P(above ceiling)")

    def to_dict(self) -> dict:
        return {"name": "harm-weighted", "floor": self.floor, "ceiling": self.ceiling}


def objective_from_dict(data: dict | None):
    """Rebuild an objective from its ``to_dict`` (None: the default)."""
    if not data:
        return MostProbableInWindow()
    kind = data.get("name")
    if kind == "most-probable-in-window":
        return MostProbableInWindow()
    if kind == "harm-weighted":
        return HarmWeighted(floor=data["floor"], ceiling=data["ceiling"])
    raise ValueError(f"unknown dosing objective {kind!r}; known: 'most-probable-in-window', 'harm-weighted'")
