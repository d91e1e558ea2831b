"""The frozen result of a population PK fit."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ml.pk import PARAMETERS

#: Parameters with between-patient variability in the ATG model.
IIV_NAMES = ("CL", "V1", "Vmax")
EXPONENT_NAMES = ("CL_weight", "V1_weight", "Vmax_alc")


def cv_from_omega(omega: float) -> float:
    """Coefficient of variation (fraction) of a log-normal parameter with log-SD ``omega``:
    ``sqrt(exp(omega^2) - 1)``."""
    return math.sqrt(math.expm1(omega * omega))


@dataclass(frozen=True)
class PopPKResult:
    """Estimates of a population PK fit, their standard errors and fit statistics.

    Attributes
    ----------
    typical : dict
        Typical values for the reference patient (``weight_ref_kg``, ``alc_ref``): CL (L/day),
        V1 (L), Q (L/day), V2 (L), Vmax (mg/day), Km (UE/mL, i.e. the concentration unit).
    covariates : dict
        Power exponents ``CL_weight``, ``V1_weight``, ``Vmax_alc`` and the references
        ``weight_ref_kg`` (kg) and ``alc_ref`` (x10^9/L).
    omega : dict
        Between-patient SD of log CL, log V1, log Vmax.
    residual : dict
        ``additive`` (concentration unit), ``proportional`` (fraction), ``lloq``.
    se : dict
        Standard errors, keyed like the estimates (``"typical.CL"``, ``"covariates.CL_weight"``,
        ``"omega.CL"``, ``"residual.additive"``), from the linearised Fisher information; NaN
        when the information matrix is singular.
    shrinkage : dict
        eta-shrinkage ``1 - SD(eta^)/omega`` per IIV parameter and epsilon-shrinkage
        ``1 - SD(IWRES)`` (key ``"epsilon"``), fractions (Savic & Karlsson 2009, AAPS J 11:558).
    ofv : float
        ``-2 log-likelihood`` by importance sampling (NaN if not computed).
    ofv_se : float
        Its Monte Carlo standard error.
    ofv_linearization : float
        ``-2 log-likelihood`` of the quantified levels under the FOCE-I linearisation.
    n_patients, n_observations, n_bloq : int
        Patients fitted, quantified levels, levels below the LLOQ.
    algorithm : str
        What produced the estimates (with references).
    iterations : int
        SAEM iterations run (exploration + smoothing).
    elapsed_seconds : float
        Wall-clock time of the fit.
    concentration_unit : str
    notes : tuple of str
        Data handling worth knowing (excluded patients, imputed covariates).
    converged : bool
        Whether the fit converged (:attr:`ml.poppk.PopPKFit.converged_`).
    """

    typical: dict
    covariates: dict
    omega: dict
    residual: dict
    se: dict
    shrinkage: dict
    ofv: float
    ofv_se: float
    ofv_linearization: float
    n_patients: int
    n_observations: int
    n_bloq: int
    algorithm: str
    iterations: int
    elapsed_seconds: float
    concentration_unit: str = "UE/mL"
    notes: tuple = field(default=())
    converged: bool = True

    def __post_init__(self) -> None:
        missing = [p for p in PARAMETERS if p not in self.typical]
        if missing:
            raise ValueError(f"PopPKResult.typical must give {PARAMETERS}; missing {missing}")
        for p, v in self.typical.items():
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"typical value {p} must be finite and > 0, got {v}")
        for p, v in self.omega.items():
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"omega {p} must be finite and >= 0, got {v}")

    @property
    def iiv_cv(self) -> dict:
        """Between-patient CV (fraction) of each variable parameter."""
        return {p: cv_from_omega(w) for p, w in self.omega.items()}

    def rse(self) -> dict:
        """Relative standard errors, percent of the estimate."""
        values = self._flat()
        return {k: (100.0 * s / abs(values[k]) if values.get(k) else math.nan)
                for k, s in self.se.items()}

    def _flat(self) -> dict:
        out = {f"typical.{k}": v for k, v in self.typical.items()}
        out.update({f"covariates.{k}": v for k, v in self.covariates.items()})
        out.update({f"omega.{k}": v for k, v in self.omega.items()})
        out.update({f"residual.{k}": v for k, v in self.residual.items()})
        return out

    def summary(self) -> dict:
        """The summary printed by ``atgwin poppk fit --json``: ``typical``, ``iiv_cv``,
        ``residual`` (the interface the issue fixes), plus ``covariates``, ``omega``,
        ``rse_percent`` and ``fit`` statistics."""
        return {
            "typical": dict(self.typical),
            "iiv_cv": self.iiv_cv,
            "residual": dict(self.residual),
            "covariates": dict(self.covariates),
            "omega": dict(self.omega),
            "rse_percent": self.rse(),
            "fit": {
                "algorithm": self.algorithm, "ofv": self.ofv, "ofv_se": self.ofv_se,
                "ofv_linearization": self.ofv_linearization, "n_patients": self.n_patients,
                "n_observations": self.n_observations, "n_bloq": self.n_bloq,
                "iterations": self.iterations, "elapsed_seconds": self.elapsed_seconds,
                "converged": self.converged,
                "shrinkage": dict(self.shrinkage),
                "concentration_unit": self.concentration_unit, "notes": list(self.notes),
            },
        }
