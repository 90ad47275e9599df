"""The tool schema cache (`server/schema_cache.py`, `declare.DeferredTool`, `ListedTool`): a
server that takes its tools' listings and schemas from the cache (importing no tool family
until one of its tools is used) lists exactly what a server that builds them lists, and
validates calls exactly the same; a stale, corrupt or foreign cache is never served. Real
`mcp-harness serve` processes over stdio, as Claude Code starts them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.server.mcpserver.tools import Tool
from pydantic import Field

from mcp_harness.experience.store import Experience, Row
from mcp_harness.server import schema_cache
from mcp_harness.server.app import build_server
from mcp_harness.server.declare import DeferredTool, ListedTool, compact
from mcp_harness.server.tools import FAMILIES

CLI = Path(sys.executable).parent / "mcp-harness"
CACHE = Path("cache") / "tool-schemas.json"
BAD_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("experience_stats", {}),  # a required argument missing
    ("experience_search", {"experience": "shell", "text": "ls", "k": 0}),  # below ge=1
    ("experience_search", {"experience": "shell", "text": "ls", "k": "many"}),  # not an int
    ("experience_search", {"experience": "shell", "text": "ls", "method": "grep"}),  # Literal
    ("experience_search", {"experience": "", "text": "ls"}),  # min_length=1
    ("ft_format", {"tensors": "nope", "template": "{0}"}),  # an op tool: not a list
    ("ft_format", {"tensors": [["a"]]}),  # an op tool: its arg missing
    ("coder", {"check": "true"}),  # a module tool: its task input missing
]
GOOD_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("experience_search", {"experience": "shell", "text": "list files"}),
    ("ft_format", {"tensors": [["a", "b"]], "template": "<{0}>"}),
]


def _env(home: Path) -> dict[str, str]:
    return {
        "MCP_HARNESS_HOME": str(home),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "MCP_HARNESS_TOOLS": "all",
    }


async def _session(home: Path, cwd: Path) -> tuple[str, list[str]]:
    """One stdio server on `home`: its tools/list as JSON, and the text of each call's answer."""
    params = StdioServerParameters(command=str(CLI), args=["serve"], env=_env(home), cwd=str(cwd))
    async with Client(params, mode="legacy") as client:
        tools = (await client.list_tools()).tools
        listing = json.dumps([t.model_dump(mode="json", by_alias=True) for t in tools], indent=1)
        answers = []
        for name, arguments in BAD_CALLS + GOOD_CALLS:
            result = await client.call_tool(name, arguments)
            if name == "ft_format" and not result.is_error:  # its run dir is new each time
                result.structured_content.pop("run_dir")
            answers.append(json.dumps([result.is_error, result.structured_content]))
            answers.append(result.content[0].text if result.is_error else "")
    return listing, answers


def _seed(home: Path) -> None:
    Experience.create(home / "experience" / "shell").append(
        [Row("list\nfiles", "list files", "ls -la")]
    )


@pytest.fixture
async def cold(harness_home: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """What a server lists and answers when it builds every schema (no cache yet)."""
    _seed(harness_home)
    assert not (harness_home / CACHE).exists()
    return await _session(harness_home, tmp_path)


async def test_cached_schemas_list_and_validate_the_same(
    cold: tuple[str, list[str]], harness_home: Path, tmp_path: Path
) -> None:
    stored = json.loads((harness_home / CACHE).read_text())
    assert stored["fingerprint"] == schema_cache.fingerprint()
    assert len(stored["tools"]) == len(json.loads(cold[0]))  # the first server wrote them all
    warm = await _session(harness_home, tmp_path)
    assert warm[0] == cold[0]
    assert warm[1] == cold[1]
    for (name, _), text in zip(BAD_CALLS, cold[1][1::2][: len(BAD_CALLS)], strict=True):
        assert text.startswith(f"Error executing tool {name}: "), text
        assert "validation error" in text, text


@pytest.mark.parametrize("damage", ["foreign", "corrupt", "malformed", "families", "unkeyed"])
async def test_a_stale_or_broken_cache_is_not_served(
    cold: tuple[str, list[str]], harness_home: Path, tmp_path: Path, damage: str
) -> None:
    path = harness_home / CACHE
    stored = json.loads(path.read_text())
    bogus = {"type": "object", "properties": {"bogus": {"type": "string"}}}
    if damage == "foreign":  # schemas of other sources (or another SDK): a new fingerprint
        stored["fingerprint"] = "0" * 64
        stored["tools"] = {key: {"input": bogus, "output": bogus} for key in stored["tools"]}
        path.write_text(json.dumps(stored))
    elif damage == "corrupt":
        path.write_bytes(b'{"fingerprint": "\xff\x00')
    elif damage == "malformed":  # this fingerprint, but entries that are not schemas
        stored["tools"] = {key: {"input": "x", "output": 3} for key in stored["tools"]}
        path.write_text(json.dumps(stored))
    elif damage == "families":  # family listings that are not listings
        stored["families"] = {name: [{"name": 1}] for name in stored["families"]}
        path.write_text(json.dumps(stored))
    else:  # family listings whose schemas are not in the cache
        for listing in stored["families"].values():
            for entry in listing:
                entry["key"] = "0" * 64
        path.write_text(json.dumps(stored))
    again = await _session(harness_home, tmp_path)
    assert again == cold
    rewritten = json.loads(path.read_text())
    assert rewritten["fingerprint"] == schema_cache.fingerprint()
    assert all(isinstance(entry["input"], dict) for entry in rewritten["tools"].values())
    for listing in rewritten["families"].values():
        assert all(entry["key"] in rewritten["tools"] for entry in listing)


async def test_an_unwritable_cache_costs_nothing_but_time(
    cold: tuple[str, list[str]], harness_home: Path, tmp_path: Path
) -> None:
    path = harness_home / CACHE
    path.unlink()
    path.mkdir()  # neither readable nor replaceable as a file
    assert await _session(harness_home, tmp_path) == cold
    assert path.is_dir()


def test_listing_is_what_the_sdk_builds(harness_home: Path) -> None:
    """In process, after a cache was written: every listed tool is what its family declares
    now, and every listed schema what `Tool.from_function` (what `MCPServer.add_tool` runs)
    makes of the tool's function."""
    build_server("all")  # writes the cache
    schema_cache._opened.clear()  # read it again from the file, as a new process would
    server = build_server("all")
    listed_tools = server._tool_manager.list_tools()
    assert len(listed_tools) > 40
    assert sum(isinstance(listed, ListedTool) for listed in listed_tools) > 40
    for listed in listed_tools:
        declared = listed.loaded() if isinstance(listed, ListedTool) else listed
        assert isinstance(declared, DeferredTool)
        assert declared._tool is None, f"{listed.name}: built at start"
        for attribute in ("name", "title", "description", "annotations"):
            assert getattr(listed, attribute) == getattr(declared, attribute), listed.name
        fresh = Tool.from_function(
            declared.fn, name=listed.name, title=listed.title, annotations=listed.annotations
        )
        assert listed.parameters == compact(fresh.parameters), listed.name
        assert listed.output_schema == fresh.output_schema, listed.name
    # each family's tools now replace their stand-ins, in the order they were listed
    assert [t.name for t in server._tool_manager.list_tools()] == [t.name for t in listed_tools]
    assert all(isinstance(t, DeferredTool) for t in server._tool_manager.list_tools())


WARM_START = """
import asyncio, json, sys
from mcp_harness.server.app import build_server

server = build_server("all")
before = [t.model_dump() for t in asyncio.run(server.list_tools())]
imported = sorted(m for m in sys.modules if m.startswith("mcp_harness.server.tools_"))
heavy = ("numpy", "torch", "mcp_harness.experience.store", "mcp_harness.runtime.graph")
heavy = sorted(m for m in heavy if m in sys.modules)
server._tool_manager.get_tool("ft_format").loaded()
after = [t.model_dump() for t in asyncio.run(server.list_tools())]
print(json.dumps({"imported": imported, "heavy": heavy, "same": before == after,
                  "ops": "mcp_harness.server.tools_ops" in sys.modules}))
"""


def test_a_warm_start_imports_no_tool_family(harness_home: Path) -> None:
    """A fresh process with the cache written imports no `tools_*` module (nor numpy, torch,
    the experience store or the graph code) to list its tools; using one imports its family,
    and the listing stays the same."""
    env = {**os.environ, "MCP_HARNESS_HOME": str(harness_home)}
    cold = "from mcp_harness.server.app import build_server; build_server('all')"
    subprocess.run([sys.executable, "-c", cold], env=env, check=True)  # writes the cache
    warm = [sys.executable, "-c", WARM_START]
    found = json.loads(subprocess.run(warm, env=env, check=True, capture_output=True).stdout)
    assert found == {"imported": [], "heavy": [], "same": True, "ops": True}


def test_family_tool_names_are_unique() -> None:
    """What `server/tools.py` relies on: no two families declare a tool of one name."""
    server = build_server("all")
    families = json.loads((schema_cache.cache().path).read_text())["families"]
    assert sorted(families) == sorted(name for name, _ in FAMILIES)
    names = [entry["name"] for listing in families.values() for entry in listing]
    assert len(names) == len(set(names))
    assert set(names) <= {t.name for t in server._tool_manager.list_tools()}


def test_fingerprint_follows_the_sources(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    source = tmp_path / "pkg" / "tools_x.py"
    source.write_text("X = 1\n")
    first = schema_cache.fingerprint(tmp_path)
    assert schema_cache.fingerprint(tmp_path) == first
    source.write_text("X = 22\n")  # another size
    second = schema_cache.fingerprint(tmp_path)
    assert second != first
    os.utime(source, ns=(1, 1))  # the same size, another mtime
    assert schema_cache.fingerprint(tmp_path) != second
    (tmp_path / "pkg" / "new.py").write_text("")
    assert len({first, second, schema_cache.fingerprint(tmp_path)}) == 3


def test_tool_key_follows_the_signature() -> None:
    def one(text: Annotated[str, Field(description="a")]) -> str:
        return text

    def two(text: Annotated[str, Field(description="b")]) -> str:
        return text

    def three(text: Annotated[str, Field(description="a")], k: int = 5) -> str:
        return text

    keys = {schema_cache.tool_key("t", fn) for fn in (one, two, three)}
    assert len(keys) == 3
    assert schema_cache.tool_key("t", one) != schema_cache.tool_key("u", one)
    assert schema_cache.tool_key("t", one) == schema_cache.tool_key("t", one)
