"""The MCP server and skill export end to end: the real Claude Code CLI against a loopback fake
Messages API (`fake_anthropic.py`), HOME and CLAUDE_CONFIG_DIR in temp dirs.

1. `claude mcp add -s user harness -e … -- <venv>/bin/mcp-harness serve`, then `claude mcp list`
   spawns it and reports `✔ Connected`.
2. A scripted session: the model calls `mcp__harness__experience_search`, then
   `mcp__harness__export_skill` (default target: the project's `.claude/skills`), then invokes the
   new skill with the `Skill` tool. Claude Code notices new skills with a polling watcher
   (every 2 s, file stable for 1 s, 0.3 s debounce; only dirs that existed at session start), so
   the fake API takes PAUSE_S before it answers with the `Skill` call, as a model would.
3. A user-invoked `/coder …` session: the skill's `allowed-tools` lets the model run the
   launcher with no other Bash permission, and the launcher runs the module for real (tmux).

The server gets MCP_HARNESS_HOME and MCP_HARNESS_RUNTIME_DIR only through `-e` (sessions 1-2),
so a search under that data home passing the server's path check proves they arrived. Every
server process started for this data home is reaped after each CLI call.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mcp_harness.terminal.pool import shutdown
from tests.e2e.fake_anthropic import FakeAnthropic, Logged, text_of
from tests.test_export_skill import parse_skill_md

BIN = Path(sys.executable).with_name("mcp-harness")
SEARCH = "mcp__harness__experience_search"
EXPORT = "mcp__harness__export_skill"
RUN = "mcp__harness__module_run_start"
JOB = "mcp__harness__job_status"
CODER = "mcp__harness__coder"  # the built-in module, as a tool of its own
FORMAT = "mcp__harness__ft_format"  # an op, as a tool of its own
PAUSE_S = 6.0
CLI_TIMEOUT_S = 90
CLAUDE_TIMEOUT_S = 180
TASK = "Make a script executable"


class PausingFake(FakeAnthropic):
    """The fake API, taking `pauses[step]` seconds before answering main-loop step `step`."""

    def __init__(self, script: list[dict[str, Any]], pauses: dict[int, float]) -> None:
        super().__init__(script)
        self.pauses = pauses

    def reply_blocks(self, step: int) -> list[dict[str, Any]]:
        time.sleep(self.pauses.get(step, 0.0))
        spec = self.script[step] if step < len(self.script) else {}
        if "input_from" in spec:  # a step whose input depends on an earlier tool result
            texts = []
            for result in self.tool_results().values():
                content = result.get("content")
                blocks = content if isinstance(content, list) else [{"text": str(content)}]
                texts += [str(b.get("text", "")) for b in blocks if isinstance(b, dict)]
            try:
                tool_input = spec["input_from"](" ".join(texts))
            except Exception as exc:  # answer anyway: a hung fake would hang Claude Code
                tool_input = {"error": f"script could not build the input: {exc}"}
            self.script[step] = {"tool": spec["tool"], "input": tool_input}
        return super().reply_blocks(step)


@dataclass
class World:
    base: Path
    home: Path
    config: Path
    harness_home: Path
    runtime: Path
    project: Path
    work: Path
    env: dict[str, str]  # for `claude`: temp HOME/config, nothing of mcp-harness

    @property
    def skills(self) -> Path:
        return self.project / ".claude" / "skills"


@dataclass
class Ran:
    claude: subprocess.CompletedProcess[str]
    fake: FakeAnthropic
    server_pids: list[int]

    @property
    def result(self) -> dict[str, Any]:
        return json.loads(self.claude.stdout)

    def results(self) -> dict[str, dict[str, Any]]:
        return self.fake.tool_results()

    def main(self) -> list[Logged]:
        return self.fake.main_requests()


def _clean_env(**extra: str) -> dict[str, str]:
    drop = ("CLAUDE", "ANTHROPIC", "MCP_HARNESS", "TMUX")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and k != "_"}
    env.update(extra)
    return env


def _server_pids(harness_home: Path) -> list[int]:
    """`mcp-harness serve` processes started for this test's data home (nothing else)."""
    marker = f"MCP_HARNESS_HOME={harness_home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        ours = b"serve" in argv and any(a.endswith(b"mcp-harness") for a in argv)
        if ours and marker in environ:
            found.append(int(entry.name))
    return found


def _reap(harness_home: Path) -> list[int]:
    """Stop this data home's servers (they should have exited on stdin EOF already)."""
    pids = _server_pids(harness_home)
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            signal.pidfd_send_signal(fd, signal.SIGTERM)
            if not select.select([fd], [], [], 10)[0]:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
                select.select([fd], [], [], 10)
        except ProcessLookupError:
            pass
        finally:
            os.close(fd)
    return pids


def _claude(
    claude_bin: Path, world: World, args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [str(claude_bin), *args],
            cwd=world.project,
            env=env or world.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLAUDE_TIMEOUT_S,
        )
    finally:
        _reap(world.harness_home)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("e2e-server").resolve()
    home, config, harness_home = base / "home", base / "claude-config", base / "harness-home"
    project, work = base / "proj", base / "work"
    for directory in (home, project / ".claude" / "skills", work):
        directory.mkdir(parents=True)
    runtime = Path(tempfile.mkdtemp(prefix="mh-e2e-", dir="/tmp"))  # short socket paths
    env = _clean_env(
        HOME=str(home),
        CLAUDE_CONFIG_DIR=str(config),
        SHELL="/bin/bash",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        # -p connects MCP servers without blocking (2.1.197) and fixes the session's tools at
        # the first request: a server that takes ~2.5 s to start (importing `mcp` alone takes
        # 1.5 s) would be missing from the whole session. Block until it is connected.
        MCP_CONNECTION_NONBLOCKING="0",
        MCP_CONNECT_TIMEOUT_MS="30000",
    )
    # the built-in coder, materialised in the data home (its experience is what gets searched)
    done = subprocess.run(
        [str(BIN), "module", "validate", "coder"],
        env={**env, "MCP_HARNESS_HOME": str(harness_home)},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr
    world = World(base, home, config, harness_home, runtime, project, work, env)
    try:
        yield world
    finally:
        _reap(harness_home)
        shutdown(runtime)
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture(scope="module")
def registered(
    world: World, claude_bin: Path
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    add = _claude(
        claude_bin,
        world,
        [
            *("mcp", "add", "-s", "user", "harness"),
            *("-e", f"MCP_HARNESS_HOME={world.harness_home}"),
            *("-e", f"MCP_HARNESS_RUNTIME_DIR={world.runtime}"),
            *("--", str(BIN), "serve"),
        ],
    )
    listed = _claude(claude_bin, world, ["mcp", "list"])
    return add, listed


@pytest.fixture(scope="module")
def session(world: World, registered: Any, claude_bin: Path) -> Iterator[Ran]:
    script = [
        {
            "tool": SEARCH,
            "input": {
                "experience": str(world.harness_home / "modules/coder/experience/command"),
                "text": "make the script executable",
                "k": 2,
            },
        },
        {"tool": RUN, "input": {"module": "coder", "inputs": {"task": TASK, "check": "true"}}},
        {
            "tool": JOB,
            "input_from": lambda results: {
                "job_id": re.search(r'"job_id": *"(\w+)"', results).group(1),
                "wait_seconds": 30,
            },
        },
        {"tool": EXPORT, "input": {"module": "coder"}},
        {"tool": "Skill", "input": {"skill": "coder", "args": TASK}},
        {
            "tool": CODER,
            "input": {"task": "List all files including hidden ones with sizes", "check": "true"},
        },
        {"tool": FORMAT, "input": {"tensors": [["a", "b"], ["1", "2"]], "template": "{0}={1}"}},
        {"text": "done"},
    ]
    fake = PausingFake(script, pauses={4: PAUSE_S}).start()
    try:
        env = {**world.env, "ANTHROPIC_BASE_URL": fake.url, "ANTHROPIC_API_KEY": "sk-ant-dummy"}
        args = ["-p", "Search, export the coder skill and use it", "--output-format", "json"]
        args += ["--allowedTools", SEARCH, RUN, JOB, EXPORT, "Skill", CODER, FORMAT]
        before = set(_server_pids(world.harness_home))
        claude = _claude(claude_bin, world, args, env)
        yield Ran(claude, fake, sorted(set(_server_pids(world.harness_home)) - before))
    finally:
        fake.stop()


@pytest.fixture(scope="module")
def slash(world: World, session: Ran, claude_bin: Path) -> Iterator[Ran]:
    launcher = world.skills / "coder" / "scripts" / "run.sh"
    command = f"{launcher} '{TASK}' --check true --workdir {world.work}"
    fake = FakeAnthropic([{"tool": "Bash", "input": {"command": command, "description": "Run"}}])
    fake.start()
    try:
        env = {
            **world.env,
            "ANTHROPIC_BASE_URL": fake.url,
            "ANTHROPIC_API_KEY": "sk-ant-dummy",
            # for the launcher, which runs in Claude Code's Bash tool
            "MCP_HARNESS_BIN": str(BIN),
            "MCP_HARNESS_HOME": str(world.harness_home),
            "MCP_HARNESS_RUNTIME_DIR": str(world.runtime),
        }
        claude = _claude(
            claude_bin, world, ["-p", f"/coder {TASK}", "--output-format", "json"], env
        )
        yield Ran(claude, fake, [])
    finally:
        fake.stop()


# ---- 1. registration and health check ----------------------------------------------------------
def test_mcp_add_and_list_shows_connected(registered: Any, world: World) -> None:
    add, listed = registered
    assert add.returncode == 0, add.stderr
    assert "Added stdio MCP server harness" in add.stdout
    stored = json.loads((world.config / ".claude.json").read_text())["mcpServers"]["harness"]
    assert stored["command"] == str(BIN) and stored["args"] == ["serve"]
    assert stored["env"]["MCP_HARNESS_HOME"] == str(world.harness_home)
    assert listed.returncode == 0, listed.stderr
    line = re.search(r"^harness: .*$", listed.stdout, re.M)
    assert line, listed.stdout
    assert line.group(0) == f"harness: {BIN} serve - ✔ Connected"
    assert _server_pids(world.harness_home) == [], "the health check's server is gone"


# ---- 2. search, export, Skill -------------------------------------------------------------------
def test_session_finishes_with_done(session: Ran) -> None:
    assert session.claude.returncode == 0, session.claude.stderr[-3000:] + session.claude.stdout
    result = session.result
    assert (result["type"], result["subtype"], result["is_error"]) == ("result", "success", False)
    assert result["result"] == "done"
    assert [r.step for r in session.main()] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert not result.get("permission_denials")


def test_server_tools_are_offered(session: Ran) -> None:
    names = session.main()[0].tool_names
    assert {SEARCH, EXPORT, "Skill", CODER, FORMAT} <= set(names)
    assert not any(n.startswith("mcp__harness__terminal_") for n in names)  # off by default
    assert sum(n.startswith("mcp__harness__") for n in names) > 10, "the whole tool catalogue"
    assert len(session.server_pids) <= 1


def test_experience_search_returns_hits(session: Ran, world: World) -> None:
    block = session.results()["toolu_000"]
    assert not block.get("is_error"), text_of(block)
    found = json.loads(text_of(block))
    assert found["rows"] == 42
    assert found["experience"] == str(world.harness_home / "modules/coder/experience/command")
    assert found["hits"][0]["value"] == "chmod +x script.sh"
    assert found["hits"][0]["key"] == "Make a script executable"


def test_the_coder_module_runs_on_a_task_as_a_job(session: Ran) -> None:
    results = session.fake.tool_results()
    started, status = results["toolu_010"], results["toolu_020"]
    assert not started.get("is_error") and not status.get("is_error"), status
    content = status["content"]
    text = content if isinstance(content, str) else "".join(b.get("text", "") for b in content)
    job = json.loads(text)
    assert job["state"] == "done", job
    assert [task["passed"] for task in job["result"]["tasks"]] == [True]


def test_export_skill_writes_into_the_project(session: Ran, world: World) -> None:
    block = session.results()["toolu_030"]
    assert not block.get("is_error"), text_of(block)
    out = json.loads(text_of(block))
    skill_md = world.skills / "coder" / "SKILL.md"
    assert out["skill_md"] == str(skill_md)
    assert out["experience"] == {"decision": 42, "command": 42}
    fields, _ = parse_skill_md(skill_md.read_text())
    assert fields["name"] == "coder"
    assert os.access(world.skills / "coder" / "scripts" / "run.sh", os.X_OK)


def test_skill_tool_launches_the_exported_skill(session: Ran, world: World) -> None:
    block = session.results()["toolu_040"]
    assert not block.get("is_error"), text_of(block)
    assert text_of(block) == "Launching skill: coder"
    # the skill listing Claude Code sent the model, and the body it injected after the call
    sent = json.dumps([r.body for r in session.main()], ensure_ascii=False)
    assert "- coder: Works a terminal task in a real tmux session" in sent
    skill_dir = world.skills / "coder"
    last = json.dumps(session.main()[5].messages[-1], ensure_ascii=False)  # after the Skill call
    assert f"Base directory for this skill: {skill_dir}" in last
    assert f'{skill_dir}/scripts/run.sh \\"Make run.sh executable\\"' in last  # expanded
    assert "${CLAUDE_SKILL_DIR}" not in last


def test_the_coder_module_is_a_tool_called_by_name(session: Ran) -> None:
    block = session.results()["toolu_050"]
    assert not block.get("is_error"), text_of(block)
    answer = json.loads(text_of(block))
    assert answer["state"] == "done", answer
    (task,) = answer["result"]["tasks"]
    assert task["passed"] is True and task["commands"] == ["ls -la"]


def test_an_op_is_a_tool_called_by_name(session: Ran) -> None:
    block = session.results()["toolu_060"]
    assert not block.get("is_error"), text_of(block)
    out = json.loads(text_of(block))
    assert out["texts"] == ["a=1", "b=2"] and out["passed"] == 2


# ---- 3. the skill's allowed-tools and launcher, from a user-invoked /coder -------------------
def test_slash_command_runs_the_launcher(slash: Ran, world: World) -> None:
    assert slash.claude.returncode == 0, slash.claude.stderr[-3000:] + slash.claude.stdout
    assert slash.result["result"] == "done"
    assert not slash.result.get("permission_denials"), "allowed-tools covers the launcher"
    first = json.dumps(slash.main()[0].messages, ensure_ascii=False)
    assert f"Base directory for this skill: {world.skills / 'coder'}" in first
    block = slash.results()["toolu_000"]
    assert not block.get("is_error"), text_of(block)
    output = text_of(block)
    assert output.startswith("[0] PASS confidence(1)")
    assert f"run files: {world.harness_home / 'runs'}" in output
