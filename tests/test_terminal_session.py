"""Interactive terminal sessions on the real private tmux server (one server per module)."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcp_harness.terminal import session as session_module
from mcp_harness.terminal.session import RunOutcome, TerminalError, TerminalSession


@pytest.fixture
async def term(runtime: Path, request: pytest.FixtureRequest) -> AsyncIterator[TerminalSession]:
    name = re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)[:60]
    created = await TerminalSession.create(name, width=120, height=40, root=runtime)
    yield created
    await created.kill()


async def until_busy(term: TerminalSession) -> None:
    """Bounded poll until the shell has started the command (no fixed sleep)."""

    async def busy() -> None:
        while await term.wait_idle(timeout=0):
            await asyncio.sleep(0.005)

    await asyncio.wait_for(busy(), 5)


async def test_create_attach_list_kill(runtime: Path) -> None:
    made = await TerminalSession.create("life", width=120, height=30, root=runtime)
    assert made.name == "life" and made.pane.startswith("%")
    assert await made.capture() == "$"
    assert "life" in await TerminalSession.list(runtime)
    attached = await TerminalSession.attach("life", root=runtime)
    assert attached.pane == made.pane
    outcome = await attached.run("stty size")
    assert outcome.exit_code == 0 and "30 120" in outcome.screen.splitlines()
    await made.kill()
    await made.kill()  # already gone: nothing to do
    assert "life" not in await TerminalSession.list(runtime)
    with pytest.raises(TerminalError, match="'life' does not exist"):
        await TerminalSession.attach("life", root=runtime)


async def test_default_root_comes_from_runtime_dir(runtime: Path) -> None:
    made = await TerminalSession.create("envroot")
    try:
        assert made.root == runtime
        assert "envroot" in await TerminalSession.list()
    finally:
        await made.kill()


async def test_create_is_idempotent_reuses_and_clears(
    term: TerminalSession, runtime: Path, tmp_path: Path
) -> None:
    await term.run("cd / && echo before-reuse")
    await term.send_text("half typed")
    again = await TerminalSession.create(term.name, cwd=tmp_path, root=runtime)
    assert again.pane == term.pane
    assert await again.capture() == "$"
    outcome = await again.run("pwd")
    assert outcome.exit_code == 0
    assert outcome.screen.splitlines() == ["$ pwd", str(tmp_path), "$"]


async def test_create_reuse_interrupts_a_running_command(
    term: TerminalSession, runtime: Path
) -> None:
    await term.send_text("sleep 100")
    await term.send_keys("Enter")
    await until_busy(term)
    again = await TerminalSession.create(term.name, root=runtime)
    assert again.pane == term.pane
    assert await again.wait_idle(timeout=0)
    assert await again.capture() == "$"


async def test_invalid_names_and_cwd(runtime: Path, tmp_path: Path) -> None:
    with pytest.raises(TerminalError, match="invalid terminal session name"):
        await TerminalSession.create("a:b", root=runtime)
    with pytest.raises(TerminalError, match="does not exist"):
        await TerminalSession.create("nodir", cwd=tmp_path / "missing", root=runtime)


async def test_send_text_keeps_every_character(term: TerminalSession) -> None:
    command = """echo "a b  c" 'd$e' !bang; printf '%s\\n' ü"""
    await term.send_text(command)
    await term.send_keys("Enter")
    assert await term.wait_idle(timeout=10)
    assert (await term.capture()).splitlines() == [f"$ {command}", "a b  c d$e !bang", "ü", "$"]


async def test_send_text_tabs_and_newlines_are_text_at_the_prompt(term: TerminalSession) -> None:
    await term.send_text("printf %s 'x\ty' | wc -c\nprintf 'second\\n'; (exit 4)")
    assert await term.wait_idle(timeout=0)  # nothing ran yet: the newline is text
    outcome = await term.run("")  # one Enter runs both lines; the status is the last one's
    assert outcome.exit_code == 4
    assert outcome.screen.splitlines()[-3:] == ["3", "second", "$"]  # the tab stayed a tab


async def test_text_typed_into_a_running_program(
    term: TerminalSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_module, "CHUNK_BYTES", 2)  # every chunk boundary, ';' at ends
    await term.send_text("read -r line; printf '<%s>\\n' \"$line\"")
    await term.send_keys("Enter")
    await until_busy(term)
    await term.send_text("a;b\\;c ;;ü;\n")
    assert await term.wait_idle(timeout=10)
    assert "<a;b\\;c ;;ü;>" in (await term.capture()).splitlines()


async def test_run_exit_statuses_and_cd_persists(term: TerminalSession, tmp_path: Path) -> None:
    assert (await term.run("true")).exit_code == 0
    assert (await term.run("(exit 3)")).exit_code == 3
    missing = await term.run("no-such-command-xyz")
    assert missing.exit_code == 127 and "command not found" in missing.screen
    assert (await term.run(f"cd {tmp_path}")).exit_code == 0
    outcome = await term.run("pwd")
    assert outcome == RunOutcome(exit_code=0, screen=outcome.screen, timed_out=False)
    assert str(tmp_path) in outcome.screen.splitlines()


async def test_run_makes_one_paste_call_and_reads_the_screen_with_the_state(
    term: TerminalSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command costs a state query, one tmux call that pastes it and presses Enter, then polls
    that each bring the state and the screen together: no separate capture."""
    calls: list[tuple[str, ...]] = []
    real = session_module.tmux.run_async

    async def recording(root: Path, *args: str, stdin: bytes | None = None):
        calls.append((args[0], *(args[i + 1] for i, a in enumerate(args[:-1]) if a == ";")))
        return await real(root, *args, stdin=stdin)

    monkeypatch.setattr(session_module.tmux, "run_async", recording)
    outcome = await term.run("echo counted")
    assert outcome.exit_code == 0 and outcome.screen.splitlines()[-2:] == ["counted", "$"]
    assert calls[:2] == [("display",), ("load-buffer", "paste-buffer", "send-keys")]
    assert calls[2:] and set(calls[2:]) == {("display", "capture-pane")}


async def test_run_times_out_without_raising(term: TerminalSession) -> None:
    outcome = await term.run("sleep 100", timeout=0.2)
    assert outcome.timed_out and outcome.exit_code is None
    with pytest.raises(TerminalError, match="busy"):
        await term.run("true")
    await term.send_keys("C-c")
    assert await term.wait_idle(timeout=10)
    assert (await term.run("true")).exit_code == 0


async def test_ctrl_c_interrupts_sleep(term: TerminalSession) -> None:
    await term.send_text("sleep 100")
    await term.send_keys("Enter")
    assert not await term.wait_idle(timeout=0)
    await term.send_keys("C-c")
    assert await term.wait_idle(timeout=10)
    outcome = await term.run("echo after")
    assert outcome.exit_code == 0 and "after" in outcome.screen.splitlines()


async def test_unknown_key_name(term: TerminalSession) -> None:
    for bad in ("Return", "echo hi", "x", "C-", "C-C-c", "S-a", ""):
        with pytest.raises(TerminalError, match="unknown key") as caught:
            await term.send_keys("Left", bad)
        assert "C-c" in str(caught.value) and "send_text" in str(caught.value)
    await term.send_keys("C-a", "M-f", "End", "F5", "BSpace", "Escape", "c-e", "enter")
    assert await term.wait_idle(timeout=10)


async def test_wait_for_text(term: TerminalSession) -> None:
    await term.send_text("echo found-$((40+2))")
    await term.send_keys("Enter")
    assert await term.wait_for_text(r"^found-42$", timeout=10)
    assert await term.wait_for_text("found-42", timeout=1, regex=False)
    assert not await term.wait_for_text("never-shown", timeout=0.2)
    assert not await term.wait_for_text("found-4.", timeout=0.1, regex=False)
    with pytest.raises(TerminalError, match="invalid pattern"):
        await term.wait_for_text("(", timeout=0.1)


async def test_killed_session_raises_instead_of_hanging(runtime: Path) -> None:
    doomed = await TerminalSession.create("doomed", root=runtime)
    running = asyncio.create_task(doomed.run("sleep 100", timeout=60))
    await until_busy(doomed)
    await (await TerminalSession.attach("doomed", root=runtime)).kill()
    with pytest.raises(TerminalError, match="'doomed' no longer exists; create it again"):
        await asyncio.wait_for(running, 5)
    for call in (
        doomed.capture(),
        doomed.send_text("x"),
        doomed.send_keys("Enter"),
        doomed.wait_idle(1),
        doomed.wait_for_text("x", 1),
    ):
        with pytest.raises(TerminalError, match="no longer exists"):
            await asyncio.wait_for(call, 5)


async def test_shell_exit_is_reported(runtime: Path) -> None:
    quitter = await TerminalSession.create("quitter", root=runtime)
    await quitter.send_text("exit")
    await quitter.send_keys("Enter")
    with pytest.raises(TerminalError, match="no longer exists"):
        await asyncio.wait_for(quitter.run("true"), 5)


async def test_command_longer_than_tmux_limit(term: TerminalSession) -> None:
    outcome = await term.run("echo " + "x" * 20_000 + " | wc -c", timeout=30)
    assert outcome.exit_code == 0
    assert outcome.screen.splitlines()[-2:] == ["20001", "$"]


async def test_long_text_typed_into_a_program(term: TerminalSession) -> None:
    await term.send_text("wc -c")
    await term.send_keys("Enter")
    await until_busy(term)
    await term.send_text(("y" * 99 + "\n") * 200)  # 20 000 bytes, typed in chunks
    await term.send_keys("C-d")
    assert await term.wait_idle(timeout=30)
    assert (await term.capture()).splitlines()[-2:] == ["20000", "$"]


async def test_environment_is_the_callers(runtime: Path, tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "MH_VALUE": "two  spaces"}
    shell = await TerminalSession.create("envs", env=env, cwd=tmp_path, root=runtime)
    try:
        outcome = await shell.run('printf \'%s|\' "$MH_VALUE" "$TERM" "$PWD"; env | wc -l')
        lines = outcome.screen.splitlines()
        assert f"two  spaces|xterm-256color|{tmp_path}|" in lines[1]
        exported = await shell.run("env | grep -c -E '^(PS1|PROMPT_COMMAND|TMUX|__MH)'")
        assert exported.exit_code == 1 and exported.screen.splitlines()[-2] == "0"
        history = await shell.run("echo !!")  # history expansion is off
        assert "!!" in history.screen.splitlines()
    finally:
        await shell.kill()


async def test_two_sessions_concurrently(runtime: Path) -> None:
    left, right = await asyncio.gather(
        TerminalSession.create("left", root=runtime),
        TerminalSession.create("right", root=runtime),
    )
    try:

        async def work(shell: TerminalSession, word: str) -> list[RunOutcome]:
            outcomes = []
            for index in range(5):
                await shell.send_text(f"echo {word}-{index}")
                await shell.send_keys("Enter")
                assert await shell.wait_for_text(f"^{word}-{index}$", timeout=10)
                outcomes.append(await shell.run(f"(exit {index})"))
            return outcomes

        got_left, got_right = await asyncio.gather(work(left, "ping"), work(right, "pong"))
        assert [o.exit_code for o in got_left] == [0, 1, 2, 3, 4]
        assert [o.exit_code for o in got_right] == [0, 1, 2, 3, 4]
        assert "pong" not in await left.capture()
        assert "ping" not in await right.capture()
        assert {"left", "right"} <= set(await TerminalSession.list(runtime))
    finally:
        await asyncio.gather(left.kill(), right.kill())
