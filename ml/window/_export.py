"""Turn a fitted ``WindowSearch`` into an ``ExposureWindow`` artefact."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np

from ml._status import WindowStatus
from ml.pk import exposure_definition
from ml.window._artefact import BoundEvidence, Effect, ExposureWindow, Incidence, Population, SideEffect

__all__ = ["AUC_TOTAL_DEFINITION", "benefit_harm_window", "code_version", "exposure_window"]

AUC_TOTAL_DEFINITION = exposure_definition("nca")


def code_version() -> str:
    """Package version and, when run from a git checkout, the commit (``atg-window 0.1.0+abc1234``)."""
    import ml

    version = f"atg-window {ml.__version__}"
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(ml.__file__).resolve().parent, check=False, timeout=5)
        commit = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+{commit}" if commit else version


def _bound(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _ci(bound: float, ci: tuple[float, float]) -> tuple[float | None, float | None] | None:
    if not math.isfinite(bound) or any(np.isnan(ci)):
        return None
    return (_bound(ci[0]), _bound(ci[1]))


def exposure_window(search, *, unit: str, endpoint: str, horizon_days: float | None, population: Population,
                    dataset_digest: str, simulated: bool, exposure: str = "auc_total",
                    exposure_definition: str = AUC_TOTAL_DEFINITION, alpha: float = 0.05,
                    incidences: tuple[Incidence, ...] = (), mlflow_run_id: str | None = None,
                    version: str | None = None, pk_model: dict | None = None) -> ExposureWindow:
    """Build the artefact of a fitted :class:`WindowSearch` (one composite endpoint).

    The status is ``"candidate"`` when the adjusted p-value is below ``alpha`` (or was not
    computed), else ``"no-window"``; only a candidate can later be promoted to ``validated``.

    Parameters
    ----------
    search : WindowSearch
        Fitted.
    unit : str
        Exposure unit of the data the search saw (e.g. ``"UE*day/mL"``).
    endpoint : str
    horizon_days : float or None
    population : Population
    dataset_digest : str
    simulated : bool
    exposure, exposure_definition : str
    alpha : float
        Significance level deciding between ``candidate`` and ``no-window``.
    incidences : tuple of Incidence
    mlflow_run_id : str, optional
    version : str, optional
        Code version (default :func:`code_version`).
    pk_model : dict, optional
        ``name``, ``digest``, ``source`` of the population PK model behind the exposure.

    Returns
    -------
    ExposureWindow
    """
    p = float(search.p_value_)
    has_p = math.isfinite(p)
    status = WindowStatus.CANDIDATE if (not has_p or p < alpha) else WindowStatus.NO_WINDOW
    eff = search.effect_
    effect = None
    if eff and all(math.isfinite(eff.get(k, float("nan"))) and eff.get(k, 0) > 0 for k in ("hr", "ci_low", "ci_high")):
        effect = Effect(hr=eff["hr"], ci_low=eff["ci_low"], ci_high=eff["ci_high"], method=eff["method"],
                        p_value=eff.get("p_value"), n_inside=eff.get("n_inside"), n_outside=eff.get("n_outside"),
                        events_inside=eff.get("events_inside"), events_outside=eff.get("events_outside"))
    kind = "single-cut" if search.single_cut else "two-cut"
    return ExposureWindow(
        exposure=exposure,
        exposure_definition=exposure_definition,
        unit=unit,
        population=population,
        endpoint=endpoint,
        horizon_days=None if horizon_days is None else float(horizon_days),
        lower=_bound(search.lower_),
        upper=_bound(search.upper_),
        target=float(search.target_),
        lower_ci=_ci(search.lower_, search.lower_ci_),
        upper_ci=_ci(search.upper_, search.upper_ci_),
        ci_level=float(search.ci_level),
        ci_method=(f"bootstrap {search.ci_method} interval ({search.n_bootstraps} resamples, whole search "
                   "repeated in each)" if search.n_bootstraps else "none (no bootstrap)"),
        p_value=p if has_p else None,
        p_value_method=(f"permutation of null-model scores, maximum over the whole {kind} search "
                        f"({search.n_permutations} permutations)" if has_p else "none (no permutations)"),
        statistic=float(search.statistic_),
        effect=effect,
        incidences=tuple(incidences),
        dataset_digest=dataset_digest,
        simulated=bool(simulated),
        code_version=version or code_version(),
        status=status,
        mlflow_run_id=mlflow_run_id,
        pk_model=pk_model,
        search=_search_record(search, alpha=float(alpha), single_cut=bool(search.single_cut),
                              naive_p_value=float(search.naive_p_value_)),
    )


def _search_record(search, **extra) -> dict:
    """The search's settings for the artefact's ``search`` record (strategies as their repr)."""
    params = search.get_params(deep=False)
    seed = params["random_state"]
    return {
        "scores": repr(getattr(search, "scores_", None) or search.scores or "LogRankScores()"),
        "grid": repr(getattr(search, "grid_", None) or search.grid or "QuantileGrid()"),
        "estimate": str(search.estimate),
        "argmax_bounds": [_bound(v) for v in search.argmax_bounds_],
        "n_permutations": int(params["n_permutations"]),
        "n_bootstraps": int(params["n_bootstraps"]),
        "n_folds": int(params["n_folds"]),
        "random_state": seed if isinstance(seed, (int, type(None))) else repr(seed),
        "n_excluded_missing_exposure": int(search.n_excluded_),
        **extra,
    }


def population_of(cohort, n: int, events: int) -> Population:
    """The :class:`Population` a window was derived on: the cohort's donor source, its
    conditioning (``"mixed"`` unless every patient has the same), and the patients and events
    the search used."""
    cond = sorted(set(cohort.patients["conditioning"].astype(str))) if "conditioning" in cohort.patients else []
    return Population(donor_source=cohort.meta.donor_source, conditioning=cond[0] if len(cond) == 1 else "mixed",
                      n=n, events=events)


def _side_effect(e: dict) -> SideEffect | None:
    if not e or not all(math.isfinite(e.get(k, float("nan"))) and e.get(k, 0) > 0 for k in ("hr", "ci_low", "ci_high")):
        return None
    return SideEffect(hr=e["hr"], ci_low=e["ci_low"], ci_high=e["ci_high"], method=e["method"],
                      p_value=_bound(e["p_value"]) if e.get("p_value") is not None else None,
                      n_harmed=e.get("n_harmed"), n_reference=e.get("n_reference"),
                      events_harmed=e.get("events_harmed"), events_reference=e.get("events_reference"))


def _p_text(p: float) -> str:
    return f"{p:.3g}" if p >= 1e-3 else f"{p:.1e}"


def _side_reason(side, finding: str, alpha: float, unit: str) -> str:
    what = "under-exposure harm" if side.side == "floor" else "over-exposure harm"
    eps = "|".join(side.endpoints)
    p = side.best_p_value
    if finding == "overlap":
        return (f"{what} on {eps} is evidenced (adjusted p = {_p_text(p)}), but its best cut crosses the other "
                "side's: no exposure avoids both harms")
    if side.evidenced and math.isfinite(p):
        return f"{what} on {eps}: adjusted p = {_p_text(p)} < alpha {alpha:g}"
    if side.evidenced:
        return f"{what} on {eps}: not tested (no permutations)"
    return (f"no evidence of {what} on {eps} at alpha {alpha:g} (adjusted p = {_p_text(p)}): "
            f"this bound stays open")


def _evidence(side, finding: str, alpha: float, unit: str) -> BoundEvidence:
    value = _bound(side.bound)
    ci = None if not all(math.isfinite(v) for v in side.ci) else (float(side.ci[0]), float(side.ci[1]))
    return BoundEvidence(side=side.side, endpoints=side.endpoints, horizon_days=side.horizon_days,
                         statistic=float(side.statistic) if math.isfinite(side.statistic) else 0.0,
                         p_value=_bound(side.best_p_value), p_value_at_bound=_bound(side.p_value),
                         evidenced=bool(side.evidenced), events=int(side.events), value=value, ci=ci,
                         effect=_side_effect(side.effect), covariates=side.covariates,
                         reason=_side_reason(side, finding, alpha, unit))


def benefit_harm_window(search, *, unit: str, population: Population, dataset_digest: str, simulated: bool,
                        exposure: str = "auc_total", exposure_definition: str = AUC_TOTAL_DEFINITION,
                        incidences: tuple[Incidence, ...] = (), mlflow_run_id: str | None = None,
                        version: str | None = None, pk_model: dict | None = None) -> ExposureWindow:
    """Build the artefact of a fitted :class:`BenefitHarmSearch`.

    The status is ``candidate`` when at least one side is evidenced (``window``, ``floor-only``,
    ``ceiling-only``; only a ``window`` can later be validated), else ``no-window``
    (``overlap``: both harms evidenced but no exposure avoids both; ``no-window``: no evidence).

    Parameters
    ----------
    search : BenefitHarmSearch
        Fitted.
    unit : str
        Exposure unit of the data the search saw (e.g. ``"UE*day/mL"``).
    population : Population
    dataset_digest : str
    simulated : bool
    exposure, exposure_definition : str
    incidences : tuple of Incidence
    mlflow_run_id : str, optional
    version : str, optional
        Code version (default :func:`code_version`).
    pk_model : dict, optional
        ``name``, ``digest``, ``source`` of the population PK model behind the exposure.

    Returns
    -------
    ExposureWindow
    """
    finding = search.finding_
    status = WindowStatus.CANDIDATE if finding in ("window", "floor-only", "ceiling-only") else WindowStatus.NO_WINDOW
    floor, ceiling = search.floor_, search.ceiling_
    p = float(search.p_value_)
    has_p = math.isfinite(p)
    if finding in ("overlap",):
        lower = upper = None
    else:
        lower, upper = _bound(search.lower_), _bound(search.upper_)
    target = float(search.target_)
    if lower is not None and upper is not None and not lower <= target < upper:
        target = (lower + upper) / 2
    horizons = {floor.horizon_days, ceiling.horizon_days}
    return ExposureWindow(
        exposure=exposure,
        exposure_definition=exposure_definition,
        unit=unit,
        population=population,
        endpoint=f"floor={'+'.join(floor.endpoints)};ceiling={'+'.join(ceiling.endpoints)}",
        horizon_days=horizons.pop() if len(horizons) == 1 else None,
        lower=lower,
        upper=upper,
        target=target,
        lower_ci=None if lower is None else _ci(search.lower_, search.lower_ci_),
        upper_ci=None if upper is None else _ci(search.upper_, search.upper_ci_),
        ci_level=float(search.ci_level),
        ci_method=(f"bootstrap {search.ci_method} interval ({search.n_bootstraps} resamples of patients, the whole "
                   "joint search repeated in each)" if search.n_bootstraps else "none (no bootstrap)"),
        p_value=p if has_p else None,
        p_value_method=(f"permutation of exposure against all outcomes at once, maximum of the joint floor + "
                        f"ceiling statistic over the whole search ({search.n_permutations} permutations); "
                        "each side closed-tested at alpha" if has_p else "none (no permutations)"),
        statistic=float(search.statistic_),
        effect=None,
        incidences=tuple(incidences),
        dataset_digest=dataset_digest,
        simulated=bool(simulated),
        code_version=version or code_version(),
        status=status,
        mlflow_run_id=mlflow_run_id,
        finding=finding,
        search_kind="benefit-harm",
        floor=_evidence(floor, finding, float(search.alpha), unit),
        ceiling=_evidence(ceiling, finding, float(search.alpha), unit),
        pk_model=pk_model,
        search=_search_record(search, alpha=float(search.alpha), ci_method=str(search.ci_method)),
    )
