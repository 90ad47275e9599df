"""`mcp-harness eval`: run a module on a task set and report, per task, whether its check
passed, the commands it ran and its final screen (or why it failed), and the totals.

Honest measurement: the module is used as it is (a built-in is its copy under the data dir) and
never changes, because it runs on a scratch copy of its experience (`scratch_module`); the
tasks are checked first (`training.dataset.load_task_sets`: a check that already passes on the
fresh workspace measures nothing). Exit status 0 when the tasks ran, whether or not they
passed (read the report or `--json`), 2 on bad input (nothing ran).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from mcp_harness.errors import HarnessError

BATCH = 8
SCREEN_LINES = 6
_SKIP = shutil.ignore_patterns(".lock", ".txn")


def register(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "eval",
        help="run a module on a task set and report pass/fail per task (the module is unchanged)",
        description="Run a module on a JSONL task set (the format of `train --data`), each task "
        "in a fresh workspace and its own tmux terminal, and report per task pass/fail, the "
        "commands it ran and its final screen, and the totals. The module never changes (it "
        "runs on a scratch copy of its experience). Exit status 0 when the tasks ran, whether "
        "or not they passed; 2 on bad input (nothing ran).",
    )
    evaluate.add_argument(
        "module", help="a module name (built-in or under the data dir) or directory"
    )
    evaluate.add_argument(
        "--data", type=Path, required=True, metavar="FILE", help="the tasks (JSON Lines)"
    )
    evaluate.add_argument(
        "--kernel", default=None, help="kernel name (default: configured/offline)"
    )
    evaluate.add_argument(
        "--dim", action="append", default=[], metavar="NAME=SIZE", help="override a dim (steps=4)"
    )
    evaluate.add_argument(
        "--batch", type=int, default=BATCH, help=f"tasks run at once (default {BATCH})"
    )
    evaluate.add_argument(
        "--json",
        action="store_true",
        help='print {"passed": int, "total": int, "tasks": [...]} (index, task, passed, '
        "commands, screen, and reason if it failed)",
    )
    evaluate.set_defaults(run=_eval)


def scratch_module(name: str, scratch: Path) -> Any:
    """Module `name` on a copy (in `scratch`) of its experience, which is copied, not opened
    (a pool experience: its rows are read into a file copy), so nothing runs on or writes to
    the module's own tensors."""
    from mcp_harness.experience.backend import PoolAddress, opened
    from mcp_harness.experience.transfer import snapshot
    from mcp_harness.runtime import module as modules
    from mcp_harness.runtime.graph import load_spec

    path = modules.resolve(name)
    copies = {}
    for exp_name, where in modules.stores(path, load_spec(path / modules.SPEC)).items():
        copy = scratch / "experience" / exp_name
        if isinstance(where, PoolAddress):  # a file copy of the pool's rows
            with opened(where.display) as store:
                copies[exp_name] = snapshot(store, copy)
        elif (where / "shape").is_file():  # a missing one is named by load
            copies[exp_name] = copy
            shutil.copytree(where, copy, ignore=_SKIP)
    return modules.load(str(path), experience_overrides=copies)


def _task_report(report: Any, index: int, example: Any) -> dict[str, Any]:
    """Task `index` of a forward `report`: passed, commands per step, final screen, reason."""
    from mcp_harness.training.outcomes import task_run

    done = task_run(report, index)
    task = {
        "task": example.inputs.get("task", json.dumps(example.inputs, ensure_ascii=False)),
        "passed": done.passed,
        "commands": [s.text if s.ok else f"(none: {s.text})" for s in done.steps],
        "screen": "\n".join([ln for ln in done.screen.splitlines() if ln.strip()][-SCREEN_LINES:]),
    }
    if not done.passed:
        meta = done.element.meta
        steps = max(1, int(meta.get("iterations", 1)))
        output = str(meta.get("check_output", "")).strip()
        check = f"the check {meta['check']!r}" if meta.get("check") else "its check"
        task["reason"] = meta.get("reason") or (
            f"{check} still failed after {steps} step{'s' if steps != 1 else ''}"
            + (f": {output.splitlines()[-1]}" if output else "")
        )
    return task


async def evaluate(
    module: Any, examples: list[Any], kernel: Any, workroot: Path, dims: dict[str, int], batch: int
) -> dict[str, Any]:
    """Run `examples` on `module`, `batch` at a time (workspaces under `workroot`), and report
    `{"passed", "total", "tasks": [...]}`."""
    from mcp_harness.training.trainer import Trainer

    runner = Trainer(module, kernel, workroot, dims=dims)
    tasks: list[dict[str, Any]] = []
    for start in range(0, len(examples), batch):
        chunk = examples[start : start + batch]
        report = await runner.forward(chunk)
        for offset, example in enumerate(chunk):
            tasks.append({"index": start + offset, **_task_report(report, offset, example)})
    return {"passed": sum(t["passed"] for t in tasks), "total": len(tasks), "tasks": tasks}


def _eval(args: argparse.Namespace) -> int:
    import asyncio
    import tempfile

    from mcp_harness.cli.train_cmd import parse_dims
    from mcp_harness.kernels.config import make_kernel
    from mcp_harness.training.dataset import load_task_sets

    if args.batch < 1:
        raise HarnessError(f"--batch is {args.batch}", "give --batch 1 or more")
    dims = parse_dims(args.dim)
    kernel = make_kernel(args.kernel)
    with tempfile.TemporaryDirectory(prefix="mcp-harness-eval-") as scratch:
        module = scratch_module(args.module, Path(scratch))
        examples, _ = load_task_sets(module, args.data, dims=dims)
        result = asyncio.run(
            evaluate(module, examples, kernel, Path(scratch) / "work", dims, args.batch)
        )
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    for task in result["tasks"]:
        print(f"[{'PASS' if task['passed'] else 'FAIL'}] {task['task']}")
        print(f"   commands: {' | '.join(task['commands']) or '(none)'}")
        if not task["passed"]:
            print(f"   why: {task['reason']}")
            print("   final screen:")
            for line in task["screen"].splitlines():
                print(f"     {line}")
    print(
        f"passed {result['passed']}/{result['total']} tasks of {args.data} "
        f"({module.name}, kernel {kernel.summary()}); the module is unchanged"
    )
    return 0
