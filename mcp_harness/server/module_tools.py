"""Every module is a tool named after it: its input schema is the module's run inputs (help
texts from its README), its description what the module does, its result the per-task outcome.

A call starts the run as a job (`runs.start`) and follows it, reporting progress per element
computed; a run that ends within `FOREGROUND_S` answers with its result, a longer one (or
`background: true`) answers with the job id for `job_status`. Cancelling the call while it
follows the run stops the run.

`ModuleTools.sync` brings the tools in line with the modules dir; the server calls it on every
`tools/list` and every `WATCH_S` seconds (a few `stat` calls when nothing changed), and sends
`notifications/tools/list_changed` when a module was created, edited, trained or deleted. A
module whose spec is broken, or whose name or inputs cannot make a tool, has no tool;
`module_list` says why. `app.build_server` makes one `ModuleTools` per server and the
lifespan keeps it in `ServerState.module_tools`.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from typing import Annotated, Any

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_harness.redaction import redact
from mcp_harness.server import module_catalog, notify, runs
from mcp_harness.server.declare import Result, add, concise, save_schemas, tool_names
from mcp_harness.server.runs import RunResult

TOOLSET = "modules"
FOREGROUND_S = 45.0  # under the 60 s that Claude Code allows an HTTP tool call
WATCH_S = 2.0
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
OWN_PARAMS = ("kernel", "background", "ctx")
KERNEL_HELP = "offline, anthropic, openai, claude-code or replay (default: configured)"


class ModuleAnswer(Result):
    job_id: str
    state: str = Field(description="done, failed, stopped, or running (then poll job_status)")
    progress: str
    result: RunResult | None = Field(default=None, description="when done: per-task outcome")
    files: str = Field(description="the run directory")
    resource: str = Field(description="the job as a resource")


def _answer(job: Any, run_dir: Any) -> ModuleAnswer:
    done = job.state == "done"
    return ModuleAnswer(
        job_id=job.id,
        state=job.state,
        progress=redact(job.progress),
        result=RunResult(**job.result) if done else None,
        files=str(run_dir),
        resource=f"harness://jobs/{job.id}",
    )


def _why_not(entry: module_catalog.Entry, taken: set[str]) -> str | None:
    if entry.error:
        return entry.error
    if not NAME.match(entry.name):
        return f"{entry.name!r} is not a tool name (lowercase letters, digits, '_' or '-')"
    if entry.name in taken:
        return f"another tool is named {entry.name!r}; rename the module to get its tool"
    clash = [n for n in entry.inputs if n in OWN_PARAMS or not n.isidentifier()]
    if clash:
        return f"input {clash[0]!r} cannot be a tool parameter; rename it in module.json"
    return None


def _function(entry: module_catalog.Entry) -> Any:
    """The tool function: a signature made of the module's inputs."""
    name = entry.name

    async def run_module(ctx: Context, **given: Any) -> ModuleAnswer:
        state = ctx.request_context.lifespan_context
        kernel = given.pop("kernel", None)
        background = given.pop("background", False)
        inputs = {key: value for key, value in given.items() if value is not None}
        job, run_dir = await runs.start(state, name, inputs, kernel, None)
        if not background:
            try:
                await notify.follow(ctx, job, FOREGROUND_S)
            except BaseException:
                if job.task is not None:
                    job.task.cancel()
                raise
            if job.state == "failed":
                raise ToolError(redact(job.error or "the run failed"))
        return _answer(job, run_dir)

    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    for input_name, help_text in entry.inputs.items():
        optional = input_name == "workdir"
        kind = str | list[str] | None if optional else str | list[str]
        note = " (default: a fresh empty dir)" if optional else ""
        params.append(
            inspect.Parameter(
                input_name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None if optional else inspect.Parameter.empty,
                annotation=Annotated[kind, Field(description=help_text + note)],
            )
        )
    params.append(
        inspect.Parameter(
            "kernel",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[str | None, Field(description=KERNEL_HELP)],
        )
    )
    params.append(
        inspect.Parameter(
            "background",
            inspect.Parameter.KEYWORD_ONLY,
            default=False,
            annotation=Annotated[bool, Field(description="return a job id at once")],
        )
    )
    run_module.__signature__ = inspect.Signature(params, return_annotation=ModuleAnswer)  # type: ignore[attr-defined]
    run_module.__annotations__ = {p.name: p.annotation for p in params} | {"return": ModuleAnswer}
    run_module.__name__ = name
    return run_module


def _description(entry: module_catalog.Entry) -> str:
    return concise(
        f"{entry.about} Give one task (or lists: one value per task); each runs in its own "
        "tmux terminal. Answers per task: passed, commands, final screen, run dir; after "
        f"{FOREGROUND_S:g} s or with background=true, a job id for job_status."
    )


class ModuleTools:
    """The module tools of one server, kept in line with the modules dir."""

    def __init__(self, server: MCPServer) -> None:
        self.server = server
        self.tools: dict[str, Any] = {}  # module name -> what its tool was made from
        self.skipped: dict[str, str] = {}  # module name -> why it has no tool
        self.mark: Any = None
        self.lock = asyncio.Lock()

    def sync_now(self) -> bool:
        """Add, replace and remove tools to match the modules; whether anything changed."""
        mark = module_catalog.mark()
        if mark == self.mark:
            return False
        self.mark = mark
        taken = tool_names(self.server) - set(self.tools)
        wanted: dict[str, Any] = {}
        self.skipped = {}
        entries = {entry.name: entry for entry in module_catalog.entries()}
        for entry in entries.values():
            reason = _why_not(entry, taken)
            if reason:
                self.skipped[entry.name] = reason
            else:
                wanted[entry.name] = (entry.about, tuple(entry.inputs.items()))
        for name in set(self.tools) - set(wanted):
            self.server.remove_tool(name)
            del self.tools[name]
        for name, made_from in wanted.items():
            if self.tools.get(name) == made_from:
                continue
            if name in self.tools:
                self.server.remove_tool(name)
            add(
                self.server,
                _function(entries[name]),
                name,
                f"Run module {name}",
                _description(entries[name]),
                ToolAnnotations(destructive_hint=True, open_world_hint=True),
            )
            self.tools[name] = made_from
        save_schemas()
        return True

    async def sync(self) -> bool:
        async with self.lock:
            return await anyio.to_thread.run_sync(self.sync_now)
