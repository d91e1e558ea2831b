"""Per-patient exposure (AUC of active ATG) of a cohort."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.cohort._model import Cohort

from ._likelihood import LevelLikelihood
from ._nca import nca_auc
from ._params import PopPKModel
from ._posterior import fit_map
from ._regimen import HOURS_PER_DAY, Infusions
from ._simulate import model_exposure

EXPOSURE_COLUMNS = ("auc_pre", "auc_post", "auc_total")
#: How :func:`exposure_table` turns levels into AUCs.
EXPOSURE_METHODS = ("nca", "map")
_TOTAL = ("total active-ATG AUC = pre-transplant AUC (first dose to day 0) + post-transplant AUC "
          "(day 0 to infinity, terminal-phase extrapolation), ")


def exposure_definition(method: str = "nca", model_name: str | None = None) -> str:
    """Plain-text definition of ``auc_total`` as computed by ``exposure_table(method=...)``.

    Recorded in the exported window so that a dosing tool knows which AUC the bounds refer to.
    """
    if method == "nca":
        return _TOTAL + "by NCA of measured levels"
    if method == "map":
        return _TOTAL + ("of the individual curve fitted to the measured levels (MAP Bayesian, population "
                         f"model {model_name or 'default'})")
    raise ValueError(f"exposure method must be one of {EXPOSURE_METHODS}, got {method!r}")


def exposure_table(cohort: Cohort, t_split: float = 0.0, *, method: str = "nca",
                   model: PopPKModel | None = None) -> pd.DataFrame:
    """AUCs of every patient from the measured levels.

    Parameters
    ----------
    cohort : Cohort
        A validated cohort. Without level data, ``patients.auc_total`` is used as given
        (``auc_pre``/``auc_post`` are then NaN).
    t_split : float
        Day separating pre- from post-transplant exposure (0, the day of transplant).
    method : {"nca", "map"}
        ``"nca"``: model-free non-compartmental analysis (:func:`nca_auc`). ``"map"``:
        model-based (MAP Bayesian) estimation: each patient's random effects are the maximum a
        posteriori given all their levels under the population model ``model`` (M3 for levels
        below the LLOQ), and the AUCs are those of the fitted individual curve. MAP averages the
        residual error over all samples instead of trusting each one, which NCA cannot, but it
        is only as good as the population model: fit one to the cohort first
        (``atgwin poppk fit``) when the default assumption set may not hold.
    model : PopPKModel, optional
        Population model for ``method="map"`` (default :meth:`PopPKModel.default`, the
        simulator's assumption set).

    Returns
    -------
    pandas.DataFrame
        One row per patient in ``cohort.patients`` order: ``patient_id``, ``auc_pre``,
        ``auc_post``, ``auc_total`` (in ``cohort.meta.exposure_unit``), ``lambda_z`` (1/day),
        ``method`` (``"nca"``, ``"map"`` or ``"given"``). ``attrs["unit"]`` holds the unit. With NCA,
        a patient whose terminal slope cannot be estimated (fewer than 3 falling quantifiable
        levels after the last dose) gets NaN AUCs; with MAP, a patient without a dose or a
        quantified level, or whose fit did not converge, does. Callers must report and exclude such rows, never impute them.
    """
    if method not in EXPOSURE_METHODS:
        raise ValueError(f"exposure method must be one of {EXPOSURE_METHODS}, got {method!r}")
    ids = cohort.patients["patient_id"].astype(str).to_numpy()
    if not cohort.has_levels:
        given = cohort.patients.get("auc_total")
        table = pd.DataFrame({
            "patient_id": ids, "auc_pre": np.nan, "auc_post": np.nan,
            "auc_total": np.nan if given is None else given.to_numpy(float),
            "lambda_z": np.nan, "method": "given",
        })
    elif method == "map":
        table = _map_table(cohort, ids, t_split, PopPKModel.default() if model is None else model)
    else:
        table = _nca_table(cohort, ids, t_split)
    table.attrs["unit"] = cohort.meta.exposure_unit
    table.attrs["simulated"] = cohort.meta.simulated
    return table


def _nca_table(cohort: Cohort, ids: np.ndarray, t_split: float) -> pd.DataFrame:
    doses = cohort.doses
    start = doses["day"].to_numpy(float) + doses["start_hour"].fillna(8.0).to_numpy(float) / HOURS_PER_DAY
    end = start + doses["infusion_hours"].to_numpy(float) / HOURS_PER_DAY
    dose_pid = doses["patient_id"].astype(str)
    first = pd.Series(start).groupby(dose_pid.to_numpy()).min()
    last_end = pd.Series(end).groupby(dose_pid.to_numpy()).max()

    levels = cohort.levels
    groups = levels.groupby(levels["patient_id"].astype(str), sort=False).indices
    t_all = levels["day"].to_numpy(float)
    c_all = levels["concentration"].to_numpy(float)
    b_all = levels["bloq"].to_numpy(int)
    rows = []
    for pid in ids:
        idx = groups.get(pid)
        if idx is None or pid not in first.index:
            rows.append((np.nan, np.nan, np.nan))
            continue
        res = nca_auc(t_all[idx], c_all[idx], b_all[idx], first[pid], last_end[pid], t_split)
        rows.append((res.auc_pre, res.auc_post, res.lambda_z))
    arr = np.array(rows, dtype=float).reshape(-1, 3)
    return pd.DataFrame({
        "patient_id": ids, "auc_pre": arr[:, 0], "auc_post": arr[:, 1],
        "auc_total": arr[:, 0] + arr[:, 1], "lambda_z": arr[:, 2], "method": "nca",
    })


def _map_table(cohort: Cohort, ids: np.ndarray, t_split: float, model: PopPKModel) -> pd.DataFrame:
    """MAP AUCs; NaN for a patient without a dose, without a quantified level, or not converged
    (an AUC from the population prior alone is not a measurement)."""
    dosed = set(cohort.doses["patient_id"].astype(str))
    lv = cohort.levels
    measured = set(lv.loc[lv["bloq"].to_numpy(int) == 0, "patient_id"].astype(str))
    fitted = np.array([pid in dosed and pid in measured for pid in ids], dtype=bool)
    out = np.full((ids.size, 4), np.nan)
    if fitted.any():
        lik = LevelLikelihood.from_cohort(model, cohort, ids[fitted])
        fit = fit_map(lik)
        params = model.individual(lik.weight, lik.alc, lik.eta(fit.z))
        infusions = Infusions(patient=lik.inf_patient, start=lik.inf_start, duration=lik.inf_duration,
                              amount=lik.inf_amount, n_patients=lik.n_patients)
        auc = model_exposure(params, infusions, t_split=t_split)
        values = np.column_stack([auc.auc_pre, auc.auc_post, auc.auc_total, _terminal_rate(params)])
        out[fitted] = np.where(fit.converged[:, None], values, np.nan)
    return pd.DataFrame({"patient_id": ids, "auc_pre": out[:, 0], "auc_post": out[:, 1], "auc_total": out[:, 2],
                         "lambda_z": out[:, 3], "method": "map"})


def _terminal_rate(p) -> np.ndarray:
    """Slow disposition rate constant of the linear(ised, low-concentration) model, 1/day."""
    k10 = (p.CL + p.Vmax / p.Km) / p.V1
    k12, k21 = p.Q / p.V1, p.Q / p.V2
    s = k10 + k12 + k21
    return 0.5 * (s - np.sqrt(s * s - 4.0 * k10 * k21))
