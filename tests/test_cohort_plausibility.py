"""Plausibility rules of the cohort contract (ml/cohort/_rules.py, docs/cohort-format.md).

Each case is one silently accepted edit of issue 16 made to the hand-written factory cohort
(tests/cohort_factory.py); the expected message is written out, with the file line of the row.
"""

from __future__ import annotations

import os
import sys

import pandas as pd
import pytest

from ml.cohort import RULES, CohortValidationError, cohort_from_tables, load_cohort, validate_cohort

from cohort_factory import (
    ATG_DOSES as D,
)
from cohort_factory import (
    ATG_LEVELS as L,
)
from cohort_factory import (
    OUTCOMES as O,
)
from cohort_factory import (
    PATIENTS as P,
)
from cohort_factory import (
    add_column,
    append_line,
    make_cohort,
    set_cell,
)

CASES = [
    ("duplicated-dose-row", {"atg_doses.csv": append_line(D, "P02,-4,8,150,4")},
     "atg_doses: duplicate dose (same patient_id, day and start_hour), rows [7, 16] (2 rows)"),
    ("level-before-any-dose", {"atg_levels.csv": set_cell(L, 5, "day", "-6")},
     "atg_levels.day: before the patient's first ATG dose, with a concentration > 0, rows [5] (1 row)"),
    ("bloq-1-with-50", {"atg_levels.csv": set_cell(set_cell(L, 4, "concentration", "50"), 4, "bloq", "1")},
     "atg_levels.bloq: is 1 (below the limit of quantification) but concentration is > 0, rows [4] (1 row)"),
    ("level-repeated-at-10x", {"atg_levels.csv": append_line(L, "P01,7,31,0")},
     "atg_levels: duplicate level (same patient_id and day), rows [3, 20] (2 rows)"),
    ("followup-1e308", {"outcomes.csv": set_cell(O, 5, "last_followup_day", "1e308")},
     "outcomes.last_followup_day: must be <= 10957.5 days (30 years), rows [5] (1 row)"),
    ("infusion-1000-h", {"atg_doses.csv": set_cell(D, 3, "infusion_hours", "1000")},
     "atg_doses.infusion_hours: must be between 1 and 24 h, rows [3] (1 row)"),
    ("dose-on-day-10", {"atg_doses.csv": set_cell(D, 3, "day", "10")},
     "atg_doses.day: must be between -7 and 0 (ATG is given before the transplant), rows [3] (1 row)"),
    ("level-on-day-5000", {"atg_levels.csv": set_cell(L, 3, "day", "5000")},
     "atg_levels.day: must be <= 365 (days from transplant), rows [3] (1 row)"),
    ("arabic-indic-digits", {"patients.csv": set_cell(P, 3, "age_years", "\u0665\u0662")},
     "patients.age_years: non-ASCII characters in a number (e.g. '\u0665\u0662'); write digits 0-9, rows [3] (1 row)"),
    ("dose-1e308", {"atg_doses.csv": set_cell(D, 3, "dose_mg", "1e308")},
     "atg_doses.dose_mg: more than 50 mg/kg on one day (all infusions of the day, by patients.weight_kg), "
     "rows [3] (1 row)"),
    ("concentration-1e308", {"atg_levels.csv": set_cell(L, 3, "concentration", "1e308")},
     "atg_levels.concentration: must be <= 1000 (in concentration_unit), rows [3] (1 row)"),
]


@pytest.mark.parametrize("files, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_implausible_edit_is_refused_with_table_column_and_rows(tmp_path, files, expected):
    report = validate_cohort(make_cohort(tmp_path / "c", files))
    assert report.messages == [expected]


def test_auc_total_beside_levels_is_a_warning(tmp_path):
    report = validate_cohort(make_cohort(tmp_path / "c", {"patients.csv": add_column(P, "auc_total", "120")}))
    assert report.ok
    assert report.warning_messages == [
        "patients.auc_total: given for patients who also have ATG doses and levels (it is ignored: the AUC is "
        "computed from them), rows [2, 3, 4, 5, 6, ...] (6 rows)"]


def test_one_bad_cell_is_reported_once_by_its_own_rule(tmp_path):
    # a dose day that is not an integer also moves the first dose: only the integer rule speaks
    report = validate_cohort(make_cohort(tmp_path / "c", {"atg_doses.csv": set_cell(D, 6, "day", "-4.5")}))
    assert report.messages == ["atg_doses.day: not an integer (e.g. '-4.5'), rows [6] (1 row)"]


def test_every_plausibility_rule_says_whether_it_is_an_error_and_why():
    plaus = [r for r in RULES if r.reason]
    assert len(plaus) >= 14
    for r in plaus:
        assert r.reason.startswith("warning: " if r.warning else "error: "), r


def test_a_parquet_or_dataframe_boolean_is_not_read_as_a_number(tmp_path):
    folder = make_cohort(tmp_path / "c")
    frame = pd.read_csv(folder / "patients.csv")
    frame["age_years"] = frame["age_years"] > 40
    (folder / "patients.csv").unlink()
    frame.to_parquet(folder / "patients.parquet", index=False)
    expected = "patients.age_years: a true/false (boolean) column where a number is expected, rows [2, 3, 4, 5, 6, " \
               "...] (6 rows)"
    assert validate_cohort(folder).messages == [expected]
    cohort = load_cohort(make_cohort(tmp_path / "ok"))
    patients = cohort.patients.assign(age_years=cohort.patients["age_years"] > 40)
    with pytest.raises(CohortValidationError) as err:
        cohort_from_tables(cohort.meta, patients, cohort.doses, cohort.levels, cohort.outcomes)
    assert [v.message for v in err.value.violations] == [expected]
    # the 0/1 flags may be booleans
    levels = cohort.levels.assign(bloq=cohort.levels["bloq"] == 1)
    assert cohort_from_tables(cohort.meta, cohort.patients, cohort.doses, levels, cohort.outcomes).n == 6


@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and /dev/zero are POSIX")
def test_files_that_are_not_regular_files_are_refused_before_reading(tmp_path):
    fifo = make_cohort(tmp_path / "fifo")
    (fifo / "patients.csv").unlink()
    os.mkfifo(fifo / "patients.csv")  # reading it would block for ever
    assert validate_cohort(fifo).messages == [
        "patients: patients.csv: not a regular file: a FIFO (named pipe); refused before reading"]
    zero = make_cohort(tmp_path / "zero")
    (zero / "atg_levels.csv").unlink()
    os.symlink("/dev/zero", zero / "atg_levels.csv")  # reading it would exhaust memory
    assert validate_cohort(zero).messages == [
        "atg_levels: atg_levels.csv: not a regular file: a character device (a symbolic link to /dev/zero); "
        "refused before reading"]


def test_the_documentation_lists_every_plausibility_rule_with_its_reason():
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "cohort-format.md").read_text()
    for r in RULES:
        if r.reason:
            assert r.description.replace(" (e.g. {first})", "") in doc, r.description
            assert r.reason in doc, r.reason
