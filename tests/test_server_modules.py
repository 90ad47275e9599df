"""The MCP server's module, job, capture and trace tools, over the in-memory transport as a
legacy (Claude Code-like) client sees them: real modules, real tmux terminals (private runtime
dir), real training runs and capture records in a private data home."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from mcp_harness.capture.records import COMMANDS, HOOKS, append_records
from mcp_harness.server.app import build_server
from mcp_harness.terminal.session import TerminalSession

XZ = {
    "inputs": {"task": "Use xz to compress the data.csv file", "check": "test -f data.csv.xz"},
    "files": {"data.csv": "a,b\n"},
    "targets": {"decision": "Compress data.csv with xz", "command": "xz -k data.csv"},
}
DIST = {
    "inputs": {"task": "Make a directory named dist", "check": "test -d dist"},
    "targets": {"decision": "Create the dist directory", "command": "mkdir -p dist"},
}
VAL = {
    "inputs": {"task": "Compress data.csv with xz", "check": "test -f data.csv.xz"},
    "files": {"data.csv": "a,b\n"},
}
JOB_TIMEOUT_S = 60


@pytest.fixture(autouse=True)
def private_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real Claude Code config or transcripts, no configured kernel, no extra allowed dirs."""
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude"))
    for name in (
        "MCP_HARNESS_KERNEL",
        "MCP_HARNESS_ALLOWED_DIRS",
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)


async def ok(client: Client, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    result = await client.call_tool(tool, args or {})
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def error(client: Client, tool: str, args: dict[str, Any]) -> str:
    result = await client.call_tool(tool, args)
    assert result.is_error, result.structured_content
    return result.content[0].text


async def finished(client: Client, job_id: str) -> dict[str, Any]:
    """Poll job_status until the job ends (server-side work with no event to await)."""
    with anyio.fail_after(JOB_TIMEOUT_S):
        while True:
            status = await ok(client, "job_status", {"job_id": job_id, "wait_seconds": 5})
            if status["state"] != "running":
                return status
            await anyio.sleep(0.05)


def jsonl(path: Path, *lines: dict | str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return str(path)


async def test_module_list_and_show(harness_home: Path) -> None:
    async with Client(build_server(), mode="legacy") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"module_list", "module_show", "module_run_start", "module_train_start"} <= names
        assert {"job_status", "job_stop", "job_list", "trace_show"} <= names
        assert {"capture_status", "capture_harvest", "capture_log"} <= names
        listed = await ok(client, "module_list")
        (coder,) = [m for m in listed["modules"] if m["name"] == "coder"]
        assert coder["builtin"] and not coder["installed"] and "tmux" in coder["description"]
        shown = await ok(client, "module_show", {"module": "coder"})
        ops = {n["id"]: (n["op"], n["shape"]) for n in shown["nodes"]}
        assert ops["decision"] == ("ft_expert", [1, 6]) and ops["result"][0] == "ft_recurrent"
        experience = {e["name"]: e for e in shown["experience"]}
        assert experience["command"]["rows"] == 42 and experience["command"]["sources"]
        assert shown["inputs"] == {"task": ["batch"], "workdir": ["batch"], "check": ["batch"]}
        listed = await ok(client, "module_list")  # the first use made the data-dir copy
        assert listed["modules"][0]["installed"] is True
        assert listed["modules"][0]["path"] == str(harness_home / "modules" / "coder")
        # a module given by path (under the data home)
        path = harness_home / "modules" / "coder"
        assert (await ok(client, "module_show", {"module": str(path)}))["name"] == "coder"


async def test_run_coder_tasks_as_jobs(harness_home: Path, runtime: Path) -> None:
    work = harness_home / "work"
    work.mkdir(parents=True)
    async with Client(build_server(), mode="legacy") as client:
        one = await ok(
            client,
            "module_run_start",
            {
                "module": "coder",
                "inputs": {
                    "task": "Make a script executable",
                    "workdir": str(work),
                    "check": "true",
                },
            },
        )
        two = await ok(  # a batch of two, each in a fresh workdir made by the server
            client,
            "module_run_start",
            {
                "module": "coder",
                "inputs": {"task": ["Make a directory named dist", "List files"], "check": "true"},
                "kernel": "offline",
                "dims": {"steps": 2},
            },
        )
        assert one["state"] == "running" and one["kind"] == "run" and "job_status" in one["next"]
        first = await finished(client, one["job_id"])
        assert first["state"] == "done" and first["error"] is None, first
        result = first["result"]
        assert result["passed"] == result["total"] == 1
        (task,) = result["tasks"]  # the per-task outcome
        assert task["passed"] is True and task["commands"] and task["reason"] is None
        assert isinstance(task["screen"], str)
        assert Path(result["run_dir"], "command", "shape").is_file()
        assert "offline" in result["kernel"] and first["progress"] == "finished"
        second = await finished(client, two["job_id"])
        assert second["state"] == "done" and second["result"]["total"] == 2
        assert all(t["passed"] for t in second["result"]["tasks"])
        assert len(list((harness_home / "server" / "work").glob("coder-*/*"))) == 2
        jobs = (await ok(client, "job_list"))["jobs"]
        assert [(j["job_id"], j["state"]) for j in jobs] == [
            (one["job_id"], "done"),
            (two["job_id"], "done"),
        ]
        assert all(j["result"] is None for j in jobs)  # results only through job_status
        stopped = await ok(client, "job_stop", {"job_id": one["job_id"]})  # ended: left as is
        assert stopped["state"] == "done"


async def test_job_stop_cancels_a_run_and_kills_its_terminals(
    harness_home: Path, runtime: Path
) -> None:
    before = set(await TerminalSession.list())
    async with Client(build_server(), mode="legacy") as client:
        started = await ok(
            client,
            "module_run_start",
            {
                "module": "coder",
                "inputs": {"task": "Wait for a file that never comes", "check": "sleep 0.2; false"},
                "dims": {"steps": 200},
            },
        )
        job_id = started["job_id"]
        with anyio.fail_after(JOB_TIMEOUT_S):  # until its terminal is open
            while True:
                status = await ok(client, "job_status", {"job_id": job_id})
                if " 1 terminals" in status["progress"]:
                    break
                await anyio.sleep(0.05)
        assert status["state"] == "running" and "elements computed" in status["progress"]
        assert set(await TerminalSession.list()) - before  # the run's terminal exists
        stopped = await ok(client, "job_stop", {"job_id": job_id})
        assert stopped["state"] == "stopped" and stopped["error"] is None
        assert (await ok(client, "job_status", {"job_id": job_id}))["state"] == "stopped"
        assert set(await TerminalSession.list()) - before == set()
        again = await ok(client, "job_stop", {"job_id": job_id})  # idempotent
        assert again["state"] == "stopped"
        assert (await ok(client, "job_list"))["jobs"][0]["state"] == "stopped"


async def test_train_a_module_then_read_its_trace(harness_home: Path, runtime: Path) -> None:
    data = jsonl(harness_home / "data" / "train.jsonl", XZ, DIST)
    val = jsonl(harness_home / "data" / "val.jsonl", VAL)
    async with Client(build_server(), mode="legacy") as client:
        started = await ok(
            client,
            "module_train_start",
            {
                "module": "coder",
                "data": data,
                "val": val,
                "epochs": 2,
                "batch": 1,
                "second_order": True,
            },
        )
        assert started["kind"] == "train" and "--resume" in started["next"]
        busy = await error(client, "module_train_start", {"module": "coder", "data": data})
        assert "module 'coder' is already training in job " + started["job_id"] in busy
        status = await finished(client, started["job_id"])
        assert status["state"] == "done", status
        result = status["result"]
        assert result["status"] == "complete" and result["before"]["val_success"] == 0.0
        epochs = result["epochs"]
        assert [e["epoch"] for e in epochs] == [1, 2]
        assert [e["val_success"] for e in epochs] == [1.0, 1.0]
        assert epochs[0]["steps_accepted"] >= 1 and len(epochs[0]["batch_losses"]) == 2
        assert any(line.startswith("epoch 2/2: train loss") for line in result["log"])
        out = Path(result["out"])
        assert (out / "history.json").is_file() and (out / "epoch-2" / "experience").is_dir()
        assert not list(out.glob("work-*"))  # the scratch workspaces are gone

        trace = await ok(client, "trace_show", {"run_dir": str(out)})
        assert trace["steps"] == [1, 2, 3, 4] and trace["step"] == 4
        first = await ok(client, "trace_show", {"run_dir": str(out), "step": 1})
        assert first["path"] == str(out / "trace" / "step-1.jsonl") and first["calls"] > 0
        symbolic = [r for r in first["records"] if r["kind"] == "symbolic"]
        assert {r["node"] for r in symbolic} == {"decision", "command"}
        assert any("xz -k data.csv" in row for r in symbolic for row in r["rows"])
        critiques = [r for r in first["records"] if r["kind"] == "critique"]
        assert {r["node"] for r in critiques} == {"decision", "command"}
        assert all(r["order"] == 2 and r["revised"] is False for r in critiques)  # offline keeps
        numeric = [r for r in first["records"] if r["kind"] == "numeric"]
        assert numeric and all(isinstance(r["nonzero_gradients"], int) for r in numeric)
        one_file = await ok(client, "trace_show", {"run_dir": first["path"]})
        assert one_file["step"] == 1 and one_file["calls"] == first["calls"]
        missing = await error(client, "trace_show", {"run_dir": str(out), "step": 99})
        assert "no step 99" in missing and "steps recorded: 1, 2, 3, 4" in missing

        # the module is free again: a second run can start, and stopping it keeps a checkpoint
        again = await ok(
            client, "module_train_start", {"module": "coder", "data": data, "epochs": 50}
        )
        with anyio.fail_after(JOB_TIMEOUT_S):
            while not (await ok(client, "job_status", {"job_id": again["job_id"]}))[
                "progress"
            ].startswith("epoch"):
                await anyio.sleep(0.05)
        stopped = await ok(client, "job_stop", {"job_id": again["job_id"]})
        assert stopped["state"] == "stopped"
        out2 = Path(again["files"])
        assert json.loads((out2 / "history.json").read_text())["status"] == "interrupted"
        assert (out2 / "epoch-0" / "experience").is_dir()


def _records(capture: Path) -> None:
    common = {"session_id": "s1", "cwd": "/home/dev/web-app", "transcript_path": None}
    hook = {"kind": "hook", **common}
    append_records(
        HOOKS,
        [
            {**hook, "ts": "2026-11-27T10:00:00+00:00", "event": "UserPromptSubmit",
             "prompt": "run the unit tests"},
            {**hook, "ts": "2026-11-27T10:00:01+00:00", "event": "PreToolUse",
             "tool_use_id": "toolu_1", "command": "pytest -q", "description": "Run unit tests"},
            {**hook, "ts": "2026-11-27T10:00:03+00:00", "event": "PostToolUse",
             "tool_use_id": "toolu_1", "command": "pytest -q", "exit_code": 0},
        ],
        capture,
    )  # fmt: skip
    wrapper = {"kind": "command", "session_id": "s1", "cwd": "/home/dev/web-app", "signal": None}
    append_records(
        COMMANDS,
        [
            {**wrapper, "id": "w1", "ts": "2026-11-27T10:00:01.500+00:00", "command": "pytest -q",
             "exit_code": 0, "output": "3 passed\n", "screen_before": "$ ",
             "screen_after": "3 passed"},
            {**wrapper, "id": "w2", "ts": "2026-11-27T10:00:05+00:00", "command": "cat big.log",
             "exit_code": 0, "output": "line of log\n" * 10_000},
        ],
        capture,
    )  # fmt: skip


async def test_capture_status_log_and_harvest(harness_home: Path, tmp_path: Path) -> None:
    async with Client(build_server(), mode="legacy") as client:
        status = await ok(client, "capture_status")
        assert status["capture_dir"] == str(harness_home / "capture")
        assert status["scopes"]["user"]["path"] == str(tmp_path / "claude" / "settings.json")
        assert status["scopes"]["user"]["installed"] is False
        assert {r["lines"] for r in status["records"].values()} == {0}
        assert (await ok(client, "capture_log"))["calls"] == []

        _records(harness_home / "capture")
        status = await ok(client, "capture_status")
        assert status["records"]["hooks.jsonl"]["lines"] == 3
        assert status["records"]["commands.jsonl"]["lines"] == 2
        assert status["last_record_ts"].startswith("2026-11-27T10:00:05")

        log = await ok(client, "capture_log", {"n": 20})
        assert log["total"] == 2
        first, big = log["calls"]
        assert (first["command"], first["description"], first["exit_code"]) == (
            "pytest -q",
            "Run unit tests",
            0,
        )
        assert first["task"] == "run the unit tests" and first["output"] == "3 passed\n"
        assert "characters cut" in big["output"] and len(big["output"]) < 40_000
        saved = Path(big["output"].split("is saved at ")[1].split(", resource ")[0])
        assert saved.read_text() == "line of log\n" * 10_000
        assert [c["command"] for c in (await ok(client, "capture_log", {"n": 1}))["calls"]] == [
            "cat big.log"
        ]

        harvested = await ok(client, "capture_harvest")
        assert harvested["transcripts"] is None and harvested["calls_seen"] == 2
        added = {t["tensor"]: t["added"] for t in harvested["tensors"]}
        assert added == {"dev-web-app.decision": 1, "dev-web-app.command": 2}
        assert Path(harvested["tensors"][0]["path"]).is_relative_to(harness_home / "experience")
        again = await ok(client, "capture_harvest", {"exit_status": "success"})
        assert again["rows_added"] == 0
        failures = await ok(client, "capture_harvest", {"exit_status": "failure"})
        assert failures["calls_filtered"] == 2 and failures["tensors"] == []

        # transcripts: the bundled sample projects, copied under the data home
        projects = harness_home / "projects"
        sample = resources.files("mcp_harness.data").joinpath("sample_projects")
        with resources.as_file(sample) as source:
            shutil.copytree(source, projects)
        imported = await ok(client, "capture_harvest", {"transcripts": str(projects)})
        assert imported["transcripts"] == str(projects)
        assert imported["imported"]["files"] > 0 and imported["imported"]["new_calls"] > 0
        assert imported["rows_added"] > 0


async def test_bad_input_is_a_tool_error_and_the_server_keeps_serving(
    harness_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    home = harness_home / "data"
    data = jsonl(home / "train.jsonl", XZ)
    malformed = jsonl(home / "bad.jsonl", XZ, "{oops")
    empty = jsonl(home / "empty.jsonl", "")
    unknown_node = jsonl(home / "node.jsonl", {**XZ, "targets": {"nope": "x"}})
    no_check = jsonl(home / "nocheck.jsonl", {"inputs": {"task": "x"}})
    passes = jsonl(home / "passes.jsonl", {**XZ, "inputs": {**XZ["inputs"], "check": "true"}})
    jsonl(outside / "train.jsonl", XZ)
    run = {"module": "coder", "inputs": {"task": "x", "check": "true"}}
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("module_show", {"module": "nosuch"}, "unknown module 'nosuch'"),
        ("module_show", {"module": str(outside)}, "is outside the directories"),
        ("module_show", {"module": str(home)}, "not a module (no module.json)"),
        ("module_run_start", {**run, "module": "nosuch"}, "fix: use one of: coder"),
        ("module_run_start", {**run, "inputs": {"task": "x"}}, "needs inputs ['check']"),
        ("module_run_start", {**run, "inputs": {"task": ["a", "b"], "check": ["true"]}},
         "input lists have different lengths"),
        ("module_run_start", {**run, "inputs": {"task": [], "check": []}}, "is an empty list"),
        ("module_run_start", {**run, "inputs": {**run["inputs"], "bogus": "1"}},
         "has no input 'bogus'"),
        ("module_run_start", {**run, "inputs": {**run["inputs"], "workdir": str(outside)}},
         "is outside the directories"),
        ("module_run_start", {**run, "inputs": {**run["inputs"], "workdir": str(home / "no")}},
         "is not a directory"),
        ("module_run_start", {**run, "dims": {"nosuch": 3}}, "has no dim 'nosuch'"),
        ("module_run_start", {**run, "kernel": "nosuch"}, "nosuch"),
        ("module_run_start", {**run, "inputs": 5}, "validation error"),
        ("module_train_start", {"module": "coder", "data": str(outside / "train.jsonl")},
         "is outside the directories"),
        ("module_train_start", {"module": "coder", "data": str(home / "none.jsonl")},
         "no such dataset file"),
        ("module_train_start", {"module": "coder", "data": malformed},
         "bad.jsonl:2: not valid JSON"),
        ("module_train_start", {"module": "coder", "data": empty}, "the dataset is empty"),
        ("module_train_start", {"module": "coder", "data": unknown_node},
         "target for unknown node 'nope'"),
        ("module_train_start", {"module": "coder", "data": no_check}, "has no input 'check'"),
        ("module_train_start", {"module": "nosuch", "data": data}, "unknown module 'nosuch'"),
        ("module_train_start", {"module": "coder", "data": data, "val": malformed},
         "bad.jsonl:2: not valid JSON"),
        ("module_train_start", {"module": "coder", "data": data, "val": data},
         f"the val set {data} is the training set {data}"),
        ("module_train_start", {"module": "coder", "data": passes},
         "passes.jsonl:1: the check 'true' already passes on the task's fresh workspace"),
        ("module_train_start", {"module": "coder", "data": data, "epochs": 0},
         "greater than or equal to 1"),
        ("module_train_start", {"module": "coder", "data": data, "batch": "many"},
         "validation error"),
        ("module_train_start", {"module": "coder", "data": data, "kernel": "nosuch"}, "nosuch"),
        ("module_train_start", {"module": "coder"}, "data"),
        ("job_status", {"job_id": "nope"}, "unknown job 'nope'"),
        ("job_status", {"job_id": "nope", "wait_seconds": 999}, "less than or equal to 30"),
        ("job_stop", {"job_id": "nope"}, "unknown job 'nope'"),
        ("trace_show", {"run_dir": str(outside)}, "is outside the directories"),
        ("trace_show", {"run_dir": str(harness_home)}, "no reflection records"),
        ("trace_show", {"run_dir": str(home / "missing")}, "no such directory"),
        ("trace_show", {"run_dir": str(home), "step": 0}, "greater than or equal to 1"),
        ("capture_harvest", {"exit_status": "sometimes"}, "'any', 'success' or 'failure'"),
        ("capture_harvest", {"transcripts": str(outside)}, "is outside the directories"),
        ("capture_harvest", {"transcripts": str(home / "none")}, "no such directory"),
        ("capture_log", {"n": 0}, "greater than or equal to 1"),
        ("capture_log", {"n": "lots"}, "validation error"),
    ]  # fmt: skip
    async with Client(build_server(), mode="legacy") as client:
        for tool, args, message in cases:
            text = await error(client, tool, args)
            assert message in text, (tool, args, text)
            assert "Traceback" not in text
        # a path outside only needs its directory in MCP_HARNESS_ALLOWED_DIRS
        monkeypatch.setenv("MCP_HARNESS_ALLOWED_DIRS", str(outside))
        text = await error(client, "trace_show", {"run_dir": str(outside)})
        assert "no reflection records" in text
        # nothing was started, and the server still serves
        assert (await ok(client, "job_list"))["jobs"] == []
        assert not (harness_home / "runs").exists()
        assert (await ok(client, "module_list"))["modules"]
