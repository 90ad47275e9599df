"""The tool families, in the order `tools/list` shows them. Each module has
`register(server: MCPServer) -> None`."""

from __future__ import annotations

FAMILIES: list = []
