"""Stage 0 capture end to end: the real Claude Code CLI, headless, against a loopback fake API.

For each setup - (a) `mcp-harness capture install --scope project`, (b) the plugin in
`adapters/claude_code` loaded with `--plugin-dir` plus the prefix set through `--settings` - one
Claude Code session runs a scripted list of Bash calls and one MCP call. The checks then cover
what the model got back (the fake API's request log), what capture recorded (`hooks.jsonl`,
`mcp-harness capture log --json`), what `mcp-harness harvest` made of it, and that the planted
API key never reached a file under the data home.

Every step runs the real commands as subprocesses with HOME, MCP_HARNESS_HOME,
MCP_HARNESS_RUNTIME_DIR and CLAUDE_CONFIG_DIR in temp dirs; the session runs once per setup
(module-scoped fixture) and the tests below only read its results.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mcp_harness.redaction import REDACTED, redact
from mcp_harness.terminal.pool import shutdown
from tests.e2e.fake_anthropic import FakeAnthropic, text_of

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "adapters" / "claude_code"
MINI_SERVER = Path(__file__).with_name("mini_mcp_server.py")
PREFIX_ENV = "CLAUDE_CODE_SHELL_PREFIX"

PROMPT = "Run the Stage 0 capture checks"
KEY_BODY = "E2eFakeKeyDoNotUse0123456789abcdefghijKL"
KEY = "sk-ant-" + "api03-" + KEY_BODY  # built in two parts so secret scanners leave this file be
assert len(KEY_BODY) == 40

# (command, description) of every Bash call, in order; the MCP call comes after them
BASH_CALLS = [
    ("echo hello-e2e; echo err >&2", "Print hello"),
    ("echo failing; exit 3", "Fail on purpose"),
    ("cd sub && pwd", "Enter the sub directory"),
    ("pwd", "Show the working directory"),
    (f"echo ANTHROPIC_API_KEY={KEY}", "Print the API key"),
]
EXIT_CODES = [0, 3, 0, 0, 0]
MCP_TOOL = "mcp__mini__echo"
MCP_TEXT = "ping-e2e"
SCRIPT = [
    *({"tool": "Bash", "input": {"command": c, "description": d}} for c, d in BASH_CALLS),
    {"tool": MCP_TOOL, "input": {"text": MCP_TEXT}},
    {"text": "done"},
]
# tool_use ids the fake API gives step k's single block (see FakeAnthropic.reply_blocks)
BASH_IDS = [f"toolu_{k:02d}0" for k in range(len(BASH_CALLS))]
MCP_ID = f"toolu_{len(BASH_CALLS):02d}0"

PROJECT_PARENT = "e2e_ws"  # the project is <tmp>/e2e_ws/proj, so its harvest slug is e2e-ws-proj
SLUG = "e2e-ws-proj"
CLI_TIMEOUT_S = 60
CLAUDE_TIMEOUT_S = 90


@dataclass
class Session:
    """Everything one setup's run produced."""

    setup: str
    project: Path
    harness_home: Path
    config_dir: Path
    claude: subprocess.CompletedProcess[str]
    fake: FakeAnthropic
    install: dict[str, Any] | None
    log: list[dict[str, Any]] = field(default_factory=list)
    harvest: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    mcp_pids: list[int] = field(default_factory=list)

    @property
    def result(self) -> dict[str, Any]:
        return json.loads(self.claude.stdout)

    def hooks(self) -> list[dict[str, Any]]:
        path = self.harness_home / "capture" / "hooks.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's env without anything that would leak into or steer the session.

    `_` goes too: the mini MCP server reports it to show a shell launched it.
    """
    drop = ("CLAUDE", "ANTHROPIC", "MCP_HARNESS", "TMUX")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and k != "_"}
    env.update(extra)
    return env


def _harness_cli() -> list[str]:
    """The installed `mcp-harness` console script of this venv, else `python -m mcp_harness`."""
    script = Path(sys.executable).with_name("mcp-harness")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mcp_harness"]


def _run_cli(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [*_harness_cli(), *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    assert done.returncode == 0, f"mcp-harness {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def _mcp_pids(pidfile: Path) -> list[int]:
    return [int(p) for p in pidfile.read_text().split()] if pidfile.exists() else []


def _reap(pids: list[int]) -> None:
    """Stop the mini MCP servers still running (waiting on pidfds, no polling)."""
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if MINI_SERVER.name.encode() not in cmdline:
                continue  # the pid was reused by something else
            signal.pidfd_send_signal(fd, signal.SIGTERM)
            if not select.select([fd], [], [], 10)[0]:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
                select.select([fd], [], [], 10)
        except ProcessLookupError:
            pass
        finally:
            os.close(fd)


@pytest.fixture(scope="module", params=["settings", "plugin"])
def session(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, claude_bin: Path
) -> Iterator[Session]:
    setup = request.param
    base = tmp_path_factory.mktemp(f"e2e-{setup}").resolve()
    project = base / PROJECT_PARENT / "proj"
    (project / "sub").mkdir(parents=True)
    home, harness_home, config_dir = base / "home", base / "harness-home", base / "claude-config"
    home.mkdir()
    # Unix socket paths must stay short: the runtime dir goes straight under /tmp
    runtime = Path(tempfile.mkdtemp(prefix="mh-e2e-", dir="/tmp"))
    pidfile = base / "mcp-pids"
    env = _clean_env(
        HOME=str(home),
        MCP_HARNESS_HOME=str(harness_home),
        MCP_HARNESS_RUNTIME_DIR=str(runtime),
        CLAUDE_CONFIG_DIR=str(config_dir),
        SHELL="/bin/bash",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
    )
    fake = FakeAnthropic(SCRIPT).start()
    try:
        install = None
        extra: list[str] = []
        if setup == "settings":
            args = ["capture", "install", "--scope", "project", "--project-dir", str(project)]
            install = json.loads(_run_cli([*args, "--json"], env, project))
        else:
            prefix = _run_cli(["capture", "prefix-path"], env, project).strip()
            env["MCP_HARNESS_PYTHON"] = sys.executable  # the plugin hook's interpreter
            extra = [
                "--plugin-dir",
                str(PLUGIN),
                "--settings",
                json.dumps({"env": {PREFIX_ENV: prefix}}),
            ]
        mcp_config = {
            "mcpServers": {
                "mini": {
                    "command": sys.executable,
                    "args": [str(MINI_SERVER)],
                    "env": {"MINI_MCP_PIDFILE": str(pidfile)},
                }
            }
        }
        claude_env = {
            **env,
            "ANTHROPIC_BASE_URL": fake.url,
            "ANTHROPIC_API_KEY": "sk-ant-dummy",
        }
        claude = subprocess.run(
            [
                str(claude_bin),
                "-p",
                PROMPT,
                "--output-format",
                "json",
                "--strict-mcp-config",
                "--mcp-config",
                json.dumps(mcp_config),
                *extra,
                "--allowedTools",
                "Bash",
                MCP_TOOL,
            ],
            cwd=project,
            env=claude_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLAUDE_TIMEOUT_S,
        )
        result = Session(setup, project, harness_home, config_dir, claude, fake, install)
        result.mcp_pids = _mcp_pids(pidfile)
        _reap(result.mcp_pids)  # servers should exit on stdin EOF; never leave one behind
        if claude.returncode == 0:
            # the order a user would follow: look at the log, then harvest
            result.log = json.loads(
                _run_cli(["capture", "log", "--json", "-n", "100"], env, project)
            )
            transcripts = str(config_dir / "projects")
            result.harvest = json.loads(
                _run_cli(["harvest", "--json", "--transcripts", transcripts], env, project)
            )
            for path in result.harvest.get("tensors", {}):
                shown = _run_cli(
                    ["experience", "show", path, "--json", "--limit", "1000"], env, project
                )
                result.tensors[path] = json.loads(shown)
        yield result
    finally:
        _reap(_mcp_pids(pidfile))
        fake.stop()
        shutdown(runtime)
        shutil.rmtree(runtime, ignore_errors=True)


# ---- what the model saw ------------------------------------------------------------------------
def test_capture_is_set_up(session: Session) -> None:
    if session.setup == "settings":
        install = session.install
        assert install is not None
        assert install["path"] == str(session.project / ".claude" / "settings.json")
        assert install["prefix"] == str(session.harness_home / "bin" / "mcp-harness-prefix")
        assert PREFIX_ENV in json.loads(Path(install["path"]).read_text())["env"]
    assert (session.harness_home / "bin" / "mcp-harness-prefix").is_file()


def test_session_ends_with_done(session: Session) -> None:
    assert session.claude.returncode == 0, session.claude.stderr[-3000:] + session.claude.stdout
    result = session.result
    assert (result["type"], result["subtype"], result["is_error"]) == ("result", "success", False)
    assert result["result"] == "done"
    steps = [r.step for r in session.fake.main_requests()]
    assert steps == list(range(len(SCRIPT))), "one main-loop request per script step"


def test_tool_results_are_what_bash_gives(session: Session) -> None:
    """The prefix (tmux runner) is invisible: output, exit status and cwd carry-over as in bash."""
    results = session.fake.tool_results()
    sub = str(session.project / "sub")
    hello, failing, cd_sub, pwd, key = (results[i] for i in BASH_IDS)
    assert (text_of(hello), hello.get("is_error")) == ("hello-e2e\nerr", False)
    assert failing.get("is_error") is True
    assert text_of(failing).startswith("Exit code 3")
    assert text_of(failing).splitlines()[1:] == ["failing"]
    assert (text_of(cd_sub), cd_sub.get("is_error")) == (sub, False)
    assert (text_of(pwd), pwd.get("is_error")) == (sub, False), "cwd carry-over through prefix"
    # the model gets the real output; only what is stored is redacted
    assert (text_of(key), key.get("is_error")) == (f"ANTHROPIC_API_KEY={KEY}", False)


def test_mcp_server_starts_through_the_prefix(session: Session) -> None:
    first = session.fake.main_requests()[0]
    assert MCP_TOOL in first.tool_names
    answer = session.fake.tool_results()[MCP_ID]
    assert answer.get("is_error") in (None, False)
    # `_` is set by bash when it execs a program: the prefix's `bash -c` launched the server
    assert text_of(answer) == f"echo:{MCP_TEXT}|via={sys.executable}"
    assert len(session.mcp_pids) == 1, "one launch of the mini server"


# ---- what capture recorded ---------------------------------------------------------------------
def test_hooks_recorded_the_session(session: Session) -> None:
    records = session.hooks()
    session_id = session.result["session_id"]
    assert {r["session_id"] for r in records} == {session_id}
    starts = [r for r in records if r["event"] == "SessionStart"]
    assert [(r["source"], r["cwd"]) for r in starts] == [("startup", str(session.project))]
    prompts = [r["prompt"] for r in records if r["event"] == "UserPromptSubmit"]
    assert prompts == [PROMPT]
    tool_events = [
        (r["event"], r["tool_use_id"], r.get("exit_code"))
        for r in records
        if r["event"].startswith(("PreToolUse", "PostToolUse"))
    ]
    expected = []
    for tool_use_id, code in zip(BASH_IDS, EXIT_CODES, strict=True):
        post = "PostToolUse" if code == 0 else "PostToolUseFailure"
        expected += [("PreToolUse", tool_use_id, None), (post, tool_use_id, code)]
    assert tool_events == expected, "each Bash call once (hooks not doubled), MCP call not at all"
    pre = [r for r in records if r["event"] == "PreToolUse"]
    assert [(r["command"], r["description"]) for r in pre] == [
        (redact(c), d) for c, d in BASH_CALLS
    ]


def test_capture_log_has_one_call_per_bash_call(session: Session) -> None:
    log = session.log
    commands = [c["command"] for c in log]
    assert commands == [redact(c) for c, _ in BASH_CALLS], (
        "exactly one call per Bash call; a raw composite string here means the wrapper's "
        "record was not joined to its hook events"
    )
    assert [c["tool_use_id"] for c in log] == BASH_IDS
    assert [c["description"] for c in log] == [d for _, d in BASH_CALLS]
    assert [c["exit_code"] for c in log] == EXIT_CODES
    assert {c["session_id"] for c in log} == {session.result["session_id"]}
    assert {c["task"] for c in log} == {PROMPT}
    sub = str(session.project / "sub")
    cwds = [str(session.project)] * 3 + [sub, sub]
    assert [c["cwd"] for c in log] == cwds
    outputs = ["hello-e2e\nerr\n", "failing\n", f"{sub}\n", f"{sub}\n"]
    assert [c["output"] for c in log[:4]] == outputs
    for call in log:
        assert {"wrapper", "hooks"} <= set(call["sources"]), call
        assert isinstance(call["screen_before"], str), call
        assert f"$ {call['command']}" in call["screen_after"], call
    assert "hello-e2e\nerr" in log[0]["screen_after"]


def test_harvest_builds_decision_and_command_tensors(session: Session) -> None:
    experience = session.harness_home / "experience"
    decision, command = (str(experience / f"{SLUG}.{kind}") for kind in ("decision", "command"))
    assert set(session.harvest["tensors"]) == {decision, command}
    assert session.harvest["imported"]["files"] == 1, "the session's transcript was imported"

    rows = session.tensors[command]
    assert [(r["key"], r["value"]) for r in rows] == [(d, redact(c)) for c, d in BASH_CALLS]
    assert [r["provenance"]["tool_use_id"] for r in rows] == BASH_IDS
    assert [r["provenance"]["exit_code"] for r in rows] == EXIT_CODES
    assert [r["weight"] for r in rows] == [1.0, 0.5, 1.0, 1.0, 1.0]

    rows = session.tensors[decision]
    assert [r["value"] for r in rows] == [d for _, d in BASH_CALLS]
    assert all(r["key"].startswith(PROMPT) for r in rows), [r["key"] for r in rows]
    assert [r["provenance"]["tool_use_id"] for r in rows] == BASH_IDS


def test_planted_key_is_stored_nowhere(session: Session) -> None:
    # the key really went through the session (else this test proves nothing) ...
    assert text_of(session.fake.tool_results()[BASH_IDS[4]]).endswith(KEY)
    leaks, redacted = [], []
    for path in sorted(session.harness_home.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if KEY_BODY.encode() in data:
                leaks.append(path)
            if REDACTED.encode() in data:
                redacted.append(path.relative_to(session.harness_home))
    # ... and no file under the data home holds it, while the redaction marker is there
    assert leaks == []
    names = {p.parts[-1] for p in redacted}
    assert {"commands.jsonl", "hooks.jsonl", "transcripts.jsonl"} <= names, redacted
    assert any(p.parts[:2] == ("experience", f"{SLUG}.command") for p in redacted), redacted
