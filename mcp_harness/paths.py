"""Where mcp-harness keeps its data: one directory, `$MCP_HARNESS_HOME` or the XDG data dir."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from mcp_harness.errors import HarnessError

ENV_HOME = "MCP_HARNESS_HOME"
ENV_RUNTIME = "MCP_HARNESS_RUNTIME_DIR"


def data_home(env: Mapping[str, str] | None = None) -> Path:
    """The root of everything stored by default (for `env`, default this process's)."""
    env = os.environ if env is None else env
    override = env.get(ENV_HOME)
    if override:
        return Path(override).expanduser().absolute()
    xdg = env.get("XDG_DATA_HOME")
    home = Path(env.get("HOME") or Path.home())
    base = Path(xdg).expanduser() if xdg else home / ".local" / "share"
    return (base / "mcp-harness").absolute()


def runtime_dir() -> Path:
    """Sockets and locks of the tmux pool: short paths, private to the user.

    `$MCP_HARNESS_RUNTIME_DIR`, else `/tmp/mcp-harness-<uid>` (not under the data home:
    Unix socket paths must stay under ~100 bytes). The C prefix wrapper uses the same rule.
    """
    override = os.environ.get(ENV_RUNTIME)
    return Path(override) if override else Path(f"/tmp/mcp-harness-{os.getuid()}")


def check_private_dir(root: Path) -> Path:
    """Make `root` (mode 0700) if missing, then insist it is a real directory of this user's
    that nobody else can write: sockets, locks and tmux.conf there are trusted."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        root.mkdir(mode=0o700)
    info = root.lstat()
    fix = f"remove it (or set {ENV_RUNTIME} to a directory of your own) and try again"
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise HarnessError(f"runtime dir {root} is not a directory (a symlink?)", fix)
    if info.st_uid != os.getuid():
        raise HarnessError(
            f"runtime dir {root} is owned by uid {info.st_uid}, not by you (uid {os.getuid()})",
            fix,
        )
    if info.st_mode & 0o022:
        raise HarnessError(
            f"runtime dir {root} has mode {stat.S_IMODE(info.st_mode):04o}: others can write it",
            f"chmod 700 {root}, or {fix}",
        )
    os.chmod(root, 0o700)
    return root


def experience_home() -> Path:
    """Named experience tensors live here (`<home>/experience/<name>`)."""
    return data_home() / "experience"


def resolve_experience(name_or_path: str) -> Path:
    """A bare name means `<home>/experience/<name>`; anything with a path separator is a path."""
    if os.sep in name_or_path or name_or_path.startswith("."):
        return Path(name_or_path).expanduser().absolute()
    return experience_home() / name_or_path


def all_paths() -> dict[str, Path]:
    """Every location the tool uses, for `mcp-harness paths`."""
    return {
        "home": data_home(),
        "experience": experience_home(),
        "capture": data_home() / "capture",
        "runtime": runtime_dir(),
    }
