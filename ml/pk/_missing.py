"""Who has no exposure, and whether their absence is informative.

An exposure table (:mod:`ml.pk._exposure`) leaves a patient without an AUC for a reason in its
``status`` column. Patients without a dose or without any level cannot have one whatever the
method; under NCA, patients whose terminal slope cannot be estimated are lost as well, and they
are not a random subset: few quantifiable levels after the last dose mean low concentrations,
i.e. the low-exposure tail. :func:`exposure_missingness` counts every exclusion and compares the
patients NCA could not estimate with the others on what was measured before any AUC (their
levels and their dose per kg), by two-sided Mann-Whitney U tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

__all__ = ["ExposureMissingness", "exposure_missingness"]


@dataclass(frozen=True)
class ExposureMissingness:
    """Exclusions of an exposure table and, under NCA, the comparison of the patients it lost.

    Attributes
    ----------
    n_patients : int
    n_with_auc : int
        Patients with an AUC (including MAP searches that stopped at their iteration limit).
    excluded : dict
        Patients without an AUC by reason: ``no_dose``, ``no_level`` (no level at all, quantified
        or below the LLOQ) and ``no_terminal_slope`` (NCA only).
    n_not_converged : int
        MAP searches that stopped at their iteration limit (the AUC is kept).
    comparison : dict
        Only when NCA lost patients: per measure (``peak_level``: highest quantified level,
        concentration unit, 0 when none; ``quantified_levels``: number of quantified levels;
        ``dose_mg_per_kg``: total ATG dose per kg), the medians of the lost patients and of
        the others, and the two-sided Mann-Whitney U p-value.
    warnings : tuple of str
        What every output of the exposure must repeat.
    """

    n_patients: int
    n_with_auc: int
    excluded: dict
    n_not_converged: int = 0
    comparison: dict = field(default_factory=dict)
    warnings: tuple = ()

    @property
    def n_excluded(self) -> int:
        return int(sum(self.excluded.values()))

    def to_dict(self) -> dict:
        return {"n_patients": self.n_patients, "n_with_auc": self.n_with_auc, "n_excluded": self.n_excluded,
                "excluded": dict(self.excluded), "n_not_converged": self.n_not_converged,
                "comparison": {k: dict(v) for k, v in self.comparison.items()}, "warnings": list(self.warnings)}


def _per_patient(cohort, ids: np.ndarray) -> pd.DataFrame:
    lv = cohort.levels
    q = lv.loc[lv["bloq"].to_numpy(int) == 0]
    pid = q["patient_id"].astype(str)
    peak = q["concentration"].groupby(pid.to_numpy()).max()
    n_q = pid.value_counts()
    dose = cohort.doses.groupby(cohort.doses["patient_id"].astype(str))["dose_mg"].sum()
    weight = cohort.patients.set_index(cohort.patients["patient_id"].astype(str))["weight_kg"]
    return pd.DataFrame({
        "peak_level": peak.reindex(ids).fillna(0.0).to_numpy(float),
        "quantified_levels": n_q.reindex(ids).fillna(0).to_numpy(float),
        "dose_mg_per_kg": (dose.reindex(ids) / weight.reindex(ids)).to_numpy(float),
    }, index=ids)


def exposure_missingness(cohort, table: pd.DataFrame) -> ExposureMissingness:
    """Count the exclusions of ``table`` and test whether NCA's losses are informative.

    Parameters
    ----------
    cohort : ml.cohort.Cohort
    table : pandas.DataFrame
        From an exposure strategy's ``.table(cohort)`` (columns ``patient_id``, ``auc_total``,
        ``status``).

    Returns
    -------
    ExposureMissingness
        With a warning for every exclusion; when NCA left patients without an AUC, the warning
        says their absence is informative and gives the comparison.
    """
    status = table["status"].astype(str).to_numpy()
    excluded = {s: int((status == s).sum()) for s in ("no_dose", "no_level", "no_terminal_slope")}
    n = int(status.size)
    has_auc = np.isfinite(table["auc_total"].to_numpy(float))
    warnings, comparison = [], {}
    if excluded["no_dose"] or excluded["no_level"]:
        warnings.append(f"{excluded['no_dose'] + excluded['no_level']} of {n} patients have no AUC: "
                        f"{excluded['no_dose']} without an ATG dose, {excluded['no_level']} without any level "
                        "(quantified or below the LLOQ); they are excluded, not imputed")
    lost = status == "no_terminal_slope"
    if lost.any() and getattr(cohort, "has_levels", False):
        ids = table["patient_id"].astype(str).to_numpy()
        kept = status == "ok"
        measures = _per_patient(cohort, ids)
        parts = []
        for name, col in measures.items():
            a, b = col.to_numpy()[lost], col.to_numpy()[kept]
            a, b = a[np.isfinite(a)], b[np.isfinite(b)]
            p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue) if a.size and b.size else float("nan")
            comparison[name] = {"median_without_auc": float(np.median(a)) if a.size else float("nan"),
                                "median_with_auc": float(np.median(b)) if b.size else float("nan"),
                                "mann_whitney_p": p}
            parts.append(f"{name} median {comparison[name]['median_without_auc']:.3g} vs "
                         f"{comparison[name]['median_with_auc']:.3g} (Mann-Whitney p = {p:.2g})")
        k = int(lost.sum())
        warnings.append(
            f"NCA left {k} of {n} patients ({100 * k / n:.1f} %) without an AUC (terminal slope not estimable). "
            "Their absence is informative, not random: few quantifiable late levels mean low concentrations, "
            "so the low-exposure tail is under-represented and a window's lower bound is biased. Compared with "
            f"the others: {'; '.join(parts)}. Use the model-based exposure (MAP), which estimates every patient "
            "with a dose and a level")
    n_nc = int((status == "not_converged").sum())
    if n_nc:
        warnings.append(f"the MAP search stopped at its iteration limit for {n_nc} patients; their AUC is kept "
                        "(the best point found) and counted here")
    return ExposureMissingness(n_patients=n, n_with_auc=int(has_auc.sum()), excluded=excluded,
                               n_not_converged=n_nc, comparison=comparison, warnings=tuple(warnings))
