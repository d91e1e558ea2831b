"""ml/_atomic.py: a file is replaced whole or not at all (the reference is POSIX rename(2): atomic
within one file system), and a failed write leaves neither a truncated file nor a temporary one."""

from __future__ import annotations

import errno
import os
import re
import stat

import pytest

from ml._atomic import atomic_path, write_atomic
from ml.experiments import RunBundle


def temporaries(folder):
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


def test_text_and_bytes_are_written_and_the_folder_created(tmp_path):
    p = write_atomic(tmp_path / "a" / "b.json", '{"x": 1}\n')
    assert p.read_text() == '{"x": 1}\n'
    write_atomic(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    assert temporaries(p.parent) == []


def _write_then_fail(target, text, error):
    """Write part of ``target`` through atomic_path, then raise ``error`` inside the block."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)
        raise error


def test_a_failure_mid_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("<html>complete</html>")
    with pytest.raises(OSError, match=re.escape(os.strerror(errno.ENOSPC))) as err:
        _write_then_fail(target, "<html>trunc", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))  # disk fills
    assert err.value.errno == errno.ENOSPC
    assert target.read_text() == "<html>complete</html>"
    assert temporaries(tmp_path) == []


def test_an_interruption_leaves_no_temporary_and_no_new_file(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _write_then_fail(tmp_path / "run.json", "{", KeyboardInterrupt())
    assert list(tmp_path.iterdir()) == []


def test_permissions_of_the_replaced_file_are_kept_and_new_files_follow_the_umask(tmp_path):
    target = tmp_path / "t.csv"
    target.write_text("a\n")
    target.chmod(0o640)
    write_atomic(target, "b\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    fresh = write_atomic(tmp_path / "new.csv", "x\n")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask  # what open(..., "w") gives


def test_a_missing_folder_is_an_error_when_asked_not_to_create_it(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "nope" / "out.json", "{}", mkdir=False)
    assert not (tmp_path / "nope").exists()


def test_the_run_folder_writes_tables_and_figures_through_it(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    import ml._atomic

    bundle = RunBundle(tmp_path)
    bundle.write_json(RunBundle.MANIFEST, {"status": "RUNNING"})
    bundle.write_table("t", pd.DataFrame({"a": [1, 2]}))
    fig = plt.figure()
    bundle.save_figure("f", fig, title="t")
    assert bundle.read_table("t")["a"].tolist() == [1, 2]
    assert bundle.path("figures/f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def full(path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(ml._atomic, "_fsync", full)
    with pytest.raises(OSError, match=re.escape(os.strerror(errno.ENOSPC))):
        bundle.update(RunBundle.MANIFEST, status="FINISHED")
    assert bundle.manifest() == {"status": "RUNNING"}  # the previous complete manifest, not a truncated one
    assert [p.name for p in tmp_path.rglob("*") if ".tmp" in p.name] == []
