"""Resources, prompts, progress and log messages, seen by a real MCP client: in memory with
the legacy handshake (what Claude Code speaks) and over streamable HTTP with the bearer
token. Runs are real (offline kernel, private tmux runtime dir)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, MCPError

from mcp_harness.experience.store import Experience, Row
from mcp_harness.server import output
from mcp_harness.server.app import build_server
from tests.http_fixtures import serve_http


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCP_HARNESS_KERNEL", raising=False)


def _training_run(home: Path) -> Path:
    """A training run's files as `training.job` leaves them (history, one step's trace)."""
    run = home / "runs" / "train-coder-20260101-000000"
    (run / "trace").mkdir(parents=True)
    (run / "history.json").write_text(json.dumps({"module": "coder", "epochs": [{"epoch": 1}]}))
    record = {"fn": "ft_expert", "inputs": {"node": "command"}, "output": {"rows": ["a -> b"]}}
    (run / "trace" / "step-1.jsonl").write_text(json.dumps(record) + "\n")
    return run


async def test_templates_runs_jobs_rows_training_and_results(
    harness_home: Path, runtime: Path
) -> None:
    secret = "sk-ant-api03-" + "A" * 40
    shell = Experience.create(harness_home / "experience" / "shell")
    shell.append([Row("list", "list files", f"ls -la  # key {secret}")])
    _training_run(harness_home)
    async with Client(build_server(), mode="legacy") as client:
        templates = {
            t.uri_template for t in (await client.list_resource_templates()).resource_templates
        }
        assert {
            "harness://runs/{run_id}",
            "harness://runs/{run_id}/{node}",
            "harness://jobs/{job_id}",
            "harness://training/{run_id}",
            "harness://training/{run_id}/steps/{step}",
            "harness://experience/{name}/rows/{index}",
            "harness://results/{name}",
        } <= templates

        ran = await client.call_tool("ft_format", {"tensors": [["a", "b"]], "template": "<{0}>"})
        run_id = Path(ran.structured_content["run_dir"]).name
        run = json.loads((await client.read_resource(f"harness://runs/{run_id}")).contents[0].text)
        assert set(run["nodes"]) == {"ft_format", "tensors[0]"}
        node = json.loads(
            (await client.read_resource(f"harness://runs/{run_id}/ft_format")).contents[0].text
        )
        assert node["shape"] == [2] and node["texts"] == ["<a>", "<b>"]

        row = json.loads(
            (await client.read_resource("harness://experience/shell/rows/0")).contents[0].text
        )
        assert row["key"] == "list files" and secret not in row["value"]  # redacted

        history = json.loads(
            (await client.read_resource("harness://training/train-coder-20260101-000000"))
            .contents[0]
            .text
        )
        assert history["history"]["epochs"] == [{"epoch": 1}]
        assert history["steps"] == ["harness://training/train-coder-20260101-000000/steps/1"]
        step = json.loads((await client.read_resource(history["steps"][0])).contents[0].text)
        assert step[0]["output"]["rows"] == ["a -> b"]

        cut = output.fit("x" * (output.LIMIT_CHARS + 10), "big")
        uri = cut.split("resource ")[1].split(" ")[0]
        full = (await client.read_resource(uri)).contents[0].text
        assert full == "x" * (output.LIMIT_CHARS + 10)

        for bad in (
            "harness://runs/nosuch",
            "harness://runs/..",
            "harness://experience/shell/rows/9",
            "harness://jobs/nosuch",
            "harness://training/nosuch/steps/1",
        ):
            with pytest.raises(MCPError):
                await client.read_resource(bad)


async def test_prompts_are_slash_commands(harness_home: Path) -> None:
    run = _training_run(harness_home)
    async with Client(build_server(), mode="legacy") as client:
        listed = {p.name: p for p in (await client.list_prompts()).prompts}
        assert set(listed) == {"train_from_sessions", "run_module", "why_changed"}
        assert all(p.title and p.description for p in listed.values())
        train = await client.get_prompt("train_from_sessions", {"project": "web-app"})
        text = train.messages[0].content.text
        assert "capture_harvest(project='web-app')" in text and "module_train_start" in text
        run_it = await client.get_prompt("run_module", {"task": "Make run.sh executable"})
        assert "`coder`" in run_it.messages[0].content.text
        why = await client.get_prompt("why_changed", {"module": "coder"})
        said = why.messages[0].content.text
        assert str(run) in said and "trace_show" in said
        none = await client.get_prompt("why_changed", {"module": "other"})
        assert "no training runs" in none.messages[0].content.text


async def test_progress_and_log_messages(
    harness_home: Path, runtime: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the server's working directory is an allowed root
    logged: list[Any] = []
    progress: list[str | None] = []
    job_done = anyio.Event()

    async def on_log(params: Any) -> None:
        logged.append(params)
        if " done" in str(params.data):
            job_done.set()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with Client(build_server(), mode="legacy", logging_callback=on_log) as client:
        made = await client.call_tool("terminal_create", {"name": "slow", "cwd": str(tmp_path)})
        assert not made.is_error, made.content[0].text
        ran = await client.call_tool(
            "terminal_run",
            {"name": "slow", "command": "sleep 1.5; echo slept"},
            progress_callback=on_progress,
        )
        assert ran.structured_content["exit_code"] == 0
        await client.call_tool("terminal_kill", {"name": "slow"})
        started = await client.call_tool(
            "module_run_start", {"module": "coder", "inputs": {"task": "x", "check": "true"}}
        )
        job_id = started.structured_content["job_id"]
        await client.call_tool("job_status", {"job_id": job_id, "wait_seconds": 30})
        with anyio.fail_after(30):  # log messages are sent apart from the calls
            await job_done.wait()
    assert progress and progress[0].startswith("running 'sleep 1.5; echo slept': 1 s")
    texts = [str(p.data) for p in logged]
    assert any(f"job {job_id} started" in t for t in texts), texts
    assert any(f"job {job_id}" in t and "done" in t for t in texts), texts
    assert all(p.logger and p.logger.startswith("mcp_harness") for p in logged)


async def test_over_http(harness_home: Path, tmp_path: Path) -> None:
    with serve_http(harness_home, tmp_path) as served:
        async with served.client() as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"coder", "ft_format", "module_list"} <= tools
            seen: list[float] = []

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                seen.append(value)

            ran = await client.call_tool(
                "coder", {"task": "List files", "check": "true"}, progress_callback=on_progress
            )
            assert not ran.is_error, ran.content[0].text
            assert ran.structured_content["state"] == "done"
            assert seen and seen == sorted(seen)  # progress rides the call's SSE stream
            job = await client.read_resource(ran.structured_content["resource"])
            assert json.loads(job.contents[0].text)["state"] == "done"
            prompt = await client.get_prompt("run_module", {"task": "x"})
            assert "coder" in prompt.messages[0].content.text
