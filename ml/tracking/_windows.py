"""Window sources resolved at the edge: a file or a registry URI becomes the window the engine doses into.

:func:`load_window_source` is the one place where ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``
and ``runs:/...`` are turned into the checked :class:`ml.window.ExposureWindow`, whose
:class:`~ml.window.WindowOrigin` says where it was read and how its content was verified. The
dosing engine itself only ever receives that object, never a URI, so :mod:`ml.dosing` does not
import MLflow.
"""

from __future__ import annotations

import json
from pathlib import Path

from ml.dosing import DosingRefused, load_window, window_from_dict, with_model_file
from ml.pk import PopPKModel
from ml.tracking._registry import WINDOW_DIGEST_TAG, parse_model_ref
from ml.tracking._uri import fluent_uri, quiet, resolve_tracking_uri

__all__ = ["is_registry_uri", "load_registered_pk_model", "load_registered_window", "load_window_source",
           "registered_digest", "registered_window_file"]

_SCHEMES = ("models:/", "runs:/")


def is_registry_uri(source) -> bool:
    """True for ``models:/...`` and ``runs:/...`` (an MLflow URI), False for a file path."""
    return str(source).startswith(_SCHEMES)


def load_window_source(source: str | Path, tracking_uri: str | None = None):
    """The window named by a file path or an MLflow URI, checked and ready for the dosing engine.

    Parameters
    ----------
    source : str or Path
        ``ExposureWindow`` JSON file, or ``models:/NAME@ALIAS`` / ``models:/NAME/VERSION`` /
        ``runs:/RUN_ID/PATH``.
    tracking_uri : str, optional
        Tracking / registry store for URIs (default: ``MLFLOW_TRACKING_URI``, else
        ``sqlite:///mlflow.db``).

    Returns
    -------
    ml.window.ExposureWindow
        Its ``origin`` holds the source, the integrity check's result and ``model_file``, set when
        the population PK model the window names was found (beside the file, in the registered
        version, or downloaded from the URI the window names).

    Raises
    ------
    ml.dosing.DosingRefused
        Unreadable source, invalid artefact, failed integrity check, or status ``no-window``.
    """
    if is_registry_uri(source):
        window = load_registered_window(str(source), tracking_uri)
    else:
        window = load_window(source)
    return _with_registry_pk_model(window, tracking_uri)


def _with_registry_pk_model(window, tracking_uri: str | None):
    """Download the population PK model a window names by URI (``pk_model.source`` = ``models:/...``)."""
    rec = window.pk_model
    if rec is None or window.origin.model_file or ":/" not in rec["source"]:
        return window
    try:
        path = _download(rec["source"], tracking_uri, "population PK model")
    except DosingRefused:
        return window  # not needed when the model is given (--model); else window_pk_model says so
    files = [path] if path.is_file() else sorted(path.rglob("*.toml"))
    if len(files) != 1:
        return window  # ml.dosing.window_pk_model names the problem when the model is needed
    return window.with_origin(model_file=str(files[0]))


def _download(uri: str, tracking_uri: str | None, what: str) -> Path:
    import mlflow

    try:
        with fluent_uri(resolve_tracking_uri(tracking_uri)), quiet():
            return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds; all mean "cannot read"
        raise DosingRefused(f"cannot read {what} {uri}: {exc}") from exc


def registered_window_file(uri: str, tracking_uri: str | None = None) -> tuple[Path, str | None]:
    """Download the window behind an MLflow URI: its local JSON file and the digest the registry recorded.

    Raises
    ------
    ml.dosing.DosingRefused
        Unreadable URI or registry record, or not exactly one ``ExposureWindow`` JSON.
    """
    local = _download(uri, tracking_uri, "window")
    files = [local] if local.is_file() else sorted(local.rglob("*.json"))
    found = []
    for f in files:
        try:
            data = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and {"unit", "status", "target"} <= set(data):
            found.append(f)
    if len(found) != 1:
        raise DosingRefused(f"{uri} must hold exactly one ExposureWindow JSON, found {len(found)}")
    return found[0], registered_digest(uri, tracking_uri)


def load_registered_window(uri: str, tracking_uri: str | None = None):
    """Read the window artefact behind an MLflow URI (``models:/NAME@validated``, ``runs:/...``).

    The downloaded artefacts are searched for exactly one ``ExposureWindow`` JSON, which is
    validated like a file, and checked against the content digest the registry recorded for the
    version. The window's own ``status`` decides (artefacts are immutable, so a registry alias
    never upgrades a ``candidate`` window): an alias ``validated`` pointing at a candidate window
    is refused downstream like any candidate.

    Returns
    -------
    ml.window.ExposureWindow
        With its ``origin`` (the URI, ``registered`` or ``signed``, the PK model file beside it).

    Raises
    ------
    ml.dosing.DosingRefused
        Unreadable URI, not exactly one window JSON, invalid or edited artefact.
    """
    path, digest = registered_window_file(uri, tracking_uri)
    # the population PK model registered with the window sits beside its JSON (ml.tracking.register_window)
    return with_model_file(window_from_dict(json.loads(path.read_text()), uri, registered_digest=digest),
                           path.parent)


def registered_digest(uri: str, tracking_uri: str | None) -> str | None:
    """The content digest the registry recorded for the version ``uri`` names (None: not a
    ``models:/`` URI, or a version registered before digests were recorded)."""
    import mlflow

    try:
        ref = parse_model_ref(uri)
    except ValueError:
        return None
    resolved = resolve_tracking_uri(tracking_uri)
    try:
        with fluent_uri(resolved), quiet():
            client = mlflow.MlflowClient(tracking_uri=resolved, registry_uri=resolved)
            mv = (client.get_model_version_by_alias(ref.name, ref.alias) if ref.alias
                  else client.get_model_version(ref.name, ref.version))
    except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds; all mean "cannot read"
        raise DosingRefused(f"cannot read the registry record of {uri}: {exc}") from exc
    return (mv.tags or {}).get(WINDOW_DIGEST_TAG) or None


def load_registered_pk_model(uri: str, tracking_uri: str | None = None) -> PopPKModel:
    """The population PK model file (``*.toml``) behind an MLflow URI (exactly one).

    Raises
    ------
    ml.dosing.DosingRefused
        Unreadable URI, or not exactly one model file.
    """
    local = _download(uri, tracking_uri, "population PK model")
    files = [local] if local.is_file() else sorted(local.rglob("*.toml"))
    if len(files) != 1:
        raise DosingRefused(f"{uri} must hold exactly one population PK model file (.toml), found {len(files)}")
    return PopPKModel.from_file(files[0])
