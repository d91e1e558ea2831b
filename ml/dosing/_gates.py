"""The one check that a window is safe to dose into: both bounds, and a two-sided finding.

A window open on one side has no harm on that side, so an engine maximising the probability of
landing "in" it drives exposure towards the open side: with a window open below, doses fall and
patients end below the true floor (issue 12 measured 88 % below the true floor against 25 % under
fixed dosing). :func:`check_dosable` refuses such a window whatever its status says (a status
edited by hand to ``validated`` does not help), and whatever signature it carries: the rule reads
only the bounds and the search's ``finding``. :class:`ml.dosing.DosingEngine` calls it before every
recommendation, :class:`ml.dosing.DoseRecommendation` re-checks it on construction, and
:func:`ml.dosing.admit_window` (the gate of the served model) calls it too.
"""

from __future__ import annotations

from ._errors import DosingRefused

__all__ = ["DOSABLE_FINDING", "check_dosable", "dosable_problem"]

#: the only benefit-harm finding that can be dosed into: a floor and a ceiling
DOSABLE_FINDING = "window"


def dosable_problem(window) -> str | None:
    """Why ``window`` cannot be dosed into, or None when it can.

    Parameters
    ----------
    window : WindowRecord
        Anything with ``lower``, ``upper`` (UE*day/mL, None = open), ``source`` and, optionally,
        ``finding`` (None or absent = not recorded, e.g. a window from before the benefit-harm
        search).

    Returns
    -------
    str or None
    """
    name = getattr(window, "source", "") or "(given)"
    finding = getattr(window, "finding", None)
    if finding is not None and finding != DOSABLE_FINDING:
        return (f"window {name} has finding {finding!r}, not {DOSABLE_FINDING!r}: only a two-sided window (a "
                "floor and a ceiling, each supported by its own evidence) can be dosed into, whatever its status")
    open_sides = [side for side, bound in (("lower", window.lower), ("upper", window.upper)) if bound is None]
    if open_sides:
        harm = {"lower": "below the floor (too little ATG)", "upper": "above the ceiling (too much ATG)"}
        return (f"window {name} is open ({' and '.join(open_sides)} bound None): the engine cannot weigh the "
                f"harm {' or '.join(harm[s] for s in open_sides)} and would drive exposure towards the open "
                "side; dose only into a window with both bounds")
    return None


def check_dosable(window) -> None:
    """Refuse a window that is open on a side, or whose ``finding`` is not ``"window"``.

    Raises
    ------
    DosingRefused
        With the message of :func:`dosable_problem`.
    """
    problem = dosable_problem(window)
    if problem is not None:
        raise DosingRefused(problem)
