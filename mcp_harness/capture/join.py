"""Join the three capture sources into exactly one `Call` per Bash call.

Sources (their records are typed in `capture.records`): the prefix wrapper's `commands.jsonl`
(`CommandRecord`: what really ran: exit code, output, screens), the hooks' `hooks.jsonl`
(`HookRecord`: prompt, description, tool_use_id, exit code) and the transcript importer's
`transcripts.jsonl` (`TranscriptRecord`: everything the model saw, after the fact).

Join rules:

- Hook and transcript records join on `(session_id, tool_use_id)`.
- Wrapper records carry no tool_use_id. Taken in time order, each is matched to the earliest
  not-yet-matched PreToolUse hook event of the same session_id whose command is the exact same
  string and whose ts is not later than the wrapper's start (give or take `MATCH_SLACK`, as the
  writers may stamp time at different precisions, e.g. whole seconds vs milliseconds). When a
  tool use has no PreToolUse hook (hooks not installed then), its transcript record stands in
  for it. A wrapper record that matches nothing is still a call (`sources == ["wrapper"]`).
- Field precedence: `command` from the PreToolUse hook, then the transcript, then the wrapper;
  `exit_code` from the wrapper, then PostToolUse (0) / PostToolUseFailure, then the transcript;
  `output` from the wrapper, then the transcript; `description` from PreToolUse, then the
  transcript; `task` is the prompt of the session's last UserPromptSubmit at or before the call,
  else the transcript's task; `project` is the cwd of the session's earliest record (hooks first,
  then transcripts, then the wrapper), else the call's own cwd. `Call.failed` is also true for
  a PostToolUseFailure without a parsable exit code (an interrupt), a signal or a denial.
- Duplicated source lines never make two calls: wrapper records are unique by `id`, hook events
  by `(session_id, tool_use_id, event)` (prompts by the whole record), transcript records by
  `(session_id, tool_use_id)`; the first occurrence wins, later copies only fill empty fields.

Timestamps are ISO-8601; a naive one (also a naive `since` / `until`) is taken as UTC. The window
is `since <= ts < until`; a call without any timestamp is dropped when a bound is given. Calls are
ordered by ts (calls without one last).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from mcp_harness.capture.records import (
    COMMANDS,
    HOOKS,
    TRANSCRIPTS,
    CommandRecord,
    HookRecord,
    Record,
    TranscriptRecord,
    read_records,
)

PRE = "PreToolUse"
POST = "PostToolUse"
POST_FAILURE = "PostToolUseFailure"
PROMPT = "UserPromptSubmit"
MATCH_SLACK = timedelta(seconds=1)


@dataclass
class Call:
    """One Bash call, with whatever the sources knew about it."""

    call_id: str
    session_id: str | None = None
    tool_use_id: str | None = None
    ts: datetime | None = None
    cwd: str | None = None
    project: str | None = None
    task: str | None = None
    description: str | None = None
    command: str | None = None
    exit_code: int | None = None
    output: str | None = None
    screen_before: str | None = None
    screen_after: str | None = None
    sources: list[str] = field(default_factory=list)
    wrapper_id: str | None = None
    error: str | None = None
    signal: int | None = None
    denied: bool = False
    failure_reported: bool = False

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not self.failure_reported

    @property
    def failed(self) -> bool:
        """Known to have failed: non-zero exit, a signal, PostToolUseFailure or a denial."""
        if self.exit_code is not None and self.exit_code != 0:
            return True
        return self.failure_reported or self.denied or self.signal is not None


def parse_ts(value: Any) -> datetime | None:
    """An aware datetime from an ISO-8601 string (naive -> UTC); None when unparsable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def calls(since: datetime | None = None, until: datetime | None = None) -> list[Call]:
    """Every captured Bash call once, joined across wrapper, hooks and transcripts, by ts."""
    wrappers = _unique_wrappers(cast("Iterable[CommandRecord]", read_records(COMMANDS)))
    hook_events, prompts, hook_cwds = _hook_records(
        cast("Iterable[HookRecord]", read_records(HOOKS))
    )
    transcripts, transcript_cwds = _transcript_records(
        cast("Iterable[TranscriptRecord]", read_records(TRANSCRIPTS))
    )
    wrapper_cwds = _earliest_cwds(wrappers)

    groups: dict[tuple[str | None, str], _Group] = {}
    for key, events in hook_events.items():
        groups.setdefault(key, _Group(*key)).hooks = events
    for key, record in transcripts.items():
        groups.setdefault(key, _Group(*key)).transcript = record

    matched = _match_wrappers(wrappers, groups)

    result = [group.to_call() for group in groups.values()]
    result.extend(_wrapper_call(w) for w in wrappers if w["id"] not in matched)

    since_, until_ = parse_ts(since), parse_ts(until)
    for call in result:
        _fill_task(call, prompts.get(call.session_id, []))
        session_cwd = None
        if call.session_id is not None:
            session_cwd = (
                hook_cwds.get(call.session_id)
                or transcript_cwds.get(call.session_id)
                or wrapper_cwds.get(call.session_id)
            )
        call.project = session_cwd or call.cwd
    if since_ is not None or until_ is not None:
        result = [c for c in result if in_window(c.ts, since_, until_)]
    result.sort(key=lambda c: (c.ts is None, c.ts or datetime.min.replace(tzinfo=UTC)))
    return result


# ---- internals ---------------------------------------------------------------------------------
@dataclass
class _Group:
    """Hook events and the transcript record of one (session_id, tool_use_id)."""

    session_id: str | None
    tool_use_id: str
    hooks: dict[str, HookRecord] = field(default_factory=dict)
    transcript: TranscriptRecord | None = None
    wrapper: CommandRecord | None = None

    def anchor(self) -> tuple[str | None, datetime | None]:
        """Command and ts a wrapper record is matched against (PreToolUse, else transcript)."""
        record = self.hooks.get(PRE) or self.transcript
        if record is None:
            return None, None
        return record.get("command"), parse_ts(record.get("ts"))

    def to_call(self) -> Call:
        pre = self.hooks.get(PRE, {})
        post = self.hooks.get(POST) or self.hooks.get(POST_FAILURE) or {}
        tr = self.transcript or {}
        w = self.wrapper or {}
        hooks_any = pre or post
        sources = []
        if self.wrapper is not None:
            sources.append("wrapper")
        if self.hooks:
            sources.append("hooks")
        if self.transcript is not None:
            sources.append("transcript")
        exit_code = _first_int(
            w.get("exit_code"),
            0 if POST in self.hooks else None,
            self.hooks.get(POST_FAILURE, {}).get("exit_code"),
            tr.get("exit_code"),
        )
        return Call(
            call_id=self.tool_use_id,
            session_id=self.session_id,
            tool_use_id=self.tool_use_id,
            ts=_first(
                parse_ts(w.get("ts")),
                parse_ts(pre.get("ts")),
                parse_ts(tr.get("ts")),
                parse_ts(post.get("ts")),
            ),
            cwd=_first(w.get("cwd"), hooks_any.get("cwd"), tr.get("cwd")),
            task=None if not tr.get("task") else str(tr["task"]),
            description=_first(
                pre.get("description"), tr.get("description"), post.get("description")
            ),
            command=_first(
                pre.get("command"), tr.get("command"), w.get("command"), post.get("command")
            ),
            exit_code=exit_code,
            output=_first(w.get("output"), tr.get("output"), post.get("output")),
            screen_before=w.get("screen_before"),
            screen_after=w.get("screen_after"),
            sources=sources,
            wrapper_id=w.get("id"),
            error=_first(self.hooks.get(POST_FAILURE, {}).get("error")),
            signal=_first_int(w.get("signal")),
            denied=bool(tr.get("denied")),
            failure_reported=POST_FAILURE in self.hooks,
        )


def _first(*values: Any) -> Any:
    """The first value that is not None or an empty string."""
    for value in values:
        if value is not None and value != "":
            return value
    return None


def _first_int(*values: Any) -> int | None:
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _fingerprint(record: Record) -> str:
    text = json.dumps(record, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _merge(kept: Record, extra: Record) -> None:
    """Fill fields the first copy left empty from a later copy of the same record."""
    for key, value in extra.items():
        if kept.get(key) in (None, "") and value not in (None, ""):
            kept[key] = value


def _unique_wrappers(records: Iterable[CommandRecord]) -> list[CommandRecord]:
    seen: dict[str, CommandRecord] = {}
    for record in records:
        if record.get("kind", "command") != "command":
            continue
        rid = record.get("id")
        key = str(rid) if rid not in (None, "") else "wrapper:" + _fingerprint(record)
        if key in seen:
            _merge(seen[key], record)
        else:
            seen[key] = {**record, "id": key}
    ordered = list(seen.values())
    ordered.sort(key=lambda r: (parse_ts(r.get("ts")) is None, _sort_ts(r.get("ts"))))
    return ordered


def _sort_ts(value: Any) -> datetime:
    return parse_ts(value) or datetime.min.replace(tzinfo=UTC)


def _hook_records(
    records: Iterable[HookRecord],
) -> tuple[
    dict[tuple[str | None, str], dict[str, HookRecord]],
    dict[str | None, list[tuple[datetime | None, str]]],
    dict[str, str],
]:
    """Tool events by (session, tool_use_id) and event; prompts by session; session cwds."""
    events: dict[tuple[str | None, str], dict[str, HookRecord]] = defaultdict(dict)
    prompt_seen: set[str] = set()
    prompts: dict[str | None, list[tuple[datetime | None, str]]] = defaultdict(list)
    cwds: dict[str, tuple[datetime, str]] = {}
    for record in records:
        if record.get("kind", "hook") != "hook":
            continue
        event, session = record.get("event"), record.get("session_id")
        _note_cwd(cwds, session, record)
        if event == PROMPT:
            fingerprint = _fingerprint(record)
            if fingerprint not in prompt_seen and isinstance(record.get("prompt"), str):
                prompt_seen.add(fingerprint)
                prompts[session].append((parse_ts(record.get("ts")), record["prompt"]))
            continue
        if event not in (PRE, POST, POST_FAILURE) or not record.get("tool_use_id"):
            continue
        group = events[(session, str(record["tool_use_id"]))]
        if event in group:
            _merge(group[event], record)
        else:
            group[event] = dict(record)
    for entries in prompts.values():
        entries.sort(key=lambda e: (e[0] is None, e[0] or datetime.min.replace(tzinfo=UTC)))
    return dict(events), dict(prompts), {s: cwd for s, (_, cwd) in cwds.items()}


def _transcript_records(
    records: Iterable[TranscriptRecord],
) -> tuple[dict[tuple[str | None, str], TranscriptRecord], dict[str, str]]:
    found: dict[tuple[str | None, str], TranscriptRecord] = {}
    cwds: dict[str, tuple[datetime, str]] = {}
    for record in records:
        if record.get("kind", "transcript") != "transcript":
            continue
        _note_cwd(cwds, record.get("session_id"), record)
        tool_use_id = record.get("tool_use_id")
        tid = str(tool_use_id) if tool_use_id else "transcript:" + _fingerprint(record)
        key = (record.get("session_id"), tid)
        if key in found:
            _merge(found[key], record)
        else:
            found[key] = dict(record)
    return found, {s: cwd for s, (_, cwd) in cwds.items()}


def _note_cwd(cwds: dict[str, tuple[datetime, str]], session: Any, record: Record) -> None:
    """Keep the cwd of the session's earliest record."""
    cwd = record.get("cwd")
    if not session or not isinstance(cwd, str) or not cwd:
        return
    ts = _sort_ts(record.get("ts"))
    if session not in cwds or ts < cwds[session][0]:
        cwds[session] = (ts, cwd)


def _earliest_cwds(wrappers: list[CommandRecord]) -> dict[str, str]:
    cwds: dict[str, tuple[datetime, str]] = {}
    for record in wrappers:
        _note_cwd(cwds, record.get("session_id"), record)
    return {s: cwd for s, (_, cwd) in cwds.items()}


def _match_wrappers(
    wrappers: list[CommandRecord], groups: dict[tuple[str | None, str], _Group]
) -> set[str]:
    """Pair each wrapper record (in ts order) with the earliest unmatched tool use before it.

    Returns the ids of the wrapper records that found their tool use.
    """
    matched: set[str] = set()
    by_session: dict[str, list[tuple[datetime, bool, _Group, str]]] = defaultdict(list)
    for (session, _), group in groups.items():
        command, ts = group.anchor()
        if session and ts is not None and isinstance(command, str):
            by_session[session].append((ts, PRE in group.hooks, group, command))
    for candidates in by_session.values():
        candidates.sort(key=lambda c: c[0])
    for record in wrappers:
        session, command = record.get("session_id"), record.get("command")
        ts = parse_ts(record.get("ts"))
        if not session or ts is None or not isinstance(command, str):
            continue
        for pre_first in (True, False):  # PreToolUse events first; transcripts only as fallback
            match = next(
                (
                    group
                    for cand_ts, has_pre, group, cand_command in by_session.get(session, [])
                    if has_pre == pre_first
                    and group.wrapper is None
                    and cand_command == command
                    and cand_ts <= ts + MATCH_SLACK
                ),
                None,
            )
            if match is not None:
                match.wrapper = record
                matched.add(record["id"])
                break
    return matched


def _wrapper_call(record: CommandRecord) -> Call:
    return Call(
        call_id=record["id"],
        session_id=record.get("session_id"),
        ts=parse_ts(record.get("ts")),
        cwd=record.get("cwd"),
        command=record.get("command"),
        exit_code=_first_int(record.get("exit_code")),
        output=record.get("output"),
        screen_before=record.get("screen_before"),
        screen_after=record.get("screen_after"),
        sources=["wrapper"],
        wrapper_id=record["id"],
        signal=_first_int(record.get("signal")),
    )


def _fill_task(call: Call, prompts: list[tuple[datetime | None, str]]) -> None:
    """The last prompt of the session at or before the call, else the transcript's task."""
    if call.ts is None:
        return
    latest = None
    for ts, prompt in prompts:
        if ts is not None and ts <= call.ts:
            latest = prompt
    if latest is not None:
        call.task = latest


def in_window(ts: datetime | None, since: datetime | None, until: datetime | None) -> bool:
    """`since <= ts < until` (either bound optional, naive = UTC); False for an unknown ts."""
    since, until = parse_ts(since), parse_ts(until)
    if ts is None:
        return False
    return (since is None or ts >= since) and (until is None or ts < until)
