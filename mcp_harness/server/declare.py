"""The one way to declare a tool: `@tool(server, title=..., annotations=...)`.

It wraps the function in `errors.tool_errors` (HarnessError -> a readable tool error, every
result redacted) and registers it with a title and its docstring, dedented and with the lines
of each paragraph joined, as the description the model reads.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from mcp.server import MCPServer
from mcp.types import ToolAnnotations

from mcp_harness.server.errors import tool_errors

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)


def concise(text: str | None) -> str:
    """`text` dedented, each paragraph on one line."""
    doc = inspect.cleandoc(text or "")
    return re.sub(r"(?<!\n)\n(?!\n)", " ", doc)


def tool(
    server: MCPServer,
    *,
    title: str,
    annotations: ToolAnnotations,
    name: str | None = None,
    description: str | None = None,
) -> Callable[[Any], Any]:
    """Register the decorated function as a tool (`name` defaults to the function's)."""

    def decorate(fn: Any) -> Any:
        add(server, fn, name or fn.__name__, title, concise(description or fn.__doc__), annotations)
        return fn

    return decorate


def add(
    server: MCPServer,
    fn: Any,
    name: str,
    title: str,
    description: str,
    annotations: ToolAnnotations,
) -> None:
    """Register `fn` (wrapped in `tool_errors`) with a compact input schema (`compact`):
    Claude Code sends it with every request."""
    server.add_tool(
        tool_errors(fn), name=name, title=title, description=description, annotations=annotations
    )
    registered = server._tool_manager.get_tool(name)
    if registered is not None:
        registered.parameters = compact(registered.parameters)


def compact(schema: Any) -> Any:
    """A JSON schema without the `title` keywords pydantic adds (the property names say it)
    and with `null` dropped from optional properties whose default is null (leaving one out
    means the same; arguments are still validated by the tool's own model)."""
    if isinstance(schema, list):
        return [compact(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    clean = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in ("properties", "$defs") and isinstance(value, dict):
            clean[key] = {name: compact(sub) for name, sub in value.items()}
        else:
            clean[key] = compact(value)
    branches = clean.get("anyOf")
    if "default" in clean and clean["default"] is None and isinstance(branches, list):
        kept = [b for b in branches if b != {"type": "null"}]
        del clean["default"], clean["anyOf"]
        clean = {**(kept[0] if len(kept) == 1 else {"anyOf": kept}), **clean}
    return clean


def tool_names(server: MCPServer) -> set[str]:
    """The names of the tools `server` offers now (the SDK has no synchronous public way)."""
    return {registered.name for registered in server._tool_manager.list_tools()}
