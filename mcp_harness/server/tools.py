"""The tool families, in the order `tools/list` shows them, each a `tools_*` module with
`register(server: MCPServer) -> None`, and the toolset it belongs to (None: always offered).

`register` offers a family's tools. When the schema cache holds what the family declares for
these sources, they are listed from it (`declare.ListedTool`) and the module is imported on
the first use of one of its tools: a server's start then imports none of them. Else the module
is imported and registers its tools now, and what it declared is cached. Tool names are
unique across the families, so what a family declares does not depend on the others.
"""

from __future__ import annotations

import importlib
import threading

from mcp.server import MCPServer

from mcp_harness.server import declare, schema_cache

FAMILIES: tuple[tuple[str, str | None], ...] = (
    ("tools_experience", "experience"),
    ("tools_terminal", "terminal"),
    ("tools_graph", "ops"),
    ("tools_ops", "ops"),
    ("tools_modules", "modules"),
    ("tools_jobs", "jobs"),
    ("tools_trace", "modules"),
    ("tools_capture", "capture"),
    ("tools_export", "export"),
    ("tools_paths", None),
)


def register(server: MCPServer, family: str) -> None:
    """Offer the tools of `family` (a module name of `FAMILIES`) on `server`."""
    cache = schema_cache.cache()
    listed = cache.family(family)
    if listed is None:
        tools = server._tool_manager._tools
        before = set(tools)
        _declare(server, family)
        added = [tools[name] for name in tools if name not in before]
        cache.put_family(family, [tool.listing() for tool in added])  # type: ignore[attr-defined]
        return
    load = _Loader(server, family, [listing["name"] for listing, _ in listed])
    for listing, schemas in listed:
        declare.add_listed(server, declare.ListedTool(listing, schemas, load))


def _declare(server: MCPServer, family: str) -> None:
    importlib.import_module(f"mcp_harness.server.{family}").register(server)


class _Loader:
    """The tools of a family listed from the cache, declared on first use (once)."""

    def __init__(self, server: MCPServer, family: str, names: list[str]) -> None:
        self.server = server
        self.family = family
        self.names = names
        self.tools: dict[str, declare.DeferredTool] | None = None
        self.lock = threading.Lock()

    def __call__(self) -> dict[str, declare.DeferredTool]:
        with self.lock:
            if self.tools is None:
                _declare(self.server, self.family)  # each DeferredTool replaces its ListedTool
                registered = self.server._tool_manager._tools
                self.tools = {name: registered[name] for name in self.names}  # type: ignore[misc]
            return self.tools
