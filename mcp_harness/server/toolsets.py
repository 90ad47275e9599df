"""Toolsets: which families of tools a server offers (`serve --tools`, MCP_HARNESS_TOOLS).

Claude Code sends every tool's name, description and input schema with each request, so a
smaller list is cheaper; `terminal` is off by default because Claude Code has its own Bash.
`list_allowed_directories` is always offered.
"""

from __future__ import annotations

import os

from mcp_harness.errors import HarnessError

ENV_TOOLS = "MCP_HARNESS_TOOLS"
TOOLSETS = ("experience", "modules", "ops", "jobs", "capture", "export", "terminal")
DEFAULT = tuple(name for name in TOOLSETS if name != "terminal")


def parse(text: str | None, source: str = "--tools") -> frozenset[str]:
    """The toolsets a comma-separated list names ('all' = every one, 'default' = the
    default set); None or empty = the default set."""
    if text is None or not text.strip():
        return frozenset(DEFAULT)
    chosen: set[str] = set()
    for item in (part.strip() for part in text.split(",")):
        if item == "all":
            chosen.update(TOOLSETS)
        elif item == "default":
            chosen.update(DEFAULT)
        elif item in TOOLSETS:
            chosen.add(item)
        elif item:
            raise HarnessError(
                f"{source}: unknown toolset {item!r}",
                f"use a comma-separated list of {', '.join(TOOLSETS)} (or all, default)",
            )
    return frozenset(chosen)


def from_env() -> frozenset[str]:
    return parse(os.environ.get(ENV_TOOLS), ENV_TOOLS)
