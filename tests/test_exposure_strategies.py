"""Exposure strategies (``ml.pk.MAPExposure``, ``ml.pk.NCAExposure``): no silent loss, counted
exclusions, and the informative-missingness check of NCA.

References
----------
* An all-below-LLOQ patient: Beal's M3 likelihood (Beal 2001, J Pharmacokinet Pharmacodyn
  28:481) makes ``P(obs < LLOQ)`` the contribution of each such level, so the posterior mode
  moves towards lower concentrations than the typical patient's: the MAP AUC must lie below the
  AUC of the same patient at eta = 0 (the prior mode), computed directly with
  ``ml.pk.model_exposure``.
* The informative-missingness test is scipy's two-sided Mann-Whitney U; the lost patients are
  made the low-exposure ones by construction (their late levels below the LLOQ), so the test
  must find them different.
"""

from dataclasses import replace

import numpy as np
import pytest

from ml.cohort import cohort_from_tables
from ml.pk import (
    MAPExposure,
    NCAExposure,
    PopPKModel,
    exposure_missingness,
    exposure_strategy,
    infusions_from_doses,
    model_exposure,
)
from ml.sim import simulate_virtual


@pytest.fixture(scope="module")
def virtual():
    return simulate_virtual("urd", n=120, seed=7)


def _with_levels(c, levels, doses=None):
    return cohort_from_tables(c.meta, c.patients, c.doses if doses is None else doses,
                              levels.reset_index(drop=True), c.outcomes)


def test_every_patient_with_a_dose_and_a_level_gets_a_map_auc_even_with_only_bloq_levels(virtual):
    c = virtual.cohort
    ids = c.patients["patient_id"].astype(str)
    bloq_only, no_level, no_dose = ids.iloc[0], ids.iloc[1], ids.iloc[2]
    lv = c.levels.copy()
    mine = lv["patient_id"].astype(str) == bloq_only
    lv.loc[mine, "bloq"] = 1
    lv.loc[mine, "concentration"] = np.nan
    lv = lv[lv["patient_id"].astype(str) != no_level]
    doses = c.doses[c.doses["patient_id"].astype(str) != no_dose]
    cut = _with_levels(c, lv, doses)

    table = MAPExposure().table(cut)
    status = dict(zip(table["patient_id"], table["status"]))
    assert status[bloq_only] == "ok" and status[no_level] == "no_level" and status[no_dose] == "no_dose"
    total = table.set_index("patient_id")["auc_total"]
    assert np.isfinite(total.drop([no_level, no_dose])).all() and total[[no_level, no_dose]].isna().all()
    assert table.attrs["exclusions"] == {"no_dose": 1, "no_level": 1, "no_terminal_slope": 0}

    # M3: all levels below the LLOQ pull the curve below the typical patient's (eta = 0)
    model = PopPKModel.default()
    p = cut.patients.set_index(cut.patients["patient_id"].astype(str)).loc[[bloq_only]]
    typical = model.individual(p["weight_kg"].to_numpy(float), p["alc_pre_atg"].to_numpy(float))
    inf = infusions_from_doses(cut.doses[cut.doses["patient_id"].astype(str) == bloq_only], [bloq_only],
                               model.active_fraction)
    assert total[bloq_only] < model_exposure(typical, inf).auc_total[0]

    # NCA cannot estimate that patient; the counts say why for everyone
    nca = NCAExposure().table(cut)
    assert nca.set_index("patient_id").loc[bloq_only, "status"] == "no_terminal_slope"
    miss = exposure_missingness(cut, nca)
    assert miss.excluded["no_dose"] == 1 and miss.excluded["no_level"] == 1
    assert miss.excluded["no_terminal_slope"] >= 1
    assert miss.n_with_auc + miss.n_excluded == miss.n_patients == len(ids)
    assert any("without an ATG dose" in w for w in miss.warnings)


def test_nca_losses_are_compared_and_flagged_as_informative(virtual):
    c = virtual.cohort
    truth = virtual.truth.set_index(virtual.truth["patient_id"].astype(str))["auc_total"]
    low = truth[truth <= truth.quantile(0.15)].index
    lv = c.levels.copy()
    late = lv["patient_id"].astype(str).isin(low) & (lv["day"] > 3)
    lv.loc[late, "bloq"] = 1
    lv.loc[late, "concentration"] = np.nan
    cut = _with_levels(c, lv)

    nca = NCAExposure().table(cut)
    lost = set(nca.loc[nca["status"] == "no_terminal_slope", "patient_id"])
    assert lost and lost <= set(low)
    miss = exposure_missingness(cut, nca)
    (warning,) = [w for w in miss.warnings if w.startswith("NCA left")]
    assert "informative" in warning and "Mann-Whitney" in warning
    peak = miss.comparison["peak_level"]
    assert peak["median_without_auc"] < peak["median_with_auc"] and peak["mann_whitney_p"] < 0.05
    # MAP keeps all of them
    assert MAPExposure().table(cut)["auc_total"].notna().all()


def test_the_cli_counts_exclusions_and_warns_about_nca_losses(virtual, tmp_path):
    from click.testing import CliRunner

    from ml.cli import main
    from ml.cohort import write_cohort

    c = virtual.cohort
    first = str(c.patients["patient_id"].iloc[0])
    lv = c.levels.copy()
    mine = lv["patient_id"].astype(str) == first
    lv.loc[mine, "bloq"] = 1
    lv.loc[mine, "concentration"] = np.nan
    folder = write_cohort(_with_levels(c, lv), tmp_path / "c")
    res = CliRunner().invoke(main, ["exposure", str(folder), "--exposure-method", "nca"])
    assert res.exit_code == 0, res.output
    assert "terminal slope not estimable" in res.output and "informative" in res.output
    res = CliRunner().invoke(main, ["exposure", str(folder)])  # default: MAP with M3
    assert res.exit_code == 0, res.output
    assert f"{len(c.patients)} with an AUC, 0 excluded" in res.output and "M3" in res.output


def test_strategy_names_map_to_objects_once():
    assert isinstance(exposure_strategy("map"), MAPExposure) and isinstance(exposure_strategy("nca"), NCAExposure)
    with pytest.raises(ValueError, match="one of"):
        exposure_strategy("trapezoid")
    with pytest.raises(ValueError, match="only applies"):
        exposure_strategy("nca", PopPKModel.default())
    m = PopPKModel.default().with_typical(CL=0.7)
    s = MAPExposure(m, source="fit.toml")
    assert s.pk_model == {"name": m.name, "digest": m.digest, "source": "fit.toml"}
    assert m.digest[:12] in s.definition and "fit.toml" in s.definition
    assert MAPExposure().pk_model["source"] == "shipped" and NCAExposure().pk_model is None


def test_model_digest_is_content_only_and_survives_a_file_round_trip(tmp_path):
    m = PopPKModel.default()
    assert replace(m, name="other", source="x", status="fitted").digest == m.digest
    assert m.with_typical(CL=m.typical["CL"] * 1.01).digest != m.digest
    for suffix in (".toml", ".json"):
        from ml.poppk import write_model

        path = write_model(replace(m, extra={"fit": {"n": 3.0}}), tmp_path / f"m{suffix}")
        assert PopPKModel.from_file(path).digest == m.digest


def test_a_map_search_that_stops_early_keeps_its_auc_and_is_counted(virtual, monkeypatch):
    import ml.pk._exposure as exposure_module
    from ml.pk import fit_map

    c = virtual.cohort
    calls = []

    def one_step(lik, **kwargs):  # every search stops after one Newton step, the retry too
        calls.append(kwargs.get("max_iter"))
        return fit_map(lik, max_iter=1)

    monkeypatch.setattr(exposure_module, "fit_map", one_step)
    table = MAPExposure().table(c)
    assert calls == [None, 200]  # the first search, then a longer one for those that did not converge
    stopped = table["status"] == "not_converged"
    assert stopped.any() and table.loc[stopped, "auc_total"].notna().all()
    miss = exposure_missingness(c, table)
    assert miss.n_not_converged == int(stopped.sum()) and miss.n_excluded == 0
    assert any("iteration limit" in w for w in miss.warnings)
