"""Where embarrassingly parallel work runs: in this process, or on a Dask cluster.

An *executor* maps a module-level function over a list of independent tasks and returns the
results in task order. Two executors exist:

* :class:`SerialExecutor` runs every task here, one after the other (the default, and the only
  one available without Dask);
* :class:`DaskExecutor` sends the tasks to a ``dask.distributed`` cluster: a ``LocalCluster`` of
  ``workers`` processes started on first use (one thread each), or an existing scheduler given
  by its address (``tcp://host:8786``), whose workers must have this package installed.

Results never depend on the executor: every task carries its own random seed, derived by the
caller (e.g. :func:`block_seeds`, from the caller's generator through
:class:`numpy.random.SeedSequence` ``spawn``), so serial, 2-worker and 20-worker runs give the
same numbers bit for bit. :func:`executor_from` turns the ``--workers`` / ``--scheduler``
command-line options into an executor. Dask is an optional dependency
(``pip install 'atg-window[parallel]'``); asking for a cluster without it raises
:class:`ParallelUnavailable` with that advice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["DaskExecutor", "ParallelUnavailable", "SchedulerUnreachable", "SerialExecutor", "block_seeds", "blocks", "dask_available",
           "executor_from", "map_blocks"]


class ParallelUnavailable(ImportError):
    """A cluster was asked for, but ``dask.distributed`` is not installed."""


class SchedulerUnreachable(OSError):
    """No Dask scheduler answers at the given address."""


def dask_available() -> bool:
    """True when ``dask.distributed`` can be imported."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def _require_dask(what: str):
    try:
        import distributed
    except ImportError as exc:
        raise ParallelUnavailable(
            f"{what} needs dask.distributed, which is not installed: pip install 'atg-window[parallel]' "
            "(or run serially: leave out --workers / --scheduler)") from exc
    return distributed


class SerialExecutor:
    """Run every task in this process, in order.

    Attributes
    ----------
    workers : int
        Always 1.
    """

    workers = 1

    def map(self, fn: Callable, tasks: Sequence, *, progress: Callable | None = None, **shared) -> list:
        """``[fn(task, **shared) for task in tasks]``.

        Parameters
        ----------
        fn : callable
            A module-level function (so a cluster executor can send it to its workers).
        tasks : sequence
            One argument per call.
        progress : callable or None
            Called with each result as it is ready.
        **shared
            Keyword arguments passed unchanged to every call (large arrays, models).

        Returns
        -------
        list
            Results in the order of ``tasks``.
        """
        out = []
        for task in tasks:
            out.append(fn(task, **shared))
            if progress is not None:
                progress(out[-1])
        return out

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return "SerialExecutor()"


class DaskExecutor:
    """Run tasks on a ``dask.distributed`` cluster: a local one of ``workers`` processes, or ``scheduler``'s.

    The cluster (or the connection) is made on the first :meth:`map` that has at least
    ``min_tasks`` tasks; fewer tasks run here, serially (a cluster costs seconds to start). Close
    it with :meth:`close` or use the executor as a context manager; a copy (``copy.deepcopy``,
    ``sklearn.base.clone``) is the same executor, and a pickled one reconnects on first use.

    Parameters
    ----------
    workers : int or None
        Worker processes of a ``LocalCluster`` (one thread each). Ignored with ``scheduler``.
    scheduler : str or None
        Address of a running scheduler (``tcp://host:8786``); its workers need this package
        (the same version) installed.
    min_tasks : int
        Fewer tasks than this run serially, here.
    timeout : float
        Seconds to wait for ``scheduler`` to answer.

    Raises
    ------
    ParallelUnavailable
        When ``dask.distributed`` is not installed.
    """

    def __init__(self, workers: int | None = 2, scheduler: str | None = None, *, min_tasks: int = 2,
                 timeout: float = 20.0):
        if scheduler is None and not (isinstance(workers, (int, np.integer)) and workers >= 1):
            raise ValueError(f"DaskExecutor: `workers` must be an integer >= 1, got {workers!r}")
        _require_dask("--scheduler" if scheduler else f"--workers {workers}")
        self.workers_requested, self.scheduler, self.min_tasks, self.timeout = workers, scheduler, min_tasks, timeout
        self._client = self._cluster = None

    # ------------------------------------------------------------------------------ connection
    @property
    def client(self):
        """The ``distributed.Client`` (started or connected on first access)."""
        if self._client is None:
            distributed = _require_dask("a Dask executor")
            if self.scheduler is not None:
                try:
                    self._client = distributed.Client(self.scheduler, timeout=f"{self.timeout}s")
                except OSError as exc:
                    raise SchedulerUnreachable(f"cannot reach the Dask scheduler at {self.scheduler!r} "
                                               f"(--scheduler): {exc}") from None
            else:
                self._cluster = distributed.LocalCluster(n_workers=int(self.workers_requested), threads_per_worker=1,
                                                         processes=True, dashboard_address=None,
                                                         silence_logs=40)  # logging.ERROR
                self._client = distributed.Client(self._cluster)
        return self._client

    @property
    def workers(self) -> int:
        """Number of workers (of the scheduler: those connected now)."""
        if self.scheduler is None:
            return int(self.workers_requested)
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def map(self, fn: Callable, tasks: Sequence, *, progress: Callable | None = None, **shared) -> list:
        """``[fn(task, **shared) for task in tasks]``, computed on the cluster.

        ``shared`` values are sent to the workers once (``Client.scatter``), not once per task.
        See :meth:`SerialExecutor.map` for the parameters; a task's exception is raised here.
        """
        tasks = list(tasks)
        if len(tasks) < self.min_tasks:
            return SerialExecutor().map(fn, tasks, progress=progress, **shared)
        from distributed import as_completed

        client = self.client
        scattered = {k: client.scatter(v, broadcast=True, hash=False) for k, v in shared.items()}
        futures = client.map(fn, tasks, pure=False, **scattered)
        position = {f.key: k for k, f in enumerate(futures)}
        out: list[Any] = [None] * len(futures)
        try:
            for fut in as_completed(futures):
                out[position[fut.key]] = fut.result()
                if progress is not None:
                    progress(out[position[fut.key]])
        finally:
            client.cancel(futures)
            del scattered
        return out

    def close(self) -> None:
        """Close the client and, for a local cluster, stop its worker processes."""
        client, cluster, self._client, self._cluster = self._client, self._cluster, None, None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        with contextlib.suppress(Exception):  # at interpreter shutdown the event loop may be gone
            self.close()

    def __deepcopy__(self, memo):
        return self

    def __getstate__(self):
        return {"workers_requested": self.workers_requested, "scheduler": self.scheduler, "min_tasks": self.min_tasks,
                "timeout": self.timeout}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._client = self._cluster = None

    def __repr__(self) -> str:
        where = f"scheduler={self.scheduler!r}" if self.scheduler else f"workers={self.workers_requested}"
        return f"DaskExecutor({where})"


def executor_from(workers: int | None = None, scheduler: str | None = None):
    """The executor of the ``--workers N`` / ``--scheduler ADDRESS`` options.

    Parameters
    ----------
    workers : int or None
        None, 0 or 1: serial (here). N >= 2: a Dask ``LocalCluster`` of N processes.
    scheduler : str or None
        Address of an existing Dask scheduler (takes precedence over ``workers``).

    Returns
    -------
    SerialExecutor or DaskExecutor

    Raises
    ------
    ParallelUnavailable
        A cluster was asked for and ``dask.distributed`` is not installed.
    ValueError
        ``workers`` is negative.
    """
    if workers is not None and workers < 0:
        raise ValueError(f"--workers must be >= 0, got {workers}")
    if scheduler:
        return DaskExecutor(scheduler=scheduler)
    if workers is not None and workers >= 2:
        return DaskExecutor(workers=int(workers))
    return SerialExecutor()


def blocks(total: int, size: int) -> list[tuple[int, int]]:
    """``(start, length)`` of consecutive blocks of at most ``size`` items covering ``range(total)``."""
    size = max(1, int(size))
    return [(start, min(size, total - start)) for start in range(0, int(total), size)]


def block_seeds(rng: np.random.Generator, count: int) -> list[np.random.SeedSequence]:
    """``count`` independent seeds derived from ``rng`` (its ``SeedSequence`` spawned ``count`` times).

    The same generator state gives the same seeds, whoever computes the blocks; spawning
    does not change the numbers ``rng`` itself draws later.
    """
    seq = getattr(rng.bit_generator, "seed_seq", None)
    if not isinstance(seq, np.random.SeedSequence):  # a generator made from a bare bit generator state
        seq = np.random.SeedSequence(rng.integers(0, 2**63, 4))
    return seq.spawn(int(count))


def map_blocks(executor, fn: Callable, total: int, block_size: int, rng: np.random.Generator, *,
               progress: Callable | None = None, **shared) -> list:
    """Split ``total`` random replicates into blocks of ``block_size``, each with its own seed, and map them.

    Block ``k`` is ``fn((seed_k, length_k), **shared)`` with ``seed_k`` the ``k``-th of
    :func:`block_seeds` ``(rng, number of blocks)``; the result is the same for every executor
    and every number of workers (it depends on ``block_size``, which callers keep fixed).

    Parameters
    ----------
    executor : SerialExecutor or DaskExecutor
    fn : callable
        Module-level function of ``(seed, length)`` and ``shared``; returns an array (or a tuple of
        arrays) whose first axis has ``length`` rows.
    total, block_size : int
    rng : numpy.random.Generator
        The caller's stream; only its ``SeedSequence`` is spawned.
    progress : callable or None
        Called with the number of replicates of each block as it finishes.
    **shared
        Keyword arguments of every call (sent to a cluster once).

    Returns
    -------
    list
        One result per block, in block order.
    """
    spans = blocks(total, block_size)
    tasks = list(zip(block_seeds(rng, len(spans)), (length for _, length in spans)))

    def tick(result):
        if progress is not None:
            progress(len(result[0]) if isinstance(result, tuple) else len(result))

    return executor.map(fn, tasks, progress=tick, **shared)
