"""The `claude-code` kernel: headless Claude Code, so a user's login is enough (no API key).

Each request runs `claude -p --output-format json` as an asyncio subprocess, the prompt on
stdin (an argv string is capped at 128 KiB on Linux). Every call builds its own env dict and
never touches `os.environ` (upstream C18 mutated it from concurrent tasks). The subprocess:
- drops `CLAUDECODE`, so the kernel also works when the harness itself runs inside Claude Code;
- gets `ANTHROPIC_API_KEY` / `ANTHROPIC_BASE_URL` only when configured, else uses the login;
- sets `CLAUDE_CODE_MAX_RETRIES=0` (unless the user set it): the runner owns retries;
- sets `MCP_HARNESS_KERNEL_CALL=1`, so capture hooks can tell a kernel call from real work;
- runs with no tools (`--tools ""`), no session file, the task-neutral system prompt instead of
  the coding-agent one (C19), in its own empty working directory (no project CLAUDE.md), and in
  its own process group, killed on timeout or cancellation.

Agent mode (`workspace=`, as the seed's coding-agent backend): the call runs in that directory
as a coding agent with Claude Code's file tools (`Read`, `Edit`, `Write` by default: offered
with `--tools`, pre-approved with `--allowedTools` and `--permission-mode acceptEdits`, nothing
else — no Bash), its own coding-agent system prompt plus a note on the workspace; the reply is
its final message and the files it changed are the effect. Same protocol, same errors.
The JSON result gives `result`, `usage`, `total_cost_usd`, `is_error` and `api_error_status`;
errors are classified retryable (429, 5xx, connection) or not (login, 4xx).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcp_harness.kernels.base import KernelReply, KernelRequest, Usage
from mcp_harness.kernels.failures import KernelCallError, status_is_retryable
from mcp_harness.kernels.prompt import (
    SYSTEM_PROMPT,
    clean_reply,
    render_prompt,
    split_candidates,
)

ENV_BIN = "MCP_HARNESS_CLAUDE_BIN"
LOGIN_FIX = "run `claude` once and log in (/login), or set ANTHROPIC_API_KEY"
_TRANSIENT_WORDS = ("connection error", "timed out", "timeout", "overloaded", "econnre")
AGENT_TOOLS = ("Read", "Edit", "Write")
AGENT_NOTE = (
    "You work inside the current directory, the workspace: read and edit its files with your "
    "tools to do the task. When done, reply with the output the task asks for, only that."
)


class ClaudeCodeKernel:
    """`claude -p` with the rendered prompt; reply text = the JSON `result`."""

    name = "claude-code"
    billable = True

    def __init__(
        self,
        *,
        claude_bin: str | Path = "claude",
        model: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        workspace: Path | None = None,
        tools: tuple[str, ...] = AGENT_TOOLS,
    ) -> None:
        if workspace is not None and not Path(workspace).is_dir():
            raise KernelCallError(
                f"claude-code kernel: workspace {workspace} is not a directory",
                "create it, or give the directory the agent should work in",
                retryable=False,
            )
        self.claude_bin = str(claude_bin)
        self.model = model
        self.api_key = api_key
        self.base_url = base_url
        self._env = dict(env) if env is not None else None
        self.cwd = cwd
        self.workspace = Path(workspace).absolute() if workspace is not None else None
        self.tools = tuple(tools)
        self.last_pid: int | None = None  # the latest `claude` process (for diagnostics)

    def subprocess_env(self) -> dict[str, str]:
        """A fresh env dict for one call (a copy: nothing here writes to os.environ)."""
        env = dict(self._env if self._env is not None else os.environ)
        env.pop("CLAUDECODE", None)
        env.setdefault("CLAUDE_CODE_MAX_RETRIES", "0")
        env["MCP_HARNESS_KERNEL_CALL"] = "1"
        if self.api_key:
            env["ANTHROPIC_API_KEY"] = self.api_key
        if self.base_url:
            env["ANTHROPIC_BASE_URL"] = self.base_url
        return env

    def argv(self) -> list[str]:
        args = [self.claude_bin, "-p", "--output-format", "json", "--no-session-persistence"]
        if self.workspace is None:
            args += ["--tools", "", "--system-prompt", SYSTEM_PROMPT]
        else:
            tools = ",".join(self.tools)
            args += ["--tools", tools, "--allowedTools", tools]
            args += ["--permission-mode", "acceptEdits", "--append-system-prompt", AGENT_NOTE]
        if self.model:
            args += ["--model", self.model]
        return args

    async def complete(self, request: KernelRequest) -> KernelReply:
        cwd = self.workspace or self.cwd
        if cwd is not None:
            cwd.mkdir(parents=True, exist_ok=True)
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.subprocess_env(),
                cwd=cwd,
                start_new_session=True,
            )
        except (FileNotFoundError, PermissionError) as exc:
            raise KernelCallError(
                f"claude-code kernel: cannot run {self.claude_bin!r}: {exc.strerror or exc}",
                f"install Claude Code (npm install -g @anthropic-ai/claude-code) or set {ENV_BIN}",
            ) from exc
        self.last_pid = proc.pid
        try:
            stdout, stderr = await proc.communicate(render_prompt(request).encode())
        except BaseException:  # cancelled (runner timeout) or interrupted: leave no process
            _kill_group(proc)
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
            raise
        return self.parse(proc.returncode or 0, stdout, stderr, request)

    def parse(
        self,
        returncode: int,
        stdout: bytes,
        stderr: bytes,
        request: KernelRequest | None = None,
    ) -> KernelReply:
        """Turn the CLI's output into a reply (its candidates taken apart when `request` asked
        for several), or raise a classified KernelCallError."""
        result = _result_object(stdout.decode("utf-8", "replace"))
        if result is None:
            tail = (stderr or stdout).decode("utf-8", "replace").strip()[-500:]
            raise KernelCallError(
                f"claude-code kernel: `{self.claude_bin} -p` exited {returncode} without a "
                f"JSON result: {tail or '(no output)'}",
                f"run `{self.claude_bin} -p hello` by hand to see the problem; {LOGIN_FIX}",
                retryable=any(word in tail.lower() for word in _TRANSIENT_WORDS),
            )
        text = str(result.get("result") or "")
        if result.get("is_error") or result.get("subtype", "success") != "success":
            raise _cli_error(result, text)
        usage = result.get("usage") or {}
        spent = Usage(
            input_tokens=_int(usage.get("input_tokens"))
            + _int(usage.get("cache_creation_input_tokens"))
            + _int(usage.get("cache_read_input_tokens")),
            output_tokens=_int(usage.get("output_tokens")),
            calls=1,
            cost_usd=float(result.get("total_cost_usd") or 0.0),
        )
        text = clean_reply(text)
        if not text.strip():
            return KernelReply(text="", ok=False, confidence=0.0, usage=spent, reason="empty reply")
        text, alternatives = split_candidates(text, request) if request else (text, ())
        return KernelReply(text=text, usage=spent, alternatives=alternatives)


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _result_object(stdout: str) -> dict[str, Any] | None:
    """The `{"type": "result", …}` object (the last JSON line that is one)."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and value.get("type") == "result":
            return value
    return None


def _cli_error(result: dict[str, Any], text: str) -> KernelCallError:
    status = result.get("api_error_status")
    status = status if isinstance(status, int) else None
    lowered = text.lower()
    if "not logged in" in lowered or "/login" in lowered:
        return KernelCallError(f"claude-code kernel: {text}", LOGIN_FIX, retryable=False)
    if status in (401, 403):
        fix = f"{LOGIN_FIX} (a key in ANTHROPIC_API_KEY must be valid for ANTHROPIC_BASE_URL)"
    elif status == 404:
        fix = "check the model name (MCP_HARNESS_MODEL) and ANTHROPIC_BASE_URL"
    elif status_is_retryable(status):
        fix = "the API is rate limiting or failing; lower `concurrency` in [kernel] or try later"
    else:
        fix = "see the message; run `claude -p hello` by hand to check your setup"
    retryable = status_is_retryable(status) or (
        status is None and any(word in lowered for word in _TRANSIENT_WORDS)
    )
    detail = text or str(result.get("subtype"))
    return KernelCallError(f"claude-code kernel: {detail}", fix, retryable=retryable, status=status)


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
