"""The pane pool: a private tmux server whose panes each run a resident runner.

Layout under the runtime dir (`paths.runtime_dir()`, mode 0700):
`tmux.sock` (the server), `tmux.conf`, and `pool/<n>/` per pane with `lock` (held with flock by
whoever is using the pane, so concurrent callers never share one; the kernel drops it when the
holder dies) and `sock` (the runner's Unix socket). A caller claims the first pane whose lock
it can take and whose runner answers; if none, it makes the next `pool/<n>` and starts a runner
there.
A caller that must leave nothing behind (a module run) claims with a `Panes` owner and closes
it when done: the runners it started end, those of others stay.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import socket
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from mcp_harness.paths import check_private_dir, runtime_dir
from mcp_harness.terminal import protocol, tmux
from mcp_harness.terminal.tmux import TmuxError, socket_path

SESSION = "pool"
MAX_PANES = 64
SPAWN_TIMEOUT_S = 5.0
SPAWN_ATTEMPTS = 3
CONF = """set -g history-limit 10000
set -g default-size 200x50
set -g status off
set -g remain-on-exit off
set -g exit-empty on
"""


@dataclass
class Claim:
    """A pane held by this process: the lock fd and a connected socket to its runner."""

    directory: Path
    lock_fd: int
    sock: socket.socket
    owner: Panes | None = None

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(OSError):
            os.close(self.lock_fd)
        if self.owner is not None:
            self.owner.released(self)


@dataclass
class Panes:
    """The pool panes one owner (a run) started and the claims it holds, so that `close()`
    can end its runners: it stops the jobs of claims still held (a cancelled check), then kills
    each started pane nobody holds; one still held, or started after closing, ends when it is
    released. A pane another process holds stays theirs (its runner idles out)."""

    started: dict[Path, str] = field(default_factory=dict)  # pane dir -> tmux pane id
    held: dict[Path, Claim] = field(default_factory=dict)
    closed: bool = False
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def add(self, held: Claim, pane: str | None) -> None:
        """Record a claim (and the pane spawned for it); TmuxError once the owner is closed."""
        with self._changed:
            self.held[held.directory] = held
            if pane is not None:
                self.started[held.directory] = pane
            closed = self.closed
        if closed:
            held.release()
            raise TmuxError("the run ended before its command could start", "run the module again")

    def released(self, held: Claim) -> None:
        with self._changed:
            if self.held.get(held.directory) is held:
                del self.held[held.directory]
            self._changed.notify_all()
            pane = self.started.pop(held.directory, None) if self.closed else None
        if pane is not None:
            _end(held.directory, pane)

    def close(self, timeout: float = SPAWN_TIMEOUT_S) -> None:
        with self._changed:
            self.closed = True
            for held in self.held.values():
                with contextlib.suppress(OSError):
                    protocol.send(held.sock, protocol.KILL, b"9")
            self._changed.wait_for(lambda: not self.held, timeout)
            idle = {d: p for d, p in self.started.items() if d not in self.held}
            for directory in idle:
                del self.started[directory]
        for directory, pane in idle.items():
            _end(directory, pane)


def _end(directory: Path, pane: str) -> None:
    """Kill a pane's runner unless another caller holds the pane right now."""
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with contextlib.suppress(TmuxError):
            tmux.run("kill-pane", "-t", pane, root=directory.parent.parent)
    except BlockingIOError:
        pass  # in use by another process now: it is theirs until it idles out
    finally:
        os.close(fd)


def prepare(root: Path) -> None:
    """Create the runtime dir (mode 0700; checked private), the pool dir and the tmux config
    (replaced, never written through, if it is not ours)."""
    check_private_dir(root)
    (root / "pool").mkdir(exist_ok=True)
    conf = root / "tmux.conf"
    if conf.is_symlink() or not conf.is_file() or conf.read_text() != CONF:
        temporary = root / f".tmux.conf.{uuid.uuid4().hex}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(CONF)
        os.replace(temporary, conf)


def claim(root: Path | None = None, owner: Panes | None = None) -> Claim:
    """Take a free pane with a live runner, starting one if needed (recorded in `owner`)."""
    root = root or runtime_dir()
    prepare(root)
    for index in range(MAX_PANES):
        directory = root / "pool" / str(index)
        try:
            directory.mkdir()
            fresh = True
        except FileExistsError:
            fresh = False
        fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        sock = None if fresh else _connect(directory)
        pane = None
        if sock is None:
            try:
                pane = spawn(directory)
            except TmuxError:
                os.close(fd)
                raise
            sock = _connect(directory)
        if sock is None:
            os.close(fd)
            raise TmuxError(
                f"runner in {directory} started but does not accept connections",
                "check the runtime dir (mcp-harness paths); `capture uninstall` resets it",
            )
        held = Claim(directory, fd, sock, owner)
        if owner is not None:
            owner.add(held, pane)
        return held
    raise TmuxError(
        f"all {MAX_PANES} panes in {root / 'pool'} are busy", "run fewer checks at once"
    )


def _connect(directory: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(directory / "sock"))
    except OSError:
        sock.close()
        return None
    return sock


def spawn(directory: Path) -> str:
    """Start a runner for `<root>/pool/<n>` in a new pane; return its pane id once it listens."""
    root = directory.parent.parent
    prepare(root)
    channel = f"ready-{uuid.uuid4().hex}"
    command = shlex.join(
        [
            sys.executable,
            "-I",
            "-m",
            "mcp_harness.terminal.runner",
            str(directory),
            str(root),
            channel,
        ]
    )
    for _ in range(SPAWN_ATTEMPTS):
        pane = tmux.open_window(root, SESSION, f"pane{directory.name}", f"exec {command}")
        try:
            waited = tmux.run("wait-for", channel, root=root)
        except TmuxError:
            raise TmuxError(
                f"runner in {directory} did not start within {SPAWN_TIMEOUT_S} s",
                "check the load of this machine, then try again",
            ) from None
        if waited.returncode == 0:
            return pane
        if "server exited" not in waited.stderr:
            break
        # the last pane of another run closed as ours opened, and the emptied server took
        # ours down with it: open it again on a new server
    raise TmuxError(
        f"runner in {directory} did not start: {waited.stderr.strip()}",
        "check that this Python runs `-m mcp_harness.terminal.runner`",
    )


def shutdown(root: Path | None = None) -> None:
    """Stop the server and every runner (tests, `capture uninstall`)."""
    root = root or runtime_dir()
    if socket_path(root).exists():
        tmux.run("kill-server", root=root)
