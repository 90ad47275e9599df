"""Where the server may read and write for a client: `list_allowed_directories`, and the
client's MCP roots (when it offers them) taking the place of the server's working directory.

Roots are asked for on every tool call of a handshake-era session whose client declared the
`roots` capability (Claude Code does), and set for that call in `confine.client_roots`; a
client without roots, or a 2026-era session (roots were removed there), gets the working
directory instead.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import anyio
from mcp.server import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_harness.paths import data_home
from mcp_harness.server import confine
from mcp_harness.server.declare import Result, tool
from mcp_harness.storage.atomic import read_guard, write_guard

ROOTS_WAIT_S = 5.0
log = logging.getLogger(__name__)


class AllowedDirectories(Result):
    directories: list[str] = Field(description="client-given paths must lie under one of these")
    sources: dict[str, str] = Field(
        description="where each comes from: data home, client roots, server working directory "
        f"or {confine.ENV_ALLOWED_DIRS}"
    )
    note: str


def _file_paths(uris: list[str]) -> tuple[Path, ...]:
    paths = []
    for uri in uris:
        parsed = urlparse(uri)
        if parsed.scheme == "file" and parsed.path:
            paths.append(Path(unquote(parsed.path)))
    return tuple(paths)


async def _client_roots(ctx: Any) -> tuple[Path, ...] | None:
    session = getattr(ctx, "session", None)
    params = getattr(session, "client_params", None)
    if params is None or params.capabilities.roots is None:
        return None
    try:
        with anyio.fail_after(ROOTS_WAIT_S), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # roots are deprecated in the 2026 era only
            listed = await session.list_roots()
    except Exception as exc:  # a client that fails to answer just has no roots
        log.warning("roots/list failed (%s); using the working directory", exc)
        return None
    return _file_paths([str(root.uri) for root in listed.roots])


async def roots_middleware(ctx: Any, call_next: Any) -> Any:
    """Set the client's roots and the storage read and write guards for the duration of
    each tools/call."""
    if ctx.method != "tools/call":
        return await call_next(ctx)
    roots = confine.client_roots.set(await _client_roots(ctx))
    guard = write_guard.set(confine.guard_write)
    reads = read_guard.set(confine.guard_read)
    try:
        return await call_next(ctx)
    finally:
        read_guard.reset(reads)
        write_guard.reset(guard)
        confine.client_roots.reset(roots)


def allowed_directories() -> AllowedDirectories:
    offered = confine.client_roots.get()
    labels: dict[Path, str] = {data_home().absolute().resolve(): "data home"}
    for root in offered if offered is not None else [Path.cwd()]:
        label = "client roots" if offered is not None else "server working directory"
        labels.setdefault(root.absolute().resolve(), label)
    extra = os.environ.get(confine.ENV_ALLOWED_DIRS, "")
    for entry in (p for p in extra.split(os.pathsep) if p.strip()):
        labels.setdefault(Path(entry).expanduser().absolute().resolve(), confine.ENV_ALLOWED_DIRS)
    roots = confine.allowed_roots()
    return AllowedDirectories(
        directories=[str(r) for r in roots],
        sources={str(r): labels.get(r, "") for r in roots},
        note="Symlinks are resolved first; an experience, module or run that holds a symlink "
        "leading out of these is refused. Personal skills (~/.claude/skills) are a further "
        "target of export_skill.",
    )


def register(server: MCPServer) -> None:
    server.middleware.append(roots_middleware)

    @tool(
        server,
        title="List allowed directories",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    def list_allowed_directories() -> AllowedDirectories:
        """The directories this server may read and write in for you (the data home, your MCP
        roots or else the server's working directory, and MCP_HARNESS_ALLOWED_DIRS): every
        path a tool takes must lie under one of them."""
        return allowed_directories()
