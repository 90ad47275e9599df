"""The hook handler (`python -I -m mcp_harness.capture.hooks`) and the Claude Code plugin."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mcp_harness.capture import hooks
from mcp_harness.capture.records import HOOKS, WRAPPER_LOG, HookRecord, capture_dir, read_records
from mcp_harness.capture.settings import HOOK_EVENTS, TOOL_EVENTS

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "adapters" / "claude_code"
SECRET = "sk-ant-api03-Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LzXcVbNm-_aBcDeFgHiJkLmNoP"

COMMON = {
    "session_id": "62aaf4de-1111-2222-3333-444455556666",
    "transcript_path": "/home/dev/.claude/projects/-home-dev-proj/62aaf4de.jsonl",
    "cwd": "/home/dev/proj",
}
TOOL_COMMON = {**COMMON, "prompt_id": "ac9c5fc2-aaaa", "permission_mode": "default"}

# Shapes copied from the reference (claude-code.md §3.2, Claude Code 2.1.197).
PAYLOADS: dict[str, dict[str, Any]] = {
    "SessionStart": {**COMMON, "hook_event_name": "SessionStart", "source": "startup"},
    "UserPromptSubmit": {
        **TOOL_COMMON,
        "hook_event_name": "UserPromptSubmit",
        "prompt": "run some commands",
    },
    "PreToolUse": {
        **TOOL_COMMON,
        "effort": {"level": "high"},
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {
            "command": "pwd; echo FOO=$FOO_PERSIST",
            "timeout": 60000,
            "description": "Check persistence",
        },
        "tool_use_id": "toolu_02",
    },
    "PostToolUse": {
        **TOOL_COMMON,
        "hook_event_name": "PostToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "echo hello; echo err >&2; pwd", "description": "Print hello"},
        "tool_response": {
            "stdout": "hello\nerr\n/home/dev/proj",
            "stderr": "",
            "interrupted": False,
            "isImage": False,
            "noOutputExpected": False,
        },
        "tool_use_id": "toolu_00",
        "duration_ms": 38,
    },
    "PostToolUseFailure": {
        **TOOL_COMMON,
        "hook_event_name": "PostToolUseFailure",
        "tool_name": "Bash",
        "tool_input": {"command": "echo x; exit 3", "description": "fail"},
        "tool_use_id": "toolu_020",
        "error": "Exit code 3\nx",
        "is_interrupt": False,
        "duration_ms": 15,
    },
    "SessionEnd": {**COMMON, "hook_event_name": "SessionEnd", "reason": "other"},
}

EXPECTED: dict[str, dict[str, Any]] = {
    "SessionStart": {"source": "startup"},
    "UserPromptSubmit": {"prompt": "run some commands"},
    "PreToolUse": {
        "tool_use_id": "toolu_02",
        "command": "pwd; echo FOO=$FOO_PERSIST",
        "description": "Check persistence",
    },
    "PostToolUse": {
        "tool_use_id": "toolu_00",
        "command": "echo hello; echo err >&2; pwd",
        "description": "Print hello",
        "exit_code": 0,
    },
    "PostToolUseFailure": {
        "tool_use_id": "toolu_020",
        "command": "echo x; exit 3",
        "description": "fail",
        "exit_code": 3,
        "error": "Exit code 3\nx",
    },
    "SessionEnd": {"reason": "other"},
}


def run_hook(stdin: bytes | str, **env: str) -> subprocess.CompletedProcess[bytes]:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    return subprocess.run(
        [sys.executable, "-I", "-m", "mcp_harness.capture.hooks"],
        input=data,
        capture_output=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )


def hook_records() -> list[dict[str, Any]]:
    return list(read_records(HOOKS))


def log_lines() -> list[str]:
    path = capture_dir() / WRAPPER_LOG
    return path.read_text().splitlines() if path.exists() else []


def find_claude() -> str | None:
    explicit = os.environ.get("CLAUDE_BIN")
    if explicit:
        return explicit
    local = REPO / ".cache" / "claude-code" / "node_modules" / ".bin" / "claude"
    return str(local) if local.exists() else None


# ---------------------------------------------------------------------------------------------
# the handler, run as Claude Code runs it


@pytest.mark.parametrize("event", list(PAYLOADS))
def test_each_event_appends_one_record(event: str) -> None:
    result = run_hook(json.dumps(PAYLOADS[event]))
    assert result.returncode == 0
    assert result.stdout == b""
    records = hook_records()
    assert len(records) == 1
    record = records[0]
    assert record["kind"] == "hook"
    assert record["event"] == event
    assert record["session_id"] == COMMON["session_id"]
    assert record["cwd"] == COMMON["cwd"]
    assert record["transcript_path"] == COMMON["transcript_path"]
    assert record["ts"].endswith("Z") and record["ts"][:2] == "20"
    for key, value in EXPECTED[event].items():
        assert record[key] == value, key
    base = {"kind", "ts", "event", "session_id", "cwd", "transcript_path"}
    assert set(record) == base | set(EXPECTED[event])
    assert log_lines() == []


def test_events_append_in_order() -> None:
    for event in ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "SessionEnd"):
        assert run_hook(json.dumps(PAYLOADS[event])).returncode == 0
    events = [r["event"] for r in hook_records()]
    assert events == ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "SessionEnd"]


@pytest.mark.parametrize(
    ("error", "interrupt", "code"),
    [
        ("Exit code 143\nCommand timed out after 1s", False, 143),
        ("Exit code 1", False, 1),
        ("Command was interrupted", True, None),
        ("Exit code 2\nbut interrupted", True, None),
        ("something else entirely", False, None),
        (None, False, None),
    ],
)
def test_failure_exit_code(error: str | None, interrupt: bool, code: int | None) -> None:
    payload = {**PAYLOADS["PostToolUseFailure"], "error": error, "is_interrupt": interrupt}
    assert run_hook(json.dumps(payload)).returncode == 0
    [record] = hook_records()
    assert record["exit_code"] == code
    assert record["error"] == error


@pytest.mark.parametrize(
    ("extra", "code"),
    [({}, 0), ({"backgroundTaskId": "b1"}, None), ({"interrupted": True}, None)],
)
def test_success_exit_code(extra: dict[str, Any], code: int | None) -> None:
    base = PAYLOADS["PostToolUse"]
    payload = {**base, "tool_response": {**base["tool_response"], **extra}}
    assert run_hook(json.dumps(payload)).returncode == 0
    [record] = hook_records()
    assert record["exit_code"] == code


@pytest.mark.parametrize("event", TOOL_EVENTS)
def test_non_bash_tool_events_are_ignored(event: str) -> None:
    payload = {
        **PAYLOADS[event],
        "tool_name": "mcp__harness__ft_forward",
        "tool_input": {"x": 1},
        "mcp_server": {"name": "harness", "source": "local"},
    }
    result = run_hook(json.dumps(payload))
    assert (result.returncode, result.stdout) == (0, b"")
    assert hook_records() == []
    assert log_lines() == []


def test_secret_in_command_is_redacted() -> None:
    payload = {
        **PAYLOADS["PostToolUseFailure"],
        "tool_input": {"command": f"ANTHROPIC_API_KEY={SECRET} claude -p hi", "description": "x"},
        "error": f"Exit code 1\ninvalid key {SECRET}",
    }
    assert run_hook(json.dumps(payload)).returncode == 0
    raw = (capture_dir() / HOOKS).read_text()
    assert SECRET not in raw
    assert SECRET[20:40] not in raw
    [record] = hook_records()
    assert "[REDACTED]" in record["command"]
    assert record["command"].endswith(" claude -p hi")
    assert "[REDACTED]" in record["error"]


def test_unicode_and_odd_field_types_survive() -> None:
    payload = {**PAYLOADS["UserPromptSubmit"], "prompt": "räksmörgås ✓ 日本"}
    assert run_hook(json.dumps(payload, ensure_ascii=False)).returncode == 0
    payload = {**PAYLOADS["PreToolUse"], "tool_input": "not a dict", "tool_use_id": 7}
    assert run_hook(json.dumps(payload)).returncode == 0
    first, second = hook_records()
    assert first["prompt"] == "räksmörgås ✓ 日本"
    assert second["command"] is None and second["description"] is None
    assert second["tool_use_id"] == "7"


@pytest.mark.parametrize(
    ("stdin", "needle"),
    [
        (b"", "empty stdin"),
        (b"   \n", "empty stdin"),
        (b"{not json", "not valid JSON"),
        (b'{"hook_event_name": "PreToolUse", ', "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"[1, 2, 3]", "not an object"),
        (b'{"hook_event_name": "Stop", "session_id": "s"}', "unknown hook event 'Stop'"),
        (b'{"session_id": "s"}', "unknown hook event None"),
    ],
)
def test_bad_stdin_is_logged_never_fatal(stdin: bytes, needle: str) -> None:
    result = run_hook(stdin)
    assert result.returncode == 0
    assert result.stdout == b""
    assert result.stderr == b""
    assert not (capture_dir() / HOOKS).exists()
    lines = log_lines()
    assert len(lines) == 1
    assert "hooks[" in lines[0] and needle in lines[0]


def test_unwritable_data_dir_exits_zero(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data dir should be")
    result = run_hook(json.dumps(PAYLOADS["PreToolUse"]), MCP_HARNESS_HOME=str(blocker))
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    assert blocker.read_text() == "a file where the data dir should be"


def test_unwritable_hooks_file_is_logged(harness_home: Path) -> None:
    (capture_dir() / HOOKS).mkdir(parents=True)  # a directory where the file should be
    result = run_hook(json.dumps(PAYLOADS["PreToolUse"]))
    assert (result.returncode, result.stdout) == (0, b"")
    [line] = log_lines()
    assert "cannot record hook event" in line


def test_open_stdin_does_not_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """If Claude Code ever kept stdin open, the handler still records and returns."""
    read_fd, write_fd = os.pipe()
    os.write(write_fd, json.dumps(PAYLOADS["SessionStart"]).encode())
    try:
        with os.fdopen(read_fd, "r") as stdin:
            monkeypatch.setattr(sys, "stdin", stdin)
            monkeypatch.setattr(hooks, "STDIN_DEADLINE_S", 0.3)
            assert hooks.main() == 0
    finally:
        os.close(write_fd)
    [record] = hook_records()
    assert record["source"] == "startup"


def test_session_id_falls_back_to_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDE_CODE_SESSION_ID", "from-env")
    payload = {k: v for k, v in PAYLOADS["SessionEnd"].items() if k != "session_id"}
    record = hooks.build_record(payload)
    assert record["session_id"] == "from-env"
    assert set(record) <= set(HookRecord.__annotations__)


def test_parse_exit_code() -> None:
    assert hooks.parse_exit_code("Exit code 3\nx") == 3
    assert hooks.parse_exit_code("Exit code 127") == 127
    assert hooks.parse_exit_code("exit code 3") is None
    assert hooks.parse_exit_code("x\nExit code 3") is None
    assert hooks.parse_exit_code(3) is None


def test_module_imports_stay_light() -> None:
    code = (
        "import sys, mcp_harness.capture.hooks; "
        "import mcp_harness.capture.records; "
        "print(sorted(m for m in ('torch', 'numpy', 'argparse') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# the plugin


def test_plugin_files() -> None:
    manifest = json.loads((PLUGIN / ".claude-plugin" / "plugin.json").read_text())
    assert manifest["name"] == "mcp-harness"
    assert manifest["license"] == "MIT"
    assert manifest["version"] and manifest["description"] and manifest["author"]["name"]

    config = json.loads((PLUGIN / "hooks" / "hooks.json").read_text())["hooks"]
    assert tuple(config) == HOOK_EVENTS
    for event, entries in config.items():
        [entry] = entries
        assert entry.get("matcher") == ("Bash" if event in TOOL_EVENTS else None)
        [handler] = entry["hooks"]
        assert handler["type"] == "command"
        assert "${CLAUDE_PLUGIN_ROOT}/bin/mcp-harness-hook" in handler["command"]
        assert handler["timeout"] == 10

    assert json.loads((PLUGIN / ".mcp.json").read_text()) == {
        "mcpServers": {
            "harness": {"command": "${CLAUDE_PLUGIN_ROOT}/bin/mcp-harness", "args": ["serve"]}
        }
    }
    for name in ("mcp-harness-hook", "mcp-harness"):
        script = PLUGIN / "bin" / name
        assert os.access(script, os.X_OK), name
        assert script.read_text().startswith("#!/usr/bin/env bash\n")


def test_plugin_hook_script_records(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(PLUGIN / "bin" / "mcp-harness-hook")],
        input=json.dumps(PAYLOADS["PostToolUse"]).encode(),
        capture_output=True,
        env={**os.environ, "CLAUDE_PLUGIN_ROOT": str(PLUGIN), "MCP_HARNESS_PYTHON": sys.executable},
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, b"")
    [record] = hook_records()
    assert record["event"] == "PostToolUse" and record["exit_code"] == 0


def test_plugin_hook_script_without_python_is_silent(tmp_path: Path) -> None:
    bash = shutil.which("bash") or "/bin/bash"
    env = {
        "PATH": str(tmp_path / "empty-bin"),
        "CLAUDE_PLUGIN_ROOT": str(tmp_path / "plugin"),
        "MCP_HARNESS_HOME": os.environ["MCP_HARNESS_HOME"],
    }
    result = subprocess.run(
        [bash, str(PLUGIN / "bin" / "mcp-harness-hook")],
        input=json.dumps(PAYLOADS["SessionStart"]).encode(),
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    assert hook_records() == []


def test_plugin_cli_script_runs_mcp_harness() -> None:
    result = subprocess.run(
        [str(PLUGIN / "bin" / "mcp-harness"), "--version"],
        capture_output=True,
        text=True,
        env={**os.environ, "MCP_HARNESS_PYTHON": sys.executable},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "0." in result.stdout + result.stderr


def _claude_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE", "ANTHROPIC"))}
    env.update(HOME=str(home), CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_TELEMETRY="1")
    return env


def test_plugin_validates_with_claude_cli(tmp_path: Path) -> None:
    claude = find_claude()
    if claude is None:
        pytest.skip("no claude binary (set CLAUDE_BIN or npm install into .cache/claude-code)")
    result = subprocess.run(
        [claude, "plugin", "validate", str(PLUGIN)],
        capture_output=True,
        text=True,
        env=_claude_env(tmp_path),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✔ Validation passed" in result.stdout
    assert "warning" not in result.stdout.lower()


def test_plugin_hooks_fire_in_claude_session(tmp_path: Path) -> None:
    """`claude -p` without a login still runs SessionStart/UserPromptSubmit/SessionEnd hooks."""
    claude = find_claude()
    if claude is None:
        pytest.skip("no claude binary (set CLAUDE_BIN or npm install into .cache/claude-code)")
    project = tmp_path / "proj"
    project.mkdir()
    env = {**_claude_env(tmp_path), "MCP_HARNESS_PYTHON": sys.executable}
    subprocess.run(
        [
            claude,
            "--plugin-dir",
            str(PLUGIN),
            "--strict-mcp-config",
            "--mcp-config",
            '{"mcpServers": {}}',
            "-p",
            "hello from the test",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    records = hook_records()
    events = [r["event"] for r in records]
    assert "SessionStart" in events and "UserPromptSubmit" in events, (events, log_lines())
    prompt = next(r for r in records if r["event"] == "UserPromptSubmit")
    assert prompt["prompt"] == "hello from the test"
    assert prompt["cwd"] == str(project.resolve())
    assert prompt["session_id"] and prompt["transcript_path"].endswith(".jsonl")
