"""WindowStatus replaces the status literals and changes nothing a user sees: comparisons with the
old strings, str(), f-strings, repr in messages and the JSON of a window are what they were."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ml.window import STATUSES, ExposureWindow, WindowStatus

from test_window_artefact import make

ROOT = Path(__file__).resolve().parents[1]


def test_members_are_the_old_strings():
    assert [str(s) for s in WindowStatus] == ["candidate", "validated", "no-window"]
    assert WindowStatus.NO_WINDOW == "no-window" and "validated" == WindowStatus.VALIDATED
    assert WindowStatus("candidate") is WindowStatus.CANDIDATE
    assert f"{WindowStatus.NO_WINDOW} / {WindowStatus.NO_WINDOW!r}" == "no-window / 'no-window'"
    assert json.dumps({"status": WindowStatus.VALIDATED}) == '{"status": "validated"}'
    assert STATUSES == ("candidate", "validated", "no-window") and str(STATUSES) == str(tuple(STATUSES))


def test_a_window_stores_the_enum_and_writes_the_same_json():
    w = make()
    assert w.status is WindowStatus.CANDIDATE
    d = w.to_dict()
    assert json.loads(json.dumps(d))["status"] == "candidate"
    back = ExposureWindow.from_dict(json.loads(json.dumps(d)))
    assert back == w and back.status is WindowStatus.CANDIDATE


def test_an_unknown_status_is_refused_with_the_old_message():
    with pytest.raises(ValueError, match=re.escape("`status` must be one of ('candidate', 'validated', "
                                                   "'no-window'), got 'maybe'")):
        make(status="maybe")


def test_no_status_literal_is_compared_in_the_package():
    literal = re.compile(r"""status["')\]]*\s*(==|!=|=|: str =)\s*["'](no-window|candidate|validated)["']""")
    found = [f"{p.relative_to(ROOT)}:{i}" for p in sorted((ROOT / "ml").rglob("*.py"))
             for i, line in enumerate(p.read_text().splitlines(), 1) if literal.search(line)]
    assert not found, f"use ml.window.WindowStatus instead of the literal: {found}"
