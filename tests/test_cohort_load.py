"""Loading: typing, defaults, extra columns, and cohorts written by other tools.

"A cohort written by any other tool in the contract format must load": each spelling
below (column order, ``3.0`` for integers, CRLF, BOM, quoting, whitespace, Parquet with
int32 columns) must give exactly the factory cohort, digest included.
"""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.cohort import load_cohort, validate_cohort

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
    cohort_files,
    drop_column,
    drop_line,
    make_cohort,
    set_cell,
)

TABLE_FILES = ("patients.csv", "atg_doses.csv", "atg_levels.csv", "outcomes.csv")


@pytest.fixture(scope="module")
def factory(tmp_path_factory):
    return load_cohort(make_cohort(tmp_path_factory.mktemp("factory") / "c"))


def _rows(text):
    return list(csv.reader(io.StringIO(text, newline="")))


def _write(rows, **kw):
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\n", **kw).writerows(rows)
    return buffer.getvalue()


def _reverse_columns(text):
    return _write([r[::-1] for r in _rows(text)])


def _integers_as_floats(text):
    # every integer-looking cell (hla_mismatches, dose day, bloq, days...) gets ".0"
    return _write([[c + ".0" if re.fullmatch(r"-?\d+", c) else c for c in r]
                   for r in _rows(text)])


def _quoted_with_inner_space(text):
    rows = _rows(text)
    return _write([rows[0]] + [[f" {c} " for c in r] for r in rows[1:]],
                  quoting=csv.QUOTE_ALL)


def _spaces_around(text):
    return "\n".join(" , ".join(f" {c}\t" for c in line.split(","))
                     for line in text.splitlines()) + "\n"


SPELLINGS = {
    "reordered-columns": _reverse_columns,
    "integers-as-3.0": _integers_as_floats,
    "crlf": lambda t: t.replace("\n", "\r\n"),
    "cr-only": lambda t: t.replace("\n", "\r"),
    "utf8-bom": lambda t: "\ufeff" + t,
    "quoted-values": _quoted_with_inner_space,
    "whitespace": _spaces_around,
    "trailing-blank-lines": lambda t: t + "\n\n,,,\n",
    "all-at-once": lambda t: "\ufeff" + _quoted_with_inner_space(
        _reverse_columns(_integers_as_floats(t))).replace("\n", "\r\n"),
}


def _assert_same_cohort(a, b):
    assert a.meta == b.meta
    for name in ("patients", "doses", "levels", "outcomes"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.digest == b.digest


@pytest.mark.parametrize("spelling", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_other_tools_spellings_load_as_the_same_cohort(tmp_path, factory, spelling):
    files = {name: spelling(text) for name, text in cohort_files().items()
             if name in TABLE_FILES}
    _assert_same_cohort(load_cohort(make_cohort(tmp_path / "c", files)), factory)


def test_parquet_with_int32_and_float32_columns(tmp_path, factory):
    folder = make_cohort(tmp_path / "c", {"patients.csv": None, "atg_doses.csv": None})
    patients = pd.read_csv(io.StringIO(P), dtype={"patient_id": str})
    schema = pa.Schema.from_pandas(patients, preserve_index=False)
    schema = schema.set(schema.get_field_index("hla_mismatches"), pa.field("hla_mismatches",
                                                                          pa.int32()))
    schema = schema.set(schema.get_field_index("age_years"), pa.field("age_years", pa.int32()))
    pq.write_table(pa.Table.from_pandas(patients, schema=schema, preserve_index=False),
                   folder / "patients.parquet")
    doses = pd.read_csv(io.StringIO(D)).astype({"day": "int32", "dose_mg": "float32"})
    doses.index = doses.index + 100  # pandas writes a non-range index as a column: dropped
    doses.to_parquet(folder / "atg_doses.parquet")
    _assert_same_cohort(load_cohort(folder), factory)


def test_loaded_tables_have_the_contract_dtypes_and_order(factory):
    assert factory.n == 6 and factory.has_levels and factory.warnings == ()
    assert re.fullmatch(r"[0-9a-f]{64}", factory.digest)
    p, d, lv, o = factory.patients, factory.doses, factory.levels, factory.outcomes
    assert list(p.columns) == _rows(P)[0] and list(o.columns) == _rows(O)[0]
    assert p["patient_id"].dtype == object and p["sex"].tolist() == ["M", "F", "M", "F", "M", "F"]
    assert p["hla_mismatches"].dtype == np.int64 and p["weight_kg"].dtype == np.float64
    assert d["day"].dtype == np.int64 and d["start_hour"].dtype == np.float64
    assert lv["bloq"].dtype == np.int64 and lv["bloq"].sum() == 2
    assert np.isnan(lv["concentration"]).sum() == 2
    assert o["death_day"].dtype == np.float64 and o["death_day"].notna().sum() == 2
    assert isinstance(p.index, pd.RangeIndex)


def test_defaults_for_start_hour_and_bloq(tmp_path):
    doses = set_cell(drop_column(D, "start_hour"), 2, "dose_mg", "175")
    folder = make_cohort(tmp_path / "a", {"atg_doses.csv": doses,
                                          "atg_levels.csv": drop_column(L, "bloq")})
    cohort = load_cohort(folder)
    assert list(cohort.doses.columns) == ["patient_id", "day", "start_hour", "dose_mg",
                                          "infusion_hours"]
    assert (cohort.doses["start_hour"] == 8.0).all()
    assert cohort.levels["bloq"].tolist() == [int(np.isnan(c)) for c in
                                              cohort.levels["concentration"]]
    # empty cells are filled the same way, present values kept
    folder = make_cohort(tmp_path / "b", {
        "atg_doses.csv": set_cell(D, 8, "start_hour", ""),
        "atg_levels.csv": set_cell(set_cell(L, 4, "bloq", ""), 2, "bloq", "")})
    cohort = load_cohort(folder)
    assert cohort.doses["start_hour"].tolist()[6:8] == [8.0, 9.5]
    assert cohort.levels["bloq"].tolist()[:3] == [0, 0, 1]


def test_extra_columns_are_kept_typed_and_sorted_last(tmp_path):
    patients = add_column(add_column(P, "graft_source", ["PB", "BM", "", "PB", "PB", "PB"]),
                          "cd34_e6_per_kg", ["5.1", "4", "", "7.25", "6", "3.3"])
    outcomes = add_column(O, "notes", ["", "died, infection", "", "", "", ""])
    cohort = load_cohort(make_cohort(tmp_path / "c", {"patients.csv": patients,
                                                      "outcomes.csv": outcomes}))
    p = cohort.patients
    assert list(p.columns[-3:]) == ["alc_pre_atg", "cd34_e6_per_kg", "graft_source"]
    assert p["cd34_e6_per_kg"].dtype == np.float64 and np.isnan(p["cd34_e6_per_kg"][2])
    assert p["graft_source"].dtype == object and pd.isna(p["graft_source"][2])
    assert cohort.outcomes["notes"][1] == "died, infection"


def test_optional_outcome_columns(tmp_path, factory):
    outcomes = add_column(add_column(O, "cmv_persistent", ["1", "0", "", "0", "0", "1"]),
                          "neutrophil_day", ["14", "13", "15", "", "12", "16"])
    cohort = load_cohort(make_cohort(tmp_path / "c", {"outcomes.csv": outcomes}))
    o = cohort.outcomes
    assert list(o.columns) == ["patient_id", "last_followup_day", "death_day", "relapse_day",
                               "cmv_day", "cmv_persistent", "ebv_day", "agvhd2_day",
                               "agvhd3_day", "cgvhd_day", "neutrophil_day"]
    assert o["cmv_persistent"].dtype == np.float64 and np.isnan(o["cmv_persistent"][2])
    assert "platelet_day" not in o and cohort.digest != factory.digest


def test_cohort_with_auc_total_and_no_level_data_is_valid(tmp_path):
    patients = add_column(P, "auc_total", ["120", "85.5", "151", "99.9", "130", "110"])
    folder = make_cohort(tmp_path / "c", {"patients.csv": patients, "atg_doses.csv": None,
                                          "atg_levels.csv": None})
    cohort = load_cohort(folder)
    assert cohort.doses is None and cohort.levels is None and not cohort.has_levels
    assert cohort.patients["auc_total"].tolist() == [120, 85.5, 151, 99.9, 130, 110]
    assert cohort.warnings == ()


def test_auc_total_may_be_partly_empty_when_levels_exist(tmp_path):
    patients = add_column(P, "auc_total", ["120", "", "151", "", "130", "110"])
    cohort = load_cohort(make_cohort(tmp_path / "c", {"patients.csv": patients}))
    assert cohort.has_levels and cohort.patients["auc_total"].isna().sum() == 2


def test_warnings_do_not_refuse(tmp_path):
    patients = set_cell(set_cell(set_cell(P, 3, "age_years", "70"), 6, "age_years", "12"),
                        5, "disease_status", "other")
    patients = set_cell(patients, 7, "donor_type", "haplo")
    files = {"cohort.toml": T + 'centre = "X"\n', "patients.csv": patients,
             "atg_doses.csv": drop_line(drop_line(D, 15), 14)}
    expected = (
        "cohort.toml.centre: unknown key, ignored",
        "patients.age_years: outside trial eligibility 14..65 years, rows [3, 6] (2 rows)",
        "patients.disease_status: not CR1 or CR2 (outside trial eligibility), rows [5] (1 row)",
        "patients.donor_type: differs from cohort.toml donor_source, rows [7] (1 row)",
        "patients.patient_id: no ATG doses, rows [7] (1 row)",
    )
    folder = make_cohort(tmp_path / "c", files)
    cohort = load_cohort(folder)
    assert cohort.warnings == expected
    report = validate_cohort(folder)
    assert report.ok and tuple(report.warning_messages) == expected
    assert report.cohort.digest == cohort.digest


def test_mixed_donor_source_accepts_any_donor_type(tmp_path):
    files = {"cohort.toml": T.replace('"URD"', '"mixed"'),
             "patients.csv": set_cell(P, 7, "donor_type", "haplo")}
    assert load_cohort(make_cohort(tmp_path / "c", files)).warnings == ()
