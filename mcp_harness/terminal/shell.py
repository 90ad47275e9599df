"""The interactive shell of a terminal session: how it is started and how it reports its state.

The shell runs `bash --norc --noprofile -i` under the caller's environment (plus
`TERM=xterm-256color`), loaded from a 0600 env file by `LOADER` under `env -i`. Its prompts end
with an invisible OSC 2 title that `parse_title` reads (see `session` for the protocol).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

IDLE_RE = re.compile(r"mh:(\d+):(\d+)")
BUSY_RE = re.compile(r"mh:(?:run|more):(\d+)")

# Run once at the first prompt: shell options, keyboard bindings tmux's keys need, and the
# prompt machinery un-exported so programs started in the shell see only the caller's env.
INIT = (
    "set +H; "
    "bind 'set enable-bracketed-paste on'; "
    "bind '\"\\e[1~\": beginning-of-line'; "
    "bind '\"\\e[4~\": end-of-line'; "
    "bind '\"\\e[3~\": delete-char'; "
    "bind '\"\\e[2~\": overwrite-mode'; "
    "bind '\"\\e[1;5C\": forward-word'; "
    "bind '\"\\e[1;5D\": backward-word'; "
    "export -n PS0 PS1 PS2 PROMPT_COMMAND HISTFILE INPUTRC; "
    "unset __MH_INIT; __mh_n=0"
)
SHELL_VARS = {
    "__MH_INIT": INIT,
    "PROMPT_COMMAND": (
        '__mh_rc=$?; [ -n "$__mh_n" ] || eval "$__MH_INIT" 2>/dev/null; __mh_n=$((__mh_n+1))'
    ),
    "PS1": "$ \\[\\e\\\\\\e]2;mh:${__mh_rc}:${__mh_n}\\e\\\\\\]",
    "PS2": "> \\[\\e\\\\\\e]2;mh:more:${__mh_n}\\e\\\\\\]",
    "PS0": "\\e\\\\\\e]2;mh:run:${__mh_n}\\e\\\\",
    "HISTFILE": "/dev/null",
    "INPUTRC": "/dev/null",
}
# Runs under `env -i`: export every NAME=value of the env file ($1), then become the shell.
LOADER = (
    'while IFS= read -r -d \'\' __kv; do export "$__kv" 2>/dev/null; done < "$1"; '
    'unset __kv; exec "$2" --norc --noprofile -i'
)


@dataclass(frozen=True)
class State:
    idle: bool
    count: int | None
    status: int | None


def parse_title(title: str) -> State:
    """The shell's state from its pane title; a title not ours counts as busy."""
    if match := IDLE_RE.fullmatch(title):
        return State(True, int(match[2]), int(match[1]))
    if match := BUSY_RE.fullmatch(title):
        return State(False, int(match[1]), None)
    return State(False, None, None)


def shell_env(env: Mapping[str, str] | None) -> dict[str, str]:
    source = os.environ if env is None else env
    # The caller's tmux (if any) is not this pane's; our own prompt state must start fresh.
    result = {
        key: value
        for key, value in source.items()
        if key not in ("TMUX", "TMUX_PANE") and not key.lower().startswith("__mh")
    }
    result["TERM"] = "xterm-256color"
    result.update(SHELL_VARS)
    return result


def write_env(path: Path, env: Mapping[str, str]) -> None:
    data = b"".join(
        f"{key}={value}".encode("utf-8", "surrogateescape") + b"\0"
        for key, value in env.items()
        if key and "=" not in key and "\0" not in key and "\0" not in value
    )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
