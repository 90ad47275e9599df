"""Recognise Claude Code's Bash composite string and pull the model's command out of it.

Claude Code hands the prefix `[source <snapshot> 2>/dev/null || true && ][<session env> && ]
{ shopt -u extglob || setopt NO_EXTENDED_GLOB…; } >/dev/null 2>&1 || true && […] && eval <word>
[< /dev/null] && pwd -P >| <cwd file>`, where `<word>` is the command as one shell word (quoted
only when it needs to be). Only that full shape is a Bash tool call: a hook or MCP launch that
merely contains `pwd -P >| ` is not. `prefix.c` applies the same rule; keep both in step.
"""

from __future__ import annotations

import re
import shlex

EXTGLOB = "{ shopt -u extglob || setopt NO_EXTENDED_GLOB"
EXTGLOB_END = "; } >/dev/null 2>&1 || true && "
_WORD = r"""(?:[^\s'"\\;&|<>()]|\\.|'[^']*'|"(?:[^"\\]|\\.)*")+"""
_TAIL = re.compile(rf"eval ({_WORD})(?: \\?< /dev/null)? && pwd -P >\| {_WORD}\Z", re.DOTALL)


def _eval_word(composite: str) -> str | None:
    """The quoted `eval` word of a full Claude Code composite, else None."""
    if not composite.startswith(("source ", EXTGLOB)):
        return None
    head = composite.find(EXTGLOB)
    if head < 0:
        return None
    body = composite.find(EXTGLOB_END, head)
    if body < 0:
        return None
    at = body + len(EXTGLOB_END)
    while at >= 0:
        if composite.startswith("eval ", at):
            match = _TAIL.match(composite, at)
            if match:
                return match.group(1)
        at = composite.find("&& eval ", at)
        if at >= 0:
            at += 3
    return None


def is_bash_tool_call(composite: str) -> bool:
    return _eval_word(composite) is not None


def model_command(composite: str) -> str:
    """The command the model wrote, or the whole string when it is not a Bash composite."""
    word = _eval_word(composite)
    if word is None:
        return composite
    try:
        parts = shlex.split(word, posix=True)
    except ValueError:
        return composite
    return parts[0] if len(parts) == 1 else composite
