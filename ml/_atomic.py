"""Write a file completely or not at all: a temporary file in the same folder, then ``os.replace``.

Every file ``atgwin`` announces (``report.html``, ``run.json``, window JSON, CSV tables, figures,
command outputs) is written through :func:`atomic_path` or :func:`write_atomic`: the bytes go to a
hidden temporary file beside the target, are flushed to disk (``fsync``), and the temporary file is
renamed over the target in one step. A reader therefore sees either the previous complete file or
the new complete file, never a truncated one; when the write fails (disk full, folder read-only,
interrupted) the temporary file is removed and the error is raised as it was.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "write_atomic"]


@contextmanager
def atomic_path(path: str | os.PathLike, *, mkdir: bool = True):
    """A temporary path to write to; renamed to ``path`` when the block succeeds.

    Parameters
    ----------
    path : path-like
        The final file.
    mkdir : bool
        Create the parent folder first.

    Yields
    ------
    pathlib.Path
        A new, empty file in the same folder (same suffix, so that writers that infer the format
        from the name, e.g. matplotlib, still do).

    Raises
    ------
    OSError
        The folder cannot be written, or the disk is full; ``path`` is left as it was.
    """
    target = Path(path)
    if mkdir:
        target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _fsync(tmp_path)
        mode = _mode(target)
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, target)
    except BaseException:
        try:
            tmp_path.unlink()
        except OSError:
            pass
        raise


def write_atomic(path: str | os.PathLike, data: str | bytes, *, encoding: str = "utf-8",
                 newline: str | None = None, mkdir: bool = True) -> Path:
    """Write ``data`` (text or bytes) to ``path`` through :func:`atomic_path`.

    Parameters
    ----------
    path : path-like
    data : str or bytes
    encoding : str
        For text.
    newline : str, optional
        As for :func:`open` (text only).
    mkdir : bool
        Create the parent folder first (False for a user's ``--out``: a missing folder is an
        error, not something to create).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    target = Path(path)
    with atomic_path(target, mkdir=mkdir) as tmp:
        if isinstance(data, bytes):
            with open(tmp, "wb") as fh:
                fh.write(data)
        else:
            with open(tmp, "w", encoding=encoding, newline=newline) as fh:
                fh.write(data)
    return target


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mode(target: Path) -> int:
    """The permissions of the file being replaced, else those a plain ``open`` would give."""
    try:
        return target.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_UMASK


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: read once, at import (``os.umask`` can only be read by setting it, process-wide)
_UMASK = _umask()
