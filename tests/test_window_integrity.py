"""Forged windows are not dosed (ml/window/_integrity.py, ml/dosing/_window.py, ml/window/_promotion.py).

Each forgery of issue 16 is made by hand-editing a window the way a user would (the JSON file, or
the registered artefact on disk under the MLflow store); the reference for the signature is the
standard library's HMAC-SHA256 (:mod:`hmac`, RFC 2104), recomputed here independently.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from click.testing import CliRunner
from conftest import TEST_SIGNING_KEY

from ml.cli import main
from ml.dosing import DosingRefused, load_window
from ml.dosing._window import check_status
from ml.window import (
    IntegrityError,
    PromotionError,
    PromotionGates,
    SigningKey,
    promote_window,
    verify_window,
)

from test_dosing_support import exposure_window, virtual_patients
from test_tracking_registry import PK, candidate_window

KEY = SigningKey(TEST_SIGNING_KEY.encode())


def _edit(tmp_path, name, edit, status="validated"):
    data = exposure_window(status=status).to_dict()
    edit(data)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


FORGERIES = [  # (name, edit, fields the refusal must name)
    ("widened", lambda d: d.update(lower=10.0, upper=1000.0), ["lower", "upper"]),
    ("p", lambda d: d.update(p_value=0.9), ["p_value"]),
    ("events", lambda d: d["population"].update(events=5), ["population.events"]),
    ("simulated", lambda d: d.update(simulated=False), ["simulated"]),
]


@pytest.mark.parametrize("name,edit,changed", FORGERIES, ids=[f[0] for f in FORGERIES])
def test_an_edited_validated_window_is_refused_naming_what_changed(tmp_path, name, edit, changed):
    path = _edit(tmp_path, name, edit)
    with pytest.raises(DosingRefused) as err:
        load_window(path)
    assert f"fails its integrity check: content changed since it was signed: {', '.join(changed)};" in str(err.value)


def test_the_signature_is_hmac_sha256_of_the_record():
    data = exposure_window().to_dict()
    rec = data["integrity"]
    signed = {k: rec[k] for k in ("algorithm", "digest", "fields", "key_id")}
    payload = json.dumps(signed, sort_keys=True, separators=(",", ":")).encode()
    assert rec["signature"] == hmac.new(TEST_SIGNING_KEY.encode(), payload, hashlib.sha256).hexdigest()
    assert rec["key_id"] == hashlib.sha256(TEST_SIGNING_KEY.encode()).hexdigest()[:12]
    assert verify_window(data, KEY) == "signed"
    assert load_window_dict(data).origin.integrity == "signed"


def load_window_dict(data):
    from ml.dosing._window import window_from_dict

    return window_from_dict(data, "(test)")


def test_an_edited_record_or_another_key_is_refused():
    data = exposure_window().to_dict()
    data["integrity"]["fields"]["lower"] = "0" * 16  # hide the edit of a field in the record itself
    with pytest.raises(IntegrityError, match="the integrity record was edited"):
        verify_window(data, KEY)
    other = SigningKey(b"another centre's key, 32 bytes!!")
    with pytest.raises(IntegrityError, match="signed with another key"):
        verify_window(exposure_window().to_dict(), other)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        SigningKey(b"short")
    assert "secret" not in repr(KEY) and TEST_SIGNING_KEY not in repr(KEY)


def test_a_status_edited_to_validated_is_unsigned_and_needs_the_override(tmp_path):
    def forge(d):
        d.update(status="validated", gates_passed=["forged"], promoted_by="me", promotion_reason="because")

    window = load_window(_edit(tmp_path, "status", forge, status="candidate"))
    assert window.status == "validated" and window.origin.integrity == "unsigned"
    with pytest.raises(DosingRefused, match="says 'validated' but its content cannot be checked"):
        check_status(window, None)


def test_without_a_key_here_a_signed_window_is_unsigned(tmp_path, monkeypatch):
    path = _edit(tmp_path, "ok", lambda d: None)
    monkeypatch.delenv("ATGWIN_SIGNING_KEY")
    assert load_window(path).origin.integrity == "unsigned"
    monkeypatch.setenv("ATGWIN_SIGNING_KEY_FILE", str(tmp_path / "missing.key"))
    with pytest.raises(DosingRefused, match="cannot read the signing key file"):
        load_window(path)


def test_the_cli_doses_an_unsigned_validated_window_only_under_the_override(tmp_path, monkeypatch):
    monkeypatch.delenv("ATGWIN_SIGNING_KEY")
    w = tmp_path / "w.json"
    w.write_text(json.dumps(exposure_window().to_dict()))  # signed, but no key here to check it
    patients, _ = virtual_patients(1, seed=4)
    p = tmp_path / "p.json"
    p.write_text(json.dumps(patients[0]))
    out = tmp_path / "rec.json"
    args = ["dose", "--window", str(w), "--patient", str(p), "--draws", "16"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1 and "content cannot be checked" in res.output and " mg (" not in res.output
    res = CliRunner().invoke(main, [*args, "--override-by", "Dr A", "--override-reason", "key not yet deployed",
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    rec = json.loads(out.read_text())["recommendations"][0]
    assert rec["window"]["integrity"] == "unsigned"
    assert any("(unsigned: its content could not be checked) used under an override by Dr A" in c
               for c in rec["caveats"])


def test_the_cli_refuses_a_forged_window_even_under_an_override(tmp_path):
    w = _edit(tmp_path, "wide", lambda d: d.update(lower=10.0, upper=1000.0))
    res = CliRunner().invoke(main, ["dose", "--window", str(w), "--patient", str(w), "--draws", "16",
                                    "--override-by", "Dr A", "--override-reason", "x"])
    assert res.exit_code == 1
    assert "fails its integrity check: content changed since it was signed: lower, upper" in res.output


def test_promotion_signs_and_refuses_a_window_whose_run_did_not_finish():
    cand = exposure_window(status="candidate", mlflow_run_id="r1")
    gates = PromotionGates(max_ci_width=50)
    with pytest.raises(PromotionError) as err:
        promote_window(cand, gates, by="Dr A", reason="x", key=KEY, run_status=lambda run_id: "FAILED")
    assert err.value.failed == ["run r1 finished (its status is FAILED)"]
    with pytest.raises(PromotionError, match="run r1 finished \\(cannot look it up: no such run"):
        promote_window(cand, gates, by="Dr A", reason="x", run_status=_no_such_run)
    with pytest.raises(PromotionError, match="no tracking store given"):
        promote_window(cand, gates, by="Dr A", reason="x")
    done = promote_window(cand, gates, by="Dr A", reason="x", key=KEY, run_status=lambda run_id: "FINISHED")
    assert "run r1 finished (its status is FINISHED)" in done.gates_passed
    assert verify_window(done.to_dict(), KEY) == "signed"
    assert promote_window(exposure_window(status="candidate"), gates, by="A", reason="x").integrity is None


def _no_such_run(run_id):
    raise RuntimeError(f"no such run {run_id}")


# --- the registry is the source of truth: a registered artefact edited on disk is refused -----------

@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from ml.tracking import RunTracker, register_window

    root = tmp_path_factory.mktemp("integrity-registry")
    uri = f"sqlite:///{root}/mlflow.db"
    tracker = RunTracker(uri)
    run_id = tracker.start_run("integrity-test", "ok")
    candidate_window(run_id).to_json(root / "window.json")
    PK.to_toml(root / "pk_model.toml")
    registered = register_window(tracker, run_id, root / "window.json", "atg-ok")
    tracker.end_run(run_id, "FINISHED")
    failed = tracker.start_run("integrity-test", "failed")  # e.g. the disk filled up after the window was written
    tracker.end_run(failed, "FAILED")
    return {"uri": uri, "root": root, "ok": registered.run_id, "failed": failed}


def test_an_edited_registered_artefact_is_refused(store):
    from ml.tracking import load_registered_window

    uri = "models:/atg-ok@candidate"
    assert load_registered_window(uri, tracking_uri=store["uri"]).status == "candidate"
    stored = [p for p in store["root"].rglob("window.json") if "artifacts" in p.parts or "mlartifacts" in str(p)]
    stored = [p for p in stored if json.loads(p.read_text()).get("mlflow_run_id") == store["ok"]]
    assert stored, "the registered artefact is on disk under the store"
    for path in stored:
        data = json.loads(path.read_text())
        data.update(status="validated", gates_passed=["forged"], promoted_by="me", promotion_reason="because")
        path.write_text(json.dumps(data))
    with pytest.raises(DosingRefused,
                       match="fails its integrity check: .*the window artefact in the store is not the one registered"):
        load_registered_window(uri, tracking_uri=store["uri"])
    res = CliRunner().invoke(main, ["promote", uri, "--by", "A", "--reason", "x"],
                             env={"MLFLOW_TRACKING_URI": store["uri"]})
    assert res.exit_code == 1 and "not the one registered" in res.output


def test_promoting_a_window_file_checks_its_run_in_the_store(store, tmp_path):
    path = tmp_path / "window.json"
    candidate_window(store["failed"]).to_json(path)
    args = ["promote", str(path), "--by", "A", "--reason", "x", "--max-ci-width", "50"]
    res = CliRunner().invoke(main, args, env={"MLFLOW_TRACKING_URI": store["uri"]})
    assert res.exit_code == 1, res.output
    assert "1 gate(s) failed" in res.output and f"FAILED: run {store['failed']} finished (its status is FAILED)" \
        in res.output
    missing = f"sqlite:///{tmp_path}/none.db"
    res = CliRunner().invoke(main, args, env={"MLFLOW_TRACKING_URI": missing})
    assert res.exit_code == 1 and f"cannot look it up: no tracking store at {missing}" in res.output, res.output
    assert not (tmp_path / "none.db").exists()
    candidate_window(store["ok"]).to_json(path)
    out = tmp_path / "validated.json"
    res = CliRunner().invoke(main, [*args, "--out", str(out)], env={"MLFLOW_TRACKING_URI": store["uri"]})
    assert res.exit_code == 0, res.output
    assert "signed with key" in res.output and verify_window(json.loads(out.read_text()), KEY) == "signed"
