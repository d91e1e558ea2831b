"""SIGTERM and SIGINT as one exception, so that an interrupted run can say it was KILLED.

Python turns SIGINT (Ctrl-C) into :class:`KeyboardInterrupt` but lets SIGTERM (``kill``, a batch
scheduler, ``docker stop``) end the process at once, with no ``finally`` and no chance to close
the MLflow run. Inside :func:`interrupts_raise`, both raise :class:`RunInterrupted` (a
``KeyboardInterrupt``) in the main thread, once: further signals while the interrupted command
cleans up (closing the run, writing ``run.json``) are noted and ignored, so that the cleanup
itself is not cut short. SIGKILL cannot be caught; ``atgwin runs repair`` finds what it leaves.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

__all__ = ["RunInterrupted", "interrupts_raise"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(KeyboardInterrupt):
    """The command received ``signal_name`` (``SIGINT`` or ``SIGTERM``).

    Attributes
    ----------
    signal_name : str
    exit_code : int
        ``128 + signal number``, the shell's convention (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, signum: int):
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + int(signum)
        super().__init__(f"interrupted by {self.signal_name}")


@contextmanager
def interrupts_raise():
    """SIGINT and SIGTERM raise :class:`RunInterrupted` in this block (main thread only).

    Outside the main thread (where Python cannot install handlers) the block runs with the
    process's handlers unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum, frame):
        if fired:  # already interrupting: let the cleanup finish
            return
        fired.append(signum)
        raise RunInterrupted(signum)

    previous = {s: signal.signal(s, handler) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
