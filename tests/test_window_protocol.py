"""Protocol windows: a published window entered before any outcome exists, with its source, promoted
through its own gates and labelled as protocol-derived wherever it appears."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ml.cli import main
from ml.window import PRESETS, ExposureWindow, PromotionGates, promote_window, protocol_window


def _haplo(**over):
    values = {k: v for k, v in PRESETS["haplo-2022"].items()}
    values.update(over)
    return protocol_window(entered_by="dr. x", **values)


def test_the_published_haplo_window_carries_its_source():
    w = _haplo()
    assert (w.lower, w.upper, w.unit) == (100.0, 148.5, "UE*day/mL")  # PMID 35314377, docs/sources.md
    assert w.search_kind == "protocol" and w.finding == "window" and w.status == "candidate"
    assert w.protocol["pmid"] == "35314377" and w.protocol["entered_by"] == "dr. x"
    assert w.provenance.startswith("PROTOCOL window from Transplant Cell Ther 2022;28(6):332.e1 (PMID 35314377")
    assert ExposureWindow.from_json(w.to_json()) == w


@pytest.mark.parametrize("over, message", [
    (dict(upper=None), "a protocol window needs both bounds"),
    (dict(pmid=""), "`protocol` must name its source: missing or empty ['pmid']"),
    (dict(lower=150.0), "`lower < upper` must hold"),
])
def test_a_protocol_window_without_its_bounds_or_source_is_refused(over, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _haplo(**over)


def test_promotion_checks_the_source_and_records_who_and_why():
    v = promote_window(_haplo(), PromotionGates(), by="pi", reason="registered protocol")
    assert v.status == "validated" and v.promotion_reason == "registered protocol"
    assert "published source named (publication 'Transplant Cell Ther 2022;28(6):332.e1', PMID '35314377')" \
        in v.gates_passed
    forged = _haplo().to_dict()
    forged["protocol"]["unit"] = "AU*day/mL"
    with pytest.raises(ValueError, match="`protocol.unit` \\('AU\\*day/mL'\\) must be the window's unit"):
        ExposureWindow.from_dict(forged)


def test_a_derived_window_cannot_pose_as_a_protocol_one():
    data = _haplo().to_dict()
    data["protocol"] = None
    with pytest.raises(ValueError, match="a protocol window \\(search_kind 'protocol'\\) must carry its `protocol`"):
        ExposureWindow.from_dict(data)


def test_the_command_writes_it_and_promote_validates_it(tmp_path):
    out = tmp_path / "w" / "haplo.json"
    r = CliRunner().invoke(main, ["protocol-window", "--preset", "haplo-2022", "--by", "dr. x", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "PROTOCOL window from Transplant Cell Ther 2022" in r.output
    assert json.loads(out.read_text())["search_kind"] == "protocol"
    valid = tmp_path / "valid.json"
    r = CliRunner().invoke(main, ["promote", str(out), "--by", "pi", "--reason", "protocol", "--out", str(valid)])
    assert r.exit_code == 0, r.output
    assert "PROTOCOL window" in r.output and ExposureWindow.from_json(valid).status == "validated"
    r = CliRunner().invoke(main, ["protocol-window", "--lower", "100", "--by", "x", "--out", str(tmp_path / "x.json")])
    assert r.exit_code == 2 and "give --upper, --unit, --publication, --pmid, --population, --assay" in r.output


def test_every_recommendation_says_the_window_is_protocol_derived():
    from ml.dosing import DosingEngine, WindowRecord, patients_from_cohort
    from ml.sim import simulate_cohort

    validated = promote_window(_haplo(), PromotionGates(), by="pi", reason="protocol")
    target = validated.with_origin(source="haplo.json")
    assert WindowRecord.of(target).protocol.startswith("Transplant Cell Ther 2022;28(6):332.e1 (PMID 35314377")
    patients, _ = patients_from_cohort(simulate_cohort("urd", n=3, seed=5), decision_time=-3 + 8 / 24)
    rec = DosingEngine().recommend(patients[0], target)
    assert any(c.startswith("PROTOCOL window, taken from Transplant Cell Ther 2022") for c in rec.caveats)
    assert WindowRecord.from_dict(rec.to_dict()["window"]).protocol == rec.window.protocol
    assert rec.window.source == "haplo.json"
