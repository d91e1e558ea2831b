"""Outcome model of virtual patients: cause-specific Weibull hazards with an exposure window.

Each endpoint has a Weibull baseline ``H0(t) = (t/scale)^shape`` fixed by two published-style
facts for the reference patient (in window, CMV-R+, 10/10 matched, CR1, not ALL, age <= 35):
the cumulative incidence ``p`` by the horizon ``h`` and the median onset ``m`` among those with
the event by then, with death competing (:mod:`ml.sim._calibrate`). Without competing risks
this has a closed form (:func:`weibull_from_incidence`, the starting point of the solver)::

    (h/scale)^shape = -log(1 - p),  (m/scale)^shape = -log(1 - p/2)

A patient's hazard is ``HR_exposure(AUC) * HR_covariates * h0(t)`` (proportional hazards), so a
latent time is ``scale * (E / HR)^(1/shape)`` with ``E ~ Exp(1)``. Death (non-relapse, or after
relapse) and censoring compete with every event, as in the cohort format.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._config import Scenario

TIME_TO_EVENT = ("cmv", "ebv", "agvhd2", "cgvhd", "relapse", "nrm")


def weibull_from_incidence(incidence: float, horizon_day: float, median_onset_day: float) -> tuple[float, float]:
    """Weibull (shape, scale in days) with ``incidence`` by ``horizon_day`` and that median onset.

    Raises
    ------
    ValueError
        Unless ``0 < incidence < 1`` and ``0 < median_onset_day < horizon_day``.
    """
    if not 0 < incidence < 1:
        raise ValueError(f"incidence must lie in (0, 1), got {incidence}")
    if not 0 < median_onset_day < horizon_day:
        raise ValueError(
            f"`0 < median_onset_day < horizon_day` must hold, got {median_onset_day}, {horizon_day}")
    h_total, h_half = -np.log1p(-incidence), -np.log1p(-incidence / 2)
    shape = np.log(h_total / h_half) / np.log(horizon_day / median_onset_day)
    scale = horizon_day / h_total ** (1.0 / shape)
    return float(shape), float(scale)


def exposure_hazard_ratio(auc: np.ndarray, scenario: Scenario, hr_lo: float, hr_hi: float) -> np.ndarray:
    """Hazard ratio of exposure ``auc`` (UE*day/mL) relative to the window [lower, upper).

    The outcome's ``hr_lo`` (floor side) and ``hr_hi`` (ceiling side) first pass through
    :meth:`Scenario.side_hazard_ratios` (1 for a side without effect, ``** effect_scale``).
    ``step``: ``hr_lo`` below ``lower``, ``hr_hi`` at or above ``upper``, 1 inside (in an
    overlapping scenario, ``upper <= auc < lower``, both: ``hr_lo * hr_hi``). ``hinge``: the
    log-hazard ratio grows linearly with the distance below ``lower`` (above ``upper``),
    reaching ``log(hr_lo)`` (``log(hr_hi)``) ``hinge_width`` away; the two add up where both
    apply. ``none``: 1.
    """
    auc = np.asarray(auc, dtype=float)
    lo, hi = scenario.lower, scenario.upper
    if scenario.effect == "none":
        return np.ones_like(auc)
    hr_lo, hr_hi = scenario.side_hazard_ratios(hr_lo, hr_hi)
    if scenario.effect == "step":
        # for lower < upper at most one factor differs from 1: exactly the single-window step
        return np.where(auc < lo, hr_lo, 1.0) * np.where(auc >= hi, hr_hi, 1.0)
    w = scenario.hinge_width
    below, above = np.maximum(lo - auc, 0.0) / w, np.maximum(auc - hi, 0.0) / w
    return np.exp(np.log(hr_lo) * below + np.log(hr_hi) * above)


@dataclass(frozen=True)
class OutcomeModel:
    """Samples the ``outcomes`` table of virtual patients given their true exposure.

    Parameters
    ----------
    outcomes : dict
        ``[outcomes]`` section of the simulator configuration.
    follow_up : dict
        ``[follow_up]`` section (censoring, post-relapse mortality).
    engraftment : dict
        ``[engraftment]`` section.
    scenario : Scenario
        The exposure effect and true window.
    """

    outcomes: dict
    follow_up: dict
    engraftment: dict
    scenario: Scenario

    def baseline(self, endpoint: str) -> tuple[float, float]:
        """Weibull (shape, scale in days) of an endpoint's reference patient.

        Calibrated to the reference cumulative incidence with death competing
        (:func:`ml.sim._calibrate.calibrate_baselines`), computed once per model.
        """
        if "_baselines" not in self.__dict__:
            from ._calibrate import calibrate_baselines

            object.__setattr__(self, "_baselines",
                               calibrate_baselines(self.outcomes, self.follow_up, TIME_TO_EVENT))
        return self.__dict__["_baselines"][endpoint]

    def hazard_ratios(self, patients: pd.DataFrame, auc_total: np.ndarray) -> dict[str, np.ndarray]:
        """Hazard ratio of every patient for every time-to-event endpoint (exposure x covariates)."""
        o, s = self.outcomes, self.scenario
        hr = {e: exposure_hazard_ratio(auc_total, s, o[e]["hr_lo"], o[e]["hr_hi"]) for e in TIME_TO_EVENT}
        sero = (patients["cmv_recipient"] + "/" + patients["cmv_donor"]).to_numpy()
        hr["cmv"] = hr["cmv"] * np.array([o["cmv"]["serostatus"].get(x, 1.0) for x in sero])
        g = o["agvhd2"]
        hr["agvhd2"] = hr["agvhd2"] * np.where(patients["hla_mismatches"].to_numpy() == 1, g["hla_mismatch_1"], 1.0)
        hr["agvhd2"] = hr["agvhd2"] * np.where(patients["donor_type"].to_numpy() == "haplo", g["haplo"], 1.0)
        r = o["relapse"]
        hr["relapse"] = hr["relapse"] * np.where(patients["disease_status"].to_numpy() == "CR2", r["cr2"], 1.0)
        hr["relapse"] = hr["relapse"] * np.where(patients["diagnosis"].to_numpy() == "ALL", r["all"], 1.0)
        years_over = np.maximum(patients["age_years"].to_numpy(float) - 35.0, 0.0)
        hr["nrm"] = hr["nrm"] * o["nrm"]["per_year_over_35"] ** years_over
        return hr

    def net_risk(self, endpoint: str, patients: pd.DataFrame, auc_total: np.ndarray, day: float) -> np.ndarray:
        """Probability of the event by ``day`` if nothing competed, ``1 - exp(-HR H0(day))``."""
        shape, scale = self.baseline(endpoint)
        hr = self.hazard_ratios(patients, auc_total)[endpoint]
        return -np.expm1(-hr * (day / scale) ** shape)

    def _sub_event_probability(self, name: str, auc_total: np.ndarray) -> np.ndarray:
        o = self.outcomes[name]
        parent = self.outcomes[o["parent"]]
        ratio = exposure_hazard_ratio(auc_total, self.scenario, o["hr_lo"], o["hr_hi"]) / \
            exposure_hazard_ratio(auc_total, self.scenario, parent["hr_lo"], parent["hr_hi"])
        return np.minimum(1.0, o["incidence"] / parent["incidence"] * ratio)

    def sample(self, patients: pd.DataFrame, auc_total: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        """Draw the outcomes table (event days as whole days after transplant; empty = no event).

        Parameters
        ----------
        patients : pandas.DataFrame
            Contract ``patients`` columns.
        auc_total : numpy.ndarray
            True (noiseless) total AUC of each patient, UE*day/mL.
        rng : numpy.random.Generator
        """
        n = len(patients)
        hr = self.hazard_ratios(patients, auc_total)
        latent = {}
        for e in TIME_TO_EVENT:
            shape, scale = self.baseline(e)
            latent[e] = scale * (rng.exponential(size=n) / hr[e]) ** (1.0 / shape)
        f = self.follow_up
        relapse_first = latent["relapse"] < latent["nrm"]
        after_relapse = rng.exponential(f["post_relapse_death_median_day"] / np.log(2.0), size=n)
        death = np.where(relapse_first, latent["relapse"] + after_relapse, latent["nrm"])
        admin = rng.uniform(f["administrative_min_day"], f["administrative_max_day"], size=n)
        lost = rng.uniform(size=n) < f["lost_fraction"]
        censor = np.where(lost, rng.uniform(1.0, admin), admin)
        end = np.minimum(death, censor)
        died = death <= censor

        def day_of(t):
            return np.where(t < end, np.ceil(t), np.nan)

        cmv = day_of(latent["cmv"])
        persistent = (rng.uniform(size=n) < self._sub_event_probability("cmv_persistent", auc_total)) & ~np.isnan(cmv)
        agvhd2 = day_of(latent["agvhd2"])
        grade3 = rng.uniform(size=n) < self._sub_event_probability("agvhd3", auc_total)
        t3 = latent["agvhd2"] + rng.exponential(self.outcomes["agvhd3"]["progression_mean_days"], size=n)
        agvhd3 = np.where(grade3 & ~np.isnan(agvhd2), day_of(t3), np.nan)
        eg = self.engraftment
        neut = np.maximum(np.round(rng.normal(eg["neutrophil_mean"], eg["neutrophil_sd"], size=n)), 7.0)
        plt = np.maximum(np.round(rng.normal(eg["platelet_mean"], eg["platelet_sd"], size=n)), 7.0)
        last = np.ceil(end)
        return pd.DataFrame({
            "patient_id": patients["patient_id"].to_numpy(),
            "last_followup_day": last,
            "death_day": np.where(died, last, np.nan),
            "relapse_day": day_of(np.where(relapse_first, latent["relapse"], np.inf)),
            "cmv_day": cmv,
            "cmv_persistent": persistent.astype(int),
            "ebv_day": day_of(latent["ebv"]),
            "agvhd2_day": agvhd2,
            "agvhd3_day": agvhd3,
            "cgvhd_day": day_of(latent["cgvhd"]),
            "neutrophil_day": np.where(neut < last, neut, np.nan),
            "platelet_day": np.where(plt < last, plt, np.nan),
        })
