"""Run one Claude Code Bash call two ways, spawned exactly as Claude Code spawns: `/bin/bash -c
<composite>` and `<prefix> <composite>`, and return what Claude Code would see of each.

Claude Code's spawn (reference/claude-code.md section 4): a new session, a socket on stdin, and
stdout and stderr on its output file; here `merged` = one O_WRONLY regular file for both, `split` =
two O_WRONLY|O_APPEND regular files. A call is over when the spawned process has exited and no
process holds the output files open any more (background jobs that write late included).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SHELL = "/bin/bash"
SNAPSHOT = """\
alias snapalias='echo from-alias'
snapfunc() { echo "from-function $*"; }
export SNAP_VAR='snap value'
"""
SETTLE_S = 30.0


def composite(cmd: str, cwd_file: Path | str, snapshot: Path | str) -> str:
    """Claude Code's composite for `cmd`: the model's command single-quoted as one `eval` word."""
    quoted = "'" + cmd.replace("'", "'\"'\"'") + "'"
    return (
        f"source {snapshot} 2>/dev/null || true && "
        "{ shopt -u extglob || setopt NO_EXTENDED_GLOB; } >/dev/null 2>&1 || true && "
        f"eval {quoted} < /dev/null && pwd -P >| {cwd_file}"
    )


@dataclass(frozen=True)
class Seen:
    """What Claude Code gets from one call: exit status, output file(s), the cwd file."""

    status: int
    out: bytes
    err: bytes | None
    cwd_file: bytes | None


def spawn(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    out_dir: Path,
    merged: bool,
    cwd_file: Path,
    preexec: Callable[[], None] | None = None,
    during: Callable[[subprocess.Popen], None] | None = None,
    timeout: float = 60,
) -> Seen:
    out_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = out_dir / "out", out_dir / "err"
    if merged:
        out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        err = out
    else:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND
        out, err = os.open(out_path, flags, 0o600), os.open(err_path, flags, 0o600)
    ours, theirs = socket.socketpair()
    try:
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=theirs.fileno(),
            stdout=out,
            stderr=err,
            start_new_session=True,
            preexec_fn=preexec,
        )
    finally:
        theirs.close()
        os.close(out)
        if not merged:
            os.close(err)
    try:
        if during:
            during(proc)
        status = proc.wait(timeout=timeout)
    finally:
        ours.close()
    settle([out_path] if merged else [out_path, err_path])
    return Seen(
        status,
        out_path.read_bytes(),
        None if merged else err_path.read_bytes(),
        cwd_file.read_bytes() if cwd_file.exists() else None,
    )


def settle(paths: list[Path], timeout: float = SETTLE_S) -> None:
    """Wait until no process holds any of `paths` open (background jobs have finished writing)."""
    wanted = {str(p.resolve()) for p in paths}
    deadline = time.monotonic() + timeout
    while holders(wanted):
        if time.monotonic() > deadline:
            raise AssertionError(f"{sorted(wanted)} still open after {timeout} s")
        time.sleep(0.005)


def holders(wanted: set[str]) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{entry}/fd/{fd}")
            except OSError:
                continue
            if target in wanted:
                found.append(int(entry))
                break
    return found


def both(
    cmd: str,
    *,
    prefix: Path,
    env: dict[str, str],
    work: Path,
    merged: bool,
    snapshot: Path,
    cwd: Path | None = None,
    preexec: Callable[[], None] | None = None,
    before_each: Callable[[], None] | None = None,
    during: Callable[[subprocess.Popen], None] | None = None,
) -> tuple[Seen, Seen]:
    """(plain bash, wrapper) on the identical composite, cwd, env and parent attributes. The cwd
    file path is the same for both, so a command that prints it cannot tell them apart."""
    cwd_file = work / "claude-cwd"
    results = []
    for name, argv_head in (("bash", [SHELL]), ("wrapper", [str(prefix)])):
        cwd_file.unlink(missing_ok=True)
        if before_each:
            before_each()
        line = composite(cmd, cwd_file, snapshot)
        argv = [*argv_head, "-c", line] if name == "bash" else [*argv_head, line]
        results.append(
            spawn(
                argv,
                env=env,
                cwd=cwd or work,
                out_dir=work / "io",
                merged=merged,
                cwd_file=cwd_file,
                preexec=preexec,
                during=during,
            )
        )
    return results[0], results[1]
