"""`scripts/setup.sh` (run by ./run-demo.sh and ./run-tests.sh) on a machine that lacks tools."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_missing_system_tools_get_one_message_with_the_fix(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"  # no .cache: the tests' npm packages are not there yet
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "setup.sh", checkout / "scripts")
    bin_dir = tmp_path / "bin"  # the script's own needs, but no tmux, cc, gcc, npm or apt-get
    bin_dir.mkdir()
    for tool in ("bash", "env", "dirname", "id"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or tool)
    (bin_dir / "python3").symlink_to(sys.executable)
    # tzdata is files, not a command the test can hide: asked for only where it is missing.
    tzdata = "" if Path("/usr/share/zoneinfo/Europe/Berlin").exists() else " tzdata"
    for args, missing in (
        ([], "tmux gcc"),
        (["--test"], f"tmux gcc npm zip unzip patch jq{tzdata}"),
    ):
        done = subprocess.run(
            [str(checkout / "scripts" / "setup.sh"), *args],
            env={"PATH": str(bin_dir)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1
        fix = f"fix: sudo apt-get install {missing}"
        assert done.stderr == f"mcp-harness needs {missing}, not found; {fix}\n"
        assert done.stdout == "" and not (checkout / ".venv").exists()
