"""Terminal tools: real interactive shells in the harness's private tmux server.

Each terminal is a `TerminalSession` (tmux session `ft-<name>`): it outlives a single call and
the server itself (end it with terminal_kill), and a person can watch it with the `attach`
command a tool returns. Commands run exactly as typed at a bash prompt; `terminal_run` waits
for the prompt to come back (never a fixed sleep) and returns the exit status and the screen.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_harness.errors import HarnessError
from mcp_harness.limits import limits
from mcp_harness.paths import runtime_dir
from mcp_harness.server import notify
from mcp_harness.server.confine import allowed_path
from mcp_harness.server.declare import Result, tool
from mcp_harness.server.output import fit
from mcp_harness.terminal.pool import socket_path
from mcp_harness.terminal.session import TerminalError, TerminalSession

IDLE_WAIT_S = 5.0
GONE = ("does not exist", "no longer exists")

NameArg = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="terminal name: 1-64 letters, digits, '_' or '-'",
    ),
]


class TerminalInfo(Result):
    name: str
    attach: str = Field(description="shell command a person can run to watch this terminal")
    screen: str = Field(description="the visible screen")


class RunResult(Result):
    name: str
    exit_code: int | None = Field(description="exit status of the command; null if timed out")
    timed_out: bool = Field(description="true: the command is still running")
    screen: str = Field(description="the visible screen after the command")


class ScreenResult(Result):
    name: str
    idle: bool = Field(description="the shell is at its prompt with nothing running")
    screen: str


class SentResult(Result):
    name: str
    sent: int = Field(description="characters or keys sent")


class TerminalList(Result):
    terminals: list[str] = Field(description="names of the live terminals, sorted")
    attach: str = Field(description="how a person watches one: replace NAME")


class KillResult(Result):
    name: str
    killed: bool


def _attach_command(name: str) -> str:
    return f"tmux -S {socket_path(runtime_dir())} attach -t =ft-{name}"


@contextmanager
def _known(name: str) -> Iterator[None]:
    """A vanished terminal becomes an error naming it and saying how to get it back."""
    try:
        yield
    except TerminalError as exc:
        if any(marker in exc.message for marker in GONE):
            raise HarnessError(
                f"terminal {name!r} does not exist (never created, killed, or its shell exited)",
                f"create it with terminal_create(name={name!r}); terminal_list shows live ones",
            ) from None
        raise


async def _session(name: str) -> TerminalSession:
    with _known(name):
        return await TerminalSession.attach(name)


async def _screen(session: TerminalSession) -> str:
    """The screen with wrapped lines joined (so the redactor sees each token whole), fitted."""
    return fit(await session.capture(joined=True), "screen")


def register(server: MCPServer) -> None:
    acts = ToolAnnotations(destructive_hint=True, idempotent_hint=False, open_world_hint=True)

    @tool(
        server,
        title="Create a terminal",
        annotations=ToolAnnotations(
            destructive_hint=False, idempotent_hint=True, open_world_hint=False
        ),
    )
    async def terminal_create(
        name: NameArg,
        cwd: Annotated[
            str | None,
            Field(
                description="working directory (inside the data home, the server's working "
                "directory or MCP_HARNESS_ALLOWED_DIRS); default: the server's"
            ),
        ] = None,
    ) -> TerminalInfo:
        """Start an interactive bash terminal, or reuse and clear the live one of that name
        (brought back to its prompt, moved to `cwd` if given)."""
        directory = allowed_path(cwd) if cwd is not None else None
        live = await TerminalSession.list()
        caps = limits()
        if name not in live and len(live) >= caps.terminals:
            raise caps.exceeded(
                "live terminals, with this one",
                len(live) + 1,
                "terminals",
                "end one with terminal_kill (terminal_list shows them)",
            )
        session = await TerminalSession.create(name, cwd=directory)
        with _known(name):
            return TerminalInfo(
                name=name, attach=_attach_command(name), screen=await _screen(session)
            )

    @tool(server, title="Run a command in a terminal", annotations=acts)
    async def terminal_run(
        ctx: Context,
        name: NameArg,
        command: Annotated[str, Field(description="bash command line, run as if typed")],
        timeout: Annotated[
            float, Field(gt=0, le=3600, description="seconds to wait for the prompt")
        ] = 60,
    ) -> RunResult:
        """Run a command at the terminal's prompt and wait for the prompt to return: exit
        status and screen. Calls on one terminal run one after the other, each with its own
        result. On timeout the command keeps running (`timed_out` true, `exit_code` null), as
        it does if the call is cancelled: look with terminal_capture, interrupt with
        terminal_send_keys ["C-c"], or answer it with terminal_send_text."""
        session = await _session(name)
        async with ctx.request_context.lifespan_context.terminal_lock(name):
            with _known(name):
                if not await session.wait_idle(min(IDLE_WAIT_S, timeout)):
                    raise HarnessError(
                        f"terminal {name!r} is busy: a program is still running or the shell "
                        "waits for more input",
                        "see it with terminal_capture; interrupt it with "
                        'terminal_send_keys(["C-c"]) or answer it with terminal_send_text',
                    )
                async with notify.ticking(ctx, f"running {command[:40]!r}"):
                    outcome = await session.run(command, timeout)
                screen = await _screen(session)
        return RunResult(
            name=name, exit_code=outcome.exit_code, timed_out=outcome.timed_out, screen=screen
        )

    @tool(server, title="Type text into a terminal", annotations=acts)
    async def terminal_send_text(
        name: NameArg,
        text: Annotated[
            str, Field(description="text sent exactly as given (no key names translated)")
        ],
    ) -> SentResult:
        """Send text to a terminal. At the shell prompt it is pasted onto the command line (it
        runs on the next Enter); while a program runs it is typed, and a newline is Enter."""
        session = await _session(name)
        with _known(name):
            await session.send_text(text)
        return SentResult(name=name, sent=len(text))

    @tool(server, title="Press keys in a terminal", annotations=acts)
    async def terminal_send_keys(
        name: NameArg,
        keys: Annotated[
            list[str],
            Field(
                min_length=1,
                description="tmux key names pressed in order: Enter, Escape, Tab, BSpace, Up, "
                "Down, Left, Right, Home, End, PageUp, PageDown, Delete, F1-F12, C-c, M-x, ...",
            ),
        ],
    ) -> SentResult:
        """Press keys in a terminal (interrupt with C-c, navigate a TUI, confirm with Enter)."""
        session = await _session(name)
        with _known(name):
            await session.send_keys(*keys)
        return SentResult(name=name, sent=len(keys))

    @tool(
        server,
        title="Capture a terminal's screen",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    async def terminal_capture(name: NameArg) -> ScreenResult:
        """The terminal's visible screen, and whether the shell is idle at its prompt."""
        session = await _session(name)
        with _known(name):
            idle = await session.wait_idle(0)
            screen = await _screen(session)
        return ScreenResult(name=name, idle=idle, screen=screen)

    @tool(
        server,
        title="List terminals",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    async def terminal_list() -> TerminalList:
        """Names of the live terminals (including those harness graph runs created)."""
        return TerminalList(terminals=await TerminalSession.list(), attach=_attach_command("NAME"))

    @tool(
        server,
        title="Kill a terminal",
        annotations=ToolAnnotations(
            destructive_hint=True, idempotent_hint=False, open_world_hint=False
        ),
    )
    async def terminal_kill(name: NameArg) -> KillResult:
        """End a terminal and everything running in it."""
        session = await _session(name)
        with _known(name):
            await session.kill()
        return KillResult(name=name, killed=True)
