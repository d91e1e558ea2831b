"""``atgwin ui``: the MLflow UI on the local store (``sqlite:///mlflow.db``, artefacts beside it)."""

from __future__ import annotations

import subprocess

import click

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--tracking-uri", default=None,
              help="Store to serve (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")
@click.option("--print-command", is_flag=True, help="Print the command instead of starting the UI.")
def ui(host: str, port: int, tracking_uri: str | None, print_command: bool) -> None:
    """Start the MLflow UI on the local tracking store (Ctrl-C stops it)."""
    from ml.tracking import is_remote, resolve_tracking_uri, sqlite_path, ui_command

    uri = resolve_tracking_uri(tracking_uri)
    if is_remote(uri):
        click.echo(f"The tracking store is a server: open {uri} in a browser.")
        return
    db = sqlite_path(uri)
    if db is not None and not db.exists():
        click.echo(f"note: {db} does not exist yet; run `atgwin run experiments/urd_window.toml` first.", err=True)
    if host not in _LOOPBACK:
        click.echo(f"warning: --host {host} exposes the tracking store ({uri}: every run, window and registered "
                   "model, with no authentication) to every machine that can reach this one; use 127.0.0.1 "
                   "unless that is intended", err=True)
    cmd = ui_command(uri, host, port)
    if print_command:
        click.echo(" ".join(cmd))
        return
    click.echo(f"MLflow UI on {uri}: http://{host}:{port}  (Ctrl-C to stop)")
    try:
        raise SystemExit(subprocess.run(cmd, check=False).returncode)
    except KeyboardInterrupt:
        raise SystemExit(0) from None
