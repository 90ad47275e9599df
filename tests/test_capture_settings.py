"""Installing capture into Claude Code's settings.json: nothing clobbered, exactly undone."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from mcp_harness.capture import settings
from mcp_harness.capture.records import (
    COMMANDS,
    HOOKS,
    TRANSCRIPTS,
    append_records,
    capture_dir,
    read_records,
)
from mcp_harness.capture.settings import HOOK_EVENTS, PREFIX_ENV, TOOL_EVENTS
from mcp_harness.errors import HarnessError

REPO = Path(__file__).resolve().parents[1]

USER_HOOK = {
    "matcher": "Bash",
    "hooks": [{"type": "command", "command": "/usr/local/bin/audit.sh pre", "timeout": 30}],
}
ORIGINAL: dict[str, Any] = {
    "model": "opus",
    "permissions": {"allow": ["Bash(ls:*)", "Read"], "deny": []},
    "env": {"FOO": "bar", "BASH_MAX_OUTPUT_LENGTH": "50000"},
    "hooks": {
        "PreToolUse": [USER_HOOK],
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
    },
    "enabledPlugins": {"demo@local": True},
    "statusLine": {"type": "command", "command": "echo ✓"},
}


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "claude-config"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(directory))
    return directory


@pytest.fixture
def prefix(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "mcp-harness-prefix"
    path.parent.mkdir()
    path.write_text('#!/bin/bash\nexec /bin/bash -c "${@: -1}"\n')
    path.chmod(0o755)
    return path


def write_settings(path: Path, value: Any, indent: int | None = 4) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = json.dumps(value, indent=indent, ensure_ascii=False).encode()
    path.write_bytes(raw)
    return raw


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def ours(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if any(settings.HOOK_MODULE in h["command"] for h in e["hooks"])]


# ---------------------------------------------------------------------------------------------
# install


def test_install_preserves_everything_else(config_dir: Path, prefix: Path) -> None:
    path = config_dir / "settings.json"
    original_bytes = write_settings(path, ORIGINAL)

    result = settings.install("user", prefix_path=prefix)

    assert result["path"] == str(path)
    assert result["changed"] is True
    assert result["prefix"] == str(prefix)
    data = load(path)
    for key in ("model", "permissions", "enabledPlugins", "statusLine"):
        assert data[key] == ORIGINAL[key]
    assert data["env"] == {**ORIGINAL["env"], PREFIX_ENV: str(prefix)}
    assert data["hooks"]["Stop"] == ORIGINAL["hooks"]["Stop"]
    assert data["hooks"]["PreToolUse"][0] == USER_HOOK  # the user's own hook stays first
    command = settings.hook_command()
    for event in HOOK_EVENTS:
        [entry] = ours(data["hooks"][event])
        assert entry == {
            **({"matcher": "Bash"} if event in TOOL_EVENTS else {}),
            "hooks": [{"type": "command", "command": command, "timeout": 10}],
        }
    assert len(data["hooks"]["PreToolUse"]) == 2
    # 2-space JSON, trailing newline; the untouched original is backed up once
    assert path.read_text() == json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    backup = config_dir / "settings.json.mcp-harness.bak"
    assert result["backup"] == str(backup)
    assert backup.read_bytes() == original_bytes


def test_hook_command_is_absolute_and_quoted(tmp_path: Path) -> None:
    command = settings.hook_command()
    argv = shlex.split(command)
    assert argv == [os.path.abspath(sys.executable), "-I", "-m", "mcp_harness.capture.hooks"]
    odd = settings.hook_command(str(tmp_path / "my venv" / "bin" / "python"))
    assert shlex.split(odd)[0] == str(tmp_path / "my venv" / "bin" / "python")


def test_install_twice_is_idempotent(config_dir: Path, prefix: Path) -> None:
    path = config_dir / "settings.json"
    write_settings(path, ORIGINAL)
    settings.install("user", prefix_path=prefix)
    first = path.read_bytes()
    again = settings.install("user", prefix_path=prefix)
    assert again["changed"] is False
    assert again["changes"] == []
    assert again["backup"] is None
    assert path.read_bytes() == first


def test_install_replaces_a_stale_hook_command(config_dir: Path, prefix: Path) -> None:
    path = config_dir / "settings.json"
    stale = "/old/venv/bin/python -I -m mcp_harness.capture.hooks"
    write_settings(
        path,
        {
            "hooks": {
                "SessionStart": [
                    {
                        "hooks": [
                            {"type": "command", "command": stale},
                            {"type": "command", "command": "x"},
                        ]
                    }
                ]
            }
        },
    )
    settings.install("user", prefix_path=prefix)
    entries = load(path)["hooks"]["SessionStart"]
    assert entries[0] == {"hooks": [{"type": "command", "command": "x"}]}
    assert [h["command"] for e in ours(entries) for h in e["hooks"]] == [settings.hook_command()]


def test_install_creates_missing_file(config_dir: Path, prefix: Path) -> None:
    result = settings.install("user", prefix_path=prefix)
    path = config_dir / "settings.json"
    assert result["backup"] is None
    assert load(path)["env"] == {PREFIX_ENV: str(prefix)}
    assert set(load(path)["hooks"]) == set(HOOK_EVENTS)
    assert not (config_dir / "settings.json.mcp-harness.bak").exists()


def test_conflicting_prefix_needs_force(config_dir: Path, prefix: Path) -> None:
    path = config_dir / "settings.json"
    theirs = {**ORIGINAL, "env": {"FOO": "bar", PREFIX_ENV: "/opt/other/wrap.sh"}}
    original_bytes = write_settings(path, theirs)

    with pytest.raises(HarnessError) as info:
        settings.install("user", prefix_path=prefix)
    assert "/opt/other/wrap.sh" in info.value.message
    assert str(path) in info.value.message
    assert "--force" in (info.value.fix or "")
    assert path.read_bytes() == original_bytes
    assert not (config_dir / "settings.json.mcp-harness.bak").exists()

    result = settings.install("user", prefix_path=prefix, force=True)
    assert result["replaced_prefix"] == "/opt/other/wrap.sh"
    assert load(path)["env"] == {"FOO": "bar", PREFIX_ENV: str(prefix)}
    assert (config_dir / "settings.json.mcp-harness.bak").read_bytes() == original_bytes


def test_invalid_json_is_a_clear_error(config_dir: Path, prefix: Path) -> None:
    path = config_dir / "settings.json"
    path.parent.mkdir(parents=True)
    broken = b'{\n  "model": "opus",\n  "env": {"A": 1,}\n}\n'
    path.write_bytes(broken)
    for call in (
        lambda: settings.install("user", prefix_path=prefix),
        lambda: settings.uninstall("user", prefix_path=prefix),
    ):
        with pytest.raises(HarnessError) as info:
            call()
        assert str(path) in info.value.message
        assert "line 3" in info.value.message
        assert info.value.fix
    assert path.read_bytes() == broken
    assert sorted(p.name for p in config_dir.iterdir()) == ["settings.json"]
    status = settings.status(prefix_path=prefix)
    assert "line 3" in status["scopes"]["user"]["error"]


@pytest.mark.parametrize(
    "content",
    [b"[1, 2]", b'{"env": ["A=1"]}', b'{"hooks": {"PreToolUse": {"matcher": "Bash"}}}'],
)
def test_wrong_shapes_are_refused(config_dir: Path, prefix: Path, content: bytes) -> None:
    path = config_dir / "settings.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(HarnessError, match=r"settings\.json"):
        settings.install("user", prefix_path=prefix)
    assert path.read_bytes() == content


def test_unknown_scope() -> None:
    with pytest.raises(HarnessError, match="scope"):
        settings.install("global", prefix_path=Path("/x"))


def test_user_scope_default_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: Path
) -> None:
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    result = settings.install("user", prefix_path=prefix)
    assert result["path"] == str(tmp_path / "home" / ".claude" / "settings.json")


def test_default_prefix_comes_from_prefix_module(
    config_dir: Path, prefix: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = types.ModuleType("mcp_harness.capture.prefix")
    fake.prefix_path = lambda: prefix  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mcp_harness.capture.prefix", fake)
    settings.install("user")
    assert load(config_dir / "settings.json")["env"][PREFIX_ENV] == str(prefix)
    assert settings.status()["scopes"]["user"]["installed"] is True
    settings.uninstall("user")
    assert not (config_dir / "settings.json").exists()  # install created it: nothing left


# ---------------------------------------------------------------------------------------------
# uninstall


def test_uninstall_restores_the_original(config_dir: Path, prefix: Path) -> None:
    path = config_dir / "settings.json"
    write_settings(path, ORIGINAL)
    settings.install("user", prefix_path=prefix)
    result = settings.uninstall("user", prefix_path=prefix)
    assert result["changed"] is True
    assert load(path) == ORIGINAL
    assert list(load(path)) == list(ORIGINAL)  # key order kept too
    assert settings.uninstall("user", prefix_path=prefix)["changed"] is False


def test_uninstall_drops_keys_that_become_empty(config_dir: Path, prefix: Path) -> None:
    path = config_dir / "settings.json"
    write_settings(path, {"model": "opus"})
    settings.install("user", prefix_path=prefix)
    settings.uninstall("user", prefix_path=prefix)
    assert load(path) == {"model": "opus"}


def test_uninstall_of_empty_original_keys(config_dir: Path, prefix: Path) -> None:
    path = config_dir / "settings.json"
    write_settings(path, {"env": {}, "hooks": {}})
    settings.install("user", prefix_path=prefix)
    settings.uninstall("user", prefix_path=prefix)
    assert load(path) == {}  # `env`/`hooks` emptied by our removal go; semantics are the same


def test_uninstall_keeps_a_prefix_changed_since(config_dir: Path, prefix: Path) -> None:
    path = config_dir / "settings.json"
    write_settings(path, ORIGINAL)
    settings.install("user", prefix_path=prefix)
    data = load(path)
    data["env"][PREFIX_ENV] = "/opt/other/wrap.sh"
    data["hooks"]["PostToolUse"].insert(0, USER_HOOK)
    write_settings(path, data, indent=2)
    result = settings.uninstall("user", prefix_path=prefix)
    assert result["kept_prefix"] == "/opt/other/wrap.sh"
    after = load(path)
    assert after["env"] == {**ORIGINAL["env"], PREFIX_ENV: "/opt/other/wrap.sh"}
    assert after["hooks"] == {**ORIGINAL["hooks"], "PostToolUse": [USER_HOOK]}


def test_uninstall_without_settings_file(config_dir: Path, prefix: Path) -> None:
    result = settings.uninstall("user", prefix_path=prefix)
    assert result["changed"] is False
    assert not (config_dir / "settings.json").exists()


# ---------------------------------------------------------------------------------------------
# project scope and status


def test_project_scope(tmp_path: Path, config_dir: Path, prefix: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    result = settings.install("project", project_dir=project, prefix_path=prefix)
    path = project / ".claude" / "settings.json"
    assert result["path"] == str(path)
    assert load(path)["env"] == {PREFIX_ENV: str(prefix)}
    assert not (config_dir / "settings.json").exists()

    status = settings.status(project_dir=project, prefix_path=prefix)
    assert status["scopes"]["project"]["installed"] is True
    assert status["scopes"]["project"]["path"] == str(path)
    assert status["scopes"]["user"]["installed"] is False
    assert status["scopes"]["user"]["hooks"] == dict.fromkeys(HOOK_EVENTS, False)

    removed = settings.uninstall("project", project_dir=project, prefix_path=prefix)
    assert removed["removed_file"] is True  # install created it, so nothing is left behind
    assert not path.exists()


def test_project_scope_defaults_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    result = settings.install("project", prefix_path=prefix)
    assert result["path"] == str(tmp_path / ".claude" / "settings.json")


def test_status_counts_records(config_dir: Path, prefix: Path) -> None:
    empty = settings.status(prefix_path=prefix)
    assert empty["records"][HOOKS] == {"lines": 0, "last_ts": None}
    assert empty["last_record_ts"] is None
    assert isinstance(empty["tmux"], bool)
    assert empty["prefix"] == str(prefix) and empty["prefix_exists"] is True

    settings.install("user", prefix_path=prefix)
    append_records(HOOKS, [{"kind": "hook", "ts": f"2026-01-0{i}T00:00:00.000Z"} for i in (1, 2)])
    append_records(COMMANDS, [{"kind": "command", "ts": "2026-01-05T00:00:00.000Z"}])
    with (capture_dir() / HOOKS).open("a") as handle:
        handle.write('{"kind": "hook", "ts": "2026-01-09')  # a crash-truncated last line
    status = settings.status(prefix_path=prefix)
    assert status["scopes"]["user"]["installed"] is True
    assert status["scopes"]["user"]["prefix"] == str(prefix)
    assert status["records"][HOOKS] == {"lines": 2, "last_ts": "2026-01-02T00:00:00.000Z"}
    assert status["records"][COMMANDS] == {"lines": 1, "last_ts": "2026-01-05T00:00:00.000Z"}
    assert status["records"][TRANSCRIPTS] == {"lines": 0, "last_ts": None}
    assert status["last_record_ts"] == "2026-01-05T00:00:00.000Z"


def test_status_finds_last_ts_behind_a_large_record(prefix: Path) -> None:
    big = "x" * 200_000
    append_records(
        TRANSCRIPTS,
        [{"kind": "transcript", "ts": "2026-02-01T00:00:00Z", "output": big} for _ in range(3)],
    )
    status = settings.status(prefix_path=prefix)
    assert status["records"][TRANSCRIPTS] == {"lines": 3, "last_ts": "2026-02-01T00:00:00Z"}


# ---------------------------------------------------------------------------------------------
# the installed hooks really run


def test_installed_hook_command_records(config_dir: Path, prefix: Path) -> None:
    settings.install("user", prefix_path=prefix)
    data = load(config_dir / "settings.json")
    [entry] = ours(data["hooks"]["UserPromptSubmit"])
    command = entry["hooks"][0]["command"]
    payload = {
        "session_id": "s1",
        "transcript_path": "/t.jsonl",
        "cwd": "/p",
        "hook_event_name": "UserPromptSubmit",
        "prompt": "hi",
    }
    # Claude Code runs it through the prefix as `/bin/sh -c "<prefix> '<hook command>'"`
    wrapped = f"{shlex.quote(str(prefix))} {shlex.quote(command)}"
    result = subprocess.run(
        ["/bin/sh", "-c", wrapped],
        input=json.dumps(payload).encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, b"")
    [record] = list(read_records(HOOKS))
    assert record["prompt"] == "hi"


def _find_claude() -> str | None:
    explicit = os.environ.get("CLAUDE_BIN")
    if explicit:
        return explicit
    local = REPO / ".cache" / "claude-code" / "node_modules" / ".bin" / "claude"
    return str(local) if local.exists() else None


def test_project_install_works_in_claude_session(tmp_path: Path, prefix: Path) -> None:
    """Real CLI, no login: the prefix passes hooks through and our hooks record the session."""
    claude = _find_claude()
    if claude is None:
        pytest.skip("no claude binary (set CLAUDE_BIN or npm install into .cache/claude-code)")
    project = tmp_path / "proj"
    project.mkdir()
    settings.install("project", project_dir=project, prefix_path=prefix)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE", "ANTHROPIC"))}
    env.update(HOME=str(tmp_path / "home"), CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1")
    subprocess.run(
        [claude, "--strict-mcp-config", "--mcp-config", '{"mcpServers": {}}', "-p", "howdy"],
        cwd=project,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    events = {r["event"]: r for r in read_records(HOOKS)}
    assert {"SessionStart", "UserPromptSubmit"} <= set(events), events
    assert events["UserPromptSubmit"]["prompt"] == "howdy"
