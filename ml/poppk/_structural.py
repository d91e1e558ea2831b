"""Parameterisation of the ATG model for estimation, and batched model predictions.

Individual parameters are mu-referenced on the log scale (the form SAEM's closed-form M-step
needs, Kuhn & Lavielle 2005)::

    log CL_i   = log CL_pop   + CL_weight * log(WT_i/WT_ref)  + eta_CL,i
    log V1_i   = log V1_pop   + V1_weight * log(WT_i/WT_ref)  + eta_V1,i
    log Vmax_i = log Vmax_pop + Vmax_alc  * log(ALC_i/ALC_ref) + eta_Vmax,i
    log Q, log V2, log Km: fixed effects without between-patient variability

which is exactly :meth:`ml.pk.PopPKModel.individual`. Internally the saturable path is
parameterised by its clearance at vanishing concentration, ``CLsat_i = Vmax_i / Km`` (same
random effect, omega and exponent, ``log CLsat_pop = log Vmax_pop - log Km``): the product
``Vmax/Km`` is what the levels determine best, and with it a step in Km at fixed individual
parameters does not change the low-concentration clearance, which removes most of the
correlation between Km and the random effects that slows SAEM down. Predictions come from
the RK4 scheme of :func:`ml.pk.simulate` with a step set for estimation
(see :mod:`._ode`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ml.pk import PARAMETERS, PopPKModel

from ._data import PopPKData, replicate_infusions
from ._ode import concentrations

#: Parameters with between-patient variability, their covariate and exponent key.
IIV_PARAMS = ("CL", "V1", "Vmax")
IIV_COVARIATE = ("weight", "weight", "alc")
EXPONENT_KEYS = ("CL_weight", "V1_weight", "Vmax_alc")
#: Fixed effects without between-patient variability.
FIXED_PARAMS = ("Q", "V2", "Km")

_IIV_POS = [PARAMETERS.index(p) for p in IIV_PARAMS]
_FIXED_POS = [PARAMETERS.index(p) for p in FIXED_PARAMS]
_VMAX, _KM = PARAMETERS.index("Vmax"), PARAMETERS.index("Km")
#: Order of :meth:`Theta.vector`.
VECTOR_NAMES = ("CL", "V1", "Q", "V2", "Vmax", "Km", "CL_weight", "V1_weight", "Vmax_alc",
                "omega_CL", "omega_V1", "omega_Vmax", "additive", "proportional")

#: Support of the individual parameters: stiffness (:func:`stiffness`, 1/day) at most this,
#: i.e. the fastest disposition half-life at least ln2/10 day = 1.7 h, about 12 times the
#: typical stiffness (0.8/day) and beyond 3-SD combinations of the default model. SAEM rejects
#: proposals outside it and the likelihood is 0 there; it bounds the integration step.
MAX_STIFFNESS = 10.0

#: RK4 step limits used while fitting, ``(from_day, max_step_days)``.
FIT_STEPS = ((-np.inf, 1.0 / 6.0), (1.0, 0.5), (20.0, 1.0))
#: Coarser RK4 step limits for SAEM's exploration (:class:`ml.poppk.PopPKFit`,
#: ``explore_steps``): about 30 % fewer steps; predictions within 1 % of :data:`FIT_STEPS`'
#: (0.1 % at the 99th percentile) on the spec's design (tests/test_poppk_units.py).
EXPLORE_STEPS = ((-np.inf, 1.0 / 3.0), (1.0, 1.0), (20.0, 2.0))


@dataclass(frozen=True)
class Theta:
    """Population parameters in the estimation scale.

    Attributes
    ----------
    beta : numpy.ndarray
        ``(3, 2)``: per IIV parameter (CL, V1, CLsat = Vmax/Km) the log typical value and the
        covariate exponent.
    omega2 : numpy.ndarray
        ``(3,)`` variances of the log-parameters (omega^2).
    log_fixed : numpy.ndarray
        ``(3,)`` log Q (L/day), log V2 (L), log Km (UE/mL).
    a, b : float
        Additive (concentration unit) and proportional (fraction) residual SDs.
    """

    beta: np.ndarray
    omega2: np.ndarray
    log_fixed: np.ndarray
    a: float
    b: float

    def typical(self) -> dict[str, float]:
        """Typical values (natural scale) of CL, V1, Q, V2, Vmax, Km."""
        log_typ = dict(zip(IIV_PARAMS, self.beta[:, 0]))
        log_typ.update(zip(FIXED_PARAMS, self.log_fixed))
        log_typ["Vmax"] = log_typ["Vmax"] + log_typ["Km"]
        return {p: float(np.exp(log_typ[p])) for p in PARAMETERS}

    def vector(self) -> np.ndarray:
        """Natural-scale values as one flat vector (:data:`VECTOR_NAMES`)."""
        t = self.typical()
        return np.r_[[t[p] for p in VECTOR_NAMES[:6]], self.beta[:, 1], np.sqrt(self.omega2),
                     self.a, self.b]

    @classmethod
    def from_model(cls, model: PopPKModel, omega_floor: float = 0.0) -> "Theta":
        """Starting values from a model file's values."""
        beta = np.array([[np.log(model.typical[p]), model.covariates[k]]
                         for p, k in zip(IIV_PARAMS, EXPONENT_KEYS)])
        beta[2, 0] -= np.log(model.typical["Km"])
        omega = np.array([max(model.iiv.get(p, 0.0), omega_floor) for p in IIV_PARAMS])
        return cls(beta=beta, omega2=omega**2,
                   log_fixed=np.log([model.typical[p] for p in FIXED_PARAMS]),
                   a=float(model.residual["additive"]), b=float(model.residual["proportional"]))

    def to_model(self, template: PopPKModel, **fields) -> PopPKModel:
        """A :class:`ml.pk.PopPKModel` with these values (other fields from ``template``)."""
        typical = self.typical()
        covariates = dict(template.covariates)
        covariates.update({k: float(v) for k, v in zip(EXPONENT_KEYS, self.beta[:, 1])})
        values = {
            "typical": {p: typical[p] for p in PARAMETERS}, "covariates": covariates,
            "iiv": {p: float(np.sqrt(w)) for p, w in zip(IIV_PARAMS, self.omega2)},
            "residual": {**template.residual, "proportional": float(self.b),
                         "additive": float(self.a)},
        }
        values.update(fields)
        return replace(template, **values)


def covariate_matrix(data: PopPKData, covariates: dict) -> np.ndarray:
    """Log covariates ``(n, 3)``, one column per IIV parameter (log of value / reference)."""
    lw = np.log(data.weight_kg / covariates["weight_ref_kg"])
    la = np.log(data.alc / covariates["alc_ref"])
    return np.column_stack([lw, lw, la])


def population_mean(beta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Mean of the individual log-parameters, ``(n, 3)``."""
    return beta[:, 0] + beta[:, 1] * x


def log_params(phi: np.ndarray, log_fixed: np.ndarray) -> np.ndarray:
    """Full log-parameter array ``(R, 6)`` in :data:`ml.pk.PARAMETERS` order from the
    individual ``phi = (log CL, log V1, log CLsat)`` ``(R, 3)`` and the fixed effects
    ``(log Q, log V2, log Km)`` (``(3,)`` or ``(R, 3)``)."""
    out = np.empty((phi.shape[0], len(PARAMETERS)))
    out[:, _IIV_POS] = phi
    out[:, _FIXED_POS] = log_fixed
    out[:, _VMAX] += out[:, _KM]
    return out


def stacked_fixed_shifts(phi: np.ndarray, log_fixed: np.ndarray, step: float) -> np.ndarray:
    """Log-parameters of the rows ``phi`` at ``log_fixed`` and at each fixed effect shifted by
    ``step``: ``(4 R, 6)`` (base first), for forward differences."""
    blocks = [log_params(phi, log_fixed)]
    for j in range(len(FIXED_PARAMS)):
        shifted = np.array(log_fixed, dtype=float)
        shifted[j] += step
        blocks.append(log_params(phi, shifted))
    return np.vstack(blocks)


class Predictor:
    """Model predictions at the sampling times of a data set, for many rows at once.

    A row is a patient with one set of parameters; ``rows`` says which patient (repeats allowed:
    chains, finite-difference copies, simulated replicates). All rows of one call share the
    integration grid, so finite differences taken within one call are smooth.
    """

    def __init__(self, data: PopPKData, phase_steps=FIT_STEPS, max_rows: int = 20000,
                 stiff_split: float = 2.5, max_stiffness: float = MAX_STIFFNESS):
        self.data = data
        self.phase_steps = phase_steps
        self.max_rows = max_rows
        self.stiff_split = stiff_split
        self.max_stiffness = max_stiffness
        self.t_end = float(data.times.max()) + 0.5
        self.n_calls = 0
        self._cache: dict[int, object] = {}

    def _infusions(self, rows: np.ndarray, k: int | None):
        if k is None:
            return replicate_infusions(self.data.infusions, rows)
        if k not in self._cache:
            self._cache[k] = replicate_infusions(self.data.infusions, rows)
        return self._cache[k]

    def __call__(self, logp: np.ndarray, rows: np.ndarray | None = None,
                 base: np.ndarray | None = None) -> np.ndarray:
        """Predictions ``(R, m)`` for log-parameters ``logp (R, 6)``.

        ``rows`` defaults to the patients tiled ``R / n`` times (0..n-1, 0..n-1, ...).
        Rows are integrated in groups: those with stiffness (see :func:`stiffness`) up to
        ``stiff_split`` (whose grid is then set by the step limits alone), then one group per
        doubling of stiffness; ``base`` maps each row to the row whose stiffness decides its
        group, so that the copies of a finite difference stay on their base row's grid. Rows
        stiffer than ``max_stiffness`` (1/day; outside the model's support, see
        :data:`MAX_STIFFNESS`) get NaN predictions: callers give them likelihood 0.
        """
        n = self.data.n
        k = None
        if rows is None:
            if logp.shape[0] % n:
                raise ValueError("without rows, the number of parameter rows must be a multiple of n")
            k = logp.shape[0] // n
            rows = np.tile(np.arange(n), k)
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size > self.max_rows:
            parts = [self(logp[s:s + self.max_rows], rows[s:s + self.max_rows])
                     for s in range(0, rows.size, self.max_rows)]
            return np.concatenate(parts)
        stiff = stiffness(logp)
        if base is not None:
            stiff = stiff[base]
        # group 0: grid set by the step limits alone; then one group per doubling of stiffness
        group = np.where(stiff <= self.stiff_split, 0,
                         np.ceil(np.log2(np.maximum(stiff, 1e-300) / self.stiff_split)))
        group = np.where(np.isfinite(stiff) & (stiff <= self.max_stiffness), group, -1)
        if (group == 0).all():
            return self._simulate(logp, rows, self._infusions(rows, k))
        out = np.full((rows.size, self.data.times.shape[1]), np.nan)
        for g in np.unique(group[group >= 0]):
            sel = group == g
            out[sel] = self._simulate(logp[sel], rows[sel], None)
        return out

    def _simulate(self, logp, rows, infusions):
        if infusions is None:
            infusions = replicate_infusions(self.data.infusions, rows)
        self.n_calls += 1
        return concentrations(np.exp(logp), infusions, self.data.times[rows],
                              self.phase_steps, self.t_end)

    def jacobian(self, phi: np.ndarray, log_fixed: np.ndarray, *, wrt_phi: bool = True,
                 wrt_fixed: bool = False, step: float = 1e-4,
                 rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Predictions and their forward-difference derivatives with respect to the individual
        ``phi`` and/or the fixed effects ``(log Q, log V2, log Km)``, in one call.

        Returns
        -------
        f : numpy.ndarray
            ``(R, m)``.
        jac : numpy.ndarray
            ``(R, m, k)``: the phi columns first, then the fixed effects.
        """
        r = phi.shape[0]
        stacked = [log_params(phi, log_fixed)]
        if wrt_phi:
            for j in range(phi.shape[1]):
                shifted = phi.copy()
                shifted[:, j] += step
                stacked.append(log_params(shifted, log_fixed))
        if wrt_fixed:
            stacked.append(stacked_fixed_shifts(phi, log_fixed, step)[r:])
        blocks = np.vstack(stacked)
        k = blocks.shape[0] // r - 1
        all_rows = np.tile(np.arange(self.data.n) if rows is None else np.asarray(rows), k + 1)
        f_all = self(blocks, all_rows, base=np.tile(np.arange(r), k + 1))
        f = f_all[:r]
        jac = np.stack([(f_all[(j + 1) * r:(j + 2) * r] - f) / step for j in range(k)], axis=-1)
        return f, jac


def stiffness(logp: np.ndarray) -> np.ndarray:
    """Largest rate of the linearised system, 1/day: ``(CL + Vmax/Km + Q)/V1 + Q/V2``.

    The RK4 step of :func:`ml.pk.simulate` is bounded by 2.5 / stiffness.
    """
    p = np.exp(logp)
    cl, v1, q, v2, vmax, km = (p[:, i] for i in range(6))
    return (cl + vmax / km + q) / v1 + q / v2


IIV_COLUMNS = _IIV_POS
FIXED_COLUMNS = _FIXED_POS
