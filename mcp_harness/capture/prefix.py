"""Build and locate the prefix wrapper (the C program in `prefix.c`).

The wrapper runs for every Bash command, hook and MCP launch Claude Code makes, so it is a
small C program: start-up well under a millisecond. It is compiled on first use into
`<data home>/bin/mcp-harness-prefix`, with this interpreter's path baked in (to start runners),
and rebuilt whenever the source or the interpreter changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

from mcp_harness.errors import HarnessError
from mcp_harness.paths import data_home

NAME = "mcp-harness-prefix"


def prefix_path(home: Path | None = None) -> Path:
    """The wrapper's absolute path, built now if missing or stale."""
    target = (home or data_home()) / "bin" / NAME
    source = resources.files("mcp_harness.capture").joinpath("prefix.c").read_bytes()
    stamp = hashlib.sha256(source + sys.executable.encode()).hexdigest()
    stamp_file = target.with_name(NAME + ".sha256")
    if target.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return target
    _compile(source, target)
    stamp_file.write_text(stamp)
    return target


def _compile(source: bytes, target: Path) -> None:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise HarnessError(
            "no C compiler found to build the shell prefix wrapper",
            "install one (Debian/Ubuntu: apt-get install gcc; macOS: xcode-select --install)",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src = Path(tmp) / "prefix.c"
        src.write_bytes(source)
        out = Path(tmp) / NAME
        python = sys.executable.replace("\\", "\\\\").replace('"', '\\"')
        built = subprocess.run(
            [compiler, "-O2", "-o", str(out), str(src), f'-DHARNESS_PYTHON="{python}"'],
            capture_output=True,
            text=True,
        )
        if built.returncode != 0:
            raise HarnessError(
                f"building the prefix wrapper with {compiler} failed:\n{built.stderr.strip()}",
                "check the compiler installation, or report this as a bug",
            )
        os.replace(out, target)
