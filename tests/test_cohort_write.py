"""Digest, writing, round trips and in-memory cohorts (``cohort_from_tables``)."""

from __future__ import annotations

import dataclasses
import tomllib

import numpy as np
import pandas as pd
import pytest

from ml.cohort import (
    CohortMeta,
    CohortValidationError,
    cohort_from_tables,
    load_cohort,
    write_cohort,
)

from cohort_factory import OUTCOMES as O
from cohort_factory import make_cohort, set_cell

FILES = ("cohort.toml", "patients", "atg_doses", "atg_levels", "outcomes")


@pytest.fixture(scope="module")
def factory(tmp_path_factory):
    return load_cohort(make_cohort(tmp_path_factory.mktemp("factory") / "c"))


def _frames(cohort):
    return cohort.patients, cohort.doses, cohort.levels, cohort.outcomes


def _assert_same_cohort(a, b):
    assert a.meta == b.meta
    for x, y in zip(_frames(a), _frames(b), strict=True):
        if x is None or y is None:
            assert x is None and y is None
        else:
            pd.testing.assert_frame_equal(x, y)
    assert a.digest == b.digest


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_round_trip_write_then_load_is_equal(tmp_path, factory, fmt):
    folder = write_cohort(factory, tmp_path / "out", fmt=fmt)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["cohort.toml"] + [f"{t}.{fmt}" for t in FILES[1:]])
    _assert_same_cohort(load_cohort(folder), factory)


def test_digest_is_the_same_for_csv_and_parquet_and_changes_with_one_value(tmp_path, factory):
    csv_copy = load_cohort(write_cohort(factory, tmp_path / "csv", fmt="csv"))
    parquet_copy = load_cohort(write_cohort(factory, tmp_path / "pq", fmt="parquet"))
    assert csv_copy.digest == parquet_copy.digest == factory.digest
    changed = load_cohort(make_cohort(tmp_path / "changed",
                                      {"outcomes.csv": set_cell(O, 4, "cgvhd_day", "181")}))
    assert changed.digest != factory.digest
    outcomes = factory.outcomes.copy()
    outcomes.loc[2, "cgvhd_day"] = 181.0
    in_memory = cohort_from_tables(factory.meta, factory.patients, factory.doses,
                                   factory.levels, outcomes)
    assert in_memory.digest == changed.digest
    renamed = dataclasses.replace(factory.meta, name="other")
    assert cohort_from_tables(renamed, *_frames(factory)).digest != factory.digest


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_written_bytes_are_deterministic(tmp_path, factory, fmt):
    a = write_cohort(factory, tmp_path / "a", fmt=fmt)
    b = write_cohort(load_cohort(a), tmp_path / "b", fmt=fmt)
    for path in a.iterdir():
        assert path.read_bytes() == (b / path.name).read_bytes(), path.name


def test_csv_text_uses_exact_floats_and_unix_line_ends(tmp_path, factory):
    patients = factory.patients.copy()
    patients["weight_kg"] = [70.123456789012, 58.0, 81.2, 49.9, 92.0, 64.0]
    patients["alc_pre_atg"] = [1e-7, 0.1 + 0.2, 0.45, 0.05, 0.8, 0.27]
    patients["auc_total"] = [123456789.123, np.nan, 1e20, 99.9, 130.0, 110.0]
    cohort = cohort_from_tables(factory.meta, patients, factory.doses, factory.levels,
                                factory.outcomes)
    folder = write_cohort(cohort, tmp_path / "c")
    text = (folder / "patients.csv").read_bytes().decode("utf-8")
    assert "\r" not in text and text.endswith("\n")
    first = text.splitlines()[1]
    assert first == "P01,URD,34.0,M,70.123456789012,AML,CR1,MAC,0,pos,pos,1e-07,123456789.123"
    assert text.splitlines()[2].endswith(",0.30000000000000004,")
    reloaded = load_cohort(folder)
    assert reloaded.patients["alc_pre_atg"][1] == 0.1 + 0.2
    assert reloaded.patients["auc_total"][2] == 1e20
    _assert_same_cohort(reloaded, cohort)


def test_simulator_style_frames_become_the_same_cohort(tmp_path, factory):
    # typed frames as a simulator would build them: other column order, a non-range index,
    # numpy scalars, float days for doses, a boolean extra column
    patients = factory.patients[factory.patients.columns[::-1]].copy()
    patients.index = np.arange(10, 16)
    patients["is_demo"] = True
    doses = factory.doses.astype({"day": float})
    doses["start_hour"] = doses["start_hour"].where(doses["start_hour"] != 8.0)  # NaN -> 8
    levels = factory.levels.drop(columns="bloq")
    cohort = cohort_from_tables(factory.meta, patients, doses, levels, factory.outcomes)
    assert cohort.patients["is_demo"].tolist() == [1.0] * 6
    pd.testing.assert_frame_equal(cohort.doses, factory.doses)
    pd.testing.assert_frame_equal(cohort.levels, factory.levels)
    _assert_same_cohort(load_cohort(write_cohort(cohort, tmp_path / "c", fmt="parquet")), cohort)


def test_cohort_from_tables_refuses_with_position_based_rows(factory):
    doses = factory.doses.copy()
    doses.loc[[3, 9], "dose_mg"] = -1.0
    with pytest.raises(CohortValidationError) as info:
        cohort_from_tables(factory.meta, factory.patients, doses, None, factory.outcomes)
    assert [v.message for v in info.value.violations] == [
        "atg_doses.dose_mg: must be > 0, rows [5, 11] (2 rows)",
        "atg_levels: table missing (None given)",
    ]
    bad_meta = dataclasses.replace(factory.meta, concentration_unit="mg/L", simulated="no")
    with pytest.raises(CohortValidationError) as info:
        cohort_from_tables(bad_meta, *_frames(factory))
    assert [v.message for v in info.value.violations] == [
        "cohort.toml.concentration_unit: unknown unit 'mg/L' (known: UE/mL, AU/mL, ug/mL)",
        "cohort.toml.simulated: must be true or false, got 'no'",
    ]
    with pytest.raises(TypeError, match="patients must be a pandas DataFrame"):
        cohort_from_tables(factory.meta, factory.patients.to_dict(), factory.doses,
                           factory.levels, factory.outcomes)


def test_cohort_toml_escapes_strings_and_keeps_truth(tmp_path, factory):
    meta = CohortMeta(
        name="virtual \"urd\"", donor_source="URD", concentration_unit="UE/mL", simulated=True,
        description='line 1\nline 2\t"quoted" \\ back\\slash, é, \x01, [not a table]',
        truth={"lower": 100, "upper": np.float64(148.5), "scenario": "urd",
               "hazard ratios": {"cmv_hi": 1.9, "grid": [1, 2.5, float("nan")]}})
    cohort = cohort_from_tables(meta, *_frames(factory))
    folder = write_cohort(cohort, tmp_path / "c")
    doc = tomllib.loads((folder / "cohort.toml").read_text("utf-8"))
    assert doc["description"] == meta.description and doc["name"] == meta.name
    assert doc["truth"]["upper"] == 148.5 and doc["truth"]["hazard ratios"]["cmv_hi"] == 1.9
    loaded = load_cohort(folder)
    assert loaded.meta.truth["lower"] == 100 and loaded.meta.simulated is True
    assert loaded.digest == cohort.digest


def test_write_refuses_existing_cohort_files_unless_overwrite(tmp_path, factory):
    folder = write_cohort(factory, tmp_path / "c", fmt="csv")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_cohort(factory, folder, fmt="parquet")
    (folder / "notes.txt").write_text("keep me")
    write_cohort(factory, folder, fmt="parquet", overwrite=True)
    assert not list(folder.glob("*.csv")) and (folder / "notes.txt").exists()
    assert load_cohort(folder).digest == factory.digest
    with pytest.raises(ValueError, match="fmt must be one of csv, parquet, got 'xlsx'"):
        write_cohort(factory, tmp_path / "d", fmt="xlsx")


def test_auc_only_cohort_writes_no_level_files(tmp_path, factory):
    patients = factory.patients.assign(auc_total=[120.0, 85.5, 151.0, 99.9, 130.0, 110.0])
    cohort = cohort_from_tables(factory.meta, patients, None, None, factory.outcomes)
    folder = write_cohort(cohort, tmp_path / "c")
    assert not (folder / "atg_doses.csv").exists() and not (folder / "atg_levels.csv").exists()
    _assert_same_cohort(load_cohort(folder), cohort)
