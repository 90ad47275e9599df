"""Build and locate the prefix wrapper (the C program in `prefix.c`).

The wrapper runs for every Bash command, hook and MCP launch Claude Code makes, so it is a
small C program: start-up well under a millisecond. It is compiled on first use into
`<data home>/bin/mcp-harness-prefix`, with this interpreter and this package's location baked in
(to start a session's mirror from exactly this code), and rebuilt whenever one of them changes.
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
    stamp = hashlib.sha256(source + sys.executable.encode() + _root().encode()).hexdigest()
    stamp_file = target.with_name(NAME + ".sha256")
    if target.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return target
    _compile(source, target)
    stamp_file.write_text(stamp)
    return target


def _root() -> str:
    """The directory holding the `mcp_harness` package this module belongs to."""
    return str(Path(__file__).resolve().parents[2])


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
        built = subprocess.run(
            [
                compiler,
                "-O2",
                "-o",
                str(out),
                str(src),
                f"-DHARNESS_PYTHON={_c_string(sys.executable)}",
                f"-DHARNESS_ROOT={_c_string(_root())}",
            ],
            capture_output=True,
            text=True,
        )
        if built.returncode != 0:
            raise HarnessError(
                f"building the prefix wrapper with {compiler} failed:\n{built.stderr.strip()}",
                "check the compiler installation, or report this as a bug",
            )
        os.replace(out, target)
