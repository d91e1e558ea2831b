"""``atgwin validate DIR``: exit codes and output."""

from __future__ import annotations

from click.testing import CliRunner

from ml.cli import main
from ml.cohort import load_cohort

from cohort_factory import ATG_DOSES as D
from cohort_factory import PATIENTS as P
from cohort_factory import make_cohort, set_cell


def _run(*args):
    return CliRunner().invoke(main, ["validate", *map(str, args)])


def test_valid_cohort_exits_0_with_a_one_line_summary(tmp_path):
    folder = make_cohort(tmp_path / "c")
    result = _run(folder)
    assert result.exit_code == 0, result.output
    digest = load_cohort(folder).digest
    assert result.stdout == (
        f"{folder}: valid cohort 'factory', 6 patients, 14 doses, 18 levels, unit UE/mL, "
        f"simulated: no, digest {digest[:12]}, 0 warnings\n")
    assert result.stderr == ""


def test_warnings_are_counted_and_printed_but_do_not_fail(tmp_path):
    folder = make_cohort(tmp_path / "c", {"patients.csv": set_cell(P, 2, "age_years", "66")})
    result = _run(folder)
    assert result.exit_code == 0
    assert result.stdout.rstrip("\n").endswith(", 1 warning") and result.stdout.count("\n") == 1
    assert result.stderr == ("warning: patients.age_years: outside trial eligibility "
                             "14..65 years, CSV line [2] (1 row; patient_id P01)\n")


def test_invalid_cohort_exits_1_and_lists_every_violation_on_stderr(tmp_path):
    folder = make_cohort(tmp_path / "c", {
        "patients.csv": set_cell(P, 3, "sex", "U"),
        "atg_doses.csv": set_cell(D, 2, "infusion_hours", "-6")})
    result = _run(folder)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{folder}: invalid cohort, 2 violations",
        "patients.sex: must be one of M, F (e.g. 'U'), CSV line [3] (1 row; patient_id P02)",
        "atg_doses.infusion_hours: must be > 0, CSV line [2] (1 row; patient_id P01)",
    ]


def test_missing_directory_exits_1(tmp_path):
    result = _run(tmp_path / "absent")
    assert result.exit_code == 1
    assert f"cohort: not a directory: {tmp_path / 'absent'}" in result.stderr


def test_many_rows_list_their_first_lines_and_patient_ids(tmp_path):
    text = P
    for line in (2, 3, 4, 5, 6, 7):
        text = set_cell(text, line, "sex", "male")
    result = _run(make_cohort(tmp_path / "c", {"patients.csv": text}))
    assert result.exit_code == 1
    assert ("patients.sex: must be one of M, F (e.g. 'male'), CSV lines [2, 3, 4, 5, 6, ...] (6 rows; "
            "patient_id P01, P02, P03, P04, P05, ...)") in result.stderr.splitlines()
