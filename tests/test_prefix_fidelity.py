"""The prefix wrapper against `/bin/bash -c` on Claude Code's exact composite, byte for byte.

Every case and every parent-process scenario runs both ways, spawned as Claude Code spawns
(`tests/fidelity.py`), merged (one O_WRONLY file for stdout and stderr) and split (two
O_WRONLY|O_APPEND files); exit status, output files (including what background jobs write after
the call returned) and the cwd file must be identical. The calls really go through the session
mirror on a private tmux server: a recording failure would show in wrapper.log. Deliberate
difference, not tested here: `$PPID` is the wrapper (the process Claude Code spawned), since the
command runs as its child.
"""

from __future__ import annotations

import os
import resource
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mcp_harness.capture.mirror import spawn as spawn_mirror
from tests.fidelity import SNAPSHOT
from tests.fidelity import both as run_both

SESSION = "fidelity-session"
WRAPPER_CALLS = [0]
RECORDS_DEADLINE_S = 60.0


def both(cmd: str, **kwargs):
    WRAPPER_CALLS[0] += 1
    return run_both(cmd, **kwargs)


CASES = {
    "echo": "echo hello",
    "no-newline": "printf 'no newline'",
    "empty": "",
    "silent": "true",
    "false": "false",
    "exit-3": "echo x; exit 3",
    **{f"exit-{n}": f"exit {n}" for n in (0, 1, 2, 126, 127, 128, 255, 256, -1)},
    "heredoc-quoted": "cat <<'EOF'\n$HOME and `date`\nEOF",
    "heredoc-unquoted": "X=value\ncat <<EOF\nx=$X\nEOF",
    "nasty-quoting": "echo \"a'b\\\"c\" '$HOME' \\$x \"!bang\" 'it'\"'\"'s'",
    "tab": "printf 'a\\tb\\n'",
    "nul-bytes": "printf '\\0\\0x\\0'",
    "binary": "printf '\\x00\\x01\\x7f\\x80\\xfe\\xff'; head -c 70000 /dev/zero | tr '\\0' '\\377'",
    "invalid-utf8": "printf 'ok \\xff\\xfe\\xc3( end\\n'",
    "unicode": "echo 'héllo 世界 🎉'",
    "long-line-1mb": "head -c 1000000 /dev/zero | tr '\\0' 'a'",
    "output-10mb": "head -c 10000000 /dev/zero | tr '\\0' 'b'",
    "many-lines": "seq 1 200000",
    "yes-head-bytes": "yes | head -c 1000000",
    "reads-stdin": 'cat; read x; echo "read=$?"',
    "stdin-fd-type": "readlink /proc/self/fd/0",
    "read-timeout": "read -t 0; echo $?",
    "kill-9-self": "echo before; kill -9 $$",
    "kill-term-self": "kill -TERM $$",
    "kill-int-self": "kill -INT $$",
    "kill-hup-self": "echo bye; kill -HUP $$",
    "kill-usr1-self": "kill -USR1 $$",
    "kill-pipe-self": "kill -PIPE $$",
    "kill-segv-self": "ulimit -c 0; kill -SEGV $$",
    "trap-term": "trap 'echo got-term' TERM; kill -TERM $$; echo after",
    "trap-int": "trap 'echo got-int' INT; kill -INT $$; echo continued",
    "trap-exit": "trap 'echo bye' EXIT; echo hi",
    "trap-list": "trap -p; trap 'echo x' USR2; trap -p USR2",
    "sigpipe-yes": "yes | head -1",
    "sigpipe-seq": "seq 1000000 | head -2; echo ${PIPESTATUS[@]}",
    "sigpipe-python": 'python3 -c "import signal; print(signal.getsignal(signal.SIGPIPE))"',
    "signal-dispositions": "grep -E '^Sig(Ign|Blk|Cgt)' /proc/self/status",
    "shell-dispositions": "grep SigIgn /proc/$$/status",  # its SigBlk changes as it runs
    "background-job": "sleep 0.3 & echo started",
    "background-late-write": "(sleep 0.2; echo late) & echo early",
    "background-late-stderr": "(sleep 0.2; echo late-err >&2) & echo early",
    "background-server": "(sleep 0.2; for i in 1 2 3; do echo t$i; sleep 0.1; done) & echo up",
    "setsid-background": "setsid sh -c 'sleep 0.2; echo from-setsid' & echo parent",
    "nohup-background": "nohup sh -c 'sleep 0.2; echo nohup-late' 2>&1 & echo launched",
    "wait-job": "sleep 0.05 & wait; echo waited $?",
    "jobs": "sleep 0.5 & jobs | sed 's/[0-9][0-9]*//g'; wait",
    "cd": "cd /usr/share && pwd",
    "cd-fails": "cd /nonexistent-dir-xyz",
    "cd-tmp": "cd /tmp && pwd -P",
    "pwd": "pwd; echo $PWD",
    "ansi-colour": "printf '\\033[31mred\\033[0m\\n'; ls --color=auto /",
    "interleaved": "for i in $(seq 300); do echo o$i; echo e$i >&2; done",
    "env-passthrough": 'printf \'%s|\' "$FIDELITY_VAR" "$TMUX" "$TERM" "$CLAUDECODE"',
    "env-all": "env | sort",
    "shell-vars": 'echo "$0|$-|$SHLVL|$BASH_SUBSHELL|$#"',
    "bashpid": '[ "$BASHPID" = "$$" ] && echo same-pid',
    "session-leader": '[ "$(ps -o sid= -p $$ | tr -d " ")" = "$$" ] && echo leader',
    "group-leader": '[ "$(ps -o pgid= -p $$ | tr -d " ")" = "$$" ] && echo group-leader',
    "kill-own-group": "kill -0 -- -$$ && echo group-ok",
    "python-session": 'python3 -c "import os; print(os.getsid(0) == os.getpgrp())"',
    "ps-stat": "ps -o stat= -p $$",
    "isatty": "[ -t 0 ]; echo $?; [ -t 1 ]; echo $?; [ -t 2 ]; echo $?",
    "tty": "tty; echo $?",
    "dev-tty": "echo x > /dev/tty",
    "stty": "stty -a",
    "dev-stdout": "echo a; echo b > /dev/stdout; echo c >> /dev/stdout; echo d",
    "dev-stderr": "echo a; echo b > /dev/stderr; echo c",
    "stdout-kind": "stat -L -c %F /dev/stdout /dev/stderr",
    "stdout-seekable": 'python3 -c "import os; print(os.lseek(1, 0, os.SEEK_CUR) >= 0)"',
    "dd-fsync": "dd if=/dev/zero bs=1k count=4 conv=fsync status=none | wc -c",
    "dd-to-stdout": "echo 1; dd if=/dev/zero bs=512 count=2 of=/dev/stdout conv=fsync status=none",
    "fds": "ls /proc/self/fd; ls /proc/$$/fd",
    "no-leaked-fd": "echo x >&3; echo $?; echo y >&5; echo $?",
    "closed-stdout": "exec >&-; echo x; echo rc=$? >&2",
    "stderr-to-null": "exec 2>/dev/null; echo hidden >&2; echo shown",
    "dup-fd": "exec 3>&1; echo to3 >&3",
    "carriage-return": "printf 'a\\rb\\rc\\n'",
    "stderr-only": "echo only-err >&2",
    "not-found": "nonexistent_cmd_xyz --flag",
    "permission-denied": "touch nox; ./nox; echo $?; rm nox",
    "pipeline": "(echo a; echo b; echo c) | sort -r",
    "pipestatus": "false | true; echo ${PIPESTATUS[@]}",
    "pipefail": "set -o pipefail; false | true; echo $?",
    "function-return": "f() { return 4; }; f; echo $?",
    "set-e": "set -e; echo one; false; echo never",
    "set-u": "set -u; echo $UNSET_VAR_XYZ; echo never",
    "big-stderr": "head -c 200000 /dev/zero | tr '\\0' 'e' >&2",
    "timeout": "timeout 0.2 sleep 5; echo $?",
    "alt-screen": "printf '\\033[?1049h\\033[2Jhello\\033[?1049l'",
    "clear": "printf '\\033[2J\\033[H'; echo after-clear",
    "long-command": "echo " + "x" * 100_000,
    "exec": "exec echo replaced",
    "subshell-exit": "(exit 9); echo $?",
    "command-substitution-exit": "$(exit 7); echo $?",
    "arithmetic-error": ": $(( 1 / 0 )); echo never",
    "and-or": "true && false || echo recovered",
    "nested-eval": "eval 'echo nested'",
    "source-devnull": "source /dev/null; echo sourced",
    "tilde": "echo ~",
    "snapshot-alias": "snapalias",
    "snapshot-function": "snapfunc one two",
    "snapshot-var": 'echo "$SNAP_VAR"',
    "unset-function": "unset -f snapfunc; snapfunc",
    "extglob-off": "shopt extglob",
    "options": "set -o | sort",
    "umask": "umask; umask -S",
    "umask-file": "umask 077; f=$(mktemp -u -p .); touch $f; stat -c %a $f; rm -f $f",
    "ulimits": "ulimit -a",
    "nice": "nice; awk '{print $19}' /proc/self/stat",
    "python-big-write": "python3 -c 'import sys; sys.stdout.write(\"x\" * 70000)'",
    "awk-loop": "awk 'BEGIN{for(i=0;i<1000;i++) print i}'",
    "grep-no-match": "grep nothing /dev/null",
    "ls-missing": "ls /nonexistent-xyz",
    "sleep-then-print": "sleep 0.05; echo after",
    "slow-lines": "for i in 1 2 3; do echo $i; sleep 0.01; done",
    "word-splitting": 'a="1  2"; printf "[%s]" $a "$a"',
    "glob": "cd /usr && echo l*",
    "history-off": "echo !!; set -o | grep history",
    "printf-escape": "printf '%b' 'a\\x41\\101\\n'",
    "cwd-file-path": 'echo "$0" >/dev/null; ls claude-cwd 2>&1',
}


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("snapshots") / "snapshot-bash-1-fidelity.sh"
    path.write_text(SNAPSHOT)
    return path


@pytest.fixture(scope="module")
def env(runtime: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("fidelity-home")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
    environment.update(
        {
            "MCP_HARNESS_HOME": str(home),
            "MCP_HARNESS_RUNTIME_DIR": str(runtime),
            "SHELL": "/bin/bash",
            "FIDELITY_VAR": "two\nlines 'and' $dollar",
            "TERM": "xterm-256color",
            "CLAUDECODE": "1",
            "CLAUDE_CODE_SESSION_ID": SESSION,
        }
    )
    spawn_mirror(runtime, SESSION)  # the tmux server starts here, not from inside a case
    yield environment
    log = home / "capture" / "wrapper.log"
    assert not log.exists(), log.read_text()
    commands = home / "capture" / "commands.jsonl"
    deadline = time.monotonic() + RECORDS_DEADLINE_S
    while _lines(commands) < WRAPPER_CALLS[0] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _lines(commands) == WRAPPER_CALLS[0]  # every call recorded, once


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def check(expected, wrapped, name: str) -> None:
    assert wrapped.status == expected.status, f"exit status differs for {name}"
    assert wrapped.out == expected.out, f"stdout file differs for {name}"
    assert wrapped.err == expected.err, f"stderr file differs for {name}"
    assert wrapped.cwd_file == expected.cwd_file, f"cwd file differs for {name}"


MODES = pytest.mark.parametrize("merged", [True, False], ids=["merged", "split"])


@MODES
@pytest.mark.parametrize("name", list(CASES))
def test_case(name: str, merged: bool, prefix: Path, env, snapshot: Path, tmp_path: Path) -> None:
    expected, wrapped = both(
        CASES[name], prefix=prefix, env=env, work=tmp_path, merged=merged, snapshot=snapshot
    )
    check(expected, wrapped, name)


PROBE = (
    "umask; ulimit -a; nice; awk '{print $19}' /proc/self/stat;"
    " grep -E '^Sig(Ign|Blk)' /proc/self/status; grep SigIgn /proc/$$/status"
)


def _umask() -> None:
    os.umask(0o027)


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _, hard = resource.getrlimit(resource.RLIMIT_STACK)
    resource.setrlimit(resource.RLIMIT_STACK, (4 * 1024 * 1024, hard))


def _nice() -> None:
    os.nice(5)


def _ignore_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGQUIT, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(signum, signal.SIG_IGN)


def _block_usr1() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})


SCENARIOS: dict[str, tuple[Callable[[], None], str]] = {
    "umask": (_umask, PROBE + "; touch f-umask; stat -c %a f-umask; rm f-umask"),
    "ulimit": (_limits, PROBE + "; ulimit -n; ulimit -c; ulimit -s"),
    "nice": (_nice, PROBE + "; nice -n 1 nice"),
    "ignored-sigint": (
        _ignore_signals,
        PROBE + "; kill -INT $$; echo survived-int; trap 'echo t' INT; kill -INT $$; echo still",
    ),
    "blocked-signal": (_block_usr1, PROBE + "; kill -USR1 $$; echo blocked-usr1"),
}


@MODES
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_parent_process_scenario(
    name: str, merged: bool, prefix: Path, env, snapshot: Path, tmp_path: Path
) -> None:
    preexec, cmd = SCENARIOS[name]
    expected, wrapped = both(
        cmd,
        prefix=prefix,
        env=env,
        work=tmp_path,
        merged=merged,
        snapshot=snapshot,
        preexec=preexec,
    )
    check(expected, wrapped, name)


@MODES
def test_deleted_cwd(merged: bool, prefix: Path, env, snapshot: Path, tmp_path: Path) -> None:
    """Claude Code's tracked cwd was removed: the command runs there (not in `/`) in both."""
    gone = tmp_path / "removed"

    def enter_and_remove() -> None:
        os.chdir(gone)
        os.rmdir(gone)

    expected, wrapped = both(
        "pwd; pwd -P; echo x > f; echo rc=$?; ls; cd .. && pwd",
        prefix=prefix,
        env=env,
        work=tmp_path,
        merged=merged,
        snapshot=snapshot,
        preexec=enter_and_remove,
        before_each=gone.mkdir,
    )
    check(expected, wrapped, "deleted-cwd")
    assert b"x > f" not in expected.out  # the probe ran


@MODES
def test_background_job_writes_late(
    merged: bool, prefix: Path, env, snapshot: Path, tmp_path: Path
) -> None:
    """`server &`: the job outlives the call and keeps writing into Claude Code's file."""
    cmd = (
        "python3 -c 'import sys, time\n"
        "for i in range(3):\n"
        '    time.sleep(0.1); print("request", i, flush=True)\n'
        "' & echo started"
    )
    expected, wrapped = both(
        cmd, prefix=prefix, env=env, work=tmp_path, merged=merged, snapshot=snapshot
    )
    check(expected, wrapped, "background-late")
    assert expected.out.endswith(b"request 2\n")


@MODES
def test_dev_stdout_and_fsync(merged: bool, prefix: Path, env, snapshot: Path, tmp_path: Path):
    cmd = (
        "echo one; echo two > /dev/stdout; echo three >> /dev/stdout;"
        " dd if=/dev/zero bs=100 count=1 of=/dev/stdout conv=fsync status=none | true;"
        " python3 -c 'import os; os.write(1, b\"raw\\n\"); os.fsync(1)'; echo err >/dev/stderr"
    )
    expected, wrapped = both(
        cmd, prefix=prefix, env=env, work=tmp_path, merged=merged, snapshot=snapshot
    )
    check(expected, wrapped, "dev-stdout")


def _running(marker: bytes) -> bool:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/cmdline").read_bytes() == b"sleep\0" + marker + b"\0":
                    return True
            except OSError:
                continue
    return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1])
def test_signal_to_the_spawned_process(
    signum: signal.Signals, prefix: Path, env, snapshot: Path, tmp_path: Path
) -> None:
    """A signal sent to the process Claude Code spawned, while the command runs a child."""
    marker = f"0.5{os.getpid()}{int(signum)}".encode()

    def send(proc) -> None:
        deadline = time.monotonic() + 30
        while not _running(marker):
            assert time.monotonic() < deadline, "the command never started its sleep"
            time.sleep(0.005)
        os.kill(proc.pid, signum)

    cmd = f"trap 'echo trapped-usr1' USR1; echo start; sleep {marker.decode()}; echo after $?"
    expected, wrapped = both(
        cmd, prefix=prefix, env=env, work=tmp_path, merged=True, snapshot=snapshot, during=send
    )
    check(expected, wrapped, signum.name)


def test_the_comparison_can_fail(prefix: Path, env, snapshot: Path, tmp_path: Path) -> None:
    """The harness sees a difference when there is one (here: a umask only one side has)."""
    runs = []

    def umask_on_second_run() -> None:
        if len(runs) == 2:
            os.umask(0o027)

    expected, other = both(
        "umask",
        prefix=prefix,
        env=env,
        work=tmp_path,
        merged=True,
        snapshot=snapshot,
        before_each=lambda: runs.append(1),
        preexec=umask_on_second_run,
    )
    assert expected.out != other.out


def test_case_count() -> None:
    assert len(CASES) >= 90
