"""A tmux control-mode client: one long-lived `tmux -C` process, ~0.05 ms per command.

Replies come as `%begin <time> <number> <flags>` … `%end|%error <time> <number> <flags>`;
blocks with flags 1 answer our commands, anything else (the attach's own block, notifications)
is skipped. Used by the runner for screen captures and the title barrier.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


class TmuxError(RuntimeError):
    """tmux refused a command; the message is tmux's own."""


class ControlClient:
    def __init__(self, socket_path: Path, session: str) -> None:
        self._proc = subprocess.Popen(
            [
                "tmux",
                "-S",
                str(socket_path),
                "-C",
                "attach-session",
                "-t",
                f"={session}",
                "-f",
                "no-output,ignore-size",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    @property
    def pid(self) -> int:
        """The `tmux -C` client's pid; it exits when the server does."""
        return self._proc.pid

    def command(self, line: str) -> list[str]:
        """Run one tmux command; return its output lines."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(line.encode("utf-8") + b"\n")
        self._proc.stdin.flush()
        stream = self._proc.stdout
        while True:
            header = stream.readline()
            if not header:
                raise TmuxError("tmux control client exited")
            if not header.startswith(b"%begin "):
                continue
            number, flags = header.split()[2:4]
            lines: list[bytes] = []
            while True:
                raw = stream.readline()
                if not raw:
                    raise TmuxError("tmux control client exited")
                parts = raw.split()
                if (
                    raw.startswith((b"%end ", b"%error "))
                    and len(parts) == 4
                    and parts[2] == number
                ):
                    break
                lines.append(raw.rstrip(b"\n"))
            if flags != b"1":
                continue
            text = [item.decode("utf-8", "replace") for item in lines]
            if raw.startswith(b"%error"):
                raise TmuxError("\n".join(text) or f"tmux rejected: {line}")
            return text

    def capture(self, pane: str) -> str:
        """The visible screen of `pane`, trailing blank lines dropped."""
        lines = self.command(f"capture-pane -p -t {pane}")
        while lines and not lines[-1].strip():
            lines.pop()
        return "\n".join(lines)

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
