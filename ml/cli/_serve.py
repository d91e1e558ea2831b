"""``atgwin serve``: the registered dosing model over REST, with this interpreter (README, "Serving")."""

from __future__ import annotations

import click

__all__ = ["serve"]


@click.command("serve")
@click.argument("model_uri", default="models:/atg-dosing@current")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (loopback by default).")
@click.option("--port", default=5001, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option("--max-body-kb", default=1024, show_default=True, type=click.IntRange(1, 1 << 20),
              help="Largest request body accepted, KiB (larger: HTTP 413).")
def serve(model_uri, host, port, max_body_kb):
    """Serve the dosing model MODEL_URI (registered by 'atgwin dose --register') over REST.

    POST /invocations takes {"dataframe_records": [PATIENT, ...]} and answers
    {"predictions": [...]}, one recommendation or refusal per patient; GET /ping answers 200
    when the model is loaded. MLflow's scoring server runs in this process, so no 'uvicorn'
    program has to be on PATH. The registry is MLFLOW_TRACKING_URI (default
    sqlite:///mlflow.db); a signed window needs the centre's key (ATGWIN_SIGNING_KEY) here too.
    """
    from ml.tracking import resolve_tracking_uri
    from ml.tracking import serve as run

    uri = resolve_tracking_uri()
    click.echo(f"serving {model_uri} (registry {uri}) on http://{host}:{port}/invocations; Ctrl-C stops", err=True)
    try:
        run(model_uri, host=host, port=port, tracking_uri=uri, max_body_bytes=max_body_kb * 1024)
    except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds when a model cannot be loaded
        raise click.ClickException(f"cannot serve {model_uri}: {exc}") from None
