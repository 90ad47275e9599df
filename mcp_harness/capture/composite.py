"""Pull the model's own command out of the composite string Claude Code hands the prefix.

Claude Code runs `… && eval <command> < /dev/null && pwd -P >| /tmp/claude-…-cwd`, where
`<command>` is one shell word: quoted only when it needs to be (`eval pwd`, `eval 'echo hi'`,
`'it'"'"'s'`). We read that word back with a POSIX shell lexer. Anything without the trailing
`pwd -P >| ` (a hook, an MCP server launch) is not a Bash tool call and passes straight through.
"""

from __future__ import annotations

import re
import shlex

BASH_MARKER = "pwd -P >| "
_EVAL = re.compile(r"(?:^|&& )eval ")


def is_bash_tool_call(composite: str) -> bool:
    return BASH_MARKER in composite


def model_command(composite: str) -> str:
    """The command the model wrote, or the whole string when it has no `eval <word> <` part."""
    match = _EVAL.search(composite)
    if not match:
        return composite
    lexer = shlex.shlex(composite[match.end() :], posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        word, follower = lexer.get_token(), lexer.get_token()
    except ValueError:  # unbalanced quotes: not Claude Code's format
        return composite
    return word if word is not None and follower == "<" else composite
