"""``atgwin run`` stopped at a chosen point, for the fault tests (tests/test_run_faults.py).

:func:`install` patches, in this process only:

* ``pause``: at the start of pipeline step STEP (``cohort`` ... ``report``), or at ``track`` (after the
  run's parameters, metrics and tags are sent, before its artefacts), write MARKER (the process id)
  and then either wait up to 120 s for a signal from outside (``wait``) or send this process
  SIGNAL itself (``self``);
* ``light``: the models, window and explain steps are replaced by stand-ins that record the step
  and return nothing (what a fault test checks is the run's state, not the statistics; the real
  steps are covered by tests/test_run_pipeline.py). The cohort, poppk, exposure and report
  steps stay real.

As a script (for a separate process that can be SIGKILLed)::

    python tests/fault_driver.py {STEP|none} MARKER {light|real} -- run EXPERIMENT.toml --out-dir ...
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace

STAND_INS = ("models", "window", "explain")


def _pause(marker: str, mode: str) -> None:
    Path(marker).write_text(str(os.getpid()))
    if mode == "wait":
        time.sleep(120)
        raise RuntimeError("fault_driver: no signal came within 120 s")
    signum = getattr(signal, mode)
    handler = signal.getsignal(signum)
    if not callable(handler) or handler is signal.default_int_handler:
        raise AssertionError(f"atgwin run installed no handler for {mode}")
    os.kill(os.getpid(), signum)
    time.sleep(5)  # the handler raises at the next bytecode; this is never reached when it works
    raise AssertionError(f"{mode} did not interrupt the run")


def install(step: str | None, marker: str | Path | None = None, *, light: bool = True, mode: str = "wait",
            setattr=setattr) -> None:
    """Patch the pipeline (see the module docstring).

    ``step`` None: no pause (only the stand-ins); ``mode``: ``wait`` or a signal name; ``setattr``:
    e.g. pytest's ``monkeypatch.setattr``, so that the patches are undone after a test.
    """
    from ml.experiments import StepResult, _pipeline
    from ml.tracking import RunTracker

    marker = str(marker)
    original = _pipeline._Steps.run

    def run(self, name, fn, *args, note=None, **kwargs):
        if name == step:
            return original(self, name, lambda *a, **k: _pause(marker, mode), note=None)
        if light and name in STAND_INS:
            out = StepResult(value=SimpleNamespace(study=None, window=None))
            return original(self, name, lambda *a, **k: out, note=lambda _: "(stand-in)")
        return original(self, name, fn, *args, note=note, **kwargs)

    setattr(_pipeline._Steps, "run", run)
    if step == "track":
        log_folder = RunTracker.log_folder

        def paused(self, run_id, folder, artifact_path=None):
            _pause(marker, mode)
            return log_folder(self, run_id, folder, artifact_path)

        setattr(RunTracker, "log_folder", paused)


if __name__ == "__main__":
    step, marker, how, sep, *args = sys.argv[1:]
    assert sep == "--", sys.argv
    install(None if step == "none" else step, marker, light=how == "light")
    from ml.cli import main

    main(args, prog_name="atgwin")
