"""Import Bash calls from Claude Code session transcripts into `transcripts.jsonl`.

Why: the prefix wrapper and hooks only see calls made while they were installed, and hooks never
see the prompt that led to a call. Claude Code itself keeps every session as JSON lines under
`~/.claude/projects/<project>/<session>.jsonl` (subagents in `<session>/subagents/agent-*.jsonl`),
so the transcripts are the one source that covers past sessions, subagents, denied calls and the
user's task. The format is internal and shifts between versions, so parsing is defensive: unknown
line types and broken lines are skipped, never fatal.

Format facts this relies on (reference `claude-code.md` §8): one content block per line (several
`assistant` lines may share a `message.id`); each tool result is its own `user` line, possibly
out of order, so calls are paired strictly by `tool_use_id`; a failure is `is_error: true` with
content `Exit code N\\n<output>` (success carries no exit code → 0); any other error is a denial;
large outputs are persisted to `<session>/tool-results/<id>.txt` and only previewed inline.

Imports are incremental and idempotent: `<home>/capture/transcripts-state.json` keeps per file its
inode, size, byte offset, current task and the tool_uses still waiting for a result, plus every
(session_id, tool_use_id) already written, so a rewritten file or a lost state never duplicates.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from mcp_harness.capture.records import (
    OUTPUT_LIMIT,
    TRANSCRIPTS,
    TranscriptRecord,
    append_records,
    capture_dir,
    redact_record,
)
from mcp_harness.errors import HarnessError
from mcp_harness.redaction import redact
from mcp_harness.storage.atomic import atomic_write

__all__ = [
    "STATE_FILE",
    "ImportReport",
    "default_projects_root",
    "import_transcripts",
    "parse_transcript",
]

STATE_FILE = "transcripts-state.json"
_STATE_VERSION = 1

# Line types Claude Code writes (§8); anything else counts as a skipped line.
_KNOWN_TYPES = frozenset(
    {
        "user",
        "assistant",
        "attachment",
        "queue-operation",
        "last-prompt",
        "summary",
        "system",
        "ai-title",
        "custom-title",
        "mode",
        "permission-mode",
        "file-history-snapshot",
        "progress",
    }
)
_EXIT_RE = re.compile(r"Exit code (-?\d+)[ \t]*(?:\r?\n|$)")
_PERSISTED_TAG = "<persisted-output>"
_SAVED_RE = re.compile(
    r"Full output saved to: (.+?)[ \t]*(?:\r?\n| Preview \(|</persisted-output>|$)"
)
_PREVIEW_RE = re.compile(
    r"Preview \([^)]*\):\r?\n(.*?)(?:\r?\n\.\.\.)?\s*(?:</persisted-output>|$)", re.S
)
_NO_OUTPUT = "(Bash completed with no output)"
_NOT_PROMPT_PREFIXES = ("[Request interrupted by user", "<local-command-")


def default_projects_root() -> Path:
    """`$CLAUDE_CONFIG_DIR/projects` (first entry if comma-separated), else `~/.claude/projects`."""
    config = os.environ.get("CLAUDE_CONFIG_DIR", "")
    first = next((part.strip() for part in config.split(",") if part.strip()), None)
    base = Path(first).expanduser() if first else Path.home() / ".claude"
    return base / "projects"


@dataclass
class ImportReport:
    """Outcome of one import: files found, calls written, lines skipped, per-file errors."""

    files: int = 0
    new_calls: int = 0
    skipped_lines: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Scan:
    records: list[TranscriptRecord]
    offset: int
    skipped: int
    pending: dict[str, TranscriptRecord]
    task: str | None


def parse_transcript(path: Path, start_offset: int = 0) -> tuple[list[TranscriptRecord], int, int]:
    """Bash call records of one transcript from `start_offset` (a line start).

    Returns (records of calls whose result was seen, offset after the last complete line,
    skipped line count). Pure: reads `path` (and persisted outputs), writes nothing.
    """
    scan = _scan(Path(path), start_offset, {}, None)
    return scan.records, scan.offset, scan.skipped


def import_transcripts(projects_root: Path | None = None) -> ImportReport:
    """Append every not-yet-imported Bash call under `projects_root` to `transcripts.jsonl`."""
    root = Path(projects_root if projects_root is not None else default_projects_root())
    root = root.expanduser().absolute()
    if not root.is_dir():
        raise HarnessError(
            f"no Claude Code transcripts at {root}",
            "pass the transcripts directory (…/.claude/projects) or set CLAUDE_CONFIG_DIR",
        )
    files = _discover(root)
    report = ImportReport(files=len(files))
    directory = capture_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory / f"{STATE_FILE}.lock")):
        state_path = directory / STATE_FILE
        old_text, state = _load_state(state_path)
        emitted = _emitted_set(state)
        _recover_emitted(state, emitted, directory / TRANSCRIPTS)
        files_state: dict[str, Any] = state["files"]
        new_records: list[dict[str, Any]] = []
        for path in files:
            _import_file(path, files_state, emitted, new_records, report)
        for key in [k for k in files_state if not os.path.exists(k)]:
            del files_state[key]  # gone (retention): its pending calls can never complete
        append_records(TRANSCRIPTS, new_records)
        report.new_calls = len(new_records)
        state["records_size"] = _size(directory / TRANSCRIPTS)
        state["emitted"] = _emitted_json(emitted)
        text = json.dumps(state, ensure_ascii=False, sort_keys=True)
        if text != old_text:
            atomic_write(state_path, text)
    return report


def _import_file(
    path: Path,
    files_state: dict[str, Any],
    emitted: set[tuple[str, str]],
    out: list[dict[str, Any]],
    report: ImportReport,
) -> None:
    """Scan one file from where the last import stopped and collect its new records."""
    key = str(path)
    prev = _valid_entry(files_state.get(key))
    try:
        st = path.stat()
        offset, pending, task = 0, {}, None
        if prev and prev.get("inode") == st.st_ino and _resumable(path, prev, st.st_size):
            if st.st_size == prev["size"] and prev["offset"] == prev["size"]:
                return  # unchanged since last import
            offset, pending, task = prev["offset"], dict(prev["pending"]), prev["task"]
        scan = _scan(path, offset, pending, task)
    except OSError as exc:
        report.errors.append(f"{path}: {exc.strerror or exc}")
        return
    for record in scan.records:
        ident = (record["session_id"], record["tool_use_id"])
        if ident not in emitted:
            emitted.add(ident)
            out.append(record)
    report.skipped_lines += scan.skipped
    files_state[key] = {
        "inode": st.st_ino,
        "size": max(st.st_size, scan.offset),
        "offset": scan.offset,
        "task": redact(scan.task) if scan.task is not None else None,
        "pending": {
            tid: redact_record(rec)
            for tid, rec in scan.pending.items()
            if (rec["session_id"], tid) not in emitted
        },
    }


def _valid_entry(entry: Any) -> dict[str, Any] | None:
    """A stored per-file state, or None if it is missing or malformed (then rescan from 0)."""
    if not isinstance(entry, dict):
        return None
    ints = all(isinstance(entry.get(k), int) for k in ("inode", "size", "offset"))
    pending = entry.get("pending")
    if not ints or not isinstance(pending, dict):
        return None
    if not all(
        isinstance(r, dict) and isinstance(r.get("session_id"), str) for r in pending.values()
    ):
        return None
    return entry if entry.get("task") is None or isinstance(entry.get("task"), str) else None


def _resumable(path: Path, prev: dict[str, Any], size: int) -> bool:
    """True if the file still extends what was read: not shrunk, offset still at a line start."""
    offset = prev["offset"]
    if offset < 0 or size < offset:
        return False
    if offset == 0:
        return True
    with path.open("rb") as handle:
        handle.seek(offset - 1)
        return handle.read(1) == b"\n"


def _discover(root: Path) -> list[Path]:
    found = set(root.glob("*/*.jsonl")) | set(root.glob("*/*/subagents/agent-*.jsonl"))
    return sorted(p for p in found if p.is_file())


# --- parsing ------------------------------------------------------------------------------------


def _scan(
    path: Path, start_offset: int, pending: dict[str, TranscriptRecord], task: str | None
) -> _Scan:
    """Read complete lines from `start_offset`, carrying pending tool_uses and the current task."""
    subagent = path.parent.name == "subagents"
    fallback_session = path.parent.parent.name if subagent else path.stem
    order = {tid: i - len(pending) for i, tid in enumerate(pending)}
    pending = {tid: dict(record) for tid, record in pending.items()}
    orphans: dict[str, tuple[dict[str, Any], Any]] = {}  # results seen before their tool_use
    done: list[tuple[int, TranscriptRecord]] = []
    offset, skipped, seq = start_offset, 0, 0

    def complete(tid: str, block: dict[str, Any], tool_use_result: Any) -> None:
        record = pending.pop(tid)
        output, exit_code, denied = _outcome(block, tool_use_result, path)
        record.update(output=output, exit_code=exit_code, denied=denied)
        done.append((order.pop(tid), record))

    for raw, line in _lines(path, start_offset):
        if line is None:
            skipped += 1
            if not raw.endswith(b"\n"):
                break  # truncated tail: re-read next time
        offset += len(raw)
        if not line:
            continue  # blank or not a JSON object
        kind = line.get("type")
        if kind not in _KNOWN_TYPES:
            skipped += 1
            continue
        message = line.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if kind == "user":
            prompt = _prompt_text(line, content)
            if prompt is not None and not (subagent and task is not None):
                task = prompt[:OUTPUT_LIMIT]
            results = [b for b in _blocks(content) if b.get("type") == "tool_result"]
            tool_use_result = line.get("toolUseResult") if len(results) == 1 else None
            for block in results:
                tid = block.get("tool_use_id")
                if not isinstance(tid, str):
                    continue
                if tid in pending:
                    complete(tid, block, tool_use_result)
                else:
                    orphans[tid] = (block, tool_use_result)
        elif kind == "assistant":
            for block in _blocks(content):
                tid = block.get("id")
                tool_input = block.get("input")
                if (
                    block.get("type") != "tool_use"
                    or block.get("name") != "Bash"
                    or not isinstance(tid, str)
                    or not isinstance(tool_input, dict)
                    or not isinstance(tool_input.get("command"), str)
                ):
                    continue
                description = tool_input.get("description")
                record: TranscriptRecord = {
                    "kind": "transcript",
                    "session_id": _str(line.get("sessionId")) or fallback_session,
                    "tool_use_id": tid,
                    "ts": _str(line.get("timestamp")),
                    "cwd": _str(line.get("cwd")),
                    "task": task,
                    "command": tool_input["command"],
                    "description": description if isinstance(description, str) else None,
                    "output": None,
                    "exit_code": None,
                    "denied": False,
                    "is_sidechain": bool(line.get("isSidechain", subagent)),
                    "transcript_path": str(path),
                }
                pending[tid] = record
                order[tid] = seq
                seq += 1
                if tid in orphans:
                    complete(tid, *orphans.pop(tid))
    done.sort(key=lambda item: item[0])
    return _Scan([r for _, r in done], offset, skipped, pending, task)


def _lines(path: Path, start_offset: int) -> Iterator[tuple[bytes, dict[str, Any] | None]]:
    """(raw line, parsed object or None) from `start_offset`; raises OSError if unreadable."""
    with path.open("rb") as handle:
        handle.seek(start_offset)
        for raw in handle:
            if not raw.strip():
                if raw.endswith(b"\n"):
                    yield raw, {}
                continue
            try:
                value = json.loads(raw)
            except ValueError:
                value = None
            if not raw.endswith(b"\n"):
                value = None  # no newline yet: the writer may still be mid-line
            yield raw, value if isinstance(value, dict) else None


def _blocks(content: Any) -> list[dict[str, Any]]:
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _prompt_text(line: dict[str, Any], content: Any) -> str | None:
    """The text of a real user prompt (not a tool result, meta injection or interruption)."""
    if line.get("isMeta") or line.get("isCompactSummary") or line.get("isVisibleInTranscriptOnly"):
        return None
    if isinstance(content, str):
        text = content
    else:
        blocks = _blocks(content)
        if not blocks or any(b.get("type") == "tool_result" for b in blocks):
            return None
        text = "\n".join(
            b["text"] for b in blocks if b.get("type") == "text" and isinstance(b.get("text"), str)
        )
    if not text.strip() or text.startswith(_NOT_PROMPT_PREFIXES):
        return None
    return text


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(
        b["text"]
        for b in _blocks(content)
        if b.get("type") == "text" and isinstance(b.get("text"), str)
    )


def _outcome(
    block: dict[str, Any], tool_use_result: Any, path: Path
) -> tuple[str, int | None, bool]:
    """(output, exit_code, denied) of one Bash tool_result."""
    text = _content_text(block.get("content"))
    if block.get("is_error") is True:
        error = tool_use_result if isinstance(tool_use_result, str) else ""
        error = error.removeprefix("Error: ")
        for candidate in (text, error):
            match = _EXIT_RE.match(candidate)
            if match:
                return candidate[match.end() :][:OUTPUT_LIMIT], int(match.group(1)), False
        return (text or error)[:OUTPUT_LIMIT], None, True
    result = tool_use_result if isinstance(tool_use_result, dict) else {}
    output = _persisted(text, result, path)
    if output is None:
        output = "" if text == _NO_OUTPUT and not result.get("stdout") else text
    # a backgrounded command has not finished: its exit code is unknown
    exit_code = None if result.get("backgroundTaskId") else 0
    return output[:OUTPUT_LIMIT], exit_code, False


def _persisted(text: str, result: dict[str, Any], path: Path) -> str | None:
    """Full output of a persisted large result (or its inline preview); None if not persisted."""
    refs = [result.get("persistedOutputPath")]
    tagged = _PERSISTED_TAG in text
    if tagged and (match := _SAVED_RE.search(text)):
        refs.append(match.group(1))
    refs = [r for r in refs if isinstance(r, str) and r]
    if not refs and not tagged:
        return None
    session_dir = path.parent.parent if path.parent.name == "subagents" else path.with_suffix("")
    for ref in refs:
        given = Path(ref).expanduser()
        # the absolute path breaks when transcripts are moved; fall back to the session's dir
        for candidate in (
            given if given.is_absolute() else session_dir / given,
            session_dir / "tool-results" / given.name,
        ):
            try:
                with candidate.open("rb") as handle:
                    raw = handle.read(OUTPUT_LIMIT * 4)
            except OSError:
                continue
            return raw.decode("utf-8", errors="replace")[:OUTPUT_LIMIT]
    preview = _PREVIEW_RE.search(text) if tagged else None
    return preview.group(1) if preview else text


# --- state --------------------------------------------------------------------------------------


def _load_state(path: Path) -> tuple[str | None, dict[str, Any]]:
    """(raw text, state); a missing or corrupt state starts empty (emitted ids are recovered)."""
    try:
        text = path.read_text(encoding="utf-8")
        state = json.loads(text)
    except (OSError, ValueError):
        text, state = None, None
    if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
        state = {}
    files = state.get("files")
    state = {
        "version": _STATE_VERSION,
        "files": files if isinstance(files, dict) else {},
        "emitted": state.get("emitted") if isinstance(state.get("emitted"), dict) else {},
        "records_size": state.get("records_size", 0),
    }
    return text, state


def _emitted_set(state: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (session, tid)
        for session, ids in state["emitted"].items()
        if isinstance(ids, list)
        for tid in ids
        if isinstance(tid, str)
    }


def _emitted_json(emitted: set[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for session, tid in sorted(emitted):
        out.setdefault(session, []).append(tid)
    return out


def _recover_emitted(state: dict[str, Any], emitted: set[tuple[str, str]], records: Path) -> None:
    """Add ids of records appended after the state was last saved (crash between the two
    writes, or a lost state file), read from the tail of `transcripts.jsonl`."""
    size = _size(records)
    start = state["records_size"]
    if not isinstance(start, int) or start < 0 or start > size:
        start = 0  # transcripts.jsonl was rotated: the emitted set stays the authority
    if start == size:
        return
    try:
        with records.open("rb") as handle:
            handle.seek(start)
            tail = handle.read()
    except OSError:
        return
    for raw in tail.split(b"\n"):
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("kind") == "transcript":
            session, tid = record.get("session_id"), record.get("tool_use_id")
            if isinstance(session, str) and isinstance(tid, str):
                emitted.add((session, tid))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
