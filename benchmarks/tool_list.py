"""The size of the MCP server's tool list: what every Claude Code request carries.

Claude Code sends each MCP tool to the model as `{"name": "mcp__<server>__<tool>",
"description": ..., "input_schema": ...}` with every request (output schemas, titles and
annotations stay in the client), unless tool search defers it. This prints, per toolset and in
total, the characters of descriptions + input schemas (the budget: under 24,000 for the default
set with every module and op tool), that JSON as Claude Code sends it, a token estimate (4
characters a token), and the full `tools/list` reply for comparison.

    .venv/bin/python benchmarks/tool_list.py [--tools all] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1]))  # a checkout without an install

SERVER = "harness"
BUDGET = 24_000


def tool_budget(tool: Any) -> int:
    """Characters of a tool's description plus its input schema (compact JSON)."""
    return len(tool.description or "") + len(json.dumps(tool.input_schema, separators=(",", ":")))


def as_claude_code_sends(tool: Any) -> int:
    sent = {
        "name": f"mcp__{SERVER}__{tool.name}",
        "description": tool.description or "",
        "input_schema": tool.input_schema,
    }
    return len(json.dumps(sent, separators=(",", ":")))


def family(name: str) -> str:
    if name.startswith("ft_") or name in ("ops_catalog", "graph_validate", "graph_run"):
        return "ops"
    prefix = name.split("_")[0]
    known = {"experience", "terminal", "capture", "job", "module", "trace", "export", "list"}
    return prefix if prefix in known else "module tools"


async def measure(tools: str | None) -> dict[str, Any]:
    from mcp import Client

    from mcp_harness.server.app import build_server

    server = build_server() if tools is None else build_server(tools)
    async with Client(server, mode="legacy") as client:
        listed = (await client.list_tools()).tools
        reply = (await client.session.list_tools()).model_dump_json(by_alias=True)
    by_family: dict[str, dict[str, int]] = {}
    for tool in listed:
        entry = by_family.setdefault(family(tool.name), {"tools": 0, "chars": 0})
        entry["tools"] += 1
        entry["chars"] += tool_budget(tool)
    budget = sum(tool_budget(t) for t in listed)
    sent = sum(as_claude_code_sends(t) for t in listed)
    return {
        "tools": len(listed),
        "budget_chars": budget,
        "claude_code_chars": sent,
        "claude_code_tokens_est": round(sent / 4),
        "tools_list_reply_chars": len(reply),
        "by_family": by_family,
        "largest": sorted(((tool_budget(t), t.name) for t in listed), reverse=True)[:5],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tools", default=None, help="toolsets (default: the default set)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["MCP_HARNESS_HOME"] = home  # the built-in modules only, nothing of yours
        os.environ.pop("MCP_HARNESS_TOOLS", None)
        found = asyncio.run(measure(args.tools))
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(f"toolsets: {args.tools or 'default'}; {found['tools']} tools")
    print(f"{'family':<14}{'tools':>6}{'chars':>9}")
    for name, entry in sorted(found["by_family"].items()):
        print(f"{name:<14}{entry['tools']:>6}{entry['chars']:>9}")
    print(f"descriptions + input schemas: {found['budget_chars']:,} characters (budget {BUDGET:,})")
    print(
        f"as Claude Code sends them per request: {found['claude_code_chars']:,} characters "
        f"(~{found['claude_code_tokens_est']:,} tokens)"
    )
    print(f"full tools/list reply (output schemas too): {found['tools_list_reply_chars']:,}")
    print("largest:", ", ".join(f"{name} {size}" for size, name in found["largest"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
