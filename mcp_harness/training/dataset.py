"""Training datasets from captured work: harvested Bash calls -> `mcp-harness train` lines.

Each kept call becomes one line of the trainer's format (see `training.trainer`):

```json
{"inputs": {"task": "<the call's task>", "check": "true"},
 "targets": {"decision": "<the call's description>", "command": "<the command>"},
 "source": {"call_id": "…", "session_id": "…", "project": "…", "ts": "…"}}
```
A harvested call has no validator: nobody recorded how to check that the task was done. So the
check is `true` by default (`check="exit0"`: the step only has to run; the recorded command
exited 0) or one shell command given for every line, and such a dataset teaches *decisions and
commands* through its targets, not task success. Edit the `check` of lines you care about (e.g.
`test -f out.txt`) to also train and measure on outcomes, and add `files` for a task that
needs a starting workspace. Calls without a task, description or command, failed calls and
denied ones are skipped; repeats of the same (task, description, command) are kept once.
Everything is redacted (`mcp_harness.redaction`) before it is returned.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mcp_harness.errors import HarnessError
from mcp_harness.redaction import redact
from mcp_harness.storage.atomic import atomic_write

EXIT0 = "exit0"


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
    from mcp_harness.capture.harvest import project_matches

    if import_transcripts:
        from mcp_harness.capture.transcripts import import_transcripts as run_import

        run_import(projects_root)
    calls = [c for c in join.calls() if project_matches(c, project)]
    return dataset_from_calls(calls, check=check), len(calls)


def write_dataset(path: Path, lines: list[dict[str, Any]]) -> None:
    """Write `lines` as JSON Lines, atomically."""
    atomic_write(path, "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
