"""Job tools: follow (`job_status`), stop (`job_stop`) and list (`job_list`) the background
jobs that module runs and training start. `job_status` with `wait_seconds` reports the job's
progress to a call that carries a progress token."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_harness.server import notify
from mcp_harness.server.declare import READ, Result, tool
from mcp_harness.server.state import Job, ServerState

STOP_WAIT_S = 15.0  # how long job_stop waits for a job to wind down (checkpoint, terminals)
MAX_WAIT_S = 30.0


class JobStatus(Result):
    job_id: str
    kind: str = Field(description="run or train")
    description: str
    state: Literal["running", "done", "failed", "stopped"]
    progress: str
    seconds: float
    error: str | None = None
    result: dict[str, Any] | None = Field(
        default=None,
        description="when done: per-task outcome (run), per-epoch metrics (train)",
    )
    resource: str = Field(description="the job as a resource (harness://jobs/{id})")


class JobList(Result):
    jobs: list[JobStatus]


def status(job: Job, with_result: bool = True) -> JobStatus:
    summary = job.summary()
    if not with_result:
        summary["result"] = None
    return JobStatus(**summary, resource=f"harness://jobs/{job.id}")


async def stop(state: ServerState, job_id: str) -> JobStatus:
    job = state.get(job_id)
    if job.task is not None and not job.task.done():
        job.progress = "stopping"
        job.task.cancel()
        await asyncio.wait({job.task}, timeout=STOP_WAIT_S)
    return status(job, with_result=False)


def register(server: MCPServer) -> None:
    @tool(server, title="Job status", annotations=READ)
    async def job_status(
        ctx: Context,
        job_id: Annotated[str, Field(description="the id a run or training call gave")],
        wait_seconds: Annotated[
            float, Field(ge=0, le=MAX_WAIT_S, description="wait up to this long for the end")
        ] = 0,
    ) -> JobStatus:
        """A background job's state, progress line and, when done, its result (per-task
        outcome of a run, per-epoch metrics of training)."""
        job = ctx.request_context.lifespan_context.get(job_id)
        if wait_seconds > 0:
            await notify.follow(ctx, job, wait_seconds)
        return status(job)

    @tool(
        server,
        title="Stop a job",
        annotations=ToolAnnotations(
            destructive_hint=True, idempotent_hint=True, open_world_hint=False
        ),
    )
    async def job_stop(
        ctx: Context, job_id: Annotated[str, Field(description="the job to stop")]
    ) -> JobStatus:
        """Stop a background job: a run is cancelled and its terminals killed; training stops
        after a checkpoint (resume: mcp-harness train --resume <out>). An ended job is left
        as it is."""
        return await stop(ctx.request_context.lifespan_context, job_id)

    @tool(server, title="List jobs", annotations=READ)
    async def job_list(ctx: Context) -> JobList:
        """This server's background jobs, oldest first, without results."""
        jobs = ctx.request_context.lifespan_context.jobs.values()
        return JobList(jobs=[status(job, with_result=False) for job in jobs])
