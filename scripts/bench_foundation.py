"""Benchmark of the foundation: simulator throughput and NCA accuracy (issue 2).

Usage: ``python scripts/bench_foundation.py [--n 100000] [--nca-n 5000]``. Writes the
"foundation" section of docs/benchmarks.md. Everything here runs on virtual (simulated) cohorts.

Speed is reported beside a reference run in the same process: the same PK model integrated per
patient with scipy's LSODA (rtol 1e-8), the way a straightforward implementation would do it.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _benchdoc import provenance, write_section  # noqa: E402

from ml.pk import PopPKModel, exposure_table, infusions_from_doses, simulate  # noqa: E402
from ml.sim import simulate_virtual  # noqa: E402


def lsoda_reference(virtual, n_ref: int) -> float:
    """Seconds per patient for per-patient LSODA of the same model, design and AUCs."""
    cohort, truth = virtual.cohort, virtual.truth
    model = PopPKModel.default()
    ids = cohort.patients["patient_id"].to_numpy()[:n_ref]
    inf = infusions_from_doses(cohort.doses[cohort.doses["patient_id"].isin(ids)], ids, model.active_fraction)
    times = np.unique(cohort.levels["day"].to_numpy())
    start = time.perf_counter()
    for i in range(n_ref):
        p = truth.iloc[i]
        mine = inf.patient == i
        s, e, r = inf.start[mine], inf.end[mine], inf.rate[mine]

        def rhs(t, y, p=p, s=s, e=e, r=r):
            c = y[0] / p.V1
            rate = r[(s <= t) & (t < e)].sum()
            return [rate - p.CL * c - p.Vmax * c / (p.Km + c) - p.Q * c + p.Q * y[1] / p.V2,
                    p.Q * c - p.Q * y[1] / p.V2, c]

        y = np.zeros(3)
        bounds = np.unique(np.r_[s, e, times, 0.0, 90.0])
        for a, b in zip(bounds[:-1], bounds[1:]):
            y = solve_ivp(rhs, (a, b), y, method="LSODA", rtol=1e-8, atol=1e-10).y[:, -1]
    return (time.perf_counter() - start) / n_ref


def throughput(n: int) -> dict:
    start = time.perf_counter()
    virtual = simulate_virtual("urd", n=n, seed=1)
    total = time.perf_counter() - start
    model = PopPKModel.default()
    c = virtual.cohort
    ids = c.patients["patient_id"].to_numpy()
    inf = infusions_from_doses(c.doses, ids, model.active_fraction)
    params = model.individual(c.patients["weight_kg"], c.patients["alc_pre_atg"])
    params = type(params)(**{k: virtual.truth[k].to_numpy() for k in ("CL", "V1", "Q", "V2", "Vmax", "Km")})
    times = np.unique(c.levels["day"].to_numpy())
    start = time.perf_counter()
    simulate(params, inf, times)
    pk_only = time.perf_counter() - start
    per_patient_lsoda = lsoda_reference(virtual, 200)
    return {"n": n, "total_s": total, "pk_s": pk_only, "lsoda_s_per_patient": per_patient_lsoda}


def misspecified_model() -> PopPKModel:
    """A deliberately wrong population model: typical CL x1.25, V1 x0.8, Vmax x1.5, Km x0.5, IIV x1.3."""
    m = PopPKModel.default()
    factor = {"CL": 1.25, "V1": 0.8, "Vmax": 1.5, "Km": 0.5}
    return replace(m, typical={k: v * factor.get(k, 1.0) for k, v in m.typical.items()},
                   iiv={k: v * 1.3 for k, v in m.iiv.items()})


#: (row label, residual error of the levels (None: the spec's), exposure method, population model for MAP)
ACCURACY_ROWS = (
    ("NCA, noisy (spec residual error)", None, "nca", None),
    ("NCA, noiseless (method error only)", {"proportional": 0.0, "additive": 0.0, "lloq": 0.0}, "nca", None),
    ("NCA, 20 % proportional error only (LLOQ 0.5)", {"proportional": 0.2, "additive": 0.0, "lloq": 0.5},
     "nca", None),
    ("NCA, 0.3 UE/mL additive error only (LLOQ 0.5)", {"proportional": 0.0, "additive": 0.3, "lloq": 0.5},
     "nca", None),
    ("MAP, noisy, true population model", None, "map", None),
    ("MAP, noisy, misspecified population model", None, "map", "misspecified"),
)


def exposure_accuracy(n: int, seeds=(11, 12, 13)) -> dict:
    rows = {}
    for label, residual, method, pop in ACCURACY_ROWS:
        errors = {k: [] for k in ("auc_pre", "auc_post", "auc_total")}
        failed, seconds = 0, 0.0
        for seed in seeds:
            model = PopPKModel.default()
            if residual is not None:
                model = replace(model, residual=residual)
            v = simulate_virtual("urd", n=n, seed=seed, pk_model=model)
            start = time.perf_counter()
            est = exposure_table(v.cohort, method=method, model=misspecified_model() if pop else None)
            seconds += time.perf_counter() - start
            failed += int(est["auc_total"].isna().sum())
            for k in errors:
                errors[k].append(100 * (est[k].to_numpy() / v.truth[k].to_numpy() - 1))
        rows[label] = {k: np.concatenate(v) for k, v in errors.items()} | {
            "failed": failed, "ms_per_patient": 1e3 * seconds / (n * len(seeds))}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--nca-n", type=int, default=3000)
    parser.add_argument("--no-write", action="store_true", help="print the section, leave docs alone")
    args = parser.parse_args()
    t = throughput(args.n)
    acc = exposure_accuracy(args.nca_n)
    rate = t["n"] / t["total_s"]
    ratio = t["lsoda_s_per_patient"] * t["n"] / t["pk_s"]
    lines = [
        "## Foundation: simulator throughput and NCA accuracy (issue 2)",
        "",
        "Command: `python scripts/bench_foundation.py` (SIMULATED cohorts, scenario `urd`).",
        provenance(),
        "",
        "### Simulator throughput",
        "",
        "| what | value | target |",
        "|---|---|---|",
        f"| {t['n']:,} virtual patients, full PK (19 samples each) + outcomes + contract validation | "
        f"{t['total_s']:.1f} s ({rate:,.0f} patients/s) | < 60 s |",
        f"| of which the PK integration alone | {t['pk_s']:.1f} s | |",
        f"| speed-up of the vectorised RK4 over per-patient LSODA (rtol 1e-8), same model and design, "
        f"same process | x{ratio:,.0f} | (ratio; reference {t['lsoda_s_per_patient'] * 1e3:.0f} ms/patient on 200 patients) |",
        "",
        "### Accuracy of the AUCs from the levels against the true (noiseless model) AUC",
        "",
        f"{args.nca_n:,} patients x {3} seeds; absolute percentage error, median and 90th percentile; "
        "signed median shows bias. Target: median absolute error of `auc_total` <= 5 %. "
        "`ml.pk.exposure_table(method=\"nca\")` is model-free NCA (linear-up/log-down, adjusted-R^2 "
        "terminal slope, predicted C_last); `method=\"map\"` fits each patient's curve to all of their "
        "levels (MAP Bayesian, M3 for below-LLOQ samples) under a population model and integrates it. "
        f"The misspecified model is {misspecified_model.__doc__.split(': ')[1].rstrip('.')}.",
        "",
        "| method, data | AUC | median abs % error | 90th pct abs % error | median signed % error "
        "| not estimable | ms per patient |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, errs in acc.items():
        for k in ("auc_pre", "auc_post", "auc_total"):
            e = errs[k]
            last = k == "auc_total"
            failed = errs["failed"] if last else ""
            ms = f"{errs['ms_per_patient']:.2f}" if last else ""
            lines.append(f"| {label} | `{k}` | {np.nanmedian(np.abs(e)):.2f} | {np.nanpercentile(np.abs(e), 90):.2f} | "
                         f"{np.nanmedian(e):+.2f} | {failed} | {ms} |")
    nca = np.nanmedian(np.abs(acc[ACCURACY_ROWS[0][0]]["auc_total"]))
    mp = np.nanmedian(np.abs(acc[ACCURACY_ROWS[4][0]]["auc_total"]))
    bad = np.nanmedian(np.abs(acc[ACCURACY_ROWS[5][0]]["auc_total"]))
    prop, add = (acc[ACCURACY_ROWS[i][0]]["auc_total"] for i in (2, 3))
    lines += ["", f"Target median <= 5 % for `auc_total`: NCA {nca:.2f} % (**{'met' if nca <= 5 else 'not met'}**), "
              f"MAP {mp:.2f} % (**{'met' if mp <= 5 else 'not met'}**; {bad:.2f} % under the misspecified model).",
              "",
              "Without residual error the same NCA is within a fraction of a percent: its error on real-looking "
              "levels is the spec's 20 % + 0.3 UE/mL residual error, which a trapezoid passes through sample "
              "by sample (the post-transplant part rests on single levels on days 0, 3, 7, 14, 21 and on a "
              "terminal slope from three or four of them). Taken apart, the proportional error alone gives "
              f"{np.nanmedian(np.abs(prop)):.2f} % (signed {np.nanmedian(prop):+.2f} %) and the additive error alone "
              f"{np.nanmedian(np.abs(add)):.2f} % (signed {np.nanmedian(add):+.2f} %): near the LLOQ the additive "
              "error dominates, and the quantifiable tail levels are the ones that happened to be read high, "
              "so the terminal slope comes out too shallow and the AUC too large. MAP pools all of a patient's levels through the "
              "model's shape, so one noisy level moves the curve less. NCA stays the default exposure "
              "(`atgwin exposure`, `discover`, experiments) because it assumes no model; "
              "`--exposure-method map` (with `--pk-model` from `atgwin poppk fit`) is the more accurate choice "
              "when a population model is trusted."]
    if not args.no_write:
        write_section("foundation", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
