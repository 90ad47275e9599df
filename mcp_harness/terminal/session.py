"""Interactive terminal sessions that harness ops drive like a person at a keyboard.

Each session is its own tmux session `ft-<name>` on the pool's private server (same socket and
`tmux.conf`), with one pane running `bash --norc --noprofile -i` under the caller's environment
(plus `TERM=xterm-256color`), shipped through a 0600 env file, never the tmux server's.

The shell reports its state in the pane title, so nothing is printed on screen and nothing waits
on a fixed sleep: `PROMPT_COMMAND` records `$?` and counts prompts, and the prompts end with an
invisible OSC 2 title (written after the visible `$ `, so once the title changes the output and
the prompt are already on screen):

- `mh:<status>:<n>` - at the primary prompt (idle), `<status>` of the last command, `<n>` prompts
- `mh:run:<n>` - a command is running (`PS0`); any other title also counts as busy
- `mh:more:<n>` - waiting for more input (`PS2`, e.g. an open quote)

`run` reads `<n>`, pastes the command, presses Enter and polls the title (cheap tmux queries at a
short, growing interval, bounded by the timeout) until `<n>` changes. Text sent at the prompt is
pasted (bracketed paste: tabs and newlines stay text, one Enter runs it all, one prompt after it);
text sent while a program runs is typed with `send-keys -l` in chunks below tmux's ~16 KB command
limit. History expansion is off (`set +H`), history is not saved, `~/.inputrc` is not read.

Every tmux call is an `asyncio` subprocess; a session whose tmux session is gone raises
`TerminalError` naming it, never hangs.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from mcp_harness.paths import runtime_dir
from mcp_harness.terminal import tmux
from mcp_harness.terminal.keys import ACCEPT_KEYS, VALID_KEYS, chunks, escape, key_name
from mcp_harness.terminal.pool import prepare
from mcp_harness.terminal.shell import LOADER, State, parse_title, shell_env, write_env
from mcp_harness.terminal.tmux import TmuxError, socket_path

PREFIX = "ft-"
START_TIMEOUT_S = 10.0
SETTLE_TIMEOUT_S = 2.0
REUSE_TIMEOUT_S = 3.0
POLL_FIRST_S = 0.002
POLL_MAX_S = 0.1
CHUNK_BYTES = 8192
NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
T = TypeVar("T")


class TerminalError(TmuxError):
    """A terminal session could not be created, found or driven; names the session and the fix."""


@dataclass
class RunOutcome:
    """What `TerminalSession.run` saw: the command's exit status and the screen after it."""

    exit_code: int | None
    screen: str
    timed_out: bool


async def _poll(check: Callable[[], Awaitable[T | None]], timeout: float) -> T | None:
    """Call `check` until it returns something, at a short growing interval; None on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(timeout, 0.0)
    delay = POLL_FIRST_S
    while True:
        result = await check()
        if result is not None:
            return result
        remaining = deadline - loop.time()
        if remaining <= 0:
            return None
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 1.5, POLL_MAX_S)


def _trim(screen: str) -> str:
    """A captured screen without its trailing blank lines."""
    lines = screen.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise TerminalError(
            f"invalid terminal session name {name!r}",
            fix="use 1-64 letters, digits, '_' or '-'",
        )


async def _session_pane(root: Path, session: str) -> str | None:
    """The pane id of tmux session `session`, or None if there is no such session."""
    code, out, err = await tmux.run_async(root, "display", "-p", "-t", f"={session}:", "#{pane_id}")
    if code != 0:
        if tmux.gone(err):
            return None
        raise TerminalError(
            f"tmux could not look up terminal session {session[len(PREFIX) :]!r}: {err}",
            fix=f"check the tmux server on {socket_path(root)}",
        )
    return out.strip() or None


async def kill_session(name: str, root: Path | None = None) -> None:
    """End terminal session `name` if it exists; by name, so also one still being created."""
    await TerminalSession(name, "", root or runtime_dir()).kill()


class TerminalSession:
    """One interactive shell in tmux session `ft-<name>`, pane `pane` (a `%N` id)."""

    def __init__(self, name: str, pane: str, root: Path) -> None:
        self.name = name
        self.pane = pane
        self.root = root

    def __repr__(self) -> str:
        return f"TerminalSession(name={self.name!r}, pane={self.pane!r})"

    @property
    def session(self) -> str:
        """The tmux session name."""
        return PREFIX + self.name

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    async def create(
        cls,
        name: str,
        *,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        width: int = 200,
        height: int = 50,
        root: Path | None = None,
    ) -> TerminalSession:
        """Start the session's shell, or reuse and clear an existing session of that name.

        A reused shell keeps its environment and size; it is brought back to its prompt (C-c),
        moved to `cwd` if given, and its screen, input line and scrollback are cleared. If it
        cannot be brought back to its prompt, it is replaced by a new one.
        """
        _check_name(name)
        root = root or runtime_dir()
        directory = Path(cwd if cwd is not None else os.getcwd()).expanduser().absolute()
        if not directory.is_dir():
            raise TerminalError(
                f"terminal session {name!r}: working directory {str(directory)!r} does not exist",
                fix="pass an existing directory as cwd",
            )
        if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
            raise TerminalError(
                f"terminal session {name!r}: invalid size {width}x{height}",
                fix="pass positive integers as width and height",
            )
        await asyncio.to_thread(prepare, root)
        for _ in range(3):
            pane = await _session_pane(root, PREFIX + name)
            if pane is not None:
                existing = cls(name, pane, root)
                try:
                    reused = await existing._reuse(directory if cwd is not None else None)
                except TerminalError:  # it died meanwhile: start a new one
                    reused = False
                if reused:
                    return existing
                await existing.kill()
            started = await cls._start(name, directory, env, width, height, root)
            if started is not None:
                return started
        raise TerminalError(
            f"terminal session {name!r} could not be created: it keeps being replaced",
            fix="do not create the same session from several places at once",
        )

    @classmethod
    async def _start(
        cls,
        name: str,
        directory: Path,
        env: Mapping[str, str] | None,
        width: int,
        height: int,
        root: Path,
    ) -> TerminalSession | None:
        """A new session with a fresh shell; None if another caller made it first."""
        bash = shutil.which("bash") or "/bin/bash"
        envfile = root / "term" / f"{name}-{uuid.uuid4().hex}.env"
        await asyncio.to_thread(write_env, envfile, shell_env(env))
        try:
            args = [
                *("new-session", "-d", "-s", PREFIX + name, "-x", str(width), "-y", str(height)),
                *("-c", str(directory), "-P", "-F", "#{pane_id}", "--"),
                *(shutil.which("env") or "/usr/bin/env", "-i", bash, "-c", LOADER, "mh-terminal"),
                *(str(envfile), bash),
            ]
            for attempt in range(5):
                code, out, err = await tmux.run_async(root, *args)
                if code == 0 or not any(m in err for m in ("server exited", "lost server")):
                    break
                # a server that is shutting down refuses new sessions: retry shortly
                await asyncio.sleep(0.01 * (attempt + 1))
            if code != 0:
                if "duplicate session" in err:
                    return None
                raise TerminalError(
                    f"terminal session {name!r} could not be created: {err}",
                    fix=f"check tmux and the runtime dir {root}",
                )
            session = cls(name, out.strip(), root)
            try:
                ready = await _poll(session._idle_state, START_TIMEOUT_S)
            except TerminalError:
                raise TerminalError(
                    f"terminal session {name!r}: the shell {bash} exited at start",
                    fix="check that bash works with this environment and directory",
                ) from None
            if ready is None:
                await session.kill()
                raise TerminalError(
                    f"terminal session {name!r}: the shell showed no prompt within "
                    f"{START_TIMEOUT_S:g} s",
                    fix="check that bash starts with this environment",
                )
            return session
        finally:
            await asyncio.to_thread(envfile.unlink, True)

    async def _reuse(self, directory: Path | None) -> bool:
        state = await self._state()
        if not state.idle:
            await self._tmux("send-keys", "-t", self.pane, "C-c")
            if not await self.wait_idle(REUSE_TIMEOUT_S):
                return False
        if directory is not None:
            outcome = await self.run(f"cd -- {shlex.quote(str(directory))}", REUSE_TIMEOUT_S)
            if outcome.exit_code != 0:
                return False
        await self._tmux("send-keys", "-t", self.pane, "C-e", "C-u", "C-l")

        async def cleared() -> bool | None:
            return True if await self.capture() == "$" else None

        if not await _poll(cleared, REUSE_TIMEOUT_S):
            return False  # not cleared in time: a fresh shell is started instead
        await self._tmux("clear-history", "-t", self.pane)
        return True

    @classmethod
    async def attach(cls, name: str, root: Path | None = None) -> TerminalSession:
        """The existing session `name`; TerminalError if there is none."""
        _check_name(name)
        root = root or runtime_dir()
        pane = await _session_pane(root, PREFIX + name)
        if pane is None:
            raise TerminalError(
                f"terminal session {name!r} does not exist",
                fix=f"create it with TerminalSession.create({name!r})",
            )
        return cls(name, pane, root)

    async def kill(self) -> None:
        """End the session and its shell (nothing happens if it is already gone)."""
        code, _, err = await tmux.run_async(self.root, "kill-session", "-t", f"={self.session}")
        if code != 0 and not tmux.gone(err):
            raise TerminalError(
                f"terminal session {self.name!r} could not be killed: {err}",
                fix=f"kill it by hand: tmux -S {socket_path(self.root)} kill-session "
                f"-t ={self.session}",
            )

    # -- tmux plumbing ---------------------------------------------------------------------

    def _gone(self) -> TerminalError:
        return TerminalError(
            f"terminal session {self.name!r} no longer exists; create it again",
            fix=f"call TerminalSession.create({self.name!r})",
        )

    async def _tmux(self, *args: str, stdin: bytes | None = None) -> str:
        code, out, err = await tmux.run_async(self.root, *args, stdin=stdin)
        if code != 0:
            if tmux.gone(err):
                raise self._gone()
            raise TerminalError(
                f"tmux refused `{args[0]}` for terminal session {self.name!r}: {err}",
                fix="check the arguments; the session itself is still there",
            )
        return out

    async def _state(self) -> State:
        return self._parse_state(await self._tmux(*self._state_query()))

    def _state_query(self) -> tuple[str, ...]:
        return ("display", "-p", "-t", self.pane, "#{session_name}\t#{pane_title}")

    def _parse_state(self, line: str) -> State:
        session, _, title = line.rstrip("\n").partition("\t")
        if session != self.session:  # the pane id now belongs to someone else
            raise self._gone()
        return parse_title(title)

    async def _state_and_screen(self) -> tuple[State, str]:
        """The state and the screen in one tmux call (the screen read right after the title)."""
        out = await self._tmux(*self._state_query(), ";", "capture-pane", "-p", "-t", self.pane)
        line, _, screen = out.partition("\n")
        return self._parse_state(line), _trim(screen)

    async def _idle_state(self) -> State | None:
        state = await self._state()
        return state if state.idle else None

    async def _settle(self, before: State) -> None:
        """After Enter at the prompt: wait (bounded) until the shell has taken the line."""

        async def moved() -> bool | None:
            try:
                now = await self._state()
            except TerminalError:  # e.g. `exit`: the next call reports it
                return True
            return True if now != before else None

        await _poll(moved, SETTLE_TIMEOUT_S)

    # -- input -----------------------------------------------------------------------------

    async def send_text(self, text: str) -> None:
        """Send `text` exactly as given (no key names, nothing dropped or translated).

        At the shell prompt it is pasted (bracketed paste): tabs and newlines become part of the
        command line, which runs on the next Enter. While a program runs it is typed, as if on a
        keyboard (a newline is then the Enter key for that program).
        """
        if not text:
            return
        state = await self._state()
        if state.idle:
            await self._paste(text)
        else:
            await self._type(text)

    async def _paste(self, text: str, *, enter: bool = False) -> None:
        """Paste `text` (bracketed); with `enter`, press Enter after it in the same tmux call."""
        buffer = f"mh-{uuid.uuid4().hex}"
        then = (";", "send-keys", "-t", self.pane, "Enter") if enter else ()
        await self._tmux(
            *("load-buffer", "-b", buffer, "-", ";"),
            *("paste-buffer", "-d", "-p", "-r", "-b", buffer, "-t", self.pane),
            *then,
            stdin=text.encode("utf-8", "surrogateescape"),
        )

    async def _type(self, text: str) -> None:
        for index, piece in enumerate(text.split("\0")):
            if index:
                await self._tmux("send-keys", "-t", self.pane, "C-@")
            for chunk in chunks(piece, CHUNK_BYTES):
                await self._tmux("send-keys", "-l", "-t", self.pane, "--", escape(chunk))

    async def send_keys(self, *keys: str) -> None:
        """Press tmux keys in order (Enter, Escape, Tab, C-c, M-x, F5, ...); text: send_text."""
        names = []
        for key in keys:
            canonical = key_name(key)
            if canonical is None:
                raise TerminalError(
                    f"unknown key {key!r} for terminal session {self.name!r}", fix=VALID_KEYS
                )
            names.append(canonical)
        if not names:
            return
        accepts = any(name.lower() in ACCEPT_KEYS for name in names)
        before = await self._state() if accepts else None
        await self._tmux("send-keys", "-t", self.pane, "--", *map(escape, names))
        if before is not None and before.idle:
            await self._settle(before)

    # -- observation -----------------------------------------------------------------------

    async def capture(self, joined: bool = False) -> str:
        """The visible screen, trailing blank lines dropped. `joined`: lines the terminal
        wrapped are joined again (what the MCP server returns, so a long token is redacted
        whole, not in pieces)."""
        if joined:
            out = await self._tmux("capture-pane", "-p", "-J", "-t", self.pane)
            out = "\n".join(line.rstrip(" ") for line in out.split("\n"))
        else:
            out = await self._tmux("capture-pane", "-p", "-t", self.pane)
        return _trim(out)

    async def run(self, command: str, timeout: float = 60) -> RunOutcome:
        """Type `command` and Enter at the prompt; wait until the prompt is back.

        Returns the command's exit status (the last one for several) and the screen; on timeout
        `timed_out=True`, `exit_code=None`, and the command keeps running.
        """
        before = await self._state()
        if not before.idle:
            raise TerminalError(
                f"terminal session {self.name!r} is busy: a command is still running or the "
                "shell waits for more input",
                fix="wait_idle() first, or send_keys('C-c') to interrupt it",
            )
        if command:
            await self._paste(command, enter=True)
        else:
            await self._tmux("send-keys", "-t", self.pane, "Enter")

        async def finished() -> tuple[State, str] | None:
            now, screen = await self._state_and_screen()
            return (now, screen) if now.idle and now.count != before.count else None

        done = await _poll(finished, timeout)
        if done is None:
            return RunOutcome(exit_code=None, screen=await self.capture(), timed_out=True)
        return RunOutcome(exit_code=done[0].status, screen=done[1], timed_out=False)

    async def wait_idle(self, timeout: float = 30) -> bool:
        """Whether the shell is (or gets back within `timeout`) at its prompt, nothing running."""
        return await _poll(self._idle_state, timeout) is not None

    async def wait_for_text(self, pattern: str, timeout: float = 30, regex: bool = True) -> bool:
        """Whether `pattern` (multiline regex, or plain text) shows on screen within `timeout`."""
        if regex:
            try:
                compiled = re.compile(pattern, re.MULTILINE)
            except re.error as exc:
                raise TerminalError(
                    f"terminal session {self.name!r}: invalid pattern {pattern!r}: {exc}",
                    fix="fix the regular expression or pass regex=False",
                ) from None

            def found(screen: str) -> bool:
                return compiled.search(screen) is not None

        else:

            def found(screen: str) -> bool:
                return pattern in screen

        async def check() -> bool | None:
            return True if found(await self.capture()) else None

        return await _poll(check, timeout) is not None

    @staticmethod
    async def list(root: Path | None = None) -> list[str]:
        """Names of the terminal sessions on the server (without the `ft-` prefix), sorted."""
        root = root or runtime_dir()
        code, out, err = await tmux.run_async(root, "list-sessions", "-F", "#{session_name}")
        if code != 0:
            if tmux.gone(err):
                return []
            raise TerminalError(
                f"tmux could not list terminal sessions: {err}",
                fix=f"check the tmux server on {socket_path(root)}",
            )
        return sorted(line[len(PREFIX) :] for line in out.splitlines() if line.startswith(PREFIX))
