"""The user guides (docs/guide-*.md) show commands that exist today: every `atgwin` line of their
code blocks names real subcommands and options (checked against the click definitions), every
`--option` in their text belongs to some `atgwin` command, and the data scientist's first three
lines run as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ml.cli import main

ROOT = Path(__file__).resolve().parents[1]
GUIDES = sorted((ROOT / "docs").glob("guide-*.md"))
BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def _commands(path: Path) -> list[list[str]]:
    lines = [ln.strip() for block in BLOCK.findall(path.read_text()) for ln in block.splitlines()]
    return [shlex.split(ln)[1:] for ln in lines if ln.startswith(".venv/bin/atgwin ")]


def _sub(group: click.Group, name: str) -> click.Command | None:
    return group.get_command(click.Context(group), name)  # atgwin's group loads its commands lazily


def _resolve(args: list[str]) -> tuple[click.Command, list[str]]:
    cmd, rest = main, list(args)
    while isinstance(cmd, click.Group) and rest and _sub(cmd, rest[0]) is not None:
        cmd = _sub(cmd, rest.pop(0))
    return cmd, rest


def _options(cmd: click.Command) -> set[str]:
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}


def _all_options(group: click.Command = main) -> set[str]:
    found = _options(group)
    if isinstance(group, click.Group):
        for name in group.list_commands(click.Context(group)):
            found |= _all_options(_sub(group, name))
    return found


def test_three_guides_linked_from_readme_and_design():
    assert {p.name for p in GUIDES} == {"guide-data-scientist.md", "guide-reviewer.md", "guide-dosing.md"}
    for doc in ("README.md", "docs/design.md"):
        text = (ROOT / doc).read_text()
        assert all(p.name in text for p in GUIDES), f"{doc} does not link every guide"


@pytest.mark.parametrize("path", GUIDES, ids=lambda p: p.name)
def test_every_command_and_option_exists(path):
    commands = _commands(path)
    assert commands, f"{path.name} shows no atgwin command"
    problems = []
    for args in commands:
        cmd, rest = _resolve(args)
        if isinstance(cmd, click.Group):
            problems.append(f"{' '.join(args)}: not a subcommand")
            continue
        unknown = [a.split("=")[0] for a in rest if a.startswith("--") and a.split("=")[0] not in _options(cmd)]
        if unknown:
            problems.append(f"atgwin {cmd.name}: unknown options {unknown}")
    known = _all_options()
    in_text = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", path.read_text()))
    problems += [f"{opt} is no option of any atgwin command" for opt in sorted(in_text - known)]
    assert not problems, "\n".join(problems)


def test_the_data_scientists_first_lines_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for args in _commands(ROOT / "docs" / "guide-data-scientist.md")[:3]:
        result = runner.invoke(main, args)
        assert result.exit_code == 0, f"atgwin {' '.join(args)}:\n{result.output}\n{result.stderr}"
    assert (tmp_path / "ds" / "auc.csv").read_text().startswith("patient_id,")
