"""``atgwin discover DIR --out window.json``: window search with permutation p and bootstrap CIs."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import click

from ml._atomic import write_atomic
from ml._defaults import BENEFIT_HARM as BH
from ml._defaults import COMPOSITE_MINPROP, GLOBAL_TEST_NAMES, GRID_K, MINPROP
from ml._format import fmt_bound, fmt_ci, fmt_p
from ml._status import WindowStatus
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


_fmt_ci, _p = fmt_ci, fmt_p


def _load(directory: Path, exposure_method: str = "nca", pk_model: str | None = None):
    """Cohort, exposure table, its definition and the PK model reference (or None)."""
    from ml.cli._common import cohort_exposure
    from ml.cohort import CohortValidationError, load_cohort

    try:
        cohort = load_cohort(directory)
    except CohortValidationError as exc:
        raise click.ClickException(f"{directory}: invalid cohort\n{exc}") from None
    except FileNotFoundError as exc:
        raise click.ClickException(f"{directory}: {exc}") from None
    exposure, definition, model_ref = cohort_exposure(cohort, exposure_method, pk_model, with_model=True)
    return cohort, exposure, definition, model_ref


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


_CELL = 34  # width of one group's cell: "12.3 [8.1-17.9] n=120 p=0.0213"


def _print_incidences(incidences) -> None:
    if not incidences:
        return
    click.echo(f"\nCumulative incidence by day {incidences[0].horizon_days:g}, % [95% CI] (Aalen-Johansen, competing "
               "risks); n patients; p vs inside (Wald test of the difference at the horizon; not adjusted for "
               "the comparisons shown):")
    click.echo(f"  {'outcome':<9}" + "".join(f"{g:<{_CELL}}" for g in ("below", "inside", "above", "outside")))
    by = {}
    for inc in incidences:
        by.setdefault(inc.outcome, {})[inc.group] = inc
    for outcome, groups in by.items():
        cells = []
        for g in ("below", "inside", "above", "outside"):
            inc = groups.get(g)
            if inc is None:
                cells.append(f"{'-':<{_CELL}}")
                continue
            p = "" if inc.p_value is None else f" p={_p(inc.p_value)}"
            ci = (f" [{100 * inc.ci_low:.1f}-{100 * inc.ci_high:.1f}]"
                  if math.isfinite(inc.ci_low) and math.isfinite(inc.ci_high) else "")
            cells.append(f"{100 * inc.incidence:.1f}{ci} n={inc.n}{p}".ljust(_CELL))
        click.echo(f"  {outcome:<9}" + "".join(cells))


def _endpoints(text: str, option: str) -> tuple[str, ...]:
    from ml.features import parse_endpoint

    names = [e.strip() for e in text.split(",") if e.strip()]
    if not names:
        raise click.BadParameter("name at least one endpoint", param_hint=option)
    try:
        return tuple(parse_endpoint(e).name for e in names)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _names(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def _csv(value) -> str:
    return ",".join(value) if isinstance(value, tuple) else str(value)


@click.command("discover")
@click.argument("directory", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False),
              help="Where to write the window (JSON). Required unless --evaluate.")
@click.option("--floor", "floor_text", default=_csv(BH["floor_endpoints"]), show_default=True,
              help="Endpoint(s) harmed by UNDER-exposure, comma-separated; they set the floor (lower bound). "
              "E.g. agvhd2 or agvhd2,cgvhd.")
@click.option("--ceiling", "ceiling_text", default=_csv(BH["ceiling_endpoints"]), show_default=True,
              help="Endpoint(s) harmed by OVER-exposure, comma-separated; they set the ceiling (upper bound). "
              "E.g. cmv|ebv (first of CMV or EBV) or cmv,ebv,nrm.")
@click.option("--floor-horizon", default=f"{BH['floor_horizon']:g}", show_default=True,
              help="Days from transplant the floor endpoints are truncated at, or 'none'.")
@click.option("--ceiling-horizon", default=f"{BH['ceiling_horizon']:g}", show_default=True,
              help="Days from transplant the ceiling endpoints are truncated at, or 'none'.")
@click.option("--floor-covariates", default="", help="Patients columns adjusting the floor side (Cox martingale "
              "scores), e.g. hla_mismatches.")
@click.option("--ceiling-covariates", default="", help="Patients columns adjusting the ceiling side, e.g. "
              "cmv_serostatus.")
@click.option("--endpoint", default=None,
              help="Run the COMPOSITE two-cut search on this one endpoint instead of the benefit-harm search "
              "(for comparison), e.g. cmv|ebv|agvhd2|death. Endpoints: cmv, ebv, agvhd2, agvhd3, cgvhd, relapse, "
              "nrm, os, dfs, or a composite a|b|c.")
@click.option("--horizon", "horizon_text", default="180", show_default=True,
              help="Composite search only: days from transplant the endpoint is truncated at, or 'none'.")
@click.option("--covariates", default="", help="Composite search only: patients columns for an adjusted search "
              "(Cox martingale-residual scores), e.g. cmv_serostatus,hla_mismatches.")
@click.option("--single-cut", is_flag=True, help="Composite search only: one bound (a threshold), as R maxstat.")
@click.option("--permutations", default=BH["n_permutations"], show_default=True, type=click.IntRange(0))
@click.option("--bootstraps", default=BH["n_bootstraps"], show_default=True, type=click.IntRange(0))
@click.option("--folds", default=BH["n_folds"], show_default=True, type=click.IntRange(0),
              help="Folds of the cross-fitted hazard ratios (0: skip).")
@click.option("--grid-k", default=GRID_K, show_default=True, type=click.IntRange(2), help="Candidate cut points.")
@click.option("--minprop", default=None, type=click.FloatRange(0.01, 0.45),
              help=f"Smallest share of patients below, inside and above the window (default: {MINPROP} for the "
              f"benefit-harm search, {COMPOSITE_MINPROP} for the composite one; docs/benchmarks.md).")
@click.option("--ci-method", default=None, type=click.Choice(["ij", "percentile", "basic"]),
              help=f"Intervals of the bounds (default: {BH['ci_method']} for the benefit-harm search, percentile for "
              "the composite one). ij: normal interval with the infinitesimal-jackknife standard error of the "
              "smoothed bound; percentile/basic: bootstrap intervals.")
@click.option("--estimate", default=None, type=click.Choice(["smoothed", "bagged", "argmax"]),
              help=f"Reported bounds (default: {BH['estimate']} for the benefit-harm search, bagged for the composite "
              "one): mean (smoothed) or median (bagged) of the bootstrap bounds, or the best-scoring window "
              "(argmax); see docs/benchmarks.md.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--alpha", default=BH["alpha"], show_default=True,
              type=click.FloatRange(0, 1, min_open=True, max_open=True))
@click.option("--global-test", default=BH["global_test"], show_default=True, type=click.Choice(GLOBAL_TEST_NAMES),
              help="Test of 'no exposure effect on either side' that opens the closed test: the min-p of the best "
              "joint, floor and ceiling statistics, or the joint (floor + ceiling) statistic alone, which is weaker "
              "when only one harm exists (docs/benchmarks.md, 'benefit-harm').")
@click.option("--min-events", default=BH["min_events"], show_default=True, type=click.IntRange(1))
@click.option("--outcomes", "outcomes_text", default=DEFAULT_OUTCOMES, show_default=True,
              help="Endpoints whose cumulative incidence is reported below/inside/above the window.")
@click.option("--incidence-horizon", default=None, type=float,
              help="Day at which incidences are read (default: the search's horizon, or 365 without one).")
@click.option("--evaluate", "evaluate_path", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Score this window (JSON) on the cohort without searching (on --endpoint, default "
              f"{DEFAULT_ENDPOINT}).")
@exposure_options
def discover(directory: Path, out: Path | None, floor_text: str, ceiling_text: str, floor_horizon: str,
             ceiling_horizon: str, floor_covariates: str, ceiling_covariates: str, endpoint: str | None,
             horizon_text: str, covariates: str, single_cut: bool, permutations: int, bootstraps: int, folds: int,
             grid_k: int, minprop: float | None, ci_method: str, estimate: str, seed: int, alpha: float,
             global_test: str, min_events: int, outcomes_text: str, incidence_horizon: float | None, evaluate_path: Path | None,
             exposure_method: str, pk_model: str | None) -> None:
    """Find the exposure window of the cohort in DIRECTORY (total active-ATG AUC).

    By default a benefit-harm search: the floor is the cut below which the under-exposure harm
    (acute GVHD II-IV and chronic GVHD, by day 730) rises, the ceiling the cut above which the over-exposure harm (CMV/EBV
    reactivation) rises, each one-sided on its own endpoint, searched together (floor < ceiling)
    with one permutation test of the whole search and a closed test per side. Prints the window,
    each bound's adjusted p-value, bootstrap interval and cross-fitted hazard ratio, and the
    incidences below/inside/above; writes an ExposureWindow (JSON) whose finding is window,
    floor-only, ceiling-only, overlap or no-window. --endpoint runs the composite search instead.
    """
    outcome_list = _outcomes(outcomes_text)
    if evaluate_path is None and out is None:
        raise click.UsageError("--out is required (where to write the window)")
    composite = endpoint is not None or evaluate_path is not None
    endpoint = _composite_endpoint(endpoint, single_cut, covariates)
    from ml.cli._common import prepare_out

    prepare_out(out)
    horizon = _horizon(horizon_text)
    floor = _endpoints(floor_text, "--floor")
    ceiling = _endpoints(ceiling_text, "--ceiling")
    f_horizon, c_horizon = _horizon(floor_horizon), _horizon(ceiling_horizon)

    cohort, exposure, definition, model_ref = _load(directory, exposure_method, pk_model)
    _print_banner(cohort)

    if evaluate_path is not None:
        from ml.features import competing_target

        ep = endpoint or DEFAULT_ENDPOINT
        x, Z, _ = _design(cohort, exposure, _names(covariates))
        y = competing_target(cohort.outcomes, ep, horizon)
        _evaluate(evaluate_path, cohort, x, y, Z, cohort.meta.exposure_unit, ep, horizon, permutations, seed, out,
                  outcome_list, incidence_horizon or horizon or 365.0)
        return

    from ml.window import BenefitHarmSearch, QuantileGrid, composite_search
    from ml.window import discover as run_discovery

    estimate, ci_method = _estimate_and_ci(composite, estimate, ci_method, bootstraps)
    common = dict(n_permutations=permutations, n_bootstraps=bootstraps, n_folds=folds, ci_method=ci_method,
                  min_events=min_events, random_state=seed, progress=True, estimate=estimate)
    if composite:
        search = composite_search(covariates=bool(_names(covariates)), single_cut=single_cut,
                                  grid=QuantileGrid(k=grid_k, minprop=COMPOSITE_MINPROP if minprop is None else minprop), **common)
    else:
        search = BenefitHarmSearch(floor, ceiling, floor_horizon=f_horizon, ceiling_horizon=c_horizon,
                                   floor_covariates=_names(floor_covariates),
                                   ceiling_covariates=_names(ceiling_covariates), alpha=alpha, global_test=global_test,
                                   grid=QuantileGrid(k=grid_k, minprop=MINPROP if minprop is None else minprop), **common)
    try:
        found = run_discovery(cohort, exposure, search=search, endpoint=endpoint, horizon_days=horizon,
                              covariates=_names(covariates), alpha=alpha, outcomes=outcome_list,
                              incidence_horizon=incidence_horizon, exposure_definition=definition,
                              pk_model=model_ref)
    except ValueError as exc:
        raise click.ClickException(f"no window search possible: {exc}") from None
    _write_and_print(found, out, composite, alpha)


def _outcomes(text: str) -> list[str]:
    """The --outcomes endpoints, each checked."""
    from ml.features import parse_endpoint

    names = _names(text)
    for o in names:
        try:
            parse_endpoint(o)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--outcomes") from None
    return names


def _composite_endpoint(endpoint: str | None, single_cut: bool, covariates: str) -> str | None:
    """The --endpoint in canonical form; None (benefit-harm) refuses the composite-only options."""
    from ml.features import parse_endpoint

    if endpoint is not None:
        try:
            return parse_endpoint(endpoint).name
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--endpoint") from None
    if single_cut or covariates:
        raise click.UsageError("--single-cut and --covariates belong to the composite search: add --endpoint, "
                               "or adjust a side with --floor-covariates / --ceiling-covariates")
    return None


def _estimate_and_ci(composite: bool, estimate: str | None, ci_method: str | None, bootstraps: int):
    """The bound estimate and interval method: each search's default, argmax/percentile without a bootstrap."""
    if composite and (estimate == "smoothed" or ci_method == "ij"):
        raise click.UsageError("--estimate smoothed and --ci-method ij belong to the benefit-harm search")
    estimate = estimate or ("bagged" if composite else BH["estimate"])
    ci_method = ci_method or ("percentile" if composite else BH["ci_method"])
    if not bootstraps:
        estimate, ci_method = "argmax", "percentile"
    return estimate, ci_method


def _write_and_print(found, out: Path, composite: bool, alpha: float) -> None:
    """Write the found window to ``out`` and print the search's summary and the incidences."""
    if found.n_excluded:
        click.echo(f"warning: {found.n_excluded} patient(s) without a computable AUC are excluded.", err=True)
    window = found.window
    window.to_json(out)
    if composite:
        _print_search(window, found.search, alpha)
    else:
        _print_benefit_harm(window, found.search)
    _print_incidences(found.incidences)
    click.echo(f"\nWritten: {out} (status {window.status!r}, finding {window.finding!r})")


_v = fmt_bound


def _print_benefit_harm(window, search) -> None:
    click.echo(f"\nBenefit-harm search: {search.n_} patients"
               + (f" ({search.n_excluded_} excluded: no AUC)" if search.n_excluded_ else "")
               + f"; global p = {_p(window.p_value)} (no exposure effect on either side; {search.global_test} test "
               f"of {search.n_permutations} permutations of exposure against all outcomes, over the whole search)")
    head = f"  {'side':<8}{'endpoints':<14}{'horizon':>8}{'bound':>8}  {'95% CI':<16}{'adj. p':>8}{'events':>8}  " \
           "cross-fitted HR (harmed vs protected)"
    click.echo(head)
    for ev in (window.floor, window.ceiling):
        ci = "-" if ev.ci is None else _fmt_ci(ev.ci)
        hr = "-" if ev.effect is None else f"{ev.effect.hr:.2f} [{ev.effect.ci_low:.2f}, {ev.effect.ci_high:.2f}]"
        h = "none" if ev.horizon_days is None else f"{ev.horizon_days:g}"
        click.echo(f"  {ev.side:<8}{'+'.join(ev.endpoints):<14}{h:>8}{_v(ev.value):>8}  {ci:<16}"
                   f"{_p(ev.p_value):>8}{ev.events:>8}  {hr}")
    from ml.window._describe import window_sentence

    click.echo(f"\n{window_sentence(window)}")


def _print_search(window, search, alpha: float) -> None:
    unit = window.unit
    kind = "threshold (single cut)" if search.single_cut else "window"
    h = "no horizon" if window.horizon_days is None else f"horizon day {window.horizon_days:g}"
    click.echo(f"\nEndpoint {window.endpoint!r}, {h}: {search.n_} patients, {search.n_events_} events"
               + (f" ({search.n_excluded_} excluded: no AUC)" if search.n_excluded_ else ""))
    lo = "open (below all observed)" if window.lower is None else f"{window.lower:.1f}"
    hi = "open (above all observed)" if window.upper is None else f"{window.upper:.1f}"
    if window.status == WindowStatus.NO_WINDOW:
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
    click.echo(f"\nEvaluating the given window [{lo}, {hi}) {unit} ({window.provenance}) on "
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
        write_atomic(out, json.dumps(payload, indent=2, allow_nan=False) + "\n", mkdir=False)
        click.echo(f"\nWritten: {out}")
