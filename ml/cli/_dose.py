"""``atgwin dose``: individualised day -3/-2 ATG doses from early levels, into a validated window.

Refuses (exit 1, nothing recommended) a window open on a side or whose finding is not
``window`` (whatever its status or override), a window in another unit than the levels, a window
that is not ``validated`` unless an override names who and why (recorded in every
recommendation), and a ``no-window`` result. A window whose content changed since it was signed or
registered is refused naming the fields, override or not; a ``validated`` window that is unsigned (or
cannot be checked: no ``ATGWIN_SIGNING_KEY`` here) is dosed only under an override (docs/design.md,
"The exported window"). A patient that cannot be dosed (including one whose forecast fails) is listed with the
reason; the command exits 1 when nothing was recommended and 2 when some patients of a batch
were refused (after writing everything else).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ml._atomic import write_atomic
from ml._format import fmt_bound
from ml.cli._common import load_cohort_or_exit


def _model(model_path, window):
    """``--model`` if given, else the model the window names (registry or file beside it), else the shipped one."""
    from ml.dosing import DosingRefused, window_pk_model
    from ml.pk import PopPKModel

    if model_path:
        try:
            return PopPKModel.from_file(model_path), f"--model {model_path}"
        except (ValueError, OSError, KeyError) as exc:
            raise click.ClickException(f"{model_path}: not a population PK model: {exc}") from None
    try:
        model = window_pk_model(window)
    except DosingRefused as exc:
        raise click.ClickException(f"refused: {exc}") from None
    if model is not None:
        return model, f"the window's ({window.pk_model['source']})"
    return PopPKModel.default(), "shipped (the window names no model)"


def _engine(model, cap_mg_per_kg, cap_mg, min_mg, course_cap, vial_mg, start_hour, infusion_hours, draws, seed,
            on_misfit="refuse"):
    from ml.dosing import AdjustmentSchedule, DoseCaps, DosingEngine, LaplaceImportance
    from ml.dosing._patient import WEIGHT_RANGE_KG

    try:
        caps = DoseCaps(mg_per_kg_per_day=cap_mg_per_kg, mg_per_day=cap_mg, min_mg_per_day=min_mg,
                        vial_mg=vial_mg, course_mg_per_kg=course_cap)
        schedule = AdjustmentSchedule(start_hour=start_hour, infusion_hours=infusion_hours)
        engine = DosingEngine(model=model, caps=caps, schedule=schedule, posterior=LaplaceImportance(draws),
                              random_state=seed, on_misfit=on_misfit)
        caps.check_size(WEIGHT_RANGE_KG[1], len(schedule.days))  # the heaviest patient: before any allocation
        return engine
    except (ValueError, OSError, KeyError) as exc:
        raise click.ClickException(f"engine configuration: {exc}") from None


def _harms(f) -> str:
    """P(below floor) / P(in window) / P(above ceiling) of one forecast, compactly."""
    return f"{f.p_below_floor:.2f}/{f.p_in_window:.2f}/{f.p_above_ceiling:.2f}"


def _table(recs, refusals) -> str:
    head = (f"{'patient':<12} {'day -3':>18} {'day -2':>18} {'forecast AUC median [90% PI]':>30} "
            f"{'P(below/in/above)':>17} {'fixed: median':>14} {'P(below/in/above)':>17}  warnings")
    lines = [head, "-" * len(head)]
    for r in recs:
        days = [f"{d.mg:5.0f} mg ({d.vials:2d} v, {d.mg_per_kg:4.2f}/kg)" for d in r.doses]
        f, x = r.forecast, r.fixed_forecast
        lines.append(f"{r.patient_id:<12} {days[0]:>18} {days[1] if len(days) > 1 else '':>18} "
                     f"{f'{f.median:6.1f} [{f.lower:5.1f}, {f.upper:5.1f}]':>30} {_harms(f):>17} "
                     f"{x.median:14.1f} {_harms(x):>17}  {len(r.warnings)}")
    for pid, reason in refusals:
        lines.append(f"{pid:<12} REFUSED: {reason}")
    return "\n".join(lines)


def _recommend_with_progress(engine, patients, window, override, chunk: int = 64):
    """``engine.recommend_many`` in chunks of ``chunk`` patients, with a progress bar on a terminal.

    Each patient's random stream is seeded by the engine from its id, so chunking does not change
    a recommendation.
    """
    from tqdm import tqdm

    from ml.cli._common import show_progress

    results = []
    with tqdm(total=len(patients), desc="dosing", unit="patient", disable=not show_progress() or len(patients) < 2,
              file=sys.stderr) as bar:
        for lo in range(0, len(patients), chunk):
            part = patients[lo:lo + chunk]
            results.extend(engine.recommend_many(part, window, override, batch_size=chunk, check_batch=False))
            bar.update(len(part))
    return engine.check_batch(results)  # the population model's fit is judged on the whole batch, not per chunk


def _warning_summary(recs, shown: int = 3) -> list[str]:
    """The recommendations' warnings, one line per kind of warning with the number of patients.

    Warnings of one kind differ only in their numbers (a level, a probability); a kind seen once
    is printed as it is, with its patient id.
    """
    import re

    kinds: dict[str, list[tuple[str, str]]] = {}
    for r in recs:
        for w in r.warnings:
            kinds.setdefault(re.sub(r"[-+]?\d+(\.\d+)?(e[-+]?\d+)?", "#", w), []).append((r.patient_id, w))
    lines = []
    for items in kinds.values():
        pid, text = items[0]
        if len(items) == 1:
            lines.append(f"warning: {pid}: {text}")
            continue
        ids = sorted({p for p, _ in items})
        who = ", ".join(ids[:shown]) + (f" and {len(ids) - shown} more" if len(ids) > shown else "")
        same = all(t == text for _, t in items)
        lines.append(f"warning ({len(ids)} patients: {who}): {text}" if same else
                     f"warning ({len(ids)} patients: {who}; numbers differ, e.g. {pid}): {text}")
    return lines


def _set_harm_options(engine, floor_weight, ceiling_weight, floor_margin) -> None:
    """The objective (:mod:`ml.dosing._objective`) and the floor margin of ``atgwin dose``."""
    from dataclasses import replace

    from ml.dosing import HarmWeighted

    try:
        if floor_weight is not None or ceiling_weight is not None:
            engine.objective = HarmWeighted(floor=1.0 if floor_weight is None else floor_weight,
                                            ceiling=1.0 if ceiling_weight is None else ceiling_weight)
        engine.thresholds = replace(engine.thresholds, max_floor_increase=floor_margin)
    except ValueError as exc:
        raise click.ClickException(f"engine configuration: {exc}") from None


def _override(override_by, override_reason):
    """The ``--override-by`` / ``--override-reason`` pair as a :class:`WindowOverride` (None when not given)."""
    from ml.dosing import WindowOverride

    if (override_by is None) != (override_reason is None):
        raise click.ClickException("an override needs both --override-by and --override-reason")
    if override_by is None:
        return None
    try:
        return WindowOverride(by=override_by, reason=override_reason)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _window(window_ref, tracking_uri):
    """The window from a file or the registry (:func:`ml.tracking.load_window_source`)."""
    from ml.dosing import DosingRefused
    from ml.tracking import load_window_source

    try:
        return load_window_source(window_ref, tracking_uri)
    except DosingRefused as exc:
        raise click.ClickException(f"refused: {exc}") from None


def _register(window_ref, engine, override, draws, seed, alias, tracking_uri) -> None:
    """``--register``: log the engine with this window as the pyfunc model ``atg-dosing``, with an alias."""
    from ml.dosing import DosingRefused
    from ml.tracking import log_dosing_model

    try:
        info = log_dosing_model(window_ref, model=engine.model, caps=engine.caps, schedule=engine.schedule,
                                n_samples=draws, random_state=seed, override=override, tracking_uri=tracking_uri,
                                alias=alias)
    except DosingRefused as exc:
        raise click.ClickException(f"refused: {exc}") from None
    click.echo(f"registered atg-dosing version {info.registered_model_version} (models:/atg-dosing/"
               f"{info.registered_model_version}, alias {alias}) in {tracking_uri}; serve it with: "
               f"atgwin serve models:/atg-dosing@{alias}")


def _patients(patient_ref: Path, decision_time: float):
    """The patients of a JSON file (one or a list) or a cohort folder; per-patient input errors kept in place.

    Returns
    -------
    patients : list of PatientData or DosingRefused
    dropped : dict or None
        Doses and levels after the decision that a cohort batch ignored (None for a JSON file).
    """
    from ml.dosing import DosingRefused, PatientData, patients_from_cohort

    if patient_ref.is_dir():
        cohort = load_cohort_or_exit(str(patient_ref))
        try:
            return patients_from_cohort(cohort, decision_time)
        except DosingRefused as exc:
            raise click.ClickException(f"refused: {exc}") from None
    try:
        data = json.loads(patient_ref.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"{patient_ref}: not a readable patient JSON: {exc}") from None
    patients = []
    for item in data if isinstance(data, list) else [data]:
        try:
            patients.append(PatientData.from_dict(item))
        except DosingRefused as exc:
            patients.append(exc)
    return patients, None


def _split(patients, results):
    """Recommendations, and ``(patient_id, reason)`` of the refused."""
    from ml.dosing import DosingRefused, PatientData

    recs = [r for r in results if not isinstance(r, DosingRefused)]
    refusals = [(p.patient_id if isinstance(p, PatientData) else "?", str(r))
                for p, r in zip(patients, results) if isinstance(r, DosingRefused)]
    return recs, refusals


def _print_header(window, engine, override, recs, model_origin, dropped) -> None:
    """What was dosed into, under which model and objective (before the table)."""
    if window.simulated:
        click.echo("SIMULATED: the window was derived from a virtual cohort; not for clinical use.", err=True)
    overridden = f" (OVERRIDE by {override.by})" if recs and recs[0].override else ""
    click.echo(f"window [{fmt_bound(window.lower)}, {fmt_bound(window.upper)}) {window.unit}, target "
               f"{fmt_bound(window.target)}, status {window.status}{overridden}")
    click.echo(f"population PK model: {engine.model.name} (digest {engine.model.digest[:12]}), {model_origin}")
    click.echo(f"objective: {engine.objective.describe()}")
    if dropped is not None and (dropped["doses"] or dropped["levels"]):
        click.echo(f"batch: ignored {dropped['doses']} doses and {dropped['levels']} levels after the decision "
                   f"(day {engine.schedule.days[0]} at {engine.schedule.start_hour:g} h)")


def _print_warnings(recs, out) -> None:
    """The warnings (one line per kind) and the caveats, on stderr."""
    summary = _warning_summary(recs)
    for line in summary:
        click.echo(line, err=True)
    if out is None and len(summary) < sum(len(r.warnings) for r in recs):
        click.echo("(every warning of every patient is in the recommendations: add --out FILE.json)", err=True)
    for c in recs[0].caveats if recs else ():
        click.echo(f"caveat: {c}", err=True)


def _write(out, recs, refusals) -> None:
    if out is None:
        return
    payload = {"recommendations": [r.to_dict() for r in recs],
               "refusals": [{"patient_id": pid, "reason": reason} for pid, reason in refusals]}
    write_atomic(out, json.dumps(payload, indent=2, allow_nan=False) + "\n", mkdir=False)
    click.echo(f"wrote {len(recs)} recommendation(s), {len(refusals)} refusal(s) to {out}")


def _check_request(register, patient_ref, floor_weight, ceiling_weight) -> None:
    if not register and patient_ref is None:
        raise click.ClickException("give --patient (a JSON file or a cohort folder), or --register")
    if register and (floor_weight is not None or ceiling_weight is not None):
        raise click.ClickException("--register logs the engine with the default objective (most probable in "
                                   "window); the served model does not take --floor-weight / --ceiling-weight yet")


@click.command("dose")
@click.option("--window", "window_ref", required=True,
              help="ExposureWindow JSON file or models:/NAME@validated (MLflow registry).")
@click.option("--patient", "patient_ref", type=click.Path(exists=True, path_type=Path),
              help="One patient (JSON) or a cohort folder (batch: only levels drawn before the day -3 dose).")
@click.option("--out", type=click.Path(path_type=Path), help="Write the recommendations (JSON).")
@click.option("--override-by", default=None, help="Who authorises dosing into a window that is not validated.")
@click.option("--override-reason", default=None, help="Why (recorded in every recommendation).")
@click.option("--model", "model_path", type=click.Path(exists=True), default=None,
              help="Population PK model file (TOML or JSON). Default: the model that defined the window's exposure "
                   "(registered with it, or named by the window file), else the shipped assumption set. A model "
                   "other than the window's is a warning in every recommendation.")
@click.option("--cap-mg-per-kg", default=5.0, show_default=True, help="Daily cap, mg/kg.")
@click.option("--cap-mg", default=500.0, show_default=True, help="Daily cap, mg.")
@click.option("--min-mg", default=0.0, show_default=True, help="Daily minimum, mg.")
@click.option("--course-cap-mg-per-kg", default=None, type=float, help="Cap on the whole course, mg/kg.")
@click.option("--vial-mg", default=25.0, show_default=True, help="Vial size, mg.")
@click.option("--start-hour", default=8.0, show_default=True, help="Clock hour of the day -3/-2 infusions.")
@click.option("--infusion-hours", default=4.0, show_default=True, help="Duration of each, hours.")
@click.option("--draws", default=256, show_default=True, help="Posterior draws per patient (power of 2).")
@click.option("--seed", default=0, show_default=True, help="Random seed.")
@click.option("--register", is_flag=True,
              help="Log the engine with this window (a file or models:/...) as the MLflow pyfunc model 'atg-dosing', "
                   "register it and point --alias at it; serve it with 'atgwin serve'.")
@click.option("--alias", default="current", show_default=True,
              help="With --register: the alias of the new 'atg-dosing' version.")
@click.option("--floor-weight", type=float, default=None,
              help="Choose by expected harm: cost of ending below the floor (e.g. 2 = GVHD costs twice CMV). "
                   "With --ceiling-weight; either one switches from 'most probable in window' to the harm-"
                   "weighted objective (the other defaults to 1).")
@click.option("--ceiling-weight", type=float, default=None,
              help="Choose by expected harm: cost of ending above the ceiling (see --floor-weight).")
@click.option("--floor-margin", type=float, default=0.10, show_default=True,
              help="Warn when a recommendation raises P(below floor) over the fixed regimen's by more than this.")
@click.option("--on-misfit", type=click.Choice(["refuse", "warn"]), default="refuse", show_default=True,
              help="When the levels of a batch (20 patients or more) show that the population model does not describe "
                   "them (mean CL or V1 deviation >= 0.25 SD, |t| >= 4): refuse every patient of the batch (they get "
                   "the fixed regimen), or dose them with a warning. In the closed-loop benchmark (docs/benchmarks.md) "
                   "dosing such a batch put 81 % below the true floor against 70 % for fixed dosing.")
def dose(window_ref, patient_ref, out, override_by, override_reason, model_path, cap_mg_per_kg, cap_mg, min_mg,
         course_cap_mg_per_kg, vial_mg, start_hour, infusion_hours, draws, seed, register,
         floor_weight=None, ceiling_weight=None, floor_margin=0.10, alias="current", on_misfit="refuse"):
    """Recommend day -3 and day -2 ATG doses (whole vials, within caps) that maximise the
    probability that total active-ATG AUC lands in the window (or, with --floor-weight /
    --ceiling-weight, minimise the weighted expected harm). Each patient's line gives
    P(below floor) / P(in window) / P(above ceiling) for the recommended and the fixed regimen
    (2.5 mg/kg/day). Only a two-sided window (finding 'window') is dosed into."""
    from ml.cli._common import prepare_out
    from ml.dosing import DosingRefused
    from ml.tracking import resolve_tracking_uri

    prepare_out(out)
    override = _override(override_by, override_reason)
    _check_request(register, patient_ref, floor_weight, ceiling_weight)
    tracking_uri = resolve_tracking_uri()
    window = _window(window_ref, tracking_uri)
    model, model_origin = _model(model_path, window)
    engine = _engine(model, cap_mg_per_kg, cap_mg, min_mg, course_cap_mg_per_kg, vial_mg, start_hour,
                     infusion_hours, draws, seed, on_misfit)
    _set_harm_options(engine, floor_weight, ceiling_weight, floor_margin)
    if register:
        _register(window_ref, engine, override, draws, seed, alias, tracking_uri)
        if patient_ref is None:
            return
    patients, dropped = _patients(patient_ref, engine.schedule.decision_time)
    try:
        results = _recommend_with_progress(engine, patients, window, override)
    except DosingRefused as exc:
        raise click.ClickException(f"refused: {exc}") from None
    recs, refusals = _split(patients, results)
    _print_header(window, engine, override, recs, model_origin, dropped)
    click.echo(_table(recs, refusals))
    _print_warnings(recs, out)
    _write(out, recs, refusals)
    if refusals:
        raise SystemExit(1 if not recs else 2)
