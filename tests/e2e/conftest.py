"""Fixtures for the end-to-end tests that drive the real Claude Code CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCAL_CLAUDE = REPO / ".cache" / "claude-code" / "node_modules" / ".bin" / "claude"


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    """The real `claude` binary: `$CLAUDE_BIN`, else the CI install under `.cache/claude-code`."""
    explicit = os.environ.get("CLAUDE_BIN")
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"CLAUDE_BIN={explicit!r} is not an executable file")
        return path
    if LOCAL_CLAUDE.exists():
        return LOCAL_CLAUDE
    pytest.skip(
        "Claude Code CLI not installed: run `npm install --prefix .cache/claude-code "
        "@anthropic-ai/claude-code` or set CLAUDE_BIN"
    )
