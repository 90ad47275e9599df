"""Claude Code hook handler: one stdin payload in, one `hooks.jsonl` record out.

Installed (by `mcp-harness capture install` or the plugin) for UserPromptSubmit, PreToolUse,
PostToolUse, PostToolUseFailure (matcher `Bash`), SessionStart and SessionEnd, and run as
`python -I -m mcp_harness.capture.hooks`. The record follows the contract in `records.py`.

It must never disturb Claude Code: it always exits 0, never prints to stdout (stdout starting with
`{` would be read as a hook decision), never waits long on stdin, and reports its own failures
(bad payload, unknown event, unwritable data dir) as one line in `<capture dir>/wrapper.log`.
Imports are kept to the standard library plus `records` so the start-up stays fast.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_harness.capture.records import HookRecord

STDIN_LIMIT = 64 * 1024 * 1024  # a prompt can be long; anything beyond this is not a payload
STDIN_DEADLINE_S = 5.0  # Claude Code closes stdin after the payload; never hang if it does not

TOOL_EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure")
EVENTS = ("UserPromptSubmit", *TOOL_EVENTS, "SessionStart", "SessionEnd")

_EXIT_CODE = re.compile(r"\AExit code (-?\d+)")


class _Skip(Exception):
    """The payload is fine but not ours to record (a non-Bash tool event)."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _str(value: Any) -> str | None:
    """A text field: strings as they are, anything else (rare, schema drift) as JSON or None."""
    if value is None or isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def parse_exit_code(error: Any) -> int | None:
    """`"Exit code 3\\nx"` → 3; anything else (interrupt, other wording) → None."""
    if not isinstance(error, str):
        return None
    match = _EXIT_CODE.match(error)
    return int(match.group(1)) if match else None


def build_record(payload: dict[str, Any]) -> HookRecord:
    """The `hooks.jsonl` record for one payload; raises `_Skip` or `ValueError`."""
    event = payload.get("hook_event_name")
    if event not in EVENTS:
        raise ValueError(f"unknown hook event {event!r}")
    session_id = payload.get("session_id") or os.environ.get("CLAUDE_CODE_SESSION_ID")
    record: HookRecord = {
        "kind": "hook",
        "ts": _now(),
        "event": event,
        "session_id": _str(session_id),
        "cwd": _str(payload.get("cwd")),
        "transcript_path": _str(payload.get("transcript_path")),
    }
    if event == "UserPromptSubmit":
        record["prompt"] = _str(payload.get("prompt"))
    elif event in TOOL_EVENTS:
        if payload.get("tool_name") != "Bash":
            raise _Skip
        tool_input = payload.get("tool_input")
        if not isinstance(tool_input, dict):
            tool_input = {}
        record["tool_use_id"] = _str(payload.get("tool_use_id"))
        record["command"] = _str(tool_input.get("command"))
        record["description"] = _str(tool_input.get("description"))
        if event == "PostToolUse":
            # success means 0, unless the call was backgrounded or interrupted (not finished)
            response = payload.get("tool_response")
            unfinished = isinstance(response, dict) and (
                response.get("backgroundTaskId") or response.get("interrupted") is True
            )
            record["exit_code"] = None if unfinished else 0
        elif event == "PostToolUseFailure":
            error = payload.get("error")
            interrupted = payload.get("is_interrupt") is True
            record["exit_code"] = None if interrupted else parse_exit_code(error)
            record["error"] = _str(error)
    elif event == "SessionStart":
        record["source"] = _str(payload.get("source"))
    else:  # SessionEnd
        record["reason"] = _str(payload.get("reason"))
    return record


def _read_stdin() -> bytes:
    """All of stdin, but give up after `STDIN_DEADLINE_S` or `STDIN_LIMIT` bytes."""
    stream = sys.stdin
    if stream is None:
        return b""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return b""
    if os.isatty(fd):
        return b""  # run by hand: there is no payload to wait for
    try:
        import select
    except ImportError:  # pragma: no cover - every POSIX Python has select
        return os.read(fd, STDIN_LIMIT)
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + STDIN_DEADLINE_S
    while size < STDIN_LIMIT:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            ready, _, _ = select.select([fd], [], [], left)
        except (OSError, ValueError):  # not selectable (odd stdin): fall back to a plain read
            chunks.append(os.read(fd, STDIN_LIMIT - size))
            break
        if not ready:
            break
        chunk = os.read(fd, 1024 * 1024)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _parse(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise ValueError("empty stdin (no hook payload)")
    try:
        payload = json.loads(raw.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"stdin is not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg}; "
            f"{len(raw)} bytes ignored)"
        ) from None
    if not isinstance(payload, dict):
        raise ValueError(f"hook payload is a JSON {type(payload).__name__}, not an object")
    return payload


def _log(message: str) -> None:
    """One line in `<capture dir>/wrapper.log`; silently nothing if even that is impossible."""
    try:
        from mcp_harness.capture.records import WRAPPER_LOG, capture_dir
        from mcp_harness.redaction import redact

        line = " ".join(f"{_now()} hooks[{os.getpid()}]: {redact(message)}".split()) + "\n"
        directory = capture_dir()
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / WRAPPER_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8", errors="replace"))
        finally:
            os.close(fd)
    except BaseException:
        pass


def run() -> None:
    """Read, build and append one record; raises on any failure (`main` turns it into a log)."""
    payload = _parse(_read_stdin())
    try:
        record = build_record(payload)
    except _Skip:
        return
    from mcp_harness.capture.records import HOOKS, append_records

    append_records(HOOKS, [record])


def main() -> int:
    """Hook entry point: always 0, nothing on stdout, failures go to wrapper.log."""
    try:
        run()
    except BaseException as exc:  # never disturb Claude Code, whatever happened
        if isinstance(exc, ValueError):
            _log(str(exc))
        else:
            _log(f"cannot record hook event: {type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
