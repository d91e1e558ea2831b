"""The estimation data set: a cohort's doses and levels as padded per-patient arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.pk import Infusions, infusions_from_doses

#: Floor of the lymphocyte count used in the log-covariate model, x10^9/L (a count of 0 would
#: give log 0; at this floor the saturable path is already negligible).
ALC_FLOOR = 0.01


@dataclass(frozen=True)
class PopPKData:
    """Doses, levels and covariates of the patients that enter a population PK fit.

    Levels are stored as ``(n, m)`` arrays, one row per patient, padded to the largest number
    of samples ``m``; padding cells are neither observed nor censored.

    Attributes
    ----------
    patient_id : numpy.ndarray of str
        Patients in the fit, ``(n,)``, in cohort order.
    weight_kg : numpy.ndarray
        Body weight, kg.
    alc : numpy.ndarray
        Lymphocyte count before ATG, x10^9/L (missing values replaced by the reference
        value, counts below :data:`ALC_FLOOR` raised to it; see ``notes``).
    infusions : ml.pk.Infusions
        Infusions of active ATG, mg (total dose x ``active_fraction``).
    times : numpy.ndarray
        Sampling times, days from transplant, ``(n, m)``.
    conc : numpy.ndarray
        Quantified concentrations (concentration unit), NaN elsewhere, ``(n, m)``.
    observed : numpy.ndarray of bool
        Cells holding a quantified level.
    bloq : numpy.ndarray of bool
        Cells holding a sample below the limit of quantification (censored, M3).
    lloq : float
        Lower limit of quantification, concentration unit.
    active_fraction : float
        Active fraction of the total ATG dose used to build ``infusions``.
    concentration_unit : str
        Unit of ``conc`` (e.g. ``"UE/mL"``).
    name, digest : str
        Cohort name and content digest (provenance of a fitted model).
    excluded : tuple of (str, str)
        Patients left out and why (no levels, no doses, no weight).
    notes : tuple of str
        Data handling that changed a value (missing or zero ALC).
    """

    patient_id: np.ndarray
    weight_kg: np.ndarray
    alc: np.ndarray
    infusions: Infusions
    times: np.ndarray
    conc: np.ndarray
    observed: np.ndarray
    bloq: np.ndarray
    lloq: float
    active_fraction: float
    concentration_unit: str = "UE/mL"
    name: str = ""
    digest: str = ""
    excluded: tuple = ()
    notes: tuple = ()

    @property
    def n(self) -> int:
        """Number of patients in the fit."""
        return self.patient_id.size

    @property
    def n_observed(self) -> int:
        """Number of quantified levels."""
        return int(self.observed.sum())

    @property
    def n_bloq(self) -> int:
        """Number of levels below the limit of quantification."""
        return int(self.bloq.sum())

    @classmethod
    def from_cohort(cls, cohort, *, active_fraction: float, lloq: float,
                    alc_ref: float = 0.3) -> "PopPKData":
        """Build the data set from a :class:`ml.cohort.Cohort` (or any object with ``patients``,
        ``doses``, ``levels`` tables and an optional ``meta``).

        Parameters
        ----------
        cohort : ml.cohort.Cohort
            A validated cohort with doses and levels.
        active_fraction : float
            Active fraction of the total Thymoglobulin dose.
        lloq : float
            Lower limit of quantification of the assay, concentration unit.
        alc_ref : float
            Reference lymphocyte count (x10^9/L), imputed where the count is missing.
        """
        meta = getattr(cohort, "meta", None)
        if cohort.doses is None or cohort.levels is None:
            raise ValueError("a population PK fit needs atg_doses and atg_levels; "
                             "this cohort only carries auc_total")
        return cls.from_tables(
            cohort.patients, cohort.doses, cohort.levels, active_fraction=active_fraction,
            lloq=lloq, alc_ref=alc_ref,
            concentration_unit=getattr(meta, "concentration_unit", "UE/mL"),
            name=getattr(meta, "name", ""), digest=str(getattr(cohort, "digest", "")))

    @classmethod
    def from_tables(cls, patients: pd.DataFrame, doses: pd.DataFrame, levels: pd.DataFrame, *,
                    active_fraction: float, lloq: float, alc_ref: float = 0.3,
                    concentration_unit: str = "UE/mL", name: str = "",
                    digest: str = "") -> "PopPKData":
        """Build the data set from the ``patients``, ``atg_doses`` and ``atg_levels`` tables
        (docs/cohort-format.md). See :meth:`from_cohort`."""
        if not lloq >= 0:
            raise ValueError(f"lloq must be >= 0, got {lloq}")
        ids = patients["patient_id"].astype(str).to_numpy()
        weight = pd.to_numeric(patients["weight_kg"], errors="coerce").to_numpy(float)
        alc = pd.to_numeric(patients.get("alc_pre_atg", pd.Series(np.nan, index=patients.index)),
                            errors="coerce").to_numpy(float)

        lv = levels.assign(patient_id=levels["patient_id"].astype(str))
        conc = pd.to_numeric(lv["concentration"], errors="coerce").to_numpy(float)
        flag = (lv["bloq"].fillna(0).to_numpy(float) > 0) if "bloq" in lv else np.zeros(len(lv), bool)
        flag = flag | ~np.isfinite(conc) & ("bloq" not in lv)
        usable = flag | np.isfinite(conc)
        lv = lv.assign(_conc=np.where(flag, np.nan, conc), _bloq=flag)[usable]
        dose_ids = set(doses["patient_id"].astype(str))
        level_ids = set(lv["patient_id"])

        excluded, keep = [], np.zeros(ids.size, bool)
        for i, pid in enumerate(ids):
            if pid not in level_ids:
                excluded.append((pid, "no ATG levels"))
            elif pid not in dose_ids:
                excluded.append((pid, "no ATG doses"))
            elif not (np.isfinite(weight[i]) and weight[i] > 0):
                excluded.append((pid, "no body weight"))
            else:
                keep[i] = True
        if not keep.any():
            raise ValueError("no patient has doses, levels and a body weight: nothing to fit")
        ids, weight, alc = ids[keep], weight[keep], alc[keep]

        notes = []
        missing = ~np.isfinite(alc)
        if missing.any():
            notes.append(f"alc_pre_atg missing for {int(missing.sum())} patients: "
                         f"reference value {alc_ref} used")
            alc = np.where(missing, alc_ref, alc)
        low = alc < ALC_FLOOR
        if low.any():
            notes.append(f"alc_pre_atg below {ALC_FLOOR} x10^9/L for {int(low.sum())} patients: "
                         f"raised to {ALC_FLOOR} for the log-covariate model")
            alc = np.maximum(alc, ALC_FLOOR)

        lv = lv[lv["patient_id"].isin(set(ids))].sort_values(["patient_id", "day"], kind="stable")
        groups = lv.groupby("patient_id", sort=False).indices
        m = max(len(v) for v in groups.values())
        n = ids.size
        times = np.zeros((n, m))
        cc = np.full((n, m), np.nan)
        observed = np.zeros((n, m), bool)
        bl = np.zeros((n, m), bool)
        t_all, c_all, b_all = lv["day"].to_numpy(float), lv["_conc"].to_numpy(float), lv["_bloq"].to_numpy(bool)
        for i, pid in enumerate(ids):
            idx = groups[pid]
            k = idx.size
            times[i, :k], times[i, k:] = t_all[idx], t_all[idx].max()
            cc[i, :k] = c_all[idx]
            bl[i, :k] = b_all[idx]
            observed[i, :k] = ~b_all[idx]
        dose_rows = doses[doses["patient_id"].astype(str).isin(set(ids))]
        infusions = infusions_from_doses(dose_rows, ids, active_fraction)
        return cls(patient_id=ids, weight_kg=weight, alc=alc, infusions=infusions, times=times,
                   conc=cc, observed=observed, bloq=bl, lloq=float(lloq),
                   active_fraction=float(active_fraction),
                   concentration_unit=concentration_unit, name=name, digest=digest,
                   excluded=tuple(excluded), notes=tuple(notes))

    def take(self, index: np.ndarray) -> "PopPKData":
        """The data of a subset of patients (e.g. a bootstrap sample, repeats allowed)."""
        index = np.asarray(index, dtype=np.int64)
        return PopPKData(
            patient_id=self.patient_id[index], weight_kg=self.weight_kg[index],
            alc=self.alc[index], infusions=replicate_infusions(self.infusions, index),
            times=self.times[index], conc=self.conc[index], observed=self.observed[index],
            bloq=self.bloq[index], lloq=self.lloq, active_fraction=self.active_fraction,
            concentration_unit=self.concentration_unit, name=self.name, digest=self.digest,
            excluded=self.excluded, notes=self.notes)


def replicate_infusions(inf: Infusions, rows: np.ndarray) -> Infusions:
    """Infusions of the patients ``rows`` (repeats allowed), as patients ``0..len(rows)-1``."""
    rows = np.asarray(rows, dtype=np.int64)
    order = np.argsort(inf.patient, kind="stable")
    counts = np.bincount(inf.patient, minlength=inf.n_patients)
    offsets = np.r_[0, np.cumsum(counts)]
    per_row = counts[rows]
    new_patient = np.repeat(np.arange(rows.size), per_row)
    within = np.arange(per_row.sum()) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    src = order[np.repeat(offsets[rows], per_row) + within]
    return Infusions(new_patient, inf.start[src], inf.duration[src], inf.amount[src], rows.size)
