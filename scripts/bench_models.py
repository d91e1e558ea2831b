"""Time the model steps of the default pipeline on a virtual URD cohort (n = 324).

Steps: feature frame and encoding; 30-trial Optuna tuning of XGBoost ``survival:cox`` with
5-fold CV (composite endpoint ``cmv|ebv|agvhd2|death`` at day 365); 5x3 repeated CV of the tuned
model; SHAP (explanation, interaction ranking, window, three figures); Cox spline risk curves for
three endpoints with their figure. Writes the ``models`` section of docs/benchmarks.md.

    .venv/bin/python scripts/bench_models.py [--trials 30] [--no-write] [--compare-threads]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import optuna  # noqa: E402
from _benchdoc import provenance, write_section  # noqa: E402

from ml.features import survival_target  # noqa: E402
from ml.features._transformers import DEFAULT_FEATURES, feature_frame, make_preprocessor  # noqa: E402
from ml.models import (  # noqa: E402
    CoxSplineModel,
    XGBSurvival,
    cross_validate_survival,
    risk_curves,
    risk_curves_figure,
    shap_beeswarm_figure,
    shap_dependence_figure,
    shap_explanation,
    shap_importance,
    shap_waterfall_figure,
    shap_window,
    strongest_interaction,
    tune_xgb_survival,
)
from ml.pk import exposure_table  # noqa: E402
from ml.sim import simulate_cohort  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--compare-threads", action="store_true",
                        help="also tune with XGBoost nthread=2 (slow on a busy machine)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []

    def step(name, fn):
        t0 = time.perf_counter()
        out = fn()
        rows.append((name, time.perf_counter() - t0))
        print(f"{name}: {rows[-1][1]:.2f} s", flush=True)
        return out

    cohort = simulate_cohort(scenario="urd", n=324, seed=0)
    frame = step("feature frame (exposure NCA + covariates)",
                 lambda: feature_frame(cohort, exposure_table(cohort)))
    Xt = make_preprocessor(DEFAULT_FEATURES).fit_transform(frame)
    y = survival_target(cohort.outcomes, "cmv|ebv|agvhd2|death", horizon=365)
    res = {}
    for threads in ((1, 2) if args.compare_threads else (1,)):
        res[threads] = step(
            f"Optuna tuning, {args.trials} trials x 5-fold CV, XGBoost nthread={threads}",
            lambda t=threads: tune_xgb_survival(Xt, y, estimator=XGBSurvival(n_jobs=t),
                                                n_trials=args.trials, n_splits=5, random_state=0))
    tuned = res[1]
    cv = step("repeated CV of the tuned model (5 folds x 3 repeats, 6 metrics)",
              lambda: cross_validate_survival(XGBSurvival(random_state=0, **tuned.best_params),
                                              Xt, y, horizon=180.0, n_repeats=3, random_state=0))

    def shap_all():
        expl = shap_explanation(tuned.best_estimator, Xt)
        shap_importance(expl)
        window = shap_window(expl)
        partner = strongest_interaction(tuned.best_estimator, Xt)
        shap_beeswarm_figure(expl)
        shap_waterfall_figure(expl, 0)
        shap_dependence_figure(expl, color=partner, window=window)
        return window

    window = step("SHAP: values, importance, interactions, window, 3 figures", shap_all)
    Xc = make_preprocessor(DEFAULT_FEATURES, scale_numeric=True, drop_first=True,
                           min_frequency=10).fit_transform(frame)

    def curves():
        targets = {e: survival_target(cohort.outcomes, e, horizon=365)
                   for e in ("agvhd2", "cmv", "ebv")}
        c = risk_curves(Xc, targets, model=CoxSplineModel(), reference=125.0)
        risk_curves_figure(c, window=(window.lower, window.upper))

    step("Cox spline risk curves, 3 endpoints + figure", curves)
    total = sum(t for name, t in rows if "nthread=2" not in name)
    lines = [
        "## Models (ml.models)", "",
        "`.venv/bin/python scripts/bench_models.py` on `simulate_cohort(\"urd\", n=324, seed=0)`, "
        "composite endpoint `cmv|ebv|agvhd2|death` at day 365, default `DEFAULT_FEATURES` "
        f"({Xt.shape[1]} encoded columns).", "",
        "| step | seconds |", "|---|---:|",
        *[f"| {name} | {t:.2f} |" for name, t in rows],
        f"| **total (nthread=1 tuning)** | **{total:.2f}** |", "",
        f"Tuning: best CV Harrell's C {tuned.best_score:.3f}; "
        f"{int(tuned.to_dict()['tuning_n_pruned'])} of {args.trials} trials pruned. "
        f"Repeated CV: Harrell's C {cv.summary.loc['harrell_c', 'mean']:.3f} "
        f"+- {cv.summary.loc['harrell_c', 'sd']:.3f} (optimistic: tuned on the same data). "
        f"SHAP window [{window.lower:.1f}, {window.upper:.1f}] UE*day/mL "
        f"(truth [{cohort.meta.truth['lower']}, {cohort.meta.truth['upper']})).",
        *([] if not args.compare_threads else [
            "", "With two XGBoost threads per model the tuning is far slower on a shared 2-core "
            "machine (OpenMP threads wait for each other), hence `XGBSurvival(n_jobs=1)` by "
            "default; parallelise over trials, folds or endpoints instead."]),
        "",
        provenance(),
    ]
    md = "\n".join(lines)
    print(md)
    if not args.no_write:
        print("wrote", write_section("models", md))


if __name__ == "__main__":
    main()
