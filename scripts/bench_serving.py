"""Benchmark of the served dosing engine (issue 14): 500 requests from 8 concurrent clients on loopback.

Usage::

    nice .venv/bin/python scripts/bench_serving.py [--requests 500] [--clients 8] [--seed 7]

Writes the "serving" section of docs/benchmarks.md. The server is the one the README's section
"Serving" documents: the published haplo protocol window, promoted and signed with a benchmark
key, registered with ``atgwin dose --register`` (default engine: 256 posterior draws, seed 0) in
a temporary SQLite store, and served by ``atgwin serve`` in a child process
(:func:`ml.tracking.running_server`). Each request is one virtual patient of a SIMULATED cohort
(``ml.sim.simulate_virtual``, scenario ``urd``; the levels drawn before the day -3 decision), sent by
:func:`ml.tracking.load_test` from ``--clients`` threads, each request with a 60 s timeout. The
same malformed requests as tests/test_serving.py are sent afterwards, and the server must still
answer. Reported: HTTP statuses, recommendations / refusals, p50 / p95 / max latency, throughput,
and, as a reference measured in the same script, the median time of one recommendation by the
engine in this process (the machine is shared, so absolute times are noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _benchdoc import provenance, write_section  # noqa: E402

from ml.dosing import AdjustmentSchedule, DosingEngine, LaplaceImportance, PatientData, patients_from_cohort  # noqa: E402
from ml.sim import simulate_virtual  # noqa: E402
from ml.tracking import load_test, post_json, running_server  # noqa: E402

KEY = "bench-serving signing key (not a secret)"


def register(folder: Path) -> str:
    """The README's commands, in-process: protocol window, promotion (signed), registration."""
    from click.testing import CliRunner

    from ml.cli import main

    window = folder / "serving" / "window.json"
    for args in (["protocol-window", "--preset", "haplo-2022", "--by", "bench", "--out", str(window)],
                 ["promote", str(window), "--by", "bench", "--reason", "serving benchmark"],
                 ["dose", "--window", str(window.with_name("window.validated.json")), "--register"]):
        res = CliRunner().invoke(main, args)
        if res.exit_code != 0:
            raise SystemExit(f"atgwin {' '.join(args)} failed:\n{res.output}")
    return "models:/atg-dosing@current"


def virtual_requests(n: int, seed: int) -> list[dict]:
    """``n`` one-patient request rows of a SIMULATED cohort (levels before the day -3 decision)."""
    virtual = simulate_virtual("urd", n=n, seed=seed)
    patients, _ = patients_from_cohort(virtual.cohort, AdjustmentSchedule().decision_time)
    rows = [p.to_dict() for p in patients if isinstance(p, PatientData)]
    return (rows * (n // max(len(rows), 1) + 1))[:n]


def malformed(good: dict) -> dict:
    """name -> (body, expected status); the cases of tests/test_serving.py."""
    def body(**change):
        patient = dict(good, **{k: v for k, v in change.items() if v is not None})
        for k in [k for k, v in change.items() if v is None]:
            del patient[k]
        return json.dumps({"dataframe_records": [patient]}).encode()

    late = list(good["levels"]) + [{"day": -2.5, "concentration": 3.0, "bloq": 0}]
    return {"missing weight": (body(weight_kg=None), 400), "wrong unit": (body(concentration_unit="AU/mL"), 400),
            "level after the day -3 dose": (body(levels=late), 400), "not JSON": (b"{not json", 400),
            "oversized body (2 MiB)": (b"{" + b" " * (2 << 20) + b"}", 413)}


def engine_reference(rows: list[dict], k: int = 20) -> float:
    """Median seconds of one recommendation by the engine in this process (same settings as served)."""
    from ml.tracking import load_window_source

    window = load_window_source(os.environ["BENCH_WINDOW"])
    engine = DosingEngine(posterior=LaplaceImportance(256), random_state=0)
    times = []
    for row in rows[:k]:
        t = time.perf_counter()
        engine.recommend(PatientData.from_dict(row), window)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ.update(ATGWIN_SIGNING_KEY=KEY, MLFLOW_TRACKING_URI=f"sqlite:///{folder / 'mlflow.db'}",
                          BENCH_WINDOW=str(folder / "serving" / "window.validated.json"))
        os.environ.pop("ATGWIN_SIGNING_KEY_FILE", None)
        t = time.perf_counter()
        model_uri = register(folder)
        t_register = time.perf_counter() - t
        rows = virtual_requests(args.requests, args.seed)
        bodies = [json.dumps({"dataframe_records": [r]}).encode() for r in rows]
        t = time.perf_counter()
        env = dict(os.environ, PATH="/usr/bin:/bin")
        with running_server(model_uri, env=env, log_path=str(folder / "serve.log")) as url:
            t_start = time.perf_counter() - t
            report = load_test(url, bodies, clients=args.clients, timeout_s=60)
            bad = {name: post_json(f"{url}/invocations", body)[0] for name, (body, _) in malformed(rows[0]).items()}
            alive = post_json(f"{url}/invocations", bodies[0])[0]
        reference = engine_reference(rows)
    expected = {name: status for name, (_, status) in malformed(rows[0]).items()}
    lat = np.asarray(report.latencies_s)
    bad_lines = "\n".join(f"| {name} | {expected[name]} | {bad[name]} |" for name in expected)
    md = f"""## Serving (the dosing engine over REST under load)

`nice .venv/bin/python scripts/bench_serving.py --requests {args.requests} --clients {args.clients} --seed {args.seed}`:
the README's "Serving" setup (haplo protocol window, signed; `atgwin dose --register`, 256 posterior
draws; `atgwin serve` in a child process, one worker, `PATH` without the virtual environment), on
loopback. {args.requests} one-patient requests (SIMULATED patients, scenario urd) from {args.clients} concurrent
client threads, 60 s timeout each.

| measure | value |
|---|---|
| requests answered 200 / errors | {report.statuses.get(200, 0)} / {report.errors} (statuses {dict(sorted(report.statuses.items()))}) |
| recommendations / refusals / invalid answers | {report.outcomes.get('recommended', 0)} / {report.outcomes.get('refused', 0)} / {report.outcomes.get('invalid', 0)} |
| latency p50 / p95 / max | {report.percentile(50):.2f} s / {report.percentile(95):.2f} s / {lat.max():.2f} s |
| throughput | {args.requests / report.wall_s:.1f} requests/s ({report.wall_s:.0f} s wall) |
| reference: one recommendation in-process (median of 20) | {reference:.2f} s |
| registration / server start (model load) | {t_register:.0f} s / {t_start:.0f} s |

With {args.clients} clients on this machine's {os.cpu_count()} cores a request waits for the others: the p50
latency is about {report.percentile(50) / reference:.1f} x the in-process time of one recommendation.
Malformed requests (then one good request, answered {alive}):

| request | expected | answered |
|---|---|---|
{bad_lines}

{provenance()}
"""
    print(md)
    if not args.no_write:
        print(f"wrote {write_section('serving', md)}")
    ok = report.errors == 0 and report.outcomes.get("invalid", 0) == 0 and bad == expected and alive == 200
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
