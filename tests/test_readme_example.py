"""The README's first example works from top to bottom, as written.

The commands are parsed from the ``bash`` block of the section "A first example" of README.md
(so the test and the README cannot drift) and run in order, in a temporary folder, through the
same entry point as ``.venv/bin/atgwin`` (in-process, to keep the test fast). The cohort is
SIMULATED (``atgwin simulate``).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from click.testing import CliRunner

from ml.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
PREFIX = ".venv/bin/atgwin"


def readme_example() -> list[list[str]]:
    """The argument lists of the example's commands, in order."""
    text = README.read_text()
    section = text.split("## A first example", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = []
    for line in block.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line:
            continue
        assert line.startswith(PREFIX + " "), f"README example: not an atgwin command: {line!r}"
        commands.append(shlex.split(line)[1:])
    return commands


def test_the_example_is_the_walk_through():
    names = [args[0] for args in readme_example()]
    assert names == ["simulate", "validate", "discover", "promote", "dose"]


def test_the_readme_example_runs_from_top_to_bottom(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    runner = CliRunner()
    for args in readme_example():
        result = runner.invoke(main, args)
        assert result.exit_code == 0, f"atgwin {shlex.join(args)} failed:\n{result.output}"
        assert isinstance(result.exception, (SystemExit, type(None)))
    candidate = json.loads(Path("example/window.json").read_text())
    validated = json.loads(Path("example/window.validated.json").read_text())
    assert candidate["status"] == "candidate" and candidate["finding"] == "window"
    assert validated["status"] == "validated" and validated["simulated"]
    doses = json.loads(Path("example/doses.json").read_text())
    assert len(doses["recommendations"]) > 300 and not doses["refusals"]
