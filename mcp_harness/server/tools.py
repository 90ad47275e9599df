"""The tool families, in the order `tools/list` shows them. Each module has `TOOLSET` (the
toolset it belongs to; None: always offered) and `register(server: MCPServer) -> None`."""

from __future__ import annotations

from mcp_harness.server import (
    tools_capture,
    tools_experience,
    tools_export,
    tools_graph,
    tools_jobs,
    tools_modules,
    tools_ops,
    tools_paths,
    tools_terminal,
    tools_trace,
)

FAMILIES: list = [
    tools_experience,
    tools_terminal,
    tools_graph,
    tools_ops,
    tools_modules,
    tools_jobs,
    tools_trace,
    tools_capture,
    tools_export,
    tools_paths,
]
