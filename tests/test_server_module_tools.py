"""Each module is a tool and the tool list follows the modules dir: a real MCP client (in
memory, the legacy handshake Claude Code speaks) calls the built-in `coder` by name on the
offline kernel in real tmux, gets progress notifications and a per-task result, and sees
`notifications/tools/list_changed` when another process (the CLI) creates a module."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, types

from mcp_harness.server.app import build_server
from mcp_harness.server.toolsets import DEFAULT

CLI = Path(sys.executable).parent / "mcp-harness"
WAIT_S = 60


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MCP_HARNESS_KERNEL", "MCP_HARNESS_ALLOWED_DIRS", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)


async def test_coder_is_a_tool_with_its_inputs(harness_home: Path) -> None:
    async with Client(build_server(), mode="legacy") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    coder = tools["coder"]
    assert coder.title == "Run module coder" and "tmux" in coder.description
    schema = coder.input_schema
    assert schema["required"] == ["task", "check"]
    assert set(schema["properties"]) == {"task", "workdir", "check", "kernel", "background"}
    assert "exits 0" in schema["properties"]["check"]["description"]  # from the module's README
    assert coder.annotations.destructive_hint is True
    assert all(t.title for t in tools.values()), [n for n, t in tools.items() if not t.title]


async def test_calling_coder_reports_progress_and_each_task(
    harness_home: Path, runtime: Path, tmp_path: Path
) -> None:
    seen: list[tuple[float, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, message))

    async with Client(build_server(), mode="legacy") as client:
        result = await client.call_tool(
            "coder",
            {
                "task": [
                    "List all files including hidden ones with sizes",
                    "Make run.sh executable",
                ],
                "check": ["true", "test -x run.sh"],  # the second has no run.sh: it fails
            },
            progress_callback=progress,
        )
        assert not result.is_error, result.content[0].text
        answer = result.structured_content
        assert answer["state"] == "done" and answer["resource"].startswith("harness://jobs/")
        run = answer["result"]
        assert run["total"] == 2 and run["passed"] == 1
        first, second = run["tasks"]
        assert [first["index"], second["index"]] == [0, 1]
        assert first["passed"] and first["commands"] == ["ls -la"] and first["reason"] is None
        assert not second["passed"] and second["reason"] and "$ chmod" in second["screen"]
        assert Path(run["run_dir"], "command", "shape").is_file()
        # the job it ran as is kept, and readable as a resource
        job = await client.read_resource(answer["resource"])
        assert json.loads(job.contents[0].text)["state"] == "done"
        background = await client.call_tool(
            "coder", {"task": "List files", "check": "true", "background": True}
        )
        started = background.structured_content
        assert started["state"] == "running" and started["result"] is None
        status = await client.call_tool(
            "job_status", {"job_id": started["job_id"], "wait_seconds": 30}
        )
        assert status.structured_content["state"] == "done"
    assert len(seen) >= 2, seen  # "starting", then each step's work
    values = [value for value, _ in seen]
    assert values == sorted(values) and len(set(values)) == len(values)  # rising
    assert seen[0] == (0.0, "starting")
    steps = [m for _, m in seen[1:] if m != "finished"]  # the last may come as the run ends
    assert all("elements computed" in (m or "") for m in steps), seen


async def test_bad_module_input_is_a_tool_error_naming_it(harness_home: Path) -> None:
    async with Client(build_server(), mode="legacy") as client:
        missing = await client.call_tool("coder", {"check": "true"})
        assert missing.is_error and "task" in missing.content[0].text
        wrong = await client.call_tool("coder", {"task": "x", "check": "true", "workdir": "/"})
        assert wrong.is_error and "workdir" in wrong.content[0].text.lower()
        lists = await client.call_tool("coder", {"task": ["a", "b"], "check": ["true"]})
        assert lists.is_error and "different lengths" in lists.content[0].text


async def test_tool_list_follows_modules_made_by_the_cli(harness_home: Path) -> None:
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(getattr(message, "root", message), types.ToolListChangedNotification):
            changed.set()

    async with Client(build_server(), mode="legacy", message_handler=on_message) as client:
        assert client.server_capabilities.tools.list_changed is True
        before = {t.name for t in (await client.list_tools()).tools}
        assert "mine" not in before
        made = subprocess.run(
            [str(CLI), "module", "new", "mine", "--from", "coder"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert made.returncode == 0, made.stderr
        with anyio.fail_after(WAIT_S):  # the server's watch notices it on its own
            await changed.wait()
        after = {t.name for t in (await client.list_tools()).tools}
        assert after - before == {"mine"}

        # a module named like another tool has none either
        clash = subprocess.run(
            [str(CLI), "module", "new", "job_list", "--from", "coder"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert clash.returncode == 0, clash.stderr
        # a module whose spec is broken has no tool; module_list says why
        broken = harness_home / "modules" / "broken"
        broken.mkdir()
        (broken / "module.json").write_text('{"nodes": [], "output": "nowhere"}')
        names = {t.name for t in (await client.list_tools()).tools}
        assert "broken" not in names and "mine" in names
        listed = await client.call_tool("module_list", {})
        info = {m["name"]: m for m in listed.structured_content["modules"]}
        assert info["broken"]["tool"] is None and "nowhere" in info["broken"]["error"]
        assert info["mine"]["tool"] == "mine" and info["mine"]["error"] is None
        assert info["job_list"]["tool"] is None and "another tool" in info["job_list"]["error"]
        job_list = next(t for t in (await client.list_tools()).tools if t.name == "job_list")
        assert job_list.title == "List jobs"  # the job tool, not the module
        still = await client.call_tool("coder", {"task": "x", "check": "true", "workdir": "/"})
        assert still.is_error  # the server keeps serving


async def test_default_toolsets_and_the_budget(
    harness_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Descriptions + input schemas of the default set stay under 24,000 characters with the
    built-in module and every op as tools (what Claude Code sends with each request)."""
    monkeypatch.delenv("MCP_HARNESS_TOOLS")
    from mcp_harness.server.tools_ops import op_names

    async with Client(build_server(), mode="legacy") as client:
        tools = (await client.list_tools()).tools
    names = {t.name for t in tools}
    assert not any(name.startswith("terminal_") for name in names)  # Claude Code has Bash
    assert set(op_names()) <= names and "coder" in names
    size = sum(len(t.description or "") + len(json.dumps(t.input_schema)) for t in tools)
    assert size < 24_000, size
    assert all("\n" not in t.description.split("\n\n")[0] for t in tools)
    assert "terminal" not in DEFAULT
    only = build_server("modules,jobs")
    async with Client(only, mode="legacy") as client:
        few = {t.name for t in (await client.list_tools()).tools}
    assert "coder" in few and "job_status" in few and "experience_search" not in few
    assert "list_allowed_directories" in few


def test_serve_refuses_an_unknown_toolset(harness_home: Path) -> None:
    done = subprocess.run(
        [str(CLI), "serve", "--tools", "modules,bogus"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 2 and "unknown toolset 'bogus'" in done.stderr
    assert "Traceback" not in done.stderr


async def test_a_2026_era_client_calls_the_module_tool(harness_home: Path, runtime: Path) -> None:
    seen: list[float] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append(value)

    async with Client(build_server()) as client:  # auto: the 2026-07-28 protocol, no handshake
        assert client.protocol_version == "2026-07-28"
        result = await client.call_tool(
            "coder", {"task": "List files", "check": "true"}, progress_callback=progress
        )
        assert not result.is_error, result.content[0].text
        assert result.structured_content["state"] == "done" and seen
