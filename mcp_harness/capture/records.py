"""Where capture records live, what they hold and how they are written: the contract between
the prefix wrapper's mirror, the hook handler and the transcript importer (the writers) and
`join` (the reader). Each file's record is a TypedDict below, used on both sides.

All three sources append JSON lines (one object per line, written with a single `write` + fsync,
so concurrent appenders never interleave and a crash can only truncate the last line) to files
under `<home>/capture/`: `commands.jsonl` (`CommandRecord`, written by the session's mirror once
a call has ended), `hooks.jsonl` (`HookRecord`), `transcripts.jsonl` (`TranscriptRecord`), and
`wrapper.log`, plain-text failures of the wrapper, the mirror and the hooks: never fatal. A call
whose recording failed is also counted in `<runtime dir>/capture/failures.jsonl` (`ts`,
`capture_dir`, `reason`), which stays writable when the data dir is not.

Every text field is passed through `redaction.redact` before it is written. A reader takes
each record as possibly old or partial: it reads fields with `.get`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict

from mcp_harness.paths import data_home
from mcp_harness.redaction import redact
from mcp_harness.storage.atomic import append_lines

OUTPUT_LIMIT = 64 * 1024
COMMANDS = "commands.jsonl"
HOOKS = "hooks.jsonl"
TRANSCRIPTS = "transcripts.jsonl"
WRAPPER_LOG = "wrapper.log"
FAILURES = "failures.jsonl"


class CommandRecord(TypedDict):
    """One Bash call run by the prefix wrapper (`commands.jsonl`)."""

    kind: Literal["command"]
    id: str
    ts: str  # ISO-8601 UTC start
    duration_ms: float
    session_id: str | None  # CLAUDE_CODE_SESSION_ID
    cwd: str  # `… (deleted)` when it was
    command: str  # the model's command, pulled out of Claude Code's composite string
    command_raw: str
    exit_code: int | None  # None when killed by a signal or interrupted
    signal: int | None
    interrupted: bool  # the wrapper was killed mid-call: Claude Code's timeout or interrupt
    # what the command wrote to Claude Code's output file (stdout then stderr when they are two
    # files), read back after the call; invalid UTF-8 replaced; at most OUTPUT_LIMIT chars
    output: str
    output_bytes: int | None  # true size; None when stdout was not a regular file
    screen_before: str  # the session's own pane; "" when tmux was unavailable
    screen_after: str
    pane: str


class HookRecord(TypedDict):
    """One hook event (`hooks.jsonl`); the optional fields by event."""

    kind: Literal["hook"]
    ts: str
    event: str  # hook_event_name
    session_id: str | None
    cwd: str | None
    transcript_path: str | None
    prompt: NotRequired[str | None]  # UserPromptSubmit
    tool_use_id: NotRequired[str | None]  # Pre/PostToolUse*, Bash only: these four
    command: NotRequired[str | None]
    description: NotRequired[str | None]
    exit_code: NotRequired[int | None]  # PostToolUse -> 0, PostToolUseFailure -> from `error`
    error: NotRequired[str | None]  # PostToolUseFailure
    source: NotRequired[str | None]  # SessionStart
    reason: NotRequired[str | None]  # SessionEnd


class TranscriptRecord(TypedDict):
    """One Bash call found in a transcript (`transcripts.jsonl`)."""

    kind: Literal["transcript"]
    session_id: str | None
    tool_use_id: str
    ts: str | None
    cwd: str | None
    task: str | None  # the user prompt that led to the call
    command: str
    description: str | None
    output: str | None
    exit_code: int | None
    denied: bool
    is_sidechain: bool
    transcript_path: str


Record = CommandRecord | HookRecord | TranscriptRecord


def capture_dir(env: Mapping[str, str] | None = None) -> Path:
    """`<data home>/capture` for `env` (default: this process's environment)."""
    return data_home(env) / "capture"


def redact_record(record: Record) -> dict[str, Any]:
    """Redact every string (also inside lists and dicts) of a record."""
    return {key: _redact_value(value) for key, value in record.items()}


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redact_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    return value


def append_records(name: str, records: Sequence[Record], directory: Path | None = None) -> None:
    """Redact and append records to `<capture dir>/<name>` in one write."""
    if records:
        lines = [json.dumps(redact_record(r), ensure_ascii=False) for r in records]
        append_lines((directory or capture_dir()) / name, lines)


def log_failure(reason: str, directory: Path, runtime: Path) -> None:
    """A call whose recording failed: a line in `wrapper.log` if it is writable, and one in the
    runtime dir's failure count. Never raises."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = " ".join(f"{stamp} mirror[{os.getpid()}]: {redact(reason)}".split())
    entry = {"ts": stamp, "capture_dir": str(directory), "reason": redact(reason)}
    for path, text in (
        (directory / WRAPPER_LOG, line + " (the command ran unchanged, unrecorded)"),
        (runtime / "capture" / FAILURES, json.dumps(entry)),
    ):
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, (text + "\n").encode("utf-8", "replace"))
            finally:
                os.close(fd)


def failure_count(directory: Path, runtime: Path) -> int:
    """Calls whose recording into `directory` failed (from the runtime dir's count)."""
    try:
        raw = (runtime / "capture" / FAILURES).read_bytes()
    except OSError:
        return 0
    count = 0
    for line in raw.split(b"\n"):
        with contextlib.suppress(ValueError):
            count += json.loads(line).get("capture_dir") == str(directory)
    return count


def read_records(name: str) -> Iterator[dict[str, Any]]:
    """Records of `<capture dir>/<name>`; a truncated or corrupt line is skipped, never fatal."""
    path = capture_dir() / name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            yield record
