"""Small helpers shared by the command modules."""

from __future__ import annotations

import sys

import click

SIMULATED_BANNER = "SIMULATED DATA: a virtual cohort, not patients. Results describe the simulator's assumptions."


def show_progress() -> bool:
    """Progress bars only on an interactive terminal (not in CI logs or pipes)."""
    return sys.stderr.isatty()


def load_cohort_or_exit(path: str):
    """Load a cohort or exit with every violation (exit code 1), nothing computed."""
    from ml.cohort import CohortValidationError, load_cohort

    try:
        cohort = load_cohort(path)
    except CohortValidationError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None
    for warning in cohort.warnings:
        click.echo(f"warning: {warning}", err=True)
    if cohort.meta.simulated:
        click.echo(SIMULATED_BANNER, err=True)
    return cohort


def exposure_options(command):
    """``--exposure-method`` and ``--pk-model`` (how AUCs are computed from the levels)."""
    command = click.option(
        "--pk-model", "pk_model", type=click.Path(exists=True, dir_okay=False), default=None,
        help="Population PK model (TOML or JSON, e.g. from `atgwin poppk fit`) for --exposure-method map "
             "(default: the shipped assumption set).")(command)
    return click.option(
        "--exposure-method", type=click.Choice(["nca", "map"]), default="nca", show_default=True,
        help="AUC from the levels: model-free NCA, or the individual curve fitted by MAP Bayesian "
             "estimation under a population PK model (see docs/benchmarks.md, foundation).")(command)


def cohort_exposure(cohort, method: str = "nca", pk_model: str | None = None):
    """Per-patient AUC table and its plain-text definition; a bad model file exits with its error."""
    from ml.pk import PopPKModel, exposure_definition, exposure_table

    if method == "nca" and pk_model:
        raise click.UsageError("--pk-model only applies to --exposure-method map")
    model = None
    if pk_model:
        try:
            model = PopPKModel.from_file(pk_model)
        except (OSError, ValueError, KeyError) as exc:
            raise click.ClickException(f"{pk_model}: not a population PK model: {exc}") from None
    table = exposure_table(cohort, method=method, model=model)
    return table, exposure_definition(method, None if model is None else f"{model.name} ({pk_model})")
