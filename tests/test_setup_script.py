"""`scripts/setup.sh` (run by ./run-demo.sh and ./run-tests.sh) on a machine that lacks tools."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_missing_system_tools_get_one_message_with_the_fix(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # the script's own needs, but no tmux, cc, gcc or apt-get
    bin_dir.mkdir()
    for tool in ("bash", "env", "dirname", "id"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or tool)
    (bin_dir / "python3").symlink_to(sys.executable)
    done = subprocess.run(
        [str(ROOT / "scripts" / "setup.sh")],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    fix = "fix: sudo apt-get install tmux gcc"
    assert done.stderr == f"mcp-harness needs tmux gcc, not found; {fix}\n"
    assert done.stdout == ""  # stopped before touching .venv
