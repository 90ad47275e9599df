"""Recognising Claude Code's Bash composite and reading the model's command back out of it."""

from __future__ import annotations

import pytest

from mcp_harness.capture.composite import is_bash_tool_call, model_command

SOURCE = "source /home/u/.claude/shell-snapshots/snapshot-bash-1-x.sh 2>/dev/null || true && "
EXTGLOB = "{ shopt -u extglob || setopt NO_EXTENDED_GLOB; } >/dev/null 2>&1 || true && "
HEAD = SOURCE + EXTGLOB
TAIL = " < /dev/null && pwd -P >| /tmp/claude-ab12-cwd"


@pytest.mark.parametrize(
    ("word", "command"),
    [
        ("pwd", "pwd"),  # Claude Code quotes only when needed
        ("x_y.z/w-1", "x_y.z/w-1"),
        ("'echo hi'", "echo hi"),
        ("'echo '\"'\"'it'\"'\"'s'", "echo 'it's"),
        ("'cat <<EOF\nline && eval x\nEOF'", "cat <<EOF\nline && eval x\nEOF"),
        ("'a && eval b < /dev/null && pwd -P >| x'", "a && eval b < /dev/null && pwd -P >| x"),
    ],
)
def test_model_command(word: str, command: str) -> None:
    composite = HEAD + "eval " + word + TAIL
    assert is_bash_tool_call(composite)
    assert model_command(composite) == command
    assert model_command(HEAD + "eval " + word + " \\< /dev/null && pwd -P >| /tmp/c") == command
    no_stdin = HEAD + "eval " + word + " && pwd -P >| /tmp/claude-1-cwd"  # heredoc form
    assert model_command(no_stdin) == command


@pytest.mark.parametrize(
    "composite",
    [
        EXTGLOB + "eval 'echo hi'" + TAIL,  # no snapshot
        SOURCE + "export A=1 && " + EXTGLOB + "eval 'echo hi'" + TAIL,  # session env script
        HEAD.replace("EXTENDED_GLOB;", "EXTENDED_GLOB NO_BARE_GLOB_QUAL;")
        + "\\builtin unalias -- 'which' 2>/dev/null || true && eval 'echo hi'"
        + TAIL,  # 2.1.332
    ],
)
def test_variants_of_the_shape(composite: str) -> None:
    assert model_command(composite) == "echo hi"


@pytest.mark.parametrize(
    "text",
    [
        "/abs/hook.py PreToolUse",
        "python3 server.py --flag x",
        "pwd -P >| /tmp/x",  # a hook that merely contains the marker
        "echo 'eval x < /dev/null && pwd -P >| /tmp/y'",
        "cat | tee log; pwd -P >| /tmp/c",
        HEAD + "eval 'unbalanced" + TAIL,
        HEAD + "eval 'echo hi'" + TAIL + "; rm -rf x",  # more after the cwd file
        HEAD + "eval 'echo hi' 'two'" + TAIL,
        "echo x && " + HEAD + "eval 'echo hi'" + TAIL,  # not at the start
    ],
)
def test_other_strings_pass_through_unchanged(text: str) -> None:
    assert not is_bash_tool_call(text)
    assert model_command(text) == text
