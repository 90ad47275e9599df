"""Learning benchmark: does training make the coder solve new instances of what it was taught,
without making it run confident wrong commands on tasks it was not taught?

Task set: JSON Lines built like `mcp_harness/data/tasks/shell-families.jsonl` (the default):
task families of 5 instances, each with its own parameters (file names, patterns, counts);
instances 0-1 are split "train", 2 "val", 3-4 "heldout"; families marked "varied" also word
every instance differently; "unseen" families have only held-out tasks, share words with
trained ones and need other commands.

Protocol, on the offline kernel, twice from scratch (to show the numbers repeat):
1. a fresh copy of the coder module with the bundled harvested experience (`demo.coder_trainer`),
   a private data home and tmux server;
2. run every held-out task once (real tmux, up to `demo.STEPS` steps): passed or not, and
   whether it failed although a command ran with a confident (ok) status — a confident wrong
   command; "no matching experience" is not confident;
3. train on the "train" split, the "val" split as the optimizer's gate, 2 epochs, batch 4;
4. run the held-out tasks again, as in 2.

Run: `.venv/bin/python benchmarks/learning.py [TASKS.jsonl]`. Takes minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import shutil
import subprocess
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_harness import demo
from mcp_harness.kernels.config import make_kernel
from mcp_harness.terminal.pool import shutdown
from mcp_harness.training.outcomes import task_run
from mcp_harness.training.tasksets import Task, bundled, load_task_set
from mcp_harness.training.trainer import Example, Trainer

EPOCHS = 2
BATCH = 4
KINDS = {"same": "trained, same wording", "varied": "trained, varied wording", "unseen": "unseen"}
TARGETS = {"same": 0.85, "varied": 0.5}


@dataclass(frozen=True)
class Outcome:
    passed: bool
    confident_wrong: bool
    commands: tuple[str, ...]  # per step; "-" where no experience matched


async def outcomes(trainer: Trainer, examples: list[Example]) -> list[Outcome]:
    """One forward over `examples`: passed, and failed after a confident command."""
    report = await trainer.forward(examples)
    result = []
    for index in range(len(examples)):
        done = task_run(report, index)
        commands = tuple(s.text if s.ok else "-" for s in done.steps)
        wrong = not done.passed and any(s.ok for s in done.steps)
        result.append(Outcome(done.passed, wrong, commands))
    return result


async def session(root: Path, tasks: list[Task]) -> dict[str, Any]:
    trainer, _ = demo.coder_trainer(root, make_kernel("offline"))
    split = {s: [t.example for t in tasks if t.split == s] for s in ("train", "val", "heldout")}
    before = await outcomes(trainer, split["heldout"])
    history = (await trainer.fit(split["train"], EPOCHS, BATCH, val=split["val"]))["epochs"]
    after = await outcomes(trainer, split["heldout"])
    return {"before": before, "after": after, "history": history}


def fresh_session(tasks: list[Task]) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="mh-learn-", dir="/tmp"))
    os.environ["MCP_HARNESS_RUNTIME_DIR"] = str(root / "rt")
    try:
        with demo._home(root / "home"):
            return asyncio.run(session(root, tasks))
    finally:
        shutdown(root / "rt")
        shutil.rmtree(root, ignore_errors=True)


def _share(results: list[Outcome]) -> str:
    passed = sum(o.passed for o in results)
    return f"{passed}/{len(results)} ({passed / len(results):.0%})" if results else "-"


def table(heldout: list[Task], result: dict[str, Any]) -> list[str]:
    rows: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, task in enumerate(heldout):
        rows[(task.kind, task.family)].append(index)
    lines = [
        f"{'family':<20} {'kind':<24} {'before':>9} {'after':>9} {'wrong before':>13} "
        f"{'wrong after':>12}"
    ]
    for kind in KINDS:
        for (k, family), indices in sorted(rows.items()):
            if k != kind:
                continue
            b = [result["before"][i] for i in indices]
            a = [result["after"][i] for i in indices]
            lines.append(
                f"{family:<20} {KINDS[kind]:<24} {sum(o.passed for o in b):>5}/{len(b):<3} "
                f"{sum(o.passed for o in a):>5}/{len(a):<3} "
                f"{sum(o.confident_wrong for o in b):>13} {sum(o.confident_wrong for o in a):>12}"
            )
    return lines


def commands(heldout: list[Task], result: dict[str, Any]) -> list[str]:
    """Per held-out task: what ran before and after training ("-": no matching experience)."""
    lines = []
    for task, was, now in zip(heldout, result["before"], result["after"], strict=True):
        lines.append(f"{task.family}: {task.example.inputs['task']}")
        for label, outcome in (("before", was), ("after", now)):
            verdict = "PASS" if outcome.passed else "FAIL"
            lines.append(f"  {label:<6} {verdict}  {demo._steps(list(outcome.commands))}")
    return lines


def totals(heldout: list[Task], result: dict[str, Any]) -> tuple[list[str], bool]:
    lines, met = [], True
    for kind, label in KINDS.items():
        indices = [i for i, t in enumerate(heldout) if t.kind == kind]
        b = [result["before"][i] for i in indices]
        a = [result["after"][i] for i in indices]
        wrong_b, wrong_a = sum(o.confident_wrong for o in b), sum(o.confident_wrong for o in a)
        lines.append(
            f"{label:<24} success {_share(b)} -> {_share(a)}; "
            f"confident wrong commands {wrong_b} -> {wrong_a}"
        )
        if not indices:
            continue
        rate_b, rate_a = sum(o.passed for o in b) / len(b), sum(o.passed for o in a) / len(a)
        if kind in TARGETS:
            ok = rate_a >= TARGETS[kind]
            lines.append(f"  {'PASS' if ok else 'MISS'}  after >= {TARGETS[kind]:.0%}")
        else:
            ok = rate_a >= rate_b and wrong_a <= wrong_b
            lines.append(
                f"  {'PASS' if ok else 'MISS'}  success not lower after, "
                "no more confident wrong commands"
            )
        met &= ok
    return lines, met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="?", type=Path, help="task set (JSONL); default: bundled")
    parser.add_argument("-v", "--verbose", action="store_true", help="commands per held-out task")
    args = parser.parse_args()
    path = args.tasks or bundled()
    tasks = load_task_set(path)
    heldout = [t for t in tasks if t.split == "heldout"]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    count = {s: sum(t.split == s for t in tasks) for s in ("train", "val", "heldout")}
    families = {kind: len({t.family for t in tasks if t.kind == kind}) for kind in KINDS}
    print(
        f"learning benchmark {datetime.date.today()} | commit {commit or '?'} | offline kernel | "
        f"{path.name}: {count['train']} train, {count['val']} val, {count['heldout']} held-out "
        f"tasks; families: {families['same']} same wording, {families['varied']} varied, "
        f"{families['unseen']} unseen | {EPOCHS} epochs, batch {BATCH}, {demo.STEPS} steps/task"
    )
    results = []
    for attempt in range(2):
        started = time.perf_counter()
        results.append(fresh_session(tasks))
        before, after = results[-1]["before"], results[-1]["after"]
        accepted = sum(epoch["steps_accepted"] for epoch in results[-1]["history"])
        print(
            f"run {attempt + 1}: held-out success {_share(before)} -> {_share(after)}; "
            f"{accepted} optimizer steps accepted by the val gate; "
            f"{time.perf_counter() - started:.0f} s"
        )
    print()
    print("\n".join(table(heldout, results[0])))
    if args.verbose:
        print()
        print("\n".join(commands(heldout, results[0])))
    print()
    lines, met = totals(heldout, results[0])
    print("\n".join(lines))
    same = all(
        r["before"] == results[0]["before"] and r["after"] == results[0]["after"] for r in results
    )
    print(f"  {'PASS' if same else 'MISS'}  same per-task results on a rerun from scratch")
    print(f"targets {'all met' if met and same else 'not all met'}")


if __name__ == "__main__":
    main()
