"""Module runs as the server makes them: inputs checked and put in batches, a fresh workdir
per task when none is given, the run started as a job whose progress rises with every element
computed, and its result read per task (passed, commands, final screen, run dir).

`start` is shared by `module_run_start` (which returns the job at once) and each module's own
tool (which follows the job for a while and answers with the result when it ends in time).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
from pydantic import Field

from mcp_harness.errors import HarnessError
from mcp_harness.limits import limits
from mcp_harness.server.confine import allowed_path, check_name, confined_tree
from mcp_harness.server.declare import Result
from mcp_harness.server.output import LIMIT_CHARS, fit
from mcp_harness.server.state import Job, ServerState

POLL_S = 0.25
TEXT_FLOOR = 400  # the least each task's screen keeps in a result
SCREEN_LINES = 12


class TaskOutcome(Result):
    index: int
    passed: bool
    commands: list[str] = Field(description="what each step ran ('(none: why)' if nothing)")
    screen: str = Field(description="the final screen (its last lines)")
    reason: str | None = Field(default=None, description="why a failed task failed")


class RunResult(Result):
    run_dir: str = Field(description="every node's elements, statuses and metadata")
    seconds: float
    passed: int
    total: int
    tasks: list[TaskOutcome]
    kernel: str = Field(description="the kernel and what it spent")


class JobStarted(Result):
    job_id: str
    kind: str
    description: str
    state: str
    files: str = Field(description="where the job writes its files (run dir, training out dir)")
    next: str = Field(description="what to call next")


def confined_module(module: str) -> str:
    """A module name or path, once its directory and every experience directory its
    module.json names are confined: inside the allowed roots, with no symlink leading out of
    them (training writes that experience, module_show reads it, export_skill copies it)."""
    from mcp_harness.runtime import module as modules
    from mcp_harness.runtime.graph import load_spec

    given = check_name(module, "module")
    if "/" in module or module.startswith((".", "~")):
        given = str(allowed_path(module))
    path = confined_tree(modules.resolve(given), "module")
    for name, where in modules.stores(path, load_spec(path / modules.SPEC)).items():
        if isinstance(where, Path):  # a pool address is not a path
            confined_tree(where, f"module {path.name!r} experience {name!r}")
    return given


def batches(
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
            try:
                where = allowed_path(value)
            except HarnessError as exc:
                raise HarnessError(f"input 'workdir': {exc.message}", exc.fix) from None
            if not where.is_dir():
                raise HarnessError(
                    f"input 'workdir': {value!r} is not a directory",
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


def _progress(forward: Any, graph: Any, kernel: Any, started: float) -> tuple[str, int]:
    computed = sum(len(v) for v in forward.results.values())
    done = len(forward.results.get(graph.output.name, {}))
    line = (
        f"running: {done}/{graph.output.numel} tasks done, {computed} elements computed, "
        f"{kernel.usage.calls} kernel calls, {len(forward.sessions)} terminals "
        f"[{time.time() - started:.0f} s]"
    )
    return line, computed


def _outcome(report: Any, index: int, limit: int) -> TaskOutcome:
    from mcp_harness.training.outcomes import task_run

    done = task_run(report, index)
    lines = [line for line in done.screen.splitlines() if line.strip()][-SCREEN_LINES:]
    reason = None
    if not done.passed:
        meta = done.element.meta
        reason = str(meta.get("reason") or f"the check still failed: {done.element.text[:200]}")
    return TaskOutcome(
        index=index,
        passed=done.passed,
        commands=[s.text if s.ok else f"(none: {s.text})" for s in done.steps],
        screen=fit("\n".join(lines), "run-screen", limit=max(limit, TEXT_FLOOR)),
        reason=reason,
    )


def result(report: Any, kernel: Any) -> RunResult:
    """A finished run, task by task."""
    count = len(report.elements)
    limit = LIMIT_CHARS // max(1, count) - 300
    tasks = [_outcome(report, index, limit) for index in range(count)]
    return RunResult(
        run_dir=str(report.run_dir),
        seconds=round(report.seconds, 2),
        passed=sum(t.passed for t in tasks),
        total=count,
        tasks=tasks,
        kernel=kernel.summary(),
    )


async def start(
    state: ServerState,
    module: str,
    inputs: dict[str, list[str] | str],
    kernel: str | None,
    dims: dict[str, int] | None,
) -> tuple[Job, Path]:
    """Check everything, then start the run as a job; the job and the run's directory."""
    from mcp_harness.kernels.config import make_kernel
    from mcp_harness.runtime import module as modules

    state.check_room()

    def prepare() -> tuple[Any, Any, Any, Any]:
        loaded = modules.load(confined_module(module))
        try:
            runner = make_kernel(kernel)
            batch, bound = batches(loaded, inputs, dims)
            size = len(next(iter(batch.values()), []))
            caps = limits()
            if size > caps.batch:
                raise caps.exceeded("tasks in this run", size, "batch", "run fewer at once")
            _fresh_workdirs(loaded, batch)
            graph, forward = modules.prepare(loaded, batch, kernel=runner, dims=bound)
        except BaseException:
            loaded.close()
            raise
        return loaded, graph, forward, runner

    loaded, graph, forward, runner = await anyio.to_thread.run_sync(prepare)
    size = graph.output.numel

    async def work(job: Job) -> dict[str, Any]:
        started = time.time()
        try:
            async with forward:  # the run's terminals end with it, however it ends
                task = asyncio.ensure_future(forward.forward(graph.output))
                try:
                    while True:
                        finished, _ = await asyncio.wait({task}, timeout=POLL_S)
                        job.advance(*_progress(forward, graph, runner, started))
                        if finished:
                            break
                    elements = task.result()
                except BaseException:
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
                    raise
        finally:
            loaded.close()  # its pool connections
        report = modules.RunReport(forward.run_dir, elements, graph, forward, time.time() - started)
        return json.loads(result(report, runner).model_dump_json())

    what = f"run {loaded.name} on {size} task{'s' if size != 1 else ''} ({forward.run_dir})"
    return state.start("run", what, work), forward.run_dir


def started(job: Job, files: Path, next_step: str) -> JobStarted:
    return JobStarted(
        job_id=job.id,
        kind=job.kind,
        description=job.description,
        state=job.state,
        files=str(files),
        next=next_step,
    )
