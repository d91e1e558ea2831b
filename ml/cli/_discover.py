"""``atgwin discover DIR --out window.json``: window search with permutation p and bootstrap CIs."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import click

from ml.cli._common import exposure_options

DEFAULT_ENDPOINT = "cmv|ebv|agvhd2|death"
DEFAULT_OUTCOMES = "cmv,ebv,agvhd2,agvhd3,cgvhd,relapse,nrm"


def _horizon(value: str) -> float | None:
    if value.strip().lower() in ("none", "inf", ""):
        return None
    try:
        h = float(value)
    except ValueError:
        raise click.BadParameter(f"horizon must be a number of days or 'none', got {value!r}") from None
    if not (math.isfinite(h) and h > 0):
        raise click.BadParameter(f"horizon must be > 0 days or 'none', got {value!r}")
    return h


def _fmt_ci(ci) -> str:
    if ci is None:
        return "(no interval)"
    lo = "-inf" if ci[0] is None else f"{ci[0]:.1f}"
    hi = "+inf" if ci[1] is None else f"{ci[1]:.1f}"
    return f"[{lo}, {hi}]"


def _p(p: float | None) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    return f"{p:.3g}" if p >= 1e-4 else f"{p:.1e}"


def _load(directory: Path, exposure_method: str = "nca", pk_model: str | None = None):
    from ml.cli._common import cohort_exposure
    from ml.cohort import CohortValidationError, load_cohort

    try:
        cohort = load_cohort(directory)
    except CohortValidationError as exc:
        raise click.ClickException(f"{directory}: invalid cohort\n{exc}") from None
    except FileNotFoundError as exc:
        raise click.ClickException(f"{directory}: {exc}") from None
    exposure, definition = cohort_exposure(cohort, exposure_method, pk_model)
    return cohort, exposure, definition


def _design(cohort, exposure, covariates: list[str]):
    """Exposure aligned with ``cohort.outcomes`` and the encoded covariate matrix (or None)."""
    from ml.features import adjustment_covariates, feature_frame

    frame = feature_frame(cohort, exposure[["patient_id", "auc_total"]])
    x = frame["auc_total"].to_numpy(dtype=float)
    if not covariates:
        return x, None, []
    try:
        Z = adjustment_covariates(frame, covariates)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    return x, Z, list(Z.columns)


def _print_banner(cohort) -> None:
    if cohort.meta.simulated:
        click.secho("=" * 72 + "\nSIMULATED DATA: virtual cohort; no conclusion about patients.\n" + "=" * 72,
                    bold=True)


def _print_incidences(incidences) -> None:
    if not incidences:
        return
    click.echo(f"\nCumulative incidence by day {incidences[0].horizon_days:g} (Aalen-Johansen, competing risks; "
               "95% CI; p vs inside):")
    click.echo(f"  {'outcome':<9}" + "".join(f"{g:<26}" for g in ("below", "inside", "above", "outside")))
    by = {}
    for inc in incidences:
        by.setdefault(inc.outcome, {})[inc.group] = inc
    for outcome, groups in by.items():
        cells = []
        for g in ("below", "inside", "above", "outside"):
            inc = groups.get(g)
            if inc is None:
                cells.append(f"{'-':<26}")
                continue
            p = "" if inc.p_value is None else f" p={_p(inc.p_value)}"
            cells.append(f"{100 * inc.incidence:5.1f}% n={inc.n}{p}".ljust(26))
        click.echo(f"  {outcome:<9}" + "".join(cells))


@click.command("discover")
@click.argument("directory", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False),
              help="Where to write the window (JSON). Required unless --evaluate.")
@click.option("--endpoint", default=DEFAULT_ENDPOINT, show_default=True,
              help="Endpoint: cmv, ebv, agvhd2, agvhd3, cgvhd, relapse, nrm, os, dfs, or a composite a|b|c.")
@click.option("--horizon", "horizon_text", default="180", show_default=True,
              help="Days from transplant the endpoint is truncated at, or 'none'.")
@click.option("--covariates", default="", help="Comma-separated patients columns for an adjusted search "
              "(Cox martingale-residual scores), e.g. cmv_serostatus,hla_mismatches.")
@click.option("--single-cut", is_flag=True, help="One bound only (a threshold), as R maxstat.")
@click.option("--permutations", default=1000, show_default=True, type=click.IntRange(0))
@click.option("--bootstraps", default=1000, show_default=True, type=click.IntRange(0))
@click.option("--folds", default=5, show_default=True, type=click.IntRange(0),
              help="Folds of the cross-fitted hazard ratio (0: skip).")
@click.option("--grid-k", default=40, show_default=True, type=click.IntRange(2), help="Candidate cut points.")
@click.option("--minprop", default=0.2, show_default=True, type=click.FloatRange(0.01, 0.45),
              help="Smallest share of patients below, inside and above the window (0.2 has more power "
              "than R maxstat's 0.1 at the same type-I error: docs/benchmarks.md, window).")
@click.option("--ci-method", default="percentile", show_default=True,
              type=click.Choice(["percentile", "basic"]))
@click.option("--estimate", default="bagged", show_default=True, type=click.Choice(["bagged", "argmax"]),
              help="Reported bounds: median of the bootstrap windows (bagged; more accurate, see "
              "docs/benchmarks.md) or the single best-scoring window (argmax).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--alpha", default=0.05, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True))
@click.option("--min-events", default=10, show_default=True, type=click.IntRange(1))
@click.option("--outcomes", "outcomes_text", default=DEFAULT_OUTCOMES, show_default=True,
              help="Endpoints whose cumulative incidence is reported below/inside/above the window.")
@click.option("--incidence-horizon", default=None, type=float,
              help="Day at which incidences are read (default: --horizon, or 365 when it is 'none').")
@click.option("--evaluate", "evaluate_path", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Score this window (JSON) on the cohort without searching.")
@exposure_options
def discover(directory: Path, out: Path | None, endpoint: str, horizon_text: str, covariates: str,
             single_cut: bool, permutations: int, bootstraps: int, folds: int, grid_k: int, minprop: float,
             ci_method: str, estimate: str, seed: int, alpha: float, min_events: int, outcomes_text: str,
             incidence_horizon: float | None, evaluate_path: Path | None, exposure_method: str,
             pk_model: str | None) -> None:
    """Find the exposure window of the cohort in DIRECTORY (total active-ATG AUC).

    Prints the window with bootstrap intervals, the p-value adjusted for the whole search, the
    cross-fitted hazard ratio and per-outcome incidences, and writes an ExposureWindow (JSON,
    status 'candidate', or 'no-window' when the adjusted p-value is not below --alpha).
    """
    from ml.features import competing_target, parse_endpoint

    horizon = _horizon(horizon_text)
    try:
        endpoint = parse_endpoint(endpoint).name
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--endpoint") from None
    outcome_list = [o.strip() for o in outcomes_text.split(",") if o.strip()]
    for o in outcome_list:
        try:
            parse_endpoint(o)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--outcomes") from None
    cov_names = [c.strip() for c in covariates.split(",") if c.strip()]
    if evaluate_path is None and out is None:
        raise click.UsageError("--out is required (where to write the window)")

    cohort, exposure, definition = _load(directory, exposure_method, pk_model)
    unit = cohort.meta.exposure_unit
    x, Z, z_names = _design(cohort, exposure, cov_names)
    y = competing_target(cohort.outcomes, endpoint, horizon)
    inc_horizon = incidence_horizon or horizon or 365.0

    _print_banner(cohort)
    n_missing = int(sum(map(math.isnan, x)))
    if n_missing:
        click.echo(f"warning: {n_missing} patient(s) without a computable AUC are excluded.", err=True)

    if evaluate_path is not None:
        _evaluate(evaluate_path, cohort, x, y, Z, unit, endpoint, horizon, permutations, seed, out,
                  outcome_list, inc_horizon)
        return

    from ml.window import CoxMartingaleScores, LogRankScores, QuantileGrid, WindowSearch, exposure_window
    from ml.window import population_of, window_incidences

    scores = CoxMartingaleScores() if Z is not None else LogRankScores()
    search = WindowSearch(scores, QuantileGrid(k=grid_k, minprop=minprop), single_cut=single_cut,
                          n_permutations=permutations, n_bootstraps=bootstraps, n_folds=folds,
                          ci_method=ci_method, min_events=min_events, random_state=seed, progress=True,
                          estimate=estimate if bootstraps else "argmax")
    X = x if Z is None else _stack(x, Z)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*missing exposure.*")
            search.fit(X, y)
    except ValueError as exc:
        raise click.ClickException(f"no window search possible: {exc}") from None

    incidences = window_incidences(x, cohort.outcomes, _open(search.lower_), _open(search.upper_),
                                   outcome_list, inc_horizon)
    window = exposure_window(search, unit=unit, endpoint=endpoint, horizon_days=horizon,
                             population=population_of(cohort, search.n_, search.n_events_),
                             dataset_digest=cohort.digest, simulated=cohort.meta.simulated, alpha=alpha,
                             incidences=incidences, exposure_definition=definition)
    if z_names:
        window = _with_covariates(window, z_names)
    window.to_json(out)
    _print_search(window, search, alpha)
    _print_incidences(incidences)
    click.echo(f"\nWritten: {out} (status {window.status!r})")


def _stack(x, Z):
    frame = Z.copy()
    frame.insert(0, "__exposure__", x)
    return frame


def _open(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _with_covariates(window, names):
    from dataclasses import replace

    return replace(window, search={**window.search, "covariates": list(names)})


def _print_search(window, search, alpha: float) -> None:
    unit = window.unit
    kind = "threshold (single cut)" if search.single_cut else "window"
    h = "no horizon" if window.horizon_days is None else f"horizon day {window.horizon_days:g}"
    click.echo(f"\nEndpoint {window.endpoint!r}, {h}: {search.n_} patients, {search.n_events_} events"
               + (f" ({search.n_excluded_} excluded: no AUC)" if search.n_excluded_ else ""))
    lo = "open (below all observed)" if window.lower is None else f"{window.lower:.1f}"
    hi = "open (above all observed)" if window.upper is None else f"{window.upper:.1f}"
    if window.status == "no-window":
        click.echo(f"\nNo evidence of an exposure window: adjusted p = {_p(window.p_value)} is not below "
                   f"alpha = {alpha:g}.")
        click.echo(f"(Best-scoring {kind}, for the record only: [{lo}, {hi}) {unit}; "
                   f"naive p = {_p(search.naive_p_value_)} ignores the search and is not evidence.)")
    else:
        how = ("median of the bootstrap windows" if search.estimate == "bagged" and search.n_bootstraps
               else "best-scoring window")
        click.echo(f"\nEstimated {kind}: [{lo}, {hi}) {unit}, target {window.target:.1f} ({how})")
        click.echo(f"  lower bound {int(100 * window.ci_level)}% CI {_fmt_ci(window.lower_ci)}, "
                   f"upper bound {int(100 * window.ci_level)}% CI {_fmt_ci(window.upper_ci)} ({search.ci_method} bootstrap)")
        click.echo(f"  adjusted p = {_p(window.p_value)} ({search.n_permutations} permutations of the whole search); "
                   f"naive p = {_p(search.naive_p_value_)} (not adjusted, for contrast)")
    e = window.effect
    if e is not None:
        click.echo(f"  cross-fitted hazard ratio inside vs outside: {e.hr:.2f} "
                   f"[{e.ci_low:.2f}, {e.ci_high:.2f}] ({e.n_inside} inside / {e.n_outside} outside)")
    if len(search.window_frequency_):
        top = search.window_frequency_.iloc[0]
        lo_b = "open" if not math.isfinite(top["lower"]) else f"{top['lower']:.1f}"
        hi_b = "open" if not math.isfinite(top["upper"]) else f"{top['upper']:.1f}"
        click.echo(f"  most frequent bootstrap window: [{lo_b}, {hi_b}) "
                   f"in {100 * top['share']:.0f}% of resamples")


def _evaluate(path, cohort, x, y, Z, unit, endpoint, horizon, permutations, seed, out, outcome_list, inc_horizon):
    import json

    from ml.window import CoxMartingaleScores, ExposureWindow, LogRankScores, evaluate_window, window_incidences

    try:
        window = ExposureWindow.from_json(path)
    except (ValueError, TypeError, KeyError) as exc:
        raise click.ClickException(f"{path}: not a valid ExposureWindow: {exc}") from None
    if window.unit != unit:
        raise click.ClickException(f"unit mismatch: the window is in {window.unit!r} but this cohort's exposure "
                                   f"is in {unit!r}; assays cannot be converted, refusing to evaluate")
    if window.exposure != "auc_total":
        raise click.ClickException(f"the window is on {window.exposure!r}; only 'auc_total' can be evaluated here")
    if window.endpoint != endpoint or window.horizon_days != horizon:
        click.echo(f"note: the window was found for {window.endpoint!r} (horizon {window.horizon_days}); "
                   f"evaluating it for {endpoint!r} (horizon {horizon}).", err=True)
    scores = CoxMartingaleScores() if Z is not None else LogRankScores()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*missing exposure.*")
            ev = evaluate_window(x, y, window.lower, window.upper, scores=scores,
                                 covariates=None if Z is None else Z.to_numpy(), n_permutations=permutations,
                                 random_state=seed)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    lo = "open" if window.lower is None else f"{window.lower:.1f}"
    hi = "open" if window.upper is None else f"{window.upper:.1f}"
    click.echo(f"\nEvaluating the given window [{lo}, {hi}) {unit} (from {window.population.donor_source}, "
               f"{window.population.n} patients{', SIMULATED' if window.simulated else ''}) on "
               f"{cohort.meta.name!r} ({ev.n} patients, {ev.events} events); no search, so no adjustment needed.")
    click.echo(f"  inside: {ev.n_inside} patients, {ev.events_inside} events; statistic {ev.statistic:.2f}; "
               f"permutation p = {_p(ev.p_value)} (two-sided)")
    click.echo(f"  hazard ratio inside vs outside: {ev.hr:.2f} [{ev.hr_ci_low:.2f}, {ev.hr_ci_high:.2f}]")
    incidences = window_incidences(x, cohort.outcomes, window.lower, window.upper, outcome_list, inc_horizon)
    _print_incidences(incidences)
    if out is not None:
        payload = {"window": window.to_dict(), "cohort": cohort.meta.name, "dataset_digest": cohort.digest,
                   "simulated": cohort.meta.simulated, "endpoint": endpoint, "horizon_days": horizon,
                   "evaluation": {k: (None if isinstance(v, float) and math.isnan(v) else v)
                                  for k, v in ev.to_dict().items()},
                   "incidences": [i.__dict__ for i in incidences]}
        Path(out).write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n")
        click.echo(f"\nWritten: {out}")
