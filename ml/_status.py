"""The status of an exposure window: one enum for the search, the registry, the report and dosing;
and how a window's content was checked when it was read.

Imports nothing of ``ml``, so every layer can use it without an import cycle.
"""

from __future__ import annotations

import enum

__all__ = ["INTEGRITY_CHECKS", "WindowStatus"]

#: How a window's content was checked when it was read (``ml.window.WindowOrigin.integrity``,
#: recorded in every recommendation): signature verified, registry digest matched, no check
#: possible, or built in code.
INTEGRITY_CHECKS = ("signed", "registered", "unsigned", "in-memory")


class WindowStatus(enum.StrEnum):
    """Where a window stands: found, promoted, or nothing to dose into.

    A ``StrEnum``: each member *is* its string (``WindowStatus.NO_WINDOW == "no-window"``), so
    comparisons with the plain strings, ``str()``, f-strings and JSON give the same as before the
    enum existed; ``repr`` is the string's repr, so messages quoting a status read the same too.

    Attributes
    ----------
    CANDIDATE : str
        ``"candidate"``: a window the search found (adjusted p-value below alpha), not yet promoted.
    VALIDATED : str
        ``"validated"``: a candidate that passed the promotion gates (:func:`ml.window.promote_window`);
        the only status the dosing engine doses into without a recorded override.
    NO_WINDOW : str
        ``"no-window"``: the search found no window (not significant, or floor and ceiling overlap);
        nothing can be dosed into it.
    """

    CANDIDATE = "candidate"
    VALIDATED = "validated"
    NO_WINDOW = "no-window"

    def __repr__(self) -> str:
        return repr(self.value)
