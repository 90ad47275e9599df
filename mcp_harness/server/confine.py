"""Which files the server may touch for a client: the one path rule and the symlink checks.

A client-given path must lie, symlinks resolved, inside an allowed root: the data home, the
server's working directory (or the client's MCP roots, when it offers them) and the
directories in `MCP_HARNESS_ALLOWED_DIRS` (os.pathsep separated). A directory the server
then reads or writes as a whole (an experience, a module, a training run) must not hold a
symlink that leads out of those roots: a module or experience copied from elsewhere could
otherwise make the server write to, read from or export any file of the user's. Every file a
tool call writes is checked again at the write (`guard_write`, the storage write guard), so a
link planted after the directory was checked cannot redirect a write either.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterable
from pathlib import Path

from mcp_harness.errors import HarnessError
from mcp_harness.paths import data_home

ENV_ALLOWED_DIRS = "MCP_HARNESS_ALLOWED_DIRS"
NAME_BYTES = 255  # one path component (NAME_MAX)
PATH_BYTES = 4096  # a whole path (PATH_MAX)

# The MCP client's roots for the call being served (None: the client offers none).
client_roots: contextvars.ContextVar[tuple[Path, ...] | None] = contextvars.ContextVar(
    "client_roots", default=None
)


def _unresolved_roots() -> list[Path]:
    """The allowed roots as named (absolute, symlinks not resolved): the data home, the
    client's roots or else the working directory, and MCP_HARNESS_ALLOWED_DIRS."""
    offered = client_roots.get()
    roots = [data_home(), *(offered if offered is not None else [Path.cwd()])]
    extra = os.environ.get(ENV_ALLOWED_DIRS, "")
    roots += [Path(p).expanduser() for p in extra.split(os.pathsep) if p.strip()]
    return [root.absolute() for root in roots]


def allowed_roots() -> list[Path]:
    """The directories client-given paths must stay in (symlinks resolved), in order."""
    resolved: list[Path] = []
    for root in _unresolved_roots():
        real = root.resolve()
        if real not in resolved:
            resolved.append(real)
    return resolved


def _outside(path: str | Path, real: Path, roots: Iterable[Path], what: str) -> HarnessError:
    shown = repr(str(path)) + ("" if str(path) == str(real) else f" ({real})")
    return HarnessError(
        f"{what} {shown} is outside the directories this server may use: "
        + ", ".join(str(r) for r in roots),
        f"use a path under one of them, or add its directory to {ENV_ALLOWED_DIRS} "
        f"(separated by {os.pathsep!r}) in the server's environment and restart the server",
    )


def check_name(text: str, what: str) -> str:
    """`text` (a name or a path a client gave) if the file system can hold it as given: no NUL
    or control character (ESC, CR, newline would end up in directory names), no component over
    NAME_BYTES bytes, no path over PATH_BYTES; else a HarnessError saying which."""
    if "\0" in text:
        raise HarnessError(f"{what} {text!r} contains a NUL byte", f"give the {what} without it")
    control = next((c for c in text if ord(c) < 32 or 127 <= ord(c) < 160), None)
    if control is not None:
        raise HarnessError(
            f"{what} {text!r} contains the control character {control!r}",
            "use printable characters only",
        )
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > PATH_BYTES:
        raise HarnessError(f"{what} is {size} bytes long", f"keep it under {PATH_BYTES} bytes")
    for part in text.split("/"):
        if len(part.encode("utf-8", "surrogatepass")) > NAME_BYTES:
            raise HarnessError(
                f"{what} {text[:60]!r}…: the part {part[:40]!r}… is over {NAME_BYTES} bytes",
                f"use names of at most {NAME_BYTES} bytes",
            )
    return text


def allowed_path(path: str | Path, what: str = "path") -> Path:
    """`path` made absolute with symlinks resolved, if it lies inside an allowed directory;
    otherwise a HarnessError naming the path, the allowed directories and the fix."""
    check_name(str(path), what)
    raw = Path(path).expanduser()
    real = (raw if raw.is_absolute() else Path.cwd() / raw).resolve()
    roots = allowed_roots()
    if any(real.is_relative_to(root) for root in roots):
        return real
    raise _outside(path, real, roots, what)


def confined_tree(top: Path, what: str) -> Path:
    """`top` (allowed) after checking that no symlink under it leads out of the allowed
    roots; the error names the link and where it points."""
    top = allowed_path(top, what)
    roots = allowed_roots()
    pending = [top]
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.is_symlink():
                real = Path(os.path.realpath(entry.path))
                if not any(real.is_relative_to(root) for root in roots):
                    raise HarnessError(
                        f"{what} {top}: {entry.path} is a symlink to {real}, outside the "
                        "directories this server may use: " + ", ".join(map(str, roots)),
                        "replace the link by a copy of the file, or remove it",
                    )
            elif entry.is_dir(follow_symlinks=False):
                pending.append(Path(entry.path))
    return top


def guard_write(path: str, real: str) -> None:
    """The storage write guard of a tool call: a file named inside the allowed roots must
    really be written inside them, whatever symlinks lie on the way (files elsewhere, such as
    a training run's scratch copies in the temp dir, are not the client's to point at)."""
    roots = allowed_roots()
    named = [root for root in roots if Path(path).is_relative_to(root)]
    named += [r for r in _unresolved_roots() if Path(path).is_relative_to(r)]
    if named and not any(Path(real).is_relative_to(root) for root in roots):
        raise HarnessError(
            f"refusing to write {path}: it leads to {real}, outside the directories this "
            "server may use (a symlink in the experience or module)",
            "replace the link by a copy of the file, or remove it",
        )


def guard_read(path: str, real: str) -> None:
    """The read guard of a tool call: a file a graph op reads must lie, symlinks resolved,
    inside the allowed roots."""
    roots = allowed_roots()
    if not any(Path(real).is_relative_to(root) for root in roots):
        raise _outside(path, Path(real), roots, "file")


def confined_file(path: Path, what: str) -> Path:
    """`path` itself and, if it is a symlink, what it points to must be inside the roots."""
    allowed_path(path.parent, what)
    return allowed_path(path, what)
