"""The claude-code kernel with the real `claude` CLI against loopback fakes of the Messages API.

HOME and CLAUDE_CONFIG_DIR point into a temp dir and nonessential traffic is off, so nothing
leaves the machine and the user's Claude Code state is untouched. Skipped only when the CLI is
not installed (scripts/setup.sh --test installs it under .cache/claude-code).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_harness.errors import HarnessError
from mcp_harness.kernels.base import Example, KernelRequest
from mcp_harness.kernels.claude_code import ClaudeCodeKernel
from mcp_harness.kernels.config import config_path, make_kernel
from mcp_harness.kernels.failures import KernelCallError
from mcp_harness.kernels.prompt import SYSTEM_PROMPT
from mcp_harness.kernels.runner import KernelRunner
from tests.e2e.fake_anthropic import FakeAnthropic
from tests.kernel_stubs import ApiStub, last_user_text

REPO = Path(__file__).resolve().parents[1]
CLAUDE = REPO / ".cache" / "claude-code" / "node_modules" / ".bin" / "claude"
REQUEST = KernelRequest(
    "Translate English to French.", "good evening", (Example("good morning", "bonjour", 0.9),)
)

needs_cli = pytest.mark.skipif(
    not CLAUDE.exists(), reason="Claude Code CLI not installed (scripts/setup.sh --test)"
)


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDECODE": "1",  # as if the harness ran inside Claude Code: the kernel must drop it
    }


@pytest.fixture
def anthropic_stub() -> Iterator[ApiStub]:
    stub = ApiStub("anthropic", text="bonsoir", model="claude-opus-4-8").start()
    yield stub
    stub.stop()


def kernel(env: dict[str, str], base_url: str, tmp_path: Path) -> ClaudeCodeKernel:
    return ClaudeCodeKernel(
        claude_bin=CLAUDE,
        api_key="sk-ant-dummy",
        base_url=base_url,
        env=env,
        cwd=tmp_path / "cwd",
    )


@needs_cli
async def test_answers_through_the_real_cli(cli_env, tmp_path: Path) -> None:
    environ_before = dict(os.environ)
    with FakeAnthropic(script=[]) as fake:
        runner = KernelRunner(kernel(cli_env, fake.url, tmp_path), timeout_s=60)
        reply = await runner.complete(REQUEST)
    assert os.environ == environ_before  # C18: the kernel never mutates os.environ
    # No tools are offered, so the fake treats it as a side call and answers "ok".
    assert (reply.text, reply.ok) == ("ok", True)
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.calls) == (10, 5, 1)
    assert reply.usage.cost_usd > 0 and runner.usage.cost_usd == reply.usage.cost_usd
    sent = [r for r in fake.requests if r.path.startswith("/v1/messages")]
    assert len(sent) == 1 and sent[0].tool_names == []
    assert "INPUT:\ngood evening" in last_user_text(sent[0].body)
    assert SYSTEM_PROMPT in str(sent[0].body.get("system"))
    transcripts = list((Path(cli_env["HOME"]) / ".claude" / "projects").rglob("*.jsonl"))
    assert transcripts == []  # --no-session-persistence: kernel calls leave none to capture


@needs_cli
async def test_rate_limit_is_retried_by_the_runner_not_the_cli(
    cli_env, anthropic_stub: ApiStub, tmp_path: Path
) -> None:
    anthropic_stub.failures = [429]
    runner = KernelRunner(kernel(cli_env, anthropic_stub.base_url, tmp_path), backoff_s=0.001)
    reply = await runner.complete(REQUEST)
    assert reply.text == "bonsoir" and runner.retried == 1
    assert anthropic_stub.statuses == [429, 200]  # CLAUDE_CODE_MAX_RETRIES=0 in the CLI


@needs_cli
async def test_several_candidates_come_from_one_cli_call(cli_env, tmp_path: Path) -> None:
    stub = ApiStub("anthropic", text="bonsoir\n---\nbonne soirée").start()
    try:
        runner = KernelRunner(kernel(cli_env, stub.base_url, tmp_path))
        reply = await runner.complete(dataclasses.replace(REQUEST, candidates=4))
    finally:
        stub.stop()
    assert (reply.text, [a.text for a in reply.alternatives]) == ("bonsoir", ["bonne soirée"])
    assert runner.usage.calls == 1


@needs_cli
async def test_auth_failure_is_not_retried(cli_env, anthropic_stub: ApiStub, tmp_path) -> None:
    anthropic_stub.failures = [401]
    runner = KernelRunner(kernel(cli_env, anthropic_stub.base_url, tmp_path), backoff_s=0.001)
    with pytest.raises(HarnessError) as caught:
        await runner.complete(REQUEST)
    assert anthropic_stub.count == 1 and "401" in caught.value.message
    assert "log in" in (caught.value.fix or "")


@needs_cli
async def test_not_logged_in_says_how_to_log_in(cli_env, tmp_path: Path) -> None:
    no_key = ClaudeCodeKernel(claude_bin=CLAUDE, env=cli_env, cwd=tmp_path / "cwd")
    with pytest.raises(KernelCallError) as caught:
        await KernelRunner(no_key, retries=0).complete(REQUEST)
    assert not caught.value.retryable and "Not logged in" in caught.value.message
    assert "/login" in (caught.value.fix or "")


@needs_cli
async def test_cancellation_kills_the_cli(cli_env, tmp_path: Path) -> None:
    stub = ApiStub("anthropic", hold=True).start()
    try:
        cc = kernel(cli_env, stub.base_url, tmp_path)
        call = asyncio.create_task(KernelRunner(cc).complete(REQUEST))
        assert await asyncio.to_thread(stub.wait_in_flight, 1, 60.0)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert cc.last_pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(cc.last_pid, 0)  # killed and reaped
    finally:
        stub.stop()


async def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    missing = ClaudeCodeKernel(claude_bin=tmp_path / "no-claude", env={"PATH": ""})
    with pytest.raises(KernelCallError) as caught:
        await KernelRunner(missing).complete(REQUEST)
    assert "cannot run" in caught.value.message and not caught.value.retryable
    assert "MCP_HARNESS_CLAUDE_BIN" in (caught.value.fix or "")


def test_subprocess_env_is_a_fresh_copy() -> None:
    base = {"PATH": "/bin", "CLAUDECODE": "1", "CLAUDE_CODE_MAX_RETRIES": "3"}
    cc = ClaudeCodeKernel(env=base, api_key="k", base_url="http://127.0.0.1:1")
    env = cc.subprocess_env()
    assert "CLAUDECODE" not in env and env["CLAUDE_CODE_MAX_RETRIES"] == "3"
    assert env["ANTHROPIC_API_KEY"] == "k" and env["MCP_HARNESS_KERNEL_CALL"] == "1"
    assert base == {"PATH": "/bin", "CLAUDECODE": "1", "CLAUDE_CODE_MAX_RETRIES": "3"}
    login = ClaudeCodeKernel(env={"PATH": "/bin"}).subprocess_env()
    assert "ANTHROPIC_API_KEY" not in login and login["CLAUDE_CODE_MAX_RETRIES"] == "0"


def test_cli_failures_are_classified() -> None:
    cc = ClaudeCodeKernel(env={})

    def error(stdout: str, rc: int = 1) -> KernelCallError:
        with pytest.raises(KernelCallError) as caught:
            cc.parse(rc, stdout.encode(), b"")
        return caught.value

    def result(status: object, text: str) -> str:
        return (
            '{"type":"result","subtype":"success","is_error":true,'
            f'"api_error_status":{status},"result":"{text}"}}'
        )

    assert error(result(529, "API Error: overloaded")).retryable
    assert error(result(500, "API Error: 500")).retryable
    assert error(result("null", "API Error: Connection error.")).retryable
    assert not error(result(400, "API Error: 400 bad")).retryable
    assert not error(result(404, "model not found")).retryable
    assert not error("Segmentation fault", rc=139).retryable


@needs_cli
async def test_agent_mode_edits_files_in_its_workspace(cli_env, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "greet.py").write_text("print('hello')\n")
    script = [
        {"tool": "Read", "input": {"file_path": str(workspace / "greet.py")}},
        {
            "tool": "Edit",
            "input": {
                "file_path": str(workspace / "greet.py"),
                "old_string": "print('hello')",
                "new_string": "print('hello, world')",
            },
        },
        {"tool": "Write", "input": {"file_path": str(workspace / "NOTES"), "content": "done\n"}},
        {"text": "greet.py now greets the world"},
    ]
    with FakeAnthropic(script=script) as fake:
        agent = ClaudeCodeKernel(
            claude_bin=CLAUDE,
            api_key="sk-ant-dummy",
            base_url=fake.url,
            env=cli_env,
            workspace=workspace,
        )
        reply = await KernelRunner(agent, timeout_s=120).complete(
            KernelRequest("Make greet.py greet the world.", "greet.py")
        )
        main = fake.main_requests()
        results = fake.tool_results()
    assert (reply.ok, reply.text) == (True, "greet.py now greets the world")
    assert (workspace / "greet.py").read_text() == "print('hello, world')\n"
    assert (workspace / "NOTES").read_text() == "done\n"
    assert sorted(main[0].tool_names) == ["Edit", "Read", "Write"]  # file tools only, no Bash
    assert len(results) == 3 and not any(r.get("is_error") for r in results.values())
    assert "Make greet.py greet the world." in last_user_text(main[0].body)


@needs_cli
async def test_agent_mode_set_in_config_toml_runs_the_cli_in_the_workspace(
    cli_env, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    script = [
        {"tool": "Write", "input": {"file_path": str(workspace / "NOTES"), "content": "ok\n"}},
        {"text": "wrote NOTES"},
    ]
    env = {**cli_env, "MCP_HARNESS_HOME": str(tmp_path / "data")}
    with FakeAnthropic(script=script) as fake:
        config = config_path(env)
        config.parent.mkdir(parents=True)
        config.write_text(
            f'[kernels.claude-code]\nbin = "{CLAUDE}"\napi_key = "sk-ant-dummy"\n'
            f'base_url = "{fake.url}"\nworkspace = "{workspace}"\ntools = "Write"\n'
        )
        runner = make_kernel("claude-code", env=env)
        reply = await runner.complete(KernelRequest("Write NOTES saying ok.", "NOTES"))
        main = fake.main_requests()
    assert (reply.ok, reply.text) == (True, "wrote NOTES")
    assert (workspace / "NOTES").read_text() == "ok\n"
    assert main[0].tool_names == ["Write"]  # only the configured tool is offered


async def test_agent_mode_needs_a_workspace_directory(tmp_path: Path) -> None:
    with pytest.raises(KernelCallError, match="is not a directory"):
        ClaudeCodeKernel(workspace=tmp_path / "missing")
    argv = ClaudeCodeKernel(workspace=tmp_path).argv()
    assert argv[argv.index("--tools") + 1] == "Read,Edit,Write"
    assert argv[argv.index("--permission-mode") + 1] == "acceptEdits"
    assert "--system-prompt" not in argv  # Claude Code's own agent prompt, plus a note
