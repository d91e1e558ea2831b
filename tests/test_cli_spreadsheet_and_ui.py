"""``exposure --out`` cannot carry a CSV injection; ``ui --host 0.0.0.0`` warns that the store is exposed."""

from __future__ import annotations

import csv

from click.testing import CliRunner

from ml._spreadsheet import FORMULA_PREFIXES, inert_cell
from ml.cli import main

from cohort_factory import cohort_files, make_cohort

EVIL = "=cmd|' /C calc'!A0"


def test_formula_like_ids_are_written_as_text(tmp_path):
    files = {k: v.replace("P01", EVIL).replace("P02", "@SUM(A1)")
             for k, v in cohort_files().items() if k.endswith(".csv")}
    folder = make_cohort(tmp_path / "c", files)
    out = tmp_path / "auc.csv"
    res = CliRunner().invoke(main, ["exposure", str(folder), "--exposure-method", "nca", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = list(csv.reader(out.open(newline="")))
    ids = [r[0] for r in rows[1:]]
    assert ids[:2] == ["'" + EVIL, "'@SUM(A1)"] and ids[2] == "P03"
    assert not any(cell.startswith(FORMULA_PREFIXES) for r in rows for cell in r if not _number(cell))


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_inert_cell():
    assert [inert_cell(v) for v in ("=1+1", "+1", "-x", "@a", "\tx", "P01", -3.5, None)] == \
        ["'=1+1", "'+1", "'-x", "'@a", "'\tx", "P01", -3.5, None]


def test_ui_on_all_interfaces_warns(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    res = CliRunner().invoke(main, ["ui", "--print-command", "--tracking-uri", uri, "--host", "0.0.0.0"])
    assert res.exit_code == 0
    assert "warning: --host 0.0.0.0 exposes the tracking store" in res.output
    res = CliRunner().invoke(main, ["ui", "--print-command", "--tracking-uri", uri])
    assert "exposes" not in res.output
