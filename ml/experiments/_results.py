"""What one step of ``run_experiment`` receives and returns.

Every step of the pipeline is a function ``step(ctx, *, inputs...) -> StepResult``: it receives
the run's :class:`StepContext` and the values of earlier steps by keyword, writes its tables and
figures to the run folder, and returns a :class:`StepResult` that knows what it recorded: the
sections of the run record (``results.json``), its parameters and metrics (sent to the tracking
server), its figures and the fields it adds to ``run.json``. The pipeline merges them in step
order; no step writes into another's dictionaries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["FigureRef", "StepContext", "StepFailed", "StepResult"]


class StepFailed(RuntimeError):
    """A step of the pipeline failed; ``step`` names it, ``details`` lists what went wrong.

    Parameters
    ----------
    step : str
    message : str
    details : list of str, optional
        One line per problem (e.g. every violation of a refused cohort).
    record : dict, optional
        Sections of the run record the failed step still recorded (e.g. ``validation``).
    """

    def __init__(self, step: str, message: str, details: list[str] | None = None, *, record: dict | None = None):
        self.step = step
        self.details = list(details or [])
        self.record = dict(record or {})
        super().__init__(f"step {step!r} failed: {message}")


@dataclass(frozen=True)
class StepContext:
    """What every step of one run shares (read-only).

    Attributes
    ----------
    experiment : Experiment
    bundle : RunBundle
        The run folder.
    seed : int
        The experiment's seed (tuning, folds, permutations, bootstrap).
    run_id : str or None
        The tracking run's id, recorded in the window artefact.
    progress : bool
        tqdm bars inside long steps (terminal only).
    """

    experiment: object
    bundle: object
    seed: int
    run_id: str | None = None
    progress: bool = False


@dataclass(frozen=True)
class FigureRef:
    """A figure a step saved: ``figures/<name>.png``, indexed in ``figures/index.json``."""

    name: str
    title: str
    section: str = ""

    @property
    def file(self) -> str:
        return f"figures/{self.name}.png"


def _frozen(mapping) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class StepResult:
    """What one step produced and recorded.

    Attributes
    ----------
    value : object
        The step's result for the later steps (a cohort, ``PKModelResult``, ``CohortData``,
        ``ModelsResult``, ``WindowResult``, ``ShapResult``, ``TransportResult``, the report path).
    record : Mapping
        Sections of the run record (``RunRecord`` field name -> JSON-shaped value).
    params : Mapping of str to str
        Tracking parameters (settings and ``get_params()`` of the step's estimators).
    metrics : Mapping of str to float
        Tracking metrics (window bounds in the exposure unit, p-values, CV metrics, ...).
    figures : tuple of FigureRef
        The figures the step saved, in order.
    manifest : Mapping
        Fields the step sets in ``run.json`` (``simulated``, ``dataset``).
    warnings : tuple of str
        Warnings for the reader, appended to ``run.json`` ``warnings``.
    """

    value: object = None
    record: Mapping = field(default_factory=dict)
    params: Mapping = field(default_factory=dict)
    metrics: Mapping = field(default_factory=dict)
    figures: tuple = ()
    manifest: Mapping = field(default_factory=dict)
    warnings: tuple = ()

    def __post_init__(self):
        for name in ("record", "params", "metrics", "manifest"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        object.__setattr__(self, "figures", tuple(self.figures))
        object.__setattr__(self, "warnings", tuple(self.warnings))
