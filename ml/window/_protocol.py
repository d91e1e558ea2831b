"""Prespecified windows: taken from a publication before any outcome exists, or a virtual world's truth.

The URD trial's individualised arm doses against the published haploidentical window (total
active-ATG AUC 100-148.5 UE*day/mL; docs/sources.md) before any URD outcome exists. Such a window
was not derived by this system: it carries its published source and who entered it, goes through
the same promotion (with its own gates and a recorded reason), and says it is protocol-derived
wherever it appears (``ExposureWindow.provenance``).
"""

from __future__ import annotations

from datetime import datetime, timezone

from ml._status import WindowStatus
from ml.window._artefact import ExposureWindow, Population

__all__ = ["PRESETS", "protocol_window", "true_window"]

#: Published windows a protocol can name (docs/sources.md).
PRESETS = {
    "haplo-2022": {
        "lower": 100.0, "upper": 148.5, "unit": "UE*day/mL",
        "publication": "Transplant Cell Ther 2022;28(6):332.e1",
        "pmid": "35314377",
        "population": "106 adults, first myeloablative haploidentical PBSCT, Thymoglobulin 10 mg/kg over days -5..-2",
        "assay": "active ATG, UE/mL",
        "donor_source": "haplo", "conditioning": "MAC", "n": 106,
    },
}


def protocol_window(*, lower: float, upper: float, unit: str, publication: str, pmid: str, population: str,
                    assay: str, entered_by: str, donor_source: str = "mixed", conditioning: str = "mixed",
                    n: int = 1, exposure: str = "auc_total", exposure_definition: str | None = None,
                    target: float | None = None, version: str | None = None) -> ExposureWindow:
    """A ``candidate`` window taken from a publication (``search_kind="protocol"``).

    Parameters
    ----------
    lower, upper : float
        The published window [lower, upper), in ``unit`` (e.g. UE*day/mL). Both are required: a
        window is safe to dose only with both bounds.
    unit : str
        Exposure unit as published; the dosing engine refuses a window in another unit.
    publication, pmid, population, assay : str
        The source: citation, PubMed id, the population it was derived on, the assay.
    entered_by : str
        Who entered it (recorded).
    donor_source, conditioning : str
        Of the published population.
    n : int
        Patients of the published population.
    exposure, exposure_definition : str
        The exposure the bounds refer to.
    target : float, optional
        Best exposure inside (default: the midpoint).
    version : str, optional
        Code version (default: this package's).

    Returns
    -------
    ExposureWindow

    Raises
    ------
    ValueError
        When a bound is missing or the source is incomplete (the artefact's own checks).
    """
    from ml.window._export import code_version

    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    source = {"publication": publication, "pmid": str(pmid), "population": population, "assay": assay,
              "unit": unit, "entered_by": entered_by, "entered_at": now}
    if lower is None or upper is None:
        raise ValueError("a protocol window needs both bounds (lower and upper): a window is safe to dose only "
                         "with both")
    return ExposureWindow(
        exposure=exposure,
        exposure_definition=exposure_definition or f"total active-ATG AUC as defined in {publication}",
        unit=unit,
        population=Population(donor_source=donor_source, conditioning=conditioning, n=int(n), events=0),
        endpoint="prespecified (protocol)",
        horizon_days=None,
        lower=float(lower),
        upper=float(upper),
        target=float(target if target is not None else (lower + upper) / 2),
        lower_ci=None,
        upper_ci=None,
        ci_method="none (published window, no data of this system behind it)",
        p_value=None,
        p_value_method="none (prespecified protocol window; no search)",
        statistic=0.0,
        dataset_digest=f"protocol:PMID{pmid}",
        simulated=False,
        code_version=version or code_version(),
        finding="window",
        search_kind="protocol",
        protocol=source,
    )


def true_window(*, lower: float, upper: float, unit: str, world: str, target: float | None = None,
                n: int = 1, version: str | None = None) -> ExposureWindow:
    """A virtual world's known true window, as a ``validated`` artefact (``search_kind="truth"``).

    What an in-silico trial or a benchmark doses into when it scores the engine against the truth
    of a simulated world (``ml.sim``): nothing was estimated, so there are no intervals and no
    p-value, and the window is marked SIMULATED.

    Parameters
    ----------
    lower, upper : float
        The world's true window [lower, upper), in ``unit`` (e.g. UE*day/mL).
    unit : str
        Exposure unit of the world's cohort.
    world : str
        The simulated world (scenario name), recorded as the window's population and digest.
    target : float, optional
        Best exposure inside (default: the midpoint).
    n : int
        Patients of the virtual population (recorded only; 1 when none is meant).
    version : str, optional
        Code version (default: this package's).

    Returns
    -------
    ExposureWindow
    """
    from ml.window._export import code_version

    return ExposureWindow(
        exposure="auc_total", exposure_definition="total active-ATG AUC (the simulator's true exposure)", unit=unit,
        population=Population(donor_source=f"virtual ({world})", conditioning="simulated", n=int(n), events=0),
        endpoint="known (simulated truth)", horizon_days=None, lower=float(lower), upper=float(upper),
        target=float(target if target is not None else (lower + upper) / 2), lower_ci=None, upper_ci=None,
        ci_method="none (the simulator's truth: nothing estimated)",
        p_value=None, p_value_method="none (the simulator's truth: no search)", statistic=0.0,
        dataset_digest=f"truth:{world}", simulated=True, code_version=version or code_version(),
        status=WindowStatus.VALIDATED, finding="window", search_kind="truth",
        gates_passed=("the simulator's true window: known, not estimated",),
        promoted_by="ml.sim", promotion_reason=f"true window of the virtual world {world!r}")
