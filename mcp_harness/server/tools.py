"""The tool families, in the order `tools/list` shows them. Each module has
`register(server: MCPServer) -> None`."""

from __future__ import annotations

from mcp_harness.server import (
    tools_capture,
    tools_experience,
    tools_export,
    tools_graph,
    tools_modules,
    tools_paths,
    tools_terminal,
)

FAMILIES: list = [
    tools_experience,
    tools_terminal,
    tools_graph,
    tools_modules,
    tools_capture,
    tools_export,
    tools_paths,
]
