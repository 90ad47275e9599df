"""What lives as long as the server process: background jobs (module runs, training), at
most `limits.jobs` running at once, the module each training job trains, the lock of each
terminal, and the client sessions that get notifications (list_changed, log messages)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp_harness.errors import HarnessError
from mcp_harness.limits import limits
from mcp_harness.redaction import redact

if TYPE_CHECKING:
    from mcp_harness.server.experience_cache import ExperienceCache

log = logging.getLogger("mcp_harness.server")


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
    count: int = 0  # units of work done (elements computed, training steps): progress rises with it

    def advance(self, progress: str, count: int | None = None) -> None:
        """Record progress: a line, and the work done so far (one more unit if not given)."""
        self.progress = progress
        self.count = max(self.count, count) if count is not None else self.count + 1

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
    # Training job id -> the module directory it trains (one training job per module), and
    # modules whose training is being set up right now.
    training: dict[str, Path] = field(default_factory=dict)
    starting: set[Path] = field(default_factory=set)
    # The per-module tools (`module_tools.ModuleTools`), when the modules toolset is served.
    module_tools: Any = None
    # Handshake-era client connections seen on a request: where notifications go.
    sessions: weakref.WeakSet[Any] = field(default_factory=weakref.WeakSet)
    _experience: ExperienceCache | None = field(default=None, init=False, repr=False)
    _experience_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def experience(self) -> ExperienceCache:
        """The experiences opened by tools, each opened once; made on first use, since its
        import (the experience store) is no part of a server's start."""
        with self._experience_lock:  # tools run in worker threads
            if self._experience is None:
                from mcp_harness.server.experience_cache import ExperienceCache

                self._experience = ExperienceCache()
            return self._experience

    def training_job(self, module: Path) -> str | None:
        """The running job training `module`, or "starting" while one is set up, else None."""
        for job_id, trained in self.training.items():
            if trained == module and job_id in self.jobs and self.jobs[job_id].state == "running":
                return job_id
        return "starting" if module in self.starting else None

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
                log.info("job %s (%s) done", job.id, job.description)
            except HarnessError as exc:
                job.error = str(exc)
                log.warning("job %s (%s) failed: %s", job.id, job.description, redact(job.error))
            except asyncio.CancelledError:
                job.progress = "stopped"
                log.info("job %s (%s) stopped", job.id, job.description)
                raise
            except Exception as exc:  # a job must never take the server down
                job.error = f"{type(exc).__name__}: {exc}"
                log.exception("job %s (%s) failed", job.id, job.description)

        job.task = asyncio.get_running_loop().create_task(runner())
        self.jobs[job.id] = job
        log.info("job %s started: %s", job.id, job.description)
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
        if self._experience is not None:
            self._experience.close()
