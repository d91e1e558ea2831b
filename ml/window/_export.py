"""Turn a fitted ``WindowSearch`` into an ``ExposureWindow`` artefact."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np

from ml.pk import exposure_definition
from ml.window._artefact import Effect, ExposureWindow, Incidence, Population

__all__ = ["AUC_TOTAL_DEFINITION", "code_version", "exposure_window"]

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
                    version: str | None = None) -> ExposureWindow:
    """Build the artefact of a fitted :class:`WindowSearch`.

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

    Returns
    -------
    ExposureWindow
    """
    p = float(search.p_value_)
    has_p = math.isfinite(p)
    status = "candidate" if (not has_p or p < alpha) else "no-window"
    eff = search.effect_
    effect = None
    if eff and all(math.isfinite(eff.get(k, float("nan"))) and eff.get(k, 0) > 0 for k in ("hr", "ci_low", "ci_high")):
        effect = Effect(hr=eff["hr"], ci_low=eff["ci_low"], ci_high=eff["ci_high"], method=eff["method"],
                        p_value=eff.get("p_value"), n_inside=eff.get("n_inside"), n_outside=eff.get("n_outside"),
                        events_inside=eff.get("events_inside"), events_outside=eff.get("events_outside"))
    kind = "single-cut" if search.single_cut else "two-cut"
    params = search.get_params(deep=False)
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
        search={
            "scores": repr(search.scores) if search.scores is not None else "LogRankScores()",
            "grid": repr(search.grid) if search.grid is not None else "QuantileGrid()",
            "single_cut": bool(search.single_cut),
            "estimate": str(search.estimate),
            "argmax_bounds": [_bound(v) for v in search.argmax_bounds_],
            "n_permutations": int(params["n_permutations"]),
            "n_bootstraps": int(params["n_bootstraps"]),
            "n_folds": int(params["n_folds"]),
            "random_state": params["random_state"] if isinstance(params["random_state"], (int, type(None))) else repr(params["random_state"]),
            "alpha": float(alpha),
            "naive_p_value": float(search.naive_p_value_),
            "n_excluded_missing_exposure": int(search.n_excluded_),
        },
    )


def population_of(cohort, n: int, events: int) -> Population:
    """The :class:`Population` a window was derived on: the cohort's donor source, its
    conditioning (``"mixed"`` unless every patient has the same), and the patients and events
    the search used."""
    cond = sorted(set(cohort.patients["conditioning"].astype(str))) if "conditioning" in cohort.patients else []
    return Population(donor_source=cohort.meta.donor_source, conditioning=cond[0] if len(cond) == 1 else "mixed",
                      n=n, events=events)
