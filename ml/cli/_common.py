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
