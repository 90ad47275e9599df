"""Tests for mcp_harness.capture.transcripts, on hand-written Claude Code transcripts.

Fixture tree `tests/fixtures/transcripts/projects/-home-dev-proj/` (copied per test):
- session A (`5f3c…`): text + 2 Bash tool_uses sharing `msg_01` with results out of order
  (toolu_02 fails `Exit code 3`), a Read call, an `isMeta` line, a list-form prompt, a persisted
  output (toolu_04, file in `<A>/tool-results/`), an unknown line type, a timeout (143) and an
  Agent call whose subagent transcript (`<A>/subagents/agent-a7c1e2f.jsonl`) runs toolu_s1.
- session B (`9e8d…`): hook-denied toolu_11, permission-denied toolu_12, a broken JSON line, a
  non-object line, a `<tool_use_error>` toolu_13, and toolu_14 whose result is a truncated last
  line; its full form is `completions/toolu_14-result.jsonl`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from mcp_harness.capture import transcripts as tr
from mcp_harness.capture.records import (
    OUTPUT_LIMIT,
    TRANSCRIPTS,
    TranscriptRecord,
    capture_dir,
    read_records,
)
from mcp_harness.capture.transcripts import (
    ImportReport,
    default_projects_root,
    import_transcripts,
    parse_transcript,
)
from mcp_harness.errors import HarnessError

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"
A = "5f3c2a1e-8b7d-4c6e-9a0f-1d2e3b4c5a6f"
B = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
PROMPT_A1 = "list the files and run the checks"
PROMPT_A2 = "now run the full test suite"
PROMPT_B = "clean up the build directory, then run the tests"
SUB_TASK = "Find all TODO comments in src/ and report file:line."
ANT = "sk-ant-api03-Xy9_kLmN0pQrStUvWxYz-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AA"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A private copy of the fixture projects root."""
    dest = tmp_path / "projects"
    shutil.copytree(FIXTURES / "projects", dest)
    return dest


def session_file(root: Path, session: str) -> Path:
    return root / "-home-dev-proj" / f"{session}.jsonl"


def by_id(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["tool_use_id"]: r for r in records}


def stored() -> list[dict[str, Any]]:
    return list(read_records(TRANSCRIPTS))


def completion_line() -> str:
    return (FIXTURES / "completions" / "toolu_14-result.jsonl").read_text()


# --- helpers to write transcripts in the reference format ----------------------------------------


def common(session: str, ts: str) -> dict[str, Any]:
    return {
        "timestamp": ts,
        "userType": "external",
        "entrypoint": "cli",
        "cwd": "/home/dev/proj",
        "sessionId": session,
        "version": "2.1.197",
        "gitBranch": "main",
    }


def prompt_line(session: str, text: str, ts: str = "2026-11-27T10:00:00.000Z") -> dict[str, Any]:
    return {
        "parentUuid": None,
        "isSidechain": False,
        "type": "user",
        "message": {"role": "user", "content": text},
        "uuid": f"u-{ts}",
        **common(session, ts),
    }


def bash_line(
    session: str, tid: str, command: str, ts: str = "2026-11-27T10:00:01.000Z"
) -> dict[str, Any]:
    block = {"type": "tool_use", "id": tid, "name": "Bash", "input": {"command": command}}
    return {
        "parentUuid": None,
        "isSidechain": False,
        "message": {
            "id": f"msg_{tid}",
            "type": "message",
            "role": "assistant",
            "model": "claude-opus-4-8",
            "content": [block],
            "stop_reason": "tool_use",
            "stop_sequence": None,
        },
        "type": "assistant",
        "uuid": f"a-{tid}",
        **common(session, ts),
    }


def result_line(
    session: str,
    tid: str,
    content: Any,
    *,
    is_error: bool = False,
    tool_use_result: Any = None,
    ts: str = "2026-11-27T10:00:02.000Z",
) -> dict[str, Any]:
    if tool_use_result is None:
        text = content if isinstance(content, str) else ""
        tool_use_result = {"stdout": text, "stderr": "", "interrupted": False, "isImage": False}
    block = {"tool_use_id": tid, "type": "tool_result", "content": content, "is_error": is_error}
    return {
        "parentUuid": f"a-{tid}",
        "isSidechain": False,
        "type": "user",
        "message": {"role": "user", "content": [block]},
        "uuid": f"r-{tid}",
        "toolUseResult": tool_use_result,
        "sourceToolAssistantUUID": f"a-{tid}",
        **common(session, ts),
    }


def append(path: Path, *lines: dict[str, Any] | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        for line in lines:
            handle.write((line if isinstance(line, str) else json.dumps(line)) + "\n")


# --- parse_transcript ----------------------------------------------------------------------------


def test_pairs_by_id_not_position_and_ignores_other_tools(root: Path) -> None:
    records, offset, skipped = parse_transcript(session_file(root, A))
    assert [r["tool_use_id"] for r in records] == ["toolu_01", "toolu_02", "toolu_04", "toolu_05"]
    calls = by_id(records)
    assert calls["toolu_01"]["command"] == "ls -la"
    assert calls["toolu_01"]["description"] == "List files"
    assert calls["toolu_01"]["output"].startswith("total 16\n")
    assert calls["toolu_01"]["exit_code"] == 0
    assert calls["toolu_02"]["command"] == "make check"
    assert calls["toolu_02"]["output"].startswith("ruff check .")
    # ts is the tool_use line's, not the result's
    assert calls["toolu_02"]["ts"] == "2026-11-27T14:32:22.694Z"
    assert calls["toolu_01"]["cwd"] == "/home/dev/proj"
    assert all(r["session_id"] == A and r["kind"] == "transcript" for r in records)
    assert all(r["transcript_path"] == str(session_file(root, A)) for r in records)
    assert all(set(r) == set(TranscriptRecord.__annotations__) for r in records)
    assert offset == session_file(root, A).stat().st_size
    assert skipped == 1  # the unknown `future-thing` line


def test_exit_codes(root: Path) -> None:
    calls = by_id(parse_transcript(session_file(root, A))[0])
    failed = calls["toolu_02"]
    assert failed["exit_code"] == 3 and failed["denied"] is False
    assert failed["output"] == (
        "ruff check .\nsrc/app.py:3:1: F401 unused import\nmake: *** [check] Error 3"
    )
    timeout = calls["toolu_05"]
    assert (timeout["exit_code"], timeout["output"]) == (143, "Command timed out after 1s")


def test_denied_calls(root: Path) -> None:
    records, _, _ = parse_transcript(session_file(root, B))
    calls = by_id(records)
    assert set(calls) == {"toolu_11", "toolu_12", "toolu_13"}
    for call in calls.values():
        assert call["denied"] is True and call["exit_code"] is None
    assert calls["toolu_11"]["output"] == "denied by json hook"
    assert calls["toolu_12"]["output"].startswith("Permission to use Bash with command curl")
    assert calls["toolu_13"]["output"].startswith("<tool_use_error>InputValidationError")


def test_persisted_output_read_from_tool_results(root: Path) -> None:
    full = (root / "-home-dev-proj" / A / "tool-results" / "toolu_04.txt").read_text()
    calls = by_id(parse_transcript(session_file(root, A))[0])
    assert calls["toolu_04"]["output"] == full
    assert len(full) > 20000


def test_persisted_output_missing_file_keeps_preview(root: Path) -> None:
    (root / "-home-dev-proj" / A / "tool-results" / "toolu_04.txt").unlink()
    output = by_id(parse_transcript(session_file(root, A))[0])["toolu_04"]["output"]
    assert output.startswith("tests/test_mod.py::test_case_000 PASSED")
    assert "<persisted-output>" not in output and "Full output saved to" not in output
    assert 1900 < len(output) <= 2100


def test_persisted_output_capped(tmp_path: Path) -> None:
    path = tmp_path / "p" / "s1.jsonl"
    saved = tmp_path / "p" / "s1" / "tool-results" / "toolu_big.txt"
    saved.parent.mkdir(parents=True)
    saved.write_text("x" * (OUTPUT_LIMIT + 5000))
    content = (
        "<persisted-output>\nOutput too large (69.0KB). Full output saved to: "
        f"{saved}\n\nPreview (first 2KB):\nxxxx\n...\n</persisted-output>"
    )
    append(path, bash_line("s1", "toolu_big", "yes x"), result_line("s1", "toolu_big", content))
    (record,), _, _ = parse_transcript(path)
    assert record["output"] == "x" * OUTPUT_LIMIT


def test_tasks_skip_meta_and_tool_results(root: Path) -> None:
    calls = by_id(parse_transcript(session_file(root, A))[0])
    assert calls["toolu_01"]["task"] == PROMPT_A1
    assert calls["toolu_02"]["task"] == PROMPT_A1
    # the isMeta skill body in between is not a prompt; the list-form prompt is
    assert calls["toolu_04"]["task"] == PROMPT_A2
    assert calls["toolu_05"]["task"] == PROMPT_A2


def test_subagent_transcript(root: Path) -> None:
    path = root / "-home-dev-proj" / A / "subagents" / "agent-a7c1e2f.jsonl"
    (record,), _, skipped = parse_transcript(path)
    assert record["tool_use_id"] == "toolu_s1"
    assert record["session_id"] == A
    assert record["is_sidechain"] is True
    assert record["task"] == SUB_TASK
    assert record["output"] == "src/app.py:3:# TODO: handle empty input"  # list-form content
    assert skipped == 0


def test_subagent_task_is_its_first_message(tmp_path: Path) -> None:
    path = tmp_path / "p" / "s2" / "subagents" / "agent-x.jsonl"
    append(
        path,
        prompt_line("s2", "the delegated task"),
        prompt_line("s2", "a later nudge"),
        bash_line("s2", "toolu_x", "true"),
        result_line(
            "s2",
            "toolu_x",
            "(Bash completed with no output)",
            tool_use_result={"stdout": "", "stderr": "", "noOutputExpected": True},
        ),
    )
    (record,), _, _ = parse_transcript(path)
    assert record["task"] == "the delegated task"
    assert record["is_sidechain"] is False  # the line says so; the path is only a default
    assert record["output"] == ""


def test_bad_lines_and_truncated_tail(root: Path) -> None:
    path = session_file(root, B)
    raw = path.read_bytes()
    records, offset, skipped = parse_transcript(path)
    assert skipped == 3  # broken JSON, a JSON array, the truncated last line
    assert offset == raw.rindex(b"\n") + 1 < len(raw)
    assert "toolu_14" not in by_id(records)
    rest, offset2, skipped2 = parse_transcript(path, offset)
    assert (rest, offset2, skipped2) == ([], offset, 1)


def test_result_variants(tmp_path: Path) -> None:
    path = tmp_path / "p" / "s3.jsonl"
    append(
        path,
        prompt_line("s3", [{"type": "text", "text": "part one"}, {"type": "text", "text": "two"}]),
        # result written before its tool_use: still paired by id
        result_line("s3", "toolu_r", "early"),
        bash_line("s3", "toolu_r", "echo early"),
        bash_line("s3", "toolu_bg", "npm run dev"),
        result_line(
            "s3",
            "toolu_bg",
            "Command running in background with ID: b1",
            tool_use_result={"stdout": "", "stderr": "", "backgroundTaskId": "b1"},
        ),
        bash_line("s3", "toolu_s", "false"),
        result_line("s3", "toolu_s", [], is_error=True, tool_use_result="Error: Exit code 1\nboom"),
    )
    calls = by_id(parse_transcript(path)[0])
    assert calls["toolu_r"]["output"] == "early" and calls["toolu_r"]["exit_code"] == 0
    assert calls["toolu_r"]["task"] == "part one\ntwo"
    assert calls["toolu_bg"]["exit_code"] is None  # still running: unknown
    assert (calls["toolu_s"]["exit_code"], calls["toolu_s"]["output"]) == (1, "boom")


# --- import_transcripts --------------------------------------------------------------------------


def test_import_and_reimport_adds_nothing(root: Path) -> None:
    report = import_transcripts(root)
    assert report == ImportReport(files=3, new_calls=8, skipped_lines=4, errors=[])
    ids = {r["tool_use_id"] for r in stored()}
    assert ids == {f"toolu_{n}" for n in ("01", "02", "04", "05", "s1", "11", "12", "13")}
    before = (capture_dir() / TRANSCRIPTS).read_bytes()
    again = import_transcripts(root)
    assert again.new_calls == 0 and again.errors == []
    assert (capture_dir() / TRANSCRIPTS).read_bytes() == before
    state = json.loads((capture_dir() / tr.STATE_FILE).read_text())
    entry = state["files"][str(session_file(root, B))]
    assert set(entry) == {"inode", "size", "offset", "task", "pending"}
    assert set(entry["pending"]) == {"toolu_14"}


def test_truncated_last_line_completed_later(root: Path) -> None:
    import_transcripts(root)
    path = session_file(root, B)
    tail = path.read_bytes().rsplit(b"\n", 1)[1].decode()
    full = completion_line()
    assert full.startswith(tail)
    with path.open("a") as handle:
        handle.write(full[len(tail) :])
    report = import_transcripts(root)
    assert report.new_calls == 1
    record = stored()[-1]
    assert record["tool_use_id"] == "toolu_14"
    assert record["command"] == "npm test" and record["exit_code"] == 0
    assert record["output"].endswith("Tests: 12 passed, 12 total")
    assert record["task"] == PROMPT_B
    assert import_transcripts(root).new_calls == 0


def test_missing_result_paired_on_later_import(root: Path) -> None:
    path = session_file(root, B)
    raw = path.read_bytes()
    path.write_bytes(raw[: raw.rindex(b"\n") + 1])  # drop the half-written result
    assert import_transcripts(root).new_calls == 8
    append(path, completion_line().rstrip("\n"))
    report = import_transcripts(root)
    assert report.new_calls == 1 and stored()[-1]["tool_use_id"] == "toolu_14"
    assert stored()[-1]["ts"] == "2026-11-27T14:40:04.000Z"


def test_rewritten_or_truncated_file_does_not_duplicate(root: Path) -> None:
    import_transcripts(root)
    path = session_file(root, A)
    content = path.read_bytes()
    # rewritten (new inode) with one more call
    replacement = path.with_suffix(".tmp")
    replacement.write_bytes(content)
    append(replacement, bash_line(A, "toolu_07", "git status"), result_line(A, "toolu_07", "clean"))
    os.replace(replacement, path)
    report = import_transcripts(root)
    assert report.new_calls == 1 and stored()[-1]["tool_use_id"] == "toolu_07"
    assert stored()[-1]["task"] == PROMPT_A2
    # truncated in place, then grown back
    path.write_bytes(b"")
    assert import_transcripts(root).new_calls == 0
    path.write_bytes(content)
    assert import_transcripts(root).new_calls == 0
    assert len(stored()) == 9


def test_lost_state_does_not_duplicate(root: Path) -> None:
    import_transcripts(root)
    (capture_dir() / tr.STATE_FILE).unlink()
    assert import_transcripts(root).new_calls == 0
    (capture_dir() / tr.STATE_FILE).write_text("{not json")
    assert import_transcripts(root).new_calls == 0
    assert len(stored()) == 8


def test_missing_root_raises(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(HarnessError) as info:
        import_transcripts(missing)
    assert str(missing) in info.value.message
    assert info.value.fix and "CLAUDE_CONFIG_DIR" in info.value.fix


def test_unreadable_file_is_reported(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = session_file(root, B)
    bad.chmod(0)
    if os.access(bad, os.R_OK):  # root ignores permissions: fail the open the same way
        real_open = Path.open

        def deny(self: Path, *args: Any, **kwargs: Any) -> Any:
            if self == bad:
                raise PermissionError(13, "Permission denied", str(self))
            return real_open(self, *args, **kwargs)

        monkeypatch.setattr(Path, "open", deny)
    report = import_transcripts(root)
    assert report.new_calls == 5  # session A + its subagent
    assert len(report.errors) == 1 and str(bad) in report.errors[0]


def test_default_projects_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_projects_root() == tmp_path / ".claude" / "projects"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", f"{tmp_path}/one, {tmp_path}/two")
    assert default_projects_root() == tmp_path / "one" / "projects"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", "~/cfg")
    assert default_projects_root() == tmp_path / "cfg" / "projects"
    (tmp_path / "cfg" / "projects").mkdir(parents=True)
    assert import_transcripts() == ImportReport(files=0, new_calls=0, skipped_lines=0, errors=[])


def test_secrets_never_written(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    path = root / "-home-dev-proj" / "s9.jsonl"
    append(
        path,
        prompt_line("s9", f"use ANTHROPIC_API_KEY={ANT} to call the API"),
        bash_line("s9", "toolu_k1", f"curl -H 'x-api-key: {ANT}' https://api.anthropic.com"),
        result_line("s9", "toolu_k1", f'{{"error": "invalid x-api-key {ANT}"}}'),
        bash_line("s9", "toolu_k2", f"export ANTHROPIC_API_KEY={ANT}"),  # still pending
    )
    assert import_transcripts(root).new_calls == 1
    written = (capture_dir() / TRANSCRIPTS).read_text()
    assert "curl -H" in written
    assert ANT not in written and ANT[14:] not in written
    state = (capture_dir() / tr.STATE_FILE).read_text()
    assert "toolu_k2" in state and ANT not in state and ANT[14:] not in state
    append(path, result_line("s9", "toolu_k2", ""))
    assert import_transcripts(root).new_calls == 1
    assert ANT[14:] not in (capture_dir() / TRANSCRIPTS).read_text()
