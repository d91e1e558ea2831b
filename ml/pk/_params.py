"""Population PK model of active ATG, read from (and written to) one declarative TOML file."""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np

PARAMETERS = ("CL", "V1", "Q", "V2", "Vmax", "Km")
_COVARIATE_KEYS = ("weight_ref_kg", "alc_ref", "CL_weight", "V1_weight", "Vmax_alc")
_RESIDUAL_KEYS = ("proportional", "additive", "lloq")


@dataclass(frozen=True)
class PKParameters:
    """Individual PK parameters of many patients at once (arrays of shape ``(n,)``).

    Attributes
    ----------
    CL : numpy.ndarray
        Linear clearance, L/day.
    V1, V2 : numpy.ndarray
        Central and peripheral volumes, L.
    Q : numpy.ndarray
        Inter-compartmental clearance, L/day.
    Vmax : numpy.ndarray
        Maximal saturable elimination rate, mg/day.
    Km : numpy.ndarray
        Michaelis-Menten constant, mg/L (= UE/mL).
    """

    CL: np.ndarray
    V1: np.ndarray
    Q: np.ndarray
    V2: np.ndarray
    Vmax: np.ndarray
    Km: np.ndarray

    def __post_init__(self) -> None:
        arrays = [np.atleast_1d(np.asarray(getattr(self, p), dtype=float)) for p in PARAMETERS]
        n = max(a.size for a in arrays)
        for name, a in zip(PARAMETERS, arrays):
            a = np.broadcast_to(a, (n,)).copy() if a.size in (1, n) else a
            if a.shape != (n,):
                raise ValueError(f"PK parameter {name} must have 1 or {n} values, got {a.size}")
            bad = ~np.isfinite(a) | (a < 0) | ((a == 0) & (name not in ("Vmax",)))
            if bad.any():
                raise ValueError(
                    f"PK parameter {name} must be finite and > 0 (Vmax >= 0), "
                    f"got {a[bad][:3].tolist()} for patients {np.flatnonzero(bad)[:5].tolist()}"
                )
            object.__setattr__(self, name, a)

    @property
    def n(self) -> int:
        """Number of patients."""
        return self.CL.size

    def take(self, index: np.ndarray | slice) -> "PKParameters":
        """Parameters of a subset of patients."""
        return PKParameters(**{p: getattr(self, p)[index] for p in PARAMETERS})

    def as_array(self) -> np.ndarray:
        """Parameters as an ``(n, 6)`` array in the order of :data:`PARAMETERS`."""
        return np.column_stack([getattr(self, p) for p in PARAMETERS])


@dataclass(frozen=True)
class PopPKModel:
    """A population PK model: typical values, covariate effects, variability, residual error.

    The default (:meth:`default`) is the assumption set in ml/pk/default_model.toml (sources: docs/sources.md). A model fitted to
    a cohort's own levels (``atgwin poppk fit``) is written in the same format and can replace it
    in the simulator and the dosing engine.

    Attributes
    ----------
    typical : dict
        Typical values for a patient of ``weight_ref_kg`` and ``alc_ref``: CL (L/day),
        V1 (L), Q (L/day), V2 (L), Vmax (mg/day), Km (UE/mL).
    covariates : dict
        ``weight_ref_kg`` (kg), ``alc_ref`` (x10^9/L) and the power exponents
        ``CL_weight``, ``V1_weight``, ``Vmax_alc``.
    iiv : dict
        Between-patient SD of the log of each variable parameter (omega); parameters not
        listed do not vary.
    residual : dict
        ``proportional`` (fraction), ``additive`` (UE/mL), ``lloq`` (UE/mL).
    active_fraction : float
        Fraction of the total Thymoglobulin dose (mg) that is active ATG.
    concentration_unit : str
        Unit of concentrations, e.g. ``"UE/mL"`` (1 UE/mL taken as 1 mg/L of active ATG).
    name : str
        Name of the model, recorded with every exposure and window it defines.
    status : str
        ``"assumption"`` (literature values) or ``"fitted"`` (estimated from patient data).
    source : str
        Where the values come from (publication, file or fit).
    extra : dict
        Further fields kept as given (e.g. a fit's diagnostics).
    """

    typical: dict
    covariates: dict
    iiv: dict
    residual: dict
    active_fraction: float = 0.14
    concentration_unit: str = "UE/mL"
    name: str = "atg-2cmt-linear-mm"
    status: str = "assumption"
    source: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_typical(self.typical)
        for key in _COVARIATE_KEYS:
            if key not in self.covariates:
                raise ValueError(f"[covariates] must give {key}")
        _check_iiv(self.iiv)
        for key in _RESIDUAL_KEYS:
            if key not in self.residual or not self.residual[key] >= 0:
                raise ValueError(f"[residual].{key} must be given and >= 0")
        if not 0 < self.active_fraction <= 1:
            raise ValueError(f"active_fraction must be in (0, 1], got {self.active_fraction}")

    # -- construction -------------------------------------------------------------------
    @classmethod
    def default(cls) -> "PopPKModel":
        """The default assumption set shipped with the package (``default_model.toml``)."""
        text = resources.files("ml.pk").joinpath("default_model.toml").read_text()
        return cls.from_toml_string(text)

    @classmethod
    def from_toml(cls, path: str | Path) -> "PopPKModel":
        """Read a model file (the format of ``ml/pk/default_model.toml``)."""
        return cls.from_toml_string(Path(path).read_text())

    @classmethod
    def from_file(cls, path: str | Path) -> "PopPKModel":
        """Read a model file: TOML (``.toml``) or the same tables as JSON (``.json``)."""
        path = Path(path)
        if path.suffix.lower() == ".json":
            return cls.from_dict(json.loads(path.read_text()))
        return cls.from_toml(path)

    @classmethod
    def from_toml_string(cls, text: str) -> "PopPKModel":
        """Parse a model from TOML text."""
        return cls.from_dict(tomllib.loads(text))

    @classmethod
    def from_dict(cls, data: dict) -> "PopPKModel":
        """A model from the file's tables as a dict (``model``, ``typical``, ``covariates``,
        ``iiv``, ``residual``; other tables are kept in ``extra``)."""
        missing = [t for t in ("typical", "covariates", "residual") if t not in data]
        if missing:
            raise ValueError(f"PK model file must have the tables {missing}")
        model = data.get("model", {})
        known = {"model", "typical", "covariates", "iiv", "residual"}
        return cls(
            typical={k: float(v) for k, v in data["typical"].items()},
            covariates={k: float(v) for k, v in data["covariates"].items()},
            iiv={k: float(v) for k, v in data.get("iiv", {}).items()},
            residual={k: float(v) for k, v in data["residual"].items()},
            active_fraction=float(model.get("active_fraction", 0.14)),
            concentration_unit=str(model.get("concentration_unit", "UE/mL")),
            name=str(model.get("name", "atg-2cmt-linear-mm")),
            status=str(model.get("status", "assumption")),
            source=str(model.get("source", "")),
            extra={k: v for k, v in data.items() if k not in known},
        )

    def to_toml_string(self) -> str:
        """Serialise to the declarative TOML format (readable by :meth:`from_toml_string`)."""

        def table(name: str, values: dict) -> str:
            rows = "\n".join(f"{k} = {_toml_value(v)}" for k, v in values.items())
            return f"[{name}]\n{rows}\n"

        model = {
            "name": self.name,
            "status": self.status,
            "concentration_unit": self.concentration_unit,
            "active_fraction": self.active_fraction,
            "source": self.source,
        }
        parts = [table("model", model), table("typical", self.typical),
                 table("covariates", self.covariates), table("iiv", self.iiv),
                 table("residual", self.residual)]
        parts += [table(k, v) for k, v in self.extra.items() if isinstance(v, dict)]
        return "\n".join(parts)

    def to_toml(self, path: str | Path) -> None:
        """Write the model file."""
        from ml._atomic import write_atomic

        write_atomic(path, self.to_toml_string(), mkdir=False)

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of what the model predicts from: typical values, covariates, IIV, residual
        error, active fraction and concentration unit (not its name, status, source or fit tables).

        Two files with the same digest give the same exposures and forecasts; a window records
        the digest of the model that defined its exposure so that dosing can check it uses the
        same one.
        """
        content = {"typical": self.typical, "covariates": self.covariates, "iiv": self.iiv,
                   "residual": self.residual, "active_fraction": self.active_fraction,
                   "concentration_unit": self.concentration_unit}
        text = json.dumps(_canonical(content), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def with_typical(self, **values: float) -> "PopPKModel":
        """A copy with some typical values replaced."""
        return replace(self, typical={**self.typical, **values})

    # -- individual parameters ----------------------------------------------------------
    def individual(
        self,
        weight_kg: np.ndarray | float,
        alc: np.ndarray | float,
        eta: dict[str, np.ndarray] | None = None,
    ) -> PKParameters:
        """Individual parameters from covariates and random effects.

        Parameters
        ----------
        weight_kg : array-like
            Body weight, kg.
        alc : array-like
            Absolute lymphocyte count before ATG, x10^9/L (0 switches off the saturable path).
        eta : dict of array-like, optional
            Random effects on the log scale per parameter (missing ones are 0).

        Returns
        -------
        PKParameters
        """
        weight = np.atleast_1d(np.asarray(weight_kg, dtype=float))
        alc_arr = np.atleast_1d(np.asarray(alc, dtype=float))
        n = max(weight.size, alc_arr.size)
        weight, alc_arr = np.broadcast_to(weight, (n,)), np.broadcast_to(alc_arr, (n,))
        c = self.covariates
        wt = weight / c["weight_ref_kg"]
        values = {p: np.full(n, self.typical[p]) for p in PARAMETERS}
        values["CL"] = values["CL"] * wt ** c["CL_weight"]
        values["V1"] = values["V1"] * wt ** c["V1_weight"]
        values["Vmax"] = values["Vmax"] * np.maximum(alc_arr / c["alc_ref"], 0.0) ** c["Vmax_alc"]
        for p, e in (eta or {}).items():
            values[p] = values[p] * np.exp(np.broadcast_to(np.asarray(e, dtype=float), (n,)))
        return PKParameters(**values)

    def sample_eta(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Draw random effects for ``n`` patients, ``eta_p ~ N(0, omega_p^2)``."""
        return {p: rng.normal(0.0, omega, size=n) for p, omega in self.iiv.items()}


def _check_typical(typical: dict) -> None:
    missing = [p for p in PARAMETERS if p not in typical]
    if missing:
        raise ValueError(f"[typical] must give {', '.join(PARAMETERS)}; missing {missing}")
    for p, v in typical.items():
        if p not in PARAMETERS:
            raise ValueError(f"[typical] has unknown parameter {p!r}; known: {PARAMETERS}")
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"[typical].{p} must be finite and > 0, got {v}")


def _check_iiv(iiv: dict) -> None:
    for p, omega in iiv.items():
        if p not in PARAMETERS:
            raise ValueError(f"[iiv] has unknown parameter {p!r}; known: {PARAMETERS}")
        if not (math.isfinite(omega) and omega >= 0):
            raise ValueError(f"[iiv].{p} must be finite and >= 0, got {omega}")


def _canonical(value):
    """Floats rounded to 12 significant digits (a TOML/JSON round trip does not change the digest)."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(f"{float(value):.12g}")
    return value


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(float(v))
    text = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
