"""The log posterior of a batch of patients' random effects given their early levels.

Random effects are standardised, ``z_p = eta_p / omega_p`` (prior ``N(0, I)``), for the
parameters with between-patient variability in the population model (CL, V1, Vmax by default).
The residual model is the simulator's: ``obs = pred (1 + a e1) + b e2``, so
``sd = sqrt((a pred)^2 + b^2)``; a sample below the LLOQ contributes ``P(obs < LLOQ)``
(Beal's M3). Many points (patients x candidate random effects) are simulated in one vectorised
call of :func:`ml.dosing._ode.integrate` (4 h RK4 steps; concentrations at the level times within
0.3 % of :func:`ml.pk.simulate`, tested, far below the 20 % residual error), which is what makes the engine fast;
each patient's points share one integration grid, as finite differences need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.special import log_ndtr

from ml.pk import Infusions, PopPKModel

from ._ode import FIT_GRID, integrate
from ._patient import PatientData

__all__ = ["LevelLikelihood", "take_patients", "infusions_for_rows"]

_LOG_2PI = math.log(2.0 * math.pi)



def infusions_for_rows(patient: np.ndarray, start: np.ndarray, duration: np.ndarray, amount: np.ndarray,
                       rows_of: np.ndarray, n_rows: int) -> Infusions:
    """Replicate per-patient infusions onto simulation rows.

    Parameters
    ----------
    patient, start, duration, amount : numpy.ndarray
        Infusions of ``P`` patients (patient index, start day, duration days, active mg).
    rows_of : numpy.ndarray, shape (P, K)
        Simulation rows belonging to each patient.
    n_rows : int
    """
    k = rows_of.shape[1]
    rows = rows_of[patient]  # (I, K)
    return Infusions(patient=rows.ravel(), start=np.repeat(start, k), duration=np.repeat(duration, k),
                     amount=np.repeat(amount, k), n_patients=n_rows)


@dataclass(frozen=True)
class LevelLikelihood:
    """Levels, doses and covariates of ``P`` patients, ready for batched evaluation.

    Build with :meth:`build`. All arrays are per patient; levels are padded to a common
    length ``m`` with ``mask`` marking real ones.
    """

    model: PopPKModel
    names: tuple[str, ...]
    omega: np.ndarray
    weight: np.ndarray
    alc: np.ndarray
    inf_patient: np.ndarray
    inf_start: np.ndarray
    inf_duration: np.ndarray
    inf_amount: np.ndarray
    times: np.ndarray
    obs: np.ndarray
    bloq: np.ndarray
    mask: np.ndarray
    t_end: float

    @classmethod
    def build(cls, model: PopPKModel, patients: list[PatientData]) -> "LevelLikelihood":
        names = tuple(p for p, w in model.iiv.items() if w > 0)
        omega = np.array([model.iiv[p] for p in names], dtype=float)
        P = len(patients)
        m = max(1, max(len(p.levels) for p in patients))
        times = np.zeros((P, m))
        obs = np.zeros((P, m))
        bloq = np.zeros((P, m), dtype=bool)
        mask = np.zeros((P, m), dtype=bool)
        ip, st, du, am = [], [], [], []
        for i, p in enumerate(patients):
            day, conc, bl = p.level_arrays()
            k = day.size
            times[i, :k], obs[i, :k], bloq[i, :k], mask[i, :k] = day, np.nan_to_num(conc), bl, True
            times[i, k:] = p.first_dose_start
            for d in p.doses:
                ip.append(i)
                st.append(d.start)
                du.append(d.infusion_hours / 24.0)
                am.append(d.dose_mg * model.active_fraction)
        st_a, du_a = np.array(st), np.array(du)
        t_end = float(max(np.max(times), np.max(st_a + du_a)))
        return cls(model=model, names=names, omega=omega,
                   weight=np.array([p.weight_kg for p in patients]), alc=np.array([p.alc for p in patients]),
                   inf_patient=np.array(ip, dtype=np.int64), inf_start=st_a, inf_duration=du_a,
                   inf_amount=np.array(am), times=times, obs=obs, bloq=bloq, mask=mask, t_end=t_end)

    @property
    def n_patients(self) -> int:
        return self.weight.size

    @property
    def dim(self) -> int:
        return len(self.names)

    def eta(self, z: np.ndarray) -> dict[str, np.ndarray]:
        """Random effects (log scale) from standardised ``z`` of shape ``(..., d)``."""
        return {name: z[..., j] * self.omega[j] for j, name in enumerate(self.names)}

    def predict(self, z: np.ndarray, patients: np.ndarray | None = None) -> np.ndarray:
        """Model concentrations at the level times for candidate ``z`` of shape ``(P', K, d)``.

        Parameters
        ----------
        z : numpy.ndarray, shape (P', K, d)
            ``K`` candidate standardised random effects per patient.
        patients : numpy.ndarray of int, optional
            Which patients (default all, ``P' = P``).

        Returns
        -------
        numpy.ndarray, shape (P', K, m)
            Predicted concentrations (UE/mL).
        """
        idx = np.arange(self.n_patients) if patients is None else np.asarray(patients)
        Pp, K, _ = z.shape
        n = Pp * K
        rows_of = np.arange(n).reshape(Pp, K)
        pidx = np.repeat(idx, K)
        params = self.model.individual(self.weight[pidx], self.alc[pidx], self.eta(z.reshape(n, -1)))
        local = np.full(self.n_patients, -1)
        local[idx] = np.arange(Pp)
        sel = local[self.inf_patient] >= 0
        inf = infusions_for_rows(local[self.inf_patient[sel]], self.inf_start[sel], self.inf_duration[sel],
                                 self.inf_amount[sel], rows_of, n)
        times = self.times[pidx]
        _, conc = integrate(params, inf, float(self.inf_start.min()), self.t_end, grid=FIT_GRID, group=pidx,
                            record=times, dosing_until=self.t_end)
        return conc.reshape(Pp, K, -1)

    def log_likelihood(self, pred: np.ndarray, patients: np.ndarray | None = None) -> np.ndarray:
        """Log-likelihood of each patient's levels under predictions ``(P', K, m)`` -> ``(P', K)``."""
        idx = np.arange(self.n_patients) if patients is None else np.asarray(patients)
        r = self.model.residual
        sd = np.sqrt((r["proportional"] * pred) ** 2 + r["additive"] ** 2)
        obs, bloq, mask = self.obs[idx][:, None, :], self.bloq[idx][:, None, :], self.mask[idx][:, None, :]
        quantified = -0.5 * ((obs - pred) / sd) ** 2 - np.log(sd) - 0.5 * _LOG_2PI
        below = log_ndtr((r["lloq"] - pred) / sd)
        ll = np.where(bloq, below, quantified)
        return np.where(mask, ll, 0.0).sum(axis=-1)

    def neg_log_posterior(self, z: np.ndarray, patients: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``-log p(z | levels)`` up to a constant, ``(P', K)``, and the predictions ``(P', K, m)``."""
        pred = self.predict(z, patients)
        return 0.5 * np.sum(z * z, axis=-1) - self.log_likelihood(pred, patients), pred

    def standardised_residuals(self, pred: np.ndarray) -> np.ndarray:
        """Residuals ``(obs - pred) / sd`` for quantified levels, ``(LLOQ - pred) / sd`` for BLOQ.

        ``pred`` is ``(P, m)``; padding entries are NaN.
        """
        r = self.model.residual
        sd = np.sqrt((r["proportional"] * pred) ** 2 + r["additive"] ** 2)
        res = np.where(self.bloq, (r["lloq"] - pred) / sd, (self.obs - pred) / sd)
        return np.where(self.mask, res, np.nan)


def take_patients(lik: LevelLikelihood, patients: list[int]) -> LevelLikelihood:
    """The same likelihood restricted to some patients (re-indexed in the given order)."""
    idx = np.asarray(patients, dtype=np.int64)
    position = np.full(lik.n_patients, -1)
    position[idx] = np.arange(idx.size)
    keep = position[lik.inf_patient] >= 0
    return replace(lik, weight=lik.weight[idx], alc=lik.alc[idx], inf_patient=position[lik.inf_patient[keep]],
                   inf_start=lik.inf_start[keep], inf_duration=lik.inf_duration[keep],
                   inf_amount=lik.inf_amount[keep], times=lik.times[idx], obs=lik.obs[idx], bloq=lik.bloq[idx],
                   mask=lik.mask[idx])
