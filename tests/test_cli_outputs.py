"""Every command checks (or creates) its output folder BEFORE it computes anything.

A bad ``--out`` (a path under a file) is a clean usage error naming the option and the file, in
well under a second of work and without a traceback; a missing folder is created first, so the
command can only fail afterwards on its real input. Walks every command of ``ml.cli._COMMANDS``
that writes something, so a new command cannot slip through.
"""

from __future__ import annotations

import json
import time

import click
import pytest
from click.testing import CliRunner

from ml.cli import _COMMANDS, _LazyGroup, main

#: generous: the checks themselves take milliseconds; the budget only covers importing the command
FAST_S = 10.0


def _commands_with_outputs() -> set[str]:
    """Command paths (``poppk fit``) that take an output option (``--out``, ``--out-dir``, ``--figures``)."""
    found = set()
    for name in _COMMANDS:
        cmd = _LazyGroup._load(name)
        subs = cmd.commands.items() if isinstance(cmd, click.Group) else [(None, cmd)]
        for sub, c in subs:
            if {"out", "out_dir", "figures"} & {p.name for p in c.params}:
                found.add(name if sub is None else f"{name} {sub}")
    return found


def _args(tmp_path, out: str) -> dict[str, list[str]]:
    """The cheapest invocation of each command, with ``out`` as its output."""
    empty = tmp_path / "not-a-cohort"
    empty.mkdir(exist_ok=True)
    experiment = tmp_path / "bad-experiment.toml"
    experiment.write_text("this is not an experiment\n")
    window = str(tmp_path / "no-such-window.json")
    return {
        "simulate": ["simulate", "--scenario", "no-such-scenario", "--n", "5", "--out", out],
        "exposure": ["exposure", str(empty), "--out", out],
        "discover": ["discover", str(empty), "--out", out],
        "promote": ["promote", window, "--by", "me", "--reason", "test", "--out", out],
        "protocol-window": ["protocol-window", "--preset", "haplo-2022", "--by", "me", "--out", out],
        "run": ["run", str(experiment), "--out-dir", out, "--no-tracking"],
        "report": ["report", str(empty), "--out", out],
        "dose": ["dose", "--window", window, "--patient", str(empty), "--out", out],
        "trial": ["trial", "--scenario", "no-such-scenario", "--reps", "1", "--out", out],
        "poppk fit": ["poppk", "fit", str(empty), "--out", out],
        "poppk fit --figures": ["poppk", "fit", str(empty), "--figures", out],
    }


#: the invocations walked (the names only; the arguments are built per test in its tmp_path)
COMMANDS = ["simulate", "exposure", "discover", "promote", "protocol-window", "run", "report", "dose", "trial",
            "poppk fit", "poppk fit --figures"]


def _invoke(args):
    t0 = time.perf_counter()
    result = CliRunner().invoke(main, args)
    return result, time.perf_counter() - t0


def test_every_command_that_writes_is_walked(tmp_path):
    assert list(_args(tmp_path, "x")) == COMMANDS
    assert _commands_with_outputs() == {name.split(" --")[0] for name in COMMANDS}


@pytest.mark.parametrize("command", COMMANDS)
def test_an_output_under_a_file_is_a_clean_early_error(tmp_path, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("I am a file\n")
    out = blocker / "sub" / "result.json"
    result, elapsed = _invoke(_args(tmp_path, str(out))[command])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # not a crash: CliRunner keeps any other exception
    assert "Traceback" not in result.output
    assert f"{blocker} is a file, not a folder" in result.output
    assert elapsed < FAST_S, f"{command} took {elapsed:.1f} s to refuse a bad output path"


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_output_folder_is_created_before_the_work(tmp_path, command):
    parent = tmp_path / "new" / "deeper"
    out = parent / "result" if command in ("simulate", "run", "poppk fit --figures") else parent / "result.json"
    result, elapsed = _invoke(_args(tmp_path, str(out))[command])
    assert parent.is_dir(), result.output
    # the cheap invocations then fail on their input (or, protocol-window, succeed): cleanly, fast
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert elapsed < FAST_S


def test_an_output_that_is_a_folder_is_refused(tmp_path):
    result, _ = _invoke(["promote", str(tmp_path / "w.json"), "--by", "me", "--reason", "r", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "is a folder; give a file name" in result.output


def test_simulate_into_a_cohort_folder_names_the_cli_option(tmp_path):
    args = ["simulate", "--n", "12", "--seed", "1", "--out", str(tmp_path / "c")]
    assert _invoke(args)[0].exit_code == 0
    again, _ = _invoke(args)
    assert again.exit_code == 2 and "add --overwrite to replace them" in again.output
    assert "overwrite=True" not in again.output
    assert _invoke([*args, "--overwrite"])[0].exit_code == 0


def test_a_file_system_error_is_one_line_not_a_traceback(tmp_path):
    """An OSError that reaches the command group (here: reading a folder as a window) names the file."""
    folder = tmp_path / "w.json"
    folder.mkdir()
    result, _ = _invoke(["dose", "--window", str(folder), "--patient", str(tmp_path)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output and str(folder) in result.output


def test_promote_writes_beside_the_candidate_and_never_changes_it(tmp_path):
    candidate = tmp_path / "haplo.json"
    assert _invoke(["protocol-window", "--preset", "haplo-2022", "--by", "me", "--out", str(candidate)])[0].exit_code == 0
    before = candidate.read_bytes()
    same, _ = _invoke(["promote", str(candidate), "--by", "pi", "--reason", "protocol", "--out", str(candidate)])
    assert same.exit_code == 2 and "the candidate is never changed" in same.output
    done, _ = _invoke(["promote", str(candidate), "--by", "pi", "--reason", "protocol"])
    assert done.exit_code == 0, done.output
    validated = tmp_path / "haplo.validated.json"
    assert str(validated) in done.output
    assert candidate.read_bytes() == before
    assert json.loads(validated.read_text())["status"] == "validated"
    assert json.loads(before)["status"] == "candidate"
