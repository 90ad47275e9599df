"""Task sets for `mcp-harness train` and `eval`: loaded and checked against the module before
anything runs (`load_task_sets`), and training datasets from captured work.

From captured work (`dataset_from_calls`), each kept harvested Bash call becomes one line of
the trainer's format (see `training.trainer`):

```json
{"inputs": {"task": "<the call's task>", "check": "true"},
 "targets": {"decision": "<the call's description>", "command": "<the command>"},
 "source": {"call_id": "…", "session_id": "…", "project": "…", "ts": "…"}}
```
A harvested call has no validator: nobody recorded how to check that the task was done. So the
check is `true` by default (`check="exit0"`) or one shell command given for every line. A check
that passes on the fresh workspace cannot tell success from failure, so `train` and `eval`
refuse it: edit the `check` of every line (e.g. `test -f out.txt`), and add `files` for a task
that needs a starting workspace, before training on it. Calls without a task, description or
command, failed calls and denied ones are skipped; repeats of the same (task, description,
command) are kept once.
Everything is redacted (`mcp_harness.redaction`) before it is returned.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp_harness.errors import HarnessError
from mcp_harness.redaction import redact
from mcp_harness.storage.atomic import atomic_write

if TYPE_CHECKING:
    from mcp_harness.runtime.module import Module
    from mcp_harness.training.trainer import Example

EXIT0 = "exit0"
CHECK_TIMEOUT_S = 5.0  # a check still running after this on the fresh workspace can fail
_PASS_THROUGH = {"ft_unsqueeze", "ft_expand", "ft_slice"}  # ops that reshape, not change, text


def load_task_sets(
    module: Module, data: Path, val: Path | None = None, dims: dict[str, int] | None = None
) -> tuple[list[Example], list[Example] | None]:
    """Load `data` (and the val set `val`) and refuse bad input before anything runs: a val set
    that is the training file, a task without the module's inputs, a target for a node the
    module does not have, and a task whose check already passes on its fresh workspace."""
    from mcp_harness.training.trainer import load_dataset

    if val is not None and _same_file(data, val):
        same = "" if data.resolve() == val.resolve() else " (the same tasks)"
        raise HarnessError(
            f"the val set {val} is the training set {data}{same}",
            "give as val set a file of other tasks: the gate must measure tasks the module "
            "does not train on",
        )
    sets = [load_dataset(data), None if val is None else load_dataset(val)]
    for path, examples in zip((data, val), sets, strict=True):
        if examples is not None:
            check_tasks(path, examples, module, dims or {})
    return sets[0], sets[1]


def check_tasks(path: Path, examples: list[Example], module: Module, dims: dict[str, int]) -> None:
    """Every task fits the module, and every check fails on the task's fresh workspace."""
    nodes = module.graph(dims).nodes
    needed = set(module.spec.get("inputs", {})) - {"workdir"}
    checks = _check_inputs(module)
    for example in examples:
        where = f"{path}:{example.line}"
        missing = sorted(needed - set(example.inputs))
        if missing:
            raise HarnessError(
                f"{where}: the task has no input {missing[0]!r}",
                f"give every task the inputs {sorted(needed)} (workdir is made fresh per run)",
            )
        for name in example.targets:
            if name not in nodes:
                raise HarnessError(
                    f"{where}: target for unknown node {name!r}",
                    f"name nodes of module {module.name!r}: {', '.join(nodes)}",
                )
        for name in checks:
            check = example.inputs.get(name)
            if check is not None and _passes_fresh(check, example.files):
                raise HarnessError(
                    f"{where}: the check {check!r} already passes on the task's fresh workspace",
                    "this check cannot tell success from failure: make it fail before the task "
                    "is done",
                )


def _same_file(a: Path, b: Path) -> bool:
    a, b = a.expanduser().resolve(), b.expanduser().resolve()
    if a == b:
        return True
    try:
        return a.read_bytes() == b.read_bytes()
    except OSError:
        return False  # a missing file is named by load_dataset


def _check_inputs(module: Module) -> set[str]:
    """The run inputs that are check commands: what each `ft_validate_command` runs."""
    nodes = {n.get("id"): n for n in module.spec.get("nodes", []) if isinstance(n, dict)}
    found = set()
    for node in nodes.values():
        if node.get("op") == "ft_validate_command" and len(node.get("inputs", [])) > 1:
            source = nodes.get(node["inputs"][1])
            while source is not None and source.get("op") in _PASS_THROUGH:
                source = nodes.get((source.get("inputs") or [None])[0])
            if source is not None and source.get("op") == "ft_input":
                found.add(str(source.get("args", {}).get("input", source.get("id"))))
    return found


def _passes_fresh(check: str, files: dict[str, str]) -> bool:
    """Does `check` exit 0 in a new directory holding only the task's files?"""
    with tempfile.TemporaryDirectory(prefix="mcp-harness-check-") as scratch:
        for relative, content in files.items():
            target = Path(scratch) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        # Its own process group, so a check that outlives the timeout leaves nothing behind.
        with subprocess.Popen(
            ["bash", "-c", check],
            cwd=scratch,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        ) as process:
            try:
                return process.wait(timeout=CHECK_TIMEOUT_S) == 0
            except subprocess.TimeoutExpired:
                return False
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)


def dataset_from_calls(calls: Iterable[Any], check: str = EXIT0) -> list[dict[str, Any]]:
    """Dataset lines from `capture.join.calls()` (see the module docstring)."""
    if not check.strip():
        raise HarnessError("the check command is empty", f"give a shell command or {EXIT0!r}")
    check_command = "true" if check == EXIT0 else check
    lines: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for call in calls:
        task = (call.task or "").strip()
        description = (call.description or "").strip()
        command = (call.command or "").strip()
        if not task or not description or not command or call.failed or call.denied:
            continue
        task, description, command = redact(task), redact(description), redact(command)
        if (task, description, command) in seen:
            continue
        seen.add((task, description, command))
        source = {
            "call_id": call.call_id,
            "session_id": call.session_id,
            "project": call.project,
            "ts": call.ts.isoformat() if call.ts else None,
        }
        lines.append(
            {
                "inputs": {"task": task, "check": check_command},
                "targets": {"decision": description, "command": command},
                "source": {k: v for k, v in source.items() if v is not None},
            }
        )
    return lines


def harvested_dataset(
    *,
    project: str | None = None,
    import_transcripts: bool = True,
    projects_root: Path | None = None,
    check: str = EXIT0,
) -> tuple[list[dict[str, Any]], int]:
    """Import transcripts (optional), join every captured call, keep `project`'s (a slug or a
    directory, as `mcp-harness harvest --project`); returns (lines, calls considered)."""
    from mcp_harness.capture import join
    from mcp_harness.experience.harvest import project_matches

    if import_transcripts:
        from mcp_harness.capture.transcripts import import_transcripts as run_import

        run_import(projects_root)
    calls = [c for c in join.calls() if project_matches(c, project)]
    return dataset_from_calls(calls, check=check), len(calls)


def write_dataset(path: Path, lines: list[dict[str, Any]]) -> None:
    """Write `lines` as JSON Lines, atomically."""
    atomic_write(path, "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
