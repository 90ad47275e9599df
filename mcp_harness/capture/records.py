"""Where capture records live and how they are written: the contract between the prefix
wrapper's runner, the hook handler, the transcript importer and harvest.

All three sources append JSON lines (one object per line, written with a single `write` + fsync,
so concurrent appenders never interleave and a crash can only truncate the last line) to files
under `<home>/capture/`:

- `commands.jsonl` — one line per Bash call run by the prefix wrapper (`kind: "command"`):
  `id`, `ts` (ISO-8601 UTC start), `duration_ms`, `session_id` (`CLAUDE_CODE_SESSION_ID` or null),
  `cwd`, `command` (the model's command, pulled out of Claude Code's composite string),
  `command_raw`, `exit_code` (int, or null when killed by a signal), `signal` (int or null),
  `output` (merged stdout+stderr as text, invalid UTF-8 replaced, at most `OUTPUT_LIMIT` chars),
  `output_bytes` (true size), `screen_before`, `screen_after`, `pane`, `runner`
  (`"tmux"`). When tmux cannot be used the command still runs, as plain bash, unrecorded,
  and the reason goes to `wrapper.log`.
- `hooks.jsonl` — one line per hook event (`kind: "hook"`): `ts`, `event` (hook_event_name),
  `session_id`, `cwd`, `transcript_path`, and per event `prompt` (UserPromptSubmit),
  `tool_use_id`, `command`, `description` (Pre/PostToolUse*, Bash only), `exit_code`
  (PostToolUse → 0, PostToolUseFailure → parsed from `error`), `error`, `source` / `reason`
  (SessionStart / SessionEnd).
- `transcripts.jsonl` — one line per Bash call found in a transcript (`kind: "transcript"`):
  `session_id`, `tool_use_id`, `ts`, `cwd`, `task` (the user prompt that led to the call),
  `command`, `description`, `output`, `exit_code`, `denied`, `is_sidechain`, `transcript_path`.
- `wrapper.log` — plain-text failures of the wrapper (tmux missing, runner down): never fatal.

Every text field is passed through `redaction.redact` before it is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mcp_harness.paths import data_home
from mcp_harness.redaction import redact
from mcp_harness.storage.atomic import append_lines

OUTPUT_LIMIT = 64 * 1024
COMMANDS = "commands.jsonl"
HOOKS = "hooks.jsonl"
TRANSCRIPTS = "transcripts.jsonl"
WRAPPER_LOG = "wrapper.log"


def capture_dir(env: Mapping[str, str] | None = None) -> Path:
    """`<data home>/capture` for `env` (default: this process's environment)."""
    return data_home(env) / "capture"


def redact_record(record: dict[str, Any]) -> dict[str, Any]:
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


def append_records(name: str, records: list[dict[str, Any]], directory: Path | None = None) -> None:
    """Redact and append records to `<capture dir>/<name>` in one write."""
    if records:
        lines = [json.dumps(redact_record(r), ensure_ascii=False) for r in records]
        append_lines((directory or capture_dir()) / name, lines)


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
