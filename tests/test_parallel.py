"""ml._parallel: serial and Dask executors give the same numbers for the same seed.

The reference of every comparison is the serial run in this process (``SerialExecutor``, or no
executor where the blocked seeding is not involved: the trial's replicates are seeded one by one
already). The tests marked ``dask_cluster`` start one 2-process ``LocalCluster`` for the module
(a few seconds) and check, when it is closed, that no worker process is left.
"""

from __future__ import annotations

import copy
import pickle
import sys
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from ml._parallel import (
    DaskExecutor,
    ParallelUnavailable,
    SchedulerUnreachable,
    SerialExecutor,
    block_seeds,
    blocks,
    executor_from,
    map_blocks,
)
from ml.features import competing_target
from ml.sim import simulate_virtual
from ml.window import BenefitHarmSearch, WindowSearch
from ml.window._bootstrap import BOOTSTRAP_BLOCK
from ml.window._scan import PERMUTATION_BLOCK


class ReversedExecutor(SerialExecutor):
    """Runs the tasks last to first (a stand-in for a cluster finishing them in any order)."""

    def map(self, fn, tasks, *, progress=None, **shared):
        tasks = list(tasks)
        out = [None] * len(tasks)
        for k in reversed(range(len(tasks))):
            out[k] = fn(tasks[k], **shared)
            if progress is not None:
                progress(out[k])
        return out


def _draw(task):
    seed, size = task
    return np.random.default_rng(seed).random(size)


@pytest.fixture(scope="module")
def cohort():
    v = simulate_virtual("urd", n=160, seed=11)
    x = v.truth.set_index("patient_id").loc[v.cohort.outcomes["patient_id"], "auc_total"].to_numpy(float)
    return x, v.cohort.outcomes


# ------------------------------------------------------------------------------ no cluster needed
def test_serial_executor_keeps_task_order_and_passes_shared_arguments():
    seen = []
    out = SerialExecutor().map(lambda t, factor: t * factor, [1, 2, 3], progress=seen.append, factor=10)
    assert out == [10, 20, 30] and seen == [10, 20, 30]


def test_blocks_cover_the_range_once():
    assert blocks(7, 3) == [(0, 3), (3, 3), (6, 1)]
    assert blocks(0, 5) == []


def test_block_seeds_depend_on_the_generator_only_and_leave_its_stream_alone():
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    sa, sb = block_seeds(a, 3), block_seeds(b, 3)
    assert [s.generate_state(2).tolist() for s in sa] == [s.generate_state(2).tolist() for s in sb]
    assert len({tuple(s.generate_state(2)) for s in sa}) == 3  # three different streams
    assert a.random() == np.random.default_rng(5).random()  # spawning draws nothing from the stream


def test_map_blocks_does_not_depend_on_the_order_blocks_run_in():
    here = np.concatenate(map_blocks(SerialExecutor(), _draw, 10, 4, np.random.default_rng(1)))
    backwards = np.concatenate(map_blocks(ReversedExecutor(), _draw, 10, 4, np.random.default_rng(1)))
    assert here.shape == (10,) and np.array_equal(here, backwards)


def test_window_search_blocks_give_one_result_whatever_the_order(cohort):
    x, outcomes = cohort
    y = competing_target(outcomes, "cmv|ebv|agvhd2|death", 180.0)
    kw = {"n_permutations": PERMUTATION_BLOCK + 50, "n_bootstraps": BOOTSTRAP_BLOCK + 5, "n_folds": 0, "random_state": 3}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = WindowSearch(**kw, executor=SerialExecutor()).fit(x, y)
        b = WindowSearch(**kw, executor=ReversedExecutor()).fit(x, y)
        plain = WindowSearch(**kw).fit(x, y)
    assert np.array_equal(a.null_statistics_, b.null_statistics_) and a.p_value_ == b.p_value_
    assert np.array_equal(a.bootstrap_bounds_, b.bootstrap_bounds_, equal_nan=True)
    # without an executor: one stream (today's numbers), a different Monte Carlo sample of the same null
    assert not np.array_equal(a.null_statistics_, plain.null_statistics_)
    assert abs(a.p_value_ - plain.p_value_) < 0.1


def test_executor_from_the_command_line_options():
    assert isinstance(executor_from(None), SerialExecutor)
    assert isinstance(executor_from(0), SerialExecutor) and isinstance(executor_from(1), SerialExecutor)
    with pytest.raises(ValueError, match="--workers must be >= 0"):
        executor_from(-1)


def test_asking_for_a_cluster_without_dask_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ParallelUnavailable, match=r"pip install 'atg-window\[parallel\]'"):
        executor_from(2)
    with pytest.raises(ParallelUnavailable, match="--scheduler needs dask.distributed"):
        executor_from(scheduler="tcp://127.0.0.1:8786")


def test_trial_cli_without_dask_says_what_to_install(monkeypatch):
    from ml.cli import main

    monkeypatch.setitem(sys.modules, "distributed", None)
    res = CliRunner().invoke(main, ["trial", "--n", "8", "--reps", "2", "--population", "0", "--draws", "16",
                                    "--workers", "2"])
    assert res.exit_code == 1, res.output
    assert "Error: --workers 2 needs dask.distributed" in res.output and "Traceback" not in res.output


def test_a_dask_executor_is_copied_as_itself_and_pickled_without_its_connection():
    pytest.importorskip("distributed")
    from sklearn.base import clone

    ex = DaskExecutor(workers=2)  # nothing starts before the first map
    assert copy.deepcopy(ex) is ex and clone(WindowSearch(executor=ex)).executor is ex
    back = pickle.loads(pickle.dumps(ex))
    assert (back.workers_requested, back.scheduler, back._client) == (2, None, None)


def test_an_unreachable_scheduler_is_named():
    pytest.importorskip("distributed")
    ex = DaskExecutor(scheduler="tcp://127.0.0.1:9", timeout=1)  # the discard port: nothing listens
    with pytest.raises(SchedulerUnreachable, match=r"cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        ex.map(_draw, [(1, 2), (2, 2)])


# ------------------------------------------------------------------- a 2-process LocalCluster
@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("distributed")
    psutil = pytest.importorskip("psutil")
    import os

    ex = DaskExecutor(workers=2)
    try:
        # the worker processes (their nannies run in this process)
        started = [psutil.Process(pid) for pid in ex.client.run(os.getpid).values() if pid != os.getpid()]
        assert len(started) == 2
        yield ex
    finally:
        ex.close()
    _, alive = psutil.wait_procs(started, timeout=20)
    for p in alive:  # only processes this cluster started
        p.kill()
    assert not alive, f"the LocalCluster left processes behind: {alive}"


@pytest.mark.dask_cluster
def test_trial_replicates_on_two_workers_equal_the_serial_run(cluster):
    from ml.dosing import DosingEngine, LaplaceImportance
    from ml.dosing._trial import DESIGNS, InSilicoTrial

    def run(executor):
        engine = DosingEngine(posterior=LaplaceImportance(16), nodes_per_day=3, random_state=2)
        return InSilicoTrial(engine, n=4, reps=2, designs=DESIGNS[:1], random_state=2, progress=False,
                             executor=executor).run().replicates

    serial = run(None)  # the serial path as it was before executors existed
    assert len(serial) == 2 and run(cluster).equals(serial)


@pytest.mark.dask_cluster
def test_window_search_permutations_and_bootstrap_on_two_workers_equal_the_serial_run(cluster, cohort):
    x, outcomes = cohort
    y = competing_target(outcomes, "cmv|ebv|agvhd2|death", 180.0)
    kw = {"n_permutations": 2 * PERMUTATION_BLOCK, "n_bootstraps": 2 * BOOTSTRAP_BLOCK, "n_folds": 0, "random_state": 7}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        serial = WindowSearch(**kw, executor=SerialExecutor()).fit(x, y)
        dask = WindowSearch(**kw, executor=cluster).fit(x, y)
    assert np.array_equal(serial.null_statistics_, dask.null_statistics_)
    assert serial.p_value_ == dask.p_value_
    assert np.array_equal(serial.bootstrap_bounds_, dask.bootstrap_bounds_, equal_nan=True)
    assert (serial.lower_ci_, serial.upper_ci_) == (dask.lower_ci_, dask.upper_ci_)


@pytest.mark.dask_cluster
def test_benefit_harm_permutation_p_value_and_bootstrap_on_two_workers_equal_the_serial_run(cluster, cohort):
    x, outcomes = cohort
    kw = {"n_permutations": 2 * PERMUTATION_BLOCK, "n_bootstraps": 2 * BOOTSTRAP_BLOCK, "n_folds": 0, "random_state": 7}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        serial = BenefitHarmSearch(**kw, executor=SerialExecutor()).fit(x, outcomes)
        dask = BenefitHarmSearch(**kw, executor=cluster).fit(x, outcomes)
    assert np.array_equal(serial.null_statistics_, dask.null_statistics_)
    assert serial.p_value_ == dask.p_value_
    assert np.array_equal(serial.bootstrap_bounds_, dask.bootstrap_bounds_, equal_nan=True)
    assert np.array_equal(serial._boot_counts, dask._boot_counts)


def test_trial_planner_lines_in_any_order_give_the_serial_plan(monkeypatch):
    from ml.dosing import DosingEngine, LaplaceImportance, TrialPlanner

    # the oracle's regimen search costs seconds and is the same code either way: a stand-in here
    monkeypatch.setattr("ml.dosing._planning.closest_regimen_auc",
                        lambda virtual, target, *a: np.linspace(0.8, 1.2, len(virtual.truth)) * target)

    def plan(executor):
        engine = DosingEngine(posterior=LaplaceImportance(16), nodes_per_day=3, random_state=1)
        return TrialPlanner(engine, population=8, outcome_draws=2, cl_shares=(0.95,), effect_scales=(2.0,),
                            random_state=3, executor=executor).run().to_frame()

    serial = plan(None)
    assert len(serial) == 7 and plan(ReversedExecutor()).equals(serial)
