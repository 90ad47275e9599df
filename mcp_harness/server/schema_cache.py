"""The tools' JSON schemas and the tool families' listings, kept between server starts so
`serve` answers `tools/list` without importing the tool family modules or building a pydantic
argument model and two JSON schemas for each of its tools (most of the server's start-up on
top of the SDK's).

One file, `<data home>/cache/tool-schemas.json`, holds the input and output schema of every
tool a server built, under a key made of the tool's name and its signature (annotations,
defaults and `Field` texts: what a module tool's inputs or an op's args change), and for each
tool family (`server/tools.py`) what it declares: each tool's name, title, description,
annotations and schema key. The file as a whole belongs to one `fingerprint`: the versions of
mcp-harness, the MCP SDK, pydantic and Python, Python's optimize flag (-OO drops docstrings,
the descriptions), and the size and modification time of every `.py` file of the package, so
an edit of any tool's code (or of a type it uses) or an upgrade discards it. An entry is
served from the file only when both match; else it is built as before and the file rewritten
(atomically, on `save`). A missing, unreadable or corrupt file is an empty cache; a file that
cannot be written costs the next start the same work again, nothing else.

`STAMP` is taken when this module is imported, which `mcp_harness.server` does before any tool
module, so what a process builds is never filed under sources newer than the code it runs;
`save` writes nothing if the sources changed since.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic
import pydantic_core

import mcp_harness
from mcp_harness.errors import HarnessError
from mcp_harness.paths import data_home
from mcp_harness.storage.atomic import atomic_write

FILE = Path("cache") / "tool-schemas.json"
PACKAGE = Path(mcp_harness.__file__).parent
log = logging.getLogger(__name__)

Schemas = tuple[dict[str, Any], dict[str, Any] | None]  # input schema, output schema (or None)
Listing = dict[str, Any]  # one tool of a family: name, title, description, annotations, key
LISTING_TEXTS = ("name", "title", "description", "key")


def fingerprint(root: Path = PACKAGE) -> str:
    """What every cached schema depends on besides a tool's own signature: the library
    versions and the size and mtime of each `.py` file under `root` (the package)."""
    parts = [
        mcp_harness.__version__,
        importlib.metadata.version("mcp"),
        pydantic.VERSION,
        pydantic_core.__version__,
        sys.version,
        str(sys.flags.optimize),
    ]
    _stat_sources(root, "", parts)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _stat_sources(folder: Path | str, prefix: str, parts: list[str]) -> None:
    """Append `path:size:mtime` of each `.py` file under `folder`, in name order (`scandir`,
    not `os.walk` and `relpath`: this runs at every start)."""
    with os.scandir(folder) as found:
        entries = sorted(found, key=lambda entry: entry.name)
    for entry in entries:
        if entry.name.endswith(".py") and entry.is_file():
            info = entry.stat()
            parts.append(f"{prefix}{entry.name}:{info.st_size}:{info.st_mtime_ns}")
        elif entry.is_dir(follow_symlinks=False) and entry.name != "__pycache__":
            _stat_sources(entry.path, f"{prefix}{entry.name}/", parts)


def tool_key(name: str, fn: Callable[..., Any]) -> str:
    """The cache key of tool `name` made from `fn`: its name and signature."""
    signature = inspect.signature(fn)
    return hashlib.sha256(f"{name}\n{signature}".encode()).hexdigest()


class SchemaCache:
    """The schemas of one cache file, read once; `save` writes what `put` added."""

    def __init__(self, path: Path, stamp: str) -> None:
        self.path = path
        self.stamp = stamp
        self.tools: dict[str, Any] = {}
        self.families: dict[str, Any] = {}
        self.modules: Any = None  # the module catalog: {"signature": ..., "entries": [...]}
        self.dirty = False
        self.lock = threading.Lock()
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return
        if (
            isinstance(stored, dict)
            and stored.get("fingerprint") == stamp
            and isinstance(stored.get("tools"), dict)
        ):
            self.tools = stored["tools"]
            families = stored.get("families")
            self.families = families if isinstance(families, dict) else {}
            self.modules = stored.get("modules")

    def get(self, key: str) -> Schemas | None:
        entry = self.tools.get(key)
        if not isinstance(entry, dict):
            return None
        schema, output = entry.get("input"), entry.get("output")
        if not isinstance(schema, dict) or not (output is None or isinstance(output, dict)):
            return None
        return schema, output

    def put(self, key: str, schemas: Schemas) -> None:
        with self.lock:
            self.tools[key] = {"input": schemas[0], "output": schemas[1]}
            self.dirty = True

    def family(self, name: str) -> list[tuple[Listing, Schemas]] | None:
        """What family `name` declares, each tool's listing with its schemas; None unless
        every part of it is cached and well-formed."""
        entries = self.families.get(name)
        if not isinstance(entries, list):
            return None
        found = []
        for entry in entries:
            if not (
                isinstance(entry, dict)
                and all(isinstance(entry.get(part), str) for part in LISTING_TEXTS)
                and isinstance(entry.get("annotations"), dict)
            ):
                return None
            schemas = self.get(entry["key"])
            if schemas is None:
                return None
            found.append((entry, schemas))
        return found

    def put_family(self, name: str, listing: list[Listing]) -> None:
        with self.lock:
            self.families[name] = listing
            self.dirty = True

    def catalog(self, signature: list[Any]) -> list[Any] | None:
        """The module catalog's entries as cached for files of this `signature`, else None."""
        stored = self.modules
        if not isinstance(stored, dict) or stored.get("signature") != signature:
            return None
        found = stored.get("entries")
        return found if isinstance(found, list) else None

    def put_catalog(self, signature: list[Any], entries: list[Any]) -> None:
        with self.lock:
            self.modules = {"signature": signature, "entries": entries}
            self.dirty = True

    def save(self) -> None:
        with self.lock:
            if not self.dirty or fingerprint() != self.stamp:
                return
            stored = {
                "fingerprint": self.stamp,
                "tools": self.tools,
                "families": self.families,
                "modules": self.modules,
            }
            text = json.dumps(stored)
            try:
                atomic_write(self.path, text, durable=False)
            except (OSError, HarnessError) as exc:
                # A read-only home, or (saved during a tool call) a path the call's write
                # guard refuses: the next start builds them again, nothing else.
                log.debug("cannot write %s: %s", self.path, exc)
                return
            self.dirty = False


STAMP = fingerprint()
_opened: dict[Path, SchemaCache] = {}


def cache() -> SchemaCache:
    """The cache of this process's data home (read on first use)."""
    path = data_home() / FILE
    if path not in _opened:
        _opened[path] = SchemaCache(path, STAMP)
    return _opened[path]
