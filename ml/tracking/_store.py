"""Getting to the store safely: one process at a time creates a new local store; a server must answer.

* A new ``sqlite:///`` store is created by the first MLflow call that touches it (tables, then
  migrations, for the tracking and the registry stores separately). Two ``atgwin run`` started
  together on a new store would both try, and one would fail with SQLAlchemy's "table already
  exists". :func:`store_lock` serialises that first contact (and the creation of an experiment)
  with an advisory file lock beside the database (``mlflow.db.lock``).
* A tracking server that does not answer would cost minutes of MLflow's HTTP retries (7 retries,
  exponential back-off, 120 s timeout by default). :func:`check_reachable` asks it once, with a
  short timeout, before anything is run, and :func:`bounded_http` lowers MLflow's retry budget
  (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, ``MLFLOW_HTTP_REQUEST_TIMEOUT``,
  ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR``) unless the user set them.
"""

from __future__ import annotations

import fcntl
import os
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

from ml.tracking._uri import is_remote, sqlite_path

__all__ = ["HTTP_DEFAULTS", "bounded_http", "check_reachable", "store_lock"]

#: MLflow's HTTP retry settings used by ``atgwin`` unless set in the environment: at most about
#: 3 x 10 s + 1 s + 2 s of back-off per request (MLflow's own defaults allow several minutes).
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
                 "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


def bounded_http() -> None:
    """Set :data:`HTTP_DEFAULTS` in the environment where the user has not set them."""
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)


@contextmanager
def store_lock(uri: str, timeout: float = 60.0):
    """Hold an exclusive lock on a local ``sqlite:///`` store for the block (other URIs: no lock).

    Parameters
    ----------
    uri : str
        Tracking URI.
    timeout : float
        Seconds to wait for another process to release the lock.

    Raises
    ------
    TimeoutError
        The lock was not released within ``timeout`` seconds.
    """
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    path = db.with_name(db.name + ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another process has held {path} for more than {timeout:.0f} s") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Ask a tracking server once whether it answers (``GET /health``); local stores pass.

    Any HTTP answer, even an error status (e.g. 401 behind authentication), counts as an answer.

    Parameters
    ----------
    uri : str
        Tracking URI.
    timeout : float
        Seconds to wait for the connection and the answer.

    Raises
    ------
    ConnectionError
        No answer within ``timeout`` seconds, or the connection was refused; the message says which.
    """
    if not is_remote(uri) or uri.startswith("databricks"):
        return
    url = uri.rstrip("/") + "/health"
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 - the user's own tracking URI
            pass
    except urllib.error.HTTPError:
        return  # it answered
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectionError(f"the tracking server {uri} does not answer ({reason}; gave up after "
                              f"{time.monotonic() - t0:.1f} s)") from None

