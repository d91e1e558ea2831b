"""``atgwin trial``: the in-silico trial of individualised vs fixed ATG dosing, stated for its planners.

By default it estimates the arm rates of CMV by day 180 on large virtual populations
(:class:`ml.dosing.TrialPlanner`), gives the power of the primary test at ``--n`` and the n for
80 % in closed form (Fleiss et al. 2003, eq. 4.14), and a sensitivity table (variability split
between CL and V1, size of the exposure-CMV effect, sampling and adjustment days, oracles).
``--reps`` also runs that many Monte Carlo trial replicates with the engine
(:class:`ml.dosing.InSilicoTrial`). Both run serially or, with ``--workers N`` / ``--scheduler
ADDRESS``, on a Dask cluster (:mod:`ml._parallel`; same numbers). Everything is SIMULATED.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from ml._atomic import atomic_path, write_atomic
from ml._status import WindowStatus
from ml.cli._common import SIMULATED_BANNER, prepare_out, show_progress


def plan_summary(plan) -> str:
    """Two sentences on the registered design: power at n and the n for 80 % (for the CLI and report)."""
    r = plan.rows[0]
    from ml.dosing._planning import _round_n

    n80 = ("no n reaches 80 % (no difference between the arms)" if not math.isfinite(r.n_80)
           else f"{_round_n(r.n_80)} patients would be needed for 80 % power")
    return (f"Registered design (SIMULATED, scenario {plan.settings['scenario']}): power {r.power:.1%} on CMV by day "
            f"{plan.horizon_days:g} at n = {plan.n_total} (1:1, alpha {plan.alpha:g}; CMV {r.rates.p_individualised:.1%} "
            f"individualised vs {r.rates.p_fixed:.1%} fixed, window attainment {r.rates.attain_individualised:.1%} vs "
            f"{r.rates.attain_fixed:.1%}); {n80}.")


@click.command("trial")
@click.option("--n", "n", default=324, show_default=True, help="Patients randomised (1:1, even).")
@click.option("--population", default=1000, show_default=True, type=click.IntRange(0),
              help="Virtual patients per line of the power analysis (arm rates by simulation; 0: skip it).")
@click.option("--sensitivity/--no-sensitivity", default=True, show_default=True,
              help="Add the sensitivity lines (CL/V1 variability, effect size, sampling and adjustment days, oracles).")
@click.option("--outcome-draws", default=20, show_default=True, type=click.IntRange(1),
              help="Outcome samples per virtual patient and arm in the power analysis.")
@click.option("--reps", default=0, show_default=True, type=click.IntRange(0),
              help="Also run this many Monte Carlo trial replicates with the engine (about 7 s each on 2 cores; 100: 11 min).")
@click.option("--seed", default=0, show_default=True, help="Random seed.")
@click.option("--scenario", default="urd", show_default=True, help="ml.sim scenario (the true window).")
@click.option("--window", "window_ref", default=None,
              help="Window JSON the engine doses into in the replicates (default: the scenario's true window).")
@click.option("--draws", default=128, show_default=True, help="Posterior draws per patient (power of 2).")
@click.option("--nodes", default=3, show_default=True, help="Simulated doses per day before interpolation.")
@click.option("--alpha", default=0.05, show_default=True, help="Significance level of the primary test.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Write the power analysis (FILE.plan.csv), the replicates (FILE, CSV, with --reps) and a "
                   "summary JSON (FILE.summary.json).")
@click.option("--workers", default=0, show_default=True, type=click.IntRange(0),
              help="Run the lines of the power analysis and the --reps replicates on a local Dask cluster of "
                   "this many worker processes (0 or 1: serially here). Needs the 'parallel' extra: pip install "
                   "'atg-window[parallel]'. Results are identical to a serial run with the same --seed.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="The same on an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (started with `dask scheduler` "
                   "and `dask worker ADDRESS`; the workers need this package, same version, installed).")
def trial(n, population, sensitivity, outcome_draws, reps, seed, scenario, window_ref, draws, nodes, alpha, out,
          workers, scheduler):
    """Individualised vs fixed 10 mg/kg dosing on virtual patients: power of the primary comparison
    (CMV by day 180, two-proportion z-test) at --n and the n needed for 80 % power, and which
    assumption or design it hinges on. Outcomes follow the simulator's model applied to the TRUE
    AUC; the engine's population model is the simulator's (the favourable case)."""
    from ml._parallel import (
        ParallelUnavailable,
        SchedulerUnreachable,
        SerialExecutor,
        executor_from,
    )
    from ml.dosing import (
        DosingEngine,
        DosingRefused,
        LaplaceImportance,
        TrialPlanner,
        load_window,
    )
    from ml.dosing._trial import InSilicoTrial
    from ml.sim import SimulationConfig

    prepare_out(out)
    click.echo(SIMULATED_BANNER, err=True)
    if population == 0 and reps == 0:
        raise click.UsageError("nothing to do: give --population > 0 (power analysis) and/or --reps > 0")
    try:
        SimulationConfig.default().scenario(scenario)
        window = load_window(window_ref) if window_ref else None
        engine = DosingEngine(posterior=LaplaceImportance(draws), nodes_per_day=nodes, random_state=seed)
        executor = executor_from(workers, scheduler)
        serial = isinstance(executor, SerialExecutor)
        planner = TrialPlanner(engine, scenario=scenario, population=population, n_total=n, alpha=alpha,
                               outcome_draws=outcome_draws, sensitivity=sensitivity, random_state=seed,
                               progress=(lambda s: click.echo(f"  {'simulating' if serial else 'done'}: {s}", err=True))
                               if show_progress() else None, executor=executor) if population else None
        study = InSilicoTrial(engine, window, scenario=scenario, n=n, reps=reps, alpha=alpha, random_state=seed,
                              progress=show_progress(), executor=executor) if reps else None
    except (DosingRefused, ValueError, ParallelUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    if window is not None and window.status != WindowStatus.VALIDATED:
        raise click.ClickException(f"refused: window status is {window.status!r}, not 'validated'")
    try:
        with executor:
            _run(planner, study, executor, out, n, reps, alpha, seed, scenario, population, outcome_draws, engine)
    except SchedulerUnreachable as exc:
        raise click.ClickException(str(exc)) from None


def _run(planner, study, executor, out, n, reps, alpha, seed, scenario, population, outcome_draws, engine) -> None:
    summary = {"settings": {"scenario": scenario, "n": n, "reps": reps, "alpha": alpha, "random_state": seed,
                            "population": population, "engine": repr(engine)}}
    if planner is not None:
        plan = planner.run()
        click.echo(f"Power analysis: arm rates from {population:,} virtual patients per line ({outcome_draws} outcome "
                   "draws each), power and n in closed form (two-proportion z-test, Fleiss, Levin & Paik 2003, "
                   "eq. 4.14). SIMULATED.")
        click.echo(plan_summary(plan))
        click.echo(plan.to_markdown())
        summary["plan"] = plan.to_frame().to_dict(orient="records")
        summary["plan_summary"] = plan_summary(plan)
        if out is not None:
            write_atomic(str(out) + ".plan.csv", plan.to_frame().to_csv(index=False), mkdir=False)
    if study is not None:
        result = study.run()
        click.echo(f"in-silico trial: scenario {scenario}, n={n} per replicate (1:1), {reps} replicates, seed {seed}")
        click.echo(result.to_markdown())
        summary["settings"] = {**result.settings, "population": population}
        summary["summary"] = result.summary().to_dict(orient="records")
        if out is not None:
            with atomic_path(out, mkdir=False) as tmp:
                result.replicates.to_csv(tmp, index=False)
    if out is not None:
        write_atomic(str(out) + ".summary.json", json.dumps(summary, indent=2, default=str) + "\n", mkdir=False)
        click.echo(f"wrote {out}.summary.json" + (f", {out}.plan.csv" if planner is not None else "")
                   + (f" and {out}" if study is not None else ""))
