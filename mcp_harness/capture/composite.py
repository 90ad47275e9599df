"""Pull the model's own command out of the composite string Claude Code hands the prefix.

Claude Code runs `… && eval '<command>' < /dev/null && pwd -P >| /tmp/claude-…-cwd`, with `'`
inside the command written as `'"'"'`. Anything else (a hook, an MCP server launch) is not a
Bash tool call and must pass straight through.
"""

from __future__ import annotations

import re

BASH_MARKER = "pwd -P >| "
_EVAL = re.compile(r"eval '((?:[^']|'\"'\"')*)' \\?< /dev/null")


def is_bash_tool_call(composite: str) -> bool:
    return BASH_MARKER in composite


def model_command(composite: str) -> str:
    """The command the model wrote, or the whole string when it has no `eval '…'` part."""
    match = _EVAL.search(composite)
    return match.group(1).replace("'\"'\"'", "'") if match else composite
