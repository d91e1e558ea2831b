"""Per-patient exposure (AUC of active ATG) of a cohort."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.cohort._model import Cohort

from ._nca import nca_auc
from ._regimen import HOURS_PER_DAY

EXPOSURE_COLUMNS = ("auc_pre", "auc_post", "auc_total")


def exposure_table(cohort: Cohort, t_split: float = 0.0) -> pd.DataFrame:
    """AUCs of every patient, by NCA of the measured levels.

    Parameters
    ----------
    cohort : Cohort
        A validated cohort. Without level data, ``patients.auc_total`` is used as given
        (``auc_pre``/``auc_post`` are then NaN).
    t_split : float
        Day separating pre- from post-transplant exposure (0, the day of transplant).

    Returns
    -------
    pandas.DataFrame
        One row per patient in ``cohort.patients`` order: ``patient_id``, ``auc_pre``,
        ``auc_post``, ``auc_total`` (in ``cohort.meta.exposure_unit``), ``lambda_z`` (1/day),
        ``method`` (``"nca"`` or ``"given"``). ``attrs["unit"]`` holds the unit. A patient whose
        terminal slope cannot be estimated (fewer than 3 falling quantifiable levels after the
        last dose) gets NaN AUCs; callers must report and exclude such rows, never impute them.
    """
    ids = cohort.patients["patient_id"].astype(str).to_numpy()
    if not cohort.has_levels:
        given = cohort.patients.get("auc_total")
        table = pd.DataFrame({
            "patient_id": ids, "auc_pre": np.nan, "auc_post": np.nan,
            "auc_total": np.nan if given is None else given.to_numpy(float),
            "lambda_z": np.nan, "method": "given",
        })
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
