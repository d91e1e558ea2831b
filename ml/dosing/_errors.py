"""The one exception the dosing engine raises when it will not recommend."""

from __future__ import annotations

__all__ = ["DosingRefused"]


class DosingRefused(ValueError):
    """The engine refuses to recommend a dose; the message says why.

    Raised for a window in another unit, a window that is not ``validated`` (without a recorded
    override), a ``no-window`` result, a patient without weight, lymphocyte count, unit or doses
    given, and any input that breaks the patient format. No recommendation is produced.
    """
