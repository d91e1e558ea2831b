"""Re-run every benchmark (``make bench``); each script rewrites its own section of docs/benchmarks.md.

Usage: ``python scripts/bench_all.py [--only foundation,window,...] [--quick]``. The full run takes
hours on 2 cores (the window study alone simulates and searches 1,400 cohorts; results per cohort
are cached under runs/ so an interrupted run resumes). ``--quick`` passes each script its small
settings and leaves docs/benchmarks.md alone (a smoke run).
Everything runs on virtual (simulated) cohorts. The in-silico trial section ("dosing-trial") is
not re-run here: ``atgwin trial --reps 100 --out trial.csv`` then
``python scripts/bench_dosing.py --trial-only --trial-from trial.csv``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: name -> (full arguments, quick arguments)
BENCHMARKS = {
    "foundation": ([], ["--n", "20000", "--nca-n", "500", "--no-write"]),
    "window": ([], ["--reps", "10", "--no-speed", "--no-write"]),
    "benefit_harm": ([], ["--reps", "4", "--other-reps", "2", "--composite-reps", "2", "--permutations", "99",
                          "--bootstraps", "50", "--no-speed", "--no-write"]),
    "models": ([], ["--trials", "5", "--no-write"]),
    "pipeline": ([], ["--no-write"]),
    "dosing": ([], ["--n", "100", "--reference-n", "100", "--sweep", "200", "--latency-n", "10",
                                        "--no-write"]),
    "poppk": ([], ["--reps", "2", "--no-doc"]),
    "validate": ([], ["--sizes", "5000", "--base", "500", "--no-doc"]),
    "closed_loop": ([], ["--quick"]),
    "serving": ([], ["--requests", "40", "--no-write"]),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset of " + ", ".join(BENCHMARKS))
    ap.add_argument("--quick", action="store_true", help="small settings (smoke run)")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        ap.error(f"unknown benchmark(s) {unknown}; known: {list(BENCHMARKS)}")
    failed = []
    for name in names:
        extra = BENCHMARKS[name][1 if args.quick else 0]
        cmd = [sys.executable, str(HERE / f"bench_{name}.py"), *extra]
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        code = subprocess.call(cmd)
        print(f"== {name}: exit {code} after {time.perf_counter() - start:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
