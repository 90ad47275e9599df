"""tmux ops: drive interactive terminal sessions (`terminal.session`) like a person would.

Each op's first input is what it acts on (a command, text or key names); its last input is the
session element (made by `ft_tmux_create_session`), so pulling an op orders it after whatever
produced its inputs. A session that died fails the element with a clear message, never a hang.
"""

from __future__ import annotations

import asyncio

from mcp_harness.limits import limits
from mcp_harness.runtime.future import Coords, Element, FutureTensor, Run
from mcp_harness.runtime.ops.base import Op, ShapeError, register
from mcp_harness.runtime.status import Status
from mcp_harness.terminal.session import TerminalError, TerminalSession

RUN_TIMEOUT_S = 60.0


async def element_session(run: Run, node: FutureTensor, coords: Coords, trajectory: str):
    """The session named by the node's last input, or a failed Element to return."""
    element = await run.get(node.inputs[-1], coords, trajectory)
    if not element.status.ok:
        return None, element
    session = run.sessions.get(element.text)
    if session is None:
        try:
            session = await TerminalSession.attach(element.text)
        except TerminalError as exc:
            return None, Element(exc.message, Status.failed(1.0))
        run.sessions[element.text] = session
    return session, None


def _strip(text: str, prefix: str, exact: bool = False) -> str:
    """The payload without `prefix`; trimmed of surrounding whitespace unless `exact`."""
    if exact:
        return text[len(prefix) :] if prefix and text.startswith(prefix) else text
    text = text.strip()
    return text[len(prefix) :].strip() if prefix and text.startswith(prefix) else text


@register
class CreateSession(Op):
    """Create (or reuse and clear) a terminal session per element, named `<name>-<coords>`; an
    optional input gives each element's working directory. Output: the session name."""

    name = "ft_tmux_create_session"
    arity = (0, 1)
    ARGS = {"name": (str, "ft"), "shape": (list, [1])}

    def infer_shape(self, shapes, node):
        self.check_arity(len(shapes), node)
        return tuple(shapes[0]) if shapes else tuple(self.args["shape"])

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        cwd = None
        if node.inputs:
            source = await run.get(node.inputs[0], coords, trajectory)
            if not source.status.ok:
                return Element(source.text, source.status)
            cwd = source.text or None
        name = "-".join([self.args["name"], run.run_id, *map(str, coords)])
        run.owned.add(name)  # before it exists: a cancelled create is still closed
        try:
            run.sessions[name] = await TerminalSession.create(name, cwd=cwd or run.workdir)
        except TerminalError as exc:
            return Element(exc.message, Status.failed(1.0))
        return Element(name, Status.confidence(1.0))

    def backward(self, run, node, grad):
        return [grad * 0 for _ in node.inputs]


class _Act(Op):
    """Shared by the ops that act on a session with their first input's text."""

    arity = 2
    ARGS = {"strip_prefix": (str, "")}
    exact = False  # whether the text is acted on as given, surrounding whitespace included

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        payload = await run.get(node.inputs[0], coords, trajectory)
        if not payload.status.ok:
            return Element(payload.text, payload.status)
        session, failed = await element_session(run, node, coords, trajectory)
        if failed:
            return failed
        try:
            text = _strip(payload.text, self.args["strip_prefix"], self.exact)
            return await self.act(session, text)
        except TerminalError as exc:
            return Element(exc.message, Status.failed(1.0))

    async def act(self, session: TerminalSession, text: str) -> Element:
        raise NotImplementedError


@register
class TmuxRun(_Act):
    """Type a command + Enter and wait for the prompt; the text is the screen after, the status
    confident when the command exited 0 (meta: exit_code)."""

    name = "ft_tmux_run"
    ARGS = {**_Act.ARGS, "timeout": ((int, float), RUN_TIMEOUT_S)}

    async def act(self, session: TerminalSession, text: str) -> Element:
        outcome = await session.run(text, timeout=float(self.args["timeout"]))
        meta = {"command": text, "exit_code": outcome.exit_code, "timed_out": outcome.timed_out}
        if outcome.timed_out:
            return Element(outcome.screen, Status.failed(0.1), meta)
        status = Status.confidence(1.0) if outcome.exit_code == 0 else Status.failed(0.5)
        return Element(outcome.screen, status, meta)


@register
class SendText(_Act):
    """Type text literally (every space and symbol intact, leading and trailing ones too), no
    Enter, so a command can be typed piece by piece. Text: the screen after."""

    name = "ft_tmux_send_text"
    exact = True

    async def act(self, session: TerminalSession, text: str) -> Element:
        await session.send_text(text)
        return Element(await session.capture(), Status.confidence(1.0), {"sent": text})


@register
class SendKeys(_Act):
    """Press tmux keys, space separated (`C-c`, `Enter`, `Up Up Enter`). Text: the screen after."""

    name = "ft_tmux_send_keys"

    async def act(self, session: TerminalSession, text: str) -> Element:
        await session.send_keys(*text.split())
        return Element(await session.capture(), Status.confidence(1.0), {"sent": text})


@register
class CapturePane(Op):
    """The session's visible screen."""

    name = "ft_tmux_capture_pane"

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        session, failed = await element_session(run, node, coords, trajectory)
        if failed:
            return failed
        try:
            return Element(await session.capture(), Status.confidence(1.0))
        except TerminalError as exc:
            return Element(exc.message, Status.failed(1.0))


@register
class Wait(Op):
    """Wait until the screen matches `pattern` (a regex), or with no pattern until the shell is
    back at its prompt; confident if it happened within `timeout` seconds. Text: the screen."""

    name = "ft_tmux_wait"
    ARGS = {"pattern": ((str, type(None)), None), "timeout": ((int, float), 30)}

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        session, failed = await element_session(run, node, coords, trajectory)
        if failed:
            return failed
        timeout = float(self.args["timeout"])
        try:
            pattern = self.args["pattern"]
            happened = await (
                session.wait_for_text(pattern, timeout) if pattern else session.wait_idle(timeout)
            )
            screen = await session.capture()
        except TerminalError as exc:
            return Element(exc.message, Status.failed(1.0))
        return Element(screen, Status.confidence(1.0) if happened else Status.failed(0.2))


@register
class SpeculativeRun(_Act):
    """Speculative multi-action dispatch: the input holds several candidate commands from one
    expert call (one per line; blank lines and `separator`-only lines ignored), tried in order
    with `ft_tmux_run` until one validates — it exits 0 and, with `pattern`, the screen after
    it matches that regex. Text: the screen after the command that validated (else the last
    one); meta: every candidate tried with its exit code, and which one won. One expert call
    thus covers what a loop would spend one call per attempt on."""

    name = "ft_tmux_speculative_run"
    ARGS = {
        **_Act.ARGS,
        "pattern": ((str, type(None)), None),
        "timeout": ((int, float), RUN_TIMEOUT_S),
    }

    def infer_shape(self, shapes, node):
        pattern = self.args["pattern"]
        if pattern is not None:
            import regex  # here, not at the top: the server imports every op at start

            try:
                regex.compile(pattern)
            except regex.error as exc:
                raise ShapeError(
                    f"node {node!r} ({self.name}): bad pattern {pattern!r}: {exc}",
                    "fix the regular expression",
                ) from None
        return super().infer_shape(shapes, node)

    async def act(self, session: TerminalSession, text: str) -> Element:
        candidates = [line.strip() for line in text.splitlines() if line.strip()]
        if not candidates:
            return Element("no candidate command", Status.failed(0.1), {"tried": []})
        pattern = self.args["pattern"]
        tried: list[dict] = []
        screen = ""
        for index, command in enumerate(candidates):
            outcome = await session.run(command, timeout=float(self.args["timeout"]))
            screen = outcome.screen
            tried.append({"command": command, "exit_code": outcome.exit_code})
            passed = outcome.exit_code == 0 and (pattern is None or await _found(pattern, screen))
            if passed:
                meta = {"tried": tried, "chosen": index, "command": command, "exit_code": 0}
                return Element(screen, Status.confidence(1.0), meta)
            if outcome.timed_out:
                break
        meta = {"tried": tried, "chosen": None, "exit_code": tried[-1]["exit_code"]}
        return Element(screen, Status.failed(0.5), meta)


async def _found(pattern: str, screen: str) -> bool:
    """A multiline search with the configured time limit (a catastrophic pattern fails)."""
    import regex

    try:
        match = await asyncio.to_thread(
            regex.search,
            pattern,
            screen,
            regex.MULTILINE,
            concurrent=True,
            timeout=limits().regex_timeout_s,
        )
    except TimeoutError:
        return False
    return match is not None
