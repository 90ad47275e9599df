"""Run a command in a pool pane from Python, exactly as `bash -c` would (validators use it)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mcp_harness.terminal import protocol
from mcp_harness.terminal.pool import Panes, claim

ACCEPTED = b"A"
SCREENS = b"S"


class RunnerLost(RuntimeError):
    """The runner went away after accepting the job (the command may have run)."""


@dataclass
class RunResult:
    exit_code: int | None
    signal: int | None
    stdout: bytes
    stderr: bytes
    screen_before: str = ""
    screen_after: str = ""
    pane_dir: Path | None = field(default=None)


def run(
    cmd: str,
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    merged: bool = False,
    on_output: Callable[[bytes, bytes], None] | None = None,
    root: Path | None = None,
    owner: Panes | None = None,
) -> RunResult:
    """Run `cmd` as `bash -c` would, in a pane of the pool; stream output to `on_output`.
    A runner started for it is recorded in `owner`, which ends it when closed."""
    environment = dict(os.environ if env is None else env)
    held = claim(root, owner)
    try:
        job = {
            "cmd": cmd,
            "cwd": os.fspath(cwd or os.getcwd()),
            "merged": merged,
            "pid": os.getpid(),
        }
        protocol.send(held.sock, protocol.JOB, json.dumps(job).encode())
        protocol.send(
            held.sock,
            protocol.ENV,
            protocol.encode_env(
                {k.encode(): v.encode("utf-8", "surrogateescape") for k, v in environment.items()}
            ),
        )
        reader = protocol.FrameReader()
        out, err = bytearray(), bytearray()
        screens: dict[str, str] = {}
        while True:
            data = held.sock.recv(1 << 16)
            if not data:
                raise RunnerLost(f"runner in {held.directory} closed the connection mid-job")
            for kind, payload in reader.feed(data):
                if kind in (protocol.STDOUT, protocol.STDERR):
                    (out if kind == protocol.STDOUT else err).extend(payload)
                    if on_output:
                        on_output(kind, payload)
                elif kind == SCREENS:
                    screens = json.loads(payload)
                elif kind == protocol.EXIT:
                    status = json.loads(payload)
                    return RunResult(
                        status["code"],
                        status["signal"],
                        bytes(out),
                        bytes(err),
                        screens.get("screen_before", ""),
                        screens.get("screen_after", ""),
                        held.directory,
                    )
    finally:
        held.release()
