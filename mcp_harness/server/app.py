"""Build the MCP server: one `MCPServer`, the tool families of the chosen toolsets, a tool per
module, the resources and prompts, and a lifespan holding `ServerState` that watches the
modules dir and forwards log records to the clients while the server runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from mcp.server import MCPServer

from mcp_harness.server import module_tools, notify, prompts, resources, toolsets
from mcp_harness.server import tools as families
from mcp_harness.server.declare import save_schemas
from mcp_harness.server.state import ServerState

INSTRUCTIONS = (
    "mcp-harness turns terminal work into trainable skill. Each module is a tool (e.g. coder: "
    "works a terminal task and checks it) and each ft_* op is a tool on literal tensors; "
    "experience_* search and edit experience, graph_* check and run graphs, module_* and "
    "job_* run and train modules in the background, capture_* import recorded Claude Code "
    "work, trace_show says why a module changed, export_skill makes a Claude Code skill."
)
log = logging.getLogger("mcp_harness.server")


def build_server(tools: Iterable[str] | str | None = None) -> MCPServer:
    """A server offering the toolsets `tools` (names, or a comma-separated list; None: the
    MCP_HARNESS_TOOLS environment variable, else the default set)."""
    if tools is None:
        chosen = toolsets.from_env()
    elif isinstance(tools, str):
        chosen = toolsets.parse(tools)
    else:
        chosen = toolsets.parse(",".join(tools))
    catalog: module_tools.ModuleTools | None = None

    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[ServerState]:
        state = ServerState(module_tools=catalog)
        server.middleware.append(notify.track_sessions(state))
        server.middleware.append(_fresh_list(server, state))
        watcher = asyncio.create_task(_watch(server, state)) if catalog is not None else None
        try:
            with notify.client_logging(state):
                yield state
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await state.close()

    server = MCPServer("mcp-harness", instructions=INSTRUCTIONS, lifespan=lifespan)
    notify.advertise_list_changed(server)
    for family, toolset in families.FAMILIES:
        if toolset is None or toolset in chosen:
            families.register(server, family)
    if "modules" in chosen:
        catalog = module_tools.ModuleTools(server)
        catalog.sync_now()
    resources.register(server)
    prompts.register(server)
    save_schemas()
    return server


async def _watch(server: MCPServer, state: ServerState) -> None:
    """Keep the module tools in line with the modules dir; tell clients when they change."""
    while True:
        await asyncio.sleep(module_tools.WATCH_S)
        await _sync(server, state)


async def _sync(server: MCPServer, state: ServerState) -> None:
    try:
        changed = await state.module_tools.sync()
    except Exception:  # a bad modules dir must not end the server's watch
        log.exception("reading the modules dir failed")
        return
    if changed:
        log.info("modules changed: the tool list was updated")
        await notify.tools_changed(server, state)


def _fresh_list(server: MCPServer, state: ServerState):
    """Middleware: every tools/list sees the modules as they are now."""

    async def middleware(ctx, call_next):
        if ctx.method == "tools/list" and state.module_tools is not None:
            await _sync(server, state)
        return await call_next(ctx)

    return middleware
