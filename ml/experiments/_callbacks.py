"""Hooks of ``run_experiment``: how a tracking server (or anything else) follows a run.

A callback is an object with three methods, called by :func:`ml.experiments.run_experiment` in
the order the callbacks were given:

* ``on_run_start(experiment, run_name=..., folder=...)`` before the first step; it may return a
  :class:`RunStart` naming the run it opened (its id is recorded in ``run.json``, the window
  artefact and the report);
* ``on_run_end(outcome)`` once the run folder is complete (the run FINISHED or FAILED);
* ``on_run_abort(folder, status=..., error=..., killed_by=...)`` when the run stops without a
  complete folder: interrupted (``KILLED``: SIGINT / SIGTERM, ``run.json`` already says so), the
  folder could not be written any more, or an unexpected error (``FAILED``). The exception is
  raised again afterwards.

:class:`RunCallback` does nothing in each; subclass it and override what is needed.
``ml.tracking.MLflowCallback`` is the MLflow one (``ml/tracking/_callback.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RunCallback", "RunStart"]


@dataclass(frozen=True)
class RunStart:
    """The run a callback opened for this experiment run.

    Attributes
    ----------
    run_id : str
        Its id (e.g. an MLflow run id).
    tracking : Mapping
        Where it is tracked (``tracking_uri``, ``experiment``), for ``run.json``.
    """

    run_id: str
    tracking: Mapping = field(default_factory=dict)


class RunCallback:
    """Base class of the hooks of :func:`ml.experiments.run_experiment` (each does nothing)."""

    def on_run_start(self, experiment, *, run_name: str, folder: Path) -> RunStart | None:
        """Called before the first step.

        Parameters
        ----------
        experiment : Experiment
        run_name : str
        folder : pathlib.Path
            The run folder (created; nothing written in it yet).

        Returns
        -------
        RunStart or None
            The run this callback opened, if any.
        """
        return None

    def on_run_end(self, outcome) -> None:
        """Called once the run folder is complete (``outcome.status`` FINISHED or FAILED).

        Parameters
        ----------
        outcome : RunOutcome
        """

    def on_run_abort(self, folder: Path, *, status: str, error: str | None = None,
                     killed_by: str | None = None) -> None:
        """Called when the run stops without a complete folder; the exception is raised again after.

        Parameters
        ----------
        folder : pathlib.Path
        status : {"KILLED", "FAILED"}
        error : str, optional
            Why (a folder that cannot be written: the reason, in one line).
        killed_by : str, optional
            ``SIGINT`` or ``SIGTERM`` for a KILLED run.
        """
