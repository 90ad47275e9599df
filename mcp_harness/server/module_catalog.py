"""The modules a server knows, read cheaply: the built-in templates and the modules under the
data dir, each with its spec (or why it cannot be used) and the help texts of its inputs.

Reading them checks each spec (`runtime.graph.build`, which imports every op), so `entries`
keeps what it read in the schema cache (`schema_cache`, under its fingerprint of the sources)
with the `stat` of every file it depends on: each module's spec and README and config.toml
(whose [limits] the check applies). A server's start then reads none of them, and imports
none of the graph code, while those files are as they were (size, mtime, ctime and inode).

`mark()` is a signature of the modules dir (names and modification times of each module's
spec, README and experience dirs), so a server notices modules created, trained or deleted
by another process with a few `stat` calls.
"""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from mcp_harness.errors import HarnessError
from mcp_harness.limits import config_file
from mcp_harness.runtime import module_dirs as modules
from mcp_harness.server import schema_cache

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
    templates = resources.files("mcp_harness.modules")
    names = sorted(builtins | set(installed))
    folders = {name: installed.get(name) or templates.joinpath(name) for name in names}
    signature = _signature(folders)
    cache = schema_cache.cache()
    cached = cache.catalog(signature) if signature is not None else None
    if cached is not None:
        found = [entry for entry in map(_entry, cached) if entry is not None]
        if len(found) == len(cached):
            return found
    found = []
    for name, folder in folders.items():
        entry = Entry(name, name in builtins, installed.get(name))
        _read(entry, folder)
        found.append(entry)
    if signature is not None:
        cache.put_catalog(signature, [{**asdict(e), "path": e.path and str(e.path)} for e in found])
    return found


def _signature(folders: dict[str, Any]) -> list[Any] | None:
    """The `stat` of every file `entries` reads (None: a module not in a plain directory)."""
    if not all(isinstance(folder, Path) for folder in folders.values()):
        return None
    files = [config_file()]
    for folder in folders.values():
        files += [folder / modules.SPEC, folder / "README.md"]
    return [[str(path), _stat(path)] for path in files]


def _stat(path: Path) -> list[int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]


def _entry(item: Any) -> Entry | None:
    """An `Entry` from its cached form (a copy: callers may change it); None if it is not one."""
    if not isinstance(item, dict):
        return None
    try:
        entry = Entry(**copy.deepcopy(item))
    except TypeError:
        return None
    kinds = (
        isinstance(entry.name, str)
        and isinstance(entry.builtin, bool)
        and isinstance(entry.path, str | None)
        and isinstance(entry.spec, dict)
        and isinstance(entry.error, str | None)
        and isinstance(entry.about, str)
        and isinstance(entry.inputs, dict)
        and all(isinstance(text, str) for text in entry.inputs.values())
    )
    if not kinds:
        return None
    entry.path = None if entry.path is None else Path(entry.path)
    return entry


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
