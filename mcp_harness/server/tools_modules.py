"""Module tools: list and show modules, start runs and training as background jobs.

`module_run_start` / `module_train_start` check everything they can (module, inputs, dataset,
kernel, paths), start a job in `ServerState` and return its id at once; the job tools follow
it. Each module is also a tool of its own (`module_tools`). A run ends the terminals it opened
when it ends, stopped or not; a stopped training run keeps a checkpoint of where it stopped
(`mcp-harness train --resume <out>` goes on).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_harness.errors import HarnessError
from mcp_harness.limits import limits
from mcp_harness.server import module_catalog, notify, runs
from mcp_harness.server.confine import allowed_path
from mcp_harness.server.declare import READ, Result, tool
from mcp_harness.server.runs import JobStarted
from mcp_harness.server.state import Job, ServerState

MODULE_HELP = "a module name (built-in such as 'coder', or one under the data dir) or a path"
KERNEL_HELP = (
    "offline, anthropic, openai, claude-code or replay (default: configured, else offline)"
)


class ModuleInfo(Result):
    name: str
    builtin: bool = Field(description="a built-in template ships with mcp-harness")
    installed: bool = Field(description="a copy exists under the data dir (made on first use)")
    path: str | None = Field(description="the module directory under the data dir, if any")
    description: str
    tool: str | None = Field(description="the tool that runs it (null: it has none)")
    error: str | None = Field(default=None, description="why the module cannot be used")


class ModuleList(Result):
    modules: list[ModuleInfo]
    modules_home: str = Field(description="where modules live: <data home>/modules")


class NodeInfo(Result):
    id: str
    op: str
    inputs: list[str]
    shape: list[int]
    args: dict[str, Any]


class ExperienceInfo(Result):
    name: str
    path: str
    rows: int
    sources: dict[str, int] = Field(description="rows per source (seed, training, harvest, …)")
    weight_mean: float | None


class ModuleShow(Result):
    name: str
    path: str
    description: str
    dims: dict[str, int]
    inputs: dict[str, Any] = Field(description="run inputs and their shapes")
    output: str
    nodes: list[NodeInfo]
    experience: list[ExperienceInfo]


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def list_modules(skipped: dict[str, str] | None) -> ModuleList:
    """Every module; `skipped` maps a module to why it has no tool (None: no module tools)."""
    from mcp_harness.runtime import module as modules

    infos = []
    for entry in module_catalog.entries():
        error = entry.error or (skipped or {}).get(entry.name)
        infos.append(
            ModuleInfo(
                name=entry.name,
                builtin=entry.builtin,
                installed=entry.path is not None,
                path=str(entry.path) if entry.path else None,
                description=entry.about,
                tool=None if error or skipped is None else entry.name,
                error=error,
            )
        )
    return ModuleList(modules=infos, modules_home=str(modules.modules_home()))


def show_module(module: str) -> ModuleShow:
    from mcp_harness.runtime import module as modules

    loaded = modules.load(runs.confined_module(module))
    try:
        summary = loaded.summary()
    finally:
        loaded.close()
    return ModuleShow(
        name=summary["name"],
        path=summary["path"],
        description=summary["description"],
        dims=summary["dims"],
        inputs=_plain(summary["inputs"]),
        output=summary["output"],
        nodes=[NodeInfo(**_plain(node)) for node in summary["nodes"]],
        experience=[
            ExperienceInfo(
                name=name,
                path=stats["path"],
                rows=stats["rows"],
                sources=stats["sources"],
                weight_mean=stats["weight_mean"],
            )
            for name, stats in summary["experience"].items()
        ],
    )


class _JobProgress:
    """Training progress (`trainer.Progress`) as the job's progress; lines are kept."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.lines: list[str] = []

    def bar(self, prefix: str, done: int, total: int, suffix: str) -> None:
        self.job.advance(f"{prefix}: {done}/{total} {suffix}")

    def status(self, text: str) -> None:
        self.job.advance(text)

    def line(self, text: str) -> None:
        self.lines.append(text)
        self.job.advance(text)


async def start_training(
    state: ServerState,
    module: str,
    data: str,
    val: str | None,
    given: dict[str, Any],
) -> JobStarted:
    """Check the module, the task sets and the options, then train as a job."""
    from mcp_harness.runtime import module as modules
    from mcp_harness.training import job as training

    state.check_room()
    caps = limits()
    if given["batch"] > caps.batch:
        raise caps.exceeded("batch", given["batch"], "batch")
    data_path = allowed_path(data)
    val_path = allowed_path(val) if val is not None else None
    for label, path in (("data", data_path), ("val", val_path)):
        if path is not None and not path.is_file():
            raise HarnessError(
                f"{label} {path}: no such dataset file",
                "give a JSON Lines file of tasks (format: mcp-harness README, Training)",
            )
    name = runs.confined_module(module)
    target = await anyio.to_thread.run_sync(modules.resolve, name)
    busy = state.training_job(target)
    if busy is not None:
        where = "a job being started" if busy == "starting" else f"job {busy}"
        raise HarnessError(
            f"module {target.name!r} is already training in {where}",
            "wait for it to end (job_status) or stop it (job_stop), then start again",
        )
    state.starting.add(target)
    try:
        run = await anyio.to_thread.run_sync(
            lambda: training.start(name, data_path, val_path, given)
        )
    finally:
        state.starting.discard(target)
    resume = training.RESUME_HINT.format(out=run.out)

    async def work(job: Job) -> dict[str, Any]:
        progress = _JobProgress(job)
        await training.train(run, progress)
        result = training.result(run)
        result["log"] = progress.lines
        if run.stopped == "budget":
            result["resume"] = resume
        return result

    job = state.start("train", f"train {run.module.name} on {data_path.name} ({run.out})", work)
    state.training[job.id] = target
    return runs.started(
        job,
        run.out,
        f"poll job_status(job_id={job.id!r}); job_stop keeps a checkpoint in {run.out} "
        f"(continue with: {resume})",
    )


def register(server: MCPServer) -> None:
    @tool(server, title="List modules", annotations=READ)
    async def module_list(ctx: Context) -> ModuleList:
        """The modules: built-in templates (copied to the data dir on first use) and those
        under the data dir, each with the tool that runs it or why it has none."""
        catalog = ctx.request_context.lifespan_context.module_tools
        if catalog is not None:
            await catalog.sync()
        skipped = catalog.skipped if catalog is not None else None
        return await anyio.to_thread.run_sync(list_modules, skipped)

    @tool(server, title="Show a module", annotations=READ)
    def module_show(module: Annotated[str, Field(description=MODULE_HELP)]) -> ModuleShow:
        """A module's graph (nodes, ops, shapes, dims, run inputs) and its experience."""
        return show_module(module)

    @tool(
        server,
        title="Start a module run",
        annotations=ToolAnnotations(destructive_hint=True, open_world_hint=True),
    )
    async def module_run_start(
        ctx: Context,
        module: Annotated[str, Field(description=MODULE_HELP)],
        inputs: Annotated[
            dict[str, list[str] | str],
            Field(
                description="run inputs by name: a list gives one value per task, a string is "
                "the same for every task"
            ),
        ],
        kernel: Annotated[str | None, Field(description=KERNEL_HELP)] = None,
        dims: Annotated[
            dict[str, int] | None, Field(description='graph sizes, e.g. {"steps": 8}')
        ] = None,
    ) -> JobStarted:
        """Start a module run in the background (each task in its own tmux terminal) and
        return its job id at once; job_status gives its progress and per-task outcome."""
        state = ctx.request_context.lifespan_context
        job, run_dir = await runs.start(state, module, inputs, kernel, dims)
        return runs.started(
            job, run_dir, f"poll job_status(job_id={job.id!r}); job_stop ends it and its terminals"
        )

    @tool(
        server,
        title="Start training a module",
        annotations=ToolAnnotations(destructive_hint=True, open_world_hint=True),
    )
    async def module_train_start(
        ctx: Context,
        module: Annotated[str, Field(description=MODULE_HELP)],
        data: Annotated[
            str,
            Field(
                description='training tasks, JSON Lines: {"inputs": {...}, "targets": '
                '{"<node>": "text"}, "files": {...}} per line'
            ),
        ],
        val: Annotated[
            str | None,
            Field(description="other tasks (same format): the gate of every step"),
        ] = None,
        epochs: Annotated[int, Field(ge=1, le=1000, description="passes over the data")] = 2,
        batch: Annotated[int, Field(ge=1, le=1024, description="tasks per step")] = 4,
        kernel: Annotated[str | None, Field(description=KERNEL_HELP)] = None,
        second_order: Annotated[
            bool, Field(description="the kernel critiques and may revise each reflection")
        ] = False,
    ) -> JobStarted:
        """Train a module's experience on a dataset in the background (checkpoint per epoch)
        and return its job id; trace_show explains each step. Bad input (val = data, a check
        already passing) is refused at once."""
        given: dict[str, Any] = {"epochs": epochs, "batch": batch, "second_order": second_order}
        if kernel is not None:
            given["kernel"] = kernel
        state = ctx.request_context.lifespan_context
        async with notify.ticking(ctx, "checking the module and the tasks"):
            return await start_training(state, module, data, val, given)
