"""The ``atgwin`` command line.

Each command lives in its own module and is imported only when it is called, so that
``atgwin simulate`` does not pay for importing MLflow or SHAP. To add a command, add a line
to ``_COMMANDS``: ``name -> "module:attribute"`` (a :class:`click.Command`).
"""

from __future__ import annotations

import importlib

import click

_COMMANDS: dict[str, str] = {
    "simulate": "ml.cli._simulate:simulate",
    "validate": "ml.cli._validate:validate",
    "exposure": "ml.cli._exposure:exposure",
    "discover": "ml.cli._discover:discover",
    "promote": "ml.cli._promote:promote",
    "protocol-window": "ml.cli._protocol:protocol_window",
    "run": "ml.cli._run:run",
    "publish": "ml.cli._publish:publish",
    "runs": "ml.cli._runs:runs",
    "report": "ml.cli._report:report",
    "ui": "ml.cli._ui:ui",
    "dose": "ml.cli._dose:dose",
    "serve": "ml.cli._serve:serve",
    "trial": "ml.cli._trial:trial",
    "poppk": "ml.cli._poppk:poppk",
}


class _LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use.

    A file-system error that reaches it (a file that cannot be read or written) is a user
    error: it ends the command with one line naming the file, not a traceback. Every command
    runs with MLflow's HTTP retries bounded (``ml.tracking.bounded_http``; the user's own settings
    win), so that ``report``, ``promote`` or ``dose`` against a tracking server that does not answer
    end within seconds.
    """

    def invoke(self, ctx: click.Context):
        from ml.tracking._store import bounded_http

        bounded_http()  # a tracking server that does not answer costs seconds, not MLflow's minutes of retries
        try:
            return super().invoke(ctx)
        except OSError as exc:
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in _COMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = _COMMANDS.get(name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # command not built yet
            if exc.name == module_name:
                return None
            raise
        return getattr(module, attribute)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="atg-window")
def main() -> None:
    """Find, validate and apply the optimal ATG exposure window.

    Results derived from virtual cohorts are marked as simulated.
    """
