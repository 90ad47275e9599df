"""Crash-safe file primitives: a reader sees the old bytes or the new bytes, never a mix."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

# Set by the MCP server for each tool call: called with the absolute and the real path of every
# file about to be written, so a symlink planted in a tensor cannot redirect a write out of the
# allowed dirs.
write_guard: ContextVar[Callable[[str, str], None] | None] = ContextVar("write_guard", default=None)


# The same for files a graph op reads on a client's behalf (`ft_read_file`).
read_guard: ContextVar[Callable[[str, str], None] | None] = ContextVar("read_guard", default=None)


def check_write(path: str | Path) -> None:
    """Pass `path` (absolute, and with symlinks resolved) to the write guard, if one is set."""
    guard = write_guard.get()
    if guard is not None:
        guard(os.path.abspath(path), os.path.realpath(path))


def check_read(path: str | Path) -> None:
    """Pass `path` (absolute, and with symlinks resolved) to the read guard, if one is set."""
    guard = read_guard.get()
    if guard is not None:
        guard(os.path.abspath(path), os.path.realpath(path))


def fsync_dir(directory: Path) -> None:
    """Persist a rename or create in `directory` (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    path: Path, data: bytes | str, *, durable: bool = True, mode: int | None = None
) -> None:
    """Write `data` to `path` via a temp file and rename.

    A symlink at `path` is written through (its target is replaced), so views stay views.
    `durable=False` skips fsync for bulk writes whose commit point is fsynced elsewhere.
    The file is private (0600, as `mkstemp` makes it) unless `mode` says otherwise.
    """
    check_write(path)
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(raw)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(target.parent)


def atomic_write_json(path: Path, value: Any) -> None:
    """Atomically write `value` as JSON."""
    atomic_write(path, json.dumps(value, ensure_ascii=False))


def append_lines(path: Path, lines: list[str]) -> None:
    """Append whole lines with one write and one fsync; a crash can only truncate the tail."""
    if any("\n" in line for line in lines):
        raise ValueError("append_lines takes lines without newlines")
    path.parent.mkdir(parents=True, exist_ok=True)
    check_write(path)
    raw = "".join(line + "\n" for line in lines).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = 0
        while written < len(raw):
            written += os.write(fd, raw[written:])
        os.fsync(fd)
    finally:
        os.close(fd)
