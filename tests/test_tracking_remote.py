"""A tracking server that does not answer: every command that needs it says so in one line, within seconds.

A closed loopback port stands for the server (connection refused). Without bounded HTTP retries
(``ml.tracking.bounded_http``) MLflow retries for minutes; ``report`` did before this check.
"""

from __future__ import annotations

import socket
import time

import pytest
from click.testing import CliRunner

from ml.cli import main


@pytest.fixture
def dead_server(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    uri = f"http://127.0.0.1:{port}"
    from ml.tracking import HTTP_DEFAULTS

    for key in HTTP_DEFAULTS:  # as a user leaves them (unset)
        monkeypatch.delenv(key, raising=False)
    return uri


@pytest.mark.parametrize("args", [["report", "some-run", "--out", "{tmp}/r.html"],
                                  ["promote", "models:/atg-window-x@candidate", "--by", "A", "--reason", "B"],
                                  ["dose", "--window", "models:/atg-window-x@validated", "--register"]],
                         ids=["report", "promote", "dose"])
def test_an_unreachable_server_is_one_line_in_seconds(dead_server, tmp_path, args):
    t0 = time.monotonic()
    result = CliRunner().invoke(main, [a.format(tmp=tmp_path) for a in args], env={"MLFLOW_TRACKING_URI": dead_server})
    assert time.monotonic() - t0 < 30
    assert result.exit_code != 0 and (result.exception is None or isinstance(result.exception, SystemExit))
    assert "Traceback" not in result.output and dead_server.split("//")[1] in result.output, result.output
