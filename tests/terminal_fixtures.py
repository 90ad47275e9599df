"""Fixtures for tests that use the real tmux pool: a private runtime dir and server per test
module, and the prefix wrapper built once per session."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_harness.capture.prefix import prefix_path
from mcp_harness.terminal.pool import shutdown


@pytest.fixture(scope="module")
def runtime() -> Iterator[Path]:
    """A short private runtime dir (Unix socket paths must stay short) with its own tmux."""
    root = Path(tempfile.mkdtemp(prefix="mh-", dir="/tmp"))
    old = os.environ.get("MCP_HARNESS_RUNTIME_DIR")
    os.environ["MCP_HARNESS_RUNTIME_DIR"] = str(root)
    yield root
    shutdown(root)
    if old is None:
        os.environ.pop("MCP_HARNESS_RUNTIME_DIR", None)
    else:
        os.environ["MCP_HARNESS_RUNTIME_DIR"] = old
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prefix_path(tmp_path_factory.mktemp("prefix-home"))
