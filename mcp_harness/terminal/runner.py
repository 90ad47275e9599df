"""The resident runner: lives in one tmux pane and runs one job at a time, exactly, for
`client.run` (validators' checks; Claude Code's own commands run in the prefix wrapper).

A job's command runs as `<shell> -c <cmd>` on pipes (never typed into the pane), with the
caller's cwd and environment, stdin from /dev/null and a new session (no controlling tty), so
its bytes and exit status are what `bash -c` gives. Output goes to the caller as it arrives and
is echoed to the pane (capped) so the screen shows the work. The runner returns when the shell
exits (background jobs do not hold it, as in Claude Code), kills the whole process tree if the
caller dies or asks, and captures the screen before and after behind an OSC-title barrier so a
capture is never stale. A job that fails inside the runner is logged to `<pane dir>/runner.log`.
Started by `pool.spawn` as
`python -I -m mcp_harness.terminal.runner <pane dir> <runtime root> <ready channel>`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from mcp_harness.terminal import protocol
from mcp_harness.terminal.pool import SESSION
from mcp_harness.terminal.tmux import ControlClient

IDLE_EXIT_S = 30 * 60
DISPLAY_CAP = 256 * 1024
DISPLAY_TAIL = 16 * 1024
LOG = "runner.log"
ACCEPTED = b"A"
SCREENS = b"S"


class Runner:
    def __init__(self, directory: Path, root: Path) -> None:
        self.directory = directory
        self.pane = os.environ.get("TMUX_PANE", "")
        self.control = ControlClient(root, SESSION)
        self.screen = sys.stdout.buffer

    def show(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            self.screen.write(data)
            self.screen.flush()

    def capture(self) -> str:
        return self.control.capture_drawn(self.pane, self.show)

    def serve(self, conn: socket.socket) -> None:
        reader = protocol.FrameReader()
        job: dict | None = None
        env: dict[bytes, bytes] | None = None
        while job is None or env is None:
            data = conn.recv(65536)
            if not data:
                return
            for kind, payload in reader.feed(data):
                if kind == protocol.JOB:
                    job = json.loads(payload)
                elif kind == protocol.ENV:
                    env = protocol.decode_env(payload)
        protocol.send(conn, ACCEPTED, b"")
        Job(self, conn, reader, job, env).run()


class Job:
    def __init__(
        self,
        runner: Runner,
        conn: socket.socket,
        reader: protocol.FrameReader,
        job: dict,
        env: dict[bytes, bytes],
    ) -> None:
        self.runner, self.conn, self.reader = runner, conn, reader
        self.cmd: str = job["cmd"]
        self.cwd: str = job["cwd"]
        self.merged: bool = bool(job.get("merged"))
        self.env = env
        self.client_alive = True
        self.shown = 0
        self.tail = bytearray()
        self.doomed: set[int] = set()

    def run(self) -> None:
        before = self.runner.capture()
        self.runner.show(b"\x1b[1m$ " + self.cmd.encode("utf-8", "replace") + b"\x1b[0m\n")
        returncode = self.execute()
        if self.tail:
            self.runner.show(b"\n\x1b[2m[... output cut in this pane ...]\x1b[0m\n" + self.tail)
        status = (
            f"[exit {returncode}]"
            if returncode > 0
            else (f"[killed by signal {-returncode}]" if returncode < 0 else "")
        )
        self.runner.show(b"\x1b[0m" + (f"\x1b[2m{status}\x1b[0m\n".encode() if status else b""))
        after = self.runner.capture()
        code, sig = (returncode, None) if returncode >= 0 else (None, -returncode)
        self.reply(SCREENS, json.dumps({"screen_before": before, "screen_after": after}).encode())
        self.reply(protocol.EXIT, json.dumps({"code": code, "signal": sig}).encode())

    def reply(self, kind: bytes, payload: bytes) -> None:
        if self.client_alive:
            try:
                protocol.send(self.conn, kind, payload)
            except OSError:
                self.client_alive = False

    def output(self, kind: bytes, data: bytes) -> None:
        self.reply(kind, data)
        if self.shown < DISPLAY_CAP:
            part = data[: DISPLAY_CAP - self.shown]
            self.shown += len(part)
            self.runner.show(part)
            data = data[len(part) :]
        if data:
            self.tail = (self.tail + data)[-DISPLAY_TAIL:]

    def execute(self) -> int:
        shell = _shell(self.env)
        try:
            proc = subprocess.Popen(
                [shell, "-c", self.cmd],
                executable=shell,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if self.merged else subprocess.PIPE,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            self.output(protocol.STDERR, f"mcp-harness runner: {exc}\n".encode())
            return 126
        pidfd = os.pidfd_open(proc.pid)
        streams = {proc.stdout.fileno(): protocol.STDOUT}
        if proc.stderr is not None:
            streams[proc.stderr.fileno()] = protocol.STDERR
        selector = selectors.DefaultSelector()
        for fd in streams:
            selector.register(fd, selectors.EVENT_READ)
        selector.register(self.conn, selectors.EVENT_READ)
        selector.register(pidfd, selectors.EVENT_READ)
        try:
            while True:
                for key, _ in selector.select():
                    fd = key.fd
                    if fd == pidfd:
                        proc.wait()
                        self.drain(streams)
                        signal_all(sorted(self.doomed), signal.SIGKILL)
                        await_gone(self.doomed)
                        return proc.returncode
                    if fd in streams:
                        chunk = os.read(fd, 65536)
                        if chunk:
                            self.output(streams[fd], chunk)
                        else:
                            selector.unregister(fd)
                    else:
                        self.from_client(proc, selector)
        finally:
            selector.close()
            os.close(pidfd)
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()

    def drain(self, streams: dict[int, bytes]) -> None:
        """After the shell exits, take what is already in the pipes; later output is dropped."""
        for fd, kind in streams.items():
            os.set_blocking(fd, False)
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except (BlockingIOError, OSError):
                    break
                if not chunk:
                    break
                self.output(kind, chunk)

    def from_client(self, proc: subprocess.Popen, selector: selectors.BaseSelector) -> None:
        try:
            data = self.conn.recv(4096)
        except OSError:
            data = b""
        if not data:  # the caller died (Claude Code SIGKILLs it on timeout or interrupt)
            self.client_alive = False
            selector.unregister(self.conn)
            self.interrupt(proc.pid, signal.SIGKILL)
            return
        for kind, payload in self.reader.feed(data):
            if kind == protocol.KILL:
                self.interrupt(proc.pid, int(payload or b"15"))

    def interrupt(self, pid: int, signum: int) -> None:
        """Signal the whole tree; whatever survives it is killed once the shell has exited."""
        victims = descendants(pid)
        self.doomed.update(victims)
        signal_all([*victims, -pid], signum)


def _shell(env: dict[bytes, bytes]) -> str:
    """The caller's bash or zsh (as Claude Code would pick), else /bin/bash."""
    shell = env.get(b"SHELL", b"").decode(errors="replace")
    if os.path.basename(shell) in ("bash", "zsh") and os.access(shell, os.X_OK):
        return shell
    return "/bin/bash"


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (setsid children included, unlike killpg)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def signal_all(pids: list[int], signum: int) -> None:
    """Send `signum` to each pid (a negative pid is a process group); the gone are skipped."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if pid < 0:
                os.killpg(-pid, signum)
            else:
                os.kill(pid, signum)


def await_gone(pids: set[int], timeout: float = 2.0) -> None:
    """Block until every pid has exited (or `timeout`): the caller hears the exit status only
    once the killed tree is really gone. A pidfd turns readable when its process exits."""
    fds = []
    for pid in pids:
        try:
            fds.append(os.pidfd_open(pid))
        except (ProcessLookupError, OSError):
            continue  # already gone
    deadline = time.monotonic() + timeout
    try:
        while fds:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            ready, _, _ = select.select(fds, [], [], remaining)
            for fd in ready:
                fds.remove(fd)
                os.close(fd)
    finally:
        for fd in fds:
            os.close(fd)


def main(argv: list[str]) -> int:
    directory, root, channel = Path(argv[0]), Path(argv[1]), argv[2]
    path = directory / "sock"
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(8)
    runner = Runner(directory, root)
    runner.control.command(f"wait-for -S {channel}")
    runner.show(b"\x1b[2mmcp-harness terminal: commands run here appear below\x1b[0m\n")
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    while True:
        if not selector.select(timeout=IDLE_EXIT_S):
            if _retire(directory, path):
                return 0
            continue
        conn, _ = listener.accept()
        with conn:
            try:
                runner.serve(conn)
            except Exception:  # one bad job must not take the pane down
                _log(directory, traceback.format_exc())


def _retire(directory: Path, path: Path) -> bool:
    """Idle: exit only if no caller holds the pane (it may be connecting right now)."""
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    path.unlink(missing_ok=True)
    return True


def _log(directory: Path, text: str) -> None:
    with contextlib.suppress(OSError), open(directory / LOG, "a", encoding="utf-8") as handle:
        handle.write(f"{datetime.now(UTC).isoformat()} runner {directory}: {text}\n")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
