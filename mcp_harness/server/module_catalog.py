"""The modules a server knows, read cheaply: the built-in templates and the modules under the
data dir, each with its spec (or why it cannot be used) and the help texts of its inputs.

`mark()` is a signature of the modules dir (names and modification times of each module's
spec, README and experience dirs), so a server notices modules created, trained or deleted
by another process with a few `stat` calls.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from mcp_harness.errors import HarnessError
from mcp_harness.runtime import module_dirs as modules

INPUT_LINE = re.compile(r"^- `([^`]+)`: (.+)$")


@dataclass
class Entry:
    name: str
    builtin: bool
    path: Path | None  # the copy under the data dir, if there is one
    spec: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # set: the module cannot be used, and why
    about: str = ""  # what it does (spec description, else the README's first paragraph)
    inputs: dict[str, str] = field(default_factory=dict)  # input name -> help text


def _readme_parts(text: str) -> tuple[str, dict[str, str]]:
    """The first paragraph after the title, and the `- `name`: help` lines under Inputs."""
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    about = next((p for p in paragraphs if not p.startswith(("#", "```"))), "")
    helps = {}
    for line in text.splitlines():
        found = INPUT_LINE.match(line.strip())
        if found:
            helps.setdefault(found.group(1), found.group(2).strip())
    return " ".join(about.split()), helps


def _read(entry: Entry, folder: Any) -> None:
    """Fill `entry` from a module directory (a Path or a package resource)."""
    from mcp_harness.export.skill import render_module_readme
    from mcp_harness.runtime.graph import build

    try:
        spec = json.loads(folder.joinpath("module.json").read_text(encoding="utf-8"))
        build(spec)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        entry.error = f"module.json unreadable: {exc}"
        return
    except HarnessError as exc:
        entry.error = f"module.json: {exc}"
        return
    entry.spec = spec
    readme = folder.joinpath("README.md")
    # A module without a README is described as its export would describe it.
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    about, helps = _readme_parts(text or render_module_readme(spec, {}))
    entry.about = str(spec.get("description") or about)
    entry.inputs = {name: helps.get(name, f"the `{name}` input") for name in spec.get("inputs", {})}


def entries() -> list[Entry]:
    """Every module, sorted by name; an installed copy wins over its template."""
    home = modules.modules_home()
    builtins = set(modules.builtin_names())
    installed = (
        {p.name: p for p in home.iterdir() if (p / modules.SPEC).is_file()} if home.is_dir() else {}
    )
    found = []
    for name in sorted(builtins | set(installed)):
        entry = Entry(name, name in builtins, installed.get(name))
        if entry.path is not None:
            _read(entry, entry.path)
        else:
            _read(entry, resources.files("mcp_harness.modules").joinpath(name))
        found.append(entry)
    return found


def mark() -> tuple[Any, ...]:
    """What changes when a module is created, edited, trained or deleted."""
    home = modules.modules_home()
    seen: list[Any] = []
    try:
        listing = sorted(os.scandir(home), key=lambda e: e.name)
    except FileNotFoundError:
        return ()
    for entry in listing:
        if not entry.is_dir(follow_symlinks=False):
            continue
        seen.append(entry.name)
        for part in ("module.json", "README.md", "experience"):
            seen.append(_mtime(Path(entry.path, part)))
        try:
            with os.scandir(Path(entry.path, "experience")) as tensors:
                seen.extend(sorted((t.name, _mtime(Path(t.path))) for t in tensors))
        except (FileNotFoundError, NotADirectoryError):
            pass
    return tuple(seen)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
