"""Where runs are tracked: the tracking URI, the artefact location beside a local store, the UI.

Default store: ``sqlite:///mlflow.db`` in the working directory, with artefacts in
``mlartifacts/`` beside it. ``MLFLOW_TRACKING_URI`` (or an explicit URI) points elsewhere, e.g.
a shared tracking server, which then decides where artefacts go.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

__all__ = ["DEFAULT_TRACKING_URI", "artifact_root", "fluent_uri", "is_remote", "quiet", "resolve_tracking_uri",
           "sqlite_path", "ui_command"]

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """``uri`` if given, else ``MLFLOW_TRACKING_URI``, else :data:`DEFAULT_TRACKING_URI`."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative to the working directory), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):]).resolve()


def artifact_root(uri: str) -> str | None:
    """Artefact location for new experiments: ``mlartifacts/`` beside a local database.

    Returns None for remote stores (the server chooses) and for other local stores (MLflow's
    default).
    """
    db = sqlite_path(uri)
    if db is None:
        return None
    return (db.parent / "mlartifacts").as_uri()


def is_remote(uri: str) -> bool:
    """True for ``http(s)://`` and other server URIs."""
    return urlparse(uri).scheme in ("http", "https", "databricks")


def ui_command(uri: str, host: str = "127.0.0.1", port: int = 5000) -> list[str]:
    """The ``mlflow ui`` command line serving a local store (backend and artefacts beside it).

    Parameters
    ----------
    uri : str
        Tracking URI of the local store (``sqlite:///mlflow.db``).
    host : str
    port : int

    Returns
    -------
    list of str
        Arguments for :func:`subprocess.run` (the ``mlflow`` CLI of this interpreter).
    """
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    root = artifact_root(uri)
    if root is not None:
        cmd += ["--default-artifact-root", root]
    return cmd


@contextmanager
def fluent_uri(uri: str):
    """Point MLflow's fluent API (process-wide) at ``uri`` for the block, then restore it exactly.

    The fluent API is needed for ``log_input`` and ``pyfunc.log_model``. MLflow keeps the tracking and registry URIs as process globals and copies them into
    ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI``; both are put back as they were, so nothing
    leaks out of :mod:`ml.tracking`.
    """
    import mlflow
    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils

    keys = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved_env = {k: os.environ.get(k) for k in keys}
    saved = (getattr(tracking_utils, "_tracking_uri", None), getattr(registry_utils, "_registry_uri", None))
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved[0])
        registry_utils._registry_uri = saved[1]
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


#: environment of :func:`quiet`: no download bars, no "View run ... at: URL" lines on stdout
_QUIET_ENV = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


@contextmanager
def quiet():
    """Silence MLflow's informational chatter (logs, progress bars, warnings) for one block.

    ``atgwin`` prints its own one line per step; MLflow's and alembic's INFO logs (a new local
    store announces the creation of its tables), download bars and advisory warnings would
    interleave with it, and so would the links MLflow prints to stdout when a run on a tracking
    server ends (``MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT``). INFO records are dropped for the block
    whatever logging configuration the database migrations install (some MLflow versions load
    alembic's own). Errors still raise.
    """
    import logging
    import warnings

    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [logger.level for logger in loggers]
    saved_env = {k: os.environ.get(k) for k in _QUIET_ENV}
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    disabled = logging.root.manager.disable
    logging.disable(max(disabled, logging.INFO))
    os.environ.update(_QUIET_ENV)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"mlflow\..*")
            warnings.filterwarnings("ignore", category=UserWarning, message=r".*(type hints|input example|input_example).*")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        logging.disable(disabled)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
