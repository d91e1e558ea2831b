"""Benchmark of the benefit-harm window search (docs/benchmarks.md, section "benefit-harm").

On virtual cohorts with a known truth (``ml.sim``; simulated data), per scenario:
- how often each finding comes out (``window``, ``floor-only``, ``ceiling-only``, ``overlap``,
  ``no-window``): power (``window`` where both harms exist), type-I error (any claim on ``null``),
  the right status in one-sided and overlapping worlds;
- the error of each bound against the true one, the coverage, width and openness of its 95 %
  bootstrap interval;
- the composite two-cut search (``cmv|ebv|agvhd2|death`` by day 180) on the same cohorts;
- worlds the search was not written for: a misspecified PK prior (the cohort's true PK differs from
  the model that computes the exposure), weaker and stronger effects, the hinge world;
- an oracle row (noiseless true AUC) and NCA beside the default MAP exposure;
- speed: one full discovery at n = 324 against the composite search on the same data, same process.

Usage::

    python scripts/bench_benefit_harm.py                  # the full benchmark (an hour or two on 2 cores)
    python scripts/bench_benefit_harm.py --reps 20 --no-write     # a smoke run

Rows are cached per cohort under runs/bench-benefit-harm/, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _benchdoc import provenance, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "runs" / "bench-benefit-harm"

#: The floor as first posed: acute GVHD II-IV alone, by day 180 (the default floor is acute and chronic GVHD by day 730).
AGVHD_FLOOR = {"floor_endpoints": ("agvhd2",), "floor_horizon": 180.0}
#: name -> (scenario, patients (None: the scenario's), exposure, simulate keywords, searches[, search keywords])
CONFIGS = {
    "urd": ("urd", 324, "map", {}, ("bh", "composite")),
    "urd-ceiling-composite": ("urd", 324, "map", {}, ("bh",), {"ceiling_endpoints": ("cmv|ebv",)}),
    "null": ("null", 324, "map", {}, ("bh", "composite")),
    "urd-nca": ("urd", 324, "nca", {}, ("bh",)),
    "null-nca": ("null", 324, "nca", {}, ("bh",)),
    "urd-oracle": ("urd", 324, "true", {}, ("bh",)),
    "shifted": ("shifted", 324, "map", {}, ("bh", "composite")),
    "hinge": ("hinge", 324, "map", {}, ("bh", "composite")),
    "haplo": ("haplo", 106, "map", {}, ("bh",)),
    "floor-only": ("floor-only", 324, "map", {}, ("bh", "composite")),
    "ceiling-only": ("ceiling-only", 324, "map", {}, ("bh", "composite")),
    "overlap": ("overlap", 324, "map", {}, ("bh",)),
    "urd-misspecified-pk": ("urd", 324, "map", {"pk_model": "misspecified"}, ("bh",)),
    "urd-effect-0.75": ("urd", 324, "map", {"effect_scale": 0.75}, ("bh",)),
    "urd-effect-1.5": ("urd", 324, "map", {"effect_scale": 1.5}, ("bh",)),
    "floor-only-oracle": ("floor-only", 324, "true", {}, ("bh",)),
    # the floor as first posed: acute GVHD II-IV alone by day 180 (the default until the benchmark compared them)
    "urd-floor-agvhd": ("urd", 324, "map", {}, ("bh",), AGVHD_FLOOR),
    "null-floor-agvhd": ("null", 324, "map", {}, ("bh",), AGVHD_FLOOR),
    "floor-only-floor-agvhd": ("floor-only", 324, "map", {}, ("bh",), AGVHD_FLOOR),
    "ceiling-only-floor-agvhd": ("ceiling-only", 324, "map", {}, ("bh",), AGVHD_FLOOR),
}
#: The main rows get ``--reps`` cohorts; the one-sided worlds ``--one-sided-reps``; the others ``--other-reps``.
MAIN = ("urd", "null", "urd-floor-agvhd", "null-floor-agvhd")
ONE_SIDED = ("floor-only", "ceiling-only", "floor-only-floor-agvhd", "ceiling-only-floor-agvhd", "floor-only-oracle",
             "urd-ceiling-composite")
#: Worlds without any exposure effect: every claim needs the global permutation test to reject, so the
#: bootstrap (bounds and intervals) cannot change their type-I error and is skipped there.
NO_BOOTSTRAP = ("null", "null-nca", "null-floor-agvhd")


def misspecified_truth():
    """A world whose true PK differs from the shipped prior the exposure is computed with:
    typical CL x1.25, V1 x0.8, Vmax x1.5, Km x0.5, between-patient variability x1.3."""
    from ml.pk import PopPKModel

    m = PopPKModel.default()
    factor = {"CL": 1.25, "V1": 0.8, "Vmax": 1.5, "Km": 0.5}
    return replace(m, name="misspecified-world", typical={k: v * factor.get(k, 1.0) for k, v in m.typical.items()},
                   iiv={k: v * 1.3 for k, v in m.iiv.items()})


def _exposure_cached(virtual, method: str) -> np.ndarray:
    """The cohort's exposure, cached under runs/ by the content of its PK inputs (patients, doses,
    levels) and the method: worlds that differ only in their outcomes (``urd``, ``null``,
    ``floor-only``, ... with the same seed simulate the same patients and levels) compute it once."""
    import hashlib

    import pandas as pd

    c = virtual.cohort
    digest = hashlib.sha256()
    for table in (c.patients, c.doses, c.levels):
        digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    path = CACHE / "exposure" / f"{method}-{digest.hexdigest()[:24]}.npy"
    if path.exists():
        return np.load(path)
    x = _exposure(virtual, method)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + f".{os.getpid()}.tmp.npy")
    np.save(tmp, x)
    tmp.replace(path)
    return x


def _exposure(virtual, method: str) -> np.ndarray:
    from ml.features import feature_frame
    from ml.pk import exposure_table

    cohort = virtual.cohort
    if method == "true":
        table = virtual.truth[["patient_id", "auc_total"]]
    else:
        table = exposure_table(cohort, method=method)[["patient_id", "auc_total"]]
    return feature_frame(cohort, table)["auc_total"].to_numpy(dtype=float)


def _intervals(search) -> dict:
    """Every interval method on the same resamples, for each side's reported bound (for the
    comparison table): percentile and basic bootstrap, infinitesimal jackknife (corrected, raw)."""
    from scipy import stats

    from ml.window._bootstrap import bound_intervals, infinitesimal_jackknife_sd

    boot, counts = search.bootstrap_bounds_, search._boot_counts
    if not len(boot):
        return {}
    cols = search._bound_columns
    est = search._side_bounds
    zq = stats.norm.ppf(0.975)
    out = {}
    for method in ("percentile", "basic"):
        out[method] = [list(v) for v in bound_intervals(est, boot[:, list(cols)], 0.95, method)]
    for name, corrected in (("ij", True), ("ij-raw", False)):
        sds = [infinitesimal_jackknife_sd(boot[:, c], counts, corrected=corrected) for c in cols]
        out[name] = [[e - zq * sd, e + zq * sd] for e, sd in zip(est, sds)]
    return out


def _row_of(window, search) -> dict:
    def side(b):
        if b is None:
            return None
        return {"value": b.value, "ci": None if b.ci is None else list(b.ci), "p": b.p_value,
                "evidenced": b.evidenced}

    return {"finding": window.finding, "status": window.status, "p": window.p_value, "lower": window.lower,
            "upper": window.upper, "lower_ci": None if window.lower_ci is None else list(window.lower_ci),
            "upper_ci": None if window.upper_ci is None else list(window.upper_ci),
            "floor": side(window.floor), "ceiling": side(window.ceiling)}


def one_cohort(task) -> dict:
    """Simulate one cohort, compute its exposure, run the searches; a JSON-able row."""
    name, seed, perms, boots, composite_reps = task
    from ml.sim import simulate_virtual
    from ml.window import BenefitHarmSearch, composite_search, discover

    scenario, n, method, sim_kw, searches, *rest = CONFIGS[name]
    search_kw = rest[0] if rest else {}
    kw = dict(sim_kw)
    if kw.get("pk_model") == "misspecified":
        kw["pk_model"] = misspecified_truth()
    warnings.simplefilter("ignore")
    v = simulate_virtual(scenario, n, seed, **kw)
    x = _exposure_cached(v, method)
    row = {"config": name, "seed": seed, "truth": {k: v.cohort.meta.truth.get(k) for k in ("floor", "ceiling")},
           "n_missing": int(np.isnan(x).sum())}
    if "bh" in searches:
        t0 = time.perf_counter()
        found = discover(v.cohort, x, search=BenefitHarmSearch(
            n_permutations=perms, n_bootstraps=boots, n_folds=0, random_state=seed, **search_kw,
            **({} if boots else {"estimate": "argmax", "ci_method": "percentile"})))
        search = found.search
        joint_only = (1 + np.sum(search.null_statistics_[:, 0] >= search.statistic_ - 1e-9)) / (1 + perms)
        row["bh"] = {**_row_of(found.window, search), "seconds": time.perf_counter() - t0,
                     "p_joint_only": float(joint_only), "intervals": _intervals(search)}
    if "composite" in searches and seed < composite_reps:
        t0 = time.perf_counter()
        found = discover(v.cohort, x, endpoint="cmv|ebv|agvhd2|death", horizon_days=180.0,
                         search=composite_search(n_permutations=perms, n_bootstraps=min(boots, 200), n_folds=0,
                                                 random_state=seed, **({} if boots else {"estimate": "argmax"})))
        row["composite"] = {**_row_of(found.window, found.search), "seconds": time.perf_counter() - t0}
    return row


def _cache_name(name: str, perms: int, boots: int) -> str:
    from ml._defaults import BENEFIT_HARM

    return f"{name}-p{perms}-b{boots}-{BENEFIT_HARM['global_test']}.jsonl"


def carry_over_joint(configs: list[str], reps: dict[str, int], perms: int, boots: int, alpha: float = 0.05) -> int:
    """Reuse rows computed with ``global_test="joint"`` where the min-p test provably rejects too.

    The search is otherwise the same (same seeds, permutations and resamples), so the finding,
    bounds and intervals of a cohort can only differ through the global test's decision. The min-p
    of the joint, floor and ceiling maxima is at most 3 times the smallest of their p-values
    (Bonferroni, which holds for the permutation p-values of ``min_p_value`` too), so a cohort
    whose joint p-value was below ``alpha / 3`` is rejected by both tests and its row stands; it is
    stored with ``p`` = None, ``p_global_at_most`` = 3 p_joint and ``carried_over`` = True. Every
    other cohort is recomputed.

    Returns
    -------
    int
        Rows carried over.
    """
    n = 0
    for name in configs:
        b = 0 if name in NO_BOOTSTRAP else boots
        old, new = CACHE / f"{name}-p{perms}-b{b}.jsonl", CACHE / _cache_name(name, perms, b)
        if not old.exists():
            continue
        have = set()
        if new.exists():
            have = {json.loads(line)["seed"] for line in new.read_text().splitlines()}
        with open(new, "a") as fh:
            for line in old.read_text().splitlines():
                r = json.loads(line)
                p = r["bh"]["p"]
                if r["seed"] in have or r["seed"] >= reps[name] or p is None or not p < alpha / 3:
                    continue
                r["bh"] = {**r["bh"], "p": None, "p_joint_only": p, "p_global_at_most": min(1.0, 3 * p),
                           "carried_over": True}
                fh.write(json.dumps(r) + "\n")
                n += 1
    return n


def _global_rejects(bh: dict, alpha: float = 0.05) -> bool:
    if bh.get("p") is not None:
        return bh["p"] < alpha
    return bh.get("p_global_at_most", 1.0) < alpha


def run(configs: list[str], reps: dict[str, int], perms: int, boots: int, executor,
        composite_reps: int, cached_only: bool = False) -> dict[str, list[dict]]:
    """Rows of every config: cached ones, then the missing cohorts computed on ``executor`` (ml._parallel).

    A cohort's row depends only on its config and seed, so the executor (serial, local cluster,
    remote scheduler) does not change it; each row is appended to its cache as it arrives.
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict]] = {}
    todo = []
    for name in configs:
        b = 0 if name in NO_BOOTSTRAP else boots
        path = CACHE / _cache_name(name, perms, b)
        have = {}
        if path.exists():
            for line in path.read_text().splitlines():
                r = json.loads(line)
                have[r["seed"]] = r
        rows[name] = [have[s] for s in range(reps[name]) if s in have]
        todo += [(name, s, perms, b, composite_reps) for s in range(reps[name]) if s not in have]
    if todo and not cached_only:
        from tqdm import tqdm

        with tqdm(total=len(todo), desc="cohorts", file=sys.stderr) as bar:
            def keep(r):
                b = 0 if r["config"] in NO_BOOTSTRAP else boots
                with open(CACHE / _cache_name(r["config"], perms, b), "a") as fh:
                    fh.write(json.dumps(r) + "\n")
                bar.update(1)

            for r in executor.map(one_cohort, todo, progress=keep):
                rows[r["config"]].append(r)
        for name in rows:
            rows[name].sort(key=lambda r: r["seed"])
    return rows


# ------------------------------------------------------------------------------------- summaries
def _pct(k: int, n: int) -> str:
    if n == 0:
        return "-"
    p = k / n
    return f"{100 * p:.1f} % ± {100 * np.sqrt(p * (1 - p) / n):.1f}"


def _bound_stats(results: list[dict], side: str, truth: float) -> dict:
    """Error, coverage, width and openness of one side's bound (rows where the side is evidenced)."""
    vals, covers, widths, opened = [], [], [], 0
    for r in results:
        b = r.get(side)
        if b is None or not b["evidenced"] or b["value"] is None:
            continue
        vals.append(b["value"] - truth)
        ci = b["ci"]
        if ci is None or None in ci:
            opened += 1
            continue
        covers.append(ci[0] <= truth <= ci[1])
        widths.append(ci[1] - ci[0])
    k = len(vals)
    return {"k": k, "abs_err": float(np.median(np.abs(vals))) if k else np.nan,
            "bias": float(np.median(vals)) if k else np.nan,
            "coverage": float(np.mean(covers)) if covers else np.nan,
            "width": float(np.median(widths)) if widths else np.nan, "open": opened / k if k else np.nan}


def _composite_bounds(results: list[dict], truth: dict) -> dict:
    out = {}
    for side, key in (("floor", "lower"), ("ceiling", "upper")):
        t = truth.get(side)
        vals = [r[key] - t for r in results if r["finding"] != "no-window" and r[key] is not None and t is not None]
        out[side] = float(np.median(np.abs(vals))) if vals else np.nan
    return out


def summarise(rows: dict[str, list[dict]], speed: dict | None, args, oracle: dict | None = None) -> str:
    lines = ["## Benefit-harm window search", "", provenance(), "",
             "`python scripts/bench_benefit_harm.py` (simulated cohorts from `ml.sim`; each row is the same cohorts "
             f"for both searches). Benefit-harm search: `BenefitHarmSearch()` defaults (floor acute GVHD II-IV and chronic "
             f"GVHD by day 730; ceiling CMV and EBV by day 180; each side's endpoint scores standardised and summed; {args.permutations} permutations, {args.bootstraps} bootstraps, "
             "smoothed bounds with infinitesimal-jackknife intervals, minprop 0.1; no cross-fitting; the row "
             "`urd-ceiling-composite` takes the first-event composite `cmv|ebv` as the ceiling endpoint instead; the rows "
             "`*-floor-agvhd` pose the floor as it was first posed: acute GVHD II-IV alone, by day 180); composite: `cmv|ebv|agvhd2|death` by day 180, minprop 0.2, bagged "
             f"(200 bootstraps). Exposure: MAP under the shipped prior unless the row says otherwise. Rates "
             "± Monte Carlo SE.", "",
             f"The composite search ran on the first {args.composite_reps} cohorts of the worlds that list it. "
             f"In the worlds without any exposure effect ({', '.join(NO_BOOTSTRAP)}) the bootstrap is skipped: "
             "every claim needs the global permutation test to reject, so it cannot change their type-I error.", "",
             "The global test (no exposure effect on either side) is the min-p of the maximal joint, floor and "
             "ceiling statistics (`global_test=\"min-p\"`, the default); the column \"joint alone\" is the "
             "maximal joint statistic's own test on the same permutations (`global_test=\"joint\"`).", "",
             "| world | cohorts | global test rejects | joint alone rejects | window | floor-only | ceiling-only | "
             "overlap | no-window | composite: window | composite: any |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, res in rows.items():
        if not res:
            continue
        n = len(res)
        f = [r["bh"]["finding"] for r in res]
        comp = [r["composite"] for r in res if "composite" in r]
        cw = _pct(sum(c["finding"] == "window" for c in comp), len(comp)) if comp else "-"
        ca = _pct(sum(c["status"] == "candidate" for c in comp), len(comp)) if comp else "-"
        joint = _pct(sum(_global_rejects(r["bh"]) for r in res), n)
        alone = [r["bh"].get("p_joint_only") for r in res]
        alone = _pct(sum(p < 0.05 for p in alone), n) if None not in alone else "-"
        lines.append(f"| {name} | {n} | {joint} | {alone} | " + " | ".join(_pct(f.count(k), n) for k in
                                                        ("window", "floor-only", "ceiling-only", "overlap",
                                                         "no-window")) + f" | {cw} | {ca} |")
    carried = {name: sum(bool(r["bh"].get("carried_over")) for r in res) for name, res in rows.items() if res}
    if any(carried.values()):
        lines += ["", f"{sum(carried.values())} of {sum(len(r) for r in rows.values())} cohorts were carried over from the "
                  "benchmark of the joint global test (`--carry-over-joint`): the search is otherwise the same, and "
                  "where the joint p-value was below alpha / 3 the min-p test rejects too (min-p <= 3 x the smallest "
                  "p-value), so the finding, bounds and intervals stand; their global p is only bounded (<= 3 x "
                  "joint p). Per world: " + ", ".join(f"{k} {v}" for k, v in carried.items() if v) + "."]
    if oracle:
        lines += ["", "What the data allow in the `floor-only` world (same cohorts): the one-sided log-rank test of "
                  "aGVHD II-IV at the TRUE floor (no cut searched, one hypothesis; `known_cut_oracle`) rejects in "
                  + " and ".join(f"{_pct(round(r * n), n)} with the {'MAP exposure' if k == 'map' else 'true AUC'}"
                                 for k, (r, n) in oracle.items())
                  + "; the rows `floor-only-oracle` (the whole search on the true AUC) and `floor-only` (the default "
                  "floor from acute and chronic GVHD) against `floor-only-floor-agvhd` (acute GVHD alone) show what "
                  "better data and a differently posed floor reach."]
    lines += ["", "Type-I error is the share of `null` cohorts with any claim (window, floor-only, ceiling-only or "
              "overlap; a claim needs the global test and a side's own test to reject: the closed test); "
              "power is the share of `window` where both harms exist. \"Composite: window\" is a two-sided "
              "composite window at p < 0.05, \"composite: any\" also counts one-sided (open) ones.", "",
              "Bounds of the evidenced sides (true floor / ceiling of the world; error = estimate - truth, "
              "UE*day/mL):", "",
              "| world | side | n | median abs. error | median error | 95 % CI coverage | median CI width | "
              "open CIs | composite abs. error |", "|---|---|---|---|---|---|---|---|---|"]
    for name, res in rows.items():
        if not res:
            continue
        truth = res[0]["truth"]
        bh = [r["bh"] for r in res]
        comp = [r["composite"] for r in res if "composite" in r]
        cb = _composite_bounds(comp, truth) if comp else {}
        for side in ("floor", "ceiling"):
            t = truth.get(side)
            if t is None:
                continue
            s = _bound_stats(bh, side, t)
            lines.append(f"| {name} | {side} (truth {t:g}) | {s['k']} | {s['abs_err']:.1f} | {s['bias']:+.1f} | "
                         f"{100 * s['coverage']:.1f} % | {s['width']:.1f} | {100 * s['open']:.1f} % | "
                         + (f"{cb[side]:.1f}" if cb and np.isfinite(cb.get(side, np.nan)) else "-") + " |")
    lines += _interval_table(rows)
    if speed:
        lines += ["", f"Speed (one cohort, n = {speed['n']}, {speed['perms']} permutations + {speed['boots']} "
                  f"bootstraps + {speed['folds']}-fold cross-fitting, best of {speed['repeat']}): benefit-harm "
                  f"discovery {speed['bh']:.2f} s, the composite search on the same data {speed['composite']:.2f} s "
                  f"(ratio {speed['bh'] / speed['composite']:.2f}); without cross-fitting "
                  f"{speed['bh_nofold']:.2f} s."]
    return "\n".join(lines) + "\n"


def _interval_table(rows: dict[str, list[dict]]) -> list[str]:
    """Coverage and median width of each interval method, on the same resamples and bounds."""
    methods = ("ij", "ij-raw", "percentile", "basic")
    out = ["", "Interval methods compared on the same resamples and reported bounds (evidenced sides; the "
           "default is `ij`): coverage of the true bound / median width (UE*day/mL).", "",
           "| world | side | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for name, res in rows.items():
        if not res:
            continue
        truth = res[0]["truth"]
        for k, side in enumerate(("floor", "ceiling")):
            t = truth.get(side)
            if t is None:
                continue
            cells = []
            for m in methods:
                ci = [r["bh"]["intervals"][m][k] for r in res
                      if r["bh"].get(side) and r["bh"][side]["evidenced"] and r["bh"].get("intervals")]
                ci = [c for c in ci if c is not None and None not in c and np.all(np.isfinite(c))]
                if not ci:
                    cells.append("-")
                    continue
                cov = np.mean([c[0] <= t <= c[1] for c in ci])
                cells.append(f"{100 * cov:.1f} % / {np.median([c[1] - c[0] for c in ci]):.1f}")
            out.append(f"| {name} | {side} | " + " | ".join(cells) + " |")
    return out


def known_cut_oracle(reps: int, alpha: float = 0.05) -> dict:
    """What no search can beat in the ``floor-only`` world: the one-sided log-rank test of the floor
    endpoint (aGVHD II-IV by day 180, competing events censored) at the TRUE floor, no cut searched,
    one hypothesis, on the MAP exposure and on the true AUC. Rejection rates at ``alpha``."""
    from scipy import stats

    from ml.features import competing_target
    from ml.sim import simulate_virtual
    from ml.window import logrank_scores
    from ml.window._sides import _standardised

    warnings.simplefilter("ignore")
    z = {"map": [], "true": []}
    for seed in range(reps):
        v = simulate_virtual("floor-only", 324, seed)
        y = competing_target(v.cohort.outcomes, "agvhd2", 180.0)
        s = logrank_scores(np.asarray(y["time"], dtype=float), np.asarray(y["event"]) == 1)
        for method in z:
            x = _exposure_cached(v, method) if method == "map" else _exposure(v, method)
            below = x < v.cohort.meta.truth["floor"]
            # the scan's own standardised statistic of the patients below the cut (ml.window._sides)
            z[method].append(float(_standardised(np.array([[s[below].sum()]]), np.array([float(below.sum())]), s.size,
                                                 np.array([s.sum()]), np.array([s @ s]))[0, 0]))
    crit = stats.norm.ppf(1 - alpha)
    return {k: (float(np.mean(np.array(v) > crit)), len(v)) for k, v in z.items()}


def measure_speed(repeat: int = 3) -> dict:
    from ml.features import competing_target, feature_frame
    from ml.pk import exposure_table
    from ml.sim import simulate_cohort
    from ml.window import BenefitHarmSearch, composite_search

    warnings.simplefilter("ignore")
    c = simulate_cohort("urd", n=324, seed=0)
    x = feature_frame(c, exposure_table(c, method="map")[["patient_id", "auc_total"]])["auc_total"].to_numpy()
    y = competing_target(c.outcomes, "cmv|ebv|agvhd2|death", 180.0)

    def best(f):
        out = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            f()
            out.append(time.perf_counter() - t0)
        return min(out)

    return {"n": 324, "perms": 1000, "boots": 1000, "folds": 5, "repeat": repeat,
            "bh": best(lambda: BenefitHarmSearch(random_state=0).fit(x, c.outcomes)),
            "bh_nofold": best(lambda: BenefitHarmSearch(random_state=0, n_folds=0).fit(x, c.outcomes)),
            "composite": best(lambda: composite_search(random_state=0).fit(x, y))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=400, help="cohorts of the main worlds (urd, null)")
    ap.add_argument("--one-sided-reps", type=int, default=100, help="cohorts of the worlds with one harm only")
    ap.add_argument("--other-reps", type=int, default=25, help="cohorts of every other world")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma list of " + ", ".join(CONFIGS))
    ap.add_argument("--composite-reps", type=int, default=100,
                    help="cohorts of each world on which the composite search also runs (the first ones)")
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--bootstraps", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2,
                    help="cohorts run on a local Dask cluster of this many processes (1: serially here); the rows do "
                         "not depend on it (needs the 'parallel' extra)")
    ap.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="run the cohorts on an existing Dask cluster (tcp://host:8786) instead")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--cached-only", action="store_true",
                    help="summarise the cohorts already computed (runs/bench-benefit-harm/), compute nothing new")
    ap.add_argument("--carry-over-joint", action="store_true",
                    help="reuse cached rows of the joint global test where the min-p test provably rejects too "
                         "(joint p < alpha / 3); see carry_over_joint")
    ap.add_argument("--no-write", action="store_true", help="print the summary, leave docs alone")
    args = ap.parse_args(argv)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = sorted(set(configs) - set(CONFIGS))
    if unknown:
        ap.error(f"unknown configs {unknown}")
    reps = {c: min(args.reps, args.one_sided_reps if c in ONE_SIDED else args.other_reps) if c not in MAIN else args.reps
            for c in configs}
    if args.carry_over_joint:
        print(f"carried over from the joint-test cache: {carry_over_joint(configs, reps, args.permutations, args.bootstraps)} rows",
              file=sys.stderr)
    from ml._parallel import executor_from

    with executor_from(args.workers, args.scheduler) as executor:
        rows = run(configs, reps, args.permutations, args.bootstraps, executor, args.composite_reps,
                   cached_only=args.cached_only)
    speed = None if args.no_speed else measure_speed()
    oracle = known_cut_oracle(args.one_sided_reps) if "floor-only" in configs else None
    text = summarise(rows, speed, args, oracle)
    print(text)
    if not args.no_write:
        print(f"written: {write_section('benefit-harm', text)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
