"""Validators: decide whether an element is done. Each passes its first input's text through
and is confident when the check passes, failed (0.5) when it does not, so `ft_recurrent` stops
at the first iteration that validates."""

from __future__ import annotations

import asyncio

from mcp_harness.errors import HarnessError
from mcp_harness.limits import config_file, limits
from mcp_harness.runtime.future import Coords, Element, FutureTensor, Run
from mcp_harness.runtime.ops.base import Op, register
from mcp_harness.runtime.ops.terminal import element_session
from mcp_harness.runtime.status import Status
from mcp_harness.terminal.session import VALID_KEYS, TerminalError, key_name


def _verdict(subject: Element, passed: bool, **meta) -> Element:
    status = Status.confidence(1.0) if passed else Status.failed(0.5)
    return Element(subject.text, status, {**subject.meta, **meta, "validated": passed})


@register
class ValidateRegex(Op):
    """Passes when the input text matches a regex: the `pattern` arg, or per element the text of
    a second input. Multiline search, in a worker thread without the GIL and with a time limit
    (`regex_timeout_s` in config.toml's [limits]), so a catastrophic pattern fails its element
    instead of freezing the server."""

    name = "ft_validate_regex"
    arity = (1, 2)
    ARGS = {"pattern": ((str, type(None)), None)}

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        import regex  # here, not at the top: the server imports every op at start

        subject = await run.get(node.inputs[0], coords, trajectory)
        if len(node.inputs) == 2:
            pattern = (await run.get(node.inputs[1], coords, trajectory)).text
        else:
            pattern = self.args["pattern"]
        if not pattern:
            raise HarnessError(
                f"node {node.name!r}: no regex to validate with",
                "give a 'pattern' arg or a second input",
            )
        caps = limits()
        try:
            match = await asyncio.to_thread(
                regex.search,
                pattern,
                subject.text,
                regex.MULTILINE,
                concurrent=True,
                timeout=caps.regex_timeout_s,
            )
        except regex.error as exc:
            raise HarnessError(
                f"node {node.name!r}: bad regex {pattern!r}: {exc}", "fix the pattern"
            ) from None
        except TimeoutError:
            raise HarnessError(
                f"node {node.name!r}: regex {pattern[:80]!r} did not finish within the limit "
                f"regex_timeout_s = {caps.regex_timeout_s:g} s",
                "use a pattern without nested repetition such as (a+)+, or raise "
                f"`regex_timeout_s` in the [limits] table of {config_file()}",
            ) from None
        found = match is not None
        return _verdict(subject, found, pattern=pattern)


@register
class ValidateExitStatus(Op):
    """Passes when the input element (an `ft_tmux_run`) exited with `expect` (default 0)."""

    name = "ft_validate_exit_status"
    ARGS = {"expect": (int, 0)}

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        subject = await run.get(node.inputs[0], coords, trajectory)
        return _verdict(subject, subject.meta.get("exit_code") == self.args["expect"])


@register
class ValidatePromptIdle(Op):
    """Passes when the session (last input) is back at its shell prompt within `timeout` s."""

    name = "ft_validate_prompt_idle"
    arity = 2
    ARGS = {"timeout": ((int, float), 10)}

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        subject = await run.get(node.inputs[0], coords, trajectory)
        session, failed = await element_session(run, node, coords, trajectory)
        if failed:
            return _verdict(subject, False, error=failed.text)
        try:
            idle = await session.wait_idle(float(self.args["timeout"]))
        except TerminalError as exc:
            return _verdict(subject, False, error=exc.message)
        return _verdict(subject, idle)


@register
class ValidateCommand(Op):
    """Passes when a check command exits 0. Inputs: the subject (pulled first, so the check runs
    after it), the check command, and its working directory. The check runs exactly, as
    `bash -c`, in a pool pane — not typed into the session, so the screen stays the agent's."""

    name = "ft_validate_command"
    arity = 3

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        from mcp_harness.terminal.client import run as run_exact

        subject = await run.get(node.inputs[0], coords, trajectory)
        check = (await run.get(node.inputs[1], coords, trajectory)).text
        cwd = (await run.get(node.inputs[2], coords, trajectory)).text or None
        result = await asyncio.to_thread(run_exact, check, cwd=cwd, merged=True, owner=run.panes)
        output = result.stdout.decode("utf-8", "replace")[-2000:]
        return _verdict(subject, result.exit_code == 0, check=check, check_output=output)


@register
class ValidateCtrl(Op):
    """Passes when the input (after `strip_prefix`) is tmux key names, space separated
    (`C-c`, `Enter`, `Up Up Enter`), as `ft_tmux_send_keys` takes them; otherwise it fails
    and names the first word that is not a key."""

    name = "ft_validate_ctrl"
    ARGS = {"strip_prefix": (str, "")}

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        subject = await run.get(node.inputs[0], coords, trajectory)
        text, prefix = subject.text.strip(), self.args["strip_prefix"]
        if prefix and text.startswith(prefix):
            text = text[len(prefix) :]
        names = text.split()
        bad = next((name for name in names if key_name(name) is None), None)
        if not names or bad is not None:
            reason = f"{bad!r} is not a tmux key" if bad else "no key names"
            return _verdict(subject, False, error=f"{reason}; {VALID_KEYS}")
        return _verdict(subject, True, keys=[key_name(name) for name in names])
