"""The experiences a server has opened, kept for its lifetime (`ServerState.experience`), so
each retrieval index is built once; an experience reloads itself when another process commits
to it. Tools run in worker threads, so every use of a cached experience holds its own lock.

Paths follow `confine`: inside the allowed roots, and no symlink in an experience leads out of
them (the whole tree is checked when an experience is first opened; every write of every call
is checked by the storage write guard, so a link planted later cannot redirect one). A pool
address (`postgresql://…#NAME`, or a `[stores]` name) opens the PostgreSQL store, whose
connection the cache holds until `close`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mcp_harness.errors import HarnessError
from mcp_harness.experience.backend import ENSURE, OPEN, PoolAddress, open_store, resolve_store
from mcp_harness.experience.store import Experience
from mcp_harness.paths import experience_home, resolve_experience
from mcp_harness.server.confine import allowed_path, check_name, confined_tree
from mcp_harness.storage import layout


def experience_path(name_or_path: str) -> Path:
    """Where experience `name_or_path` lives (checked against the allowed directories)."""
    check_name(name_or_path, "experience")
    return allowed_path(resolve_experience(name_or_path), "experience")


def known_experiences() -> list[str]:
    home = experience_home()
    if not home.is_dir():
        return []
    return sorted(p.name for p in home.iterdir() if (p / layout.SHAPE_FILE).is_file())


def _unknown(name_or_path: str, path: Path) -> HarnessError:
    known = known_experiences()
    where = f"use one of: {', '.join(known)}; or " if known else "no named experience exists yet; "
    return HarnessError(
        f"unknown experience {name_or_path!r}: no experience at {path}",
        where + "start it with experience_add(..., create=true) "
        "(or `mcp-harness experience new NAME`)",
    )


class Entry:
    def __init__(self, experience) -> None:
        self.experience = experience
        self.lock = threading.RLock()


class ExperienceCache:
    def __init__(self) -> None:
        self.entries: dict[Path | str, Entry] = {}
        self.lock = threading.Lock()

    def entry(self, name_or_path: str, *, create: bool = False) -> tuple[Entry, bool]:
        """The cached entry for an experience (opened or created on first use), and whether
        it was created now."""
        check_name(name_or_path, "experience")
        if isinstance(resolve_store(name_or_path), PoolAddress):
            return self._pool_entry(name_or_path, create)
        path = experience_path(name_or_path)
        with self.lock:
            if not (path / layout.SHAPE_FILE).is_file():
                self.entries.pop(path, None)  # deleted from disk since it was cached
                if not create:
                    raise _unknown(name_or_path, path)
                entry = Entry(Experience.create(path))
                self.entries[path] = entry
                return entry, True
            entry = self.entries.get(path)
            if entry is None:
                confined_tree(path, "experience")
                entry = Entry(Experience.open(path))
                self.entries[path] = entry
            return entry, False

    def _pool_entry(self, name_or_path: str, create: bool) -> tuple[Entry, bool]:
        address = resolve_store(name_or_path)
        assert isinstance(address, PoolAddress)
        with self.lock:
            entry = self.entries.get(address.display)
            if entry is None:
                entry = Entry(open_store(name_or_path, ENSURE if create else OPEN))
                self.entries[address.display] = entry
            return entry, False

    def close(self) -> None:
        """Close the pool stores' connections (file experiences hold nothing open)."""
        with self.lock:
            for entry in self.entries.values():
                if not isinstance(entry.experience, Experience):
                    entry.experience.close()
            self.entries.clear()

    @contextmanager
    def opened(self, name_or_path: str, *, create: bool = False) -> Iterator[Experience]:
        """Use a cached experience under its lock."""
        entry, _ = self.entry(name_or_path, create=create)
        with entry.lock:
            yield entry.experience
