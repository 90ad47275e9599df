"""The experience, terminal and graph tools of the MCP server, called by a real MCP client over
the in-memory transport with the legacy handshake (what Claude Code speaks). Terminals are real
tmux sessions; every bad input must come back as a readable tool error, and the server must keep
serving after it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from mcp_harness.server.app import build_server
from mcp_harness.server.confine import ENV_ALLOWED_DIRS, allowed_path

MINE = [
    "experience_search",
    "experience_add",
    "experience_edit",
    "experience_delete",
    "experience_stats",
    "terminal_create",
    "terminal_run",
    "terminal_send_text",
    "terminal_send_keys",
    "terminal_capture",
    "terminal_list",
    "terminal_kill",
    "ops_catalog",
    "graph_validate",
    "graph_run",
]
CLI = Path(sys.executable).parent / "mcp-harness"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The server's working directory (an allowed root); tmp_path/outside is in no root."""
    directory = tmp_path / "work"
    directory.mkdir()
    (tmp_path / "outside").mkdir()
    monkeypatch.chdir(directory)
    monkeypatch.delenv(ENV_ALLOWED_DIRS, raising=False)
    return directory


@asynccontextmanager
async def connect() -> AsyncIterator[Client]:
    async with Client(build_server(), mode="legacy") as client:
        assert client.protocol_version == "2025-11-25"
        yield client


async def ok(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content[0].text
    assert result.structured_content is not None
    return result.structured_content


async def fails(client: Client, tool: str, **args: Any) -> str:
    """The tool error's text; then checks the server still answers."""
    result = await client.call_tool(tool, args)
    assert result.is_error, result.structured_content
    text = result.content[0].text
    assert text.startswith(f"Error executing tool {tool}: ")  # the message is not hidden
    still = await client.call_tool("ops_catalog", {})
    assert not still.is_error
    return text


# ---- listing -------------------------------------------------------------------------------


async def test_lists_the_tools_with_schemas_and_hints(work: Path) -> None:
    async with connect() as client:
        tools = (await client.list_tools()).tools
    assert [t.name for t in tools][: len(MINE)] == MINE
    by_name = {t.name: t for t in tools}
    for name in MINE:
        tool = by_name[name]
        assert tool.description and "\n" not in tool.description.split("\n\n")[0]
        assert tool.output_schema is not None, name
        assert tool.annotations is not None, name
        for prop in tool.input_schema.get("properties", {}).values():
            assert prop.get("description"), (name, prop)
    reads = {"experience_search", "experience_stats", "terminal_capture", "terminal_list"}
    for name in reads | {"ops_catalog", "graph_validate"}:
        assert by_name[name].annotations.read_only_hint is True, name
    for name in ("experience_delete", "terminal_kill"):
        assert by_name[name].annotations.destructive_hint is True, name
        assert not by_name[name].annotations.read_only_hint
    assert by_name["experience_add"].annotations.destructive_hint is False
    schema = by_name["experience_search"].input_schema
    assert schema["required"] == ["experience", "text"]
    assert schema["properties"]["method"]["enum"] == ["jaccard", "bm25"]


# ---- experience ----------------------------------------------------------------------------


async def test_experience_round_trip(work: Path, harness_home: Path) -> None:
    async with connect() as client:
        added = await ok(
            client, "experience_add", experience="shell", key="list files", value="ls -la",
            create=True,
        )  # fmt: skip
        assert added["created"] is True and added["rows"] == 1
        assert added["experience"] == str((harness_home / "experience" / "shell").resolve())
        assert added["entry"] == {
            "row": 0,
            "query": "list\nfiles",
            "key": "list files",
            "value": "ls -la",
            "weight": 1.0,
            "provenance": added["entry"]["provenance"],
        }
        assert added["entry"]["provenance"]["source"] == "mcp"
        second = await ok(
            client, "experience_add", experience="shell", key="show disk usage",
            value="df -h", query="disk\nusage\nspace", weight=0.5,
        )  # fmt: skip
        assert second["created"] is False and second["entry"]["row"] == 1
        secret = await ok(
            client, "experience_add", experience="shell", key="call the api",
            value="curl -H 'Authorization: Bearer sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123'",
        )  # fmt: skip
        assert "abcdefghijklmnopqrstuvwxyz0123" not in secret["entry"]["value"]

        found = await ok(client, "experience_search", experience="shell", text="list the files")
        assert found["rows"] == 3 and found["note"] is None
        assert [h["row"] for h in found["hits"]] == [0]
        assert found["hits"][0]["value"] == "ls -la" and found["hits"][0]["score"] > 0
        bm25 = await ok(
            client, "experience_search", experience="shell", text="disk space", k=1,
            method="bm25",
        )  # fmt: skip
        assert [h["value"] for h in bm25["hits"]] == ["df -h"] and bm25["method"] == "bm25"
        nothing = await ok(client, "experience_search", experience="shell", text="quantum flux")
        assert nothing["hits"] == [] and nothing["note"] == "no row shares a keyword"

        edited = await ok(
            client, "experience_edit", experience="shell", row=0, value="ls -lah", weight=0.8
        )
        assert edited["entry"]["value"] == "ls -lah" and edited["entry"]["weight"] == 0.8
        assert edited["entry"]["key"] == "list files"

        stats = await ok(client, "experience_stats", experience="shell")
        assert stats["rows"] == 3 and stats["sources"] == {"mcp": 3}
        assert stats["weight_mean"] == pytest.approx((0.8 + 0.5 + 1.0) / 3)

        deleted = await ok(client, "experience_delete", experience="shell", rows=[0, 2])
        assert deleted == {"experience": added["experience"], "deleted": 2, "rows": 1}
        left = await ok(client, "experience_search", experience="shell", text="disk usage")
        assert [(h["row"], h["value"]) for h in left["hits"]] == [(0, "df -h")]

        await ok(client, "experience_add", experience="empty", key="k", value="v", create=True)
        await ok(client, "experience_delete", experience="empty", rows=[0])
        empty = await ok(client, "experience_search", experience="empty", text="k")
        assert empty["hits"] == [] and empty["note"] == "the experience is empty"


async def test_experience_bad_input_is_a_tool_error(work: Path) -> None:
    async with connect() as client:
        for tool, args in [
            ("experience_search", {"text": "x"}),
            ("experience_stats", {}),
            ("experience_edit", {"row": 0, "value": "x"}),
            ("experience_delete", {"rows": [0]}),
            ("experience_add", {"key": "k", "value": "v"}),
        ]:
            text = await fails(client, tool, experience="nope", **args)
            assert "unknown experience 'nope'" in text and "create=true" in text
        await ok(client, "experience_add", experience="shell", key="a", value="b", create=True)
        text = await fails(client, "experience_stats", experience="nope")
        assert "use one of: shell" in text

        text = await fails(client, "experience_edit", experience="shell", row=5, value="x")
        assert "row 5 does not exist" in text and "0 to 0" in text
        text = await fails(client, "experience_delete", experience="shell", rows=[0, 9])
        assert "row 9 does not exist" in text
        assert (await ok(client, "experience_stats", experience="shell"))["rows"] == 1
        text = await fails(client, "experience_edit", experience="shell", row=0)
        assert "nothing to change" in text

        for tool, args, field in [
            ("experience_search", {"text": "x", "k": "many"}, "k"),
            ("experience_search", {"text": "x", "k": 0}, "k"),
            ("experience_search", {"text": "x", "method": "cosine"}, "method"),
            ("experience_search", {}, "text"),
            ("experience_edit", {"row": -1, "value": "x"}, "row"),
            ("experience_edit", {"row": "first", "value": "x"}, "row"),
            ("experience_delete", {"rows": ["x"]}, "rows"),
            ("experience_delete", {"rows": []}, "rows"),
            ("experience_add", {"key": "k", "value": "v", "weight": -1}, "weight"),
            ("experience_add", {"key": "k", "value": ["v"]}, "value"),
        ]:
            text = await fails(client, tool, experience="shell", **args)
            assert field in text and "validation error" in text, (tool, args, text)
        assert (await ok(client, "experience_stats", experience="shell"))["rows"] == 1


async def test_experience_paths_must_stay_in_allowed_dirs(
    work: Path, tmp_path: Path, harness_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "outside"
    async with connect() as client:
        text = await fails(
            client, "experience_add", experience=str(outside / "exp"), key="k", value="v",
            create=True,
        )  # fmt: skip
        assert f"'{outside / 'exp'}' is outside the directories" in text
        assert str(harness_home.resolve()) in text and str(work.resolve()) in text
        assert ENV_ALLOWED_DIRS in text
        assert not (outside / "exp").exists()
        text = await fails(client, "experience_stats", experience="../outside/exp")
        assert "is outside the directories" in text

        # A symlink inside an allowed directory that leads out of it is still outside.
        harness_home.mkdir(parents=True, exist_ok=True)
        (harness_home / "link").symlink_to(outside)
        text = await fails(client, "experience_stats", experience=str(harness_home / "link/x"))
        assert f"({outside.resolve() / 'x'})" in text

        # The server's working directory is allowed, as relative paths.
        made = await ok(
            client, "experience_add", experience="./local/exp", key="k", value="v", create=True
        )
        assert made["experience"] == str((work / "local" / "exp").resolve())

        monkeypatch.setenv(ENV_ALLOWED_DIRS, os.pathsep.join(["", str(outside)]))
        made = await ok(
            client, "experience_add", experience=str(outside / "exp"), key="k", value="v",
            create=True,
        )  # fmt: skip
        assert made["rows"] == 1
    assert allowed_path(outside / "exp") == (outside / "exp").resolve()


async def test_cached_experience_sees_other_processes(work: Path, harness_home: Path) -> None:
    async with connect() as client:
        await ok(
            client, "experience_add", experience="shell", key="list files", value="ls",
            create=True,
        )  # fmt: skip
        first = await ok(client, "experience_search", experience="shell", text="compress logs")
        assert first["hits"] == []
        subprocess.run(
            [str(CLI), "experience", "add", "shell", "compress the logs", "tar czf logs.tgz logs"],
            check=True,
            capture_output=True,
            env=dict(os.environ),
        )
        found = await ok(client, "experience_search", experience="shell", text="compress logs")
        assert [h["value"] for h in found["hits"]] == ["tar czf logs.tgz logs"]
        assert (await ok(client, "experience_stats", experience="shell"))["rows"] == 2

        shutil.rmtree(harness_home / "experience" / "shell")
        text = await fails(client, "experience_search", experience="shell", text="logs")
        assert "unknown experience 'shell'" in text


# ---- terminals -----------------------------------------------------------------------------


async def test_terminal_tools(runtime: Path, work: Path, tmp_path: Path) -> None:
    async with connect() as client:
        made = await ok(client, "terminal_create", name="t1", cwd=str(work))
        assert made["name"] == "t1" and made["screen"].startswith("$")
        assert made["attach"].endswith("attach -t =ft-t1") and str(runtime) in made["attach"]

        ran = await ok(client, "terminal_run", name="t1", command="pwd; echo hi; false")
        assert ran["exit_code"] == 1 and ran["timed_out"] is False
        assert str(work.resolve()) in ran["screen"] and "\nhi\n" in ran["screen"]

        # An interactive program: start it, answer it by typing, see the result.
        assert await ok(
            client, "terminal_send_text", name="t1", text='read -r x; echo "got-$x"'
        ) == {"name": "t1", "sent": 24}
        await ok(client, "terminal_send_keys", name="t1", keys=["Enter"])
        busy = await ok(client, "terminal_capture", name="t1")
        await ok(client, "terminal_send_text", name="t1", text="hello\n")
        after = await ok(client, "terminal_run", name="t1", command="echo done")
        assert "got-hello" in after["screen"] and after["exit_code"] == 0
        assert 'read -r x; echo "got-$x"' in busy["screen"]
        idle = await ok(client, "terminal_capture", name="t1")
        assert idle["idle"] is True and "got-hello" in idle["screen"]

        # Timeout: the command keeps running; C-c brings the prompt back.
        slow = await ok(client, "terminal_run", name="t1", command="sleep 30", timeout=0.3)
        assert slow["timed_out"] is True and slow["exit_code"] is None
        assert (await ok(client, "terminal_capture", name="t1"))["idle"] is False
        await ok(client, "terminal_send_keys", name="t1", keys=["C-c"])
        back = await ok(client, "terminal_run", name="t1", command="echo back")
        assert back["exit_code"] == 0 and "back" in back["screen"]

        await ok(client, "terminal_create", name="t2")
        listed = await ok(client, "terminal_list")
        assert {"t1", "t2"} <= set(listed["terminals"])
        assert await ok(client, "terminal_kill", name="t2") == {"name": "t2", "killed": True}
        assert "t2" not in (await ok(client, "terminal_list"))["terminals"]

        # Reuse: creating t1 again clears it and keeps it alive.
        again = await ok(client, "terminal_create", name="t1")
        assert "got-hello" not in again["screen"]


async def test_terminal_bad_input_is_a_tool_error(
    runtime: Path, work: Path, tmp_path: Path
) -> None:
    async with connect() as client:
        for tool, args in [
            ("terminal_run", {"command": "true"}),
            ("terminal_send_text", {"text": "x"}),
            ("terminal_send_keys", {"keys": ["Enter"]}),
            ("terminal_capture", {}),
            ("terminal_kill", {}),
        ]:
            text = await fails(client, tool, name="ghost", **args)
            assert "terminal 'ghost' does not exist" in text
            assert "terminal_create(name='ghost')" in text

        await ok(client, "terminal_create", name="gone")
        text = await fails(client, "terminal_run", name="gone", command="exit", timeout=5)
        assert "terminal 'gone' does not exist" in text and "its shell exited" in text
        text = await fails(client, "terminal_capture", name="gone")
        assert "terminal 'gone' does not exist" in text and "terminal_create" in text

        text = await fails(client, "terminal_create", name="x", cwd=str(tmp_path / "outside"))
        assert "is outside the directories" in text
        text = await fails(client, "terminal_create", name="x", cwd=str(work / "missing"))
        assert "does not exist" in text and "cwd" in text
        text = await fails(client, "terminal_create", name="a b")
        assert "validation error" in text and "name" in text

        await ok(client, "terminal_create", name="k")
        text = await fails(client, "terminal_send_keys", name="k", keys=["Enter", "Hyper-x"])
        assert "unknown key 'Hyper-x'" in text and "C-c" in text
        text = await fails(client, "terminal_send_keys", name="k", keys="Enter")
        assert "validation error" in text
        text = await fails(client, "terminal_run", name="k", command="true", timeout=-1)
        assert "timeout" in text
        assert (await ok(client, "terminal_run", name="k", command="echo fine"))["exit_code"] == 0
        await ok(client, "terminal_kill", name="k")


# ---- ops and graphs ------------------------------------------------------------------------

SHAPE_ERROR_SPEC = {
    "nodes": [
        {"id": "a", "op": "ft_const", "args": {"value": ["x", "y"]}},
        {"id": "b", "op": "ft_const", "args": {"value": ["x", "y", "z"]}},
        {"id": "joined", "op": "ft_format", "inputs": ["a", "b"], "args": {"template": "{0}{1}"}},
    ],
    "output": "joined",
}
EXPERT_SPEC = {
    "name": "lookup",
    "dims": {"batch": 1},
    "inputs": {"task": ["batch"]},
    "experience": {"cmd": "shell"},
    "nodes": [
        {"id": "task", "op": "ft_input", "args": {"input": "task", "shape": ["batch"]}},
        {"id": "answer", "op": "ft_expert", "inputs": ["task"], "args": {"experience": "cmd"}},
    ],
    "output": "answer",
}


async def test_ops_catalog_and_graph_validate(work: Path) -> None:
    from mcp_harness.runtime.ops import OPS

    async with connect() as client:
        catalog = await ok(client, "ops_catalog")
        ops = {op["name"]: op for op in catalog["ops"]}
        assert list(ops) == sorted(OPS)
        expert = ops["ft_expert"]
        assert (expert["min_inputs"], expert["max_inputs"]) == (1, 1)
        args = {a["name"]: a for a in expert["args"]}
        assert args["experience"] == {
            "name": "experience",
            "types": ["string"],
            "required": True,
            "default": None,
        }
        assert args["topk"]["default"] == 4 and args["topk"]["required"] is False
        assert "retrieve" in expert["doc"].lower() or "search" in expert["doc"].lower()
        assert ops["ft_switch"]["max_inputs"] is None
        assert ops["ft_validate_regex"]["args"][0]["types"] == ["string", "null"]

        checked = await ok(client, "graph_validate", spec=EXPERT_SPEC, dims={"batch": 3})
        assert checked["name"] == "lookup" and checked["output"] == "answer"
        assert checked["output_shape"] == [3] and checked["dims"] == {"batch": 3}
        assert [(n["id"], n["shape"]) for n in checked["nodes"]] == [
            ("task", [3]),
            ("answer", [3]),
        ]
        coder = await ok(client, "graph_validate", spec=_coder_spec(), dims={"steps": 2})
        assert coder["output_shape"] == [1]
        assert {n["id"]: n["shape"] for n in coder["nodes"]}["screen"] == [1, 2]

        text = await fails(client, "graph_validate", spec=SHAPE_ERROR_SPEC)
        assert "node 'joined' (ft_format)" in text and "[2]" in text and "[3]" in text
        assert "fix:" in text
        bad_op = {"nodes": [{"id": "a", "op": "ft_nope"}], "output": "a"}
        text = await fails(client, "graph_validate", spec=bad_op)
        assert "node 'a': unknown op 'ft_nope'" in text and "ft_const" in text
        bad_arg = {"nodes": [{"id": "a", "op": "ft_expert", "args": {"topk": 2}}], "output": "a"}
        text = await fails(client, "graph_validate", spec=bad_arg)
        assert "node 'a'" in text
        text = await fails(client, "graph_validate", spec="not a graph")
        assert "validation error" in text and "spec" in text
        text = await fails(client, "graph_validate", spec=EXPERT_SPEC, dims={"batch": "x"})
        assert "validation error" in text and "dims" in text


def _coder_spec() -> dict[str, Any]:
    import json
    from importlib import resources

    return json.loads(
        resources.files("mcp_harness.modules").joinpath("coder/module.json").read_text()
    )


async def test_graph_run_offline(work: Path, tmp_path: Path) -> None:
    async with connect() as client:
        for key, value in [("list files", "ls -la"), ("show disk usage", "df -h")]:
            await ok(
                client, "experience_add", experience="shell", key=key, value=value, create=True
            )
        ran = await ok(
            client, "graph_run", spec=EXPERT_SPEC,
            inputs={"task": ["list the files", "disk usage please", "quantum flux"]},
        )  # fmt: skip
        assert ran["name"] == "lookup" and ran["output_shape"] == [3] and ran["passed"] == 2
        elements = ran["elements"]
        assert [e["coords"] for e in elements] == [[0], [1], [2]]
        assert [e["text"] for e in elements[:2]] == ["ls -la", "df -h"]
        assert elements[0]["ok"] and elements[0]["status"].startswith("confidence")
        assert not elements[2]["ok"] and elements[2]["status"].startswith("failed")
        assert elements[0]["meta"]["rows"][0] == 0
        assert Path(ran["run_dir"], "answer", "shape").is_file()

        # `experience` maps a declared name elsewhere; the kernel is named explicitly.
        await ok(client, "experience_add", experience="other", key="list files", value="dir",
                 create=True)  # fmt: skip
        mapped = await ok(
            client, "graph_run", spec=EXPERT_SPEC, inputs={"task": ["list files"]},
            experience={"cmd": "other"}, kernel="offline",
        )  # fmt: skip
        assert [e["text"] for e in mapped["elements"]] == ["dir"]

        plain = {
            "nodes": [
                {"id": "a", "op": "ft_const", "args": {"value": [["a", "b"], ["c", "d"]]}},
                {"id": "f", "op": "ft_format", "inputs": ["a"], "args": {"template": "<{0}>"}},
            ],
            "output": "f",
        }
        grid = await ok(client, "graph_run", spec=plain, inputs={})
        assert [(e["coords"], e["text"]) for e in grid["elements"]] == [
            ([0, 0], "<a>"),
            ([0, 1], "<b>"),
            ([1, 0], "<c>"),
            ([1, 1], "<d>"),
        ]

        text = await fails(client, "graph_run", spec=EXPERT_SPEC, inputs={})
        assert "needs inputs ['task']" in text
        text = await fails(
            client, "graph_run", spec=EXPERT_SPEC, inputs={"task": ["x"]}, kernel="nonsense"
        )
        assert "nonsense" in text and "offline" in text
        text = await fails(
            client, "graph_run", spec=EXPERT_SPEC, inputs={"task": ["x"]},
            experience={"cmd": "missing"},
        )  # fmt: skip
        assert "graph experience 'cmd'" in text and "missing" in text
        text = await fails(
            client, "graph_run", spec=EXPERT_SPEC, inputs={"task": ["x"]},
            experience={"cmd": str(tmp_path / "outside")},
        )  # fmt: skip
        assert "is outside the directories" in text
        text = await fails(
            client, "graph_run", spec=EXPERT_SPEC, inputs={"task": ["x"]},
            experience={"undeclared": "shell"},
        )  # fmt: skip
        assert "not declared" in text
        text = await fails(client, "graph_run", spec=SHAPE_ERROR_SPEC, inputs={})
        assert "node 'joined' (ft_format)" in text
        text = await fails(client, "graph_run", spec=EXPERT_SPEC, inputs={"task": ["x"]},
                           timeout="soon")  # fmt: skip
        assert "validation error" in text and "timeout" in text


async def test_graph_run_drives_terminals_and_times_out(runtime: Path, work: Path) -> None:
    spec = {
        "nodes": [
            {"id": "session", "op": "ft_tmux_create_session", "args": {"name": "g"}},
            {"id": "cmd", "op": "ft_const", "args": {"value": ["echo from-$((6*7))"]}},
            {"id": "ran", "op": "ft_tmux_run", "inputs": ["cmd", "session"]},
        ],
        "output": "ran",
    }
    async with connect() as client:
        ran = await ok(client, "graph_run", spec=spec, inputs={})
        (element,) = ran["elements"]
        assert element["ok"] and "from-42" in element["text"]
        assert element["meta"]["exit_code"] == 0

        spec["nodes"][1]["args"]["value"] = ["sleep 30"]
        text = await fails(client, "graph_run", spec=spec, inputs={}, timeout=0.5)
        assert "timed out after 0.5 s" in text and "larger timeout" in text
