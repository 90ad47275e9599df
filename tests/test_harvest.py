"""Harvest: joining wrapper / hook / transcript records into calls, and calls into experience."""

from __future__ import annotations

import json
import sys
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mcp_harness.capture import join
from mcp_harness.capture.records import (
    COMMANDS,
    HOOKS,
    TRANSCRIPTS,
    append_records,
    capture_dir,
)
from mcp_harness.errors import HarnessError
from mcp_harness.experience.harvest import harvest, project_slug
from mcp_harness.experience.keywords import keywords_text
from mcp_harness.experience.store import Experience
from mcp_harness.paths import experience_home

S1, S2 = "sess-shop", "sess-api"
SHOP = "/home/ana/src/shop"
API = "/srv/work/Api_Server"
SHOP_SLUG, API_SLUG = "src-shop", "work-api-server"


def ts(day: int, minute: int, second: int = 0) -> str:
    return f"2024-06-0{day}T10:{minute:02d}:{second:02d}+00:00"


def hook(event: str, session: str, when: str, cwd: str = SHOP, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "hook",
        "ts": when,
        "event": event,
        "session_id": session,
        "cwd": cwd,
        "transcript_path": f"/home/ana/.claude/projects/x/{session}.jsonl",
        **extra,
    }


def pre(session: str, when: str, tool_use_id: str, command: str, description: str, cwd=SHOP):
    return hook(
        "PreToolUse",
        session,
        when,
        cwd,
        tool_use_id=tool_use_id,
        command=command,
        description=description,
    )


def post(session: str, when: str, tool_use_id: str, command: str, cwd=SHOP, code: int = 0):
    if code == 0:
        return hook(
            "PostToolUse", session, when, cwd, tool_use_id=tool_use_id, command=command, exit_code=0
        )
    return hook(
        "PostToolUseFailure",
        session,
        when,
        cwd,
        tool_use_id=tool_use_id,
        command=command,
        exit_code=code,
        error=f"Exit code {code}",
    )


def wrapper(
    rid: str,
    session: str | None,
    when: str,
    command: str,
    code: int | None = 0,
    output: str = "",
    screen_before: str = "",
    cwd: str = SHOP,
) -> dict[str, Any]:
    return {
        "kind": "command",
        "id": rid,
        "ts": when,
        "duration_ms": 120,
        "session_id": session,
        "cwd": cwd,
        "command": command,
        "command_raw": f"eval '{command}' < /dev/null && pwd -P >| /tmp/cwd",
        "exit_code": code,
        "signal": None,
        "output": output,
        "output_bytes": len(output.encode()),
        "screen_before": screen_before,
        "screen_after": screen_before + f"$ {command}\n{output}",
        "pane": "%3",
        "runner": "tmux",
    }


def transcript(session: str, tool_use_id: str, when: str, command: str, **extra: Any):
    record = {
        "kind": "transcript",
        "session_id": session,
        "tool_use_id": tool_use_id,
        "ts": when,
        "cwd": SHOP,
        "task": None,
        "command": command,
        "description": None,
        "output": None,
        "exit_code": None,
        "denied": False,
        "is_sidechain": False,
        "transcript_path": f"/home/ana/.claude/projects/x/{session}.jsonl",
    }
    record.update(extra)
    return record


SCREEN = "ana@box:~/src/shop$ ls\nMakefile  src  tests\n\n"


def scenario() -> tuple[list, list, list]:
    """Two sessions in two projects; returns (hooks, wrapper records, transcript records)."""
    hooks = [
        hook("SessionStart", S1, ts(1, 0), source="startup"),
        hook("UserPromptSubmit", S1, ts(1, 1), prompt="fix the failing build"),
        # tu1: hook + wrapper + post + transcript
        pre(S1, ts(1, 2), "tu1", "make build", "Build the project"),
        post(S1, ts(1, 3, 30), "tu1", "make build"),
        # tu2: fails, wrapper has the exit code
        pre(S1, ts(1, 4), "tu2", "make test", "Run the test suite"),
        post(S1, ts(1, 5, 30), "tu2", "make test", code=2),
        # tu3: fails, no wrapper record: the exit code comes from PostToolUseFailure
        pre(S1, ts(1, 6), "tu3", "npm run lint", "Lint the sources"),
        post(S1, ts(1, 6, 30), "tu3", "npm run lint", code=1),
        hook("UserPromptSubmit", S1, ts(1, 10), prompt="deploy the shop"),
        # tu4: same command as tu1 -> its wrapper record must go to tu4, not tu1
        pre(S1, ts(1, 11), "tu4", "make build", "Rebuild before deploying"),
        post(S1, ts(1, 12, 30), "tu4", "make build"),
        # second project
        hook("SessionStart", S2, ts(2, 0), API, source="startup"),
        hook("UserPromptSubmit", S2, ts(2, 1), API, prompt="make the API tests pass"),
        pre(S2, ts(2, 2), "tu21", "pytest -q", "Run the API tests", cwd=API),
        post(S2, ts(2, 3, 30), "tu21", "pytest -q", cwd=API),
    ]
    wrappers = [
        wrapper("w1", S1, ts(1, 2, 1), "make build", 0, "built shop v1\n", SCREEN),
        wrapper("w2", S1, ts(1, 4, 1), "make test", 2, "FAILED tests/test_cart.py\n", ""),
        wrapper("w4", S1, ts(1, 11, 1), "make build", 0, "built shop v2\n", SCREEN),
        # no hooks at all: a session wrapper call, and one outside Claude Code
        wrapper("w6", S1, ts(1, 20), "ls -la", 0, "total 0\n", SCREEN),
        wrapper("w7", None, ts(1, 30), "uptime", 0, "up 3 days\n", "", cwd="/tmp/scratch"),
        wrapper("w21", S2, ts(2, 2, 1), "pytest -q", 0, "3 passed\n", "", cwd=API),
    ]
    transcripts = [
        transcript(
            S1,
            "tu1",
            ts(1, 2),
            "make build",
            task="fix the failing build",
            description="Build the project",
            output="built shop v1",
            exit_code=0,
        ),
        # a call only seen in the transcript
        transcript(
            S1,
            "tu5",
            ts(1, 15),
            "git status",
            task="deploy the shop",
            description="Check the working tree",
            output="nothing to commit",
            exit_code=0,
        ),
    ]
    return hooks, wrappers, transcripts


def write(hooks=(), wrappers=(), transcripts=()) -> None:
    append_records(HOOKS, list(hooks))
    append_records(COMMANDS, list(wrappers))
    append_records(TRANSCRIPTS, list(transcripts))


@pytest.fixture
def recorded() -> None:
    write(*scenario())


def by_id(calls: list[join.Call]) -> dict[str, join.Call]:
    return {c.call_id: c for c in calls}


def rows(path: Path) -> list[tuple[str, str, float, dict]]:
    return [(r.key, r.value, r.weight, r.provenance) for r in Experience.open(path).rows()]


# ---- join ---------------------------------------------------------------------------------------
def test_join_one_call_per_bash_call(recorded) -> None:
    calls = join.calls()
    assert [c.call_id for c in calls] == ["tu1", "tu2", "tu3", "tu4", "tu5", "w6", "w7", "tu21"]
    assert calls == sorted(calls, key=lambda c: c.ts)
    c = by_id(calls)

    assert c["tu1"].sources == ["wrapper", "hooks", "transcript"]
    assert c["tu1"].wrapper_id == "w1"
    assert c["tu1"].ts == datetime(2024, 6, 1, 10, 2, 1, tzinfo=UTC)  # when it ran
    assert (c["tu1"].session_id, c["tu1"].tool_use_id) == (S1, "tu1")
    assert (c["tu1"].cwd, c["tu1"].project) == (SHOP, SHOP)
    assert c["tu1"].task == "fix the failing build"
    assert c["tu1"].description == "Build the project"
    assert c["tu1"].command == "make build"
    assert (c["tu1"].exit_code, c["tu1"].output) == (0, "built shop v1\n")
    assert c["tu1"].screen_before == SCREEN
    assert c["tu1"].screen_after.endswith("built shop v1\n")

    assert c["tu2"].sources == ["wrapper", "hooks"]
    assert (c["tu2"].exit_code, c["tu2"].failed, c["tu2"].succeeded) == (2, True, False)

    assert c["tu3"].sources == ["hooks"]
    assert c["tu3"].exit_code == 1  # from PostToolUseFailure
    assert c["tu3"].error == "Exit code 1"
    assert c["tu3"].output is None

    # the second `make build` wrapper record goes to the second PreToolUse, under the new prompt
    assert c["tu4"].wrapper_id == "w4"
    assert c["tu4"].output == "built shop v2\n"
    assert c["tu4"].task == "deploy the shop"

    assert c["tu5"].sources == ["transcript"]
    assert c["tu5"].task == "deploy the shop"
    assert (c["tu5"].description, c["tu5"].command) == ("Check the working tree", "git status")
    assert (c["tu5"].exit_code, c["tu5"].output) == (0, "nothing to commit")

    assert c["w6"].sources == ["wrapper"]
    assert (c["w6"].tool_use_id, c["w6"].description) == (None, None)
    assert (c["w6"].task, c["w6"].project) == ("deploy the shop", SHOP)  # session prompt
    assert c["w7"].sources == ["wrapper"]
    assert (c["w7"].session_id, c["w7"].task, c["w7"].project) == (None, None, "/tmp/scratch")

    assert (c["tu21"].project, c["tu21"].task) == (API, "make the API tests pass")
    assert c["tu21"].sources == ["wrapper", "hooks"]


def test_duplicated_lines_do_not_duplicate_calls() -> None:
    hooks, wrappers, transcripts = scenario()
    write(hooks, wrappers, transcripts)
    once = join.calls()
    write(hooks, wrappers, transcripts)  # every source line twice
    write(hooks[2:4], wrappers[:1], transcripts[:1])  # and some three times
    twice = join.calls()
    assert [c.call_id for c in twice] == [c.call_id for c in once]
    assert twice == once


def test_wrapper_matches_only_an_earlier_pre_tool_use_of_the_same_session() -> None:
    write(
        [
            pre(S1, ts(1, 5), "late", "make build", "Build"),
            pre(S2, ts(1, 0), "other-session", "make build", "Build", cwd=API),
            pre(S1, ts(1, 0), "other-command", "make  build", "Build"),
        ],
        [wrapper("w1", S1, ts(1, 1), "make build")],
    )
    calls = by_id(join.calls())
    assert set(calls) == {"late", "other-session", "other-command", "w1"}
    assert calls["w1"].sources == ["wrapper"]
    assert all(calls[k].wrapper_id is None for k in ("late", "other-session", "other-command"))


def test_wrapper_match_tolerates_timestamp_precision() -> None:
    write(
        [pre(S1, "2024-06-01T10:01:00.400Z", "tu1", "make", "Build")],
        [wrapper("w1", S1, "2024-06-01T10:01:00+00:00", "make")],  # stamped in whole seconds
    )
    [call] = join.calls()
    assert (call.call_id, call.wrapper_id) == ("tu1", "w1")


def test_wrapper_falls_back_to_a_transcript_record_without_hooks() -> None:
    write(
        wrappers=[wrapper("w1", S1, ts(1, 1, 5), "make build", 3, "boom\n")],
        transcripts=[transcript(S1, "tu1", ts(1, 1), "make build", description="Build")],
    )
    [call] = join.calls()
    assert (call.call_id, call.sources) == ("tu1", ["wrapper", "transcript"])
    assert (call.exit_code, call.output) == (3, "boom\n")


def test_corrupt_and_foreign_lines_are_ignored(recorded) -> None:
    with (capture_dir() / HOOKS).open("a") as handle:
        handle.write('{"kind": "hook", "event": "PreToolUse", "trunc\n[1, 2]\n')
    assert len(join.calls()) == 8


def test_join_date_window(recorded) -> None:
    day1 = join.calls(until=datetime(2024, 6, 2, tzinfo=UTC))
    assert {c.session_id for c in day1} == {S1, None}
    day2 = join.calls(since=datetime(2024, 6, 2))  # naive = UTC
    assert [c.call_id for c in day2] == ["tu21"]
    window = join.calls(since=datetime(2024, 6, 1, 10, 4), until=datetime(2024, 6, 1, 10, 11, 1))
    assert [c.call_id for c in window] == ["tu2", "tu3"]  # since inclusive, until exclusive


# ---- harvest ------------------------------------------------------------------------------------
def test_project_slug() -> None:
    assert project_slug("/home/ana/src/shop") == "src-shop"
    assert project_slug("/srv/work/Api_Server") == "work-api-server"
    assert project_slug("/home/ana/My Projects/ça va!/") == "my-projects-a-va"
    assert project_slug("/top") == "top"
    assert project_slug("/") == project_slug(None) == "unknown"


def test_harvest_writes_two_tensors_per_project(recorded) -> None:
    report = harvest(import_transcripts=False)
    home = experience_home()
    expected = {
        home / f"{slug}.{kind}"
        for slug in (SHOP_SLUG, API_SLUG, "tmp-scratch")
        for kind in ("decision", "command")
    }
    assert set(report.tensors) == expected
    assert all((path / "shape").exists() for path in expected)
    assert (report.calls_seen, report.calls_filtered) == (8, 0)

    decision = {value: (key, w, prov) for key, value, w, prov in rows(home / "src-shop.decision")}
    # one row per described call of the project; w6 has no description
    assert set(decision) == {
        "Build the project",
        "Run the test suite",
        "Lint the sources",
        "Rebuild before deploying",
        "Check the working tree",
    }
    key, weight, prov = decision["Build the project"]
    assert key == "fix the failing build\n\nana@box:~/src/shop$ ls\nMakefile  src  tests"
    assert weight == 1.0
    assert prov["source"] == "harvest"
    assert prov["session_id"] == S1
    assert (prov["tool_use_id"], prov["call_id"], prov["wrapper_id"]) == ("tu1", "tu1", "w1")
    assert (prov["exit_code"], prov["cwd"]) == (0, SHOP)
    assert prov["ts"] == "2024-06-01T10:02:01+00:00"
    # no screen: the previous call's output in the session stands in
    assert decision["Run the test suite"][0] == "fix the failing build\n\nbuilt shop v1"
    assert decision["Lint the sources"][0] == "fix the failing build\n\nFAILED tests/test_cart.py"
    assert decision["Check the working tree"][0] == "deploy the shop\n\nbuilt shop v2"
    # failures rank lower
    assert decision["Run the test suite"][1] == decision["Lint the sources"][1] == 0.5
    exp = Experience.open(home / "src-shop.decision")
    assert next(r.query for r in exp.rows()) == keywords_text(decision["Build the project"][0])

    command = {(key, value): w for key, value, w, _ in rows(home / "src-shop.command")}
    assert command == {
        ("Build the project", "make build"): 1.0,
        ("Run the test suite", "make test"): 0.5,
        ("Lint the sources", "npm run lint"): 0.5,
        ("Rebuild before deploying", "make build"): 1.0,
        ("Check the working tree", "git status"): 1.0,
        ("deploy the shop", "ls -la"): 1.0,  # no description: the task is the key
    }
    assert rows(home / "work-api-server.command") == [
        ("Run the API tests", "pytest -q", 1.0, rows(home / "work-api-server.command")[0][3])
    ]
    assert [r[:2] for r in rows(home / "work-api-server.decision")] == [
        ("make the API tests pass", "Run the API tests")
    ]
    # a call with neither task nor description teaches nothing, but its project gets its tensors
    assert rows(home / "tmp-scratch.command") == rows(home / "tmp-scratch.decision") == []
    assert report.tensors[home / "src-shop.command"].added == 6
    assert report.rows_added == 6 + 5 + 1 + 1
    assert json.loads(json.dumps(report.to_json()))["rows_added"] == 13


def test_second_harvest_adds_nothing(recorded) -> None:
    first = harvest(import_transcripts=False)
    snapshot = {path: rows(path) for path in first.tensors}
    second = harvest(import_transcripts=False)
    assert second.rows_added == 0
    assert {path: rows(path) for path in second.tensors} == snapshot
    assert second.tensors[experience_home() / "src-shop.command"].skipped_duplicates == 6
    # a new call is harvested; an identical (key, value) pair from another call is not
    write(
        [
            pre(S1, ts(1, 40), "tu9", "make clean", "Clean up"),
            pre(S1, ts(1, 41), "tu10", "git status", "Check the working tree"),
        ]
    )
    third = harvest(import_transcripts=False)
    report = third.tensors[experience_home() / "src-shop.command"]
    assert (report.added, report.skipped_duplicates) == (1, 7)
    assert ("Clean up", "make clean") in [
        r[:2] for r in rows(experience_home() / "src-shop.command")
    ]


def test_exit_status_filters(recorded, tmp_path: Path) -> None:
    ok = harvest(import_transcripts=False, exit_status="success", out_dir=tmp_path / "ok")
    assert (ok.calls_seen, ok.calls_filtered) == (8, 2)
    values = [v for _, v, _, _ in rows(tmp_path / "ok" / "src-shop.command")]
    assert values == ["make build", "make build", "git status", "ls -la"]

    bad = harvest(import_transcripts=False, exit_status="failure", out_dir=tmp_path / "bad")
    assert (bad.calls_seen, bad.calls_filtered) == (8, 6)
    assert set(bad.tensors) == {tmp_path / "bad" / f"src-shop.{k}" for k in ("decision", "command")}
    got = rows(tmp_path / "bad" / "src-shop.command")
    assert [(v, w, p["exit_code"]) for _, v, w, p in got] == [
        ("make test", 0.5, 2),
        ("npm run lint", 0.5, 1),
    ]
    with pytest.raises(HarnessError):
        harvest(import_transcripts=False, exit_status="maybe")


def test_project_and_date_filters(recorded, tmp_path: Path) -> None:
    by_slug = harvest(import_transcripts=False, project=API_SLUG, out_dir=tmp_path / "a")
    assert {p.name for p in by_slug.tensors} == {f"{API_SLUG}.decision", f"{API_SLUG}.command"}
    assert by_slug.calls_filtered == 7

    by_dir = harvest(import_transcripts=False, project="/home/ana", out_dir=tmp_path / "b")
    assert {p.name for p in by_dir.tensors} == {f"{SHOP_SLUG}.decision", f"{SHOP_SLUG}.command"}
    none = harvest(import_transcripts=False, project="/home/an", out_dir=tmp_path / "c")
    assert none.tensors == {} and none.calls_filtered == 8  # whole path components only

    dated = harvest(
        import_transcripts=False,
        since=datetime(2024, 6, 1, 10, 10),
        until=datetime(2024, 6, 1, 10, 16),
        out_dir=tmp_path / "d",
    )
    assert dated.calls_seen == 2
    # the previous call's output is context even when that call is outside the window
    harvest(import_transcripts=False, since=datetime(2024, 6, 1, 10, 13), out_dir=tmp_path / "e")
    decisions = [r[:2] for r in rows(tmp_path / "e" / "src-shop.decision")]
    assert decisions == [("deploy the shop\n\nbuilt shop v2", "Check the working tree")]
    got = [r[:2] for r in rows(tmp_path / "d" / "src-shop.command")]
    assert got == [
        ("Rebuild before deploying", "make build"),
        ("Check the working tree", "git status"),
    ]


def test_denied_calls_are_not_harvested(tmp_path: Path) -> None:
    write(
        transcripts=[
            transcript(
                S1,
                "tu1",
                ts(1, 1),
                "rm -rf /",
                task="clean",
                denied=True,
                description="Remove everything",
            )
        ]
    )
    report = harvest(import_transcripts=False)
    assert (report.calls_seen, report.calls_filtered, report.rows_added) == (1, 1, 0)


def test_screen_tail_keeps_the_last_40_non_empty_lines() -> None:
    screen = "\n\n".join(f"line {i}   " for i in range(100)) + "\n\n\n"
    write(
        [pre(S1, ts(1, 1), "tu1", "make", "Build it")],
        [wrapper("w1", S1, ts(1, 2), "make", 0, "", screen)],
    )
    harvest(import_transcripts=False)
    [(key, *_)] = rows(experience_home() / "src-shop.decision")
    assert key == "\n".join(f"line {i}" for i in range(60, 100))  # no task: just the screen


SECRET = "sk-ant-api03-Zq8VbX2mK9pLr4TnW7yH3cJ6dF1gS5aQ0eUoIiRtYx"
PASSWORD = "Hunter2Secret"


def planted() -> tuple[list, list]:
    prompt = f"log in with password: {PASSWORD} and call the API"
    hooks = [
        hook("UserPromptSubmit", S1, ts(1, 1), prompt=prompt),
        pre(S1, ts(1, 2), "tu1", f"curl -H 'x-api-key: {SECRET}' https://api", "Call the API"),
        pre(S1, ts(1, 4), "tu2", "echo done", f"Use password: {PASSWORD}"),
    ]
    wrappers = [
        wrapper(
            "w1",
            S1,
            ts(1, 2, 1),
            hooks[1]["command"],
            0,
            f"token {SECRET}\n",
            f"$ export ANTHROPIC_API_KEY={SECRET}\n",
        ),
    ]
    return hooks, wrappers


def all_text(root: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


def test_planted_secret_never_reaches_disk(harness_home: Path) -> None:
    write(*planted())
    report = harvest(import_transcripts=False)
    assert report.rows_added == 4
    text = all_text(harness_home)
    assert "[REDACTED]" in text
    queries = [r.query for p in experience_home().iterdir() for r in Experience.open(p).rows()]
    assert queries and not any("redacted" in q for q in queries)
    assert SECRET not in text and SECRET[12:] not in text and PASSWORD.lower() not in text.lower()


def test_unredacted_capture_lines_are_redacted_by_harvest(tmp_path: Path) -> None:
    """Even when a capture file holds a secret (a writer that skipped redaction), the rows don't."""
    hooks, wrappers = planted()
    capture_dir().mkdir(parents=True)
    (capture_dir() / HOOKS).write_text("".join(json.dumps(h) + "\n" for h in hooks))
    (capture_dir() / COMMANDS).write_text("".join(json.dumps(w) + "\n" for w in wrappers))
    out = tmp_path / "out"
    report = harvest(import_transcripts=False, out_dir=out)
    assert report.rows_added == 4
    text = all_text(out)
    assert SECRET not in text and SECRET[12:] not in text and PASSWORD.lower() not in text.lower()


def test_harvest_runs_the_transcript_importer_first(monkeypatch, tmp_path: Path) -> None:
    seen: list[Path | None] = []

    def fake_import(projects_root: Path | None = None):
        seen.append(projects_root)
        write(
            transcripts=[
                transcript(
                    S1,
                    "tu1",
                    ts(1, 1),
                    "make",
                    task="build the shop",
                    description="Build",
                    exit_code=0,
                )
            ]
        )
        return types.SimpleNamespace(files=1, new_calls=1, skipped_lines=0, errors=[])

    module = types.ModuleType("mcp_harness.capture.transcripts")
    module.import_transcripts = fake_import  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mcp_harness.capture.transcripts", module)
    report = harvest(projects_root=tmp_path / "projects")
    assert seen == [tmp_path / "projects"]
    assert report.imported.new_calls == 1
    assert report.to_json()["imported"]["new_calls"] == 1
    assert [r[:2] for r in rows(experience_home() / "src-shop.command")] == [("Build", "make")]


def test_interrupted_call_counts_as_a_failure() -> None:
    interrupted = post(S1, ts(1, 2), "tu1", "sleep 99", code=130)
    interrupted["exit_code"] = None  # the hook sets no code for an interrupt
    write([pre(S1, ts(1, 1), "tu1", "sleep 99", "Wait for the server"), interrupted])
    [call] = join.calls()
    assert (call.exit_code, call.failed, call.succeeded) == (None, True, False)
    report = harvest(import_transcripts=False, exit_status="failure")
    assert report.rows_added == 1
    [(_, value, weight, _)] = rows(experience_home() / "src-shop.command")
    assert (value, weight) == ("sleep 99", 0.5)
