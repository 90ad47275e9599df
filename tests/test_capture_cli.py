"""`mcp-harness capture …` and `harvest` as users run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mcp_harness.capture.records import COMMANDS, HOOKS, append_records

SCRIPT = str(Path(sys.executable).parent / "mcp-harness")


def cli(*args: str, home: Path, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MCP_HARNESS_HOME": str(home), **(extra or {})}
    done = subprocess.run([SCRIPT, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def test_prefix_path_is_an_executable_wrapper(harness_home: Path) -> None:
    path = Path(cli("capture", "prefix-path", home=harness_home).stdout.strip())
    assert path == harness_home / "bin" / "mcp-harness-prefix"
    assert os.access(path, os.X_OK)
    passed = subprocess.run([str(path), "echo through"], capture_output=True, text=True)
    assert passed.stdout == "through\n"


def test_install_status_uninstall_project_scope(harness_home: Path, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    settings = project / ".claude" / "settings.json"
    settings.write_text(json.dumps({"model": "opus", "env": {"KEEP": "1"}}, indent=2))
    env = {"HOME": str(tmp_path / "home"), "CLAUDE_CONFIG_DIR": str(tmp_path / "cfg")}
    cli(
        "capture",
        "install",
        "--scope",
        "project",
        "--project-dir",
        str(project),
        home=harness_home,
        extra=env,
    )
    installed = json.loads(settings.read_text())
    assert installed["model"] == "opus" and installed["env"]["KEEP"] == "1"
    assert installed["env"]["CLAUDE_CODE_SHELL_PREFIX"].endswith("mcp-harness-prefix")
    assert set(installed["hooks"]) == {
        "UserPromptSubmit",
        "PreToolUse",
        "PostToolUse",
        "PostToolUseFailure",
        "SessionStart",
        "SessionEnd",
    }
    status = json.loads(
        cli(
            "capture",
            "status",
            "--json",
            "--project-dir",
            str(project),
            home=harness_home,
            extra=env,
        ).stdout
    )
    assert status["scopes"]["project"]["installed"] is True
    assert (
        "installed (prefix on, hooks 6/6)"
        in cli(
            "capture", "status", "--project-dir", str(project), home=harness_home, extra=env
        ).stdout
    )
    cli(
        "capture",
        "uninstall",
        "--scope",
        "project",
        "--project-dir",
        str(project),
        home=harness_home,
        extra=env,
    )
    assert json.loads(settings.read_text()) == {"model": "opus", "env": {"KEEP": "1"}}


def test_log_and_harvest_from_records(harness_home: Path) -> None:
    capture = harness_home / "capture"
    common = {"session_id": "s1", "cwd": "/home/dev/web-app", "transcript_path": None}
    append_records(
        HOOKS,
        [
            {
                "kind": "hook",
                "ts": "2026-11-27T10:00:00.000+00:00",
                "event": "UserPromptSubmit",
                "prompt": "run the unit tests",
                **common,
            },
            {
                "kind": "hook",
                "ts": "2026-11-27T10:00:01.000+00:00",
                "event": "PreToolUse",
                "tool_use_id": "toolu_1",
                "command": "pytest -q",
                "description": "Run unit tests",
                **common,
            },
            {
                "kind": "hook",
                "ts": "2026-11-27T10:00:03.000+00:00",
                "event": "PostToolUse",
                "tool_use_id": "toolu_1",
                "command": "pytest -q",
                "exit_code": 0,
                **common,
            },
        ],
        capture,
    )
    append_records(
        COMMANDS,
        [
            {
                "kind": "command",
                "id": "w1",
                "ts": "2026-11-27T10:00:01.500+00:00",
                "duration_ms": 900,
                "session_id": "s1",
                "cwd": "/home/dev/web-app",
                "command": "pytest -q",
                "command_raw": "eval 'pytest -q'",
                "exit_code": 0,
                "signal": None,
                "output": "3 passed\n",
                "output_bytes": 9,
                "screen_before": "$ ",
                "screen_after": "3 passed",
                "pane": "%0",
                "runner": "tmux",
            }
        ],
        capture,
    )
    log = json.loads(cli("capture", "log", "--json", home=harness_home).stdout)
    assert len(log) == 1
    assert (log[0]["command"], log[0]["description"], log[0]["exit_code"]) == (
        "pytest -q",
        "Run unit tests",
        0,
    )
    assert "pytest -q" in cli("capture", "log", home=harness_home).stdout
    report = json.loads(cli("harvest", "--no-transcripts", "--json", home=harness_home).stdout)
    added = {Path(path).name: info["added"] for path, info in report["tensors"].items()}
    assert added == {"dev-web-app.decision": 1, "dev-web-app.command": 1}
    rows = json.loads(
        cli("experience", "show", "dev-web-app.command", "--json", home=harness_home).stdout
    )
    assert (rows[0]["key"], rows[0]["value"]) == ("Run unit tests", "pytest -q")
    again = json.loads(cli("harvest", "--no-transcripts", "--json", home=harness_home).stdout)
    assert all(info["added"] == 0 for info in again["tensors"].values())
