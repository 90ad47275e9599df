"""A run's element files, written by one background thread in batches.

Why: a forward pass completes elements faster than a thread hand-off each can keep up with
(every hand-off wakes the writer thread, which then contends for the GIL with the event loop).
Elements queue here; a job waits up to `GATHER_S` for `BATCH` of them (less once `wait` is
called) and then writes every element queued so far, so a hand-off carries many elements and
each is on disk soon after. A writer that falls behind finds a full batch and never waits.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from mcp_harness.storage import layout

GATHER_S = 0.05  # how long a job lets elements queue up before it writes them
BATCH = 32  # elements a job writes without waiting


class ElementWriter:
    """Writes `(tensor dir, flat index, text)` elements with `layout.write_fresh_elements`."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="run-writer")
        self._lock = threading.Lock()
        self._queued: dict[Path, dict[int, str]] = {}
        self._count = 0  # elements queued
        self._full = threading.Event()  # set once BATCH are queued, or while `wait` waits
        self._scheduled = False  # a job is submitted that has not taken the queue yet
        self._waiting = False  # `wait` is waiting
        self._jobs: list[Future[None]] = []

    def write(self, tensor_dir: Path, flat: int, text: str) -> None:
        """Queue one element; a job is submitted unless one is already waiting to start."""
        with self._lock:
            self._queued.setdefault(tensor_dir, {})[flat] = text
            self._count += 1
            if self._count >= BATCH:
                self._full.set()
            if self._scheduled:
                return
            self._scheduled = True
        self._jobs.append(self._executor.submit(self._drain))

    def _drain(self) -> None:
        self._full.wait(GATHER_S)
        with self._lock:
            batch, self._queued, self._scheduled, self._count = self._queued, {}, False, 0
            if not self._waiting:
                self._full.clear()
        for tensor_dir, items in batch.items():
            layout.write_fresh_elements(tensor_dir, items)

    def wait(self) -> None:
        """Block until every queued element is written; a failed write raises here."""
        jobs, self._jobs = self._jobs, []
        with self._lock:
            self._waiting = True
            self._full.set()
        try:
            for job in jobs:
                job.result()
        finally:
            with self._lock:
                self._waiting = False
                self._full.clear()
