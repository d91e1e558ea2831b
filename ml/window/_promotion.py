"""Gate-checked promotion of a candidate ``ExposureWindow`` to ``validated``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from ml._defaults import PROMOTION as _GATES
from ml._format import fmt_bound, fmt_ci, fmt_p
from ml._status import WindowStatus
from ml.window._artefact import ExposureWindow, _finite
from ml.window._integrity import SigningKey

__all__ = ["PromotionError", "PromotionGates", "promote_window", "run_finished_gate"]


class PromotionError(ValueError):
    """A window failed one or more promotion gates; ``failed`` lists them."""

    def __init__(self, failed: list[str]):
        self.failed = list(failed)
        super().__init__(f"promotion refused, {len(failed)} gate(s) failed: " + "; ".join(failed))


@dataclass(frozen=True)
class PromotionGates:
    """Conditions a candidate window must meet to become ``validated``.

    Attributes
    ----------
    alpha : float
        The adjusted p-value must be below it.
    max_ci_width : float
        Largest width of each bound's confidence interval, in the window's unit (UE*day/mL); the
        default 50 is justified in ``ml/_defaults.py`` (benchmark figures). An
        interval unbounded on either side fails, and so does an open bound: only a window with
        both bounds is safe to dose.
    min_events : int
        Smallest number of events of interest in the population and, for a benefit-harm window, on
        each side (floor and ceiling endpoints).
    """

    alpha: float = _GATES["alpha"]
    max_ci_width: float = _GATES["max_ci_width"]
    min_events: int = _GATES["min_events"]

    def __post_init__(self):
        if not (0 < self.alpha < 1):
            raise ValueError(f"`0 < alpha < 1` must hold, got alpha={self.alpha}")
        if not (_finite(self.max_ci_width) and self.max_ci_width > 0):
            raise ValueError(f"`max_ci_width > 0` must hold, got max_ci_width={self.max_ci_width}")
        if not (isinstance(self.min_events, int) and self.min_events >= 0):
            raise ValueError(f"`min_events >= 0` must hold, got min_events={self.min_events}")

    def check(self, window: ExposureWindow) -> tuple[list[str], list[str]]:
        """Evaluate every gate; return (passed, failed) descriptions."""
        passed, failed = [], []

        def gate(ok: bool, text: str):
            (passed if ok else failed).append(text)

        gate(window.status == WindowStatus.CANDIDATE, f"status is 'candidate' (got {window.status!r})")
        if window.search_kind == "protocol":
            return self._check_protocol(window, passed, failed, gate)
        gate(window.finding == "window", f"finding is 'window', both bounds evidenced (got {window.finding!r})")
        pv = window.p_value
        gate(pv is not None and pv < self.alpha, f"adjusted p-value {fmt_p(pv)} < alpha {self.alpha:g}")
        for name in ("lower", "upper"):
            bound, ci = getattr(window, name), getattr(window, f"{name}_ci")
            if bound is None:
                gate(False, f"{name} bound is finite (it is open: a window is safe to dose only with both bounds)")
                continue
            if ci is None or ci[0] is None or ci[1] is None:
                gate(False, f"{name} bound interval width <= {self.max_ci_width} {window.unit} "
                            f"(interval {'missing' if ci is None else 'unbounded'}: {fmt_ci(ci)})")
                continue
            width = ci[1] - ci[0]
            gate(width <= self.max_ci_width,
                 f"{name} bound interval width {width:.4g} <= {self.max_ci_width} {window.unit}")
        ev = window.population.events
        gate(ev >= self.min_events, f"events {ev} >= min_events {self.min_events}")
        for side in (window.floor, window.ceiling):
            if side is None:
                continue
            sp = side.p_value
            gate(sp is not None and sp < self.alpha,
                 f"{side.side} ({'|'.join(side.endpoints)}) adjusted p-value {fmt_p(sp)} < alpha {self.alpha:g}")
            gate(side.events >= self.min_events,
                 f"{side.side} ({'|'.join(side.endpoints)}) events {side.events} >= min_events {self.min_events}")
        return passed, failed


    @staticmethod
    def _check_protocol(window: ExposureWindow, passed, failed, gate) -> tuple[list[str], list[str]]:
        """A protocol window has no data behind it here: its gates are its bounds and its source."""
        gate(window.lower is not None and window.upper is not None,
             f"both bounds finite (lower {fmt_bound(window.lower)}, upper {fmt_bound(window.upper)})")
        p = window.protocol or {}
        gate(bool(p.get("publication")) and bool(p.get("pmid")),
             f"published source named (publication {p.get('publication')!r}, PMID {p.get('pmid')!r})")
        gate(p.get("unit") == window.unit, f"published unit {p.get('unit')!r} is the window's unit {window.unit!r}")
        return passed, failed


def run_finished_gate(window: ExposureWindow, run_status: Callable[[str], str] | None) -> tuple[bool, str]:
    """The gate "the run that wrote the window finished": ``(passed, description)``.

    A window that names no run (``mlflow_run_id`` None, e.g. a protocol window) passes. Otherwise
    ``run_status(run_id)`` (e.g. ``ml.tracking.RunTracker.run_status``) must answer ``FINISHED``; a
    run that failed, was killed, is still running, or cannot be looked up fails the gate.
    """
    run_id = window.mlflow_run_id
    if not run_id:
        return True, "run finished (the window names no run)"
    if run_status is None:
        return False, f"run {run_id} finished (no tracking store given to check it)"
    try:
        status = run_status(run_id)
    except Exception as exc:  # noqa: BLE001 - any lookup failure means the run cannot be confirmed
        return False, f"run {run_id} finished (cannot look it up: {str(exc).splitlines()[0][:200]})"
    return status == "FINISHED", f"run {run_id} finished (its status is {status})"


def promote_window(window: ExposureWindow, gates: PromotionGates, by: str, reason: str, *,
                   key: SigningKey | None = None,
                   run_status: Callable[[str], str] | None = None) -> ExposureWindow:
    """Return a ``validated`` copy of ``window`` if it passes every gate.

    Parameters
    ----------
    window : ExposureWindow
        A ``candidate`` window.
    gates : PromotionGates
    by : str
        Who promotes (recorded).
    reason : str
        Why (recorded).
    key : SigningKey, optional
        The centre's key: the validated copy carries an ``integrity`` record signed with it
        (:mod:`ml.window._integrity`). Without a key the copy is unsigned, and the dosing engine
        doses into it only under a recorded override.
    run_status : callable, optional
        ``run_status(run_id) -> str``, the status of the run that wrote the window; needed when
        the window names a run (:func:`run_finished_gate`).

    Raises
    ------
    PromotionError
        Listing every failing gate.
    ValueError
        If ``by`` or ``reason`` is empty.
    """
    if not (isinstance(by, str) and by.strip()):
        raise ValueError("`by` must name who promotes the window, got an empty value")
    if not (isinstance(reason, str) and reason.strip()):
        raise ValueError("`reason` must say why the window is promoted, got an empty value")
    passed, failed = gates.check(window)
    ok, text = run_finished_gate(window, run_status)
    (passed if ok else failed).append(text)
    if failed:
        raise PromotionError(failed)
    out = replace(window, status=WindowStatus.VALIDATED, gates_passed=tuple(passed), promoted_by=by.strip(),
                  promotion_reason=reason.strip(), integrity=None,
                  promoted_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return out if key is None else out.signed(key)
