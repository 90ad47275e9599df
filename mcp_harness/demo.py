"""The main job, `mcp-harness demo`: from a recorded Claude Code session to a harness that works
terminal tasks on its own, with no API key.

1. Import a bundled Claude Code session (real transcript format) and harvest it into
   experience: decision rows (task + screen -> what to do) and command rows (what -> command).
2. Run the built-in coder module with that experience on held-out tasks of the bundled task
   set (`training.tasksets`), each in its own workspace and real tmux session, concurrently.
3. Check every task with its validator and report results, commands and final screens.
4. Train the module on other instances of the same task families (other file names,
   patterns and commands; targets: what to decide, what to run) — forward, loss, backward,
   StSGD behind a validation gate — and run the held-out tasks again: success before vs after.
The offline kernel is the default; with ANTHROPIC_API_KEY set the same graph runs on Claude.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from mcp_harness.errors import HarnessError, broken_install
from mcp_harness.paths import ENV_HOME
from mcp_harness.training.outcomes import task_run
from mcp_harness.training.tasksets import Task, load_task_set
from mcp_harness.training.trainer import Example, Lines, Trainer

STEPS = 4
EPOCHS = 2
# Families of the bundled task set the demo trains and tests on: held-out tasks are each
# family's first held-out instance, so they share no file name, pattern or command with the
# training (and validation) instances; mkdir and count-lines are worded differently as well.
FAMILIES = ("mkdir", "count-lines", "grep-files", "chmod-exec", "tar-gz", "git-init", "xz-compress")
PROTOCOL = (
    "train: 2 instances per family, val (the gate): 1 more, held out: another one with its own "
    "file names, patterns and commands"
)


@dataclass(frozen=True)
class Split:
    """The demo's tasks, from the bundled task set."""

    train: list[Task]
    val: list[Task]
    heldout: list[Task]


def tasks() -> Split:
    chosen = [t for t in load_task_set() if t.family in FAMILIES]
    heldout = {}
    for task in chosen:
        if task.split == "heldout":
            heldout.setdefault(task.family, task)
    return Split(
        [t for t in chosen if t.split == "train"],
        [t for t in chosen if t.split == "val"],
        [heldout[family] for family in FAMILIES],
    )


@contextlib.contextmanager
def _home(path: Path) -> Iterator[None]:
    """Point the data home at `path` for the demo, so it never touches the user's data."""
    previous = os.environ.get(ENV_HOME)
    os.environ[ENV_HOME] = str(path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(ENV_HOME, None)
        else:
            os.environ[ENV_HOME] = previous


def run(
    kernel_name: str | None = None, keep: Path | None = None, out: Callable[[str], None] = print
) -> int:
    """Run the demo; returns the number of tasks that failed their validator."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        return _run(keep.absolute(), kernel_name, out, kept=True)
    root = Path(tempfile.mkdtemp(prefix="mcp-harness-demo-"))
    try:
        return _run(root, kernel_name, out, kept=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def coder_trainer(root: Path, kernel: Any) -> tuple[Trainer, Any]:
    """Harvest the bundled session under the current data home, and a trainer for a copy of
    the coder module (in `root/module`) that uses that experience. Returns (trainer, report)."""
    from mcp_harness.experience.harvest import harvest
    from mcp_harness.runtime import module

    sample = resources.files("mcp_harness.data").joinpath("sample_projects")
    if not sample.is_dir():
        raise broken_install(f"the bundled sample session ({sample})")
    with resources.as_file(sample) as projects:
        report = harvest(projects_root=projects)
    tensors = {path.name.rsplit(".", 1)[1]: path for path in report.tensors}
    coder_dir = module.new("demo-coder", template="coder", target=root / "module")
    coder = module.load(str(coder_dir), experience_overrides=tensors)
    trainer = Trainer(
        coder, kernel, root / "work", dims={"steps": STEPS}, log=root / "train-steps.jsonl"
    )
    return trainer, report


def _run(root: Path, kernel_name: str | None, out: Callable[[str], None], kept: bool) -> int:
    from mcp_harness.kernels.config import make_kernel

    if shutil.which("tmux") is None:
        raise HarnessError(
            "the demo runs its tasks in tmux, which is not installed",
            "install tmux (Debian/Ubuntu: sudo apt-get install tmux; macOS: brew install tmux)",
        )
    name = kernel_name or ("anthropic" if os.environ.get("ANTHROPIC_API_KEY") else "offline")
    kernel = make_kernel(name)
    with _home(root / "home"):
        trainer, report = coder_trainer(root, kernel)
        out(
            f"1. Harvested a recorded Claude Code session ({report.imported.new_calls} Bash calls)"
            " into experience:"
        )
        for path, added in report.tensors.items():
            out(f"   {path.name}: {added.added} rows")
        split = tasks()
        heldout = [task.example for task in split.heldout]
        out(
            f"\n2. Running the coder module on {len(heldout)} tasks, each in its own tmux session"
            f" (kernel: {name}, up to {STEPS} steps per task)..."
        )
        started = time.perf_counter()
        before = asyncio.run(trainer.forward(heldout))
        failed = _report(before, heldout, time.perf_counter() - started, kernel, out)
        out(
            f"\n4. Training on {len(split.train)} other tasks of the same families for {EPOCHS} "
            f"epochs (forward, loss, backward, StSGD step), {len(split.val)} more as the "
            "validation gate..."
        )
        asyncio.run(
            trainer.fit(
                [task.example for task in split.train],
                EPOCHS,
                batch_size=4,
                val=[task.example for task in split.val],
                progress=Lines(lambda line: out(f"   {line}")),
            )
        )
        after = asyncio.run(trainer.forward(heldout))
        passed_before = len(heldout) - failed
        out("\n5. The held-out tasks again, after training:")
        failed_after = _report(after, heldout, None, kernel, out, brief=True)
        passed_after = len(heldout) - failed_after
        out(
            f"\nHeld-out success: {passed_before}/{len(heldout)} before training -> "
            f"{passed_after}/{len(heldout)} after "
            f"({(passed_after - passed_before) * 100 / len(heldout):+.0f} points)."
        )
        out(f"Protocol: {PROTOCOL}.")
        out(
            f"Run files, experience and the step log: {root}"
            if kept
            else "Rerun with --keep DIR to keep the run files, experience and step log."
        )
        return failed_after


def _steps(commands: list[str]) -> str:
    """`steps 3: a | b | (no matching experience) x2`: repeats folded."""
    folded: list[list] = []
    for command in commands:
        if folded and folded[-1][0] == command:
            folded[-1][1] += 1
        else:
            folded.append([command, 1])
    parts = [text if count == 1 else f"{text} x{count}" for text, count in folded]
    return f"steps {len(commands)}: " + " | ".join(parts)


def _report(
    result,
    examples: list[Example],
    seconds: float | None,
    kernel,
    out: Callable[[str], None],
    brief: bool = False,
) -> int:
    """Print each task's outcome and commands (with `brief`, no checks and screens); returns
    how many failed."""
    failed = 0
    if not brief:
        out("\n3. Results")
    for index, example in enumerate(examples):
        done = task_run(result, index)
        failed += not done.passed
        commands = [s.text if s.ok else "(no matching experience)" for s in done.steps]
        verdict = "PASS" if done.passed else "FAIL"
        out(f"{'' if brief else chr(10)}[{verdict}] {example.inputs['task']}")
        out(f"   {_steps(commands)}")
        if brief:
            continue
        if not done.passed and done.element.meta.get("reason"):
            out(f"   why: {done.element.meta['reason']}")
        out(f"   check: {example.inputs['check']}")
        out("   final screen:")
        for line in [line for line in done.screen.splitlines() if line.strip()][-4:]:
            out(f"     {line}")
    if seconds is None:
        return failed
    usage = getattr(kernel, "usage", None)
    spent = (
        f"{usage.calls} LLM calls, {usage.input_tokens + usage.output_tokens} tokens, "
        f"${usage.cost_usd:.4f}"
        if usage and usage.calls
        else "no LLM calls"
    )
    out(
        f"\nReport: {len(examples) - failed}/{len(examples)} tasks passed their validator in "
        f"{seconds:.1f} s ({spent})."
    )
    return failed
