"""Capture tools: what Stage 0 recorded of Claude Code's terminal work, and harvest into
experience (the server side of `mcp-harness capture status|log` and `mcp-harness harvest`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_harness.errors import HarnessError
from mcp_harness.server import notify
from mcp_harness.server.declare import Result, tool
from mcp_harness.server.output import LIMIT_CHARS, fit

FIELD_FLOOR = 300  # the least each long field of a logged call keeps
LONG_FIELDS = ("output", "screen_before", "screen_after")


class TensorHarvest(Result):
    tensor: str = Field(description="the experience name (<project>.decision / .command)")
    path: str
    added: int
    skipped_duplicates: int


class HarvestResult(Result):
    transcripts: str | None = Field(description="the Claude Code projects dir imported, if any")
    imported: dict[str, Any] | None = Field(description="files and new calls from transcripts")
    calls_seen: int
    calls_filtered: int
    rows_added: int
    tensors: list[TensorHarvest]


class LoggedCall(Result):
    call_id: str
    session_id: str | None
    tool_use_id: str | None
    ts: str | None
    cwd: str | None
    project: str | None
    task: str | None
    description: str | None
    command: str | None
    exit_code: int | None
    signal: int | None
    denied: bool
    sources: list[str]
    output: str | None
    screen_before: str | None
    screen_after: str | None


class CaptureLog(Result):
    total: int = Field(description="calls recorded in all")
    calls: list[LoggedCall] = Field(description="the most recent calls, oldest first")


def capture_status_report() -> dict[str, Any]:
    from mcp_harness.capture import settings

    # prefix_path=None: the wrapper's path is found (and built) as `capture status` does, but a
    # missing C compiler shows as prefix None instead of failing the whole report.
    return settings.status(None, None)


def _transcripts_root(transcripts: str | None) -> Path | None:
    """The projects dir to import: the one given (allowed dirs, or the default location), else
    the default location when it exists, else None (no import)."""
    from mcp_harness.capture.transcripts import default_projects_root

    default = default_projects_root().expanduser().absolute()
    if transcripts is None:
        return default if default.is_dir() else None
    given = Path(transcripts).expanduser().absolute()
    if given.resolve() != default.resolve():
        from mcp_harness.server.confine import allowed_path

        given = allowed_path(transcripts)
    if not given.is_dir():
        raise HarnessError(
            f"transcripts {transcripts!r}: no such directory",
            f"give Claude Code's projects dir (default {default}), or leave it out",
        )
    return given


def harvest_calls(project: str | None, exit_status: str, transcripts: str | None) -> HarvestResult:
    from mcp_harness.experience.harvest import harvest

    root = _transcripts_root(transcripts)
    report = harvest(
        import_transcripts=root is not None,
        projects_root=root,
        exit_status=exit_status,
        project=project,
    )
    payload = report.to_json()
    return HarvestResult(
        transcripts=str(root) if root else None,
        imported=payload["imported"],
        calls_seen=report.calls_seen,
        calls_filtered=report.calls_filtered,
        rows_added=report.rows_added,
        tensors=[
            TensorHarvest(
                tensor=path.name,
                path=str(path),
                added=info.added,
                skipped_duplicates=info.skipped_duplicates,
            )
            for path, info in report.tensors.items()
        ],
    )


def recent_calls(n: int) -> CaptureLog:
    from mcp_harness.capture.join import calls

    every = calls()
    recent = every[-n:]
    limit = max(FIELD_FLOOR, LIMIT_CHARS // max(1, len(LONG_FIELDS) * len(recent)) - 300)
    logged = []
    for call in recent:
        texts = {
            name: None
            if getattr(call, name) is None
            else fit(getattr(call, name), f"capture-{name}", limit=limit)
            for name in LONG_FIELDS
        }
        logged.append(
            LoggedCall(
                call_id=call.call_id,
                session_id=call.session_id,
                tool_use_id=call.tool_use_id,
                ts=call.ts.isoformat() if call.ts else None,
                cwd=call.cwd,
                project=call.project,
                task=None if call.task is None else fit(call.task, "capture-task", limit=limit),
                description=call.description,
                command=None if call.command is None else fit(call.command, "capture-command"),
                exit_code=call.exit_code,
                signal=call.signal,
                denied=call.denied,
                sources=list(call.sources),
                **texts,
            )
        )
    return CaptureLog(total=len(every), calls=logged)


def register(server: MCPServer) -> None:
    @tool(
        server,
        title="Capture status",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    def capture_status() -> dict[str, Any]:
        """Where capture is installed in Claude Code's settings (user and project scope: shell
        prefix and hooks), whether tmux is there, and how much has been recorded (the same as
        `mcp-harness capture status --json`). Install with `mcp-harness capture install`."""
        return capture_status_report()

    @tool(
        server,
        title="Harvest captured work",
        annotations=ToolAnnotations(
            destructive_hint=False, idempotent_hint=True, open_world_hint=False
        ),
    )
    async def capture_harvest(
        ctx: Context,
        project: Annotated[
            str | None,
            Field(description="only this project: a slug such as 'dev-web-app' or a directory"),
        ] = None,
        exit_status: Annotated[
            Literal["any", "success", "failure"],
            Field(description="keep calls by exit status"),
        ] = "any",
        transcripts: Annotated[
            str | None,
            Field(
                description="Claude Code projects dir to import first (default "
                "~/.claude/projects, imported when it exists)"
            ),
        ] = None,
    ) -> HarvestResult:
        """Import Claude Code session transcripts (when there are any) and turn every captured
        Bash call into experience rows: per project a <project>.decision tensor (task + screen
        -> what to do) and a <project>.command tensor (what to do -> command). Rows already
        harvested are skipped, so running it again adds only new calls."""
        async with notify.ticking(ctx, "harvesting"):
            return await anyio.to_thread.run_sync(harvest_calls, project, exit_status, transcripts)

    @tool(
        server,
        title="Recent captured calls",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    def capture_log(
        n: Annotated[int, Field(ge=1, le=500, description="how many recent calls")] = 20,
    ) -> CaptureLog:
        """The most recent recorded Bash calls, joined across the shell wrapper, hooks and
        transcripts: command, description, task, exit status, output and screens (long fields
        are cut; the full text is saved to a file named in the field)."""
        return recent_calls(n)
