"""The main job, `mcp-harness demo`: from a recorded Claude Code session to a harness that works
terminal tasks on its own, with no API key.

1. Import a bundled Claude Code session (real transcript format) and harvest it into
   experience: decision rows (task + screen -> what to do) and command rows (what -> command).
2. Run the built-in coder module with that experience on terminal tasks it has not seen
   verbatim, each in its own workspace and its own real tmux session, all concurrently.
3. Check every task with its validator and report results, commands and final screens.
4. Train the module on a few other tasks (targets: what to decide, what to run) — forward,
   loss, backward, StSGD — and run the held-out tasks again: success before vs after.
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
from mcp_harness.training.trainer import Example, Lines, Trainer

STEPS = 4
WORKSPACE = {
    "notes.txt": "alpha\nbeta\ngamma\ndelta\nepsilon\n",
    "src/app.py": "def main():\n    # TODO: parse arguments\n    return 0\n",
    "src/util.py": "def helper():\n    return 42\n",
    "run.sh": "#!/bin/sh\necho running\n",
    "data.csv": "a,b\n1,2\n",
}


@dataclass(frozen=True)
class Task:
    text: str
    check: str
    decision: str = ""
    command: str = ""

    def example(self) -> Example:
        targets = {"decision": [self.decision], "command": [self.command]} if self.command else {}
        return Example({"task": self.text, "check": self.check}, targets, WORKSPACE)


TASKS = (
    Task("Create a directory called build", "test -d build"),
    Task(
        "Count the lines in notes.txt and write the number to count.txt",
        'test "$(tr -d " " < count.txt)" = "$(wc -l < notes.txt | tr -d " ")"',
    ),
    Task("Write the names of the files that contain TODO to todo.txt", "grep -q app.py todo.txt"),
    Task("Make the run.sh script executable", "test -x run.sh"),
    Task(
        "Create a tarball backup.tar.gz of the src folder",
        "tar -tzf backup.tar.gz | grep -q '^src/'",
    ),
    Task("Initialize a git repository in this folder", "test -d .git"),
    Task("Compress data.csv with xz", "test -f data.csv.xz"),
)

# Other wordings of some held-out tasks, with what a person would have decided and run.
TRAIN = (
    Task(
        "Set the executable bit on the run.sh script",
        "test -x run.sh",
        "Make run.sh executable",
        "chmod +x run.sh",
    ),
    Task(
        "Turn this folder into a git repository",
        "test -d .git",
        "Initialize a git repository",
        "git init -q",
    ),
    Task(
        "Use xz to compress the data.csv file",
        "test -f data.csv.xz",
        "Compress data.csv with xz",
        "xz -k data.csv",
    ),
    Task(
        "Make a directory named dist", "test -d dist", "Create the dist directory", "mkdir -p dist"
    ),
)
EPOCHS = 2


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
    from mcp_harness.capture.harvest import harvest
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
        heldout = [task.example() for task in TASKS]
        out(
            f"\n2. Running the coder module on {len(TASKS)} tasks, each in its own tmux session"
            f" (kernel: {name}, up to {STEPS} steps per task)..."
        )
        started = time.perf_counter()
        before = asyncio.run(trainer.forward(heldout))
        failed = _report(before, time.perf_counter() - started, kernel, out)
        out(
            f"\n4. Training on {len(TRAIN)} other tasks for {EPOCHS} epochs "
            "(forward, loss, backward, StSGD step)..."
        )
        asyncio.run(
            trainer.fit(
                [task.example() for task in TRAIN],
                EPOCHS,
                batch_size=4,
                progress=Lines(lambda line: out(f"   {line}")),
            )
        )
        after = asyncio.run(trainer.evaluate(heldout))
        passed_before = len(TASKS) - failed
        passed_after = sum(after.passed)
        out(
            f"\nHeld-out success: {passed_before}/{len(TASKS)} before training -> "
            f"{passed_after}/{len(TASKS)} after "
            f"({(passed_after - passed_before) * 100 / len(TASKS):+.0f} points)."
        )
        for task, was, now in zip(TASKS, before.elements, after.passed, strict=True):
            if was.status.ok != now:
                out(f"   {'now passes' if now else 'now fails'}: {task.text}")
        out(
            f"Run files, experience and the step log: {root}"
            if kept
            else "Rerun with --keep DIR to keep the run files, experience and step log."
        )
        return len(TASKS) - passed_after


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


def _report(result, seconds: float, kernel, out: Callable[[str], None]) -> int:
    graph, forward = result.graph, result.run
    failed = 0
    out("\n3. Results")
    for index, (task, element) in enumerate(zip(TASKS, result.elements, strict=True)):
        passed = element.status.ok
        failed += not passed
        steps = element.meta.get("iterations", 0)
        commands = []
        for step in range(steps):
            command = forward.element(graph.nodes["command"], (index, step))
            if command is not None:
                commands.append(command.text if command.status.ok else "(no matching experience)")
        out(f"\n[{'PASS' if passed else 'FAIL'}] {task.text}")
        out(f"   {_steps(commands)}")
        if not passed and element.meta.get("reason"):
            out(f"   why: {element.meta['reason']}")
        out(f"   check: {task.check}")
        last = forward.element(graph.nodes["screen"], (index, max(steps - 1, 0)))
        final = element.text if passed or last is None else last.text
        out("   final screen:")
        for line in [line for line in final.splitlines() if line.strip()][-4:]:
            out(f"     {line}")
    usage = getattr(kernel, "usage", None)
    spent = (
        f"{usage.calls} LLM calls, {usage.input_tokens + usage.output_tokens} tokens, "
        f"${usage.cost_usd:.4f}"
        if usage and usage.calls
        else "no LLM calls"
    )
    out(
        f"\nReport: {len(TASKS) - failed}/{len(TASKS)} tasks passed their validator in "
        f"{seconds:.1f} s ({spent})."
    )
    return failed
