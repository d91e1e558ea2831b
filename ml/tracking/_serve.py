"""Serve the registered dosing model over REST with this interpreter (``atgwin serve``).

MLflow's own scoring server (:func:`mlflow.pyfunc.scoring_server.init`: ``POST /invocations``,
``GET /ping``) run by uvicorn *in this process*, so nothing has to be found on ``PATH``
(``mlflow models serve`` starts ``uvicorn`` as a program and fails with "uvicorn: not found"
when the virtual environment is not activated). In front of it, :class:`BodyLimit` answers a
request body larger than ``max_body_bytes`` with HTTP 413 before the model sees it.
:func:`running_server` runs it in a child process for a block, and :func:`load_test` sends it a
bounded number of requests from concurrent clients (tests/test_serving.py,
scripts/bench_serving.py).
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass

from ml.tracking._uri import fluent_uri, resolve_tracking_uri

__all__ = ["MAX_BODY_BYTES", "BodyLimit", "LoadReport", "load_test", "mlflow_serve_command", "post_json",
           "running_server", "scoring_app", "serve"]

#: Largest request body accepted, bytes (1 MiB: a few thousand patients with days -5/-4 levels).
MAX_BODY_BYTES = 1 << 20


class BodyLimit:
    """ASGI middleware: refuse a request body over ``max_bytes`` with HTTP 413 and a JSON message.

    The declared ``Content-Length`` is checked first; a body sent without one (chunked) is read up
    to the limit and then passed on whole.

    Parameters
    ----------
    app : ASGI application
    max_bytes : int
        Largest body accepted, bytes.
    """

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES):
        if not (isinstance(max_bytes, int) and max_bytes > 0):
            raise ValueError(f"BodyLimit: `max_bytes > 0` must hold (an integer), got {max_bytes!r}")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _drain(receive, DRAIN_BYTES)
            return await self._refuse(send, int(declared))
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return await self.app(scope, _replay([message], receive), send)
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                if message.get("more_body", False):
                    await _drain(receive, DRAIN_BYTES)
                return await self._refuse(send, size)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        return await self.app(scope, _replay([body], receive), send)

    async def _refuse(self, send, size: int) -> None:
        text = json.dumps({"error_code": "REQUEST_TOO_LARGE",
                           "message": f"request body of {size} bytes or more is over the limit of {self.max_bytes} "
                                      "bytes; send fewer patients per request"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(text)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": text})


#: an oversized body is read and dropped up to this many bytes before the 413 is sent, so that a client
#: still sending it reads the answer instead of a broken pipe; beyond it the connection is just closed
DRAIN_BYTES = 64 * 1024 * 1024


async def _drain(receive, budget: int) -> None:
    """Read and discard the rest of a request body, at most ``budget`` bytes."""
    read = 0
    while read <= budget:
        message = await receive()
        if message["type"] != "http.request":
            return
        read += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _replay(messages: list, receive):
    """A ``receive`` that returns ``messages`` first, then defers to the real one."""
    pending = list(messages)

    async def replay():
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def scoring_app(model_uri: str, *, tracking_uri: str | None = None, max_body_bytes: int = MAX_BODY_BYTES):
    """The ASGI application serving ``model_uri`` (MLflow's scoring server behind :class:`BodyLimit`).

    Parameters
    ----------
    model_uri : str
        ``models:/atg-dosing@current``, ``models:/atg-dosing/3``, ``runs:/...`` or a local model folder.
    tracking_uri : str, optional
        Registry to resolve ``models:/`` in (default: ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``).
    max_body_bytes : int
        Largest request body accepted, bytes.

    Returns
    -------
    BodyLimit
    """
    import mlflow
    from mlflow.pyfunc import scoring_server

    with fluent_uri(resolve_tracking_uri(tracking_uri)):
        model = mlflow.pyfunc.load_model(model_uri)
    return BodyLimit(scoring_server.init(model), max_body_bytes)


def serve(model_uri: str, *, host: str = "127.0.0.1", port: int = 5001, tracking_uri: str | None = None,
          max_body_bytes: int = MAX_BODY_BYTES) -> None:
    """Serve ``model_uri`` until interrupted (uvicorn in this process, one worker).

    Parameters
    ----------
    model_uri : str
    host : str
        Interface to listen on (default loopback only).
    port : int
    tracking_uri : str, optional
    max_body_bytes : int
    """
    import uvicorn

    uvicorn.run(scoring_app(model_uri, tracking_uri=tracking_uri, max_body_bytes=max_body_bytes), host=host,
                port=port, log_level="warning", timeout_graceful_shutdown=5)


def mlflow_serve_command(model_uri: str, *, host: str = "127.0.0.1", port: int = 5001) -> tuple[list[str], dict]:
    """``mlflow models serve`` with this interpreter, and the environment that lets it find ``uvicorn``.

    For deployments that prefer MLflow's own command (no :class:`BodyLimit` in front).

    Returns
    -------
    command : list of str
        Arguments for :func:`subprocess.run`.
    env : dict
        ``os.environ`` with this interpreter's ``bin`` folder first on ``PATH``.
    """
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
           "-h", host, "-p", str(port), "-w", "1"]
    return cmd, env


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextmanager
def running_server(model_uri: str, *, host: str = "127.0.0.1", port: int | None = None, env: dict | None = None,
                   startup_s: float = 180.0, log_path: str | None = None):
    """``atgwin serve MODEL_URI`` in a child process (this interpreter), for as long as the block runs.

    The child runs ``python -m ml.cli serve`` in its own process group; the block starts once
    ``GET /ping`` answers 200, and the group is terminated (then killed) when it ends.

    Parameters
    ----------
    model_uri : str
    host : str
    port : int, optional
        Default: a free port.
    env : dict, optional
        The child's environment (default ``os.environ``); ``PATH`` is not needed.
    startup_s : float
        Longest wait for the model to load, seconds.
    log_path : str, optional
        Where the child's output goes (default: discarded).

    Yields
    ------
    str
        The base URL, e.g. ``http://127.0.0.1:5001``.

    Raises
    ------
    RuntimeError
        The server exited or did not answer within ``startup_s`` (with the end of its log).
    """
    import signal
    import subprocess
    import time
    import urllib.request

    import ml

    port = port or _free_port(host)
    url = f"http://{host}:{port}"
    env = dict(os.environ if env is None else env)  # the child runs the code of this process
    root = os.path.dirname(os.path.dirname(os.path.abspath(ml.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    out = open(log_path or os.devnull, "w")
    proc = subprocess.Popen([sys.executable, "-m", "ml.cli", "serve", model_uri, "--host", host, "--port", str(port)],
                            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = open(log_path).read()[-3000:] if log_path else "(no log)"
                raise RuntimeError(f"the server for {model_uri} did not start within {startup_s:g} s "
                                   f"(exit code {proc.poll()}):\n{tail}")
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.25)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        out.close()


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_test` measured.

    Attributes
    ----------
    requests, clients : int
        Requests sent, and concurrent clients (threads) that sent them.
    statuses : dict
        HTTP status -> count (``0``: no answer within the timeout or connection error).
    outcomes : dict
        Per patient in the 200 answers: ``recommended`` / ``refused`` / ``invalid`` (neither, or a
        refusal without a reason, or a recommendation without doses) -> count.
    latencies_s : tuple of float
        Wall time of each request, seconds, in the order they finished.
    wall_s : float
        Wall time of the whole run, seconds.
    """

    requests: int
    clients: int
    statuses: dict
    outcomes: dict
    latencies_s: tuple
    wall_s: float

    @property
    def errors(self) -> int:
        """Requests not answered 200."""
        return self.requests - self.statuses.get(200, 0)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile of the latencies, seconds (linear interpolation)."""
        import numpy as np

        return float(np.percentile(self.latencies_s, q))


def post_json(url: str, body: bytes, timeout_s: float = 60.0) -> tuple[int, dict | str]:
    """POST ``body`` as JSON to ``url``; the status and the decoded answer (0 and the error when none came)."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


def _outcome(prediction) -> str:
    if not isinstance(prediction, dict):
        return "invalid"
    if prediction.get("status") == "recommended" and prediction.get("doses_mg"):
        return "recommended"
    if prediction.get("status") == "refused" and prediction.get("reason"):
        return "refused"
    return "invalid"


def load_test(url: str, bodies: list[bytes], *, clients: int = 8, timeout_s: float = 60.0) -> LoadReport:
    """Send every body of ``bodies`` to ``url`` (``POST /invocations``) from ``clients`` threads.

    Bounded: exactly ``len(bodies)`` requests, each with ``timeout_s``.

    Returns
    -------
    LoadReport
    """
    import time
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    def one(body):
        t = time.perf_counter()
        status, answer = post_json(f"{url}/invocations", body, timeout_s)
        predictions = answer.get("predictions", []) if status == 200 and isinstance(answer, dict) else []
        return status, [_outcome(p) for p in predictions], time.perf_counter() - t

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(one, bodies))
    wall = time.perf_counter() - start
    return LoadReport(requests=len(bodies), clients=clients, statuses=dict(Counter(r[0] for r in results)),
                      outcomes=dict(Counter(o for r in results for o in r[1])),
                      latencies_s=tuple(r[2] for r in results), wall_s=wall)
