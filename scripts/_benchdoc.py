"""Write one benchmark's section of docs/benchmarks.md, leaving the other sections alone.

Each benchmark script owns the text between ``<!-- BEGIN name -->`` and ``<!-- END name -->``;
a section that does not exist yet is appended. Every section should say which commit and
machine produced it: :func:`provenance` gives a line for that.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Every figure here was produced by the script named in its section, on virtual cohorts from\n"
    "`ml.sim` (simulated data: no patient data is public). Re-run a section with its command;\n"
    "`make bench` re-runs them all. Speeds are given as ratios against a reference run in the\n"
    "same script where one exists, because machines are noisy.\n"
)


def provenance() -> str:
    """A one-line note of commit, machine and date for a benchmark section."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
            cwd=DOC.parents[1], check=False,
        ).stdout.strip() or "uncommitted"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
            text=True, cwd=DOC.parents[1], check=False,
        ).stdout.strip()
    except OSError:
        commit, dirty = "unknown", ""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"_Measured {when} on {platform.machine()} with {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, commit {commit}{' + local changes' if dirty else ''}._"
    )


def write_section(name: str, markdown: str) -> Path:
    """Replace (or append) the section ``name`` of docs/benchmarks.md with ``markdown``."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    text = DOC.read_text() if DOC.exists() else HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
    return DOC
