"""The one path to tmux: every failure, from each entry point, is a TmuxError (a HarnessError
with a fix), and the pool and sessions raise under that root."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_harness.errors import HarnessError
from mcp_harness.terminal import pool, tmux
from mcp_harness.terminal.session import TerminalError, TerminalSession


@pytest.fixture
def no_tmux(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A PATH without tmux and a private runtime dir of this test."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    root = tmp_path / "rt"
    root.mkdir(mode=0o700)
    return root


def test_missing_tmux_is_a_tmux_error_everywhere(no_tmux: Path) -> None:
    assert issubclass(tmux.TmuxError, HarnessError) and issubclass(TerminalError, tmux.TmuxError)
    with pytest.raises(tmux.TmuxError, match="tmux is not installed") as info:
        tmux.run("list-sessions", root=no_tmux)
    assert "apt-get install tmux" in (info.value.fix or "")
    with pytest.raises(tmux.TmuxError, match="tmux is not installed"):
        pool.claim(no_tmux)


async def test_missing_tmux_from_asyncio(no_tmux: Path) -> None:
    with pytest.raises(tmux.TmuxError, match="tmux is not installed"):
        await tmux.run_async(no_tmux, "list-sessions")
    with pytest.raises(tmux.TmuxError, match="tmux is not installed"):
        await TerminalSession.list(no_tmux)


def test_gone_is_recognised_from_tmux_stderr() -> None:
    assert tmux.gone("can't find session: ft-x") and tmux.gone("no server running on /tmp/s")
    assert not tmux.gone("unknown command: nope")
