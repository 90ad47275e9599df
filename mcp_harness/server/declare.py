"""The one way to declare a tool: `@tool(server, title=..., annotations=...)`.

It wraps the function in `errors.tool_errors` (HarnessError -> a readable tool error, every
result redacted) and registers it with a title and its docstring, dedented and with the lines
of each paragraph joined, as the description the model reads.

What the server holds for each tool is a `DeferredTool`: its listing (name, title,
description, annotations, input and output schema) at once, the SDK's `Tool` (the pydantic
argument model that validates a call, the result conversion) built by `Tool.from_function`
on the tool's first call. The schemas come from `schema_cache` when it has them for this
source and signature; else they are built from that `Tool` at once, as the SDK's `add_tool`
does, and cached. A call and its errors are the SDK's either way; `tools/list` is the same.

A family listed from the cache without being imported (`server/tools.py`) is held as a
`ListedTool` per tool: its cached listing, and on its first use the family imported and
registered, each `DeferredTool` replacing its `ListedTool` in place (the listing's order kept).
"""

from __future__ import annotations

import inspect
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.types import ToolAnnotations
from pydantic import BaseModel, ConfigDict

from mcp_harness.server import schema_cache
from mcp_harness.server.errors import tool_errors

log = logging.getLogger(__name__)
READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)


class Result(BaseModel):
    """The base of the tools' result models: each builds its validator on first use, not at
    import (`defer_build`), so a server start does not pay for some 45 of them."""

    model_config = ConfigDict(defer_build=True)


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


class _Forwarding:
    """A stand-in in the SDK's tool table: `run` and any attribute it does not hold itself go
    to `target()`, the object that does the work (made on first use)."""

    def target(self) -> Any:
        raise NotImplementedError

    async def run(
        self, arguments: dict[str, Any], context: Any, convert_result: bool = False
    ) -> Any:
        return await self.target().run(arguments, context, convert_result=convert_result)

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        return getattr(self.target(), attribute)


class DeferredTool(_Forwarding):
    """A tool as the SDK's tool manager holds it: the attributes `tools/list` reads, and
    `run`, which hands the call to the SDK `Tool` made from `fn` (built on first use; any
    other attribute is that `Tool`'s)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str,
        title: str,
        description: str,
        annotations: ToolAnnotations,
    ) -> None:
        self.fn = fn
        self.name = name
        self.title = title
        self.description = description or fn.__doc__ or ""
        self.annotations = annotations
        self.icons = None
        self.meta = None
        self._tool: Tool | None = None
        self._lock = threading.Lock()
        cache = schema_cache.cache()
        self.key = schema_cache.tool_key(name, fn)
        cached = cache.get(self.key)
        if cached is None:
            built = self.tool()
            cached = (compact(built.parameters), built.output_schema)
            cache.put(self.key, cached)
        self.parameters, self.output_schema = cached

    def tool(self) -> Tool:
        """The SDK's `Tool` for `fn`, as `MCPServer.add_tool` makes it."""
        with self._lock:
            if self._tool is None:
                self._tool = Tool.from_function(
                    self.fn,
                    name=self.name,
                    title=self.title,
                    description=self.description,
                    annotations=self.annotations,
                )
            return self._tool

    target = tool

    def listing(self) -> schema_cache.Listing:
        """What `ListedTool` needs to list this tool (its schemas are under `key`)."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "annotations": self.annotations.model_dump(by_alias=True, exclude_unset=True),
            "key": self.key,
        }


class ListedTool(_Forwarding):
    """A tool of a family not imported yet: its listing as cached, and `run`, which has
    `load` import and register the family and hands the call to the `DeferredTool` made for
    this name (any other attribute is that tool's)."""

    def __init__(
        self,
        listing: schema_cache.Listing,
        schemas: schema_cache.Schemas,
        load: Callable[[], dict[str, DeferredTool]],
    ) -> None:
        self.name: str = listing["name"]
        self.title: str = listing["title"]
        self.description: str = listing["description"]
        self.annotations = ToolAnnotations.model_validate(listing["annotations"])
        self.parameters, self.output_schema = schemas
        self.icons = None
        self.meta = None
        self._load = load

    def loaded(self) -> DeferredTool:
        return self._load()[self.name]

    target = loaded


def add(
    server: MCPServer,
    fn: Any,
    name: str,
    title: str,
    description: str,
    annotations: ToolAnnotations,
) -> None:
    """Register `fn` (wrapped in `tool_errors`) with a compact input schema (`compact`):
    Claude Code sends it with every request. Like `MCPServer.add_tool`, a second tool of the
    same name is ignored with a warning; a `ListedTool` of the name is replaced."""
    tools = server._tool_manager._tools  # the SDK has no public way to add a built tool
    if name in tools and not isinstance(tools[name], ListedTool):
        log.warning("Tool already exists: %s", name)
        return
    tools[name] = DeferredTool(tool_errors(fn), name, title, description, annotations)  # type: ignore[assignment]


def add_listed(server: MCPServer, listed: ListedTool) -> None:
    """Register a family's tool as listed from the cache (a second of a name is ignored)."""
    tools = server._tool_manager._tools
    if listed.name in tools:
        log.warning("Tool already exists: %s", listed.name)
        return
    tools[listed.name] = listed  # type: ignore[assignment]


def save_schemas() -> None:
    """Write the schemas built since the cache was read (`schema_cache`)."""
    schema_cache.cache().save()


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
