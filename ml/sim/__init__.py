"""Virtual transplant cohorts with a known true exposure window (``default_scenarios.toml``).

Everything produced here is simulated and says so (``cohort.meta.simulated``).
"""

from ._config import EFFECTS, SIDES, Scenario, SimulationConfig
from ._outcomes import TIME_TO_EVENT, OutcomeModel, exposure_hazard_ratio, weibull_from_incidence
from ._simulate import VirtualCohort, simulate_cohort, simulate_virtual

__all__ = [
    "EFFECTS", "OutcomeModel", "SIDES", "Scenario", "SimulationConfig", "TIME_TO_EVENT", "VirtualCohort",
    "exposure_hazard_ratio", "simulate_cohort", "simulate_virtual", "weibull_from_incidence",
]
