"""Limits a client cannot get past: element counts checked from the shapes before anything is
built, batch, jobs, terminals, cell and request sizes, regex time, saved results; each is set
in config.toml's [limits] and its error names the limit and the setting. And one terminal runs
one command at a time, each caller getting its own exit status."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client

from mcp_harness.errors import HarnessError
from mcp_harness.limits import Limits, limits
from mcp_harness.server import output
from mcp_harness.server.app import build_server
from mcp_harness.server.state import ServerState
from tests.http_fixtures import serve_http

CLI = Path(sys.executable).parent / "mcp-harness"
HUGE = {
    "inputs": {"task": [1]},
    "nodes": [
        {"id": "task", "op": "ft_input", "args": {"input": "task", "shape": [1]}},
        {"id": "wide", "op": "ft_expand", "inputs": ["task"], "args": {"shape": [10**7]}},
    ],
    "output": "wide",
}


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's working directory (an allowed root) is the test's own."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MCP_HARNESS_ALLOWED_DIRS", raising=False)
    monkeypatch.delenv("MCP_HARNESS_KERNEL", raising=False)


def configure(home: Path, **values: Any) -> None:
    home.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
    (home / "config.toml").write_text(f"[limits]\n{lines}")


async def call(client: Client, tool: str, **args: Any) -> tuple[bool, Any]:
    result = await client.call_tool(tool, args)
    if result.is_error:
        return True, result.content[0].text
    return False, result.structured_content


def names_the_setting(text: str, key: str, home: Path) -> bool:
    return (
        f"exceeds the limit {key} = " in text
        and f"raise `{key}` in the [limits] table of {home / 'config.toml'}" in text
    )


async def test_huge_shapes_are_refused_before_anything_is_built(harness_home: Path) -> None:
    async with Client(build_server(), mode="legacy") as client:
        failed, text = await call(client, "graph_run", spec=HUGE, inputs={"task": ["x"]})
        assert failed and "node 'wide' has shape [10000000]" in text
        assert names_the_setting(text, "node_elements", harness_home)
        failed, text = await call(client, "graph_validate", spec=HUGE)
        assert failed and "node_elements" in text
        wide_dim = {**HUGE, "dims": {"n": 10**6}}
        wide_dim["nodes"] = [HUGE["nodes"][0], {**HUGE["nodes"][1], "args": {"shape": ["n"]}}]
        failed, text = await call(client, "graph_validate", spec=wide_dim)
        assert failed and "[1000000]" in text
        many = {**HUGE, "nodes": [HUGE["nodes"][0]]}
        many["nodes"] += [
            {"id": f"n{i}", "op": "ft_expand", "inputs": ["task"], "args": {"shape": [9000]}}
            for i in range(12)
        ]
        failed, text = await call(client, "graph_validate", spec=many)
        assert failed and names_the_setting(text, "run_elements", harness_home)
    configure(harness_home, steps=10**5)
    async with Client(build_server(), mode="legacy") as client:
        inputs = {"task": "t", "check": "true"}
        failed, text = await call(
            client, "module_run_start", module="coder", inputs=inputs, dims={"steps": 100_000}
        )
        assert failed and "node 'task_steps' has shape [1, 100000]" in text
        assert names_the_setting(text, "node_elements", harness_home)
    configure(harness_home, node_elements=10**7, run_elements=10**7 + 1)
    async with Client(build_server(), mode="legacy") as client:
        failed, info = await call(client, "graph_validate", spec=HUGE)
        assert not failed and info["output_shape"] == [10**7]


async def test_module_run_with_huge_steps_is_refused(harness_home: Path) -> None:
    async with Client(build_server(), mode="legacy") as client:
        inputs = {"task": "t", "check": "true"}
        failed, text = await call(
            client, "module_run_start", module="coder", inputs=inputs, dims={"steps": 100_000}
        )
        assert failed and names_the_setting(text, "steps", harness_home)
        assert "dim steps (100,000)" in text
        failed, listed = await call(client, "job_list")
        assert not failed and listed["jobs"] == []


def _high_water_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/PID/status")


def test_huge_shape_over_stdio_costs_no_memory(harness_home: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [str(CLI), "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MCP_HARNESS_HOME": str(harness_home)},
        cwd=tmp_path,
    )
    assert proc.stdin is not None and proc.stdout is not None

    def rpc(message: dict[str, Any]) -> dict[str, Any] | None:
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline()) if "id" in message else None

    try:
        hello = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t"}}
        rpc({"id": 1, "method": "initialize", "params": {**hello}})
        rpc({"method": "notifications/initialized"})
        catalog = {"name": "ops_catalog", "arguments": {}}
        rpc({"id": 2, "method": "tools/call", "params": catalog})  # loads the graph code
        before = _high_water_kib(proc.pid)
        params = {"name": "graph_run", "arguments": {"spec": HUGE, "inputs": {"task": ["x"]}}}
        reply = rpc({"id": 3, "method": "tools/call", "params": params})
        assert reply is not None and reply["result"]["isError"]
        assert "node_elements" in reply["result"]["content"][0]["text"]
        assert _high_water_kib(proc.pid) - before < 100 * 1024
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


async def test_one_terminal_runs_one_command_at_a_time(runtime: Path, tmp_path: Path) -> None:
    async with Client(build_server(), mode="legacy") as client:
        failed, made = await call(client, "terminal_create", name="serial", cwd=str(tmp_path))
        assert not failed, made
        runs = await asyncio.gather(
            *(
                call(client, "terminal_run", name="serial", command=f"echo tag-{i}; (exit {i})")
                for i in range(8)
            )
        )
        assert [failed for failed, _ in runs] == [False] * 8
        assert [result["exit_code"] for _, result in runs] == list(range(8))
        for i, (_, result) in enumerate(runs):
            assert f"tag-{i}" in result["screen"]
        await call(client, "terminal_kill", name="serial")


async def test_terminals_are_capped(runtime: Path, harness_home: Path, tmp_path: Path) -> None:
    configure(harness_home, terminals=1)
    async with Client(build_server(), mode="legacy") as client:
        failed, _ = await call(client, "terminal_create", name="one", cwd=str(tmp_path))
        assert not failed
        failed, _ = await call(client, "terminal_create", name="one", cwd=str(tmp_path))
        assert not failed  # reusing a live terminal is not a new one
        failed, text = await call(client, "terminal_create", name="two", cwd=str(tmp_path))
        assert failed and names_the_setting(text, "terminals", harness_home)
        assert "terminal_kill" in text
        await call(client, "terminal_kill", name="one")


async def test_batch_and_cells_are_capped(harness_home: Path, tmp_path: Path) -> None:
    configure(harness_home, batch=2, cell_chars=100)
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"inputs": {"task": "t", "check": "false"}}) + "\n")
    async with Client(build_server(), mode="legacy") as client:
        failed, text = await call(
            client, "module_train_start", module="coder", data=str(data), batch=3
        )
        assert failed and names_the_setting(text, "batch", harness_home)
        tasks = {"task": ["a", "b", "c"], "check": "true"}
        failed, text = await call(client, "module_run_start", module="coder", inputs=tasks)
        assert failed and "tasks in this run (3)" in text and "batch" in text
        long = "x" * 101
        failed, text = await call(
            client, "experience_add", experience="e", key="k", value=long, create=True
        )
        assert failed and "value: characters (101)" in text
        assert names_the_setting(text, "cell_chars", harness_home)
        failed, _ = await call(
            client, "experience_add", experience="e", key="k", value="v", create=True
        )
        assert not failed
        failed, text = await call(client, "experience_edit", experience="e", row=0, key=long)
        assert failed and "key: characters (101)" in text


async def test_jobs_are_capped(harness_home: Path) -> None:
    configure(harness_home, jobs=1)
    state = ServerState()
    release = asyncio.Event()

    async def work(job: Any) -> None:
        await release.wait()

    state.start("run", "first", work)
    with pytest.raises(HarnessError) as refused:
        state.start("run", "second", work)
    assert names_the_setting(str(refused.value), "jobs", harness_home)
    assert "job_stop" in str(refused.value)
    release.set()
    await asyncio.wait({j.task for j in state.jobs.values() if j.task is not None})
    state.start("run", "third", work).task.cancel()  # room again once the first ended
    await state.close()


async def test_catastrophic_regex_times_out_without_blocking(harness_home: Path) -> None:
    configure(harness_home, regex_timeout_s=0.5)
    spec = {
        "inputs": {"text": [1]},
        "nodes": [
            {"id": "text", "op": "ft_input", "args": {"input": "text", "shape": [1]}},
            {
                "id": "v",
                "op": "ft_validate_regex",
                "inputs": ["text"],
                "args": {"pattern": "(a|aa)+$"},
            },
        ],
        "output": "v",
    }
    async with Client(build_server(), mode="legacy") as client:
        run = asyncio.ensure_future(
            call(client, "graph_run", spec=spec, inputs={"text": ["a" * 40 + "b"]})
        )
        # Other calls are answered while the regex runs (it runs off the event loop).
        failed, _ = await call(client, "ops_catalog")
        assert not failed
        failed, result = await run
    text = result if failed else json.dumps(result)
    assert "regex_timeout_s = 0.5 s" in text, text


def test_saved_results_are_pruned(harness_home: Path) -> None:
    configure(harness_home, results_files=3)
    texts = [f"{i}:" + "y" * 50 for i in range(5)]
    for text in texts:
        assert "is saved at" in output.fit(text, "t", limit=10)
    kept = sorted(output.results_dir().iterdir())
    assert len(kept) == 3
    assert output.fit("short", "t", limit=10) == "short"


async def test_http_request_size_is_capped(harness_home: Path, tmp_path: Path) -> None:
    configure(harness_home, request_bytes=2000)
    with serve_http(harness_home, tmp_path) as served:
        with httpx2.Client(timeout=30) as http:
            big = http.post(
                served.url,
                content=b'{"pad": "' + b"z" * 5000 + b'"}',
                headers={
                    "Authorization": f"Bearer {served.token}",
                    "content-type": "application/json",
                    "accept": "application/json, text/event-stream",
                },
            )
        assert big.status_code == 413
        async with served.client() as client:  # small requests still work
            assert (await client.list_tools()).tools


def test_limits_config_is_checked(harness_home: Path) -> None:
    assert limits() == Limits()
    configure(harness_home, nodes=3)
    with pytest.raises(HarnessError, match="unknown key 'nodes' in \\[limits\\]"):
        limits()
    configure(harness_home, batch=-1)
    with pytest.raises(HarnessError, match=r"limits\.batch must be a positive int"):
        limits()
    configure(harness_home, regex_timeout_s=1)
    assert limits().regex_timeout_s == 1
