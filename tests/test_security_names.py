"""Names and the runtime dir: a name with NUL, a control character or over 255 bytes is a
clear tool error (never a directory with those bytes); the runtime dir must be the user's own
and private, and nothing is written through a symlink planted there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mcp import Client

from mcp_harness.errors import HarnessError
from mcp_harness.paths import check_private_dir
from mcp_harness.server.app import build_server
from mcp_harness.terminal.pool import CONF, prepare

BAD_NAMES = [
    ("a" * 256, "over 255 bytes"),
    ("é" * 128, "over 255 bytes"),
    ("nul\x00name", "contains a NUL byte"),
    ("esc\x1b[31mred", "contains the control character '\\x1b'"),
    ("cr\rname", "contains the control character '\\r'"),
    ("new\nline", "contains the control character '\\n'"),
    ("del\x7f", "contains the control character '\\x7f'"),
]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MCP_HARNESS_ALLOWED_DIRS", raising=False)


@pytest.mark.parametrize(("name", "why"), BAD_NAMES)
async def test_bad_names_are_clear_errors(harness_home: Path, name: str, why: str) -> None:
    async with Client(build_server(), mode="legacy") as client:
        for tool, args in (
            ("experience_add", {"experience": name, "key": "k", "value": "v", "create": True}),
            ("experience_stats", {"experience": name}),
            ("module_show", {"module": name}),
            ("trace_show", {"run_dir": f"./{name}"}),
        ):
            result = await client.call_tool(tool, args)
            assert result.is_error, tool
            text = result.content[0].text
            assert text.startswith(f"Error executing tool {tool}: "), text
            assert why in text, text
            assert "fix: " in text
    made = harness_home / "experience"
    assert not made.exists() or list(made.iterdir()) == []


async def test_terminal_cwd_with_nul_is_an_error(harness_home: Path, tmp_path: Path) -> None:
    async with Client(build_server(), mode="legacy") as client:
        result = await client.call_tool("terminal_create", {"name": "t", "cwd": "a\x00b"})
    assert result.is_error and "contains a NUL byte" in result.content[0].text


def test_runtime_dir_is_created_private(tmp_path: Path) -> None:
    root = check_private_dir(tmp_path / "rt")
    assert root.stat().st_mode & 0o777 == 0o700


def test_runtime_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "rt"
    root.mkdir(mode=0o700)
    if os.getuid() != 0:
        pytest.skip("making a directory owned by another user needs root")
    os.chown(root, 4242, 4242)
    with pytest.raises(HarnessError, match="owned by uid 4242, not by you"):
        check_private_dir(root)


def test_group_or_world_writable_runtime_dir_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "rt"
    root.mkdir()
    for mode in (0o777, 0o770, 0o702):
        root.chmod(mode)
        with pytest.raises(HarnessError, match="others can write it") as refused:
            check_private_dir(root)
        assert f"chmod 700 {root}" in str(refused.value)


def test_symlinked_runtime_dir_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "rt").symlink_to(real)
    with pytest.raises(HarnessError, match="is not a directory"):
        check_private_dir(tmp_path / "rt")


def test_tmux_conf_is_not_written_through_a_symlink(tmp_path: Path) -> None:
    root = tmp_path / "rt"
    root.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("mine\n")
    (root / "tmux.conf").symlink_to(victim)
    prepare(root)
    assert victim.read_text() == "mine\n"
    assert not (root / "tmux.conf").is_symlink()
    assert (root / "tmux.conf").read_text() == CONF


async def test_terminal_on_a_bad_runtime_dir_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "rt"
    root.mkdir(mode=0o777)
    root.chmod(0o777)
    monkeypatch.setenv("MCP_HARNESS_RUNTIME_DIR", str(root))
    async with Client(build_server(), mode="legacy") as client:
        result = await client.call_tool("terminal_create", {"name": "t"})
    assert result.is_error and "others can write it" in result.content[0].text
