"""Malformed cohorts are refused as a whole, each with the exact message expected.

Every case starts from the valid factory cohort (tests/cohort_factory.py, whose docstring
gives the line numbers), breaks one thing, and lists EVERY violation line the loader must
report, in order. Row numbers are file lines (header = 1).
"""

from __future__ import annotations

import numpy as np
import pytest

from ml.cohort import CohortValidationError, Violation, load_cohort, validate_cohort

from cohort_factory import (
    ATG_DOSES as D,
)
from cohort_factory import (
    ATG_LEVELS as L,
)
from cohort_factory import (
    COHORT_TOML as T,
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
    drop_column,
    drop_line,
    make_cohort,
    rename_column,
    set_cell,
)

_LATIN1 = set_cell(P, 7, "diagnosis", "lymphomé").encode("latin-1")
_LATIN1_AT = _LATIN1.index(b"\xe9")  # where the first non-UTF-8 byte is

CASES = [
    # --- files ------------------------------------------------------------------------------
    ("missing-toml", {"cohort.toml": None}, ["cohort.toml: file missing"]),
    ("missing-patients", {"patients.csv": None}, ["patients: file missing"]),
    ("missing-outcomes", {"outcomes.csv": None}, ["outcomes: file missing"]),
    ("missing-levels", {"atg_levels.csv": None}, ["atg_levels: file missing"]),
    ("missing-doses", {"atg_doses.csv": None}, ["atg_doses: file missing"]),
    ("csv-and-parquet", {"patients.parquet": b"PAR1"},
     ["patients: both patients.csv and patients.parquet present"]),
    ("header-only", {"outcomes.csv": O.splitlines()[0] + "\n"}, ["outcomes: no data rows"]),
    ("empty-file", {"atg_levels.csv": ""}, ["atg_levels: empty file (no header)"]),
    ("corrupt-parquet", {"atg_levels.csv": None, "atg_levels.parquet": b"PAR1\x15\x04garbagePAR1"},
     ["atg_levels: unreadable (not a valid Parquet file)"]),
    ("binary-csv", {"outcomes.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"},
     ["outcomes: unreadable (binary data, not CSV text)"]),
    ("latin1-csv", {"patients.csv": _LATIN1},
     [f"patients: unreadable (not UTF-8 text: byte 0xe9 at offset {_LATIN1_AT})"]),
    ("semicolons", {"patients.csv": P.replace(",", ";")},
     ["patients: not comma-separated (';' in the header)"]),
    ("ragged-row", {"atg_doses.csv": D.replace("P01,-4,8,175,4", "P01,-4,8,175,4,extra")},
     ["atg_doses: wrong number of fields (header has 5), rows [3] (1 row)"]),
    ("bad-quoting", {"atg_doses.csv": D.replace("P01,-4,", '"P01"x,-4,')},
     ["atg_doses: unreadable (malformed CSV: ',' expected after '\"')"]),
    # --- cohort.toml ------------------------------------------------------------------------
    ("unknown-unit", {"cohort.toml": T.replace('"UE/mL"', '"mg"')},
     ["cohort.toml.concentration_unit: unknown unit 'mg' (known: UE/mL, AU/mL, ug/mL)"]),
    ("unit-wrong-case", {"cohort.toml": T.replace('"UE/mL"', '"ue/ml"')},
     ["cohort.toml.concentration_unit: unknown unit 'ue/ml' (known: UE/mL, AU/mL, ug/mL)"]),
    ("empty-unit", {"cohort.toml": T.replace('"UE/mL"', '""')},
     ["cohort.toml.concentration_unit: must be a non-empty string such as 'UE/mL', got ''"]),
    ("missing-key", {"cohort.toml": T.replace("simulated = false\n", "")},
     ["cohort.toml.simulated: key missing"]),
    ("bad-donor-source", {"cohort.toml": T.replace('"URD"', '"unrelated"')},
     ["cohort.toml.donor_source: must be one of URD, haplo, MSD, mixed, got 'unrelated'"]),
    ("simulated-not-bool", {"cohort.toml": T.replace("false", '"yes"')},
     ["cohort.toml.simulated: must be true or false, got 'yes'"]),
    ("empty-name", {"cohort.toml": T.replace('"factory"', '"  "')},
     ["cohort.toml.name: must be a non-empty string, got '  '"]),
    ("truth-not-simulated", {"cohort.toml": T + "\n[truth]\nlower = 100\nupper = 148.5\n"},
     ["cohort.toml.truth: only allowed when simulated = true"]),
    ("truth-bounds", {"cohort.toml": T.replace("false", "true")
                      + "\n[truth]\nlower = 150.0\nupper = 100.0\n"},
     ["cohort.toml.truth: lower < upper must hold, got lower=150.0, upper=100.0"]),
    # --- columns ----------------------------------------------------------------------------
    ("missing-column", {"patients.csv": drop_column(P, "weight_kg")},
     ["patients.weight_kg: column missing"]),
    ("upper-case-column", {"outcomes.csv": rename_column(O, "patient_id", "Patient_ID")},
     ["outcomes.patient_id: column missing (found 'Patient_ID'; names are lower-case)"]),
    ("duplicate-column", {"patients.csv": add_column(P, "sex", "M")},
     ["patients: duplicate column 'sex'"]),
    ("unnamed-column", {"patients.csv": add_column(P, "", "x")},
     ["patients: empty column name (column 13)"]),
    # --- patients ---------------------------------------------------------------------------
    ("duplicate-id", {"patients.csv": append_line(P, "P06,URD,30,F,64,AML,CR1,MAC,0,neg,neg,0.2")},
     ["patients.patient_id: duplicate patient_id, rows [7, 8] (2 rows)"]),
    ("empty-id", {"patients.csv": append_line(P, " ,URD,30,F,64,AML,CR1,MAC,0,neg,neg,0.2")},
     ["patients.patient_id: missing value, rows [8] (1 row)"]),
    ("non-numeric-weight", {"patients.csv": set_cell(P, 4, "weight_kg", "heavy")},
     ["patients.weight_kg: not a number (e.g. 'heavy'), rows [4] (1 row)"]),
    ("na-weight", {"patients.csv": set_cell(P, 3, "weight_kg", "NA")},
     ["patients.weight_kg: not a number (e.g. 'NA'), rows [3] (1 row)"]),
    ("decimal-comma", {"patients.csv": set_cell(P, 2, "weight_kg", "70,5")},
     ["patients.weight_kg: not a number (e.g. '70,5'), rows [2] (1 row)"]),
    ("empty-weight", {"patients.csv": set_cell(P, 6, "weight_kg", "")},
     ["patients.weight_kg: missing value, rows [6] (1 row)"]),
    ("age-0", {"patients.csv": set_cell(P, 2, "age_years", "0")},
     ["patients.age_years: must be > 0 and <= 100, rows [2] (1 row)"]),
    ("weight-300", {"patients.csv": set_cell(P, 5, "weight_kg", "300")},
     ["patients.weight_kg: must be between 20 and 250, rows [5] (1 row)"]),
    ("hla-7", {"patients.csv": set_cell(P, 3, "hla_mismatches", "7")},
     ["patients.hla_mismatches: must be between 0 and 5, rows [3] (1 row)"]),
    ("hla-fraction", {"patients.csv": set_cell(P, 3, "hla_mismatches", "1.5")},
     ["patients.hla_mismatches: not an integer (e.g. '1.5'), rows [3] (1 row)"]),
    ("bad-sex", {"patients.csv": set_cell(P, 4, "sex", "X")},
     ["patients.sex: must be one of M, F (e.g. 'X'), rows [4] (1 row)"]),
    ("bad-disease-status", {"patients.csv": set_cell(P, 2, "disease_status", "CR3")},
     ["patients.disease_status: must be one of CR1, CR2, other (e.g. 'CR3'), rows [2] (1 row)"]),
    ("negative-alc", {"patients.csv": set_cell(P, 7, "alc_pre_atg", "-0.1")},
     ["patients.alc_pre_atg: must be >= 0, rows [7] (1 row)"]),
    ("many-rows", {"patients.csv": P.replace(",M,", ",male,").replace(",F,", ",female,")},
     ["patients.sex: must be one of M, F (e.g. 'male'), rows [2, 3, 4, 5, 6, ...] (6 rows)"]),
    ("patient-missing-from-outcomes", {"outcomes.csv": drop_line(O, 4)},
     ["patients.patient_id: no row in outcomes, rows [4] (1 row)"]),
    ("auc-only-without-auc", {"patients.csv": add_column(P, "auc_total", ["120", "", "95.5", "140",
                                                                         "88", "101"]),
                              "atg_doses.csv": None, "atg_levels.csv": None},
     ["patients.auc_total: missing value (required without ATG dose and level data), "
      "rows [3] (1 row)"]),
    # --- doses ------------------------------------------------------------------------------
    ("negative-dose", {"atg_doses.csv": set_cell(D, 3, "dose_mg", "-175")},
     ["atg_doses.dose_mg: must be > 0, rows [3] (1 row)"]),
    ("zero-infusion", {"atg_doses.csv": set_cell(D, 2, "infusion_hours", "0")},
     ["atg_doses.infusion_hours: must be > 0, rows [2] (1 row)"]),
    ("start-hour-25", {"atg_doses.csv": set_cell(D, 8, "start_hour", "25")},
     ["atg_doses.start_hour: must be between 0 and 24, rows [8] (1 row)"]),
    ("fractional-dose-day", {"atg_doses.csv": set_cell(D, 6, "day", "-4.5")},
     ["atg_doses.day: not an integer (e.g. '-4.5'), rows [6] (1 row)"]),
    ("empty-dose-day", {"atg_doses.csv": set_cell(D, 6, "day", "")},
     ["atg_doses.day: missing value, rows [6] (1 row)"]),
    ("unknown-patient-in-doses", {"atg_doses.csv": append_line(D, "P07,-5,8,100,6")},
     ["atg_doses.patient_id: unknown patient_id (not in patients), rows [16] (1 row)"]),
    # --- levels -----------------------------------------------------------------------------
    ("unknown-patient-in-levels", {"atg_levels.csv": append_line(L, "P99,1,2.0,0")},
     ["atg_levels.patient_id: unknown patient_id (not in patients), rows [20] (1 row)"]),
    ("negative-concentration", {"atg_levels.csv": set_cell(L, 5, "concentration", "-1")},
     ["atg_levels.concentration: must be >= 0, rows [5] (1 row)"]),
    ("bloq-2", {"atg_levels.csv": set_cell(L, 9, "bloq", "2")},
     ["atg_levels.bloq: must be 0 or 1 (e.g. '2'), rows [9] (1 row)"]),
    ("bloq-yes", {"atg_levels.csv": set_cell(L, 4, "bloq", "yes")},
     ["atg_levels.bloq: must be 0 or 1 (e.g. 'yes'), rows [4] (1 row)"]),
    ("bloq-0-empty-value", {"atg_levels.csv": set_cell(L, 13, "bloq", "0")},
     ["atg_levels.bloq: is 0 but concentration is empty, rows [13] (1 row)"]),
    # --- outcomes ---------------------------------------------------------------------------
    ("unknown-patient-in-outcomes", {"outcomes.csv": append_line(O, "P99,100,,,,,,,")},
     ["outcomes.patient_id: unknown patient_id (not in patients), rows [8] (1 row)"]),
    ("duplicate-outcome", {"outcomes.csv": append_line(O, "P01,540,,,35,,,,")},
     ["outcomes.patient_id: duplicate patient_id (one row per patient), rows [2, 8] (2 rows)"]),
    ("followup-0", {"outcomes.csv": set_cell(O, 5, "last_followup_day", "0")},
     ["outcomes.last_followup_day: must be > 0, rows [5] (1 row)"]),
    ("event-after-followup", {"outcomes.csv": set_cell(O, 2, "cmv_day", "600")},
     ["outcomes.cmv_day: must be <= last_followup_day, rows [2] (1 row)"]),
    ("negative-event", {"outcomes.csv": set_cell(O, 7, "relapse_day", "-3")},
     ["outcomes.relapse_day: must be >= 0, rows [7] (1 row)"]),
    ("death-not-followup", {"outcomes.csv": set_cell(O, 3, "death_day", "200")},
     ["outcomes.death_day: must equal last_followup_day, rows [3] (1 row)"]),
    ("agvhd3-before-agvhd2", {"outcomes.csv": set_cell(O, 3, "agvhd3_day", "10")},
     ["outcomes.agvhd3_day: earlier than agvhd2_day, rows [3] (1 row)"]),
    ("agvhd3-without-agvhd2", {"outcomes.csv": set_cell(O, 5, "agvhd3_day", "30")},
     ["outcomes.agvhd3_day: present but agvhd2_day is empty, rows [5] (1 row)"]),
    ("cmv-persistent-2", {"outcomes.csv": add_column(O, "cmv_persistent",
                                                     ["1", "0", "", "0", "2", "1"])},
     ["outcomes.cmv_persistent: must be 0 or 1 (e.g. '2'), rows [6] (1 row)"]),
]


@pytest.mark.parametrize("overrides, expected", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_malformed_cohort_is_refused_with_exact_messages(tmp_path, overrides, expected):
    folder = make_cohort(tmp_path / "cohort", overrides)
    with pytest.raises(CohortValidationError) as info:
        load_cohort(folder)
    assert [v.message for v in info.value.violations] == expected
    assert str(info.value).splitlines()[1:] == expected
    assert validate_cohort(folder).messages == expected


def test_case_ids_are_distinct_and_many():
    ids = [c[0] for c in CASES]
    assert len(set(ids)) == len(ids) >= 24


def test_invalid_toml_reports_the_parser_position(tmp_path):
    folder = make_cohort(tmp_path / "c", {"cohort.toml": T + "oops\n"})
    (line,) = validate_cohort(folder).messages
    assert line.startswith("cohort.toml: not valid TOML (")
    assert "line 6" in line


def test_not_a_directory(tmp_path):
    report = validate_cohort(tmp_path / "nowhere")
    assert report.messages == [f"cohort: not a directory: {tmp_path / 'nowhere'}"]
    assert not report.ok and report.cohort is None


def test_several_problems_are_all_listed_in_order(tmp_path):
    folder = make_cohort(tmp_path / "c", {
        "cohort.toml": T.replace('"UE/mL"', '"mg"'),
        "patients.csv": set_cell(drop_column(P, "sex"), 3, "age_years", "130"),
        "atg_doses.csv": set_cell(D, 4, "dose_mg", "0"),
        "atg_levels.csv": set_cell(L, 2, "bloq", "7"),
        "outcomes.csv": set_cell(set_cell(O, 2, "ebv_day", "900"), 6, "death_day", "119"),
    })
    expected = [
        "cohort.toml.concentration_unit: unknown unit 'mg' (known: UE/mL, AU/mL, ug/mL)",
        "patients.sex: column missing",
        "patients.age_years: must be > 0 and <= 100, rows [3] (1 row)",
        "atg_doses.dose_mg: must be > 0, rows [4] (1 row)",
        "atg_levels.bloq: must be 0 or 1 (e.g. '7'), rows [2] (1 row)",
        "outcomes.ebv_day: must be <= last_followup_day, rows [2] (1 row)",
        "outcomes.death_day: must equal last_followup_day, rows [6] (1 row)",
    ]
    with pytest.raises(CohortValidationError) as info:
        load_cohort(folder)
    error = info.value
    assert isinstance(error, ValueError)
    assert [v.message for v in error.violations] == expected
    header, *lines = str(error).splitlines()
    assert lines == expected
    assert header == f"cohort {str(folder)!r} refused: 7 violations of the cohort format"


def test_blank_lines_count_in_row_numbers(tmp_path):
    text = set_cell(D, 5, "dose_mg", "-1").replace("P01,-2", "\nP01,-2")
    folder = make_cohort(tmp_path / "c", {"atg_doses.csv": text})
    assert validate_cohort(folder).messages == ["atg_doses.dose_mg: must be > 0, rows [6] (1 row)"]


def test_violation_lists_five_rows_and_the_count():
    v = Violation.at("patients", "age_years", "must be > 0", [2, 3, 4, 5, 6, 7, 9])
    assert v.rows == (2, 3, 4, 5, 6, 7, 9) and v.n_rows == 7
    assert v.message == "patients.age_years: must be > 0, rows [2, 3, 4, 5, 6, ...] (7 rows)"
    assert Violation.at("atg_levels", None, "file missing").message == "atg_levels: file missing"
    with pytest.raises(ValueError, match="n_rows == len"):
        Violation("patients", None, "x", (2,), 3)


def test_rules_are_a_table_and_checks_may_return_positions(tmp_path):
    from ml.cohort import RULES, Rule
    from ml.cohort._read import read_folder
    from ml.cohort._rules import Context, run_rules

    keys = [(r.table, r.column, r.description) for r in RULES]
    assert len(keys) == len(set(keys))
    assert {r.table for r in RULES} == {"patients", "atg_doses", "atg_levels", "outcomes"}
    raw = read_folder(make_cohort(tmp_path / "c"))
    extra = Rule("atg_doses", "dose_mg", "must be < 200 mg (centre cap)",
                 lambda ctx: np.flatnonzero(ctx.number("atg_doses", "dose_mg") >= 200)[::-1])
    violations, warnings = run_rules(Context(raw.tables, raw.absent), (*RULES, extra))
    assert [v.message for v in violations] == [
        "atg_doses.dose_mg: must be < 200 mg (centre cap), rows [8, 9, 12, 13] (4 rows)"]
    assert warnings == []
