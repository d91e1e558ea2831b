"""Speed-up of the Dask executor (ml._parallel) against the serial run, measured in this one script.

    python scripts/bench_parallel.py                 # writes docs/benchmarks.md, section "parallel"
    python scripts/bench_parallel.py --no-write      # print only
    python scripts/bench_parallel.py --scheduler tcp://host:8786    # an existing cluster instead

Every workload runs twice with the same seed: serially in this process (``SerialExecutor``) and on
a Dask ``LocalCluster`` of ``--workers`` processes (one thread each), started before the timings
and warmed up (its start-up is reported apart). The two results are compared bit for bit and the
ratio serial / parallel of the wall-clock times is the speed-up. Workloads (SIMULATED cohorts from
``ml.sim``):

- in-silico trial replicates (``InSilicoTrial``, as ``atgwin trial --reps R --workers N``);
- the window benchmark's power study cohorts (``scripts/bench_window.py --power-only``: one
  cohort per task, permutation p of the search);
- the benefit-harm benchmark's cohorts (``scripts/bench_benefit_harm.py``, oracle exposure);
- the permutations and bootstrap of ``WindowSearch`` at large n (blocks of ``PERMUTATION_BLOCK``
  permutations / ``BOOTSTRAP_BLOCK`` resamples, each block seeded through ``SeedSequence.spawn``);
- the same for ``BenefitHarmSearch``.

The machine is shared: the 1-minute load average before and after is printed with the table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(SCRIPTS))
# the cluster's worker processes import the benchmark scripts' modules by name
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(SCRIPTS), *filter(None, [os.environ.get("PYTHONPATH")])])

from _benchdoc import provenance, write_section

from ml._parallel import DaskExecutor, SerialExecutor, executor_from


def _timed(f):
    t0 = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t0


def _same(a, b) -> bool:
    if isinstance(a, pd.DataFrame):
        return a.equals(b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(u, v) for u, v in zip(a, b))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b, equal_nan=True)
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (np.isnan(a) and np.isnan(b))
    return a == b


# ------------------------------------------------------------------------------------ workloads
def trial_workload(args):
    from ml.dosing import DosingEngine, LaplaceImportance
    from ml.dosing._trial import InSilicoTrial

    def run(executor):
        engine = DosingEngine(posterior=LaplaceImportance(args.trial_draws), nodes_per_day=3, random_state=args.seed)
        return InSilicoTrial(engine, n=args.trial_n, reps=args.trial_reps, random_state=args.seed, progress=False,
                             executor=executor).run().replicates

    label = (f"in-silico trial: {args.trial_reps} replicates of n = {args.trial_n} "
             f"(`atgwin trial --reps {args.trial_reps} --n {args.trial_n} --draws {args.trial_draws} --workers N`)")
    return label, run


def window_cohorts_workload(args):
    import bench_window as bw

    cfg = bw.PowerConfig("nca", (), 40, 0.1, None, None)

    def run(executor):
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()):
                rows = bw.run_power([cfg], ["urd"], args.cohorts, args.permutations, Path(tmp), executor=executor)
        return sorted(rows[cfg], key=lambda r: r["seed"])

    label = (f"window benchmark: {args.cohorts} `urd` cohorts (n = 324, NCA exposure, {args.permutations} "
             "permutations; `bench_window.py --power-only --workers N`)")
    return label, run


def benefit_harm_cohorts_workload(args):
    import bench_benefit_harm as bbh

    tasks = [("urd-oracle", seed, args.permutations, args.bootstraps, 0) for seed in range(args.cohorts)]

    def run(executor):
        rows = executor.map(bbh.one_cohort, tasks)
        for r in rows:  # wall-clock seconds inside a row differ between runs
            r["bh"].pop("seconds", None)
        return rows

    label = (f"benefit-harm benchmark: {args.cohorts} `urd-oracle` cohorts (n = 324, {args.permutations} "
             f"permutations, {args.bootstraps} resamples; `bench_benefit_harm.py --workers N`)")
    return label, run


def window_search_workload(args):
    import bench_window as bw

    from ml.window import WindowSearch

    x, y = bw.synthetic(args.big_n, seed=args.seed)

    def run(executor):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = WindowSearch(n_permutations=args.big_permutations, n_bootstraps=args.big_bootstraps, n_folds=0,
                             random_state=args.seed, executor=executor).fit(x, y)
        return {"p": s.p_value_, "null": s.null_statistics_, "boot": s.bootstrap_bounds_}

    label = (f"WindowSearch at n = {args.big_n:,} (synthetic): {args.big_permutations} permutations + "
             f"{args.big_bootstraps} bootstrap resamples (`WindowSearch(executor=...)`)")
    return label, run


def benefit_harm_search_workload(args):
    from ml.sim import simulate_virtual
    from ml.window import BenefitHarmSearch

    v = simulate_virtual("urd", n=args.bh_n, seed=args.seed)
    x = v.truth.set_index("patient_id").loc[v.cohort.outcomes["patient_id"], "auc_total"].to_numpy(float)

    def run(executor):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = BenefitHarmSearch(n_permutations=args.big_permutations, n_bootstraps=args.big_bootstraps, n_folds=0,
                                  random_state=args.seed, executor=executor).fit(x, v.cohort.outcomes)
        return {"p": s.p_value_, "null": s.null_statistics_, "boot": s.bootstrap_bounds_}

    label = (f"BenefitHarmSearch at n = {args.bh_n:,} (`urd`, true AUC): {args.big_permutations} permutations + "
             f"{args.big_bootstraps} bootstrap resamples (`BenefitHarmSearch(executor=...)`)")
    return label, run


WORKLOADS = {"trial": trial_workload, "window-cohorts": window_cohorts_workload,
             "benefit-harm-cohorts": benefit_harm_cohorts_workload, "window-search": window_search_workload,
             "benefit-harm-search": benefit_harm_search_workload}


def _warm_up(task, **_):
    import ml.dosing  # noqa: F401 - warms each worker up (the import is what it waits for)
    import ml.sim  # noqa: F401
    import ml.window  # noqa: F401 - imported for its import time in each worker

    return task


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler", default=None, metavar="ADDRESS")
    ap.add_argument("--only", default=",".join(WORKLOADS), help="comma list of " + ", ".join(WORKLOADS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--trial-reps", type=int, default=8)
    ap.add_argument("--trial-n", type=int, default=64)
    ap.add_argument("--trial-draws", type=int, default=32)
    ap.add_argument("--cohorts", type=int, default=8, help="cohorts of each benchmark workload")
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--bootstraps", type=int, default=100)
    ap.add_argument("--big-n", type=int, default=20_000)
    ap.add_argument("--bh-n", type=int, default=5_000)
    ap.add_argument("--big-permutations", type=int, default=1000)
    ap.add_argument("--big-bootstraps", type=int, default=100)
    ap.add_argument("--no-write", action="store_true", help="print the table, leave docs alone")
    args = ap.parse_args(argv)
    names = [w for w in args.only.split(",") if w]
    unknown = sorted(set(names) - set(WORKLOADS))
    if unknown:
        ap.error(f"unknown workloads {unknown}")

    load_before = os.getloadavg()[0]
    rows = []
    with executor_from(args.workers, args.scheduler) as cluster:
        if not isinstance(cluster, DaskExecutor):
            ap.error("give --workers >= 2 or --scheduler: the point is to compare with a cluster")
        _, start = _timed(lambda: cluster.client)
        cluster.map(_warm_up, list(range(4 * cluster.workers)))
        for name in names:
            label, run = WORKLOADS[name](args)
            serial, t_serial = _timed(lambda run=run: run(SerialExecutor()))
            parallel, t_parallel = _timed(lambda run=run: run(cluster))
            same = _same(serial, parallel)
            rows.append((label, t_serial, t_parallel, same))
            print(f"{name}: serial {t_serial:.1f} s, {cluster.workers} workers {t_parallel:.1f} s, "
                  f"x{t_serial / t_parallel:.2f}, identical: {same}", flush=True)
        workers = cluster.workers
    load_after = os.getloadavg()[0]

    where = f"a Dask cluster at {args.scheduler}" if args.scheduler else f"a Dask `LocalCluster` of {workers} processes"
    lines = [
        "## Parallel work (ml._parallel, Dask)",
        "",
        provenance(),
        "",
        f"`python scripts/bench_parallel.py --workers {args.workers}`: each workload serially in one process and on "
        f"{where} (one thread each; started in {start:.1f} s and warmed up before the timings), same seed. "
        "Speed-up = serial seconds / parallel seconds; \"identical\" compares the two results bit for bit. "
        f"1-minute load average of this shared machine: {load_before:.2f} before, {load_after:.2f} after "
        f"({os.cpu_count()} cores). SIMULATED cohorts.",
        "",
        f"| workload | serial (s) | {workers} workers (s) | speed-up | identical |",
        "|---|---|---|---|---|",
    ]
    for label, ts, tp, same in rows:
        lines.append(f"| {label} | {ts:.1f} | {tp:.1f} | {ts / tp:.2f} | {'yes' if same else 'NO'} |")
    cores = os.cpu_count() or 1
    if max(load_before, load_after) > cores:
        lines += ["", f"The machine was busy during this run (load average above its {cores} cores, other jobs "
                  "running): both timings shared the cores with them, so these ratios are those of a contended "
                  "machine, not of an idle one; re-run the script on a quiet machine for the latter."]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        print("written:", write_section("parallel", text))
    return 0 if all(r[3] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
