"""The run record: what ``results.json`` of a run folder holds, as one versioned, typed document.

A :class:`RunRecord` has one field per section the pipeline writes (cohort summary, population
PK model, exposure, models, window, SHAP, transport, ...) and a ``schema_version``. The pipeline
builds it step by step (:meth:`RunRecord.with_sections`), the run folder writes and reads it
(``ml.record.RunBundle.record``), and the report, the tracking publisher and the command
line read it through this class. Each section is JSON-shaped (dicts, lists, numbers, strings,
None), cleaned on construction (NaN and infinities become None, tuples lists, numpy scalars
Python numbers), so ``RunRecord.from_dict(r.to_dict()) == r``.

Versions: ``results.json`` files written before the field existed have no ``schema_version`` and
are read as version 1 (their content is the same). A file of a newer version than this code
knows is refused with :class:`RecordError`, naming both versions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

__all__ = ["SCHEMA_VERSION", "RecordError", "RunRecord", "jsonable"]

#: The version of ``results.json`` this code writes (and the newest it reads).
SCHEMA_VERSION = 1


class RecordError(ValueError):
    """A ``results.json`` document this code cannot read (newer schema, unknown section, not a table)."""


def jsonable(value):
    """JSON-safe copy: NaN / inf become None, tuples lists, numpy scalars Python numbers.

    Parameters
    ----------
    value : object
        Nested dicts, lists, tuples, numbers, strings or None.

    Returns
    -------
    object
        The same structure, with string keys, made only of JSON types.
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class RunRecord:
    """The numbers of one run (``results.json``), section by section; None = not recorded.

    Parameters
    ----------
    schema_version : int
        Version of this layout (:data:`SCHEMA_VERSION` when written by this code).
    validation : dict, optional
        The cohort check: ``ok``, ``violations``, ``warnings``, ``source``.
    cohort : dict, optional
        Aggregate description of the cohort (``ml.experiments._steps.cohort_summary``).
    poppk : dict, optional
        The population PK model the exposure was computed under (``PKModelResult.summary``).
    exposure : dict, optional
        Quantiles of exposure (exposure unit, e.g. UE*day/mL) and the exclusions by reason.
    models : dict, optional
        The tuned XGBoost and Cox spline models per endpoint, with repeated-CV metrics.
    window : dict, optional
        The window found (bounds in the exposure unit, intervals, p-values, effect) and its
        artefact (``artefact``: ``ExposureWindow.to_dict()``).
    incidences : list of dict, optional
        Cumulative incidences below / inside / above the window.
    truth : dict, optional
        A simulated cohort's true window (``ml.sim``); never present for real data.
    side_incidences : dict, optional
        Per side of a benefit-harm window: its endpoint's incidences at the side's horizon.
    shap : dict, optional
        SHAP bounds per side beside the scan's.
    transport : dict, optional
        The window evaluated on, and re-derived in, another cohort.
    transport_truth, transport_side_incidences : dict, optional
        ``truth`` and ``side_incidences`` of the transport cohort's own window.
    """

    schema_version: int = SCHEMA_VERSION
    validation: dict | None = None
    cohort: dict | None = None
    poppk: dict | None = None
    exposure: dict | None = None
    models: dict | None = None
    window: dict | None = None
    incidences: list | None = None
    truth: dict | None = None
    side_incidences: dict | None = None
    shap: dict | None = None
    transport: dict | None = None
    transport_truth: dict | None = None
    transport_side_incidences: dict | None = None

    #: The section names, in the order of the pipeline.
    SECTIONS: ClassVar[tuple[str, ...]] = (
        "validation", "cohort", "poppk", "exposure", "models", "window", "incidences", "truth", "side_incidences",
        "shap", "transport", "transport_truth", "transport_side_incidences")

    def __post_init__(self):
        for name in self.SECTIONS:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, jsonable(value))

    # ------------------------------------------------------------------------------- reading
    @classmethod
    def from_dict(cls, data: dict, *, source: str = "results.json") -> RunRecord:
        """Read a record from its JSON form.

        Parameters
        ----------
        data : dict
            The parsed ``results.json`` (``{}``: an empty record).
        source : str
            Where it came from, for messages.

        Returns
        -------
        RunRecord

        Raises
        ------
        RecordError
            ``data`` is not a table, its ``schema_version`` is newer than :data:`SCHEMA_VERSION`
            or not a positive integer, or it has sections this version does not know.
        """
        if not isinstance(data, dict):
            raise RecordError(f"{source}: expected a JSON object (the run record), got {type(data).__name__}")
        version = data.get("schema_version", 1)  # written before the field existed: version 1
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise RecordError(f"{source}: schema_version must be a positive integer, got {version!r}")
        if version > SCHEMA_VERSION:
            raise RecordError(f"{source}: run record schema_version {version} is newer than this version of atgwin "
                              f"reads (schema_version {SCHEMA_VERSION}); upgrade atgwin to read it")
        unknown = sorted(set(data) - {"schema_version", *cls.SECTIONS})
        if unknown:
            raise RecordError(f"{source}: unknown section(s) {unknown} for schema_version {version}; known: "
                              f"{list(cls.SECTIONS)}")
        return cls(schema_version=SCHEMA_VERSION, **{k: data[k] for k in cls.SECTIONS if k in data})

    def to_dict(self) -> dict:
        """The JSON form: ``schema_version`` and every recorded section (None sections left out)."""
        out = {"schema_version": self.schema_version}
        out.update({name: getattr(self, name) for name in self.SECTIONS if getattr(self, name) is not None})
        return out

    def section(self, name: str):
        """One section by name (None when not recorded).

        Raises
        ------
        KeyError
            ``name`` is not a section of the record.
        """
        if name not in self.SECTIONS:
            raise KeyError(f"no section {name!r} in a run record; known: {list(self.SECTIONS)}")
        return getattr(self, name)

    def with_sections(self, **sections) -> RunRecord:
        """A copy with ``sections`` recorded (each replacing the section of that name).

        Raises
        ------
        KeyError
            A name that is not a section of the record.
        """
        unknown = sorted(set(sections) - set(self.SECTIONS))
        if unknown:
            raise KeyError(f"no section(s) {unknown} in a run record; known: {list(self.SECTIONS)}")
        return replace(self, **sections) if sections else self

    # ------------------------------------------------------------------------ typed views
    @property
    def simulated(self) -> bool | None:
        """Whether the cohort was a virtual one (``ml.sim``); None before the cohort step."""
        return None if self.cohort is None else bool(self.cohort.get("simulated", False))

    @property
    def window_status(self) -> str | None:
        """The window's status (``candidate``, ``no-window``, ...); None without a window."""
        return None if self.window is None else self.window.get("status")

