"""Each ft_* op is a tool over literal tensors, generated from the op registry: a real MCP
client (in memory, legacy handshake) applies ops, gets element texts and statuses in the
output's shape, and gets a readable tool error naming the argument for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from mcp_harness.experience.store import Experience, Row
from mcp_harness.runtime.ops import OPS
from mcp_harness.server.app import build_server
from mcp_harness.server.declare import concise
from mcp_harness.server.tools_ops import op_names


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCP_HARNESS_KERNEL", raising=False)


async def test_every_op_is_a_tool_with_its_docstring_and_args() -> None:
    async with Client(build_server("ops"), mode="legacy") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(op_names()) <= set(tools) and "ft_input" not in tools
    assert {"ft_expert", "ft_switch", "ft_tmux_run", "ft_validate_regex"} <= set(op_names())
    assert op_names() == sorted(n for n in OPS if n.startswith("ft_") and n != "ft_input")
    for name in op_names():
        cls, tool = OPS[name], tools[name]
        assert tool.description == concise(cls.__doc__), name
        assert tool.title == f"Op {name}"
        props = tool.input_schema.get("properties", {})
        assert set(cls.ARGS) <= set(props), name
        required = {k for k, (_, default) in cls.ARGS.items() if default is ...}
        assert required <= set(tool.input_schema.get("required", [])), name
        assert ("tensors" in props) == (cls.arity != 0), name
    regex = tools["ft_validate_regex"].input_schema["properties"]["pattern"]
    assert regex["type"] == "string" and "pattern" not in tools[
        "ft_validate_regex"
    ].input_schema.get("required", [])
    assert tools["ft_validate_regex"].annotations.read_only_hint is True
    assert tools["ft_tmux_run"].annotations.destructive_hint is True
    assert "title" not in tools["ft_format"].input_schema["properties"]["template"]


async def test_ops_apply_to_literal_tensors() -> None:
    async with Client(build_server("ops"), mode="legacy") as client:
        joined = await client.call_tool(
            "ft_format",
            {
                "tensors": [[["a", "b"], ["c", "d"]], [["1", "2"], ["3", "4"]]],
                "template": "{0}={1}",
            },
        )
        assert not joined.is_error, joined.content[0].text
        out = joined.structured_content
        assert out["shape"] == [2, 2] and out["texts"] == [["a=1", "b=2"], ["c=3", "d=4"]]
        assert out["passed"] == 4 and Path(out["run_dir"]).is_dir()
        assert all(s.startswith("confidence") for row in out["statuses"] for s in row)

        checked = await client.call_tool(
            "ft_validate_regex", {"tensors": [["ok 3 tests", "FAILED"]], "pattern": r"ok \d+"}
        )
        statuses = checked.structured_content["statuses"]
        assert statuses[0].startswith("confidence") and statuses[1].startswith("failed")
        assert checked.structured_content["passed"] == 1

        made = await client.call_tool("ft_const", {"value": [["x"], ["y"]]})
        assert made.structured_content["shape"] == [2, 1]
        assert made.structured_content["texts"] == [["x"], ["y"]]


async def test_expert_reads_experience_by_name(harness_home: Path) -> None:
    experience = Experience.create(harness_home / "experience" / "shell")
    experience.append(
        [Row("list\nfiles\nhidden", "List all files including hidden ones", "ls -la")]
    )
    async with Client(build_server("ops"), mode="legacy") as client:
        answer = await client.call_tool(
            "ft_expert",
            {"tensors": [["List all files including hidden ones"]], "experience": "shell"},
        )
        assert not answer.is_error, answer.content[0].text
        assert answer.structured_content["texts"] == ["ls -la"]
        missing = await client.call_tool("ft_expert", {"tensors": [["x"]], "experience": "nosuch"})
        assert missing.is_error and "nosuch" in missing.content[0].text


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ({"tensors": [["a"], ["b", "c"]], "template": "{0}{1}"}, "input 0 has shape [1]"),
        ({"tensors": [[["a"], ["b", "c"]]], "template": "{0}"}, "tensors[0] is ragged"),
        ({"tensors": [[1, 2]], "template": "{0}"}, "tensors[0][0] is int"),
        ({"tensors": [], "template": "{0}"}, "ft_format takes 1 to any input tensor(s)"),
        ({"tensors": [["a"]]}, "template"),
        ({"tensors": [["a"]], "template": 5}, "template"),
    ],
)
async def test_bad_op_input_is_a_tool_error_naming_it(args: dict, said: str) -> None:
    async with Client(build_server("ops"), mode="legacy") as client:
        result = await client.call_tool("ft_format", args)
        assert result.is_error, result.structured_content
        text = result.content[0].text
        assert text.startswith("Error executing tool ft_format: ") and said in text, text
        again = await client.call_tool("ft_const", {"value": ["still serving"]})
        assert not again.is_error
