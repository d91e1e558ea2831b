"""Where an Optuna tuning study lives, so that several worker processes (or machines) can join it.

Two of Optuna's own storages, each wrapped in a small frozen, picklable description (a worker
process opens its own connection from it):

* :class:`JournalTuningStorage`: an append-only journal file (``optuna.storages.JournalStorage``
  with a ``JournalFileBackend``): processes of ONE machine (or of machines sharing a file system
  with working file locks);
* :class:`RDBTuningStorage`: a relational database by SQLAlchemy URL (``optuna.storages.RDBStorage``),
  e.g. the PostgreSQL of the shared tracking server (docs/deployment.md): workers on several machines.

:func:`tuning_storage` turns the text of an experiment file or of ``--storage`` into one of them.
Passwords never appear in :meth:`describe` (what runs record); put them in ``PGPASSWORD`` or
``~/.pgpass`` rather than in the URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["JournalTuningStorage", "RDBTuningStorage", "tuning_storage"]

#: SQLAlchemy dialects accepted for an RDB storage (the ``+driver`` part is free)
_RDB_SCHEMES = ("postgresql", "mysql", "sqlite")


@dataclass(frozen=True)
class JournalTuningStorage:
    """An Optuna journal file shared by the worker processes of one machine.

    Parameters
    ----------
    path : str
        The journal file (created on first use; its folder must exist).
    """

    path: str

    def open(self):
        """The ``optuna.storages.JournalStorage`` on :attr:`path`."""
        import optuna

        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(self.path)))

    def describe(self) -> str:
        """``journal:ABSOLUTE-PATH`` (what a run records)."""
        return f"journal:{Path(self.path).resolve()}"

    def __str__(self) -> str:
        return self.describe()


@dataclass(frozen=True, repr=False)
class RDBTuningStorage:
    """A relational database reached by a SQLAlchemy URL, shared by workers on several machines.

    Parameters
    ----------
    url : str
        E.g. ``postgresql+psycopg2://atgwin@db.example:5432/optuna`` (password from ``PGPASSWORD``
        or ``~/.pgpass``). Name the driver: SQLAlchemy 2.1 maps a bare ``postgresql://`` to
        psycopg 3, which the ``server`` extra does not install.
    """

    url: str

    def open(self):
        """The ``optuna.storages.RDBStorage`` on :attr:`url` (its tables are created on first use)."""
        import optuna

        return optuna.storages.RDBStorage(self.url, heartbeat_interval=60, grace_period=180)

    def describe(self) -> str:
        """The URL with any password masked (what a run records)."""
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)

    def __str__(self) -> str:
        return self.describe()

    def __repr__(self) -> str:  # never the password, wherever the object is printed
        return f"RDBTuningStorage({self.describe()!r})"


def tuning_storage(spec: str):
    """The storage named by ``spec``: ``journal:PATH`` or a SQLAlchemy database URL.

    Parameters
    ----------
    spec : str
        ``journal:runs/tuning.log`` (a journal file) or ``postgresql+psycopg2://USER@HOST:PORT/DB``
        (also ``mysql...``, ``sqlite:///FILE``).

    Returns
    -------
    JournalTuningStorage or RDBTuningStorage

    Raises
    ------
    ValueError
        Neither form; the message says which forms are accepted.
    """
    text = str(spec).strip()
    if text.startswith("journal:"):
        path = text[len("journal:"):]
        if not path:
            raise ValueError(f"tuning storage {spec!r}: journal: needs a file path (journal:runs/tuning.log)")
        return JournalTuningStorage(path)
    scheme = text.split("://", 1)[0].split("+", 1)[0] if "://" in text else ""
    if scheme in _RDB_SCHEMES:
        return RDBTuningStorage(text)
    raise ValueError(f"tuning storage {spec!r}: expected journal:PATH (one machine) or a database URL such as "
                     "postgresql+psycopg2://USER@HOST:PORT/DB (several machines)")
