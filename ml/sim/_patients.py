"""Covariates of virtual patients (the ``patients`` table of the cohort format)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def _truncated_normal(rng: np.random.Generator, loc, scale, low, high, n) -> np.ndarray:
    a, b = (low - loc) / scale, (high - loc) / scale
    return stats.truncnorm.ppf(rng.uniform(size=n), a, b, loc=loc, scale=scale)


def _categorical(rng: np.random.Generator, table: dict, n: int) -> np.ndarray:
    labels = np.array(list(table.keys()), dtype=object)
    p = np.array(list(table.values()), dtype=float)
    return labels[rng.choice(labels.size, size=n, p=p / p.sum())]


def sample_patients(covariates: dict, donor_type: str, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Draw ``n`` patients.

    Parameters
    ----------
    covariates : dict
        The ``[covariates]`` section of the simulator configuration.
    donor_type : str
        ``URD`` or ``haplo`` (chooses the HLA-mismatch distribution).
    n : int
    rng : numpy.random.Generator

    Returns
    -------
    pandas.DataFrame
        Contract columns of ``patients.csv`` (ids ``V00001``...), weight in kg, age in years,
        ALC in x10^9/L.
    """
    c = covariates
    age = _truncated_normal(rng, c["age_median"], c["age_sd"], c["age_min"], c["age_max"], n)
    weight = _truncated_normal(rng, c["weight_mean"], c["weight_sd"], c["weight_min"], c["weight_max"], n)
    sex = np.where(rng.uniform(size=n) < c["male"], "M", "F")
    diagnosis = _categorical(rng, c["diagnosis"], n)
    status = np.where(rng.uniform(size=n) < c["cr2"], "CR2", "CR1").astype(object)
    status[diagnosis == "MDS"] = "other"
    hla_table = c["hla_mismatches"][donor_type]
    hla = _categorical(rng, hla_table, n).astype(int)
    cmv_r = np.where(rng.uniform(size=n) < c["cmv_recipient_pos"], "pos", "neg")
    cmv_d = np.where(rng.uniform(size=n) < c["cmv_donor_pos"], "pos", "neg")
    alc = c["alc_median"] * np.exp(rng.normal(0.0, c["alc_log_sd"], size=n))
    return pd.DataFrame({
        "patient_id": [f"V{i:05d}" for i in range(1, n + 1)],
        "donor_type": donor_type,
        "age_years": np.round(age, 1),
        "sex": sex,
        "weight_kg": np.round(weight, 1),
        "diagnosis": diagnosis,
        "disease_status": status,
        "conditioning": c["conditioning"],
        "hla_mismatches": hla,
        "cmv_recipient": cmv_r,
        "cmv_donor": cmv_d,
        "alc_pre_atg": np.round(alc, 3),
    })
