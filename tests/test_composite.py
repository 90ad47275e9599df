"""Reading the model's command back out of Claude Code's composite string."""

from __future__ import annotations

import pytest

from mcp_harness.capture.composite import is_bash_tool_call, model_command

HEAD = (
    "source /home/u/.claude/shell-snapshots/snapshot-bash-1-x.sh 2>/dev/null || true && "
    "{ shopt -u extglob || setopt NO_EXTENDED_GLOB; } >/dev/null 2>&1 || true && "
)
TAIL = " < /dev/null && pwd -P >| /tmp/claude-ab12-cwd"


@pytest.mark.parametrize(
    ("word", "command"),
    [
        ("pwd", "pwd"),  # Claude Code quotes only when needed
        ("x_y.z/w-1", "x_y.z/w-1"),
        ("'echo hi'", "echo hi"),
        ("'echo '\"'\"'it'\"'\"'s'", "echo 'it's"),
        ("'cat <<EOF\nline && eval x\nEOF'", "cat <<EOF\nline && eval x\nEOF"),
    ],
)
def test_model_command(word: str, command: str) -> None:
    composite = HEAD + "eval " + word + TAIL
    assert is_bash_tool_call(composite)
    assert model_command(composite) == command
    assert model_command(HEAD + "eval " + word + " \\< /dev/null && pwd -P >| /tmp/c") == command


def test_other_strings_pass_through_unchanged() -> None:
    assert not is_bash_tool_call("/abs/hook.py PreToolUse")
    assert model_command("python3 server.py --flag x") == "python3 server.py --flag x"
    broken = HEAD + "eval 'unbalanced" + TAIL
    assert model_command(broken) == broken
