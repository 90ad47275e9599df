"""Nothing left running: every command that runs modules ends the tmux sessions and pool
runners it started, however it ends, and never touches anyone else's.

Each case runs the installed CLI against a private tmux server that already holds a foreign
session, and compares the server's sessions and the pool runner processes before and after.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mcp_harness.terminal.session import TerminalSession, kill_session
from mcp_harness.terminal.tmux import run as tmux

SCRIPT = str(Path(sys.executable).parent / "mcp-harness")
WAIT_S = 180.0  # a deadline for a loaded machine, not a timing check
SLEEP = "sleep 317"  # the interrupted check runs it from a script: no other command line has it
CHECK = {"check.sh": f"{SLEEP}\ntrue\n"}


def sessions(root: Path) -> set[str]:
    listed = tmux("list-sessions", "-F", "#{session_name}", root=root)
    return set(listed.stdout.split()) if listed.returncode == 0 else set()


def processes(marker: str) -> set[int]:
    """Pids whose command line (words joined by spaces) contains `marker`."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if marker in argv.replace(b"\0", b" ").decode(errors="replace"):
            found.add(int(entry))
    return found


def runners(root: Path) -> set[int]:
    """The pool runners of the private server (their command line names its runtime dir)."""
    return processes(f"mcp_harness.terminal.runner {root}/")


def until(condition: Callable[[], object], what: str, timeout: float = WAIT_S) -> None:
    """Poll `condition` until it holds; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def foreign(runtime: Path) -> Iterator[set[str]]:
    """A session of someone else's on the private server; yields the sessions before a run."""
    asyncio.run(TerminalSession.create("foreign", root=runtime))
    before = sessions(runtime)
    assert "ft-foreign" in before
    yield before
    asyncio.run(kill_session("foreign", runtime))


def env(home: Path) -> dict[str, str]:
    environ = {**os.environ, "MCP_HARNESS_HOME": str(home)}
    for name in ("ANTHROPIC_API_KEY", "MCP_HARNESS_KERNEL", "OPENAI_API_KEY", "TMUX"):
        environ.pop(name, None)
    return environ


def start(*args: str, home: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [SCRIPT, *args],
        env=env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def module_run(work: Path, check: str, *extra: str) -> list[str]:
    return [
        "module", "run", "coder", "--input", "task=Make the run.sh script executable",
        "--input", f"workdir={work}", "--input", f"check={check}", "--dim", "steps=2", *extra,
    ]  # fmt: skip


def train(tmp_path: Path, check: str) -> list[str]:
    data = tmp_path / "train.jsonl"
    line = {
        "inputs": {"task": "Make a directory named dist", "check": check},
        "targets": {"decision": "Create the dist directory", "command": "mkdir -p dist"},
        "files": CHECK,
    }
    data.write_text(json.dumps(line) + "\n")
    return [
        "train", "coder", "--data", str(data), "--epochs", "1", "--batch", "1",
        "--dim", "steps=2", "--out", str(tmp_path / "out"), "--json",
    ]  # fmt: skip


def eval_run(tmp_path: Path) -> list[str]:
    data = tmp_path / "eval.jsonl"
    tasks = [
        {"inputs": {"task": "Make the run.sh script executable", "check": "test -x run.sh"}},
        {"inputs": {"task": "Make a directory named dist", "check": "test -d dist"}},
    ]
    data.write_text("".join(json.dumps({**t, "files": CHECK}) + "\n" for t in tasks))
    return ["eval", "coder", "--data", str(data), "--dim", "steps=2", "--json"]


def assert_nothing_left(runtime: Path, before: set[str], runners_before: set[int]) -> None:
    assert sessions(runtime) == before  # the foreign one still there, none of the run's
    assert runners(runtime) <= runners_before


@pytest.mark.parametrize("case", ["module-pass", "module-fail", "module-timeout", "train", "eval"])
def test_command_leaves_no_sessions(
    case: str, foreign: set[str], runtime: Path, harness_home: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "run.sh").write_text("#!/bin/sh\necho running\n")
    args, expect = {
        "module-pass": (module_run(work, "true"), 0),
        "module-fail": (module_run(work, "false"), 1),
        "module-timeout": (module_run(work, "true", "--timeout", "0.05"), 2),
        "train": (train(tmp_path, "test -d dist"), 0),
        "eval": (eval_run(tmp_path), 0),
    }[case]
    held = runners(runtime)
    done = start(*args, home=harness_home)
    _, err = done.communicate(timeout=120)
    assert done.returncode == expect, err[-2000:]
    if case == "module-timeout":
        assert "timed out" in err
    assert_nothing_left(runtime, foreign, held)


@pytest.mark.parametrize("command", ["module", "train"])
def test_interrupted_run_leaves_no_sessions(
    command: str, foreign: set[str], runtime: Path, harness_home: Path, tmp_path: Path
) -> None:
    """SIGINT while the run's check runs in a pool runner and its session is open."""
    work = tmp_path / "work"
    work.mkdir()
    for name, text in CHECK.items():
        (work / name).write_text(text)
    check = "sh check.sh"
    args = module_run(work, check) if command == "module" else train(tmp_path, check)
    held = runners(runtime)
    done = start(*args, home=harness_home)
    try:
        # (train first tries each check on a fresh workspace, without a session)
        until(lambda: processes(SLEEP) and sessions(runtime) - foreign, "the run's check")
        done.send_signal(signal.SIGINT)
        done.wait(timeout=WAIT_S)
    finally:
        if done.poll() is None:
            done.kill()
            done.wait()
    assert done.returncode == 130, done.stderr.read()[-2000:] if done.stderr else ""
    assert_nothing_left(runtime, foreign, held)
    assert not processes(SLEEP)  # the check's process tree is gone


def test_demo_leaves_no_sessions(
    foreign: set[str], runtime: Path, harness_home: Path, tmp_path: Path
) -> None:
    held = runners(runtime)
    done = start("demo", "--kernel", "offline", home=harness_home)
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0, err[-2000:]
    assert "Held-out success" in out
    assert_nothing_left(runtime, foreign, held)


def test_a_run_never_ends_a_session_it_only_attached_to(
    foreign: set[str], runtime: Path, tmp_path: Path
) -> None:
    from mcp_harness.runtime import module

    spec = {
        "name": "attach",
        "dims": {"batch": 1},
        "inputs": {"session": ["batch"], "cmd": ["batch"]},
        "nodes": [
            {"id": "session", "op": "ft_input", "args": {"input": "session", "shape": ["batch"]}},
            {"id": "cmd", "op": "ft_input", "args": {"input": "cmd", "shape": ["batch"]}},
            {"id": "own", "op": "ft_tmux_create_session", "args": {"name": "mine"}},
            {"id": "ran", "op": "ft_tmux_run", "inputs": ["cmd", "session"]},
            {"id": "ran2", "op": "ft_tmux_run", "inputs": ["cmd", "own"]},
            {"id": "out", "op": "ft_format", "inputs": ["ran", "ran2"], "args": {"template": "-"}},
        ],
        "output": "out",
    }
    (tmp_path / "attach").mkdir()
    (tmp_path / "attach" / "module.json").write_text(json.dumps(spec))
    loaded = module.load(str(tmp_path / "attach"))
    inputs = {"session": ["foreign"], "cmd": ["echo attached"]}
    report = asyncio.run(module.run(loaded, inputs, kernel=None, run_dir=tmp_path / "run"))
    for name in ("ran", "ran2"):  # ran in the attached session, and in its own
        element = report.run.element(report.graph.nodes[name], (0,))
        assert element is not None and element.status.ok, name
    assert sessions(runtime) == foreign  # its own session ended, the attached one lives on
