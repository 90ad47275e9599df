"""Build the MCP server: one `MCPServer`, a lifespan holding `ServerState`, and the tool
families registered from `tools_*` modules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.server import MCPServer

from mcp_harness.server.state import ServerState

INSTRUCTIONS = (
    "mcp-harness turns terminal work into trainable skill. Search and edit experience "
    "(experience_*), drive real terminals (terminal_*), check and run harness graphs "
    "(ops_catalog, graph_validate, graph_run), run and train modules as background jobs "
    "(module_*; poll job_status), import recorded Claude Code work (capture_*), read why a "
    "module changed (trace_show), and export a module as a Claude Code skill (export_skill)."
)


def build_server() -> MCPServer:
    from mcp_harness.server import tools

    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[ServerState]:
        state = ServerState()
        try:
            yield state
        finally:
            await state.close()

    server = MCPServer("mcp-harness", instructions=INSTRUCTIONS, lifespan=lifespan)
    for family in tools.FAMILIES:
        family.register(server)
    return server
