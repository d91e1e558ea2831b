"""Plain words for a window: clinical names of endpoints and one sentence on what was found.

Shared by ``atgwin discover`` (console) and the reviewer's report, so that both say the same thing.
"""

from __future__ import annotations

from ml._format import fmt_bound, fmt_ci, fmt_p
from ml._status import WindowStatus

__all__ = ["ENDPOINT_LABELS", "endpoint_label", "window_sentence"]

#: Clinical names of the endpoints of the cohort contract (see :mod:`ml.features`).
ENDPOINT_LABELS: dict[str, str] = {
    "cmv": "CMV reactivation",
    "ebv": "EBV reactivation",
    "agvhd2": "acute GVHD grade II-IV",
    "agvhd3": "acute GVHD grade III-IV",
    "cgvhd": "chronic GVHD",
    "relapse": "relapse",
    "nrm": "non-relapse mortality",
    "os": "death",
    "death": "death",
    "dfs": "relapse or death",
}


def endpoint_label(endpoint) -> str:
    """Clinical name of an endpoint, a composite ``a|b`` or a sequence of endpoints.

    Examples
    --------
    >>> endpoint_label("cmv|ebv")
    'CMV or EBV reactivation'
    >>> endpoint_label(["agvhd2"])
    'acute GVHD grade II-IV'
    """
    if not isinstance(endpoint, str):
        return " or ".join(endpoint_label(e) for e in endpoint)
    parts = [p.strip().lower() for p in endpoint.split("|") if p.strip()]
    if parts and all(p in ("cmv", "ebv") for p in parts) and len(parts) > 1:
        return "CMV or EBV reactivation"
    return " or ".join(ENDPOINT_LABELS.get(p, p) for p in parts)


_v, _ci, _p = fmt_bound, fmt_ci, fmt_p


def window_sentence(window) -> str:
    """One sentence: what the window means and how sure we are (for the console and the report).

    Parameters
    ----------
    window : ExposureWindow
        Benefit-harm (``floor`` / ``ceiling`` evidence) or composite.

    Returns
    -------
    str
    """
    unit = window.unit
    f, c = window.floor, window.ceiling
    level = int(round(100 * window.ci_level))
    alpha = (window.search or {}).get("alpha", 0.05)
    if f is None or c is None:  # the composite two-cut search
        if window.status == WindowStatus.NO_WINDOW:
            return (f"No evidence of an exposure window for {endpoint_label(window.endpoint)}: adjusted p = "
                    f"{_p(window.p_value)} is not below alpha {alpha:g}.")
        return (f"Window [{_v(window.lower)}, {_v(window.upper)}) {unit}: patients inside have less "
                f"{endpoint_label(window.endpoint)} (lower bound {level}% CI {_ci(window.lower_ci)}, upper bound "
                f"{level}% CI {_ci(window.upper_ci)}, adjusted p {_p(window.p_value)}).")
    if window.finding == "window":
        return (f"Window [{_v(window.lower)}, {_v(window.upper)}) {unit}: below {_v(window.lower)} "
                f"{endpoint_label(f.endpoints)} rises (floor {level}% CI {_ci(window.lower_ci)}, adjusted p "
                f"{_p(f.p_value)}); above {_v(window.upper)} {endpoint_label(c.endpoints)} rises (ceiling {level}% CI "
                f"{_ci(window.upper_ci)}, adjusted p {_p(c.p_value)}).")
    if window.finding in ("floor-only", "ceiling-only"):
        have, lack = (f, c) if window.finding == "floor-only" else (c, f)
        bound = window.lower if window.finding == "floor-only" else window.upper
        return (f"Only a {have.side}: {endpoint_label(have.endpoints)} rises "
                f"{'below' if have.side == 'floor' else 'above'} {_v(bound)} {unit} (adjusted p {_p(have.p_value)}); "
                f"{lack.reason}. Not a window to dose: the {lack.side} stays open.")
    if window.finding == "overlap":
        return (f"Overlap: the under-exposure harm ({endpoint_label(f.endpoints)}, best floor {_v(f.value)}) and the "
                f"over-exposure harm ({endpoint_label(c.endpoints)}, best ceiling {_v(c.value)}) are both evidenced, "
                f"but no exposure avoids both. This is a clinical finding, not an error.")
    return (f"No evidence of an exposure window: joint adjusted p = {_p(window.p_value)} is not below alpha "
            f"{alpha:g}.")
