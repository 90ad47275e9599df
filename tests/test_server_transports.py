"""`mcp-harness serve` over real transports: stdio (as Claude Code launches it), streamable
HTTP with a real client, and the MCP Inspector CLI from npm (a third-party client)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters, types

from mcp_harness.experience.store import Experience, Row
from tests.http_fixtures import Served, serve_http

ROOT = Path(__file__).resolve().parent.parent
CLI = Path(sys.executable).parent / "mcp-harness"
INSPECTOR_BIN = ROOT / ".cache" / "inspector" / "node_modules" / ".bin"
START_DEADLINE_S = 30.0


def _seed(home: Path) -> None:
    experience = Experience.create(home / "experience" / "shell")
    experience.append([Row("list\nfiles", "list files", "ls -la")])


def _env(home: Path, runtime: Path | None = None) -> dict[str, str]:
    # PYTHONPATH passes through: a stdio child gets a minimal environment, and a worktree
    # sharing another checkout's venv must still serve its own code.
    env = {
        "MCP_HARNESS_HOME": str(home),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "MCP_HARNESS_TOOLS": "all",
    }
    if runtime is not None:
        env["MCP_HARNESS_RUNTIME_DIR"] = str(runtime)
    return env


# ---- stdio ---------------------------------------------------------------------------------


async def test_stdio_lists_and_calls_tools(
    runtime: Path, harness_home: Path, tmp_path: Path
) -> None:
    _seed(harness_home)
    params = StdioServerParameters(
        command=str(CLI), args=["serve"], env=_env(harness_home, runtime), cwd=str(tmp_path)
    )
    async with Client(params, mode="legacy") as client:
        assert client.protocol_version == "2025-11-25"
        names = [t.name for t in (await client.list_tools()).tools]
        assert names[:3] == ["experience_search", "experience_add", "experience_edit"]
        assert {"terminal_run", "graph_run", "ops_catalog"} <= set(names)

        found = await client.call_tool("experience_search", {"experience": "shell", "text": "ls"})
        assert not found.is_error
        assert found.structured_content["hits"] == []
        found = await client.call_tool(
            "experience_search", {"experience": "shell", "text": "list files"}
        )
        assert [h["value"] for h in found.structured_content["hits"]] == ["ls -la"]

        # A terminal (tmux children of the server) must not disturb the wire.
        made = await client.call_tool("terminal_create", {"name": "io", "cwd": str(tmp_path)})
        assert not made.is_error, made.content[0].text
        ran = await client.call_tool("terminal_run", {"name": "io", "command": "echo wire-ok"})
        assert ran.structured_content["exit_code"] == 0
        assert "wire-ok" in ran.structured_content["screen"]

        bad = await client.call_tool("experience_stats", {"experience": "nope"})
        assert bad.is_error and "unknown experience 'nope'" in bad.content[0].text
        again = await client.call_tool("experience_stats", {"experience": "shell"})
        assert again.structured_content["rows"] == 1


async def test_stdio_module_tool_progress_and_list_changed(
    runtime: Path, harness_home: Path, tmp_path: Path
) -> None:
    """Over stdio, with the default toolsets: the coder tool answers with progress, and a
    module the CLI creates meanwhile shows up with notifications/tools/list_changed."""
    env = _env(harness_home, runtime)
    del env["MCP_HARNESS_TOOLS"]  # the default set
    params = StdioServerParameters(command=str(CLI), args=["serve"], env=env, cwd=str(tmp_path))
    changed = anyio.Event()
    progress: list[float] = []

    async def on_message(message: object) -> None:
        if isinstance(getattr(message, "root", message), types.ToolListChangedNotification):
            changed.set()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with Client(params, mode="legacy", message_handler=on_message) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "coder" in names and "ft_format" in names and "terminal_run" not in names
        ran = await client.call_tool(
            "coder",
            {"task": "List all files including hidden ones with sizes", "check": "true"},
            progress_callback=on_progress,
        )
        assert not ran.is_error, ran.content[0].text
        assert ran.structured_content["result"]["tasks"][0]["commands"] == ["ls -la"]
        made = subprocess.run(
            [str(CLI), "module", "new", "second", "--from", "coder"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=False,
        )
        assert made.returncode == 0, made.stderr
        with anyio.fail_after(START_DEADLINE_S):
            await changed.wait()
        assert "second" in {t.name for t in (await client.list_tools()).tools}
    assert progress and progress == sorted(progress)


def test_stdio_server_exits_on_stdin_eof(harness_home: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [str(CLI), "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **_env(harness_home)},
        cwd=tmp_path,
    )
    try:
        hello = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "eof-test", "version": "1"},
            },
        }
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(hello).encode() + b"\n")
        proc.stdin.flush()
        reply = json.loads(proc.stdout.readline())
        assert reply["id"] == 1 and reply["result"]["serverInfo"]["name"] == "mcp-harness"
        proc.stdin.close()
        assert proc.wait(timeout=20) == 0
        assert proc.stdout.read() == b""  # nothing but JSON-RPC ever reached stdout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---- streamable HTTP -----------------------------------------------------------------------


@pytest.fixture
def http_server(harness_home: Path, tmp_path: Path) -> Iterator[Served]:
    _seed(harness_home)
    with serve_http(harness_home, tmp_path) as served:
        yield served
    log = served.log.read_text()
    assert f"MCP server at {served.url}" in log
    assert f'--header "Authorization: Bearer {served.token}"' in log


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_http_transport(http_server: Served, mode: str) -> None:
    async with http_server.client(mode) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"experience_add", "experience_stats", "graph_validate"} <= names
        added = await client.call_tool(
            "experience_add", {"experience": "shell", "key": "show disk", "value": "df -h"}
        )
        assert not added.is_error and added.structured_content["entry"]["row"] >= 1
        stats = await client.call_tool("experience_stats", {"experience": "shell"})
        assert stats.structured_content["rows"] == added.structured_content["rows"]
        bad = await client.call_tool("experience_edit", {"experience": "shell", "row": 99})
        assert bad.is_error and "nothing to change" in bad.content[0].text
        catalog = await client.call_tool("ops_catalog", {})
        assert not catalog.is_error


def test_http_refuses_a_busy_port(harness_home: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [str(CLI), "serve", "--http", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **_env(harness_home)},
        )
    assert done.returncode == 2 and done.stdout == ""
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr


# ---- the MCP Inspector CLI -----------------------------------------------------------------


def _inspector() -> Path:
    for name in ("mcp-inspector", "inspector"):
        if (INSPECTOR_BIN / name).is_file():
            return INSPECTOR_BIN / name
    pytest.skip(
        "MCP Inspector not installed: npm install --prefix .cache/inspector "
        "@modelcontextprotocol/inspector@2.12.0"
    )


def test_inspector_cli(harness_home: Path, tmp_path: Path) -> None:
    inspector = _inspector()
    _seed(harness_home)
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "MCP_CATALOG_PATH": str(tmp_path / "catalog.json"),
    }
    server = [str(CLI), "serve", "-e", f"MCP_HARNESS_HOME={harness_home}"]

    def inspect(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(inspector), "--cli", *server, *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
        )

    listed = inspect("--method", "tools/list")
    assert listed.returncode == 0, listed.stderr
    tools = {t["name"]: t for t in json.loads(listed.stdout)["tools"]}
    assert {"experience_stats", "experience_delete", "graph_run", "coder"} <= set(tools)
    assert "terminal_kill" not in tools  # the terminal toolset is off by default
    assert tools["experience_stats"]["annotations"]["readOnlyHint"] is True
    assert tools["experience_delete"]["annotations"]["destructiveHint"] is True
    assert "outputSchema" in tools["experience_stats"]

    called = inspect(
        "--method",
        "tools/call",
        "--tool-name",
        "experience_stats",
        "--tool-arg",
        "experience=shell",
    )
    assert called.returncode == 0, called.stderr
    result = json.loads(called.stdout)
    assert result["isError"] is False and result["structuredContent"]["rows"] == 1

    failed = inspect(
        "--method", "tools/call", "--tool-name", "experience_stats", "--tool-arg", "experience=zz"
    )
    assert failed.returncode == 5
    assert "unknown experience 'zz'" in failed.stdout


async def test_every_tool_answers_over_stdio(
    runtime: Path, harness_home: Path, tmp_path: Path
) -> None:
    """One stdio session calls each tool once: a real answer, or a tool error that names the
    problem — never a broken wire. (The in-memory suites test each tool's behaviour.)"""
    _seed(harness_home)
    params = StdioServerParameters(
        command=str(CLI), args=["serve"], env=_env(harness_home, runtime), cwd=str(tmp_path)
    )
    spec = {"nodes": [{"id": "a", "op": "ft_const", "args": {"value": ["x"]}}], "output": "a"}
    calls = {
        "experience_search": {"experience": "shell", "text": "list files"},
        "experience_add": {"experience": "shell", "key": "show disk", "value": "df -h"},
        "experience_edit": {"experience": "shell", "row": 1, "value": "df -h ."},
        "experience_delete": {"experience": "shell", "rows": [1]},
        "experience_stats": {"experience": "shell"},
        "terminal_create": {"name": "every", "cwd": str(tmp_path)},
        "terminal_run": {"name": "every", "command": "echo hi"},
        "terminal_send_text": {"name": "every", "text": "echo typed"},
        "terminal_send_keys": {"name": "every", "keys": ["Enter"]},
        "terminal_capture": {"name": "every"},
        "terminal_list": {},
        "terminal_kill": {"name": "every"},
        "ops_catalog": {},
        "graph_validate": {"spec": spec},
        "graph_run": {"spec": spec, "inputs": {}},
        "module_list": {},
        "module_show": {"module": "coder"},
        "module_run_start": {"module": "nosuch", "inputs": {"task": "x"}},
        "module_train_start": {"module": "coder", "data": str(tmp_path / "missing.jsonl")},
        "job_status": {"job_id": "nosuch"},
        "job_stop": {"job_id": "nosuch"},
        "job_list": {},
        "trace_show": {"run_dir": str(tmp_path)},
        "capture_status": {},
        "capture_harvest": {"transcripts": None},
        "capture_log": {"n": 5},
        "export_skill": {"module": "coder", "to": str(tmp_path / "skills")},
        "list_allowed_directories": {},
        "coder": {"task": "List the files", "check": "true", "background": True},
    }
    required = {  # each op tool once, on one literal tensor (errors must still be readable)
        "ft_expand": {"shape": [1]},
        "ft_expert": {"experience": "shell"},
        "ft_format": {"template": "{0}"},
        "ft_slice": {"index": [0]},
        "ft_switch": {"cases": ["a"]},
        "ft_unsqueeze": {"dim": 0},
    }
    from mcp_harness.server.tools_ops import op_names

    for op in op_names():
        calls[op] = (
            {"value": ["x"]} if op == "ft_const" else {"tensors": [["a"]], **required.get(op, {})}
        )
    async with Client(params, mode="legacy") as client:
        names = [t.name for t in (await client.list_tools()).tools]
        assert sorted(names) == sorted(calls), "a tool was added: give it a call here"
        outcomes = {}
        for name, arguments in calls.items():
            result = await client.call_tool(name, arguments)
            text = result.content[0].text if result.content else ""
            outcomes[name] = result.is_error
            if result.is_error:  # an error must say what is wrong, not "Error executing tool"
                assert len(text) > len(f"Error executing tool {name}"), (name, text)
    expected_errors = {
        "module_run_start",
        "module_train_start",
        "job_status",
        "job_stop",
        "trace_show",
    }
    failed = {n for n, failed in outcomes.items() if failed and not n.startswith("ft_")}
    assert failed == expected_errors
    assert not outcomes["ft_const"] and not outcomes["ft_format"] and not outcomes["ft_expert"]
