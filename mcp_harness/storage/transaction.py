"""Journaled multi-file commits: after a crash a tensor directory shows all of a change or none.

Two kinds of writes make up a transaction:
- `write` / `remove` change files readers can see: new contents are staged under `<dir>/.txn/`
  and moved into place only after the commit point;
- `write_new` creates files no reader looks at until the commit (say, rows past the committed
  shape): their paths are listed in `.txn/new.json` first, then they are written in place, which
  halves the I/O of a bulk append.
The commit point is the atomic write of `.txn/journal.json`. Replaying a journal is idempotent,
so `recover()` re-applies one a crash left behind; without a journal it deletes the listed new
files and the staged ones, which restores the old state.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

from mcp_harness.storage.atomic import atomic_write, check_write, fsync_dir

TXN_DIR = ".txn"
JOURNAL = "journal.json"
NEW_FILES = "new.json"
_FSYNC_EACH_LIMIT = 64


class Transaction:
    """Collect writes and removals (relative paths) and commit them all at once."""

    def __init__(self, tensor_dir: Path) -> None:
        self.tensor_dir = tensor_dir
        self._staging = tensor_dir / TXN_DIR
        self._ops: dict[str, str | None] = {}
        self._written: list[str] = []
        self._started = False

    def _start(self) -> None:
        if not self._started:
            recover(self.tensor_dir)
            self._staging.mkdir(parents=True, exist_ok=True)
            self._started = True

    def write(self, relpath: str, content: str | bytes) -> None:
        """Replace a visible file at commit."""
        self._start()
        staged = str(len(self._ops))
        with open(os.path.join(self._staging, staged), "wb") as handle:
            handle.write(_raw(content))
        self._ops[relpath] = staged
        self._written.append(os.path.join(self._staging, staged))

    def remove(self, relpath: str) -> None:
        """Delete a visible file at commit."""
        self._ops[relpath] = None

    def write_new(self, files: list[tuple[str, str | bytes]]) -> None:
        """Create files that stay invisible until commit (once per transaction)."""
        self._start()
        marker = self._staging / NEW_FILES
        if marker.exists():
            raise RuntimeError("write_new may be called once per transaction")
        atomic_write(marker, json.dumps([relpath for relpath, _ in files]))
        root = str(self.tensor_dir)
        for relpath, content in files:
            path = os.path.join(root, relpath)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            check_write(path)
            with open(path, "wb") as handle:
                handle.write(_raw(content))
            self._written.append(path)

    def commit(self) -> None:
        if not self._started and not self._ops:
            return
        self._staging.mkdir(parents=True, exist_ok=True)
        if len(self._written) <= _FSYNC_EACH_LIMIT:
            for path in self._written:
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        else:
            os.sync()
        for relpath, staged in self._ops.items():  # refused before the journal: nothing applies
            if staged is not None:
                check_write(os.path.join(self.tensor_dir, relpath))
        atomic_write(self._staging / JOURNAL, json.dumps(self._ops))
        _apply(self.tensor_dir, self._ops)


def _raw(content: str | bytes) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content


def _apply(tensor_dir: Path, ops: dict[str, str | None]) -> None:
    staging = tensor_dir / TXN_DIR
    touched: set[str] = set()
    for relpath, staged in ops.items():
        target = os.path.join(tensor_dir, relpath)
        if staged is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target)
            continue
        source = os.path.join(staging, staged)
        if not os.path.exists(source):
            continue  # applied before a crash
        if os.path.islink(target):  # a view: replace what it points at
            target = os.path.realpath(target)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(source, target)
        touched.add(os.path.dirname(target))
    if len(touched) <= _FSYNC_EACH_LIMIT:
        for directory in touched:
            fsync_dir(Path(directory))
    else:
        os.sync()
    shutil.rmtree(staging, ignore_errors=True)
    fsync_dir(tensor_dir)


def recover(tensor_dir: Path) -> bool:
    """Finish a committed transaction a crash interrupted; roll back an uncommitted one.

    Returns True if a committed transaction was replayed.
    """
    staging = tensor_dir / TXN_DIR
    if not staging.exists():
        return False
    try:
        ops = json.loads((staging / JOURNAL).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        _roll_back(tensor_dir)
        return False
    _apply(tensor_dir, ops)
    return True


def _roll_back(tensor_dir: Path) -> None:
    staging = tensor_dir / TXN_DIR
    try:
        created = json.loads((staging / NEW_FILES).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        created = []  # no list: the crash came before any new file was written
    for relpath in created:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(tensor_dir, relpath))
    shutil.rmtree(staging, ignore_errors=True)
