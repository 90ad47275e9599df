"""The prefix wrapper's recording: one record per call, one pane per session, exact routing, and
recording failures that leave the call exactly as plain bash would have run it."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mcp_harness.capture import settings
from mcp_harness.capture.records import CommandRecord, failure_count
from mcp_harness.terminal.pool import shutdown
from mcp_harness.terminal.tmux import run as tmux
from tests.fidelity import SNAPSHOT, both, composite

DEADLINE_S = 30.0


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("snapshots") / "snapshot-bash-1-wrapper.sh"
    path.write_text(SNAPSHOT)
    return path


def make_env(runtime: Path, home: Path, session: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
    environment.update(
        {
            "MCP_HARNESS_HOME": str(home),
            "MCP_HARNESS_RUNTIME_DIR": str(runtime),
            "SHELL": "/bin/bash",
            "CLAUDECODE": "1",
            "CLAUDE_CODE_SESSION_ID": session,
        }
    )
    return environment


@pytest.fixture
def env(runtime: Path, tmp_path: Path) -> dict[str, str]:
    return make_env(runtime, tmp_path / "home", f"s-{tmp_path.name}"[:60])


@pytest.fixture
def own_runtime() -> Iterator[Path]:
    """A runtime dir (and tmux server) of this test alone."""
    root = Path(tempfile.mkdtemp(prefix="mh-", dir="/tmp"))
    yield root
    shutdown(root)
    shutil.rmtree(root, ignore_errors=True)


def until(condition: Callable[[], object], what: str) -> object:
    deadline = time.monotonic() + DEADLINE_S
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
    return value


def records(home: Path) -> list[dict]:
    path = home / "capture" / "commands.jsonl"
    if not path.exists():
        return []
    complete = path.read_bytes().split(b"\n")[:-1]  # the last line may be mid-append
    return [json.loads(line) for line in complete if line.strip()]


def wait_records(home: Path, count: int) -> list[dict]:
    until(lambda: len(records(home)) >= count, f"{count} records in {home}")
    return records(home)


def call(prefix: Path, env: dict[str, str], cmd: str, work: Path, snapshot: Path, merged=True):
    """The wrapper on `cmd`, compared with plain bash; returns what the wrapper gave."""
    expected, wrapped = both(
        cmd, prefix=prefix, env=env, work=work, merged=merged, snapshot=snapshot
    )
    assert wrapped == expected
    return wrapped


def test_calls_are_recorded(prefix: Path, env, tmp_path: Path, runtime: Path, snapshot: Path):
    key = "sk-ant-api03-" + "Zx9" * 30
    cmd = f"echo recorded; echo 'token={key}'; echo err >&2; exit 5"
    assert call(prefix, env, cmd, tmp_path, snapshot).status == 5
    [record] = wait_records(Path(env["MCP_HARNESS_HOME"]), 1)
    assert set(record) == set(CommandRecord.__annotations__)  # the type join reads
    assert (record["exit_code"], record["signal"], record["interrupted"]) == (5, None, False)
    assert record["cwd"] == str(tmp_path)
    assert record["session_id"] == env["CLAUDE_CODE_SESSION_ID"]
    assert record["command"].startswith("echo recorded; echo 'token=")
    assert key not in record["command"] and record["command"].endswith("exit 5")
    assert record["command_raw"].startswith("source ") and "eval '" in record["command_raw"]
    assert record["output"].startswith("recorded\ntoken=") and record["output"].endswith("err\n")
    assert record["output_bytes"] == len(f"recorded\ntoken={key}\nerr\n")
    assert record["duration_ms"] > 0
    assert "$ echo recorded" in record["screen_after"] and "[exit 5]" in record["screen_after"]
    assert "echo recorded" not in record["screen_before"]
    text = (Path(env["MCP_HARNESS_HOME"]) / "capture" / "commands.jsonl").read_text()
    assert key not in text
    history = tmux("capture-pane", "-p", "-S", "-", "-t", record["pane"], root=runtime).stdout
    assert "recorded" in history and key not in history  # redacted before it reached the pane


def test_split_output_is_read_back_from_both_files(
    prefix: Path, env, tmp_path: Path, snapshot: Path
) -> None:
    call(prefix, env, "echo out; echo err >&2; echo out2", tmp_path, snapshot, merged=False)
    [record] = wait_records(Path(env["MCP_HARNESS_HOME"]), 1)
    assert record["output"] == "out\nout2\nerr\n"


def test_one_pane_per_session(prefix: Path, runtime: Path, tmp_path: Path, snapshot: Path):
    home = tmp_path / "home"
    first = make_env(runtime, home, f"a-{tmp_path.name}"[:60])
    second = make_env(runtime, home, f"b-{tmp_path.name}"[:60])
    call(prefix, first, "echo marker-of-a", tmp_path, snapshot)
    wait_records(home, 1)
    call(prefix, second, "echo marker-of-b", tmp_path, snapshot)
    call(prefix, first, "echo again-a", tmp_path, snapshot)
    by_command = {r["command"]: r for r in wait_records(home, 3)}
    a1, b1, a2 = (by_command[f"echo {m}"] for m in ("marker-of-a", "marker-of-b", "again-a"))
    assert a1["pane"] == a2["pane"] != b1["pane"]
    assert "marker-of-a" not in b1["screen_before"] + b1["screen_after"]
    assert "marker-of-a" in a2["screen_before"]


def test_concurrent_calls_are_each_recorded_once(
    prefix: Path, env, tmp_path: Path, snapshot: Path
) -> None:
    from tests.fidelity import spawn

    results = {}

    def one(n: int) -> None:
        work = tmp_path / f"w{n}"
        work.mkdir()
        cmd = f"for i in $(seq 2000); do echo job{n}-$i; done; exit {n}"
        results[n] = spawn(
            [str(prefix), composite(cmd, work / "cwd", snapshot)],
            env=env,
            cwd=work,
            out_dir=work,
            merged=True,
            cwd_file=work / "cwd",
        )

    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n in range(8):
        expected = "".join(f"job{n}-{i}\n" for i in range(1, 2001)).encode()
        assert (results[n].status, results[n].out) == (n, expected)
    got = wait_records(Path(env["MCP_HARNESS_HOME"]), 8)
    assert sorted(r["exit_code"] for r in got) == list(range(8))
    for r in got:
        assert r["output"] == "".join(f"job{r['exit_code']}-{i}\n" for i in range(1, 2001))


def test_pass_through_keeps_stdin_and_stdout(
    prefix: Path, env, tmp_path: Path, snapshot: Path
) -> None:
    """Hooks, MCP launches and status lines are exec'd unchanged with their stdio, even when
    they contain a piece of the Bash composite."""
    payload = b'{"jsonrpc": "2.0", "id": 1}\n' * 100
    for line in (
        "cat",
        "cat; pwd -P >| /dev/null",
        "cat && eval 'true' < /dev/null && pwd -P >| /dev/null",
    ):
        proc = subprocess.run([str(prefix), line], input=payload, env=env, capture_output=True)
        assert (proc.returncode, proc.stdout) == (0, payload), line
    proc = subprocess.run([str(prefix), "echo hook; exit 2"], env=env, capture_output=True)
    assert (proc.returncode, proc.stdout) == (2, b"hook\n")
    joined = subprocess.run([str(prefix), "echo", "two words"], env=env, capture_output=True)
    assert joined.stdout == b"two words\n"  # several arguments are joined with spaces
    call(prefix, env, "echo the-bash-call", tmp_path, snapshot)
    home = Path(env["MCP_HARNESS_HOME"])
    until(lambda: any(r["command"] == "echo the-bash-call" for r in records(home)), "record")
    assert [r["command"] for r in records(home)] == ["echo the-bash-call"]


def _full_disk(home: Path) -> None:
    (home / "capture").mkdir(parents=True)
    (home / "capture" / "commands.jsonl").symlink_to("/dev/full")


@pytest.mark.parametrize("kind", ["unwritable-home", "full-disk", "no-tmux"])
def test_recording_failures_leave_the_call_untouched(
    kind: str,
    prefix: Path,
    own_runtime: Path,
    tmp_path: Path,
    snapshot: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = Path("/proc/1/mcp-harness-home") if kind == "unwritable-home" else tmp_path / "home"
    environment = make_env(own_runtime, home, "failing")
    if kind == "full-disk":
        _full_disk(home)
    if kind == "no-tmux":
        environment["PATH"] = str(tmp_path / "empty-bin")
    cmd = "echo still-runs; echo err >&2; exit 4"
    for merged in (True, False):
        wrapped = call(prefix, environment, cmd, tmp_path, snapshot, merged=merged)
        assert wrapped.status == 4
    capture = home / "capture"
    until(lambda: failure_count(capture, own_runtime) >= 2, "two counted failures")
    if kind != "full-disk":  # (status would read /dev/full for ever)
        monkeypatch.setenv("MCP_HARNESS_HOME", str(home))
        monkeypatch.setenv("MCP_HARNESS_RUNTIME_DIR", str(own_runtime))
        assert settings.status()["recording_failures"] == failure_count(capture, own_runtime)
    if kind != "unwritable-home":
        log = (capture / "wrapper.log").read_text()
        assert "the command ran unchanged, unrecorded" in log
    if kind != "full-disk":  # (reading /dev/full never ends)
        assert records(home) == []


def _wait_for_output(path: Path, text: bytes) -> None:
    until(lambda: path.exists() and path.read_bytes().startswith(text), f"{text!r} in {path}")


def _start(prefix: Path, env: dict[str, str], cmd: str, work: Path, snapshot: Path):
    out = os.open(work / "out", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return subprocess.Popen(
            [str(prefix), composite(cmd, work / "cwd", snapshot)],
            env=env,
            cwd=work,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    finally:
        os.close(out)


GATED = "echo a; while [ ! -e go ]; do sleep 0.01; done; echo b; exit 3"


def _has_socket(pid: int) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    return any(os.readlink(fd).startswith("socket:") for fd in fds.iterdir())


def _mirror_pids(runtime: Path, key: str) -> list[int]:
    marker = f"serve\0{runtime}\0{key}\0".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.mark.parametrize("what", ["tmux-server", "mirror"])
def test_recorder_dying_mid_command_changes_nothing(
    what: str, prefix: Path, own_runtime: Path, tmp_path: Path, snapshot: Path
) -> None:
    home = tmp_path / "home"
    environment = make_env(own_runtime, home, "dying")
    call(prefix, environment, "echo warm", tmp_path, snapshot)  # the session's mirror is up
    wait_records(home, 1)
    proc = _start(prefix, environment, GATED, tmp_path, snapshot)
    _wait_for_output(tmp_path / "out", b"a\n")
    until(lambda: _has_socket(proc.pid), "the wrapper's connection to its mirror")
    if what == "tmux-server":
        tmux("kill-server", root=own_runtime)
    else:
        for pid in _mirror_pids(own_runtime, "dying"):
            gone = os.pidfd_open(pid)
            os.kill(pid, signal.SIGKILL)
            select.select([gone], [], [], DEADLINE_S)  # dead, its sockets closed
            os.close(gone)
    (tmp_path / "go").touch()
    assert proc.wait(timeout=DEADLINE_S) == 3
    assert (tmp_path / "out").read_bytes() == b"a\nb\n"
    if what == "mirror":
        until(lambda: failure_count(home / "capture", own_runtime) >= 1, "a counted failure")
        assert "went away" in (home / "capture" / "wrapper.log").read_text()
    call(prefix, environment, "echo after-loss", tmp_path, snapshot)
    until(lambda: any(r["command"] == "echo after-loss" for r in records(home)), "next record")


def test_non_utf8_cwd(prefix: Path, env, tmp_path: Path, snapshot: Path) -> None:
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9"))
    odd.mkdir()
    expected, wrapped = both(
        "pwd -P | od -c | head -2",
        prefix=prefix,
        env=env,
        work=tmp_path,
        merged=True,
        snapshot=snapshot,
        cwd=odd,
    )
    assert wrapped == expected
    [record] = wait_records(Path(env["MCP_HARNESS_HOME"]), 1)
    assert record["cwd"] == str(tmp_path) + "/caf\\xe9"


def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(b")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo.extend(children.get(found[-1], []))
    return found


def test_killed_call_is_recorded_as_interrupted(
    prefix: Path, env, tmp_path: Path, snapshot: Path
) -> None:
    """Claude Code's timeout: SIGKILL to the wrapper and every descendant (tree-kill)."""
    proc = _start(prefix, env, "echo started; sleep 60", tmp_path, snapshot)
    _wait_for_output(tmp_path / "out", b"started\n")
    for pid in _tree(proc.pid):
        os.kill(pid, signal.SIGKILL)
    assert proc.wait(timeout=DEADLINE_S) == -9
    [record] = wait_records(Path(env["MCP_HARNESS_HOME"]), 1)
    assert (record["interrupted"], record["exit_code"], record["signal"]) == (True, None, None)
    assert record["output"] == "started\n"


def test_records_go_to_the_callers_home(prefix: Path, env, tmp_path: Path, snapshot: Path) -> None:
    other = {**env, "MCP_HARNESS_HOME": str(tmp_path / "other-home")}
    call(prefix, other, "echo elsewhere", tmp_path, snapshot)
    assert [r["command"] for r in wait_records(tmp_path / "other-home", 1)] == ["echo elsewhere"]


def test_pipe_stdout_runs_unchanged_and_is_recorded_without_output(
    prefix: Path, env, tmp_path: Path, snapshot: Path
) -> None:
    """Not Claude Code's file mode: nothing to read back, the call is still recorded."""
    line = composite("echo piped; echo err >&2; exit 2", tmp_path / "cwd", snapshot)
    runs = [
        subprocess.run(
            argv, env=env, cwd=tmp_path, capture_output=True, start_new_session=True, timeout=60
        )
        for argv in (["/bin/bash", "-c", line], [str(prefix), line])
    ]
    assert [(r.returncode, r.stdout, r.stderr) for r in runs] == [(2, b"piped\n", b"err\n")] * 2
    [record] = wait_records(Path(env["MCP_HARNESS_HOME"]), 1)
    assert (record["exit_code"], record["output"], record["output_bytes"]) == (2, "", None)


def test_a_stuck_mirror_never_holds_a_call(
    prefix: Path, own_runtime: Path, tmp_path: Path, snapshot: Path
) -> None:
    home = tmp_path / "home"
    environment = make_env(own_runtime, home, "stuck")
    call(prefix, environment, "echo warm", tmp_path, snapshot)
    wait_records(home, 1)
    [mirror] = _mirror_pids(own_runtime, "stuck")
    os.kill(mirror, signal.SIGSTOP)
    try:
        for n in range(3):
            assert call(prefix, environment, f"echo while-stopped-{n}", tmp_path, snapshot).out
    finally:
        os.kill(mirror, signal.SIGCONT)
    commands = [r["command"] for r in wait_records(home, 4)]
    assert commands[1:] == [f"echo while-stopped-{n}" for n in range(3)]


def test_a_secret_across_the_pane_cut_is_never_half_shown(
    prefix: Path, env, tmp_path: Path, runtime: Path, snapshot: Path
) -> None:
    """The pane shows the head and the tail of a long output; a key across the tail's start
    must be redacted whole, not shown from its middle on (where nothing looks like a key)."""
    from mcp_harness.capture.mirror import DISPLAY_CAP, DISPLAY_TAIL

    body = "Zx9" * 30
    after = DISPLAY_TAIL - 50  # the tail starts 55 bytes into the key line
    cmd = (
        f"head -c {2 * DISPLAY_CAP} /dev/zero | tr '\\0' a; echo; echo 'sk-ant-api03-{body}';"
        f" head -c {after} /dev/zero | tr '\\0' b; echo"
    )
    call(prefix, env, cmd, tmp_path, snapshot)
    [record] = wait_records(Path(env["MCP_HARNESS_HOME"]), 1)
    history = tmux("capture-pane", "-p", "-J", "-S", "-", "-t", record["pane"], root=runtime)
    assert "bbbb" in history.stdout and "output cut in this pane" in history.stdout
    assert body[:9] not in history.stdout
