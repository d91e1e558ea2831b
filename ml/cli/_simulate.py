"""``atgwin simulate``: write a virtual cohort."""

from __future__ import annotations

import click


@click.command()
@click.option("--scenario", default="urd", show_default=True,
              help="urd, haplo, null, shifted, hinge, floor-only, ceiling-only or overlap (ml/sim/default_scenarios.toml).")
@click.option("--n", "n", type=click.IntRange(min=1), default=None,
              help="Number of patients [default: the scenario's, 324 for urd].")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same bytes.")
@click.option("--lower", type=float, default=None, help="True lower bound, UE*day/mL.")
@click.option("--upper", type=float, default=None, help="True upper bound, UE*day/mL.")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--pk-model", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Population PK model file (default: the shipped assumption set).")
@click.option("--overwrite", is_flag=True, help="Replace cohort files already in DIR.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Folder to write.")
def simulate(scenario, n, seed, lower, upper, fmt, pk_model, overwrite, out):
    """Write a SIMULATED virtual cohort (with its true window in cohort.toml [truth])."""
    from ml.cli._common import prepare_out, show_progress

    prepare_out(out, folder=True)  # before the (slower) imports and the simulation
    from tqdm import tqdm

    from ml.cohort import existing_cohort_files, write_cohort
    from ml.pk import PopPKModel
    from ml.sim import SimulationConfig, simulate_virtual

    existing = existing_cohort_files(out)
    if existing and not overwrite:
        raise click.UsageError(f"{out} already holds cohort files ({', '.join(p.name for p in existing)}); "
                               "add --overwrite to replace them")
    try:
        spec = SimulationConfig.default().scenario(scenario)
        model = PopPKModel.from_file(pk_model) if pk_model else None
        total = n or spec.n
        with tqdm(total=total, desc="PK", unit="patient", disable=not show_progress()) as bar:
            virtual = simulate_virtual(scenario, n, seed, lower, upper, pk_model=model, progress=bar.update)
        folder = write_cohort(virtual.cohort, out, fmt, overwrite=overwrite)
    except (ValueError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from None
    cohort = virtual.cohort
    click.echo(
        f"wrote SIMULATED cohort {cohort.meta.name} to {folder}: {cohort.n} patients, "
        f"{len(cohort.levels)} levels; {_truth_text(cohort.meta.truth, cohort.meta.exposure_unit)}; "
        f"digest {cohort.digest[:12]}"
    )


def _truth_text(truth: dict, unit: str) -> str:
    """The world the cohort was drawn from, in words: which harms it has and where."""
    if truth.get("effect") == "none":
        return "no exposure effect (null world)"
    floor, ceiling = truth.get("floor"), truth.get("ceiling")
    if truth.get("overlap"):
        return (f"overlapping harms: under-exposure harm below {floor:g}, over-exposure harm above {ceiling:g} "
                f"{unit} ({truth['effect']} effect)")
    parts = [f"floor {floor:g}" if floor is not None else "no floor (no under-exposure harm)",
             f"ceiling {ceiling:g}" if ceiling is not None else "no ceiling (no over-exposure harm)"]
    return f"true {', '.join(parts)} {unit} ({truth['effect']} effect)"
