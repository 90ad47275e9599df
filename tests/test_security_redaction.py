"""No raw secret of the test corpus leaves the server: terminal results and screens, saved long
results, job status, traces and exported skills are redacted (a real MCP client)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from mcp_harness.errors import HarnessError
from mcp_harness.runtime import module as modules
from mcp_harness.server.app import build_server
from mcp_harness.server.output import results_dir
from mcp_harness.server.state import ServerState
from tests.test_redaction_providers import KINDS

CORPUS = [around.format(secret) for around, secret in KINDS.values()]
SECRETS = [secret for _, secret in KINDS.values()]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MCP_HARNESS_ALLOWED_DIRS", raising=False)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude"))


def leaked(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def files_leaking(root: Path) -> list[Path]:
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and leaked(path.read_text(encoding="utf-8", errors="replace"))
    ]


async def ok(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def test_terminal_results_are_redacted(runtime: Path, tmp_path: Path) -> None:
    (tmp_path / "corpus.txt").write_text("\n".join(CORPUS) + "\n")
    padding = tmp_path / "padding.txt"
    padding.write_text(("filler line\n" * 5000) + "\n".join(CORPUS) + "\n")
    async with Client(build_server(), mode="legacy") as client:
        await ok(client, "terminal_create", name="leak", cwd=str(tmp_path))
        await ok(client, "terminal_run", name="leak", command="clear")
        ran = await ok(client, "terminal_run", name="leak", command="cat corpus.txt")
        assert ran["exit_code"] == 0 and "saw [REDACTED] here" in ran["screen"]
        assert leaked(ran["screen"]) == []
        shown = await ok(client, "terminal_capture", name="leak")
        assert leaked(shown["screen"]) == []
        await ok(client, "terminal_kill", name="leak")
    assert leaked(json.dumps(ran)) == []


async def test_a_token_the_terminal_wraps_is_redacted_whole(runtime: Path, tmp_path: Path) -> None:
    token = KINDS["gitlab-pat"][1]
    (tmp_path / "wide.txt").write_text("w" * 190 + " " + token + " end\n")
    async with Client(build_server(), mode="legacy") as client:
        await ok(client, "terminal_create", name="wrap", cwd=str(tmp_path))
        ran = await ok(client, "terminal_run", name="wrap", command="cat wide.txt")
        shown = await ok(client, "terminal_capture", name="wrap")
        await ok(client, "terminal_kill", name="wrap")
    for screen in (ran["screen"], shown["screen"]):
        assert "w" * 190 + " [REDACTED] end" in screen
        assert token[10:] not in screen and token[:12] not in screen


def test_saved_long_results_are_redacted(harness_home: Path) -> None:
    from mcp_harness.server.output import fit

    cut = fit("x" * 50_000 + "\n" + "\n".join(CORPUS), "screen")
    assert "is saved at" in cut and leaked(cut) == []
    assert files_leaking(results_dir()) == []
    assert len(list(results_dir().iterdir())) == 1


async def test_job_status_is_redacted() -> None:
    state = ServerState()

    async def work(job: Any) -> None:
        job.progress = f"step 1: {CORPUS[0]}"
        raise HarnessError(f"the kernel said {CORPUS[1]}", f"not {CORPUS[2]}")

    job = state.start("run", "leaky", work)
    assert job.task is not None
    await asyncio.wait({job.task})
    summary = json.dumps(job.summary())
    assert leaked(summary) == [] and "[REDACTED]" in summary


async def test_trace_show_is_redacted(tmp_path: Path) -> None:
    trace = tmp_path / "run" / "trace"
    trace.mkdir(parents=True)
    record = {
        "fn": "symbolic_backward",
        "inputs": {"node": "command", "targets": {"0": CORPUS[3]}},
        "output": {"rows": [CORPUS[4]], "patches": [CORPUS[5]], "input_targets": {}},
    }
    (trace / "step-1.jsonl").write_text(json.dumps(record) + "\n")
    async with Client(build_server(), mode="legacy") as client:
        shown = await ok(client, "trace_show", run_dir=str(tmp_path / "run"))
    assert shown["records"][0]["rows"] and leaked(json.dumps(shown)) == []


async def test_exported_skill_is_redacted(tmp_path: Path) -> None:
    path = modules.new("leaky", target=tmp_path / "leaky")
    spec = json.loads((path / "module.json").read_text())
    spec["description"] = f"Deploys with {CORPUS[6]}"
    (path / "module.json").write_text(json.dumps(spec))
    async with Client(build_server(), mode="legacy") as client:
        done = await ok(client, "export_skill", module=str(path), to=str(tmp_path / "skills"))
    assert leaked(json.dumps(done)) == []
    assert files_leaking(tmp_path / "skills") == []
    assert "[REDACTED]" in (tmp_path / "skills" / "leaky" / "module" / "module.json").read_text()
