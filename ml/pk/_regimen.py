"""ATG infusions: the dosing events that drive the PK model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

HOURS_PER_DAY = 24.0


@dataclass(frozen=True)
class Infusions:
    """Zero-order infusions of many patients (flat arrays, one entry per infusion).

    Attributes
    ----------
    patient : numpy.ndarray of int
        Index of the patient (0..n_patients-1) receiving each infusion.
    start : numpy.ndarray
        Start time, days from transplant (``day + start_hour/24``).
    duration : numpy.ndarray
        Duration, days (> 0).
    amount : numpy.ndarray
        Amount infused, mg (of whatever the model integrates: active ATG).
    n_patients : int
        Number of patients (some may receive nothing).
    """

    patient: np.ndarray
    start: np.ndarray
    duration: np.ndarray
    amount: np.ndarray
    n_patients: int

    def __post_init__(self) -> None:
        for name in ("start", "duration", "amount"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=float).ravel())
        object.__setattr__(self, "patient", np.asarray(self.patient, dtype=np.int64).ravel())
        sizes = {a.size for a in (self.patient, self.start, self.duration, self.amount)}
        if len(sizes) != 1:
            raise ValueError("Infusions arrays must all have the same length")
        if self.patient.size and (self.patient.min() < 0 or self.patient.max() >= self.n_patients):
            raise ValueError(f"Infusions.patient must lie in 0..{self.n_patients - 1}")
        if np.any(~(self.duration > 0)):
            raise ValueError("Infusions.duration must be > 0 days")
        if np.any(~(self.amount >= 0)):
            raise ValueError("Infusions.amount must be >= 0 mg")

    @property
    def end(self) -> np.ndarray:
        """End time of each infusion, days."""
        return self.start + self.duration

    @property
    def rate(self) -> np.ndarray:
        """Infusion rate, mg/day."""
        return self.amount / self.duration

    def take(self, patients: np.ndarray) -> "Infusions":
        """The infusions of a subset of patients, re-indexed 0..len(patients)-1."""
        patients = np.asarray(patients, dtype=np.int64)
        position = np.full(self.n_patients, -1, dtype=np.int64)
        position[patients] = np.arange(patients.size)
        keep = position[self.patient] >= 0
        return Infusions(position[self.patient[keep]], self.start[keep], self.duration[keep],
                         self.amount[keep], patients.size)

    def concat(self, other: "Infusions") -> "Infusions":
        """Infusions of the same patients from both (e.g. given doses + candidate doses)."""
        if other.n_patients != self.n_patients:
            raise ValueError("cannot combine infusions of different patient sets")
        return Infusions(np.r_[self.patient, other.patient], np.r_[self.start, other.start],
                         np.r_[self.duration, other.duration], np.r_[self.amount, other.amount],
                         self.n_patients)

    def first_start(self) -> np.ndarray:
        """Time of each patient's first infusion, days (NaN for a patient without infusions)."""
        first = np.full(self.n_patients, np.inf)
        np.minimum.at(first, self.patient, self.start)
        first[np.isinf(first)] = np.nan
        return first


def round_to_vials(dose_mg: np.ndarray, vial_mg: float = 25.0) -> np.ndarray:
    """Round doses to whole vials (nearest; at least one vial for a positive dose), mg."""
    dose = np.asarray(dose_mg, dtype=float)
    vials = np.where(dose > 0, np.maximum(np.round(dose / vial_mg), 1.0), 0.0)
    return vials * vial_mg


def fixed_regimen_doses(
    weight_kg: np.ndarray,
    mg_per_kg_per_day: float = 2.5,
    days: tuple[int, ...] = (-5, -4, -3, -2),
    vial_mg: float = 25.0,
    start_hour: float = 8.0,
    first_hours: float = 6.0,
    later_hours: float = 4.0,
) -> pd.DataFrame:
    """The fixed Thymoglobulin regimen as an ``atg_doses`` table (total, not active, mg).

    Parameters
    ----------
    weight_kg : array-like
        Body weight of each patient, kg; patients are numbered by position.
    mg_per_kg_per_day : float
        Daily dose, mg/kg (2.5 mg/kg on 4 days = 10 mg/kg).
    days : tuple of int
        Infusion days relative to transplant.
    vial_mg : float
        Vial size, mg; each daily dose is rounded to whole vials.
    start_hour : float
        Clock hour of each infusion start.
    first_hours, later_hours : float
        Duration of the first and of later infusions, hours.

    Returns
    -------
    pandas.DataFrame
        Columns ``patient`` (position), ``day``, ``start_hour``, ``dose_mg``, ``infusion_hours``.
    """
    weight = np.asarray(weight_kg, dtype=float)
    dose = round_to_vials(mg_per_kg_per_day * weight, vial_mg)
    n, k = weight.size, len(days)
    return pd.DataFrame({
        "patient": np.repeat(np.arange(n), k),
        "day": np.tile(np.asarray(days, dtype=np.int64), n),
        "start_hour": float(start_hour),
        "dose_mg": np.repeat(dose, k),
        "infusion_hours": np.tile([first_hours] + [later_hours] * (k - 1), n).astype(float),
    })


def infusions_from_doses(
    doses: pd.DataFrame, patient_ids: pd.Series | np.ndarray, active_fraction: float
) -> Infusions:
    """Build :class:`Infusions` of active ATG from an ``atg_doses`` table.

    Parameters
    ----------
    doses : pandas.DataFrame
        ``atg_doses`` rows: ``patient_id``, ``day``, ``start_hour`` (default 8), ``dose_mg``
        (total Thymoglobulin), ``infusion_hours``.
    patient_ids : array-like
        Patient order of the result.
    active_fraction : float
        Active fraction of the total dose.
    """
    ids = pd.Index(pd.Series(patient_ids).astype(str))
    position = ids.get_indexer(doses["patient_id"].astype(str))
    if (position < 0).any():
        unknown = doses["patient_id"][position < 0].unique()[:5].tolist()
        raise ValueError(f"atg_doses.patient_id: unknown patients {unknown}")
    start_hour = doses["start_hour"].fillna(8.0) if "start_hour" in doses else 8.0
    start = doses["day"].to_numpy(float) + np.asarray(start_hour, dtype=float) / HOURS_PER_DAY
    return Infusions(
        patient=position,
        start=start,
        duration=doses["infusion_hours"].to_numpy(float) / HOURS_PER_DAY,
        amount=doses["dose_mg"].to_numpy(float) * active_fraction,
        n_patients=len(ids),
    )
