"""Dosing uses the population PK model that defined the window's exposure.

A window names its model (``pk_model``: name, content digest, source); a window file's model file
is found relative to it, the shipped model by ``"shipped"``; ``--model`` overrides, and any model
other than the window's is a warning in every recommendation (the registry path is tested end to
end in tests/test_run_pipeline.py).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ml.cli import main
from ml.dosing import DosingEngine, DosingRefused, LaplaceImportance, PatientData, load_window
from ml.dosing._window import window_pk_model
from ml.pk import PopPKModel

from test_dosing_support import exposure_window, virtual_patients

FITTED = PopPKModel.default().with_typical(CL=0.62, V1=4.3)


def _record(model, source):
    return {"name": model.name, "digest": model.digest, "source": source}


def _window(folder, pk_model=None, model: PopPKModel | None = FITTED):
    folder.mkdir(parents=True, exist_ok=True)
    if model is not None:
        model.to_toml(folder / "pk_model.toml")
    w = exposure_window(pk_model=pk_model)
    w.to_json(folder / "window.json")
    return folder / "window.json"


def _patients(tmp_path, n=2):
    patients, _ = virtual_patients(n, seed=4)
    p = tmp_path / "patients.json"
    p.write_text(json.dumps(patients))
    return p, patients


def _dose(*args):
    return CliRunner().invoke(main, ["dose", *map(str, args), "--draws", "16"])


def test_a_window_file_brings_its_model_and_model_overrides_with_a_warning(tmp_path):
    w = _window(tmp_path / "run", _record(FITTED, "pk_model.toml"))
    p, _ = _patients(tmp_path)
    res = _dose("--window", w, "--patient", p, "--out", tmp_path / "a.json")
    assert res.exit_code == 0, res.output
    assert f"population PK model: {FITTED.name} (digest {FITTED.digest[:12]}), the window's (pk_model.toml)" in res.output
    recs = json.loads((tmp_path / "a.json").read_text())["recommendations"]
    assert all(r["window"]["pk_model"]["digest"] == FITTED.digest for r in recs)
    assert not any("mismatch" in x for r in recs for x in r["warnings"])

    other = tmp_path / "other.toml"
    PopPKModel.default().to_toml(other)
    res = _dose("--window", w, "--patient", p, "--model", other, "--out", tmp_path / "b.json")
    assert res.exit_code == 0, res.output
    recs = json.loads((tmp_path / "b.json").read_text())["recommendations"]
    assert len(recs) == 2
    for r in recs:
        (warning,) = [x for x in r["warnings"] if "mismatch" in x]
        assert FITTED.digest[:12] in warning and PopPKModel.default().digest[:12] in warning
    # every recommendation carries it (above); the console says it once, with the number of patients
    assert res.output.count("population PK model mismatch") == 1 and "warning (2 patients: " in res.output


def test_a_missing_or_changed_model_file_is_refused_not_replaced(tmp_path):
    p, _ = _patients(tmp_path, 1)
    missing = _window(tmp_path / "missing", _record(FITTED, "pk_model.toml"), model=None)
    res = _dose("--window", missing, "--patient", p)
    assert res.exit_code == 1 and "the file is not found" in res.output and "--model" in res.output
    changed = _window(tmp_path / "changed", _record(FITTED, "pk_model.toml"), model=PopPKModel.default())
    res = _dose("--window", changed, "--patient", p)
    assert res.exit_code == 1 and "it was changed" in res.output
    other = tmp_path / "m.toml"
    FITTED.to_toml(other)
    res = _dose("--window", missing, "--patient", p, "--model", other)  # --model decides: same digest, no warning
    assert res.exit_code == 0, res.output and "mismatch" not in res.output


def test_shipped_and_unnamed_models(tmp_path):
    shipped = load_window(_window(tmp_path / "s", _record(PopPKModel.default(), "shipped"), model=None))
    assert window_pk_model(shipped).digest == PopPKModel.default().digest
    unnamed = load_window(_window(tmp_path / "u", None, model=None))
    assert unnamed.pk_model is None and window_pk_model(unnamed) is None


def test_the_engine_warns_in_every_recommendation_and_notes_an_unnamed_model(tmp_path):
    _, raw = _patients(tmp_path, 2)
    patients = [PatientData.from_dict(r) for r in raw]
    engine = DosingEngine(posterior=LaplaceImportance(16))
    named = load_window(_window(tmp_path / "n", _record(FITTED, "pk_model.toml")))
    recs = engine.recommend_many(patients, named)
    assert all(any("population PK model mismatch" in x for x in r.warnings) for r in recs)
    same = DosingEngine(model=FITTED, posterior=LaplaceImportance(16)).recommend_many(patients, named)
    assert not any("mismatch" in x for r in same for x in r.warnings)
    unnamed = load_window(_window(tmp_path / "u2", None, model=None))
    rec = engine.recommend(patients[0], unnamed)
    assert any("does not name the population PK model" in c for c in rec.caveats)


def test_a_malformed_pk_model_record_is_refused(tmp_path):
    path = _window(tmp_path / "bad", None, model=None)
    data = json.loads(path.read_text())
    data["pk_model"] = {"name": "x"}
    path.write_text(json.dumps(data))
    with pytest.raises(DosingRefused):
        load_window(path)
