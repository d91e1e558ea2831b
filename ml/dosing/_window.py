"""Reading the exposure window for dosing, and the checks before it is used.

The engine takes one shape of window, the artefact :class:`ml.window.ExposureWindow`, and never
the code that made it. :func:`load_window` reads a file (:func:`ml.tracking.load_window_source`
also a ``models:/`` URI) and records where it was read and how its content was checked in the
window's :class:`~ml.window.WindowOrigin`. :func:`admit_window` is the gate every recommendation
passes: unit, status and override. :class:`WindowRecord` is what each recommendation records of
the window it was dosed into (bounds, target, unit, status, provenance); the engine makes it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ml._status import INTEGRITY_CHECKS, WindowStatus
from ml.cohort._model import exposure_unit

from ._errors import DosingRefused
from ._gates import check_dosable

__all__ = ["WindowOverride", "WindowRecord", "admit_window", "check_status", "check_units", "load_window",
           "model_mismatch", "window_from_dict", "window_pk_model", "with_model_file"]

_STATUSES = tuple(WindowStatus)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class WindowOverride:
    """An explicit, recorded decision to dose into a window that is not ``validated``.

    Attributes
    ----------
    by : str
        Who takes the decision (recorded in every recommendation).
    reason : str
        Why (recorded in every recommendation).
    """

    by: str
    reason: str

    def __post_init__(self) -> None:
        for name in ("by", "reason"):
            value = getattr(self, name)
            if not (isinstance(value, str) and value.strip()):
                raise ValueError(f"an override must state `{name}` (non-empty text), got {value!r}")

    def to_dict(self) -> dict:
        return {"by": self.by, "reason": self.reason}


@dataclass(frozen=True)
class WindowRecord:
    """What a recommendation records of the window it was dosed into.

    Not an input: the engine takes an :class:`ml.window.ExposureWindow` and makes this record
    with :meth:`of`, its one conversion (the artefact's bounds, target, unit, status and
    provenance, and the window's :class:`~ml.window.WindowOrigin`). It is the ``window`` of every
    :class:`~ml.dosing.DoseRecommendation` and of its JSON; :meth:`from_dict` reads it back.

    Attributes
    ----------
    lower, upper : float or None
        The window ``[lower, upper)``, in ``unit`` (UE*day/mL); None = open on that side.
    target : float
        Best exposure inside the window (tie-break of the dose choice), ``unit``.
    unit : str
        Exposure unit, e.g. ``"UE*day/mL"``; must be the patient's concentration unit x day.
    status : {"candidate", "validated", "no-window"}
    source : str
        Where the window was read from (file path or ``models:/`` URI).
    dataset_digest : str
        Digest of the cohort the window was learned on ("" when unknown).
    simulated : bool
        True when the window was derived from a virtual cohort.
    exposure : str
        Exposure variable (``auc_total``).
    finding : str or None
        What the benefit-harm search found (``window``, ``floor-only``, ...; None = not recorded);
        only ``window`` can be dosed into (:func:`ml.dosing._gates.check_dosable`).
    pk_model : dict or None
        ``{"name", "digest", "source"}`` of the population PK model that defined the window's
        exposure (None: the window does not say, e.g. NCA or an older window).
    model_file : str
        Where that model's file was found when the window was loaded (a local path; "" when
        none). Not part of :meth:`to_dict`.
    protocol : str
        For a window taken from a publication (a protocol window), where it comes from; "" for a
        window derived from data.
    integrity : {"signed", "registered", "unsigned", "in-memory"}
        How the window's content was checked when it was read (:mod:`ml.window._integrity`):
        its signature verified with the centre's key (``signed``), its digest matched the one the
        model registry recorded (``registered``), no check possible (``unsigned``: no signature, or
        no key configured; a ``validated`` window is then dosed only under an override), or built
        in code rather than read from a file (``in-memory``, the default).
    """

    lower: float | None
    upper: float | None
    target: float
    unit: str
    status: str
    source: str = ""
    dataset_digest: str = ""
    simulated: bool = False
    exposure: str = "auc_total"
    finding: str | None = None
    pk_model: dict | None = None
    model_file: str = field(default="", repr=False, compare=False)
    protocol: str = ""
    integrity: str = "in-memory"

    def __post_init__(self) -> None:
        problems = []
        for name in ("lower", "upper"):
            v = getattr(self, name)
            if v is not None and not _is_number(v):
                problems.append(f"`{name}` must be a finite number or None (open), got {v!r}")
        lo, up = self.lower, self.upper
        if not problems and lo is None and up is None:
            problems.append("at least one of `lower`, `upper` must be given, got both None")
        if not problems and lo is not None and up is not None and not lo < up:
            problems.append(f"`lower < upper` must hold, got lower={lo}, upper={up}")
        if not _is_number(self.target):
            problems.append(f"`target` must be a finite number, got {self.target!r}")
        elif not problems and ((lo is not None and self.target < lo) or (up is not None and self.target >= up)):
            problems.append(f"`lower <= target < upper` must hold, got lower={lo}, target={self.target}, upper={up}")
        if not (isinstance(self.unit, str) and self.unit.strip()):
            problems.append(f"`unit` must be a non-empty string, got {self.unit!r}")
        if self.status not in _STATUSES:
            problems.append(f"`status` must be one of {_STATUSES}, got {self.status!r}")
        if self.integrity not in INTEGRITY_CHECKS:
            problems.append(f"`integrity` must be one of {INTEGRITY_CHECKS}, got {self.integrity!r}")
        if self.exposure != "auc_total":
            problems.append(f"`exposure` must be 'auc_total' (the engine forecasts total AUC), got {self.exposure!r}")
        if problems:
            raise DosingRefused("invalid window: " + "; ".join(problems))
        object.__setattr__(self, "lower", None if lo is None else float(lo))
        object.__setattr__(self, "upper", None if up is None else float(up))
        object.__setattr__(self, "target", float(self.target))

    @property
    def bounds(self) -> tuple[float, float]:
        """``(lower, upper)`` with open sides as ``-inf`` / ``inf``, UE*day/mL."""
        return (-math.inf if self.lower is None else self.lower,
                math.inf if self.upper is None else self.upper)

    def contains(self, exposure: float) -> bool:
        """True when ``lower <= exposure < upper``."""
        lo, up = self.bounds
        return lo <= exposure < up

    def to_dict(self) -> dict:
        return {"lower": self.lower, "upper": self.upper, "target": self.target, "unit": self.unit,
                "status": self.status, "source": self.source, "dataset_digest": self.dataset_digest,
                "simulated": self.simulated, "exposure": self.exposure, "finding": self.finding,
                "pk_model": None if self.pk_model is None else dict(self.pk_model), "protocol": self.protocol,
                "integrity": self.integrity}

    @classmethod
    def from_dict(cls, data: dict) -> "WindowRecord":
        return cls(**{k: data[k] for k in ("lower", "upper", "target", "unit", "status", "source",
                                           "dataset_digest", "simulated", "exposure", "finding", "pk_model",
                                           "protocol", "integrity")
                      if k in data})

    @classmethod
    def of(cls, window) -> "WindowRecord":
        """The record of an :class:`ml.window.ExposureWindow` (with its origin).

        A ``no-window`` artefact is refused here: there is nothing to dose into.

        Raises
        ------
        TypeError
            ``window`` is not an ``ExposureWindow``.
        DosingRefused
            A ``no-window`` artefact, or one the record cannot hold.
        """
        from ml.window import ExposureWindow

        if not isinstance(window, ExposureWindow):
            raise TypeError(f"window must be an ml.window.ExposureWindow, got {type(window).__name__} (read a file or "
                            "a models:/ URI with ml.tracking.load_window_source, or ml.dosing.load_window for a file)")
        origin = window.origin
        if window.status == WindowStatus.NO_WINDOW:
            raise _no_window(origin.source)
        return cls(lower=window.lower, upper=window.upper, target=window.target, unit=window.unit,
                   status=window.status, source=origin.source, dataset_digest=str(window.dataset_digest),
                   simulated=bool(window.simulated), exposure=str(window.exposure), finding=window.finding,
                   pk_model=_pk_record(window.pk_model), model_file=origin.model_file,
                   protocol=_protocol_text(window.protocol), integrity=origin.integrity)


def _no_window(source: str) -> DosingRefused:
    return DosingRefused(f"window {source or '(given)'} has status 'no-window': the search found no exposure "
                         "window, so there is nothing to dose into")


def _record(window) -> "WindowRecord":
    """The engine's record of ``window`` (an ``ExposureWindow``; a record made already passes through)."""
    return window if isinstance(window, WindowRecord) else WindowRecord.of(window)


def _protocol_text(protocol: dict | None) -> str:
    if not protocol:
        return ""
    return (f"{protocol.get('publication', '?')} (PMID {protocol.get('pmid', '?')}; {protocol.get('population', '?')}), "
            f"entered by {protocol.get('entered_by', '?')}")


def load_window(source: str | Path):
    """Read a window from an ``ExposureWindow`` JSON file.

    The file is validated by :meth:`ExposureWindow.from_dict` (the artefact's own checks) and its
    integrity is checked (:func:`window_integrity`); the window's ``origin`` records the file, the
    check and where its population PK model file is. Registry URIs (``models:/NAME@ALIAS``) are
    resolved at the edge, by :func:`ml.tracking.load_window_source`, which also reads files
    through this function.

    Returns
    -------
    ml.window.ExposureWindow

    Raises
    ------
    DosingRefused
        Unreadable file, invalid artefact, status ``no-window``, or a registry URI.
    """
    text = str(source)
    if text.startswith(("models:/", "runs:/")):
        raise DosingRefused(f"{text} is an MLflow URI, not a window file: read it with "
                            "ml.tracking.load_window_source (atgwin dose --window accepts both)")
    path = Path(source)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise DosingRefused(f"cannot read window file {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise DosingRefused(f"window file {path} is not valid JSON: {exc}") from exc
    return with_model_file(window_from_dict(data, str(path)), path.parent)


def _pk_record(value) -> dict | None:
    if value is None:
        return None
    if not (isinstance(value, dict) and all(isinstance(value.get(k), str) and value.get(k)
                                            for k in ("name", "digest", "source"))):
        raise DosingRefused(f"invalid window: `pk_model` must be an object with non-empty name, digest and source, "
                            f"got {value!r}")
    return {k: value[k] for k in ("name", "digest", "source")}


def with_model_file(window, folder: Path):
    """The window (an ``ExposureWindow``) with ``origin.model_file`` set: its ``pk_model.source``
    resolved against ``folder`` (the window file's folder) when it names a file."""
    rec = window.pk_model
    if rec is None or rec["source"] == "shipped" or ":/" in rec["source"]:
        return window
    path = Path(rec["source"])
    path = path if path.is_absolute() else Path(folder) / path
    return window.with_origin(model_file=str(path))


def window_pk_model(window):
    """The population PK model that defined the window's exposure (None when the window names none).

    Parameters
    ----------
    window : ml.window.ExposureWindow
        Loaded by :func:`load_window` (file; the model file is found relative to it) or by
        :func:`ml.tracking.load_window_source` (registry: the model travels in the same model
        version, or is downloaded from the URI the window names), which sets ``origin.model_file``.

    Returns
    -------
    ml.pk.PopPKModel or None

    Raises
    ------
    DosingRefused
        The window names a model that cannot be found or read, or whose content digest is not
        the one the window recorded (the file was changed): give ``--model`` to choose one.
    """
    from ml.pk import PopPKModel

    window = _record(window)
    rec = window.pk_model
    if rec is None:
        return None
    src = rec["source"]
    where = f"window {window.source or '(given)'} names population PK model {rec['name']!r} ({src})"
    try:
        if src == "shipped":
            model = PopPKModel.default()
        elif window.model_file and Path(window.model_file).is_file():
            model = PopPKModel.from_file(window.model_file)
        elif ":/" in src:
            raise DosingRefused(f"{where}, which was not resolved: read the window with "
                                "ml.tracking.load_window_source, or give the model with --model")
        else:
            raise DosingRefused(f"{where} but the file is not found"
                                + (f" at {window.model_file}" if window.model_file else "")
                                + "; give the model with --model")
    except (OSError, ValueError, KeyError) as exc:
        raise DosingRefused(f"{where} but it cannot be read: {exc}; give the model with --model") from exc
    if model.digest != rec["digest"]:
        raise DosingRefused(f"{where} with digest {rec['digest'][:12]}, but the file found has digest "
                            f"{model.digest[:12]} (it was changed); give the model with --model")
    return model


def model_mismatch(window, model) -> str | None:
    """The warning when dosing uses another population model than the one that defined the window's exposure.

    Parameters
    ----------
    window : ml.window.ExposureWindow
    model : ml.pk.PopPKModel
        The model the doses are forecast under.

    Returns
    -------
    str or None
        None when the window names no model, or the digests agree.
    """
    rec = _record(window).pk_model
    if rec is None or rec["digest"] == model.digest:
        return None
    return (f"population PK model mismatch: the window's exposure was defined under {rec['name']!r} (digest "
            f"{rec['digest'][:12]}) but the doses are forecast under {model.name!r} (digest {model.digest[:12]}); "
            "the forecast AUC may not be on the scale of the window's bounds")


def window_integrity(data: dict, source: str, registered_digest: str | None = None) -> str:
    """Check a window dict read from a file or the registry; return its ``origin.integrity``.

    The signature is checked with the centre's key (:meth:`ml.window.SigningKey.from_env`); when the
    registry recorded a digest for the version (``registered_digest``) the content must match it too.

    Raises
    ------
    DosingRefused
        The content changed since it was signed or registered (naming the fields), the record was
        edited or signed with another key, or the key configured here cannot be read. Never
        overridable.
    """
    from ml.window import IntegrityError, SigningKey, check_registered, verify_window

    try:
        key = SigningKey.from_env()
        status = verify_window(data, key)
    except IntegrityError as exc:
        raise DosingRefused(f"window {source} fails its integrity check: {exc}; it is not dosed (re-promote "
                            "the window from its run rather than editing it)") from exc
    except ValueError as exc:
        raise DosingRefused(f"window {source}: {exc}") from exc
    try:
        check_registered(data, registered_digest, source)
    except IntegrityError as exc:
        raise DosingRefused(f"window {source} fails its integrity check: {exc}") from exc
    if registered_digest:
        return "registered" if status == "unsigned" else status
    return status


def window_from_dict(data: dict, source: str, registered_digest: str | None = None):
    """Validate an ``ExposureWindow`` dict through the artefact class, then check its integrity
    (:func:`window_integrity`).

    Returns
    -------
    ml.window.ExposureWindow
        With ``origin`` = (``source``, the integrity check's result).

    Raises
    ------
    DosingRefused
        Not an object, status ``no-window``, not a valid artefact, or a failed integrity check.
    """
    if not isinstance(data, dict):
        raise DosingRefused(f"window {source} must be a JSON object, got {type(data).__name__}")
    if data.get("status") == WindowStatus.NO_WINDOW:
        raise _no_window(source)
    from ml.window import ExposureWindow

    try:
        artefact = ExposureWindow.from_dict(data)
    except (TypeError, ValueError, KeyError) as exc:
        raise DosingRefused(f"window {source} is not a valid ExposureWindow: {exc}") from exc
    window = artefact.with_origin(source=source)
    WindowRecord.of(window)  # what dosing reads of it must hold (pk_model, exposure)
    return window.with_origin(integrity=window_integrity(data, source, registered_digest))


def check_units(window, concentration_unit: str, model_unit: str) -> None:
    """Refuse unless the window's unit is the patient's concentration unit x day and the population
    model is in the patient's unit.

    Parameters
    ----------
    window : ml.window.ExposureWindow
    concentration_unit : str
        Unit of the patient's levels (e.g. ``"UE/mL"``).
    model_unit : str
        Concentration unit of the population PK model.

    Raises
    ------
    DosingRefused
    """
    window = _record(window)
    expected = exposure_unit(concentration_unit)
    if window.unit != expected:
        raise DosingRefused(
            f"unit mismatch: the window is in {window.unit!r} but the patient's levels are in "
            f"{concentration_unit!r} (exposure unit {expected!r}); assays cannot be converted into each other")
    if model_unit != concentration_unit:
        raise DosingRefused(
            f"unit mismatch: the population PK model is in {model_unit!r} but the patient's levels are in "
            f"{concentration_unit!r}")


def check_status(window, override: WindowOverride | None) -> WindowOverride | None:
    """Refuse a ``no-window`` result, and a window that is not ``validated`` without an override.

    Parameters
    ----------
    window : ml.window.ExposureWindow
    override : WindowOverride or None

    Returns
    -------
    WindowOverride or None
        The override to record: only when it was needed.

    Raises
    ------
    DosingRefused
    """
    window = _record(window)  # a no-window artefact is refused by the conversion, with the same message
    if window.status == WindowStatus.NO_WINDOW:
        raise _no_window(window.source)
    if window.status == WindowStatus.VALIDATED and window.integrity != "unsigned":
        return None
    if override is None and window.status == WindowStatus.VALIDATED:
        raise DosingRefused(
            f"window {window.source or '(given)'} says 'validated' but its content cannot be checked: it carries no "
            "signature, or no signing key is configured here (set ATGWIN_SIGNING_KEY or ATGWIN_SIGNING_KEY_FILE to "
            "the centre's key, and promote with it); dose into it only with an explicit override stating who and why")
    if override is None:
        raise DosingRefused(
            f"window status is {window.status!r}, not 'validated': promote it (atgwin promote) or give an "
            "explicit override stating who and why")
    return override


def admit_window(window, concentration_unit: str, model_unit: str,
                 override: WindowOverride | None) -> WindowOverride | None:
    """The gate before any recommendation: ``no-window``, then units, then status and override.

    Parameters
    ----------
    window : ml.window.ExposureWindow
    concentration_unit : str
        Unit of the patient's levels (e.g. ``"UE/mL"``).
    model_unit : str
        Concentration unit of the population PK model.
    override : WindowOverride or None
        Needed (and then recorded) when the window is not ``validated``.

    Returns
    -------
    WindowOverride or None
        The override to record: only when it was needed.

    Raises
    ------
    DosingRefused
        ``no-window``, a window open on a side or whose finding is not ``window`` (never
        overridable), unit mismatch (never overridable), or a non-validated window without an
        override.
    """
    if window.status == WindowStatus.NO_WINDOW:
        check_status(window, override)
    window = _record(window)
    check_dosable(window)
    check_units(window, concentration_unit, model_unit)
    return check_status(window, override)
