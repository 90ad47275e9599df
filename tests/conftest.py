"""Shared fixtures: every test gets its own data home, so nothing touches the user's files."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def harness_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "harness-home"
    monkeypatch.setenv("MCP_HARNESS_HOME", str(home))
    monkeypatch.setenv("MCP_HARNESS_TOOLS", "all")  # servers offer every toolset, terminal too
    return home


pytest_plugins = ["tests.terminal_fixtures", "tests.pg_fixtures"]
