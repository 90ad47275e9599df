"""Module tools: list and show modules, run and train them as background jobs, follow and stop
the jobs, and read why training changed a module (`trace_show`).

Runs and training never block a tool call: `module_run_start` / `module_train_start` check
everything they can (module, inputs, dataset, kernel, paths), start a job in `ServerState` and
return its id at once; `job_status` reports its state, a progress line and, when done, the
result; `job_stop` cancels it. A run ends the terminals it opened when it ends, stopped or not;
a stopped training run keeps a checkpoint of where it stopped (`mcp-harness train --resume
<out>` goes on).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from mcp_harness.errors import HarnessError
from mcp_harness.limits import limits
from mcp_harness.server.confine import allowed_path, check_name, confined_file, confined_tree
from mcp_harness.server.errors import tool_errors
from mcp_harness.server.output import LIMIT_CHARS, fit
from mcp_harness.server.state import Job, ServerState

STOP_WAIT_S = 15.0  # how long job_stop waits for a job to wind down (checkpoint, terminals)
PROGRESS_EVERY_S = 0.25
MAX_WAIT_S = 30.0
TEXT_FLOOR = 400  # the least each element's text keeps in a job result
RECORD_TEXT_LIMIT = 2000

# Job ids of training jobs -> the module directory they train (one training job per module),
# and modules whose training is being set up right now.
_TRAINING: dict[str, Path] = {}
_STARTING: set[Path] = set()

MODULE_HELP = (
    "a module name (built-in such as 'coder', or one under the data dir) or a path to a module "
    "directory"
)
KERNEL_HELP = (
    "LLM kernel: offline, anthropic, openai, claude-code or replay (default: MCP_HARNESS_KERNEL, "
    "<data home>/config.toml, else offline)"
)


# ---- output models ------------------------------------------------------------------------------
class ModuleInfo(BaseModel):
    name: str
    builtin: bool = Field(description="a built-in template ships with mcp-harness")
    installed: bool = Field(description="a copy exists under the data dir (made on first use)")
    path: str | None = Field(description="the module directory under the data dir, if any")
    description: str


class ModuleList(BaseModel):
    modules: list[ModuleInfo]
    modules_home: str = Field(description="where modules live: <data home>/modules")


class NodeInfo(BaseModel):
    id: str
    op: str
    inputs: list[str]
    shape: list[int]
    args: dict[str, Any]


class ExperienceInfo(BaseModel):
    name: str
    path: str
    rows: int
    sources: dict[str, int] = Field(description="rows per source (seed, training, harvest, …)")
    weight_mean: float | None


class ModuleShow(BaseModel):
    name: str
    path: str
    description: str
    dims: dict[str, int]
    inputs: dict[str, Any] = Field(description="run inputs and their shapes")
    output: str
    nodes: list[NodeInfo]
    experience: list[ExperienceInfo]


class JobStarted(BaseModel):
    job_id: str
    kind: str
    description: str
    state: str
    files: str = Field(description="where the job writes its files (run dir, training out dir)")
    next: str = Field(description="what to call next")


class JobStatus(BaseModel):
    job_id: str
    kind: str = Field(description="run or train")
    description: str
    state: Literal["running", "done", "failed", "stopped"]
    progress: str
    seconds: float
    error: str | None = None
    result: dict[str, Any] | None = Field(
        default=None,
        description="when done: per-element status and text (run), per-epoch metrics (train)",
    )


class JobList(BaseModel):
    jobs: list[JobStatus]


class TraceRecord(BaseModel):
    fn: str
    node: str | None
    kind: Literal["numeric", "symbolic"]
    targets: dict[str, str] = Field(default_factory=dict, description="what this node should say")
    input_targets: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="what the upstream nodes should have said"
    )
    rows: list[str] = Field(default_factory=list, description="experience changes proposed")
    patches: list[str] = Field(default_factory=list)
    row_credit: dict[str, Any] = Field(default_factory=dict)
    nonzero_gradients: int | None = Field(
        default=None, description="numeric backward: how many gradient entries are not zero"
    )


class TraceShow(BaseModel):
    path: str = Field(description="the step file read (the full records)")
    step: int
    steps: list[int] = Field(description="every step recorded in this run")
    calls: int = Field(description="backward calls in this step")
    records: list[TraceRecord]


# ---- helpers ------------------------------------------------------------------------------------
def _state(ctx: Context) -> ServerState:
    return ctx.request_context.lifespan_context


def allowed(path: str) -> Path:
    """A path the server may touch (the data home, its cwd, MCP_HARNESS_ALLOWED_DIRS)."""
    return allowed_path(path)


def confined_module(module: str) -> str:
    """A module name or path, once its directory and every experience its module.json names
    are confined: inside the allowed roots, with no symlink leading out of them (training
    writes that experience, module_show reads it, export_skill copies it)."""
    from mcp_harness.runtime import module as modules
    from mcp_harness.runtime.graph import load_spec

    given = check_name(module, "module")
    if "/" in module or module.startswith((".", "~")):
        given = str(allowed(module))
    path = confined_tree(modules.resolve(given), "module")
    spec = load_spec(path / modules.SPEC)
    declared = spec.get("experience", {}) if isinstance(spec, dict) else {}
    for name, relative in declared.items() if isinstance(declared, dict) else ():
        confined_tree(path / str(relative), f"module {path.name!r} experience {name!r}")
    return given


def _status(job: Job, with_result: bool = True) -> JobStatus:
    summary = job.summary()
    if not with_result:
        summary["result"] = None
    return JobStatus(**summary)


def _clip(text: str, what: str, limit: int) -> str:
    return fit(text, what, limit=max(limit, TEXT_FLOOR))


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# ---- module_list / module_show ------------------------------------------------------------------
def _description(spec_path: Path) -> str:
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return f"(module.json unreadable: {exc})"
    return str(spec.get("description", "")) if isinstance(spec, dict) else ""


def list_modules() -> ModuleList:
    from mcp_harness.runtime import module as modules

    home = modules.modules_home()
    builtins = modules.builtin_names()
    installed = (
        {p.name: p for p in home.iterdir() if (p / modules.SPEC).is_file()} if home.is_dir() else {}
    )
    infos = []
    for name in sorted({*builtins, *installed}):
        path = installed.get(name)
        if path is not None:
            description = _description(path / modules.SPEC)
        else:
            template = resources.files("mcp_harness.modules").joinpath(name, modules.SPEC)
            with resources.as_file(template) as spec_path:
                description = _description(spec_path)
        infos.append(
            ModuleInfo(
                name=name,
                builtin=name in builtins,
                installed=path is not None,
                path=str(path) if path else None,
                description=description,
            )
        )
    return ModuleList(modules=infos, modules_home=str(home))


def show_module(module: str) -> ModuleShow:
    from mcp_harness.runtime import module as modules

    loaded = modules.load(confined_module(module))
    graph = loaded.graph()
    experience = []
    for name, tensor in loaded.experience.items():
        stats = tensor.stats()
        experience.append(
            ExperienceInfo(
                name=name,
                path=stats["path"],
                rows=stats["rows"],
                sources=stats["sources"],
                weight_mean=stats["weight_mean"],
            )
        )
    return ModuleShow(
        name=loaded.name,
        path=str(loaded.path),
        description=str(loaded.spec.get("description", "")),
        dims=graph.dims,
        inputs=_plain(loaded.spec.get("inputs", {})),
        output=graph.output.name,
        nodes=[NodeInfo(**_plain(node)) for node in graph.describe()],
        experience=experience,
    )


# ---- module runs --------------------------------------------------------------------------------
def _run_inputs(
    loaded: Any, given: dict[str, list[str] | str], dims: dict[str, int] | None
) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Inputs as batches of equal size, workdirs checked, dims checked and bound."""
    declared = loaded.spec.get("inputs", {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise HarnessError(
            f"module {loaded.name!r} has no input {unknown[0]!r}",
            f"its inputs are: {', '.join(declared)}",
        )
    sizes = {name: len(value) for name, value in given.items() if not isinstance(value, str)}
    if any(size == 0 for size in sizes.values()):
        empty = next(name for name, size in sizes.items() if size == 0)
        raise HarnessError(f"input {empty!r} is an empty list", "give one value per task")
    if len(set(sizes.values())) > 1:
        raise HarnessError(
            f"input lists have different lengths: {sizes}",
            "give every list one value per task (a string is the same for every task)",
        )
    batch = next(iter(sizes.values()), 1)
    inputs = {
        name: [value] * batch if isinstance(value, str) else list(value)
        for name, value in given.items()
    }
    if "workdir" in inputs:
        checked = []
        for value in inputs["workdir"]:
            where = allowed(value)
            if not where.is_dir():
                raise HarnessError(
                    f"workdir {value!r} is not a directory",
                    "create it first, or leave out workdir to get a fresh empty directory",
                )
            checked.append(str(where))
        inputs["workdir"] = checked
    missing = sorted(set(declared) - set(inputs) - {"workdir"})
    if missing:
        raise HarnessError(
            f"module {loaded.name!r} needs inputs {missing}",
            f"give {', '.join(missing)} (a string, or a list with one value per task)",
        )
    bound = dict(dims or {})
    spec_dims = loaded.spec.get("dims", {})
    for name, size in bound.items():
        if name not in spec_dims:
            raise HarnessError(
                f"module {loaded.name!r} has no dim {name!r}",
                f"its dims are: {', '.join(spec_dims) or 'none'}",
            )
        if size < 0:
            raise HarnessError(f"dim {name}={size} is negative", "give a size of 0 or more")
    if "batch" in spec_dims and "batch" not in bound:
        bound["batch"] = batch
    return inputs, bound


def _fresh_workdirs(loaded: Any, inputs: dict[str, list[str]]) -> None:
    """A fresh empty workdir per task when the module wants one and none was given."""
    from mcp_harness.paths import data_home

    if "workdir" in loaded.spec.get("inputs", {}) and "workdir" not in inputs:
        size = len(next(iter(inputs.values()), [""]))
        base = data_home() / "server" / "work" / f"{loaded.name}-{uuid.uuid4().hex[:8]}"
        inputs["workdir"] = [str(base / str(index)) for index in range(size)]
        for workdir in inputs["workdir"]:
            Path(workdir).mkdir(parents=True, exist_ok=True)


def _run_progress(forward: Any, graph: Any, kernel: Any, started: float) -> str:
    computed = sum(len(v) for v in forward.results.values())
    done = len(forward.results.get(graph.output.name, {}))
    return (
        f"running: {done}/{graph.output.numel} results done, {computed} elements computed, "
        f"{kernel.usage.calls} kernel calls, {len(forward.sessions)} terminals "
        f"[{time.time() - started:.0f} s]"
    )


def _run_result(forward: Any, elements: list[Any], kernel: Any, seconds: float) -> dict[str, Any]:
    limit = LIMIT_CHARS // max(1, len(elements)) - 200
    rows = [
        {
            "index": index,
            "ok": element.status.ok,
            "status": str(element.status),
            "text": _clip(element.text, "run-element", limit),
            "meta": _plain(element.meta),
        }
        for index, element in enumerate(elements)
    ]
    return {
        "run_dir": str(forward.run_dir),
        "seconds": round(seconds, 2),
        "passed": sum(row["ok"] for row in rows),
        "total": len(rows),
        "elements": rows,
        "kernel": kernel.summary(),
    }


async def start_run(
    state: ServerState,
    module: str,
    inputs: dict[str, list[str] | str],
    kernel: str | None,
    dims: dict[str, int] | None,
) -> JobStarted:
    from mcp_harness.kernels.config import make_kernel
    from mcp_harness.runtime import module as modules

    state.check_room()

    def prepare() -> tuple[Any, Any, Any, dict[str, list[str]], Any]:
        loaded = modules.load(confined_module(module))
        runner = make_kernel(kernel)
        batch, bound = _run_inputs(loaded, inputs, dims)
        size = len(next(iter(batch.values()), []))
        caps = limits()
        if size > caps.batch:
            raise caps.exceeded("tasks in this run", size, "batch", "run fewer at once")
        _fresh_workdirs(loaded, batch)
        graph, forward = modules.prepare(loaded, batch, kernel=runner, dims=bound)
        return loaded, graph, forward, batch, runner

    loaded, graph, forward, batch, runner = await anyio.to_thread.run_sync(prepare)
    run_dir = forward.run_dir
    size = len(next(iter(batch.values()), []))

    async def work(job: Job) -> dict[str, Any]:
        started = time.time()
        async with forward:  # the run's terminals end with it, however it ends
            task = asyncio.ensure_future(forward.forward(graph.output))
            try:
                while True:
                    finished, _ = await asyncio.wait({task}, timeout=PROGRESS_EVERY_S)
                    job.progress = _run_progress(forward, graph, runner, started)
                    if finished:
                        break
                elements = task.result()
            except BaseException:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                raise
        return _run_result(forward, elements, runner, time.time() - started)

    job = state.start(
        "run", f"run {loaded.name} on {size} task{'s' if size != 1 else ''} ({run_dir})", work
    )
    return JobStarted(
        job_id=job.id,
        kind=job.kind,
        description=job.description,
        state=job.state,
        files=str(run_dir),
        next=f"poll job_status(job_id={job.id!r}); job_stop stops it and kills its terminals",
    )


# ---- training -----------------------------------------------------------------------------------
class _JobProgress:
    """Training progress (`trainer.Progress`), written to `job.progress`; lines are kept."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.lines: list[str] = []

    def bar(self, prefix: str, done: int, total: int, suffix: str) -> None:
        self.job.progress = f"{prefix}: {done}/{total} {suffix}"

    def status(self, text: str) -> None:
        self.job.progress = text

    def line(self, text: str) -> None:
        self.lines.append(text)
        self.job.progress = text


async def start_training(
    state: ServerState,
    module: str,
    data: str,
    val: str | None,
    epochs: int,
    batch: int,
    kernel: str | None,
) -> JobStarted:
    from mcp_harness.runtime import module as modules
    from mcp_harness.training import job as training

    state.check_room()
    caps = limits()
    if batch > caps.batch:
        raise caps.exceeded("batch", batch, "batch")
    data_path = allowed(data)
    val_path = allowed(val) if val is not None else None
    for label, path in (("data", data_path), ("val", val_path)):
        if path is not None and not path.is_file():
            raise HarnessError(
                f"{label} {path}: no such dataset file",
                "give a JSON Lines file of tasks (format: mcp-harness README, Training)",
            )
    given: dict[str, Any] = {"epochs": epochs, "batch": batch}
    if kernel is not None:
        given["kernel"] = kernel
    name = confined_module(module)
    target = await anyio.to_thread.run_sync(modules.resolve, name)
    busy = [
        job_id
        for job_id, trained in _TRAINING.items()
        if trained == target and job_id in state.jobs and state.jobs[job_id].state == "running"
    ]
    if busy or target in _STARTING:
        where = f"job {busy[0]}" if busy else "a job being started"
        raise HarnessError(
            f"module {target.name!r} is already training in {where}",
            "wait for it to end (job_status) or stop it (job_stop), then start again",
        )
    _STARTING.add(target)
    try:
        run = await anyio.to_thread.run_sync(
            lambda: training.start(name, data_path, val_path, given)
        )
    finally:
        _STARTING.discard(target)
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
    _TRAINING[job.id] = target
    return JobStarted(
        job_id=job.id,
        kind=job.kind,
        description=job.description,
        state=job.state,
        files=str(run.out),
        next=(
            f"poll job_status(job_id={job.id!r}); job_stop keeps a checkpoint in {run.out} "
            f"(continue with: {resume})"
        ),
    )


# ---- jobs ---------------------------------------------------------------------------------------
async def job_wait(job: Job, seconds: float) -> None:
    if seconds > 0 and job.task is not None and not job.task.done():
        await asyncio.wait({job.task}, timeout=seconds)


async def stop_job(state: ServerState, job_id: str) -> JobStatus:
    job = state.get(job_id)
    if job.task is not None and not job.task.done():
        job.progress = "stopping"
        job.task.cancel()
        await asyncio.wait({job.task}, timeout=STOP_WAIT_S)
    return _status(job, with_result=False)


# ---- trace_show ---------------------------------------------------------------------------------
def _nonzero(value: Any) -> int:
    if isinstance(value, list):
        return sum(_nonzero(v) for v in value)
    return int(isinstance(value, (int, float)) and value != 0)


def _texts(mapping: Any, what: str) -> dict[str, str]:
    if not isinstance(mapping, dict):
        return {}
    return {str(k): _clip(str(v), what, RECORD_TEXT_LIMIT) for k, v in mapping.items()}


def _record(raw: dict[str, Any]) -> TraceRecord:
    inputs = raw.get("inputs") if isinstance(raw.get("inputs"), dict) else {}
    output = raw.get("output")
    node = inputs.get("node")
    base = {"fn": str(raw.get("fn", "?")), "node": None if node is None else str(node)}
    if not isinstance(output, dict):
        return TraceRecord(**base, kind="numeric", nonzero_gradients=_nonzero(output))
    input_targets = output.get("input_targets", {})
    return TraceRecord(
        **base,
        kind="symbolic",
        targets=_texts(inputs.get("targets"), "trace-target"),
        input_targets={
            str(name): _texts(targets, "trace-target")
            for name, targets in (input_targets.items() if isinstance(input_targets, dict) else [])
        },
        rows=[_clip(str(r), "trace-row", RECORD_TEXT_LIMIT) for r in output.get("rows", [])],
        patches=[
            _clip(str(p), "trace-patch", RECORD_TEXT_LIMIT) for p in output.get("patches", [])
        ],
        row_credit=_plain(output.get("row_credit", {})),
    )


def show_trace(run_dir: str, step: int | None) -> TraceShow:
    from mcp_harness.runtime.reflection import load_records

    where = allowed(run_dir)
    if not where.exists():
        raise HarnessError(
            f"{run_dir}: no such directory", "give a training run's out dir (job_status shows it)"
        )
    folder = where.parent if where.is_file() else where
    if (folder / "trace").is_dir():
        folder = folder / "trace"
    steps = sorted(
        int(p.stem.split("-")[1])
        for p in folder.glob("step-*.jsonl")
        if p.stem.split("-")[1].isdigit()
    )
    if where.is_file():
        path = where
    else:
        if not steps:
            raise HarnessError(
                f"{run_dir}: no reflection records (trace/step-<n>.jsonl)",
                "point at a training run directory (the 'out' of a module_train_start result)",
            )
        chosen = steps[-1] if step is None else step
        if chosen not in steps:
            raise HarnessError(
                f"{run_dir}: no step {chosen}",
                f"steps recorded: {', '.join(map(str, steps))}",
            )
        path = folder / f"step-{chosen}.jsonl"
    path = confined_file(path, "trace step file")
    try:
        records = load_records(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HarnessError(
            f"{path}: not a reflection record file ({exc})",
            "give a training run dir, its trace/ dir or a trace/step-<n>.jsonl file",
        ) from None
    number = path.stem.split("-")[-1]
    return TraceShow(
        path=str(path),
        step=int(number) if number.isdigit() else 0,
        steps=steps,
        calls=len(records),
        records=[_record(r) for r in records if isinstance(r, dict)],
    )


# ---- registration -------------------------------------------------------------------------------
def register(server: MCPServer) -> None:
    @server.tool(
        title="List modules",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    @tool_errors
    def module_list() -> ModuleList:
        """The harness modules available: built-in templates (such as 'coder') and modules under
        the data dir. A built-in is copied to the data dir on first use."""
        return list_modules()

    @server.tool(
        title="Show a module",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    @tool_errors
    def module_show(module: Annotated[str, Field(description=MODULE_HELP)]) -> ModuleShow:
        """A module's graph (nodes with ops, inputs and shapes; dims; run inputs) and its
        experience tensors (rows, sources, mean weight)."""
        return show_module(module)

    @server.tool(
        title="Start a module run",
        annotations=ToolAnnotations(destructive_hint=True, open_world_hint=True),
    )
    @tool_errors
    async def module_run_start(
        ctx: Context,
        module: Annotated[str, Field(description=MODULE_HELP)],
        inputs: Annotated[
            dict[str, list[str] | str],
            Field(
                description="run inputs by name: a list gives one value per task (all lists "
                "the same length), a string is the same for every task. For 'coder': task, "
                "check (a shell command that exits 0 when the task is done) and workdir (a "
                "directory; left out: a fresh empty one per task)"
            ),
        ],
        kernel: Annotated[str | None, Field(description=KERNEL_HELP)] = None,
        dims: Annotated[
            dict[str, int] | None,
            Field(description='override named sizes of the graph, e.g. {"steps": 8}'),
        ] = None,
    ) -> JobStarted:
        """Start running a module on inputs in the background (each task in its own real tmux
        terminal); returns a job id at once. Poll job_status for progress and, when done, each
        element's status and text; job_stop cancels the run and kills its terminals."""
        return await start_run(_state(ctx), module, inputs, kernel, dims)

    @server.tool(
        title="Start training a module",
        annotations=ToolAnnotations(destructive_hint=True, open_world_hint=True),
    )
    @tool_errors
    async def module_train_start(
        ctx: Context,
        module: Annotated[str, Field(description=MODULE_HELP)],
        data: Annotated[
            str,
            Field(
                description="training tasks, a JSON Lines file: one "
                '{"inputs": {...}, "targets": {"<node>": "text"}, "files": {...}} per line'
            ),
        ],
        val: Annotated[
            str | None,
            Field(
                description="the val set: other tasks (same format), measured before training "
                "and after every epoch, and the gate of every step (a step that raises its "
                "loss is rejected); not the data file"
            ),
        ] = None,
        epochs: Annotated[int, Field(ge=1, le=1000, description="passes over the data")] = 2,
        batch: Annotated[int, Field(ge=1, le=1024, description="tasks per training step")] = 4,
        kernel: Annotated[str | None, Field(description=KERNEL_HELP)] = None,
    ) -> JobStarted:
        """Start training a module's experience on a dataset in the background; returns a job
        id at once. The module's experience changes (every epoch is checkpointed in the run's
        out dir). Poll job_status for progress and per-epoch metrics; job_stop stops it after
        saving a checkpoint; trace_show explains each step. Bad input (a val set that is the
        data, a task whose check already passes on its fresh workspace) is refused at once."""
        return await start_training(_state(ctx), module, data, val, epochs, batch, kernel)

    @server.tool(
        title="Job status",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    @tool_errors
    async def job_status(
        ctx: Context,
        job_id: Annotated[str, Field(description="the id module_run_start/_train_start gave")],
        wait_seconds: Annotated[
            float,
            Field(ge=0, le=MAX_WAIT_S, description="wait up to this long for the job to end"),
        ] = 0,
    ) -> JobStatus:
        """A background job's state (running, done, failed, stopped), its progress line and,
        when done, its result: per-element status and text for a run, per-epoch metrics for
        training."""
        job = _state(ctx).get(job_id)
        await job_wait(job, wait_seconds)
        return _status(job)

    @server.tool(
        title="Stop a job",
        annotations=ToolAnnotations(
            destructive_hint=True, idempotent_hint=True, open_world_hint=False
        ),
    )
    @tool_errors
    async def job_stop(
        ctx: Context,
        job_id: Annotated[str, Field(description="the job to stop")],
    ) -> JobStatus:
        """Stop a background job. A run is cancelled and its terminals killed; training stops
        after saving a checkpoint of the epoch so far (resume: mcp-harness train --resume
        <out>). A job that already ended is left as it is."""
        return await stop_job(_state(ctx), job_id)

    @server.tool(
        title="List jobs",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    @tool_errors
    async def job_list(ctx: Context) -> JobList:
        """Every background job of this server (runs and training), newest last, without
        results (job_status gives a job's result)."""
        return JobList(jobs=[_status(job, with_result=False) for job in _state(ctx).jobs.values()])

    @server.tool(
        title="Show a training step's trace",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    @tool_errors
    def trace_show(
        run_dir: Annotated[
            str,
            Field(
                description="a training run's out dir, its trace/ dir or one step-<n>.jsonl file"
            ),
        ],
        step: Annotated[
            int | None, Field(ge=1, description="the step number (default: the last)")
        ] = None,
    ) -> TraceShow:
        """Why training changed the module in one step: each backward call's reflection record
        (numeric ones summarised; symbolic ones with the targets each node should have said and
        the experience rows proposed)."""
        return show_trace(run_dir, step)
