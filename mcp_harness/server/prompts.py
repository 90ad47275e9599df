"""Prompts, which Claude Code offers as slash commands (`/mcp__harness__<name>`): train a
module from recorded sessions, run a module on a task, and why a module changed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from mcp.server import MCPServer
from pydantic import Field

from mcp_harness.paths import data_home

MODULE = Annotated[str, Field(description="the module, e.g. coder")]


def _training_runs(module: str) -> list[Path]:
    """The module's training runs under `<data home>/runs`, newest first."""
    runs = data_home() / "runs"
    found = [p for p in runs.glob(f"train-{module}-*") if (p / "history.json").is_file()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def train_text(module: str, project: str | None) -> str:
    where = f" of project {project!r}" if project else ""
    return (
        f"Train the harness module {module!r} from my recorded Claude Code sessions{where}.\n"
        f"1. Call capture_harvest{f'(project={project!r})' if project else ''} to turn the "
        "recorded Bash calls into experience, and tell me how many calls and rows it found.\n"
        "2. Write a dataset with `mcp-harness dataset from-harvest tasks.jsonl"
        f"{f' --project {project}' if project else ''}` (Bash), then make each task's check a "
        "shell command that fails before the task is done; split off a third of the tasks as "
        "val.jsonl.\n"
        f"3. Call module_train_start(module={module!r}, data='tasks.jsonl', val='val.jsonl') "
        "and follow it with job_status(wait_seconds=30) until it ends.\n"
        "4. Report the val success before and after each epoch, and call trace_show on the "
        "run's out dir to say what the module learned."
    )


def run_text(module: str, task: str, check: str | None) -> str:
    checked = f" and check={check!r}" if check else ""
    return (
        f"Run the harness module {module!r} on this task by calling its tool `{module}` with "
        f"task={task!r}{checked}"
        + ("" if check else " (and a check: a shell command that exits 0 once it is done)")
        + ". Tell me whether it passed, the commands it ran and its final screen; if it "
        "returned a job id, follow it with job_status(wait_seconds=30)."
    )


def why_text(module: str) -> str:
    runs = _training_runs(module)
    if not runs:
        return (
            f"Module {module!r} has no training runs under {data_home() / 'runs'}. Say so, "
            "and show how to train it (module_train_start)."
        )
    listing = "\n".join(f"- {run} (resource harness://training/{run.name})" for run in runs[:5])
    return (
        f"Explain why the harness module {module!r} changed. Its training runs, newest first:\n"
        f"{listing}\nRead the newest run's history (its resource), then call "
        f"trace_show(run_dir={str(runs[0])!r}) for its steps: say which experience rows were "
        "added or re-weighted, for which tasks, and whether the val gate accepted each step."
    )


def register(server: MCPServer) -> None:
    @server.prompt(title="Train a module from my recorded sessions")
    def train_from_sessions(
        module: MODULE = "coder",
        project: Annotated[str | None, Field(description="only this project")] = None,
    ) -> str:
        """Harvest recorded Claude Code work, make a dataset, and train a module on it."""
        return train_text(module, project)

    @server.prompt(title="Run a module on a task")
    def run_module(
        task: Annotated[str, Field(description="what to do, in plain words")],
        module: MODULE = "coder",
        check: Annotated[str | None, Field(description="shell command: 0 when done")] = None,
    ) -> str:
        """Run a module on one task and report pass/fail, commands and the final screen."""
        return run_text(module, task, check)

    @server.prompt(title="Why did this module change")
    def why_changed(module: MODULE = "coder") -> str:
        """Explain a module's training: the steps, the rows they changed and why."""
        return why_text(module)
