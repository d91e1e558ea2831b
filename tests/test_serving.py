"""Serving as a documented contract, and under load (issue 14).

The README's section "Serving" is run as written: its ``bash`` block registers the dosing engine
with the published haplo protocol window and serves it with ``atgwin serve`` (a child process
with this interpreter, loopback only, a free port, bounded waits, always stopped, and ``PATH``
emptied of the virtual environment to show that nothing is looked up there). The README's
request is posted verbatim and the answer compared with the README's response (strings exactly,
numbers to 1e-9 relative), and with the engine called in-process (same seed). Then a bounded load
(8 concurrent clients; scripts/bench_serving.py sends 500 and reports the latencies in
docs/benchmarks.md) and malformed requests, each answered 4xx with a message while the server
stays up. Everything that needs the server runs in ONE test: starting it costs seconds.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from ml.cli import main

from test_dosing_support import virtual_patients

pytest.importorskip("mlflow")
from ml.tracking import load_test, post_json, running_server  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"
PREFIX = ".venv/bin/atgwin"
LOAD_REQUESTS, LOAD_CLIENTS = 24, 8  # 500 in scripts/bench_serving.py


def readme_serving() -> tuple[dict, list[list[str]], dict, dict]:
    """The section's environment, its atgwin commands (in order), its request and its response."""
    section = README.read_text().split("\n## Serving\n", 1)[1].split("\n## ", 1)[0]
    env, commands = {}, []
    for line in re.search(r"```bash\n(.*?)```", section, re.S).group(1).splitlines():
        line = line.split("  #", 1)[0].strip()
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            env[key] = shlex.split(value)[0]
        elif line:
            assert line.startswith(PREFIX + " "), f"README Serving: not an atgwin command: {line!r}"
            commands.append(shlex.split(line)[1:])
    request, response = (json.loads(b) for b in re.findall(r"```json\n(.*?)```", section, re.S))
    return env, commands, request, response


def assert_same(actual, expected, where="response"):
    """Equal JSON, numbers to 1e-9 relative (the README's figures are this code's, printed in full)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and sorted(actual) == sorted(expected), f"{where}: keys differ"
        for k in expected:
            assert_same(actual[k], expected[k], f"{where}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: lengths differ"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, f"{where}[{i}]")
    elif isinstance(expected, float) and not isinstance(expected, bool):
        assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12), f"{where}: {actual} != {expected}"
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def test_the_readme_says_how_to_serve():
    env, commands, request, response = readme_serving()
    assert "ATGWIN_SIGNING_KEY" in env
    assert [c[0] for c in commands] == ["protocol-window", "promote", "dose", "serve"]
    assert "--register" in commands[2] and commands[3][1] == "models:/atg-dosing@current"
    assert request["dataframe_records"][0]["doses"][0]["dose_mg"] == 175  # an integer, as JSON.stringify sends it
    top = response["predictions"][0]
    assert {"status", "simulated", "warnings", "caveats", "reason", "recommendation"} <= set(top)
    assert isinstance(top["recommendation"], dict)  # an object, not a JSON string inside the JSON
    res = CliRunner().invoke(main, ["serve", "--help"])
    assert res.exit_code == 0 and "POST /invocations" in res.output


def test_the_readme_request_is_served_under_load_and_malformed_requests_are_4xx(tmp_path, monkeypatch):
    env, commands, request, response = readme_serving()
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for key, value in {**env, "MLFLOW_TRACKING_URI": uri}.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    for args in commands[:-1]:
        result = runner.invoke(main, args)
        assert result.exit_code == 0, f"atgwin {shlex.join(args)} failed:\n{result.output}"
    assert "registered atg-dosing version 1 (models:/atg-dosing/1, alias current)" in result.output
    _registered_version_has_alias_and_tags(uri)

    serve = commands[-1]
    child_env = dict(os.environ, PATH="/usr/bin:/bin")  # no virtual environment on PATH
    with running_server(serve[1], env=child_env, log_path=str(tmp_path / "serve.log")) as url:
        status, answer = post_json(f"{url}/invocations", json.dumps(request).encode())
        assert status == 200, answer
        assert_same(answer, response)
        _served_is_the_engine(answer["predictions"][0], request)
        _load(url)
        _malformed_requests_are_4xx(url, request)
        status, answer = post_json(f"{url}/invocations", json.dumps(request).encode())
        assert status == 200 and answer["predictions"][0]["status"] == "recommended"  # still serving


def _registered_version_has_alias_and_tags(uri):
    import mlflow

    mv = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version_by_alias("atg-dosing", "current")
    assert str(mv.version) == "1"
    assert mv.tags["window_status"] == "validated"
    assert mv.tags["window_source"] == "example/serving/window.validated.json"
    assert mv.tags["window_integrity"] == "signed" and mv.tags["simulated"] == "false"
    assert (mv.tags["window_lower"], mv.tags["window_upper"]) == ("100.0", "148.5")
    assert mv.tags["n_samples"] == "256" and mv.tags["random_state"] == "0" and mv.tags["pk_model_digest"]


def _served_is_the_engine(served, request):
    """The server's answer is the engine's, called here with the same window, model and seed."""
    from ml.dosing import DosingEngine, LaplaceImportance, PatientData, load_window

    window = load_window("example/serving/window.validated.json")
    local = DosingEngine(posterior=LaplaceImportance(256), random_state=0).recommend(
        PatientData.from_dict(request["dataframe_records"][0]), window)
    assert served["doses_mg"] == [d.mg for d in local.doses]
    assert served["forecast_median"] == pytest.approx(local.forecast.median, rel=1e-12)
    assert served["recommendation"] == json.loads(json.dumps(local.to_dict()))


def _load(url):
    """LOAD_REQUESTS one-patient requests from LOAD_CLIENTS threads: all answered, each a recommendation
    or a refusal with its reason."""
    patients, _ = virtual_patients(LOAD_REQUESTS, seed=21)
    bodies = [json.dumps({"dataframe_records": [p]}).encode() for p in patients]
    report = load_test(url, bodies, clients=LOAD_CLIENTS, timeout_s=60)
    assert report.errors == 0, report.statuses
    assert report.outcomes.get("invalid", 0) == 0 and sum(report.outcomes.values()) == LOAD_REQUESTS, report.outcomes
    print(f"\n{LOAD_REQUESTS} requests, {LOAD_CLIENTS} clients: p50 {report.percentile(50):.2f} s, "
          f"p95 {report.percentile(95):.2f} s, wall {report.wall_s:.1f} s")


def _malformed_requests_are_4xx(url, request):
    good = request["dataframe_records"][0]

    def body(**change):
        patient = copy.deepcopy(good)
        for key, value in change.items():
            if value is None:
                del patient[key]
            else:
                patient[key] = value
        return json.dumps({"dataframe_records": [patient]}).encode()

    late = copy.deepcopy(good["levels"]) + [{"day": -2.5, "concentration": 3.0, "bloq": 0}]
    cases = {
        "missing weight": (body(weight_kg=None), 400, "weight_kg"),
        "wrong unit": (body(concentration_unit="AU/mL"), 400, "unit mismatch"),
        "level after the day -3 dose": (body(levels=late), 400, "drawn after the first adjustable infusion"),
        "dose as text": (body(doses=[dict(good["doses"][0], dose_mg="a lot")]), 400, "dose_mg"),
        "not JSON": (b"{not json", 400, "valid JSON"),
        "oversized body": (b"{" + b" " * (2 << 20) + b"}", 413, "over the limit"),
    }
    for name, (data, expected, message) in cases.items():
        status, answer = post_json(f"{url}/invocations", data)
        assert status == expected, f"{name}: HTTP {status}: {answer}"
        assert message in answer["message"], f"{name}: {answer}"
