"""The log posterior of a batch of patients' random effects given their early levels.

Random effects are standardised, ``z_p = eta_p / omega_p`` (prior ``N(0, I)``), for the
parameters with between-patient variability in the population model (CL, V1, Vmax by default).
The residual model is the simulator's: ``obs = pred (1 + a e1) + b e2``, so
``sd = sqrt((a pred)^2 + b^2)``; a sample below the LLOQ contributes ``P(obs < LLOQ)``
(Beal's M3). Many points (patients x candidate random effects) are simulated in one vectorised
call of :func:`ml.pk._integrator.integrate` (4 h RK4 steps; concentrations at the level times within
0.3 % of :func:`ml.pk.simulate`, tested, far below the 20 % residual error), which is what makes the engine fast;
each patient's points share one integration grid, as finite differences need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.special import log_ndtr

from ._integrator import FIT_GRID, integrate
from ._params import PopPKModel
from ._regimen import HOURS_PER_DAY, Infusions

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
    def build(cls, model: PopPKModel, patients: list) -> "LevelLikelihood":
        """From patient records (e.g. :class:`ml.dosing.PatientData`).

        Parameters
        ----------
        model : PopPKModel
        patients : list
            Objects with ``weight_kg`` (kg), ``alc`` (x10^9/L), ``doses`` (items with ``start``,
            days from transplant, ``infusion_hours`` and ``dose_mg``, total ATG mg) and
            ``level_arrays() -> (day, concentration UE/mL or NaN, bloq)``.
        """
        ip, st, hours, mg, lp, lt, lc, lb = [], [], [], [], [], [], [], []
        for i, p in enumerate(patients):
            day, conc, bl = p.level_arrays()
            lp += [i] * day.size
            lt += list(day)
            lc += list(conc)
            lb += list(bl)
            for d in p.doses:
                ip.append(i)
                st.append(d.start)
                hours.append(d.infusion_hours)
                mg.append(d.dose_mg)
        return cls.from_arrays(model, [p.weight_kg for p in patients], [p.alc for p in patients],
                               doses=(ip, st, hours, mg), levels=(lp, lt, lc, lb))

    @classmethod
    def from_cohort(cls, model: PopPKModel, cohort, patient_ids=None) -> "LevelLikelihood":
        """Patients of a validated :class:`ml.cohort.Cohort` with all their doses and levels.

        Parameters
        ----------
        model : PopPKModel
        cohort : ml.cohort.Cohort
        patient_ids : sequence of str, optional
            Which patients, in this order (default: all, in ``cohort.patients`` order). Each
            needs at least one ATG dose. A missing infusion start hour is 08:00 as in the
            cohort format.
        """
        all_ids = cohort.patients["patient_id"].astype(str)
        ids = all_ids if patient_ids is None else pd.Series([str(i) for i in patient_ids])
        index = pd.Series(np.arange(len(ids)), index=ids.to_numpy())
        rows = pd.Series(np.arange(len(all_ids)), index=all_ids.to_numpy())[ids.to_numpy()].to_numpy()
        patients = cohort.patients.iloc[rows]
        d, lv = cohort.doses, cohort.levels
        d = d[d["patient_id"].astype(str).isin(index.index)]
        lv = lv[lv["patient_id"].astype(str).isin(index.index)]
        start = d["day"].to_numpy(float) + d["start_hour"].fillna(8.0).to_numpy(float) / HOURS_PER_DAY
        conc = np.where(lv["bloq"].to_numpy(int) == 1, np.nan, lv["concentration"].to_numpy(float))
        return cls.from_arrays(
            model, patients["weight_kg"].to_numpy(float), patients["alc_pre_atg"].to_numpy(float),
            doses=(index[d["patient_id"].astype(str)].to_numpy(), start, d["infusion_hours"].to_numpy(float),
                   d["dose_mg"].to_numpy(float)),
            levels=(index[lv["patient_id"].astype(str)].to_numpy(), lv["day"].to_numpy(float), conc,
                    np.isnan(conc)))

    @classmethod
    def from_arrays(cls, model: PopPKModel, weight, alc, *, doses: tuple, levels: tuple) -> "LevelLikelihood":
        """From flat arrays.

        Parameters
        ----------
        model : PopPKModel
        weight, alc : array-like, shape (P,)
            Body weight (kg) and lymphocyte count before ATG (x10^9/L) of each patient.
        doses : tuple of array-like
            ``(patient index, start day, infusion hours, total ATG mg)``, one entry per infusion;
            every patient needs at least one.
        levels : tuple of array-like
            ``(patient index, day, concentration UE/mL (NaN when below LLOQ), bloq)``.
        """
        names = tuple(p for p, w in model.iiv.items() if w > 0)
        omega = np.array([model.iiv[p] for p in names], dtype=float)
        weight, alc = np.asarray(weight, dtype=float), np.asarray(alc, dtype=float)
        P = weight.size
        ip, st, hours, mg = (np.asarray(a) for a in doses)
        ip = ip.astype(np.int64)
        st, du = st.astype(float), hours.astype(float) / HOURS_PER_DAY
        if np.setdiff1d(np.arange(P), ip).size:
            raise ValueError(f"patients {np.setdiff1d(np.arange(P), ip)[:10].tolist()} have no ATG dose")
        lp, lt, lc, lb = (np.asarray(a) for a in levels)
        lp = lp.astype(np.int64)
        order = np.lexsort((lt, lp))
        lp, lt, lc, lb = lp[order], lt[order].astype(float), lc[order].astype(float), lb[order].astype(bool)
        counts = np.bincount(lp, minlength=P)
        m = max(1, int(counts.max(initial=0)))
        slot = np.arange(lp.size) - np.repeat(np.cumsum(counts) - counts, counts)
        first = np.full(P, np.inf)
        np.minimum.at(first, ip, st)
        times = np.repeat(first[:, None], m, axis=1)
        obs = np.zeros((P, m))
        bloq = np.zeros((P, m), dtype=bool)
        mask = np.zeros((P, m), dtype=bool)
        times[lp, slot], obs[lp, slot], bloq[lp, slot], mask[lp, slot] = lt, np.nan_to_num(lc), lb, True
        t_end = float(max(np.max(times), np.max(st + du)))
        return cls(model=model, names=names, omega=omega, weight=weight, alc=alc, inf_patient=ip, inf_start=st,
                   inf_duration=du, inf_amount=np.asarray(mg, dtype=float) * model.active_fraction, times=times,
                   obs=obs, bloq=bloq, mask=mask, t_end=t_end)

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
