"""What lives as long as the server process: background jobs (module runs, training), at
most `limits.jobs` running at once, and the lock of each terminal."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mcp_harness.errors import HarnessError
from mcp_harness.limits import limits
from mcp_harness.redaction import redact


@dataclass
class Job:
    """A long piece of work started by one tool call and followed by others."""

    id: str
    kind: str
    description: str
    task: asyncio.Task[Any] | None = None
    progress: str = "starting"
    started: float = field(default_factory=time.time)
    result: Any = None
    error: str | None = None

    @property
    def state(self) -> str:
        if self.task is None or not self.task.done():
            return "running"
        if self.task.cancelled():
            return "stopped"
        return "failed" if self.error else "done"

    def summary(self) -> dict[str, Any]:
        return {
            "job_id": self.id,
            "kind": self.kind,
            "description": self.description,
            "state": self.state,
            "progress": redact(self.progress),
            "seconds": round(time.time() - self.started, 1),
            "error": None if self.error is None else redact(self.error),
            "result": self.result if self.state == "done" else None,
        }


@dataclass
class ServerState:
    jobs: dict[str, Job] = field(default_factory=dict)
    # One command at a time per terminal: terminal_run holds its terminal's lock.
    terminal_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def terminal_lock(self, name: str) -> asyncio.Lock:
        return self.terminal_locks.setdefault(name, asyncio.Lock())

    def start(self, kind: str, description: str, work: Callable[[Job], Awaitable[Any]]) -> Job:
        """Run `work(job)` in the background; it may update `job.progress` as it goes (at
        most `limits.jobs` running at once)."""
        self.check_room()
        job = Job(uuid.uuid4().hex[:10], kind, description)

        async def runner() -> None:
            try:
                job.result = await work(job)
                job.progress = "finished"
            except HarnessError as exc:
                job.error = str(exc)
            except asyncio.CancelledError:
                job.progress = "stopped"
                raise
            except Exception as exc:  # a job must never take the server down
                job.error = f"{type(exc).__name__}: {exc}"

        job.task = asyncio.get_running_loop().create_task(runner())
        self.jobs[job.id] = job
        return job

    def check_room(self) -> None:
        """A HarnessError if another job would exceed the `jobs` limit."""
        running = sum(job.state == "running" for job in self.jobs.values())
        caps = limits()
        if running >= caps.jobs:
            raise caps.exceeded(
                "background jobs running, with this one",
                running + 1,
                "jobs",
                "wait for a job to end (job_status) or stop one (job_stop)",
            )

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            known = ", ".join(self.jobs) or "none"
            raise HarnessError(f"unknown job {job_id!r}", f"use a job id from this server: {known}")
        return job

    async def close(self, grace: float = 5.0) -> None:
        """Stop running jobs and give them `grace` seconds to save (a checkpoint, a record)."""
        running = [j.task for j in self.jobs.values() if j.task is not None and not j.task.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=grace)
