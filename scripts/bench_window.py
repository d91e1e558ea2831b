"""Benchmark of the window search on virtual cohorts (issue 3): calibration, power, bounds, speed.

    python scripts/bench_window.py                 # full: 200 cohorts per scenario (long; use nice)
    python scripts/bench_window.py --reps 20       # quick look
    python scripts/bench_window.py --speed-only    # only the timings
    python scripts/bench_window.py --no-speed --study            # + the power study (issue 3), docs table
    python scripts/bench_window.py --power-only --exposure nca,map,true --minprop 0.1,0.2 \
        --covariates "none;cmv_serostatus,hla_mismatches" --grid-k 40,20   # power/type-I grid, stdout only
    python scripts/bench_window.py --minprop 0.2 --scenarios urd,null --no-speed --no-write
                                                   # full rows of the candidate default (shown in docs)
    python scripts/bench_window.py --workers 2 ...     # cohorts on a local Dask cluster (same rows)
    python scripts/bench_window.py --scheduler tcp://host:8786 ...   # on an existing Dask cluster

For every scenario (n = 324 for urd, shifted, hinge, null; n = 106 for haplo) it simulates
``--reps`` cohorts with ml.sim, computes exposure from the *noisy* levels with
ml.pk.exposure_table (as a user would), builds the default endpoint (cmv|ebv|agvhd2|death by day
180) and runs the full WindowSearch (permutations, bootstrap, 5-fold cross-fitting). Results
per cohort are appended to ``runs/bench_window/<config>.jsonl`` so an interrupted run resumes
where it stopped. The summary goes to docs/benchmarks.md (section "window") via
scripts/_benchdoc.py.

The power study (``--power-only``, ``--study``) computes only the permutation p-value of the
search (and the normal p of the true window, pre-specified) per configuration of exposure
(NCA, MAP, true AUC), null-model covariates, Fleming-Harrington weights, grid size and minprop,
on the same cohorts; one cache file per configuration (``runs/bench_window/power-*.jsonl``), MAP
exposures cached under ``runs/bench_window/exposure/``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from _benchdoc import provenance, write_section  # noqa: E402

from ml.features import SURVIVAL_DTYPE, competing_target  # noqa: E402
from ml.pk import exposure_table  # noqa: E402
from ml.sim import simulate_virtual  # noqa: E402
from ml.window import (  # noqa: E402
    CoxMartingaleScores,
    QuantileGrid,
    WindowSearch,
    bound_intervals,
    evaluate_window,
    hazard_ratio,
)

ENDPOINT, HORIZON = "cmv|ebv|agvhd2|death", 180.0
SCENARIOS = {"urd": 324, "shifted": 324, "hinge": 324, "null": 324, "haplo": 106}
#: Exposure variants: the same cohorts searched on the noiseless model AUC (an oracle: what the NCA
#: error costs) or on the MAP Bayesian AUC of the same noisy levels. Name -> (scenario, n, exposure).
ORACLES = {"urd@true-auc": ("urd", 324, "true"), "null@true-auc": ("null", 324, "true"),
           "urd@map": ("urd", 324, "map"), "null@map": ("null", 324, "map")}
CACHE_DIR = ROOT / "runs" / "bench_window"
#: The minprop adopted as the default (discover, experiments) after the power study: its full-benchmark rows (from
#: ``--minprop 0.2 --scenarios urd,null --no-write``) are shown next to the default's.
CANDIDATE_MINPROP = 0.2
CANDIDATES = ("urd@minprop-0.2", "null@minprop-0.2")
CI_METHODS = ("percentile", "basic")


# ------------------------------------------------------------------------------------ one cohort
def _variant(scenario: str) -> tuple[str, int, str]:
    """(simulator scenario, patients, exposure method) of a benchmark row name such as ``urd@map``."""
    return ORACLES[scenario] if scenario in ORACLES else (scenario, SCENARIOS[scenario], "nca")


def one_cohort(scenario: str, n: int, seed: int, args) -> dict:
    base, _, method = _variant(scenario)
    vc = simulate_virtual(base, n=n, seed=seed)
    cohort = vc.cohort
    x = cohort_exposure(vc, base, seed, method, CACHE_DIR)
    y = competing_target(cohort.outcomes, ENDPOINT, HORIZON)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = WindowSearch(grid=QuantileGrid(k=args.grid_k, minprop=args.minprop), n_permutations=args.permutations,
                         n_bootstraps=args.bootstraps, n_folds=5, estimate=args.estimate,
                         random_state=seed).fit(x, y)
    seconds = time.perf_counter() - t0
    truth = cohort.meta.truth
    out = {
        "scenario": scenario, "seed": seed, "n": s.n_, "events": s.n_events_, "excluded": s.n_excluded_,
        "lower": s.lower_, "upper": s.upper_, "p": s.p_value_, "naive_p": s.naive_p_value_,
        "statistic": s.statistic_, "seconds": seconds,
        "true_lower": truth["lower"], "true_upper": truth["upper"],
        "hr": s.effect_.get("hr"), "hr_low": s.effect_.get("ci_low"), "hr_high": s.effect_.get("ci_high"),
    }
    out["true_window_p"] = _true_window_p(x, y, truth)
    boot = s.bootstrap_bounds_
    out["bagged_lower"], out["bagged_upper"] = s.bagged_bounds_
    out["open_lower_share"] = float(np.mean(np.isneginf(boot[:, 0])))
    out["open_upper_share"] = float(np.mean(np.isposinf(boot[:, 1])))
    for method in CI_METHODS:
        lo, up = bound_intervals((s.lower_, s.upper_), boot, 0.95, method)
        out[f"{method}_lower_ci"], out[f"{method}_upper_ci"] = lo, up
    return out


def _true_window_p(x, y, truth) -> float:
    """Two-sided p of the log-rank test of the *true* window, pre-specified (an upper bound on power)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate_window(x, y, truth["lower"], truth["upper"], n_permutations=0).p_value_normal


def _fill_true_window_p(rows: list[dict], cache: Path) -> None:
    """Add ``true_window_p`` to cached rows made before it existed (re-simulates the cohort only)."""
    todo = [r for r in rows if "true_window_p" not in r]
    if not todo:
        return
    for r in todo:
        base, n, method = _variant(r["scenario"])
        vc = simulate_virtual(base, n=n, seed=r["seed"])
        x = cohort_exposure(vc, base, r["seed"], method, CACHE_DIR)
        y = competing_target(vc.cohort.outcomes, ENDPOINT, HORIZON)
        r["true_window_p"] = _true_window_p(x, y, vc.cohort.meta.truth)
    cache.write_text("".join(json.dumps(r, default=_json_default) + "\n" for r in rows))


def _json_default(v):
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    raise TypeError(type(v))


def _load(path: Path) -> list[dict]:
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                d = json.loads(line)
                rows.append({k: (float(v) if v in ("inf", "-inf", "nan") else v) for k, v in d.items()})
    unique = {(r["scenario"], r["seed"]): r for r in rows}  # a concurrent run may have written twice
    return list(unique.values())


def _full_cache(args, minprop: float) -> Path:
    """Cache file of the full benchmark (one row per cohort) for these settings."""
    tag = f"v2|{ENDPOINT}|{HORIZON}|{args.permutations}|{args.bootstraps}|{args.grid_k}"
    tag += "" if args.estimate == "argmax" else f"|{args.estimate}"
    tag += "" if minprop == 0.1 else f"|minprop={minprop:g}"
    return CACHE_DIR / f"results-{hashlib.sha1(tag.encode()).hexdigest()[:10]}.jsonl"


def _candidate_rows(args) -> list[dict]:
    """Cached full-benchmark rows of the candidate default minprop (run it with ``--minprop 0.2``)."""
    rows = _load(_full_cache(args, CANDIDATE_MINPROP))
    out = []
    for r in rows:
        name = f"{r['scenario']}@minprop-{CANDIDATE_MINPROP:g}"
        if name in CANDIDATES and r["seed"] < 10_000 + args.reps:
            out.append({**r, "scenario": name})
    return out


# ------------------------------------------------------------------------- power study (issue 3)
#: Exposure measured the way a user would (``nca``, ``map``: ``ml.pk.exposure_table(method=...)``)
#: or the noiseless model AUC of the simulator (``true``: an oracle, diagnostic only).
EXPOSURES = ("nca", "map", "true")


@dataclass(frozen=True)
class PowerConfig:
    """One configuration of the discovery's test: exposure, null-model covariates, grid.

    Attributes
    ----------
    exposure : {"nca", "map", "true"}
    covariates : tuple of str
        Patients columns of the adjusted search (Cox martingale-residual scores); empty: log-rank.
    grid_k : int
        Quantile grid points.
    minprop : float
        Smallest share of patients below / inside / above a window.
    weights : (rho, gamma) or None
        Fleming-Harrington weights of the scores (:class:`FlemingHarringtonScores`); None: log-rank.
    n : int or None
        Patients per cohort; None: the scenario's size (324 for urd and null).
    """

    exposure: str = "nca"
    covariates: tuple[str, ...] = ()
    grid_k: int = 40
    minprop: float = 0.1
    weights: tuple[float, float] | None = None
    n: int | None = None

    @property
    def label(self) -> str:
        cov = "+".join(self.covariates) if self.covariates else "none"
        fh = "" if self.weights is None else f" | fh={self.weights[0]:g},{self.weights[1]:g}"
        size = "" if self.n is None else f" | n={self.n}"
        return f"{self.exposure} | {cov} | k={self.grid_k} | minprop={self.minprop:g}{fh}{size}"

    def scores(self):
        """Scores strategy: log-rank, Cox martingale residuals (covariates) or Fleming-Harrington."""
        if self.weights is not None:
            return FlemingHarringtonScores(*self.weights)
        return CoxMartingaleScores() if self.covariates else None

    def key(self, permutations: int) -> str:
        tag = f"power-v1|{ENDPOINT}|{HORIZON}|{permutations}|{self.label}"
        return hashlib.sha1(tag.encode()).hexdigest()[:10]


#: Covariate sets of the study (prognostic baseline covariates of the cohort contract).
COV_CMV = ("cmv_serostatus",)
COV_PROGNOSTIC = ("cmv_serostatus", "hla_mismatches", "age_years", "disease_status")
COV_ALL = ("age_years", "sex", "weight_kg", "diagnosis", "disease_status", "hla_mismatches", "cmv_serostatus",
           "alc_pre_atg")
#: Configurations shown in the docs table (``--study`` runs exactly these); the first is the default.
STUDY = (
    PowerConfig("nca"), PowerConfig("nca", COV_CMV), PowerConfig("nca", COV_PROGNOSTIC),
    PowerConfig("nca", COV_ALL), PowerConfig("nca", (), 20), PowerConfig("nca", (), 40, 0.2),
    PowerConfig("nca", (), 20, 0.2),
    PowerConfig("map"), PowerConfig("map", COV_CMV), PowerConfig("map", (), 20), PowerConfig("map", (), 40, 0.2),
    PowerConfig("map", (), 20, 0.2), PowerConfig("map", COV_CMV, 20, 0.2),
    PowerConfig("map", (), 40, 0.2, (1.0, 0.0)), PowerConfig("map", (), 40, 0.2, (0.0, 1.0)),
    PowerConfig("true"), PowerConfig("true", COV_CMV), PowerConfig("true", COV_PROGNOSTIC),
    PowerConfig("true", (), 20), PowerConfig("true", COV_CMV, 20), PowerConfig("true", (), 40, 0.2),
    PowerConfig("true", (), 20, 0.2),
    *(PowerConfig(e, (), 40, m, None, n) for n in (500, 650) for e in EXPOSURES for m in (0.1, 0.2)),
)
#: Cohort sizes of the study beyond the scenario's (power only, on `urd`).
STUDY_SIZES = (500, 650)


class FlemingHarringtonScores:
    """Weighted log-rank scores ``w(T) d - sum_{t <= T} w(t) dH(t)``, ``w = S(t-)^rho (1 - S(t-))^gamma``.

    ``S`` is the pooled Kaplan-Meier estimate and ``H`` the Nelson-Aalen hazard (Breslow ties);
    ``rho = gamma = 0`` is the log-rank. ``(1, 0)`` weights early events (Peto-Prentice-like),
    ``(0, 1)`` late ones. Exploratory, for the power study only: a scores strategy for
    ``WindowSearch``.
    """

    needs_covariates = False

    def __init__(self, rho: float, gamma: float):
        self.rho, self.gamma = rho, gamma

    def scores(self, y, covariates=None) -> np.ndarray:
        """Scores of target ``y`` (competing events count as censoring); times in days."""
        from ml.features import check_survival_target

        event, time = check_survival_target(y)
        grid, idx = np.unique(np.asarray(time, dtype=float), return_inverse=True)
        d = np.bincount(idx, weights=np.asarray(event, dtype=float), minlength=grid.size)
        at_risk = time.size - np.searchsorted(np.sort(time), grid, side="left")
        dh = d / at_risk
        s_before = np.concatenate([[1.0], np.cumprod(1.0 - dh)[:-1]])
        w = s_before**self.rho * (1.0 - s_before) ** self.gamma
        return np.asarray(event, dtype=float) * w[idx] - np.cumsum(w * dh)[idx]


def cohort_exposure(vc, scenario: str, seed: int, method: str, cache_dir: Path) -> np.ndarray:
    """Total AUC (UE*day/mL) of every patient in ``cohort.outcomes`` order, cached on disk.

    ``true`` is the simulator's noiseless AUC; ``nca`` and ``map`` come from the noisy levels
    (``ml.pk.exposure_table``). MAP fits take about a second per cohort, hence the cache
    (``runs/bench_window/exposure/<method>/<scenario>-n<n>-s<seed>.npy``).
    """
    idx = vc.cohort.outcomes["patient_id"]
    if method == "true":
        return vc.truth.set_index("patient_id").loc[idx, "auc_total"].to_numpy(float)
    path = cache_dir / "exposure" / method / f"{scenario}-n{len(idx)}-s{seed}.npy"
    if path.exists():
        return np.load(path)
    table = exposure_table(vc.cohort) if method == "nca" else exposure_table(vc.cohort, method="map")
    x = table.set_index("patient_id").loc[idx, "auc_total"].to_numpy(float)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, x)
    return x


def covariate_matrix(cohort, x: np.ndarray, names: tuple[str, ...]) -> np.ndarray | None:
    """Covariates in ``cohort.outcomes`` order, encoded as ``atgwin discover --covariates`` does.

    Categorical columns become reference-coded dummies, numeric ones are standardised; ``x`` is
    the exposure (UE*day/mL) aligned with ``cohort.outcomes``, needed only to build the frame.
    """
    if not names:
        return None
    import pandas as pd

    from ml.features import adjustment_covariates, feature_frame

    exposure = pd.DataFrame({"patient_id": cohort.outcomes["patient_id"].to_numpy(), "auc_total": x})
    return np.asarray(adjustment_covariates(feature_frame(cohort, exposure), names), dtype=float)


def power_cohort(vc, scenario: str, seed: int, cfg: PowerConfig, permutations: int, cache_dir: Path,
                 memo: dict | None = None) -> dict:
    """Permutation p of the search (no bootstrap, no cross-fitting) and of the true window, one cohort.

    ``memo`` (one dict per cohort) keeps exposures and covariate matrices across configurations.
    """
    memo = {} if memo is None else memo
    if cfg.exposure not in memo:
        memo[cfg.exposure] = cohort_exposure(vc, scenario, seed, cfg.exposure, cache_dir)
    x = memo[cfg.exposure]
    y = competing_target(vc.cohort.outcomes, ENDPOINT, HORIZON)
    if cfg.covariates not in memo:
        memo[cfg.covariates] = covariate_matrix(vc.cohort, x, cfg.covariates)
    Z = memo[cfg.covariates]
    scores = cfg.scores()
    X = x if Z is None else np.column_stack([x, Z])
    truth = vc.cohort.meta.truth
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = WindowSearch(scores, QuantileGrid(k=cfg.grid_k, minprop=cfg.minprop), n_permutations=permutations,
                         n_bootstraps=0, n_folds=0, random_state=seed).fit(X, y)
        true_p = evaluate_window(x, y, truth["lower"], truth["upper"], scores=scores, covariates=Z,
                                 n_permutations=0).p_value_normal
    return {"scenario": scenario, "seed": seed, "config": cfg.label, "n": s.n_, "events": s.n_events_,
            "lower": s.lower_, "upper": s.upper_, "p": s.p_value_, "naive_p": s.naive_p_value_,
            "statistic": s.statistic_, "true_window_p": true_p}


def run_power(configs, scenarios: list[str], reps: int, permutations: int, cache_dir: Path,
              cached_only: bool = False, executor=None) -> dict:
    """Rows of each configuration for ``reps`` cohorts per scenario (seeds 10000...), cached and resumable.

    Every cohort is simulated once and searched under every configuration that lacks it (one
    cache file per configuration). With ``cached_only`` nothing is computed. Cohorts run on
    ``executor`` (``ml._parallel``; default serial); a row depends only on its cohort's seed.

    Returns
    -------
    dict
        Configuration -> list of rows.
    """
    from ml._parallel import SerialExecutor

    caches = {cfg: cache_dir / f"power-{cfg.key(permutations)}.jsonl" for cfg in configs}
    rows = {cfg: _load(path) for cfg, path in caches.items()}
    if not cached_only:
        done = {cfg: {(r["scenario"], r["seed"]) for r in rows[cfg]} for cfg in configs}
        tasks, wanted = [], {}
        for scen in scenarios:
            for seed in range(10_000, 10_000 + reps):
                todo = [cfg for cfg in configs if (scen, seed) not in done[cfg]]
                for n in dict.fromkeys(cfg.n or SCENARIOS[scen] for cfg in todo):
                    cfgs = [c for c in todo if (c.n or SCENARIOS[scen]) == n]
                    wanted[(scen, n, seed)] = cfgs
                    tasks.append((scen, n, seed, cfgs))

        def keep(result):
            key, got = result
            for cfg, row in zip(wanted[key], got):
                rows[cfg].append(row)
                with caches[cfg].open("a") as fh:
                    fh.write(json.dumps(row, default=_json_default) + "\n")

        (executor or SerialExecutor()).map(_power_cohorts, tasks, progress=keep, permutations=permutations,
                                           cache_dir=cache_dir)
    out = {cfg: [r for r in rs if r["scenario"] in scenarios and r["seed"] < 10_000 + reps] for cfg, rs in rows.items()}
    if not cached_only:
        for cfg, rs in out.items():
            print(f"{cfg.label}: " + ", ".join(f"{s} {_rate([r['p'] for r in rs if r['scenario'] == s])}"
                                               for s in scenarios), flush=True)
    return out


def _power_cohorts(task, permutations: int, cache_dir: Path) -> tuple[tuple, list[dict]]:
    """Simulate one cohort ``task = (scenario, n, seed, configs)``; its rows, one per configuration, in order."""
    scen, n, seed, configs = task
    vc = simulate_virtual(scen, n=n, seed=seed)
    memo = {}
    return (scen, n, seed), [power_cohort(vc, scen, seed, cfg, permutations, cache_dir, memo) for cfg in configs]


def _full_cohort(task, args) -> dict:
    """One row of the full benchmark, ``task = (scenario, seed)`` (module level, for a Dask worker)."""
    scen, seed = task
    return one_cohort(scen, _variant(scen)[1], seed, args)


def _rate(ps, alpha: float = 0.05) -> str:
    """Rejection rate with its Monte Carlo standard error and the number of cohorts."""
    ps = np.array([p for p in ps if p is not None], dtype=float)
    if ps.size == 0:
        return "-"
    r = float(np.mean(ps < alpha))
    return f"{100 * r:.1f} +- {100 * math.sqrt(r * (1 - r) / ps.size):.1f} % ({ps.size})"


def power_table(results: dict[PowerConfig, list[dict]]) -> list[str]:
    """Markdown table: power on urd and type-I on null per configuration (permutation p only)."""
    lines = [
        "| patients | exposure | scores: null-model covariates (Cox martingale) or weights | grid k | minprop | "
        "power on urd, search (+- MC SE, cohorts) [>= 80 %] | power on urd, true window pre-specified | "
        "type-I on null, search [<= 5 %] | type-I on null, true window |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for cfg, rows in results.items():
        def col(scen, key):
            return _rate([r[key] for r in rows if r["scenario"] == scen])

        cov = ", ".join(cfg.covariates) if cfg.covariates else "none (log-rank)"
        if cfg.weights is not None:
            cov = f"none (Fleming-Harrington rho = {cfg.weights[0]:g}, gamma = {cfg.weights[1]:g})"
        lines.append(f"| {cfg.n or SCENARIOS['urd']} | {cfg.exposure} | {cov} | {cfg.grid_k} | {cfg.minprop:g} | "
                     f"{col('urd', 'p')} | "
                     f"{col('urd', 'true_window_p')} | {col('null', 'p')} | {col('null', 'true_window_p')} |")
    return lines


# ----------------------------------------------------------------------------- population HR
def population_hr(scenario: str, n: int, seed: int = 987654) -> dict:
    """HR inside vs outside the true window in one large virtual cohort: by true and by measured AUC."""
    vc = simulate_virtual(scenario, n=n, seed=seed)
    c = vc.cohort
    truth = c.meta.truth
    y = competing_target(c.outcomes, ENDPOINT, HORIZON)
    idx = c.outcomes["patient_id"]
    true_x = vc.truth.set_index("patient_id").loc[idx, "auc_total"].to_numpy(float)
    meas_x = exposure_table(c).set_index("patient_id").loc[idx, "auc_total"].to_numpy(float)
    out = {}
    for name, x in (("true_auc", true_x), ("measured_auc", meas_x)):
        ok = ~np.isnan(x)
        inside = (x[ok] >= truth["lower"]) & (x[ok] < truth["upper"])
        out[name] = hazard_ratio(inside, y["time"][ok], y["event"][ok] == 1)["hr"]
    return out


# -------------------------------------------------------------------------------------- speed
def synthetic(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.lognormal(np.log(125), 0.35, n)
    rate = 0.005 * np.where((x >= 100) & (x < 148.5), 1.0, 1.6)
    t, c = rng.exponential(1 / rate), rng.uniform(100, 400, n)
    y = np.empty(n, dtype=SURVIVAL_DTYPE)
    y["time"], y["event"] = np.round(np.minimum(t, c), 3), t <= c
    return np.round(x, 4), y


def _best_of(f, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def r_maxstat_seconds(x, y, B: int = 1000, repeat: int = 1) -> float | None:
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "d.csv"
        np.savetxt(csv, np.column_stack([x, y["time"], y["event"].astype(int)]), delimiter=",",
                   header="x,time,event", comments="", fmt="%.6f")
        code = (f'suppressMessages({{library(maxstat); library(survival)}}); d <- read.csv("{csv}"); '
                f'best <- Inf; for (i in 1:{repeat}) {{ set.seed(i); '
                f't <- system.time(maxstat.test(Surv(time, event) ~ x, data = d, smethod = "LogRank", '
                f'pmethod = "condMC", B = {B}))[["elapsed"]]; best <- min(best, t) }}; cat(best)')
        r = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, check=False)
        try:
            return float(r.stdout.strip().split()[-1])
        except (ValueError, IndexError):
            print("R failed:", r.stderr[-500:], file=sys.stderr)
            return None


def speed(args) -> dict:
    out = {}
    vc = simulate_virtual("urd", n=324, seed=1)
    x = exposure_table(vc.cohort).set_index("patient_id").loc[vc.cohort.outcomes["patient_id"], "auc_total"].to_numpy(float)
    y = competing_target(vc.cohort.outcomes, ENDPOINT, HORIZON)
    full = WindowSearch(n_permutations=1000, n_bootstraps=1000, n_folds=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["full_324"] = _best_of(lambda: full.fit(x, y), 3)
        bagged = WindowSearch(n_permutations=1000, n_bootstraps=1000, n_folds=5, estimate="bagged", random_state=0)
        out["full_324_bagged"] = _best_of(lambda: bagged.fit(x, y), 3)
    ys = np.empty(len(y), dtype=SURVIVAL_DTYPE)
    ys["time"], ys["event"] = y["time"], y["event"] == 1
    ok = ~np.isnan(x)
    out["r_324"] = r_maxstat_seconds(x[ok], ys[ok], repeat=3)
    single324 = WindowSearch(grid=QuantileGrid(k=None), single_cut=True, n_permutations=1000, n_bootstraps=0,
                             n_folds=0, random_state=0)
    out["single_324"] = _best_of(lambda: single324.fit(x[ok], ys[ok]), 3)

    xb, yb = synthetic(args.big_n)
    two = WindowSearch(n_permutations=1000, n_bootstraps=0, n_folds=0, random_state=0)
    out["two_cut_big"] = _best_of(lambda: two.fit(xb, yb), 2)
    single = WindowSearch(grid=QuantileGrid(k=None), single_cut=True, n_permutations=1000, n_bootstraps=0,
                          n_folds=0, random_state=0)
    out["single_big"] = _best_of(lambda: single.fit(xb, yb), 2)
    out["r_big"] = r_maxstat_seconds(xb, yb, repeat=1)
    out["big_n"] = args.big_n
    return out


# ------------------------------------------------------------------------------------ summary
def _cover(ci, truth) -> bool:
    lo, hi = ci
    return (lo <= truth) and (truth <= hi)


def summarise(rows: list[dict], pop: dict, spd: dict | None, args, study: dict | None = None) -> str:
    lines = [
        "## Window search (`scripts/bench_window.py`" + ("" if args.estimate == "argmax" else f" --estimate {args.estimate}") + ")",
        "",
        provenance(),
        "",
        f"Virtual cohorts from `ml.sim` (SIMULATED), exposure = total AUC by NCA of the noisy levels "
        f"(`ml.pk.exposure_table`; rows `@map`: MAP Bayesian AUC of the same levels, "
        f"`exposure_table(method=\"map\")` with the default population model; rows `@true-auc`: the "
        f"noiseless model AUC, an oracle), endpoint `{ENDPOINT}` by day {HORIZON:g}, two-cut search on a "
        f"{args.grid_k}-point quantile grid (minprop {args.minprop:g}), {args.permutations} permutations, "
        f"{args.bootstraps} bootstraps, 5-fold cross-fitting, reported bounds = `{args.estimate}` "
        f"(the bagged error column is always the bootstrap median); one row per scenario, "
        "targets from issue 3 in brackets.",
        "",
        "| scenario | cohorts | n | events (median) | reject at 5 % (adjusted) | reject at 5 % (naive min-p) | "
        "reject at 5 %, true window pre-specified (no search) | "
        "median abs. error L / U (median signed error) | bagged (bootstrap median) abs. error L / U | 95 % CI coverage L / U (percentile) | (basic) | median CI width L / U (percentile) | "
        "bound open in bootstrap (median share) L / U | cross-fitted HR (median) | population HR (true / measured AUC) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scen in [*SCENARIOS, *ORACLES, *CANDIDATES]:
        r = [row for row in rows if row["scenario"] == scen]
        if not r:
            continue
        p = np.array([row["p"] for row in r])
        naive = np.array([row["naive_p"] for row in r])
        lo = np.array([row["lower"] for row in r])
        up = np.array([row["upper"] for row in r])
        tl, tu = r[0]["true_lower"], r[0]["true_upper"]
        null = scen.startswith("null")
        err = "-" if null else (f"{np.median(np.abs(lo - tl)):.1f} / {np.median(np.abs(up - tu)):.1f} "
                                f"({np.median(lo - tl):+.1f} / {np.median(up - tu):+.1f})")
        blo = np.array([row["bagged_lower"] for row in r])
        bup = np.array([row["bagged_upper"] for row in r])
        bag = "-" if null else f"{np.median(np.abs(blo - tl)):.1f} / {np.median(np.abs(bup - tu)):.1f}"
        cov = {}
        width = "-"
        for m in CI_METHODS:
            if null:
                cov[m] = "-"
                continue
            cl = np.mean([_cover(row[f"{m}_lower_ci"], tl) for row in r])
            cu = np.mean([_cover(row[f"{m}_upper_ci"], tu) for row in r])
            cov[m] = f"{100 * cl:.0f} % / {100 * cu:.0f} %"
        if not null:
            wl = np.median([row["percentile_lower_ci"][1] - row["percentile_lower_ci"][0] for row in r])
            wu = np.median([row["percentile_upper_ci"][1] - row["percentile_upper_ci"][0] for row in r])
            width = f"{wl:.0f} / {wu:.0f}"
        hr = np.array([row["hr"] for row in r if row["hr"] is not None and np.isfinite(row["hr"])])
        ph = pop.get(scen.split("@")[0])
        pop_txt = "-" if not ph else f"{ph['true_auc']:.2f} / {ph['measured_auc']:.2f}"
        open_txt = (f"{np.median([row['open_lower_share'] for row in r]):.2f} / "
                    f"{np.median([row['open_upper_share'] for row in r]):.2f}")
        lines.append(
            f"| {scen} | {len(r)} | {r[0]['n']} | {np.median([row['events'] for row in r]):.0f} | "
            f"{100 * np.mean(p < 0.05):.1f} %{' [<= 5 %]' if null else (' [>= 80 %]' if scen == 'urd' else '')} | "
            f"{100 * np.mean(naive < 0.05):.1f} % | {_share([row.get('true_window_p') for row in r])} | {err}{' [<= 10]' if scen == 'urd' else ''} | {bag} | "
            f"{cov['percentile']}{'' if null else ' [>= 90 %]'} | {cov['basic']} | {width} | {open_txt} | "
            f"{np.median(hr):.2f} | {pop_txt} |"
        )
    bias = []
    for scen in [*SCENARIOS, *ORACLES, *CANDIDATES]:
        base = scen.split("@")[0]
        hrs = [row["hr"] for row in rows if row["scenario"] == scen and row["hr"] and np.isfinite(row["hr"])]
        if base in pop and hrs and not scen.endswith("@map"):
            ref = pop[base]["true_auc" if scen.endswith("@true-auc") else "measured_auc"]
            bias.append(f"{scen} {np.median(hrs):.2f} vs {ref:.2f} ({np.median(hrs) / ref - 1:+.0%})")
    if bias:
        lines += ["", "Cross-fitted hazard ratio (median over cohorts) vs the population value (HR inside vs outside "
                  "the true window in one cohort of " f"{args.pop_n:,} patients, classified by the same kind of AUC "
                  "the search saw): " + "; ".join(bias) + "."]
    lines += _notes(rows)
    if study:
        lines += _study_section(study, args)
    if spd:
        def ratio(a, b):
            return "-" if a is None or b is None else f"{b / a:.1f}x"

        lines += [
            "",
            "### Speed (best of repeated runs, seconds)",
            "",
            "| task | ours | R maxstat (single cut, condMC B = 1000) | R / ours |",
            "|---|---|---|---|",
            f"| full discovery, n = 324: two-cut scan + 1,000 permutations + 1,000 bootstraps + 5-fold cross-fit "
            f"[<= 2 s] | {spd['full_324']:.2f} | {_fmt(spd['r_324'])} (single-cut scan only) | not comparable |",
            f"| the same with bagged bounds (the CLI default: cross-fitting bags 200 resamples per fold) "
            f"[<= 2 s] | {spd['full_324_bagged']:.2f} | | |",
            f"| single-cut scan over every cut (maxstat's), 1,000 permutations, n = 324 | {spd['single_324']:.3f} | "
            f"{_fmt(spd['r_324'])} | {ratio(spd['single_324'], spd['r_324'])} |",
            f"| two-cut scan ({args.grid_k}-point grid) + 1,000 permutations, n = {spd['big_n']:,} [<= 5 s] | "
            f"{spd['two_cut_big']:.2f} | {_fmt(spd['r_big'])} | {ratio(spd['two_cut_big'], spd['r_big'])} |",
            f"| single-cut scan over every cut (maxstat's), 1,000 permutations, n = {spd['big_n']:,} | "
            f"{spd['single_big']:.2f} | {_fmt(spd['r_big'])} | {ratio(spd['single_big'], spd['r_big'])} |",
            "",
            "Speed data: n = 324 is a virtual URD cohort; the large n is synthetic (log-normal exposure, "
            "step hazard) written to CSV for R. R timings include only `maxstat.test` (`system.time`).",
        ]
    return "\n".join(lines)


def _study_section(study: dict, args) -> list[str]:
    """The power study: permutation p only, per configuration of exposure, covariates and grid."""
    return [
        "",
        "### Power study: what raises the power of the default discovery (issue 3)",
        "",
        f"Permutation p of the two-cut search only ({args.permutations} permutations; no bootstrap, no "
        "cross-fitting, which do not change the p-value), the same cohorts (seeds 10000...) for every "
        "configuration; the true window pre-specified is tested with the same scores (normal p). "
        "Exposure: `nca` and `map` from the noisy levels (`ml.pk.exposure_table(method=...)`), `true` = "
        "the simulator's noiseless AUC (an oracle no user has). Rates +- Monte Carlo SE (number of cohorts). "
        "Reproduce: `python scripts/bench_window.py --no-speed --study` (or one configuration: "
        "`--power-only --exposure map --grid-k 40 --minprop 0.2`; covariate sets: "
        "`--covariates \"none;cmv_serostatus;cmv_serostatus,hla_mismatches,age_years,disease_status\"`).",
        "",
        *power_table(study),
        *_study_notes(study),
    ]


def _paired(study: dict, a: PowerConfig, b: PowerConfig, scenario: str = "urd") -> str:
    """Paired difference of rejection rates b - a on the same cohorts, +- its Monte Carlo SE."""
    if a not in study or b not in study:
        return "-"
    pa = {r["seed"]: r["p"] < 0.05 for r in study[a] if r["scenario"] == scenario}
    pb = {r["seed"]: r["p"] < 0.05 for r in study[b] if r["scenario"] == scenario}
    d = np.array([float(pb[k]) - float(pa[k]) for k in pa if k in pb])
    if d.size < 2:
        return "-"
    return f"{100 * d.mean():+.1f} +- {100 * d.std(ddof=1) / math.sqrt(d.size):.1f} points"


def _study_notes(study: dict) -> list[str]:
    """Plain-language reading of the power study, computed from its rows."""
    def p(cfg, key="p", scen="urd"):
        return _rate([r[key] for r in study.get(cfg, []) if r["scenario"] == scen]).split(" (")[0]

    default, best = PowerConfig("nca"), PowerConfig("map", (), 40, 0.2)
    return [
        "",
        f"Reading (paired differences on the same cohorts): covariate adjustment does not help - "
        f"CMV serostatus {_paired(study, default, PowerConfig('nca', COV_CMV))}, four prognostic covariates "
        f"{_paired(study, default, PowerConfig('nca', COV_PROGNOSTIC))}, all eight "
        f"{_paired(study, default, PowerConfig('nca', COV_ALL))} on NCA exposure; even on the true AUC CMV "
        f"serostatus gives only {_paired(study, PowerConfig('true'), PowerConfig('true', COV_CMV))}. In the "
        "simulator the covariates act on single components of a composite that 87 % of patients reach by "
        "day 180 (R-/D- is 1.7 % of patients), so they explain little of the composite and cost degrees of "
        f"freedom. The grid size hardly matters (k = 20 instead of 40: "
        f"{_paired(study, default, PowerConfig('nca', (), 20))}). minprop 0.2 (every group - below, inside, above - "
        f"at least 20 % of the cohort) is the one search setting that helps: "
        f"{_paired(study, default, PowerConfig('nca', (), 40, 0.2))} on NCA, "
        f"{_paired(study, PowerConfig('map'), best)} on MAP, "
        f"{_paired(study, PowerConfig('true'), PowerConfig('true', (), 40, 0.2))} on the true AUC, type-I unchanged; "
        "it removes the narrow windows that noise favours (in the simulator each group holds 25 % or more of the "
        "patients: below 32 %, inside 42 %, above 25 %; a true group smaller than minprop could not be found). "
        "Weighting the scores does not help either: Fleming-Harrington weights for early events (rho = 1) "
        f"{_paired(study, best, PowerConfig('map', (), 40, 0.2, (1.0, 0.0)))}, for late events (gamma = 1) "
        f"{_paired(study, best, PowerConfig('map', (), 40, 0.2, (0.0, 1.0)))} against log-rank scores (MAP, "
        "minprop 0.2): the exposure effect on the composite is close to proportional hazards. "
        f"The exposure is the other lever: MAP instead of NCA {_paired(study, default, PowerConfig('map'))} at the "
        f"default grid. Together (MAP, minprop 0.2) the search rejects in {p(best)} of `urd` cohorts against "
        f"{p(default)} for the default, with type-I {p(best, scen='null')} on `null` (MAP here uses the "
        "simulator's own population PK model as prior, so it is a best case for MAP).",
        "",
        "No configuration reaches 80 % on `urd` with exposure from the noisy levels. A rough ceiling is the test "
        f"of the *true* window pre-specified, with no search: {p(default, 'true_window_p')} of cohorts with NCA and "
        f"{p(PowerConfig('map'), 'true_window_p')} with MAP exposure. The best searches match or somewhat exceed "
        f"it ({p(PowerConfig('nca', (), 40, 0.2))} on NCA, {p(best)} on MAP) because the measured AUC is not on "
        "the true scale (NCA reads about 4 % high, MAP is shrunk), so the true bounds are not the best cut points "
        "of the measured AUC; no search setting closes the remaining gap. Only the noiseless AUC (an oracle) comes near "
        f"80 %: {p(PowerConfig('true'), 'true_window_p')} pre-specified, {p(PowerConfig('true'))} for the default "
        f"search and {p(PowerConfig('true', (), 40, 0.2))} with minprop 0.2. The 80 % target needs more patients "
        "or more precise exposure than the simulator's design (324 patients, 20 % + 0.3 UE/mL "
        "residual error) provides.",
        *_size_note(study),
    ]


def _size_note(study: dict) -> list[str]:
    """How power grows with the number of patients (minprop 0.2), from the larger cohorts of the study."""
    parts = []
    for n in STUDY_SIZES:
        cells = [f"{e} {_rate([r['p'] for r in study.get(PowerConfig(e, (), 40, 0.2, None, n), [])]).split(' (')[0]}"
                 for e in EXPOSURES if PowerConfig(e, (), 40, 0.2, None, n) in study]
        if cells:
            parts.append(f"{n} patients: " + ", ".join(cells))
    if not parts:
        return []
    return ["", "Power of the search with minprop 0.2 on larger `urd` cohorts (same simulator, seeds 10000...; "
            "`--power-only --scenarios urd --n 500 --exposure nca,map,true --minprop 0.1,0.2`): "
            + "; ".join(parts) + "."]


def _notes(rows: list[dict]) -> list[str]:
    """Plain-language reading of the table, computed from the rows."""
    def of(scen):
        return [r for r in rows if r["scenario"] == scen]

    out = []
    urd, oracle = of("urd"), of("urd@true-auc")
    if urd and all("true_window_p" in r for r in urd):
        txt = (f"Power is limited by the data, not by the search: testing the *true* window with no search at all "
               f"rejects in {_share([r['true_window_p'] for r in urd])} of `urd` cohorts on the measured (NCA) AUC, "
               f"the search in {_share([r['p'] for r in urd])}")
        if oracle:
            txt += (f"; on the noiseless model AUC the same cohorts give {_share([r['true_window_p'] for r in oracle])} "
                    f"and {_share([r['p'] for r in oracle])}")
        out += ["", txt + ". The AUC's measurement error (NCA of noisy levels) dilutes the contrast."]
    cand, cand_null = of(CANDIDATES[0]), of(CANDIDATES[1])
    if urd and cand:
        out += ["", f"Rows `@minprop-{CANDIDATE_MINPROP:g}`: the same cohorts and exposure with minprop "
                f"{CANDIDATE_MINPROP:g} (every group at least {100 * CANDIDATE_MINPROP:.0f} % of the cohort), "
                f"the default of `atgwin discover` and the shipped experiments since the power study below "
                f"(the main rows keep R maxstat's 0.1 for comparison with earlier runs): power "
                f"{_share([r['p'] for r in urd])} -> {_share([r['p'] for r in cand])}, type-I "
                f"{_share([r['p'] for r in of('null')])} -> {_share([r['p'] for r in cand_null])}, and smaller bound "
                "errors and narrower upper-bound intervals at unchanged coverage."]
    non_null = [r for r in rows if not r["scenario"].startswith("null")]
    if non_null:
        open_low = np.mean([np.isneginf(r["percentile_lower_ci"][0]) for r in non_null])
        out += ["", f"The percentile intervals reach the coverage target in every scenario, largely through width: "
                f"{100 * open_low:.0f} % of lower-bound intervals are unbounded below (some bootstrap resamples find "
                "no lower bound). The basic (reflected) interval is narrower and under-covers, so percentile is the "
                "method used. The bagged bounds (median of the bootstrap windows) have smaller errors than the "
                "best-scoring window; `atgwin discover` reports them by default (`--estimate bagged`)."]
    return out


def _share(ps) -> str:
    ps = [p for p in ps if p is not None]
    return "-" if not ps else f"{100 * np.mean(np.array(ps) < 0.05):.1f} %"


def _fmt(v):
    return "not run (R not installed)" if v is None else f"{v:.2f}"


def _run_cohorts(args, scenarios, rows: list, cache, executor) -> None:
    """Search ``args.reps`` cohorts per scenario on ``executor``, skipping those cached; append each row
    to ``rows`` and the cache as it arrives."""
    done = {(r["scenario"], r["seed"]) for r in rows}
    todo = [(scen, 10_000 + rep) for scen in scenarios for rep in range(args.reps) if (scen, 10_000 + rep) not in done]
    with cache.open("a") as fh:
        def keep(row):
            rows.append(row)
            fh.write(json.dumps(row, default=_json_default) + "\n")
            fh.flush()
            print(f"{row['scenario']} rep {row['seed'] - 10_000}: [{row['lower']:.1f}, {row['upper']:.1f}) "
                  f"p={row['p']:.3f} ({row['seconds']:.2f} s)", flush=True)

        executor.map(_full_cohort, todo, progress=keep, args=args)


def _population_hrs(args, scenarios, cache_dir) -> dict:
    """Population hazard ratios per scenario (cached; computed unless --speed-only)."""
    pop = {}
    pop_cache = cache_dir / f"population-{args.pop_n}.json"
    if pop_cache.exists():
        pop = json.loads(pop_cache.read_text())
    if not args.speed_only:
        for scen in scenarios:
            if scen not in pop and scen in SCENARIOS and scen != "null":
                pop[scen] = population_hr(scen, args.pop_n)
                pop_cache.write_text(json.dumps(pop, indent=1))
    return pop


# --------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=200, help="cohorts per scenario")
    ap.add_argument("--scenarios", default=",".join([*SCENARIOS, *ORACLES]),
                    help="comma-separated; 'urd@true-auc' / 'null@true-auc' search the noiseless AUC (diagnostic), "
                    "'urd@map' / 'null@map' the MAP Bayesian AUC of the same levels")
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--bootstraps", type=int, default=1000)
    ap.add_argument("--grid-k", default="40", help="grid points (a comma list with --power-only)")
    ap.add_argument("--minprop", default="0.1", help="smallest group share (a comma list with --power-only)")
    ap.add_argument("--power-only", action="store_true",
                    help="only the permutation p of the search and of the true window (no bootstrap, no "
                    "cross-fitting) for every combination of --exposure, --covariates, --grid-k, --minprop; "
                    "scenarios default to urd,null; prints a table, leaves docs alone")
    ap.add_argument("--exposure", default="nca", help="comma list of nca, map (MAP Bayesian, ml.pk), true "
                    "(noiseless model AUC, an oracle); --power-only")
    ap.add_argument("--covariates", default="none", help="covariate sets of the adjusted search (Cox martingale "
                    "scores), sets separated by ';', columns within a set by ',', 'none' = log-rank; --power-only")
    ap.add_argument("--weights", default="none", help="Fleming-Harrington weights rho,gamma of the scores, sets "
                    "separated by ';' (e.g. '1,0;0,1'), 'none' = log-rank; --power-only, without covariates")
    ap.add_argument("--n", type=int, default=None, help="patients per cohort (default: the scenario's); "
                    "--power-only, e.g. how many patients 80 %% power would need")
    ap.add_argument("--study", action="store_true", help="also run the power study's configurations (STUDY, "
                    "--power-reps cohorts of urd and null each) before writing the summary")
    ap.add_argument("--power-reps", type=int, default=400, help="cohorts per scenario of the power study")
    ap.add_argument("--estimate", choices=("argmax", "bagged"), default="argmax",
                    help="point estimate of the bounds (the CLI's default is bagged)")
    ap.add_argument("--big-n", type=int, default=100_000)
    ap.add_argument("--pop-n", type=int, default=20_000, help="patients of the population-HR cohort")
    ap.add_argument("--speed-only", action="store_true")
    ap.add_argument("--no-speed", action="store_true", help="skip the timings (reuse the last ones if any)")
    ap.add_argument("--no-write", action="store_true", help="print the summary, leave docs alone")
    ap.add_argument("--workers", type=int, default=0,
                    help="run the cohorts on a local Dask cluster of this many processes (0/1: serially here); "
                         "the rows do not depend on it (needs the 'parallel' extra)")
    ap.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="run the cohorts on an existing Dask cluster (tcp://host:8786) instead")
    args = ap.parse_args(argv)

    cache_dir = CACHE_DIR
    cache_dir.mkdir(parents=True, exist_ok=True)
    from ml._parallel import executor_from

    with executor_from(args.workers, args.scheduler) as executor:
        if args.power_only:
            return power_only(args, cache_dir, executor)
        return _main(args, cache_dir, executor)


def _main(args, cache_dir: Path, executor) -> int:
    """The full benchmark (and, with ``--study``, the power study) on ``executor``."""
    args.grid_k, args.minprop = int(args.grid_k), float(args.minprop)
    cache = _full_cache(args, args.minprop)
    rows = _load(cache)
    scenarios = [s for s in args.scenarios.split(",") if s]

    if not args.speed_only:
        _run_cohorts(args, scenarios, rows, cache, executor)
        _fill_true_window_p(rows, cache)
    rows = [r for r in rows if r["scenario"] in scenarios and r["seed"] < 10_000 + args.reps]
    if args.minprop != CANDIDATE_MINPROP:
        rows += _candidate_rows(args)

    pop = _population_hrs(args, scenarios, cache_dir)

    speed_cache = cache_dir / f"speed-{args.big_n}.json"
    if args.no_speed:
        spd = json.loads(speed_cache.read_text()) if speed_cache.exists() else None
    else:
        spd = speed(args)
        speed_cache.write_text(json.dumps(spd, indent=1))
    study = run_power([c for c in STUDY if c.n is None], ["urd", "null"], args.power_reps, args.permutations,
                      cache_dir, cached_only=not args.study, executor=executor)
    # larger cohorts: power only (urd), half the cohorts (MAP fits of 500+ patients are slow)
    study |= run_power([c for c in STUDY if c.n is not None], ["urd"], args.power_reps // 2, args.permutations,
                       cache_dir, cached_only=not args.study, executor=executor)
    text = summarise(rows, pop, spd, args, {cfg: r for cfg, r in study.items() if r})
    print(text)
    if (args.grid_k, args.minprop) != (40, 0.1):
        print("not written: docs/benchmarks.md shows the default grid (--grid-k 40 --minprop 0.1)")
    elif not args.no_write:
        section = "window" if args.estimate == "argmax" else f"window-{args.estimate}"
        print("written:", write_section(section, text))
    return 0


def power_only(args, cache_dir: Path, executor=None) -> int:
    """``--power-only``: every combination of the listed options, then a table on stdout."""
    default = ",".join([*SCENARIOS, *ORACLES])
    scenarios = ["urd", "null"] if args.scenarios == default else [s for s in args.scenarios.split(",") if s]
    sets = [() if c.strip() in ("", "none") else tuple(v.strip() for v in c.split(",") if v.strip())
            for c in args.covariates.split(";")]
    weights = [None if w.strip() in ("", "none") else tuple(float(v) for v in w.split(","))
               for w in args.weights.split(";")]
    configs = [PowerConfig(e.strip(), cov, int(k), float(m), w, args.n) for e in args.exposure.split(",")
               for cov in sets for k in args.grid_k.split(",") for m in args.minprop.split(",") for w in weights
               if not (cov and w)]
    bad = [c.exposure for c in configs if c.exposure not in EXPOSURES]
    if bad:
        raise SystemExit(f"--exposure must be among {EXPOSURES}, got {bad}")
    results = run_power(configs, scenarios, args.reps, args.permutations, cache_dir, executor=executor)
    print("\n".join(power_table(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
