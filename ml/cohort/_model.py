"""The in-memory form of a cohort folder (docs/cohort-format.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

DONOR_SOURCES = ("URD", "haplo", "MSD", "mixed")


def exposure_unit(concentration_unit: str) -> str:
    """Unit of an AUC computed from concentrations in ``concentration_unit``.

    Parameters
    ----------
    concentration_unit : str
        Concentration unit such as ``"UE/mL"``.

    Returns
    -------
    str
        The exposure unit, concentration times day: ``"UE/mL"`` gives ``"UE*day/mL"``;
        a unit without ``/`` gives ``"<unit>*day"``.
    """
    numerator, sep, denominator = concentration_unit.partition("/")
    return f"{numerator}*day/{denominator}" if sep else f"{concentration_unit}*day"


@dataclass(frozen=True)
class CohortMeta:
    """Metadata from ``cohort.toml``.

    Attributes
    ----------
    name : str
        Short identifier, used in run names.
    donor_source : str
        One of ``URD``, ``haplo``, ``MSD``, ``mixed``.
    concentration_unit : str
        Unit of ``atg_levels.concentration`` (e.g. ``"UE/mL"``).
    simulated : bool
        True for virtual cohorts; carried into every derived artefact.
    description : str
        Free text.
    truth : dict or None
        Simulated cohorts only: the generating window (``lower``, ``upper``, ``scenario``).
        Benchmarks read it; discovery code never does.
    """

    name: str
    donor_source: str
    concentration_unit: str
    simulated: bool
    description: str = ""
    truth: dict | None = None

    @property
    def exposure_unit(self) -> str:
        """Unit of AUCs derived from this cohort, e.g. ``"UE*day/mL"``."""
        return exposure_unit(self.concentration_unit)


@dataclass(frozen=True)
class Cohort:
    """A validated cohort: metadata and the contract's tables.

    Code behind the loader trusts these tables: columns have the contract's names and
    dtypes (strings as ``object``/``str``, numbers as ``float64``/``int64``; event days
    as ``float64`` with NaN for "did not happen").

    Attributes
    ----------
    meta : CohortMeta
    patients : pandas.DataFrame
        One row per patient, ``patient_id`` unique.
    doses : pandas.DataFrame or None
        ``atg_doses`` (``start_hour`` filled with 8 when absent). None when the cohort
        only carries ``patients.auc_total``.
    levels : pandas.DataFrame or None
        ``atg_levels`` (``bloq`` filled: 1 where concentration is empty, else 0).
    outcomes : pandas.DataFrame
        One row per patient.
    digest : str
        SHA-256 of the canonical content (same for CSV and Parquet copies).
    warnings : tuple of str
        Eligibility warnings that did not refuse the cohort.
    """

    meta: CohortMeta
    patients: pd.DataFrame
    doses: pd.DataFrame | None
    levels: pd.DataFrame | None
    outcomes: pd.DataFrame
    digest: str
    warnings: tuple[str, ...] = field(default=())

    @property
    def n(self) -> int:
        """Number of patients."""
        return len(self.patients)

    @property
    def has_levels(self) -> bool:
        """True when the cohort carries doses and levels (AUC can be computed)."""
        return self.doses is not None and self.levels is not None
