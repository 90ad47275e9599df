"""The pane pool under concurrent runs: one run closing its last pane while another starts its
own must not take the other's runner down (exit-empty ends the emptied server under it)."""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
import time
from pathlib import Path

from mcp_harness.terminal import pool
from mcp_harness.terminal.tmux import TmuxError

ROUNDS = 60  # without the retry, about one round in twenty lost a runner this way


def _run(root: Path, panes: int, hold: float, errors: list[str]) -> None:
    """One module run: claim `panes` panes at once, hold each `hold` s, close the owner."""
    owner = pool.Panes()

    def one() -> None:
        try:
            held = pool.claim(root, owner)
            time.sleep(hold)  # a command running in the pane
            held.release()
        except TmuxError as error:
            errors.append(str(error))

    threads = [threading.Thread(target=one) for _ in range(panes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    owner.close()


def test_a_run_ending_while_another_starts_keeps_the_others_runners() -> None:
    errors: list[str] = []
    timing = random.Random(0)  # spread the second run's start over the first one's life
    for _ in range(ROUNDS):
        root = Path(tempfile.mkdtemp(prefix="mh-", dir="/tmp"))
        try:
            first = threading.Thread(target=_run, args=(root, 1, timing.uniform(0, 0.05), errors))
            first.start()
            time.sleep(timing.uniform(0, 0.05))
            _run(root, 2, timing.uniform(0, 0.05), errors)
            first.join()
        finally:
            pool.shutdown(root)
            shutil.rmtree(root, ignore_errors=True)
    assert errors == []
