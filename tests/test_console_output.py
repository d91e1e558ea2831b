"""Readable console output: repeated warnings summarised, numbers rounded, headers that keep their word."""

from __future__ import annotations

from types import SimpleNamespace

from ml.cli._discover import _print_incidences
from ml.cli._dose import _warning_summary
from ml.window import Incidence


def _rec(pid, *warnings):
    return SimpleNamespace(patient_id=pid, warnings=warnings)


def test_repeated_dose_warnings_become_one_line_with_the_count():
    same = "the window names another population PK model"
    recs = [_rec(f"P{i:03d}", same) for i in range(316)] + [_rec("P900")]
    lines = _warning_summary(recs)
    assert lines == [f"warning (316 patients: P000, P001, P002 and 313 more): {same}"]


def test_warnings_differing_only_in_numbers_are_one_kind_and_a_single_one_keeps_its_patient():
    recs = [_rec("A", "posterior approximation unreliable: effective sample size 12 of 256 draws"),
            _rec("B", "posterior approximation unreliable: effective sample size 9 of 256 draws"),
            _rec("C", "the MAP search did not converge: treat the forecast with caution")]
    lines = _warning_summary(recs)
    assert lines == [
        "warning (2 patients: A, B; numbers differ, e.g. A): posterior approximation unreliable: effective "
        "sample size 12 of 256 draws",
        "warning: C: the MAP search did not converge: treat the forecast with caution"]


def test_the_incidence_table_prints_the_interval_its_header_promises(capsys):
    rows = [Incidence("cmv", g, 180.0, n, e, inc, lo, hi, p) for g, n, e, inc, lo, hi, p in (
        ("below", 40, 10, 0.25, 0.131, 0.389, 0.0213), ("inside", 200, 30, 0.15, 0.104, 0.2034, None),
        ("above", 84, 40, 0.4762, 0.37, 0.58, 1.23e-5), ("outside", 124, 50, 0.40, 0.31, 0.49, 0.00049))]
    _print_incidences(rows)
    out = capsys.readouterr().out
    assert "% [95% CI]" in out and "not adjusted" in out
    line = next(line for line in out.splitlines() if line.strip().startswith("cmv"))
    assert "25.0 [13.1-38.9] n=40 p=0.0213" in line and "15.0 [10.4-20.3] n=200" in line
    assert "47.6 [37.0-58.0] n=84 p=1.2e-05" in line
