"""The prefix wrapper against `bash -c`, byte for byte, on a real tmux pool."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

SHELL = "/bin/bash"


def composite(cmd: str, cwd_file: str) -> str:
    """The string Claude Code hands the prefix (see reference: claude-code.md section 4)."""
    quoted = "'" + cmd.replace("'", "'\"'\"'") + "'"
    return (
        "source /dev/null 2>/dev/null || true && { shopt -u extglob || setopt NO_EXTENDED_GLOB; }"
        f" >/dev/null 2>&1 || true && eval {quoted} \\< /dev/null && pwd -P >| {cwd_file}"
    )


def run(argv: list[str], env: dict[str, str], merged: bool, cwd: Path, timeout: float = 60):
    """Spawn like Claude Code: new session, stdin /dev/null; merged = one O_APPEND file."""
    if merged:
        with tempfile.TemporaryFile() as out:
            fd = os.open(f"/proc/self/fd/{out.fileno()}", os.O_WRONLY | os.O_APPEND)
            try:
                proc = subprocess.run(
                    argv,
                    env=env,
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=fd,
                    stderr=fd,
                    start_new_session=True,
                    timeout=timeout,
                )
            finally:
                os.close(fd)
            out.seek(0)
            return proc.returncode, out.read(), b""
    proc = subprocess.run(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        start_new_session=True,
        timeout=timeout,
    )
    return proc.returncode, proc.stdout, proc.stderr


CASES = {
    "echo": "echo hello",
    "no-newline": "printf 'no newline'",
    "exit-3": "echo x; exit 3",
    **{f"exit-{n}": f"exit {n}" for n in (0, 1, 2, 126, 127, 128, 255)},
    "heredoc-quoted": "cat <<'EOF'\n$HOME and `date`\nEOF",
    "heredoc-unquoted": "X=value\ncat <<EOF\nx=$X\nEOF",
    "nasty-quoting": "echo \"a'b\\\"c\" '$HOME' \\$x \"!bang\" 'it'\"'\"'s'",
    "tab": "printf 'a\\tb\\n'",
    "binary": "printf '\\x00\\x01\\x7f\\x80\\xfe\\xff'; head -c 70000 /dev/zero | tr '\\0' '\\377'",
    "invalid-utf8": "printf 'ok \\xff\\xfe\\xc3( end\\n'",
    "long-line-1mb": "head -c 1000000 /dev/zero | tr '\\0' 'a'",
    "output-10mb": "head -c 10000000 /dev/zero | tr '\\0' 'b'",
    "reads-stdin": 'cat; read x; echo "read=$?"',
    "kill-9-self": "echo before; kill -9 $$",
    "kill-term-self": "kill -TERM $$",
    "background-job": "sleep 0.3 & echo started",
    "cd": "cd /usr/share && pwd",
    "unicode": "echo 'héllo 世界 🎉'",
    "ansi-colour": "printf '\\033[31mred\\033[0m\\n'; ls --color=auto /",
    "interleaved": "for i in $(seq 300); do echo o$i; echo e$i >&2; done",
    "env-passthrough": 'printf \'%s|\' "$FIDELITY_VAR" "$TMUX" "$TERM"',
    "isatty": "[ -t 0 ]; echo $?; [ -t 1 ]; echo $?; [ -t 2 ]; echo $?",
    "dev-tty": "echo x > /dev/tty",
    "carriage-return": "printf 'a\\rb\\rc\\n'",
    "stderr-only": "echo only-err >&2",
    "silent": "true",
    "not-found": "nonexistent_cmd_xyz --flag",
    "pipeline": "(echo a; echo b; echo c) | sort -r",
    "function-return": "f() { return 4; }; f; echo $?",
    "set-e": "set -e; echo one; false; echo never",
    "big-stderr": "head -c 200000 /dev/zero | tr '\\0' 'e' >&2",
    "timeout": "timeout 0.2 sleep 5; echo $?",
    "trap-exit": "trap 'echo bye' EXIT; echo hi",
    "alt-screen": "printf '\\033[?1049h\\033[2Jhello\\033[?1049l'",
    "long-command": "echo " + "x" * 100_000,
    "exec": "exec echo replaced",
    "subshell-exit": "(exit 9); echo $?",
    "pwd-physical": "cd /tmp && pwd -P",
}


@pytest.fixture(scope="module")
def env(runtime: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("wrapper-home")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
    environment.update(
        {
            "MCP_HARNESS_HOME": str(home),
            "MCP_HARNESS_RUNTIME_DIR": str(runtime),
            "SHELL": SHELL,
            "FIDELITY_VAR": "two\nlines 'and' $dollar",
            "TERM": "xterm-256color",
            "CLAUDECODE": "1",
            "CLAUDE_CODE_SESSION_ID": "session-fidelity",
        }
    )
    return environment


@pytest.mark.parametrize("merged", [True, False], ids=["merged", "split"])
@pytest.mark.parametrize("name", list(CASES))
def test_fidelity_against_bash(
    name: str, merged: bool, prefix: Path, env: dict[str, str], tmp_path: Path
) -> None:
    cmd = CASES[name]
    expected_cwd, wrapped_cwd = tmp_path / "cwd-bash", tmp_path / "cwd-wrapper"
    expected = run([SHELL, "-c", composite(cmd, str(expected_cwd))], env, merged, tmp_path)
    wrapped = run([str(prefix), composite(cmd, str(wrapped_cwd))], env, merged, tmp_path)
    assert wrapped[0] == expected[0], f"exit status differs for {name}"
    assert wrapped[1] == expected[1], f"stdout differs for {name}"
    assert wrapped[2] == expected[2], f"stderr differs for {name}"
    bash_cwd = expected_cwd.read_text() if expected_cwd.exists() else None
    wrapper_cwd = wrapped_cwd.read_text() if wrapped_cwd.exists() else None
    assert wrapper_cwd == bash_cwd
    log = Path(env["MCP_HARNESS_HOME"]) / "capture" / "wrapper.log"
    assert not log.exists(), log.read_text()  # every call really went through tmux


def test_calls_are_recorded(prefix: Path, env: dict[str, str], tmp_path: Path) -> None:
    key = "sk-ant-api03-" + "Zx9" * 30
    cmd = f"echo recorded-{tmp_path.name}; echo 'token={key}'; exit 5"
    code, _, _ = run([str(prefix), composite(cmd, str(tmp_path / "c"))], env, True, tmp_path)
    assert code == 5
    home = Path(env["MCP_HARNESS_HOME"])
    records = [r for r in read_records_from(home) if f"recorded-{tmp_path.name}" in r["command"]]
    assert len(records) == 1
    record = records[0]
    assert record["exit_code"] == 5 and record["signal"] is None
    assert record["cwd"] == str(tmp_path)
    assert record["session_id"] == "session-fidelity"
    assert record["command"].startswith(f"echo recorded-{tmp_path.name}")
    assert "eval" in record["command_raw"]
    assert f"recorded-{tmp_path.name}" in record["screen_after"]
    assert f"recorded-{tmp_path.name}" not in record["screen_before"].split("\n")[-1]
    assert record["output"].startswith(f"recorded-{tmp_path.name}\n")
    assert key not in (home / "capture" / "commands.jsonl").read_text()


def read_records_from(home: Path) -> list[dict]:
    path = home / "capture" / "commands.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_eight_concurrent_calls_never_mix(prefix: Path, env: dict[str, str], tmp_path: Path):
    results: dict[int, tuple[int, bytes, bytes]] = {}

    def call(n: int) -> None:
        cmd = f"for i in $(seq 3000); do echo job{n}-$i; done; exit {n}"
        results[n] = run(
            [str(prefix), composite(cmd, str(tmp_path / f"c{n}"))], env, True, tmp_path
        )

    threads = [threading.Thread(target=call, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n in range(8):
        expected = "".join(f"job{n}-{i}\n" for i in range(1, 3001)).encode()
        assert results[n] == (n, expected, b"")


def test_pass_through_keeps_stdin_and_stdout(prefix: Path, env: dict[str, str]) -> None:
    """Hooks and MCP servers are not Bash tool calls: exec'd unchanged, stdio intact."""
    payload = b'{"jsonrpc": "2.0", "id": 1}\n' * 100
    proc = subprocess.run([str(prefix), "cat"], input=payload, env=env, capture_output=True)
    assert (proc.returncode, proc.stdout) == (0, payload)
    proc = subprocess.run([str(prefix), "echo hook; exit 2"], env=env, capture_output=True)
    assert (proc.returncode, proc.stdout) == (2, b"hook\n")
    joined = subprocess.run([str(prefix), "echo", "two words"], env=env, capture_output=True)
    assert joined.stdout == b"two words\n"  # several arguments are joined with spaces


def test_falls_back_to_plain_bash_without_tmux(
    prefix: Path, env: dict[str, str], tmp_path: Path
) -> None:
    isolated = {
        **env,
        "PATH": str(tmp_path / "empty-bin"),
        "MCP_HARNESS_RUNTIME_DIR": str(tmp_path / "rt"),
        "MCP_HARNESS_HOME": str(tmp_path / "home"),
    }
    code, out, _ = run(
        [str(prefix), composite("echo still-runs; exit 4", str(tmp_path / "c"))],
        isolated,
        True,
        tmp_path,
    )
    assert (code, out) == (4, b"still-runs\n")
    log = (tmp_path / "home" / "capture" / "wrapper.log").read_text()
    assert "could not start a runner" in log


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(entry))
    return found


@pytest.mark.parametrize("signum", [15, 2, 9])
def test_killing_the_wrapper_kills_the_command_tree(
    signum: int, prefix: Path, env: dict[str, str], tmp_path: Path
) -> None:
    marker = f"71.{signum}{os.getpid()}"
    cmd = f"echo started; setsid sleep {marker} & sleep {marker}"
    wrapper = subprocess.Popen(
        [str(prefix), composite(cmd, str(tmp_path / "c"))],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert wrapper.stdout is not None
    assert wrapper.stdout.readline() == b"started\n"  # the command is running in the pane
    wrapper.send_signal(signum)
    assert wrapper.wait(timeout=30) == -signum
    # The pane takes a new job only after it finished the old one: run one through it.
    follow = run([str(prefix), composite("echo next", str(tmp_path / "n"))], env, True, tmp_path)
    assert follow[1] == b"next\n"
    assert _processes_with(f"sleep\0{marker}") == []


def test_python_client_reports_screens_and_status(runtime: Path) -> None:
    from mcp_harness.terminal.client import run as run_in_pane

    result = run_in_pane("echo visible; echo err >&2; exit 6", cwd="/tmp")
    assert (result.exit_code, result.signal) == (6, None)
    assert (result.stdout, result.stderr) == (b"visible\n", b"err\n")
    assert "visible" in result.screen_after and "[exit 6]" in result.screen_after
    killed = run_in_pane("kill -KILL $$")
    assert (killed.exit_code, killed.signal) == (None, 9)


def test_records_go_to_the_callers_home(prefix: Path, env: dict[str, str], tmp_path: Path):
    other = {**env, "MCP_HARNESS_HOME": str(tmp_path / "other-home")}
    run([str(prefix), composite("echo elsewhere", str(tmp_path / "c"))], other, True, tmp_path)
    assert [r["command"] for r in read_records_from(tmp_path / "other-home")] == ["echo elsewhere"]
