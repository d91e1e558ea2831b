"""A small, valid, hand-written cohort folder for tests (no simulator involved).

Six URD patients, all within trial eligibility (no warnings), 14 ATG infusions, 18 level
samples (two below the limit of quantification), and outcomes with deaths, relapses, CMV,
EBV and acute/chronic GVHD. Line numbers (header = 1) used by the tests:

* patients:  P01..P06 on lines 2..7
* atg_doses: P01 lines 2-5, P02 6-7, P03 8-9, P04 10-11, P05 12-13, P06 14-15
* atg_levels: P01 lines 2-4, P02 5-7, ..., P06 17-19
* outcomes:  P01..P06 on lines 2..7 (P04 has no event)

Helpers edit the CSV text of one table by line number and column name, so a test states
exactly which cell it breaks.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

COHORT_TOML = """\
name = "factory"
donor_source = "URD"
concentration_unit = "UE/mL"
simulated = false
description = "hand-written test cohort"
"""

PATIENTS = """\
patient_id,donor_type,age_years,sex,weight_kg,diagnosis,disease_status,conditioning,hla_mismatches,cmv_recipient,cmv_donor,alc_pre_atg
P01,URD,34,M,70.5,AML,CR1,MAC,0,pos,pos,0.31
P02,URD,52,F,58,ALL,CR2,MAC,1,pos,neg,0.12
P03,URD,23,M,81.2,AML,CR1,MAC,0,neg,pos,0.45
P04,URD,61,F,49.9,MDS,CR1,RIC,0,pos,pos,0.05
P05,URD,45,M,92,CML,CR2,MAC,1,pos,pos,0.8
P06,URD,30,F,64,lymphoma,CR1,MAC,0,neg,neg,0.27
"""

ATG_DOSES = """\
patient_id,day,start_hour,dose_mg,infusion_hours
P01,-5,8,175,6
P01,-4,8,175,4
P01,-3,8,175,4
P01,-2,8,175,4
P02,-5,8,150,6
P02,-4,8,150,4
P03,-5,9.5,200,6
P03,-4,9.5,200,4
P04,-5,8,125,6
P04,-4,8,125,4
P05,-5,8,225,6
P05,-4,8,225,4
P06,-5,8,150,6
P06,-4,8,150,4
"""

ATG_LEVELS = """\
patient_id,day,concentration,bloq
P01,-4.667,8.2,0
P01,7,3.1,0
P01,28,,1
P02,-4.625,6.9,0
P02,7,2.4,0
P02,28,0.6,0
P03,-4.604,7.7,0
P03,7,4.05,0
P03,28,1.2,0
P04,-4.667,9.9,0
P04,7,5.3,0
P04,28,,1
P05,-4.667,5.8,0
P05,7,2.2,0
P05,28,0.9,0
P06,-4.667,7.1,0
P06,7,3.3,0
P06,28,0.7,0
"""

OUTCOMES = """\
patient_id,last_followup_day,death_day,relapse_day,cmv_day,ebv_day,agvhd2_day,agvhd3_day,cgvhd_day
P01,540,,,35,,,,
P02,210,210,150,28,,20,41,
P03,700,,,,60,25,,180
P04,365,,,,,,,
P05,120,120,,,,18,18,
P06,610,,300,33,90,,,200
"""


def cohort_files() -> dict[str, str]:
    """File name -> text of the valid factory cohort."""
    return {
        "cohort.toml": COHORT_TOML,
        "patients.csv": PATIENTS,
        "atg_doses.csv": ATG_DOSES,
        "atg_levels.csv": ATG_LEVELS,
        "outcomes.csv": OUTCOMES,
    }


def make_cohort(root: Path, files: dict[str, str | bytes | None] | None = None) -> Path:
    """Write the factory cohort into ``root`` (created), with ``files`` overriding it.

    Parameters
    ----------
    root : pathlib.Path
        Folder to create.
    files : dict, optional
        File name -> text (str, written as UTF-8 bytes, line ends untouched), raw bytes, or
        None to leave that file out.

    Returns
    -------
    pathlib.Path
        ``root``.
    """
    content: dict[str, str | bytes | None] = {**cohort_files(), **(files or {})}
    root.mkdir(parents=True, exist_ok=True)
    for name, data in content.items():
        if data is None:
            continue
        (root / name).write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return root


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _text(rows: list[list[str]]) -> str:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def set_cell(text: str, line: int, column: str, value: str) -> str:
    """Return ``text`` with the cell at file ``line`` (header = 1) and ``column`` replaced."""
    rows = _rows(text)
    rows[line - 1][rows[0].index(column)] = value
    return _text(rows)


def drop_column(text: str, column: str) -> str:
    """Return ``text`` without ``column``."""
    rows = _rows(text)
    j = rows[0].index(column)
    return _text([r[:j] + r[j + 1:] for r in rows])


def add_column(text: str, column: str, values: list[str] | str) -> str:
    """Return ``text`` with ``column`` appended (one value per data row, or one for all)."""
    rows = _rows(text)
    if isinstance(values, str):
        values = [values] * (len(rows) - 1)
    return _text([rows[0] + [column]] + [r + [v] for r, v in zip(rows[1:], values, strict=True)])


def rename_column(text: str, old: str, new: str) -> str:
    """Return ``text`` with header ``old`` renamed ``new``."""
    rows = _rows(text)
    rows[0][rows[0].index(old)] = new
    return _text(rows)


def drop_line(text: str, line: int) -> str:
    """Return ``text`` without file ``line`` (header = 1)."""
    rows = _rows(text)
    del rows[line - 1]
    return _text(rows)


def append_line(text: str, line: str) -> str:
    """Return ``text`` with a raw CSV ``line`` appended."""
    return text + line + "\n"
