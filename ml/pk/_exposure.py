"""Per-patient exposure (AUC of active ATG) of a cohort: the exposure strategies.

An exposure strategy is an object with ``.table(cohort)`` (one row per patient) and a
``.definition`` (plain text recorded in the exported window, so that a dosing tool knows which
AUC the bounds refer to):

* :class:`MAPExposure` (the default of the application): each patient's random effects are the
  maximum a posteriori given all their levels under a population PK model, levels below the
  LLOQ entering by Beal's M3 likelihood, so a patient with only below-LLOQ levels still gets an
  estimate; the AUCs are those of the fitted individual curve.
* :class:`NCAExposure`: model-free non-compartmental analysis (:func:`ml.pk.nca_auc`); a
  patient whose terminal slope cannot be estimated gets no AUC, and those patients are not a
  random subset (:func:`exposure_missingness`).

Names from command lines and experiment files are turned into strategies once, by
:func:`exposure_strategy`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.cohort._model import Cohort

from ._likelihood import LevelLikelihood, take_patients
from ._nca import nca_auc
from ._params import PopPKModel
from ._posterior import fit_map
from ._regimen import HOURS_PER_DAY, Infusions
from ._simulate import model_exposure

__all__ = [
    "EXPOSURE_COLUMNS", "EXPOSURE_METHODS", "EXPOSURE_STATUSES", "MAPExposure", "NCAExposure",
    "default_exposure", "exposure_definition", "exposure_strategy", "exposure_table",
]

EXPOSURE_COLUMNS = ("auc_pre", "auc_post", "auc_total")
#: Names of the exposure strategies in command lines and experiment files.
EXPOSURE_METHODS = ("map", "nca")
#: Per-patient ``status`` of an exposure table: an AUC (``ok``; ``not_converged``: the MAP search
#: stopped at its iteration limit, the AUC is kept and counted), or why there is none.
EXPOSURE_STATUSES = ("ok", "not_converged", "no_dose", "no_level", "no_terminal_slope")
_TOTAL = ("total active-ATG AUC = pre-transplant AUC (first dose to day 0) + post-transplant AUC "
          "(day 0 to infinity, terminal-phase extrapolation), ")
_NCA_DEFINITION = _TOTAL + "by NCA of measured levels"


def _map_definition(model: str) -> str:
    return _TOTAL + f"of the individual curve fitted to the measured levels (MAP Bayesian, M3 for levels below the LLOQ; {model})"


def _model_record(model: PopPKModel, source: str) -> dict:
    return {"name": model.name, "digest": model.digest, "source": source}


class NCAExposure:
    """Model-free exposure: non-compartmental AUC of each patient's levels.

    Rules in :mod:`ml.pk._nca`. A patient whose terminal slope cannot be estimated (fewer than
    3 falling quantifiable levels after the last dose) gets no AUC (status
    ``no_terminal_slope``); those are typically the low-exposure patients, so their absence is
    informative (:func:`exposure_missingness`).
    """

    name = "nca"
    pk_model = None

    def __repr__(self) -> str:
        return "NCAExposure()"

    @property
    def definition(self) -> str:
        """Plain-text definition of ``auc_total``, recorded in the window."""
        return _NCA_DEFINITION

    def table(self, cohort: Cohort, t_split: float = 0.0) -> pd.DataFrame:
        """AUCs of every patient (see :func:`exposure_table` for the columns)."""
        return _finish(cohort, self, t_split, _nca_values)


class MAPExposure:
    """Model-based exposure: the AUC of each patient's MAP Bayesian individual curve.

    Each patient's random effects are the maximum a posteriori given all their levels under the
    population model (Beal's M3 likelihood for levels below the LLOQ: a patient with only
    below-LLOQ levels still gets an estimate, pulled towards the population), and the AUCs are
    those of the fitted individual curve. MAP averages the residual error over all samples
    instead of trusting each one, but it is only as good as the population model: fit one to
    the cohort (``PopPKFit``, ``atgwin poppk fit``; ``atgwin run`` does it first).

    Parameters
    ----------
    model : PopPKModel, optional
        Population model (default :meth:`PopPKModel.default`, the shipped assumption set).
    source : str, optional
        Where the model came from, recorded with it: a file path, a ``models:/`` URI, a run
        folder; default ``"shipped"`` for the default model, else ``"given"``.
    """

    name = "map"

    def __init__(self, model: PopPKModel | None = None, source: str | None = None):
        self.model = model
        self.source = source

    def __repr__(self) -> str:
        m = self._model()
        return f"MAPExposure(model={m.name!r} [{m.digest[:12]}], source={self._source()!r})"

    def _model(self) -> PopPKModel:
        return PopPKModel.default() if self.model is None else self.model

    def _source(self) -> str:
        if self.source is not None:
            return self.source
        return "shipped" if self.model is None else "given"

    @property
    def pk_model(self) -> dict:
        """``{"name", "digest", "source"}`` of the population model (recorded in the window)."""
        return _model_record(self._model(), self._source())

    @property
    def definition(self) -> str:
        """Plain-text definition of ``auc_total``, naming the model and its content digest."""
        m = self._model()
        return _map_definition(f"population PK model {m.name}, digest {m.digest[:12]}, source {self._source()}")

    def table(self, cohort: Cohort, t_split: float = 0.0) -> pd.DataFrame:
        """AUCs of every patient (see :func:`exposure_table` for the columns)."""
        return _finish(cohort, self, t_split, lambda c, ids, ts: _map_values(c, ids, ts, self._model()))


def default_exposure() -> MAPExposure:
    """The application's default exposure: MAP with M3 under the shipped population model."""
    return MAPExposure()


def exposure_strategy(method: str = "map", model: PopPKModel | None = None,
                      source: str | None = None) -> NCAExposure | MAPExposure:
    """The strategy named ``method`` (the one place where names become objects).

    Parameters
    ----------
    method : {"map", "nca"}
    model : PopPKModel, optional
        Population model of ``"map"``.
    source : str, optional
        Where ``model`` came from (recorded).

    Raises
    ------
    ValueError
        Unknown name, or a model given for ``"nca"``.
    """
    if method == "map":
        return MAPExposure(model, source)
    if method == "nca":
        if model is not None:
            raise ValueError("a population PK model only applies to the model-based exposure (map), not nca")
        return NCAExposure()
    raise ValueError(f"exposure method must be one of {EXPOSURE_METHODS}, got {method!r}")


def exposure_definition(method: str = "nca", model_name: str | None = None) -> str:
    """Definition text of a named strategy (for callers that hold a name, e.g. defaults of
    ``ml.window.exposure_window``); prefer ``strategy.definition``."""
    if method == "map" and model_name is not None:
        return _map_definition(f"population PK model {model_name}")
    return exposure_strategy(method).definition


def exposure_table(cohort: Cohort, t_split: float = 0.0, *, method: str = "nca",
                   model: PopPKModel | None = None) -> pd.DataFrame:
    """AUCs of every patient from the measured levels (functional form of the strategies).

    ``exposure_strategy(method, model).table(cohort, t_split)``. The application's default is
    the model-based strategy (:func:`default_exposure`); this function keeps ``"nca"`` as its
    default for scripts written against it.

    Parameters
    ----------
    cohort : Cohort
        A validated cohort. Without level data, ``patients.auc_total`` is used as given
        (``auc_pre``/``auc_post`` are then NaN, ``method`` is ``"given"``).
    t_split : float
        Day separating pre- from post-transplant exposure (0, the day of transplant).
    method : {"nca", "map"}
        See :class:`NCAExposure`, :class:`MAPExposure`.
    model : PopPKModel, optional
        Population model for ``"map"`` (default: the shipped assumption set).

    Returns
    -------
    pandas.DataFrame
        One row per patient in ``cohort.patients`` order: ``patient_id``, ``auc_pre``,
        ``auc_post``, ``auc_total`` (in ``cohort.meta.exposure_unit``), ``lambda_z`` (1/day),
        ``method`` (``"nca"``, ``"map"`` or ``"given"``) and ``status`` (one of
        :data:`EXPOSURE_STATUSES`; NaN AUCs unless ``ok`` or ``not_converged``). ``attrs``:
        ``unit``, ``simulated``, ``definition``, ``pk_model`` (dict or None) and ``exclusions``
        (patients without an AUC, by reason). Callers must report and exclude rows without an
        AUC, never impute them.
    """
    return exposure_strategy(method, model).table(cohort, t_split)


# ------------------------------------------------------------------------------------ internals
def _finish(cohort: Cohort, strategy, t_split: float, values) -> pd.DataFrame:
    ids = cohort.patients["patient_id"].astype(str).to_numpy()
    if not cohort.has_levels:
        given = cohort.patients.get("auc_total")
        total = np.full(ids.size, np.nan) if given is None else given.to_numpy(float)
        table = pd.DataFrame({
            "patient_id": ids, "auc_pre": np.nan, "auc_post": np.nan, "auc_total": total,
            "lambda_z": np.nan, "method": "given",
            "status": np.where(np.isfinite(total), "ok", "no_level"),
        })
        definition, pk_model = "total active-ATG AUC as given in the cohort's patients table", None
    else:
        dosed = set(cohort.doses["patient_id"].astype(str))
        sampled = set(cohort.levels["patient_id"].astype(str))
        status = np.array(["ok" if (p in dosed and p in sampled) else ("no_dose" if p not in dosed else "no_level")
                           for p in ids], dtype=object)
        usable = status == "ok"
        out = np.full((ids.size, 4), np.nan)
        if usable.any():
            vals, flag = values(cohort, ids[usable], t_split)
            out[usable] = vals
            status[np.flatnonzero(usable)] = flag
        table = pd.DataFrame({"patient_id": ids, "auc_pre": out[:, 0], "auc_post": out[:, 1],
                              "auc_total": out[:, 0] + out[:, 1], "lambda_z": out[:, 3],
                              "method": strategy.name, "status": status})
        definition, pk_model = strategy.definition, strategy.pk_model
    table.attrs.update(unit=cohort.meta.exposure_unit, simulated=cohort.meta.simulated, definition=definition,
                       pk_model=pk_model, exclusions=_exclusions(table["status"]))
    return table


def _exclusions(status: pd.Series) -> dict:
    counts = status.value_counts()
    return {s: int(counts.get(s, 0)) for s in EXPOSURE_STATUSES if s not in ("ok", "not_converged")}


def _nca_values(cohort: Cohort, ids: np.ndarray, t_split: float) -> tuple[np.ndarray, np.ndarray]:
    doses = cohort.doses
    start = doses["day"].to_numpy(float) + doses["start_hour"].fillna(8.0).to_numpy(float) / HOURS_PER_DAY
    end = start + doses["infusion_hours"].to_numpy(float) / HOURS_PER_DAY
    dose_pid = doses["patient_id"].astype(str).to_numpy()
    first = pd.Series(start).groupby(dose_pid).min()
    last_end = pd.Series(end).groupby(dose_pid).max()
    levels = cohort.levels
    groups = levels.groupby(levels["patient_id"].astype(str), sort=False).indices
    t_all = levels["day"].to_numpy(float)
    c_all = levels["concentration"].to_numpy(float)
    b_all = levels["bloq"].to_numpy(int)
    rows = []
    for pid in ids:
        idx = groups[pid]
        res = nca_auc(t_all[idx], c_all[idx], b_all[idx], first[pid], last_end[pid], t_split)
        rows.append((res.auc_pre, res.auc_post, res.auc_total, res.lambda_z))
    arr = np.array(rows, dtype=float).reshape(-1, 4)
    flag = np.where(np.isfinite(arr[:, 2]), "ok", "no_terminal_slope")
    return arr, flag


def _map_values(cohort: Cohort, ids: np.ndarray, t_split: float,
                model: PopPKModel) -> tuple[np.ndarray, np.ndarray]:
    """MAP AUCs of patients with a dose and at least one level (quantified or not: M3)."""
    lik = LevelLikelihood.from_cohort(model, cohort, ids)
    fit = fit_map(lik)
    z, converged = fit.z.copy(), fit.converged.copy()
    bad = np.flatnonzero(~converged)
    if bad.size:  # rare (none in 9,000 virtual patients): a longer search for those patients only
        retry = fit_map(take_patients(lik, bad), max_iter=200)
        z[bad], converged[bad] = retry.z, retry.converged
    params = model.individual(lik.weight, lik.alc, lik.eta(z))
    infusions = Infusions(patient=lik.inf_patient, start=lik.inf_start, duration=lik.inf_duration,
                          amount=lik.inf_amount, n_patients=lik.n_patients)
    auc = model_exposure(params, infusions, t_split=t_split)
    values = np.column_stack([auc.auc_pre, auc.auc_post, auc.auc_total, _terminal_rate(params)])
    return values, np.where(converged, "ok", "not_converged")


def _terminal_rate(p) -> np.ndarray:
    """Slow disposition rate constant of the linear(ised, low-concentration) model, 1/day."""
    k10 = (p.CL + p.Vmax / p.Km) / p.V1
    k12, k21 = p.Q / p.V1, p.Q / p.V2
    s = k10 + k12 + k21
    return 0.5 * (s - np.sqrt(s * s - 4.0 * k10 * k21))
