"""Suite-wide setting: the centre's window-signing key (ml/window/_integrity.py) is a test key.

Validated windows written by the tests are signed with it (tests/test_dosing_support.py), as a
centre's promotions are; tests of unsigned or forged windows remove or change it explicitly.
"""

from __future__ import annotations

import pytest

TEST_SIGNING_KEY = "atgwin-test-signing-key (not a secret)"


@pytest.fixture(autouse=True)
def _signing_key(monkeypatch):
    monkeypatch.setenv("ATGWIN_SIGNING_KEY", TEST_SIGNING_KEY)
    monkeypatch.delenv("ATGWIN_SIGNING_KEY_FILE", raising=False)
