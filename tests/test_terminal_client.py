"""The Python client of the pane pool (validators' checks) on a real tmux server."""

from __future__ import annotations

from pathlib import Path

from mcp_harness.terminal.client import run as run_in_pane


def test_python_client_reports_screens_and_status(runtime: Path) -> None:
    result = run_in_pane("echo visible; echo err >&2; exit 6", cwd="/tmp")
    assert (result.exit_code, result.signal) == (6, None)
    assert (result.stdout, result.stderr) == (b"visible\n", b"err\n")
    assert "visible" in result.screen_after and "[exit 6]" in result.screen_after
    killed = run_in_pane("kill -KILL $$")
    assert (killed.exit_code, killed.signal) == (None, 9)
