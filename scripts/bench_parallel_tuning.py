"""Time Optuna tuning of the floor side's XGBoost model with 1 and with 2 worker processes on a journal file.

The tuning problem is the default experiment's (experiments/urd_window.toml): SIMULATED URD cohort
n = 324 (seed 0), exposure by MAP under the shipped population PK model, the floor endpoint, 5-fold
CV, the default search space and pruner. Each configuration tunes a new study in a new journal file
(``ml.models.JournalTuningStorage``) with ``--trials`` trials in total; ``n_workers = 2`` spawns
one worker process (its imports are part of the time). An in-memory study (no storage) gives the
cost of the journal itself. Prints a Markdown table with wall-clock seconds, the ratio to one
worker on the journal, and the machine's load average before and after (other users on the same
2 cores slow every line alike, not the ratio).

    .venv/bin/python scripts/bench_parallel_tuning.py [--trials 30] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from _benchdoc import provenance  # noqa: E402


def problem():
    """X, y and the XGBoost template of the default experiment's floor side."""
    from ml.experiments import load_experiment
    from ml.experiments._steps import model_endpoints, prepare_data
    from ml.features import make_preprocessor, survival_target
    from ml.models import XGBSurvival
    from ml.pk import PopPKModel
    from ml.sim import simulate_cohort

    experiment = load_experiment(ROOT / "experiments" / "urd_window.toml")
    cohort = simulate_cohort("urd", n=324, seed=0)
    data = prepare_data(cohort, experiment.features.exposure, strategy=experiment.features.strategy(
        PopPKModel.default(), "shipped"))
    frame = data.frame.loc[data.keep]
    X = make_preprocessor(list(experiment.features.columns)).fit_transform(frame)
    endpoint, horizon = model_endpoints(experiment)["floor"]
    y = survival_target(data.outcomes, endpoint, horizon=horizon)
    m = experiment.models
    template = XGBSurvival(objective=m.objective, monotone_exposure=m.monotone_exposure,
                           exposure_feature=experiment.features.exposure, n_jobs=1)
    return X, y, template, m.tuning_folds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()

    from ml.models import JournalTuningStorage, quiet_optuna, tune_xgb_survival

    X, y, template, folds = problem()
    load0 = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, quiet_optuna():
        for rep in range(args.repeats):
            for label, workers, journal in (("in memory, 1 process", 1, False), ("journal file, 1 worker", 1, True),
                                            ("journal file, 2 workers", 2, True)):
                storage = JournalTuningStorage(f"{tmp}/{rep}-{workers}-{journal}.log") if journal else None
                t0 = time.perf_counter()
                res = tune_xgb_survival(X, y, estimator=template, n_trials=args.trials, n_splits=folds,
                                        random_state=0, refit=False, storage=storage, n_workers=workers,
                                        study_name=f"bench-{rep}-{workers}")
                rows.append((rep, label, journal, workers, time.perf_counter() - t0, len(res.study.trials),
                             res.best_score, [w.n_own_trials for w in res.workers]))
    load1 = os.getloadavg()
    base = {rep: sec for rep, _, journal, workers, sec, *_ in rows if journal and workers == 1}
    print(f"Parallel tuning, floor side of experiments/urd_window.toml, {args.trials} trials, {folds}-fold CV "
          f"(SIMULATED cohort)\n")
    print("| configuration | wall s | vs 1 worker (journal) | trials | trials per worker | best C |")
    print("|---|---:|---:|---:|---|---:|")
    for rep, label, _, _, sec, n, best, own in rows:
        print(f"| {label} | {sec:.1f} | {base[rep] / sec:.2f}x | {n} | {', '.join(map(str, own)) or '-'} | {best:.3f} |")
    print(f"\nload average (1 min) before {load0[0]:.1f}, after {load1[0]:.1f}; {os.cpu_count()} cores\n")
    print(provenance())


if __name__ == "__main__":
    main()
