"""Training benchmark: does the coder learn, deterministically, and how long does a step take?

Why: the product's claim is that harness modules improve through training. Measured in one
process run on the offline kernel, twice from scratch (to show the numbers repeat):

1. held-out success of the coder on the demo's 7 held-out tasks before and after training on
   its training tasks (`mcp_harness.demo.tasks`: other instances of the same families, with
   other file names, patterns and commands), and the difference in points;
2. one training step on a batch of 4 tasks: the whole step and its phases (forward in real
   tmux, loss + numeric and symbolic backward, StSGD).

Run: `.venv/bin/python benchmarks/training.py`. Uses a private data dir and tmux server.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

from mcp_harness import demo
from mcp_harness.kernels.config import make_kernel
from mcp_harness.terminal.pool import shutdown


async def session(root: Path) -> dict[str, float]:
    trainer, _ = demo.coder_trainer(root, make_kernel("offline"))
    split = demo.tasks()
    heldout = [task.example for task in split.heldout]
    train = [task.example for task in split.train]
    val = [task.example for task in split.val]
    before = await trainer.evaluate(heldout)
    started = time.perf_counter()
    await trainer.step(train[:4])  # one ungated step on a batch of 4
    step = time.perf_counter() - started
    timing = trainer.last_timing
    await trainer.fit(train, demo.EPOCHS, batch_size=4, val=val)
    after = await trainer.evaluate(heldout)
    return {"before": before.success, "after": after.success, "step_s": step, **timing}


def main() -> None:
    results = []
    for attempt in range(2):
        root = Path(tempfile.mkdtemp(prefix="mh-train-", dir="/tmp"))
        os.environ["MCP_HARNESS_RUNTIME_DIR"] = str(root / "rt")
        try:
            with demo._home(root / "home"):
                results.append(asyncio.run(session(root)))
        finally:
            shutdown(root / "rt")
            shutil.rmtree(root, ignore_errors=True)
        r = results[-1]
        print(
            f"run {attempt + 1}: held-out success {r['before']:.0%} -> {r['after']:.0%} "
            f"({(r['after'] - r['before']) * 100:+.0f} points); one step on a batch of 4: "
            f"{r['step_s'] * 1000:.0f} ms (forward {r['forward_s'] * 1000:.0f} ms, backward "
            f"{r['backward_s'] * 1000:.0f} ms, StSGD {r['optimizer_s'] * 1000:.0f} ms)"
        )
    same = all(
        r["before"] == results[0]["before"] and r["after"] == results[0]["after"] for r in results
    )
    gain = (results[0]["after"] - results[0]["before"]) * 100
    print(f"  {'PASS' if gain >= 30 else 'MISS'}  held-out success +{gain:.0f} points >= 30")
    print(f"  {'PASS' if same else 'MISS'}  same numbers on a rerun")
    worst = max(r["step_s"] for r in results)
    print(
        f"  {'PASS' if worst < 1 else 'MISS'}  one step (batch of 4) under a second: "
        f"{worst * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
