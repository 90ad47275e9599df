"""Kernel configuration: environment over config.toml, strict keys, clear errors, status table.

Every test passes its own env mapping, so the developer's real keys never leak in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcp_harness.errors import HarnessError
from mcp_harness.kernels.anthropic_api import AnthropicKernel
from mcp_harness.kernels.claude_code import ClaudeCodeKernel
from mcp_harness.kernels.config import (
    KERNEL_NAMES,
    config_path,
    format_status,
    kernel_status,
    load_config,
    make_kernel,
)
from mcp_harness.kernels.offline import OfflineKernel
from mcp_harness.kernels.openai_api import OpenAIKernel
from mcp_harness.kernels.registry import KERNELS, reflects, register
from mcp_harness.kernels.replay import ReplayKernel


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    return {"MCP_HARNESS_HOME": str(tmp_path / "home"), "PATH": str(empty_bin)}


def write_config(env: dict[str, str], text: str) -> Path:
    path = config_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_default_is_offline_with_default_policy(env) -> None:
    runner = make_kernel(env=env)
    assert isinstance(runner.kernel, OfflineKernel) and runner.kernel.threshold == 0.2
    assert (runner.concurrency, runner.timeout_s, runner.retries) == (8, 120.0, 4)
    assert runner.budget is None


def test_file_settings_apply_and_environment_wins(env) -> None:
    write_config(
        env,
        """
[kernel]
name = "anthropic"
concurrency = 3
timeout_s = 7
max_calls = 10
[kernel.prices]
"file-model" = [1, 2]
[kernels.openai]
model = "file-model"
base_url = "http://127.0.0.1:9/v1"
[kernels.offline]
threshold = 0.5
[server]          # other sections belong to other parts of mcp-harness
port = 1
""",
    )
    with pytest.raises(HarnessError, match="ANTHROPIC_API_KEY"):  # [kernel] name is used
        make_kernel(env=env)
    env["MCP_HARNESS_KERNEL"] = "openai"  # env beats [kernel] name
    runner = make_kernel(env=env)
    assert isinstance(runner.kernel, OpenAIKernel)
    assert runner.kernel.model == "file-model" and runner.kernel.base_url == "http://127.0.0.1:9/v1"
    assert (runner.concurrency, runner.timeout_s) == (3, 7)
    assert runner.budget is not None and runner.budget.max_calls == 10
    assert runner.prices == {"file-model": (1.0, 2.0)}
    env |= {"OPENAI_BASE_URL": "http://127.0.0.1:8/v1", "MCP_HARNESS_MODEL": "env-model"}
    runner = make_kernel(env=env)
    assert runner.kernel.model == "env-model" and runner.kernel.base_url.endswith(":8/v1")
    offline = make_kernel("offline", env=env)  # an explicit name beats both
    assert isinstance(offline.kernel, OfflineKernel) and offline.kernel.threshold == 0.5


def test_anthropic_kernel_from_environment(env) -> None:
    env |= {"ANTHROPIC_API_KEY": "sk-ant-x", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
    kernel = make_kernel("anthropic", env=env).kernel
    assert isinstance(kernel, AnthropicKernel) and kernel.model == "claude-sonnet-4-6"
    assert kernel.base_url == "http://127.0.0.1:9"


def test_claude_code_found_via_env_and_path(env, tmp_path: Path) -> None:
    fake = Path(env["PATH"]) / "claude"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    kernel = make_kernel("claude-code", env=env).kernel
    assert isinstance(kernel, ClaudeCodeKernel) and kernel.claude_bin == str(fake)
    assert kernel.cwd == Path(env["MCP_HARNESS_HOME"]) / "kernels" / "claude-code"
    env["MCP_HARNESS_CLAUDE_BIN"] = str(tmp_path / "nowhere" / "claude")
    with pytest.raises(HarnessError, match="is not an executable file"):
        make_kernel("claude-code", env=env)


def test_claude_code_agent_mode_from_the_config_file(env, tmp_path: Path) -> None:
    fake = Path(env["PATH"]) / "claude"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    (tmp_path / "ws").mkdir()
    (tmp_path / "other").mkdir()
    write_config(env, f'[kernels.claude-code]\nworkspace = "{tmp_path / "ws"}"\n')
    kernel = make_kernel("claude-code", env=env).kernel
    assert isinstance(kernel, ClaudeCodeKernel) and kernel.workspace == tmp_path / "ws"
    assert kernel.tools == ("Read", "Edit", "Write")
    assert "--permission-mode" in kernel.argv()
    [status] = [s for s in kernel_status(env) if s["name"] == "claude-code"]
    assert f"coding agent in {tmp_path / 'ws'} (Read, Edit, Write)" in status["detail"]
    write_config(
        env, f'[kernels.claude-code]\nworkspace = "{tmp_path / "ws"}"\ntools = "Read, Glob"\n'
    )
    env["MCP_HARNESS_CLAUDE_WORKSPACE"] = str(tmp_path / "other")  # the environment wins
    kernel = make_kernel("claude-code", env=env).kernel
    assert (kernel.workspace, kernel.tools) == (tmp_path / "other", ("Read", "Glob"))
    del env["MCP_HARNESS_CLAUDE_WORKSPACE"]
    write_config(env, "[kernels.claude-code]\n")
    assert make_kernel("claude-code", env=env).kernel.workspace is None  # text in, text out
    for text, message in [
        (f'workspace = "{tmp_path / "missing"}"', "is not a directory"),
        ('tools = "Read"', "tools is set but no workspace"),
        (f'workspace = "{tmp_path / "ws"}"\ntools = " , "', "tools is empty"),
        ("workspace = 1", "workspace must be a string"),
    ]:
        write_config(env, f"[kernels.claude-code]\n{text}\n")
        with pytest.raises(HarnessError, match=message):
            make_kernel("claude-code", env=env)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[kernel\nname = 1", "is not valid TOML"),
        ('[kernel]\nnmae = "openai"', "unknown key 'nmae' in \\[kernel\\]"),
        ('[kernels.openia]\nmodel = "x"', "unknown kernel section \\[kernels.openia\\]"),
        ('[kernels.openai]\nmodle = "x"', "unknown key 'modle' in \\[kernels.openai\\]"),
        ('[kernel]\nconcurrency = "8"', "kernel.concurrency must be an integer"),
        ("[kernel]\nconcurrency = 0", "kernel.concurrency is 0"),
        ('[kernel.prices]\n"m" = [1]', "kernel.prices.m must be"),
    ],
)
def test_bad_config_file_names_the_file_and_the_problem(env, text: str, expected: str) -> None:
    path = write_config(env, text)
    with pytest.raises(HarnessError, match=expected) as caught:
        make_kernel(env=env)
    assert str(path) in caught.value.message and caught.value.fix


@pytest.mark.parametrize(
    ("name", "message", "fix"),
    [
        ("anthropic", "anthropic kernel needs ANTHROPIC_API_KEY", "--kernel offline"),
        ("openai", "openai kernel needs OPENAI_API_KEY", "OPENAI_BASE_URL"),
        ("claude-code", "`claude` not found on PATH", "MCP_HARNESS_CLAUDE_BIN"),
        ("replay", "replay kernel needs a cassette file", "MCP_HARNESS_CASSETTE"),
        ("gpt", "unknown kernel 'gpt'", "offline, anthropic, openai, claude-code, replay"),
    ],
)
def test_missing_requirements_say_what_and_how(env, name: str, message: str, fix: str) -> None:
    with pytest.raises(HarnessError) as caught:
        make_kernel(name, env=env)
    assert message in caught.value.message and fix in (caught.value.fix or "")


def test_replay_configuration_errors(env, tmp_path: Path) -> None:
    env["MCP_HARNESS_CASSETTE"] = str(tmp_path / "none.jsonl")
    with pytest.raises(HarnessError, match=r"none\.jsonl does not exist"):
        make_kernel("replay", env=env)
    env["MCP_HARNESS_REPLAY_MODE"] = "record"
    with pytest.raises(HarnessError, match="needs an inner kernel"):
        make_kernel("replay", env=env)
    env["MCP_HARNESS_REPLAY_INNER"] = "anthropic"
    with pytest.raises(HarnessError, match="ANTHROPIC_API_KEY"):  # the inner kernel's check
        make_kernel("replay", env=env)
    env["MCP_HARNESS_REPLAY_INNER"] = "offline"
    kernel = make_kernel("replay", env=env).kernel
    assert isinstance(kernel, ReplayKernel) and kernel.mode == "record" and not kernel.billable


def test_kernel_status_reports_each_kernel_without_network(env) -> None:
    env |= {"ANTHROPIC_API_KEY": "sk-ant-x", "MCP_HARNESS_KERNEL": "anthropic"}
    environ_before = dict(os.environ)
    rows = kernel_status(env)
    assert os.environ == environ_before
    by_name = {row["name"]: row for row in rows}
    assert list(by_name) == list(KERNEL_NAMES)
    assert by_name["anthropic"]["usable"] and by_name["anthropic"]["selected"]
    assert "claude-sonnet-4-6" in by_name["anthropic"]["detail"]
    assert by_name["offline"]["usable"] and not by_name["offline"]["selected"]
    assert not by_name["openai"]["usable"] and "OPENAI_API_KEY" in by_name["openai"]["reason"]
    assert "not found on PATH" in by_name["claude-code"]["reason"]
    assert "cassette" in by_name["replay"]["reason"]
    table = format_status(rows)
    assert table.splitlines()[0].split() == ["kernel", "usable", "details"]
    assert "* anthropic" in table and "  offline" in table and "fix: " in table


def test_kernel_status_flags_an_unknown_selected_kernel(env) -> None:
    env["MCP_HARNESS_KERNEL"] = "gpt"
    rows = kernel_status(env)
    assert rows[-1]["name"] == "gpt" and rows[-1]["selected"] and not rows[-1]["usable"]
    assert not any(row["selected"] for row in rows[:-1])


def test_load_config_reads_the_file_under_data_home(env) -> None:
    path = write_config(env, '[kernels.anthropic]\nmodel = "claude-haiku-4-5"\n')
    config = load_config(env)
    assert config.path == path and config.section("anthropic")["model"] == "claude-haiku-4-5"


def test_registry_declares_each_kernel_once_with_its_capabilities() -> None:
    assert (
        KERNEL_NAMES
        == tuple(KERNELS)
        == ("offline", "anthropic", "openai", "claude-code", "replay")
    )
    assert [n for n in KERNEL_NAMES if not reflects(n)] == ["offline"]
    assert reflects("a-test-stub")  # an unregistered kernel is taken for an LLM
    with pytest.raises(ValueError, match="registered twice"):
        register(KERNELS["offline"])
