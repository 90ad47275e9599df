"""Journaled multi-file commits: after a crash a tensor directory shows all of a change or none.

New contents are staged under `<dir>/.txn/`, then `journal.json` is written atomically: that
write is the commit point. Applying renames each staged file over its target and removes the
files marked for removal; replaying a journal is idempotent, so `recover()` simply re-applies
one that a crash left behind and discards staged files that never got a journal.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

from mcp_harness.storage.atomic import atomic_write, fsync_dir

TXN_DIR = ".txn"
JOURNAL = "journal.json"
_FSYNC_EACH_LIMIT = 64


class Transaction:
    """Collect writes and removals (relative paths) and commit them all at once."""

    def __init__(self, tensor_dir: Path) -> None:
        self.tensor_dir = tensor_dir
        self._staging = tensor_dir / TXN_DIR
        self._ops: dict[str, str | None] = {}
        self._count = 0

    def write(self, relpath: str, content: str | bytes) -> None:
        if self._count == 0:
            recover(self.tensor_dir)
            self._staging.mkdir(parents=True, exist_ok=True)
        staged = str(self._count)
        self._count += 1
        raw = content.encode("utf-8") if isinstance(content, str) else content
        with open(self._staging / staged, "wb") as handle:
            handle.write(raw)
        self._ops[relpath] = staged

    def remove(self, relpath: str) -> None:
        self._ops[relpath] = None

    def commit(self) -> None:
        if not self._ops:
            return
        self._staging.mkdir(parents=True, exist_ok=True)
        staged = [name for name in self._ops.values() if name is not None]
        if len(staged) <= _FSYNC_EACH_LIMIT:
            for name in staged:
                fd = os.open(self._staging / name, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        else:
            os.sync()
        atomic_write(self._staging / JOURNAL, json.dumps(self._ops))
        _apply(self.tensor_dir, self._ops)


def _apply(tensor_dir: Path, ops: dict[str, str | None]) -> None:
    staging = tensor_dir / TXN_DIR
    touched: set[Path] = set()
    for relpath, staged in ops.items():
        target = tensor_dir / relpath
        if staged is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target)
            continue
        source = staging / staged
        if not source.exists():
            continue  # applied before a crash
        real = Path(os.path.realpath(target))
        real.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, real)
        touched.add(real.parent)
    for directory in touched:
        fsync_dir(directory)
    shutil.rmtree(staging, ignore_errors=True)
    fsync_dir(tensor_dir)


def recover(tensor_dir: Path) -> bool:
    """Finish a committed transaction a crash interrupted; drop an uncommitted one.

    Returns True if a committed transaction was replayed.
    """
    staging = tensor_dir / TXN_DIR
    if not staging.exists():
        return False
    journal = staging / JOURNAL
    try:
        ops = json.loads(journal.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        shutil.rmtree(staging, ignore_errors=True)
        return False
    _apply(tensor_dir, ops)
    return True
