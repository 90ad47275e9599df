"""What the server tells clients without being asked: progress of a call, log messages and
`notifications/tools/list_changed`.

Progress goes to the call that carries a progress token (`ctx.report_progress` does nothing
without one): `follow` reports a job's work as it advances, `ticking` the seconds a call with
no steps of its own has been running. The `mcp_harness` logger's records (what the server
writes to stderr) also go to every handshake-era client as MCP log messages; a 2026-era client
gets list changes on its `subscriptions/listen` stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import AsyncIterator
from typing import Any

from mcp.server import MCPServer, NotificationOptions
from mcp.types.version import MODERN_PROTOCOL_VERSIONS

from mcp_harness.redaction import redact
from mcp_harness.server.state import Job, ServerState

POLL_S = 0.25  # how often a followed job is looked at
TICK_S = 1.0  # progress of a call with no steps of its own: once a second
LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warning", "ERROR": "error"}
log = logging.getLogger("mcp_harness.server")


async def report(ctx: Any, progress: float, message: str) -> None:
    """One progress notification for the call `ctx` belongs to (none without a token)."""
    with contextlib.suppress(Exception):  # a client gone mid-call must not fail the call
        await ctx.report_progress(progress, None, redact(message))


async def follow(ctx: Any, job: Job, seconds: float) -> bool:
    """Wait up to `seconds` for `job` to end, reporting progress each time its work advances;
    whether it ended."""
    assert job.task is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    sent = -1
    while True:
        if job.count > sent:
            sent = job.count
            await report(ctx, float(sent), job.progress)
        if job.task.done():
            return True
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        await asyncio.wait({job.task}, timeout=min(POLL_S, remaining))


@contextlib.asynccontextmanager
async def ticking(ctx: Any, what: str) -> AsyncIterator[None]:
    """Report `what: N s` every second while the body runs."""

    async def tick() -> None:
        seconds = 0
        while True:
            await asyncio.sleep(TICK_S)
            seconds += 1
            await report(ctx, float(seconds), f"{what}: {seconds} s")

    task = asyncio.create_task(tick())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def track_sessions(state: ServerState) -> Any:
    """Middleware that remembers each handshake-era client connection, so notifications
    reach it. The SDK hands middleware a new `ServerSession` per request; the connection it
    wraps (kept private, with public `send_tool_list_changed` and `log`) lives as long as
    the client does."""

    async def middleware(ctx: Any, call_next: Any) -> Any:
        connection = getattr(getattr(ctx, "session", None), "_connection", None)
        if connection is not None and ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            state.sessions.add(connection)
        return await call_next(ctx)

    return middleware


async def tools_changed(server: MCPServer, state: ServerState) -> None:
    """Tell every client the tool list changed."""
    from mcp.server.subscriptions import ToolsListChanged

    for session in list(state.sessions):
        with contextlib.suppress(Exception):  # closed sessions just miss it
            await session.send_tool_list_changed()
    with contextlib.suppress(Exception):
        # MCPServer keeps its subscriptions bus private; this is where 2026-era clients listen.
        await server._subscriptions.publish(ToolsListChanged())


def advertise_list_changed(server: MCPServer) -> None:
    """Advertise `tools.listChanged` (and prompts, resources) to handshake-era clients:
    `MCPServer` offers no public option for it, so its initialization options are made with
    the flags set."""
    lowlevel = server._lowlevel_server
    make = lowlevel.create_initialization_options
    flags = NotificationOptions(tools_changed=True, prompts_changed=False, resources_changed=False)

    def create_initialization_options(notification_options: Any = None, *args: Any, **kw: Any):
        return make(notification_options or flags, *args, **kw)

    lowlevel.create_initialization_options = create_initialization_options  # type: ignore[method-assign]


class ClientLog(logging.Handler):
    """Forwards log records to the clients as MCP log messages (redacted)."""

    def __init__(self, state: ServerState, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(logging.INFO)
        self.state, self.loop = state, loop

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = redact(record.getMessage())
        except Exception:  # a bad format string must not break the caller
            return
        level = LEVELS.get(record.levelname, "info")
        for session in list(self.state.sessions):
            self.loop.call_soon_threadsafe(
                lambda s=session: self.loop.create_task(_send(s, level, text, record.name))
            )


async def _send(session: Any, level: Any, text: str, logger: str) -> None:
    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # protocol logging is deprecated in the 2026 era only
        await session.log(level, text, logger)


@contextlib.contextmanager
def client_logging(state: ServerState) -> Any:
    """While the server runs, the `mcp_harness` logger's records also go to the clients."""
    handler = ClientLog(state, asyncio.get_running_loop())
    root = logging.getLogger("mcp_harness")
    level = root.level
    if level == logging.NOTSET or level > logging.INFO:
        root.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
