"""``atgwin validate DIR``: check a cohort folder against the contract (docs/cohort-format.md)."""

from __future__ import annotations

from pathlib import Path

import click


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@click.command("validate")
@click.argument("directory", type=click.Path(path_type=Path))
def validate(directory: Path) -> None:
    """Check the cohort folder DIRECTORY against the cohort format.

    Valid: prints a one-line summary (exit 0); eligibility warnings follow on stderr.
    Invalid: prints every violation on stderr, one per line (exit 1): the rule, the offending
    rows as CSV line numbers (the header is line 1) and their patient ids.
    """
    from ml.cohort import validate_cohort

    report = validate_cohort(directory)
    if not report.ok:
        click.echo(f"{directory}: invalid cohort, {_plural(len(report.violations), 'violation')}",
                   err=True)
        for line in report.located_messages:
            click.echo(line, err=True)
        raise SystemExit(1)
    cohort = report.cohort
    levels = ("no level data (auc_total)" if not cohort.has_levels else
              f"{_plural(len(cohort.doses), 'dose')}, {_plural(len(cohort.levels), 'level')}")
    click.echo(
        f"{directory}: valid cohort {cohort.meta.name!r}, {_plural(cohort.n, 'patient')}, "
        f"{levels}, unit {cohort.meta.concentration_unit}, "
        f"simulated: {'yes' if cohort.meta.simulated else 'no'}, "
        f"digest {cohort.digest[:12]}, {_plural(len(report.warnings), 'warning')}")
    for line in report.located_warning_messages:
        click.echo(f"warning: {line}", err=True)
