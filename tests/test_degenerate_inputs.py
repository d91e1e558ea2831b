"""Batch isolation, bounded work and degenerate cohorts (issue 16).

* one extreme patient in a batch becomes one refusal; the others get the doses they get alone;
* caps that would need more candidate regimens than ``ml.dosing.MAX_REGIMENS`` are refused before
  anything is allocated (the count is (daily doses)^(adjustable days), computed here by hand);
* cohorts with no events, one patient, or every level below the LLOQ get a message at the step
  that cannot proceed, never a traceback.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from click.testing import CliRunner

from ml.cli import main
from ml.cohort import cohort_from_tables, write_cohort
from ml.dosing import MAX_REGIMENS, DoseCaps, DosingEngine, DosingRefused, LaplaceImportance, PatientData
from ml.models import tune_xgb_survival
from ml.sim import simulate_cohort

from test_dosing_support import exposure_window, virtual_patients, write_window


def test_one_extreme_patient_is_one_refusal_and_the_others_are_unchanged():
    patients, _ = virtual_patients(4, seed=1)
    window = exposure_window()
    engine = DosingEngine(posterior=LaplaceImportance(16), random_state=0)
    # each patient recommended alone: what the isolation redoes (a batch's joint fit can stop at a
    # slightly different optimum, enough to flip a dose that sits at a vial boundary)
    clean = [engine.recommend_many([PatientData.from_dict(p)], window)[0] for p in patients]
    bad = copy.deepcopy(patients)
    bad[1]["doses"][0]["dose_mg"] = 1e300  # breaks the joint MAP fit of the whole batch (LinAlgError)
    out = engine.recommend_many([PatientData.from_dict(p) for p in bad], window)
    assert isinstance(out[1], DosingRefused)
    assert str(out[1]).startswith(f"patient {patients[1]['patient_id']!r} refused: the forecast failed for this "
                                  "patient (")
    for i in (0, 2, 3):  # integer seed: each patient's draws depend on its id only
        assert [d.mg for d in out[i].doses] == [d.mg for d in clean[i].doses]
        assert out[i].forecast.median == pytest.approx(clean[i].forecast.median, rel=1e-9)


def test_caps_needing_too_many_regimens_are_refused_before_allocating():
    caps = DoseCaps(mg_per_kg_per_day=1000, mg_per_day=100_000)
    n = (100_000 // 25 + 1) ** 2  # 4001 daily doses on each of two days
    assert caps.n_regimens(250, 2) == n > MAX_REGIMENS
    with pytest.raises(DosingRefused, match=f"i.e. {n:,} candidate regimens, more than the {MAX_REGIMENS:,}"):
        caps.grid(250, 2)
    assert DoseCaps().n_regimens(250, 2) == 21 ** 2  # the default caps: 0..500 mg in 25 mg vials


def test_the_cli_refuses_huge_caps_at_once(tmp_path):
    w = write_window(tmp_path / "w.json")
    patients, _ = virtual_patients(1, seed=4)
    p = tmp_path / "p.json"
    p.write_text(json.dumps(patients[0]))
    res = CliRunner().invoke(main, ["dose", "--window", w, "--patient", str(p), "--cap-mg-per-kg", "1000",
                                    "--cap-mg", "100000"])
    assert res.exit_code == 1 and "Error: engine configuration: the caps allow 4001 daily doses" in res.output
    assert "Traceback" not in res.output


def test_tuning_without_events_says_so_before_optuna():
    X = np.random.default_rng(0).normal(size=(30, 2))
    y = np.array([(False, 100.0 + i) for i in range(30)], dtype=[("event", bool), ("time", "f8")])
    with pytest.raises(ValueError, match=r"too few events to tune a survival model: 0 event\(s\) among 30 patient"):
        tune_xgb_survival(X, y, n_trials=2)


@pytest.fixture(scope="module")
def degenerate(tmp_path_factory):
    root = tmp_path_factory.mktemp("degenerate")
    c = simulate_cohort(scenario="urd", n=40, seed=3)
    days = [col for col in c.outcomes if col.endswith("_day") and col != "last_followup_day"]
    noev = c.outcomes.assign(**{col: np.nan for col in days}, cmv_persistent=np.nan)
    write_cohort(_with(c, outcomes=noev), root / "noev")
    first = c.patients["patient_id"].iloc[0]
    one = {k: getattr(c, k)[getattr(c, k)["patient_id"] == first] for k in ("patients", "doses", "levels", "outcomes")}
    write_cohort(_with(c, **one), root / "one")
    write_cohort(_with(c, levels=c.levels.assign(concentration=np.nan, bloq=1)), root / "bloq")
    return root


def _with(cohort, **tables):
    """The cohort with some tables replaced, validated again by the contract."""
    t = {k: tables.get(k, getattr(cohort, k)) for k in ("patients", "doses", "levels", "outcomes")}
    return cohort_from_tables(cohort.meta, t["patients"], t["doses"], t["levels"], t["outcomes"])


@pytest.mark.parametrize("name,message", [
    ("noev", "Error: no window search possible: too few events on the floor side: 0 events of 'agvhd2|cgvhd'"),
    ("one", "Error: no window search possible: exposure is constant"),
    ("bloq", None),  # every level BLOQ: exposures come from the doses under the model; a result, not a crash
])
def test_discover_on_degenerate_cohorts_gives_a_message_not_a_traceback(degenerate, tmp_path, name, message):
    res = CliRunner().invoke(main, ["discover", str(degenerate / name), "--out", str(tmp_path / "w.json"),
                                    "--permutations", "49", "--bootstraps", "0"])
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit), res.output
    assert "Traceback" not in res.output
    if message is None:
        assert res.exit_code == 0, res.output
    else:
        assert res.exit_code == 1 and message in res.output, res.output
