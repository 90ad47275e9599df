"""Where mcp-harness keeps its data: one directory, `$MCP_HARNESS_HOME` or the XDG data dir."""

from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "MCP_HARNESS_HOME"


def data_home() -> Path:
    """The root of everything stored by default."""
    override = os.environ.get(ENV_HOME)
    if override:
        return Path(override).expanduser().absolute()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return (base / "mcp-harness").absolute()


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
    return {"home": data_home(), "experience": experience_home()}
