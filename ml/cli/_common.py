"""Small helpers shared by the command modules."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

SIMULATED_BANNER = "SIMULATED DATA: a virtual cohort, not patients. Results describe the simulator's assumptions."


def _blocking_file(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` when it is a file (so no folder can be made there)."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def prepare_out(path, option: str = "--out", *, folder: bool = False) -> Path | None:
    """Check an output path and create its folder now, before anything is computed.

    Parameters
    ----------
    path : str or Path or None
        The output file (or, with ``folder=True``, the output folder). None: nothing to check.
    option : str
        The command-line option that named it, quoted in the error.
    folder : bool
        ``path`` is itself a folder to create (``simulate --out``, ``run --out-dir``).

    Returns
    -------
    Path or None

    Raises
    ------
    click.UsageError
        A parent is a file, the path is a folder where a file is expected (or a file where a
        folder is), or the folder cannot be created or written to.
    """
    if path is None:
        return None
    path = Path(path)
    target = path if folder else path.parent
    blocking = path if folder and path.exists() and not path.is_dir() else _blocking_file(path)
    if blocking is not None:
        raise click.UsageError(f"{option} {path}: {blocking} is a file, not a folder")
    if not folder and path.is_dir():
        raise click.UsageError(f"{option} {path}: is a folder; give a file name")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.UsageError(f"{option} {path}: cannot create the folder {target}: {exc.strerror or exc}") from None
    if not os.access(target, os.W_OK | os.X_OK):
        raise click.UsageError(f"{option} {path}: the folder {target} is not writable")
    return path


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
        "--exposure-method", type=click.Choice(["map", "nca"]), default="map", show_default=True,
        help="AUC from the levels: the individual curve fitted by MAP Bayesian estimation under a population "
             "PK model (M3 for levels below the LLOQ: every patient with a dose and a level gets an AUC), or "
             "model-free NCA (loses the patients whose terminal slope cannot be estimated, typically the "
             "low-exposure tail; see docs/benchmarks.md, foundation).")(command)


def exposure_from_options(method: str = "map", pk_model: str | None = None):
    """The exposure strategy named on the command line (names become objects here, once).

    Raises
    ------
    click.UsageError
        ``--pk-model`` with ``--exposure-method nca``.
    click.ClickException
        A model file that cannot be read.
    """
    from ml.pk import PopPKModel, exposure_strategy

    if method == "nca" and pk_model:
        raise click.UsageError("--pk-model only applies to --exposure-method map")
    model = None
    if pk_model:
        try:
            model = PopPKModel.from_file(pk_model)
        except (OSError, ValueError, KeyError) as exc:
            raise click.ClickException(f"{pk_model}: not a population PK model: {exc}") from None
    # an absolute path: a window records it, and dosing resolves a relative one against the window's folder
    from pathlib import Path

    return exposure_strategy(method, model, source=str(Path(pk_model).resolve()) if pk_model else None)


def cohort_exposure(cohort, method: str = "map", pk_model: str | None = None, *, strategy=None,
                    with_model: bool = False, echo: bool = True):
    """Per-patient AUC table and its plain-text definition; a bad model file exits with its error.

    Every exclusion is counted on stderr, and under NCA the patients without an estimable AUC are
    compared with the others (``ml.pk.exposure_missingness``) with a warning that their absence
    is informative.

    Parameters
    ----------
    cohort : ml.cohort.Cohort
    method : {"map", "nca"}
    pk_model : str, optional
        Model file for ``"map"`` (default: the shipped prior).
    strategy : object, optional
        An exposure strategy (``ml.pk.MAPExposure``, ``ml.pk.NCAExposure``) instead of
        ``method``/``pk_model``.
    with_model : bool
        Also return the model record ``{"name", "digest", "source"}`` (None under NCA).
    echo : bool
        Print the exclusion counts and warnings to stderr.

    Returns
    -------
    (table, definition) or (table, definition, pk_model)
    """
    from ml.pk import exposure_missingness

    strategy = strategy if strategy is not None else exposure_from_options(method, pk_model)
    table = strategy.table(cohort)
    missing = exposure_missingness(cohort, table)
    table.attrs["missingness"] = missing
    if echo:
        for w in missing.warnings:
            click.echo(f"warning: {w}", err=True)
    definition = table.attrs["definition"]
    if with_model:
        return table, definition, table.attrs["pk_model"]
    return table, definition
