"""``atgwin promote WINDOW``: gate-checked promotion of a candidate window to ``validated``.

Where windows live is a *store*, chosen from the reference given on the command line by
:data:`STORES` (first match wins). This module ships the JSON-file store; the MLflow registry
store (``models:/<name>@candidate``, :class:`RegistryStore` below) is inserted at the front of
``STORES``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import click

from ml._defaults import PROMOTION as GATES


class WindowStore(Protocol):
    """Somewhere an ``ExposureWindow`` can be read from and written to."""

    def load(self, ref: str):
        """Read the window named ``ref``."""

    def save(self, window, ref: str | None) -> str:
        """Write ``window`` (to ``ref``, or where it came from); return where it went."""


def validated_path(ref: str | Path) -> Path:
    """Where a promoted window is written by default: beside the candidate, ``NAME.validated.json``."""
    path = Path(ref)
    return path.with_name(f"{path.name.removesuffix('.json')}.validated.json")


class JsonFileStore:
    """Windows as JSON files (``ExposureWindow.to_json`` / ``from_json``).

    The candidate file is never changed: ``save`` writes beside it (:func:`validated_path`) unless
    given another file.
    """

    def __init__(self):
        self._source: str | None = None

    def load(self, ref: str):
        from ml.window import ExposureWindow

        path = Path(ref)
        if not path.is_file():
            raise click.ClickException(f"{ref}: no such window file")
        try:
            window = ExposureWindow.from_json(path)
        except (ValueError, TypeError, KeyError) as exc:
            raise click.ClickException(f"{ref}: not a valid ExposureWindow: {exc}") from None
        self._source = ref
        return window

    def save(self, window, ref: str | None) -> str:
        if ref is None and self._source is None:
            raise click.ClickException("nowhere to write the window: give --out")
        target = Path(ref) if ref is not None else validated_path(self._source)
        window.to_json(target)
        return str(target)


#: (matches reference?, store factory), tried in order.
STORES: list[tuple[Callable[[str], bool], Callable[[], WindowStore]]] = [
    (lambda ref: True, JsonFileStore),
]


# --- MLflow model registry (models:/NAME@ALIAS, models:/NAME/VERSION); the store lives in ml.tracking ---
class RegistryStore:
    """``ml.tracking.RegistryWindowStore`` behind the :class:`WindowStore` protocol.

    ``save`` registers the validated window as a new version with alias ``validated`` (who and
    why as tags; ``--out`` also writes the JSON). :meth:`recorded_gates` are the gates the
    experiment registered with the version; they apply unless given on the command line.
    """

    def __init__(self):
        from ml.tracking import RegistryWindowStore, TrackingError

        try:
            self._store = RegistryWindowStore()
        except TrackingError as exc:  # a tracking server that does not answer
            raise click.ClickException(str(exc)) from None

    def load(self, ref: str):
        from ml.tracking import TrackingError

        try:
            return self._store.load(ref)
        except (TrackingError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None

    def save(self, window, ref: str | None) -> str:
        from ml.tracking import TrackingError

        try:
            return self._store.save(window, ref)
        except TrackingError as exc:
            raise click.ClickException(str(exc)) from None

    def recorded_gates(self):
        return self._store.recorded_gates()


STORES.insert(0, (lambda ref: ref.startswith("models:/"), RegistryStore))


def _gates_for(store, given):
    """The store's recorded gates (registry), overridden by any gate option given explicitly."""
    recorded = getattr(store, "recorded_gates", lambda: None)()
    if recorded is None:
        return given
    from click.core import ParameterSource

    ctx = click.get_current_context()
    names = ("alpha", "max_ci_width", "min_events")
    explicit = {n for n in names if ctx.get_parameter_source(n) is not ParameterSource.DEFAULT}
    return type(given)(**{n: getattr(given if n in explicit else recorded, n) for n in names})
# --- end of the registry store ---


def resolve_store(ref: str) -> WindowStore:
    """The store responsible for reference ``ref`` (first match in :data:`STORES`)."""
    for matches, factory in STORES:
        if matches(ref):
            return factory()
    raise click.ClickException(f"no window store understands {ref!r}")


@click.command("promote")
@click.argument("window_ref", metavar="WINDOW")
@click.option("--by", "by", required=True, help="Who promotes (recorded in the window).")
@click.option("--reason", required=True, help="Why (recorded in the window).")
@click.option("--alpha", default=GATES["alpha"], show_default=True,
              type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Gate: the adjusted p-value (joint, and of each side) must be below this.")
@click.option("--max-ci-width", default=GATES["max_ci_width"], show_default=True, type=click.FloatRange(0, min_open=True),
              help="Gate: largest width of each bound's 95% interval, in the window's unit. On 400 simulated urd "
                   "cohorts the median width was about 29 UE*day/mL and the 90th percentile about 50 "
                   "(docs/benchmarks.md, benefit-harm): 50 lets nine in ten true windows through.")
@click.option("--min-events", default=GATES["min_events"], show_default=True, type=click.IntRange(0),
              help="Gate: smallest number of events behind the window, and on each side.")
@click.option("--out", default=None,
              help="Where to write the validated window (default: beside a WINDOW file, as NAME.validated.json; "
                   "the candidate is never changed).")
def promote(window_ref: str, by: str, reason: str, alpha: float, max_ci_width: float, min_events: int,
            out: str | None) -> None:
    """Promote the candidate window WINDOW (a JSON file, or models:/NAME@candidate) to 'validated'
    if it passes every gate (for a registered window: the gates its experiment set, unless given).

    Exits non-zero, listing every failing gate, when it does not; nothing is written then.
    """
    from ml.cli._common import prepare_out
    from ml.window import PromotionError, PromotionGates, SigningKey, promote_window

    prepare_out(out)
    if out is not None and not window_ref.startswith("models:/") and Path(out).resolve() == Path(window_ref).resolve():
        raise click.UsageError(f"--out {out}: is the candidate itself; the candidate is never changed")
    try:
        key = SigningKey.from_env()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    store = resolve_store(window_ref)
    window = store.load(window_ref)
    gates = _gates_for(store, PromotionGates(alpha=alpha, max_ci_width=max_ci_width, min_events=min_events))
    try:
        validated = promote_window(window, gates, by=by, reason=reason, key=key, run_status=_run_status)
    except PromotionError as exc:
        lines = "\n".join(f"  FAILED: {g}" for g in exc.failed)
        raise click.ClickException(f"{window_ref}: promotion refused, {len(exc.failed)} gate(s) failed:\n{lines}") from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    where = store.save(validated, out)
    click.echo(validated.provenance)
    if validated.simulated:
        click.secho("SIMULATED DATA: this window was learned on a virtual cohort.", bold=True)
    for g in validated.gates_passed:
        click.echo(f"  passed: {g}")
    click.echo(f"Promoted to 'validated' by {by}: {where}")
    if key is None:
        click.echo("warning: no signing key (ATGWIN_SIGNING_KEY or ATGWIN_SIGNING_KEY_FILE): the validated window is "
                   "unsigned, and `atgwin dose` uses it only under an explicit override", err=True)
    else:
        click.echo(f"signed with key {key.key_id} ({key.origin})")


def _run_status(run_id: str) -> str:
    """Status of the run that wrote the window, in the tracking store (``ml.tracking``)."""
    from ml.tracking import RunTracker, resolve_tracking_uri, sqlite_path

    uri = resolve_tracking_uri()
    db = sqlite_path(uri)
    if db is not None and not db.exists():  # looking a run up must not create an empty store
        raise LookupError(f"no tracking store at {uri} (set MLFLOW_TRACKING_URI to the store of run {run_id})")
    return RunTracker(uri).run_status(run_id)
