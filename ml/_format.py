"""Plain-text formatting of estimates, shared by the command line and the window's description.

Imports nothing, so ``atgwin --help`` stays fast.
"""

from __future__ import annotations

import math


def fmt_bound(value, digits: int = 1) -> str:
    """A bound in its unit, or ``open`` for a bound left open (None)."""
    return "open" if value is None else f"{value:.{digits}f}"


def fmt_ci(ci) -> str:
    """An interval ``[low, high]``; None inside means unbounded on that side."""
    if ci is None:
        return "(no interval)"
    lo = "-inf" if ci[0] is None else f"{ci[0]:.1f}"
    hi = "+inf" if ci[1] is None else f"{ci[1]:.1f}"
    return f"[{lo}, {hi}]"


def fmt_p(p) -> str:
    """A p-value to three significant digits (scientific below 1e-4); ``-`` when missing."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    return f"{p:.3g}" if p >= 1e-4 else f"{p:.1e}"
