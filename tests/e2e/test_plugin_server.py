"""The Claude Code plugin's `.mcp.json` starts the MCP server: a headless session with
`--plugin-dir adapters/claude_code` can call the harness tools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from mcp_harness.terminal.pool import shutdown
from tests.e2e.fake_anthropic import FakeAnthropic, text_of

PLUGIN = Path(__file__).resolve().parents[2] / "adapters" / "claude_code"
TOOL = "mcp__plugin_mcp-harness_harness__module_list"


def test_plugin_mcp_json_starts_the_server(claude_bin: Path, tmp_path: Path) -> None:
    runtime = Path(tempfile.mkdtemp(prefix="mh-plugin-", dir="/tmp"))
    drop = ("CLAUDE", "ANTHROPIC", "MCP_HARNESS", "TMUX")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    (tmp_path / "home").mkdir()
    fake = FakeAnthropic([{"tool": TOOL, "input": {}}]).start()
    try:
        env.update(
            HOME=str(tmp_path / "home"),
            CLAUDE_CONFIG_DIR=str(tmp_path / "config"),
            CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
            MCP_CONNECTION_NONBLOCKING="0",
            MCP_HARNESS_PYTHON=sys.executable,
            MCP_HARNESS_HOME=str(tmp_path / "harness"),
            MCP_HARNESS_RUNTIME_DIR=str(runtime),
            ANTHROPIC_BASE_URL=fake.url,
            ANTHROPIC_API_KEY="sk-ant-dummy",
        )
        done = subprocess.run(
            [
                str(claude_bin),
                "-p",
                "list the harness modules",
                "--output-format",
                "json",
                "--plugin-dir",
                str(PLUGIN),
                "--allowedTools",
                TOOL,
            ],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout)["result"] == "done"
        assert TOOL in fake.main_requests()[0].tool_names
        answer = fake.tool_results()["toolu_000"]
        assert not answer.get("is_error"), text_of(answer)
        assert "coder" in text_of(answer)
    finally:
        fake.stop()
        shutdown(runtime)
