"""The capture mirror: one per Claude Code session id, resident in that session's tmux pane.

The prefix wrapper (`prefix.c`) runs each Bash command itself and only tells the mirror about
it: frames `C` (the composite), `D` (the cwd, raw bytes), `V` (the environment), `B` (JSON:
start time and where the command's output starts in Claude Code's files, with read-only
descriptors of those files attached) when the call begins, and `F` (JSON: exit status,
duration, where the output ends) when it ends. A connection that closes without `F` is a call
whose wrapper was killed (Claude Code's timeout or interrupt). For each finished call the mirror
captures its pane, shows the command and its output read back from the file (redacted, capped),
captures again behind the title barrier, and appends one record to `commands.jsonl`. Nothing here
can change a command: it has already run when the mirror looks at it.

Layout under the runtime dir: `capture/<key>.sock` (the mirror), `capture/<key>.lock` (held while
one is being started), `capture/failures.jsonl` (calls whose recording failed). `<key>` is the
session id (`none` without one). The wrapper starts a missing mirror through
`adopt <runtime> <key> <fd>`, which hands the first call's connection over once it listens.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import selectors
import shlex
import signal
import socket
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mcp_harness.capture.composite import model_command
from mcp_harness.capture.records import (
    COMMANDS,
    OUTPUT_LIMIT,
    CommandRecord,
    append_records,
    capture_dir,
    log_failure,
)
from mcp_harness.redaction import redact
from mcp_harness.terminal import protocol, tmux
from mcp_harness.terminal.pool import prepare
from mcp_harness.terminal.tmux import ControlClient, TmuxError

SESSION = "capture"
IDLE_EXIT_S = 30 * 60
KEEP = OUTPUT_LIMIT * 4  # bytes read back for the record (UTF-8 text of at most OUTPUT_LIMIT)
DISPLAY_CAP = 64 * 1024
COMMAND_CAP = 4 * 1024  # characters of the command shown in the pane (a heredoc can be huge)
DISPLAY_TAIL = 16 * 1024
TAIL_MARGIN = 4 * 1024  # read before the tail, so a secret across its start is redacted whole
HANDOVER = b"H"


def sock_path(runtime: Path, key: str) -> Path:
    return runtime / "capture" / f"{key}.sock"


@dataclass
class Call:
    """One wrapper connection and what it has said so far."""

    sock: socket.socket
    reader: protocol.FrameReader = field(default_factory=protocol.FrameReader)
    fds: list[int] = field(default_factory=list)
    composite: bytes = b""
    cwd: bytes = b""
    env: dict[str, str] = field(default_factory=dict)
    begin: dict | None = None
    finish: dict | None = None
    handed: list[int] = field(default_factory=list)

    def close(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()
        with contextlib.suppress(OSError):
            self.sock.close()


class Mirror:
    def __init__(self, runtime: Path, key: str) -> None:
        self.runtime, self.key = runtime, key
        self.pane = os.environ.get("TMUX_PANE", "")
        self.control: ControlClient | None = ControlClient(runtime, SESSION)
        self.screen = sys.stdout.buffer

    def show(self, data: bytes) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.screen.write(data)
            self.screen.flush()

    def capture(self) -> str:
        """The pane's screen once tmux has drawn everything written so far ("" without tmux)."""
        if self.control is None:
            return ""
        try:
            return self.control.capture_drawn(self.pane, self.show)
        except (TmuxError, OSError):
            self.lose_tmux()
            return ""

    def lose_tmux(self) -> None:
        """tmux is gone: calls still running are recorded, without screens."""
        if self.control is not None:
            self.control.close()
            self.control = None

    def record(self, call: Call) -> None:
        begin, finish = call.begin or {}, call.finish
        env = call.env
        composite = call.composite.decode("utf-8", "replace")
        command = model_command(composite)
        head, total, tail = _output(call, begin, finish)
        before = self.capture()
        # Redact before cutting, so that a secret across a cut is never half shown.
        shown = _safe(command.encode())
        if len(shown) > COMMAND_CAP:
            shown = shown[:COMMAND_CAP] + " […]".encode()
        self.show(b"\x1b[1m$ " + shown + b"\x1b[0m\n")
        if total is None:
            self.show(b"\x1b[2m[output not captured: not a regular file]\x1b[0m\n")
        else:
            self.show(_safe(head)[:DISPLAY_CAP])
            if total > DISPLAY_CAP:
                cut = b"\n\x1b[2m[... output cut in this pane ...]\x1b[0m\n"
                self.show(cut + _safe(tail)[-DISPLAY_TAIL:])
        code, sig = _status(finish)
        status = (
            "[interrupted]"
            if finish is None
            else f"[exit {code}]"
            if code
            else f"[killed by signal {sig}]"
            if sig
            else ""
        )
        self.show(b"\x1b[0m" + (f"\x1b[2m{status}\x1b[0m\n".encode() if status else b""))
        after = self.capture()
        started = float(begin.get("start", time.time()))
        duration = finish["ns"] / 1e6 if finish else (time.time() - started) * 1000
        record: CommandRecord = {
            "kind": "command",
            "id": uuid.uuid4().hex,
            "ts": datetime.fromtimestamp(started, UTC).isoformat(timespec="milliseconds"),
            "duration_ms": round(duration, 3),
            "session_id": env.get("CLAUDE_CODE_SESSION_ID"),
            "cwd": call.cwd.decode("utf-8", "backslashreplace"),
            "command": command,
            "command_raw": composite,
            "exit_code": code,
            "signal": sig,
            "interrupted": finish is None,
            "output": redact(head.decode("utf-8", "replace"))[:OUTPUT_LIMIT],
            "output_bytes": total,
            "screen_before": before,
            "screen_after": after,
            "pane": self.pane,
        }
        append_records(COMMANDS, [record], capture_dir(env))


def _safe(data: bytes) -> bytes:
    """Redacted bytes for the pane (undecodable bytes pass through as they are)."""
    return redact(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def _status(finish: dict | None) -> tuple[int | None, int | None]:
    if finish is None:
        return None, None
    if finish.get("signal"):
        return None, int(finish["signal"])
    return int(finish["code"]), None


def _output(call: Call, begin: dict, finish: dict | None) -> tuple[bytes, int | None, bytes]:
    """(first KEEP bytes, total size or None when not readable, the last DISPLAY_TAIL +
    TAIL_MARGIN bytes) of what the command wrote; stdout then stderr when they are two files."""
    fds = list(call.fds)
    parts = []
    for name in ("out", "err"):
        info = begin.get(name) or {}
        if not info.get("file") or not fds:
            if name == "out":
                return b"", None, b""
            continue
        fd = fds.pop(0)
        start = int(info.get("start", 0))
        end = int(finish[f"{name}_end"]) if finish else os.fstat(fd).st_size
        parts.append((fd, start, max(end - start, 0)))
    total = sum(size for _, _, size in parts)
    head, tail = bytearray(), b""
    for fd, start, size in parts:
        if len(head) < KEEP:
            head += os.pread(fd, min(size, KEEP - len(head)), start)
    if total > DISPLAY_CAP:
        fd, start, size = parts[-1]
        window = DISPLAY_TAIL + TAIL_MARGIN
        tail = os.pread(fd, min(size, window), start + max(size - window, 0))
    return bytes(head), total, tail


class Server:
    """The mirror's event loop: accepts calls and hand-overs, records each call as it ends."""

    def __init__(self, runtime: Path, key: str, listener: socket.socket) -> None:
        self.mirror = Mirror(runtime, key)
        self.listener = listener
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ)
        assert self.mirror.control is not None
        self.tmux_watch = os.pidfd_open(self.mirror.control.pid)  # readable once tmux is gone
        self.selector.register(self.tmux_watch, selectors.EVENT_READ)
        self.calls: dict[int, Call] = {}

    def add(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        call = Call(sock)
        self.calls[sock.fileno()] = call
        self.selector.register(sock, selectors.EVENT_READ)

    def read(self, call: Call) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(call.sock, 1 << 16, 4)
        except BlockingIOError:
            return
        except OSError:
            data, fds = b"", []
        call.fds.extend(fds)
        frames = call.reader.feed(data) if data else []
        for kind, payload in frames:
            if kind == protocol.COMPOSITE:
                call.composite = payload
            elif kind == protocol.CWD:
                call.cwd = payload
            elif kind == protocol.ENV:
                call.env = {
                    k.decode(errors="replace"): v.decode(errors="replace")
                    for k, v in protocol.decode_env(payload).items()
                }
            elif kind == protocol.BEGIN:
                call.begin = json.loads(payload)
            elif kind == protocol.FINISH:
                call.finish = json.loads(payload)
            elif kind == HANDOVER:
                call.handed.extend(call.fds)
                call.fds.clear()
        if call.handed:
            for fd in call.handed:
                self.add(socket.socket(fileno=fd))
            call.handed.clear()
            self.drop(call)
            call.close()
        elif call.finish is not None or not data:
            self.drop(call)
            if call.begin is not None:
                self.record(call)
            else:
                call.close()

    def record(self, call: Call) -> None:
        try:
            self.mirror.record(call)
        except Exception:
            log_failure(
                f"mirror: {traceback.format_exc(limit=3)}",
                capture_dir(call.env),
                self.mirror.runtime,
            )
        finally:
            call.close()

    def drop(self, call: Call) -> None:
        self.calls.pop(call.sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(call.sock)

    def run(self, path: Path) -> int:
        listening = True
        while listening or self.calls:
            events = self.selector.select(timeout=IDLE_EXIT_S if listening else 5.0)
            if not events and not self.calls:
                if not listening or _retire(self.mirror.runtime, self.mirror.key, path):
                    break
                continue
            for key, _ in events:
                if key.fileobj == self.tmux_watch:
                    self.selector.unregister(self.tmux_watch)
                    self.mirror.lose_tmux()
                elif key.fileobj is self.listener:
                    with contextlib.suppress(BlockingIOError):
                        self.add(self.listener.accept()[0])
                else:
                    call = self.calls.get(key.fd)
                    if call is not None:
                        self.read(call)
            if listening and self.mirror.control is None:  # tmux gone: let a new pane take over
                listening = False
                self.selector.unregister(self.listener)
                _unlink_if_ours(path, self.listener)
                self.listener.close()
        return 0


def _retire(runtime: Path, key: str, path: Path) -> bool:
    """Idle: stop unless the mirror is being (re)started right now."""
    fd = os.open(runtime / "capture" / f"{key}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    path.unlink(missing_ok=True)
    return True


def _unlink_if_ours(path: Path, listener: socket.socket) -> None:
    with contextlib.suppress(OSError):
        if os.stat(path).st_ino == os.fstat(listener.fileno()).st_ino:
            path.unlink()


def serve(runtime: Path, key: str, channel: str) -> int:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # outlive the pane to finish what was started
    path = sock_path(runtime, key)
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
    listener.setblocking(False)
    server = Server(runtime, key, listener)
    assert server.mirror.control is not None
    server.mirror.control.command(f"wait-for -S {channel}")
    server.mirror.show(b"\x1b[2mmcp-harness: this Claude Code session's commands\x1b[0m\n")
    return server.run(path)


def self_argv(*args: str) -> list[str]:
    """Run this module with this interpreter and exactly this package (`-I` ignores
    PYTHONPATH, so the package's directory is passed explicitly)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv.pop(1)); "
        "from mcp_harness.capture.mirror import main; sys.exit(main(sys.argv[1:]))"
    )
    return [sys.executable, "-I", "-c", code, str(Path(__file__).resolve().parents[2]), *args]


def spawn(runtime: Path, key: str) -> None:
    """Open the session's pane with a mirror in it; return once it listens."""
    prepare(runtime)
    channel = f"mirror-{uuid.uuid4().hex}"
    command = "exec " + shlex.join(self_argv("serve", str(runtime), key, channel))
    tmux.open_window(runtime, SESSION, f"cc-{key[:8]}", command)
    waited = tmux.run("wait-for", channel, root=runtime)
    if waited.returncode != 0:
        raise TmuxError(f"the mirror did not start: {waited.stderr.strip()}")


def _connect(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


def adopt(runtime: Path, key: str, fd: int) -> int:
    """Start the session's mirror if it is not running, then hand it the call on `fd`."""
    try:
        directory = runtime / "capture"
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(runtime, 0o700)
        lock = os.open(directory / f"{key}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            sock = _connect(sock_path(runtime, key))
            if sock is None:
                spawn(runtime, key)
                sock = _connect(sock_path(runtime, key))
            if sock is None:
                raise TmuxError("the mirror started but does not accept connections")
            with sock:
                socket.send_fds(sock, [protocol.pack(HANDOVER, b"")], [fd])
        finally:
            os.close(lock)
    except (OSError, TmuxError) as exc:
        log_failure(f"starting the session's mirror: {exc}", capture_dir(), runtime)
        return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "serve":
        return serve(Path(argv[1]), argv[2], argv[3])
    if len(argv) == 4 and argv[0] == "adopt":
        return adopt(Path(argv[1]), argv[2], int(argv[3]))
    print(
        "usage: mirror serve <runtime> <key> <channel> | adopt <runtime> <key> <fd>",
        file=sys.stderr,
    )
    return 2
