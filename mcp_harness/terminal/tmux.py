"""Every tmux call goes through here, against the private server under the runtime dir
(`<root>/tmux.sock` with `<root>/tmux.conf`), and every tmux failure is a `TmuxError`.

- `run`: one command, blocking (the pool, the capture mirror, tests);
- `run_async`: one command from asyncio (terminal sessions);
- `ControlClient`: one long-lived `tmux -C` connection, ~0.05 ms a command (runner and mirror
  captures, behind the title barrier of `capture_drawn`);
- `open_window`: a detached window in a session, starting the session (and server) if needed.

Every call spawns the `tmux` CLI with fds 0-2 only; the hot path of a recorded Bash call is the
C prefix wrapper's and never comes here.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from mcp_harness.errors import HarnessError
from mcp_harness.paths import runtime_dir

TIMEOUT_S = 15.0  # a loaded 2-core machine can stall a tmux client for seconds
BARRIER_TIMEOUT_S = 0.25
NOT_INSTALLED = "install tmux (apt-get install tmux)"
# stderr of a command whose target (or the whole server) does not exist (any more)
GONE_MARKERS = (
    "can't find",
    "no server running",
    "error connecting",
    "server exited",
    "lost server",
    "no current target",  # the target went while tmux resolved it
)


class TmuxError(HarnessError):
    """tmux is missing, did not answer, or refused a command (the message is tmux's own)."""


def gone(stderr: str) -> bool:
    """Whether tmux refused because the session, pane or server is gone."""
    return any(marker in stderr for marker in GONE_MARKERS)


def socket_path(root: Path | None = None) -> Path:
    return (root or runtime_dir()) / "tmux.sock"


def argv(root: Path, *args: str) -> list[str]:
    return ["tmux", "-S", str(socket_path(root)), "-f", str(root / "tmux.conf"), *args]


def run(*args: str, root: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run one tmux command; a refusal is in the result's returncode and stderr."""
    root = root or runtime_dir()
    try:
        return subprocess.run(
            argv(root, *args),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except FileNotFoundError:
        raise TmuxError("tmux is not installed", NOT_INSTALLED) from None
    except subprocess.TimeoutExpired:
        raise TmuxError(
            f"tmux did not answer `{args[0]}` within {TIMEOUT_S:g} s",
            f"check the tmux server on {socket_path(root)} (mcp-harness paths)",
        ) from None


async def run_async(root: Path, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    """One tmux command from asyncio: (returncode, stdout, stderr stripped)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv(root, *args),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise TmuxError("tmux is not installed", NOT_INSTALLED) from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), TIMEOUT_S)
    except BaseException as exc:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.wait())
        if isinstance(exc, TimeoutError):
            raise TmuxError(
                f"tmux did not answer `{args[0]}` within {TIMEOUT_S:g} s",
                f"check the tmux server on {socket_path(root)} (mcp-harness paths)",
            ) from None
        raise
    assert proc.returncode is not None
    return (
        proc.returncode,
        out.decode("utf-8", "replace"),
        err.decode("utf-8", "replace").strip(),
    )


def open_window(root: Path, session: str, name: str, command: str) -> str:
    """A detached window `name` running `command` in `session` (created, 200x50, if there is
    none yet; a lost race to create it is retried as a window); its pane id."""
    window = ("new-window", "-d", "-P", "-F", "#{pane_id}", "-t", f"={session}:", "-n", name)
    made = run(*window, command, root=root)
    if made.returncode != 0:  # no server or no session yet: start them
        made = run(
            *("new-session", "-d", "-s", session, "-x", "200", "-y", "50"),
            *("-P", "-F", "#{pane_id}", "-n", name, command),
            root=root,
        )
        if made.returncode != 0 and "duplicate session" in made.stderr:
            made = run(*window, command, root=root)
    if made.returncode != 0:
        raise TmuxError(
            f"tmux could not open a pane: {made.stderr.strip()}",
            f"check tmux and the runtime dir {root}",
        )
    return made.stdout.strip()


class ControlClient:
    """A control-mode client attached to `session`. Replies come as `%begin <time> <number>
    <flags>` … `%end|%error <time> <number> <flags>`; blocks with flags 1 answer our commands,
    anything else (the attach's own block, notifications) is skipped."""

    def __init__(self, root: Path, session: str) -> None:
        self._proc = subprocess.Popen(
            [
                *("tmux", "-S", str(socket_path(root)), "-C", "attach-session"),
                *("-t", f"={session}", "-f", "no-output,ignore-size"),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    @property
    def pid(self) -> int:
        """The `tmux -C` client's pid; it exits when the server does."""
        return self._proc.pid

    def command(self, line: str) -> list[str]:
        """Run one tmux command; return its output lines."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        try:
            self._proc.stdin.write(line.encode("utf-8") + b"\n")
            self._proc.stdin.flush()
        except OSError as exc:
            raise TmuxError(f"tmux control client gone: {exc}") from None
        stream = self._proc.stdout
        while True:
            header = stream.readline()
            if not header:
                raise TmuxError("tmux control client exited")
            if not header.startswith(b"%begin "):
                continue
            number, flags = header.split()[2:4]
            lines: list[bytes] = []
            while True:
                raw = stream.readline()
                if not raw:
                    raise TmuxError("tmux control client exited")
                parts = raw.split()
                if (
                    raw.startswith((b"%end ", b"%error "))
                    and len(parts) == 4
                    and parts[2] == number
                ):
                    break
                lines.append(raw.rstrip(b"\n"))
            if flags != b"1":
                continue
            text = [item.decode("utf-8", "replace") for item in lines]
            if raw.startswith(b"%error"):
                raise TmuxError("\n".join(text) or f"tmux rejected: {line}")
            return text

    def capture(self, pane: str) -> str:
        """The visible screen of `pane`, trailing blank lines dropped."""
        lines = self.command(f"capture-pane -p -t {pane}")
        while lines and not lines[-1].strip():
            lines.pop()
        return "\n".join(lines)

    def capture_drawn(self, pane: str, show: Callable[[bytes], None]) -> str:
        """The screen once tmux has drawn everything written so far: `show` writes an OSC 2
        title token to the pane, and the capture waits (bounded) until the title is that token."""
        token = uuid.uuid4().hex[:12]
        show(b"\x1b\\\x1b]2;" + token.encode() + b"\x1b\\")
        deadline = time.monotonic() + BARRIER_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.command(f"display -p -t {pane} '#{{pane_title}}'") == [token]:
                break
            time.sleep(0.0002)
        return self.capture(pane)

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
