"""`serve --http` with the real Claude Code CLI: the `claude mcp add --transport http …
--header "Authorization: Bearer …"` line the server prints registers it as it is, and
`claude mcp list` connects; the same server registered without the header does not."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from tests.http_fixtures import serve_http

TIMEOUT_S = 120


def _env(tmp_path: Path) -> dict[str, str]:
    drop = ("CLAUDE", "ANTHROPIC", "MCP_HARNESS", "TMUX")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and k != "_"}
    env.update(
        HOME=str(tmp_path / "home"),
        CLAUDE_CONFIG_DIR=str(tmp_path / "claude-config"),
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        MCP_TIMEOUT="20000",
    )
    return env


def _claude(claude_bin: Path, args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [str(claude_bin), *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_printed_line_registers_the_server(
    claude_bin: Path, harness_home: Path, tmp_path: Path
) -> None:
    (tmp_path / "home").mkdir()
    env = _env(tmp_path)
    with serve_http(harness_home, tmp_path) as served:
        printed = next(
            line.strip()
            for line in served.log.read_text().splitlines()
            if line.strip().startswith("claude mcp add --transport http")
        )
        command = shlex.split(printed)
        assert command[:5] == ["claude", "mcp", "add", "--transport", "http"]
        _claude(claude_bin, [*command[1:3], "-s", "user", *command[3:]], env, tmp_path)
        _claude(
            claude_bin,
            ["mcp", "add", "-s", "user", "--transport", "http", "nokey", served.url],
            env,
            tmp_path,
        )
        listed = _claude(claude_bin, ["mcp", "list"], env, tmp_path)
    lines = {line.split(":", 1)[0]: line for line in listed.splitlines() if ": http" in line}
    assert "✔ Connected" in lines["harness"], listed
    assert "✔ Connected" not in lines["nokey"], listed
