"""Experience tensors: `[N, 3]` (query, key, value) rows in the seed layout, plus provenance.

The directory is a symbolic tensor (`shape`, `storage/…/data`) with sidecars the seed ignores:
`rows.jsonl` (one line per row: weight `w`, `source`, `ts` and free-form fields), `generation`
(the number of commits), `index.bin` (the retrieval index, `index_file`), `.lock` (a file lock
serialising writers across processes) and `.txn/` (the journal of an unfinished commit).
Every change is one journaled transaction (see `storage.transaction`), so a crash leaves the old
rows or the new ones. Appends write their provenance lines before the commit; lines past the
committed row count are leftovers of an interrupted append and are dropped.

Opening reads the persisted index and nothing else of the rows when its label (generation, row
count, size and mtime of `rows.jsonl`) matches; provenance lines are then read one at a time as
rows are asked for. A missing, stale or corrupt index is rebuilt from the rows (and logged), and
every commit saves the index for the rows it leaves. Edits that bypass mcp-harness and leave
`rows.jsonl` and the row count alone (a seed tool rewriting a query cell) are not seen by a
persisted index: delete `index.bin` to rebuild it. numpy, filelock and the index modules are
imported when the first experience is opened, so importing this module (as the server does)
stays cheap. The file backend: `pg_store` is the PostgreSQL one, `backend.open_store` picks.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp_harness.errors import CorruptTensorError, HarnessError
from mcp_harness.experience.keywords import extract_keywords
from mcp_harness.experience.rows import (
    COLUMNS,
    Hit,
    Row,
    StoredRow,
    check_weight,
    clean,
    meta_for,
    terms,
)
from mcp_harness.experience.search_cache import SearchCache
from mcp_harness.experience.sidecar import (
    GENERATION_FILE,
    ROWS_FILE,
    read_generation,
    read_sidecar,
    sidecar_stamp,
)
from mcp_harness.experience.slots import find_slots, query_keywords
from mcp_harness.redaction import redact
from mcp_harness.storage import layout
from mcp_harness.storage.atomic import append_lines
from mcp_harness.storage.transaction import TXN_DIR, Transaction, recover

if TYPE_CHECKING:
    from mcp_harness.experience.index_file import Label

LOCK_FILE = ".lock"
INDEX_FILE = "index.bin"
_log = logging.getLogger(__name__)


class Experience:
    """An experience tensor on disk with its retrieval index in memory."""

    def __init__(self, path: Path) -> None:
        from filelock import FileLock

        from mcp_harness.experience.index import RetrievalIndex
        from mcp_harness.experience.index_file import line_offsets

        self.path = path
        self._lock = FileLock(str(path / LOCK_FILE))
        self._meta_list: list[dict[str, Any]] | None = []
        self._offsets = line_offsets([])  # where each provenance line starts
        self._index = RetrievalIndex()
        self._stamp: tuple[int, ...] = ()
        self._generation = 0
        self._read_only = False
        self._cells: dict[int, tuple[str, ...]] = {}
        self._searches = SearchCache()

    # ---- opening ----------------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path | str) -> Experience:
        """A new, empty `[0, 3]` experience at `path` (cold start)."""
        path = Path(path).absolute()
        if (path / layout.SHAPE_FILE).exists():
            raise HarnessError(
                f"{path}: an experience already exists here",
                "open it instead, or choose another name",
            )
        if path.exists() and any(path.iterdir()):
            raise HarnessError(f"{path}: directory is not empty", "choose a new or empty directory")
        path.mkdir(parents=True, exist_ok=True)
        layout.write_shape(path, (0, 3))
        return cls.open(path)

    @classmethod
    def open(cls, path: Path | str, *, read_only: bool = False) -> Experience:
        """Load rows and build the index; finishes a commit a crash interrupted. `read_only`
        (someone else's experience): nothing is written into it — no lock, no index, no
        recovery — and every change is refused."""
        path = Path(path).absolute()
        if not (path / layout.SHAPE_FILE).exists() and not path.is_dir():
            raise HarnessError(
                f"{path}: no experience here",
                f"create it with `mcp-harness experience new {path}`",
            )
        experience = cls(path)
        if read_only:
            experience._read_only = True
            experience._lock = _ReadOnly(path)
        experience._refresh(force=True)
        return experience

    def _refresh(self, force: bool = False) -> None:
        """Reload under the writer lock if another process committed (or `force`); a directory
        whose lock cannot be taken (read-only) is read without it and never written."""
        if isinstance(self._lock, _ReadOnly):
            self._refresh_if_changed(force)
            return
        try:
            with self._lock:
                self._refresh_if_changed(force)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                self._read_only = True
                self._refresh_if_changed(force)
            else:
                raise HarnessError(
                    f"{self.path}: cannot take the writer lock ({exc.strerror or exc})",
                    "check the permissions of the experience directory",
                ) from None

    def _load(self) -> None:
        from mcp_harness.experience.index import RetrievalIndex
        from mcp_harness.experience.index_file import UnusableIndex, load_index

        if not self._read_only:
            recover(self.path)
        shape = layout.read_shape(self.path)
        if len(shape) != 2 or shape[1] != 3:
            raise CorruptTensorError(
                f"{self.path}: an experience tensor has shape [N, 3], found {list(shape)}",
                "point at an experience directory (made by `mcp-harness experience new`)",
            )
        count = shape[0]
        self._stamp = sidecar_stamp(self.path)
        self._generation = read_generation(self.path)
        self._cells = {}
        try:
            self._index, self._offsets = load_index(self.path / INDEX_FILE, self._label(count))
            self._meta_list = None
            return
        except UnusableIndex as exc:
            missing = not (self.path / INDEX_FILE).exists()
            _log.log(
                logging.INFO if missing else logging.WARNING,
                "%s: retrieval index %s; rebuilding it from the rows",
                self.path,
                "missing" if missing else exc,
            )
        self._meta_list, self._offsets = read_sidecar(self.path / ROWS_FILE, count)
        queries = [layout.read_element(self.path, 3 * row) or "" for row in range(count)]
        self._index = RetrievalIndex()
        self._index.append(
            (terms(q, m) for q, m in zip(queries, self._meta_list, strict=True)),
            [m.get("w", 1.0) for m in self._meta_list],
        )
        self._save_index()

    def _label(self, count: int) -> Label:
        from mcp_harness.experience.index_file import Label

        size, mtime = self._stamp[1:] if self._stamp else (0, 0)
        return Label(self._generation, count, size, mtime)

    def _save_index(self) -> None:
        """Persist the index of the rows as committed (under the lock, after the commit)."""
        from mcp_harness.experience import index_file

        if self._read_only:
            return
        arrays = self._index.to_arrays()
        if arrays is None:
            return
        arrays["meta_offsets"] = self._offsets
        try:
            index_file.save(self.path / INDEX_FILE, self._label(len(self)), arrays)
        except OSError as exc:
            _log.info("%s: retrieval index not saved (%s)", self.path, exc.strerror or exc)

    def _metas(self) -> list[dict[str, Any]]:
        """Every row's provenance, read from `rows.jsonl` on first use."""
        if self._meta_list is None:
            self._meta_list, _ = read_sidecar(self.path / ROWS_FILE, len(self))
        return self._meta_list

    @property
    def _sidecar_end(self) -> int:
        return int(self._offsets[-1])

    def _row_meta(self, index: int) -> dict[str, Any]:
        """One row's provenance, without parsing the others."""
        if self._meta_list is not None:
            return self._meta_list[index]
        if index + 1 >= len(self._offsets):
            return {"w": 1.0, "source": "unknown"}
        start, end = int(self._offsets[index]), int(self._offsets[index + 1])
        with open(self.path / ROWS_FILE, "rb") as handle:
            handle.seek(start)
            line = handle.read(end - start)
        try:
            meta = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            meta = None
        if not isinstance(meta, dict):
            raise CorruptTensorError(
                f"{self.path / ROWS_FILE}:{index + 1}: provenance line is not a JSON object",
                f"repair or delete line {index + 1} of {ROWS_FILE}",
            )
        return meta

    def _refresh_if_changed(self, force: bool = False) -> None:
        """Under the lock: reload if another process committed since we loaded.

        Every commit rewrites or appends `rows.jsonl`, so its stat is the version stamp.
        """
        if force or (self.path / TXN_DIR).exists() or sidecar_stamp(self.path) != self._stamp:
            self._load()

    @contextlib.contextmanager
    def locked(self) -> Iterator[Experience]:
        """Hold the writer lock with the latest rows loaded, so read-then-append cannot race
        another process (the lock is re-entrant: `append` inside is fine)."""
        with self._lock:
            self._refresh_if_changed()
            yield self

    # ---- reading ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._index)

    def row(self, index: int) -> StoredRow:
        if self._meta_list is None and sidecar_stamp(self.path) != self._stamp:
            self._refresh()  # provenance offsets must point into rows.jsonl as it now is
        if not 0 <= index < len(self):
            raise HarnessError(
                f"row {index} does not exist in {self.path} ({len(self)} rows)",
                f"use a row index from 0 to {len(self) - 1}" if len(self) else "add rows first",
            )
        cells = self._cells.get(index)
        if cells is None:  # read once: search results repeat across elements of a run
            cells = tuple(layout.read_element(self.path, 3 * index + c) or "" for c in range(3))
            self._cells[index] = cells
        meta = dict(self._row_meta(index))
        weight = float(meta.pop("w", 1.0))
        return StoredRow(index, cells[0], cells[1], cells[2], weight, meta)

    def find_value(self, value: str) -> StoredRow | None:
        """The first row whose value is `value` (ignoring surrounding whitespace): inverse
        retrieval asks which stored row would have given the right answer."""
        wanted = value.strip()
        for stored in self.rows():
            if stored.value.strip() == wanted:
                return stored
        return None

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[StoredRow]:
        if (stop if stop is not None else len(self)) - start > 16:
            self._metas()  # many rows: parse all provenance at once
        for index in range(start, min(stop if stop is not None else len(self), len(self))):
            yield self.row(index)

    def search(
        self,
        text: str,
        k: int = 16,
        method: str = "jaccard",
        noise: float = 0.0,
        seed: int | None = None,
    ) -> list[Hit]:
        """Top-k rows for `text`; an empty list when the experience is empty or nothing matches.
        Answers are memoised per index version (`search_cache`); the rows are read anew."""
        if sidecar_stamp(self.path) != self._stamp:
            self._refresh()
        key = None if noise else SearchCache.key(text, k, method, self._index.version)
        matches = None if key is None else self._searches.get(key)
        if matches is None:
            keywords = query_keywords(extract_keywords(text))
            matches = self._index.search(keywords, k, method, noise, seed)
            if key is not None:
                self._searches.put(key, matches)
        return [Hit(m.score, self.row(m.row)) for m in matches]

    def weights(self) -> list[float]:
        return [float(m.get("w", 1.0)) for m in self._metas()]

    def stats(self) -> dict[str, Any]:
        sources: dict[str, int] = {}
        for meta in self._metas():
            source = str(meta.get("source", "unknown"))
            sources[source] = sources.get(source, 0) + 1
        weights = self.weights()
        return {
            "path": str(self.path),
            "rows": len(self),
            "sources": dict(sorted(sources.items())),
            "weight_mean": sum(weights) / len(weights) if weights else None,
            "vocabulary": self._index.vocabulary_size(),
        }

    # ---- writing ----------------------------------------------------------------------------
    def append(self, rows: Iterable[Row]) -> range:
        """Append rows (secrets redacted first) in one commit; returns their indices."""
        from mcp_harness.experience import index_file

        prepared = [clean(row) for row in rows]
        with self._lock:
            self._refresh_if_changed()
            start = len(self)
            if not prepared:
                return range(start, start)
            sidecar = self.path / ROWS_FILE
            if sidecar.exists() and sidecar.stat().st_size != self._sidecar_end:
                os.truncate(sidecar, self._sidecar_end)
            txn = Transaction(self.path)
            txn.write_new(
                [
                    (layout.element_relpath(3 * (start + offset) + column), text)
                    for offset, row in enumerate(prepared)
                    for column, text in enumerate((row.query, row.key, row.value))
                ]
            )
            metas = [meta_for(row) for row in prepared]
            lines = [json.dumps(m, ensure_ascii=False) for m in metas]
            append_lines(sidecar, lines)
            txn.write(layout.SHAPE_FILE, json.dumps([start + len(prepared), 3]))
            self._commit(txn)
            lengths = [len(line.encode("utf-8")) + 1 for line in lines]
            self._offsets = index_file.line_offsets(lengths, self._offsets)
            if self._meta_list is not None:
                self._meta_list.extend(metas)
            self._index.append(
                (terms(r.query, m) for r, m in zip(prepared, metas, strict=True)),
                [row.weight for row in prepared],
            )
            self._save_index()
            return range(start, start + len(prepared))

    def patch(
        self,
        index: int,
        *,
        query: str | None = None,
        key: str | None = None,
        value: str | None = None,
        weight: float | None = None,
        fields: dict[str, Any] | None = None,
    ) -> StoredRow:
        """Change cells, weight or provenance fields of one row in one commit."""
        change = {"query": query, "key": key, "value": value, "weight": weight, "fields": fields}
        self.update({index: change})
        return self.row(index)

    def update(self, patches: dict[int, dict[str, Any]], rows: Sequence[Row] = ()) -> range:
        """Patch rows (each change: query / key / value / weight / fields, None = keep) and
        append `rows`, all in one commit; returns the appended rows' indices."""
        prepared = [clean(row) for row in rows]
        with self._lock:
            self._refresh_if_changed()
            for index in patches:
                self.row(index)  # validates every index before anything is written
            txn = Transaction(self.path)
            metas = list(self._metas())
            cells: dict[int, tuple[str | None, ...]] = {}
            for index, change in patches.items():
                texts = tuple(None if change.get(c) is None else redact(change[c]) for c in COLUMNS)
                cells[index] = texts
                for column, text in enumerate(texts):
                    if text is not None:
                        txn.write(layout.element_relpath(3 * index + column), text)
                meta = dict(metas[index])
                if change.get("weight") is not None:
                    meta["w"] = check_weight(change["weight"])
                meta.update(change.get("fields") or {})
                if texts[1] is not None or texts[2] is not None:
                    old = self.row(index)
                    meta["slots"] = find_slots(
                        old.key if texts[1] is None else texts[1],
                        old.value if texts[2] is None else texts[2],
                    )
                metas[index] = meta
            start = len(metas)
            if prepared:
                txn.write_new(
                    [
                        (layout.element_relpath(3 * (start + offset) + column), text)
                        for offset, row in enumerate(prepared)
                        for column, text in enumerate((row.query, row.key, row.value))
                    ]
                )
                metas.extend(meta_for(row) for row in prepared)
                txn.write(layout.SHAPE_FILE, json.dumps([len(metas), 3]))
            self._stage_sidecar(txn, metas)
            self._commit(txn)
            self._meta_list = metas
            for index, texts in cells.items():
                self._cells.pop(index, None)
                if any(t is not None for t in texts):
                    query = texts[0] if texts[0] is not None else self.row(index).query
                    self._index.replace(
                        index, terms(query, metas[index]), metas[index].get("w", 1.0)
                    )
                else:
                    self._index.set_weight(index, metas[index].get("w", 1.0))
            if prepared:
                self._index.append(
                    (terms(r.query, m) for r, m in zip(prepared, metas[start:], strict=True)),
                    [row.weight for row in prepared],
                )
            self._save_index()
            return range(start, start + len(prepared))

    def set_weights(self, weights: Sequence[float]) -> None:
        """Replace every row weight at once (the optimizer's numeric step)."""
        with self._lock:
            self._refresh_if_changed()
            if len(weights) != len(self):
                raise HarnessError(
                    f"{len(weights)} weights for {len(self)} rows in {self.path}",
                    "give one weight per row",
                )
            old = self._metas()
            metas = [{**m, "w": check_weight(w)} for m, w in zip(old, weights, strict=True)]
            txn = Transaction(self.path)
            self._stage_sidecar(txn, metas)
            self._commit(txn)
            self._meta_list = metas
            for row, w in enumerate(weights):
                self._index.set_weight(row, w)
            self._save_index()

    def delete(self, indices: Iterable[int]) -> int:
        """Delete rows; later rows move up. Returns how many were deleted."""
        with self._lock:
            self._refresh_if_changed()
            doomed = sorted(set(indices))
            for index in doomed:
                self.row(index)
            if not doomed:
                return 0
            keep = [i for i in range(doomed[0], len(self)) if i not in set(doomed)]
            txn = Transaction(self.path)
            for new_row, old_row in enumerate(keep, start=doomed[0]):
                for column in range(3):
                    text = layout.read_element(self.path, 3 * old_row + column)
                    relpath = layout.element_relpath(3 * new_row + column)
                    if text is None:
                        txn.remove(relpath)
                    else:
                        txn.write(relpath, text)
            new_count = len(self) - len(doomed)
            for flat in range(3 * new_count, 3 * len(self)):
                txn.remove(layout.element_relpath(flat))
            metas = [m for i, m in enumerate(self._metas()) if i not in set(doomed)]
            self._stage_sidecar(txn, metas)
            txn.write(layout.SHAPE_FILE, json.dumps([new_count, 3]))
            self._commit(txn)
            self._cells.clear()
            self._meta_list = metas
            self._index.delete(doomed)
            self._save_index()
            return len(doomed)

    def _stage_sidecar(self, txn: Transaction, metas: list[dict[str, Any]]) -> None:
        from mcp_harness.experience import index_file

        lines = [(json.dumps(m, ensure_ascii=False) + "\n").encode("utf-8") for m in metas]
        txn.write(ROWS_FILE, b"".join(lines))
        self._offsets = index_file.line_offsets([len(line) for line in lines])

    def _commit(self, txn: Transaction) -> None:
        """Commit `txn` as the next generation."""
        txn.write(GENERATION_FILE, str(self._generation + 1))
        txn.commit()
        self._generation += 1
        self._stamp = sidecar_stamp(self.path)


class _ReadOnly:
    """The writer lock of an experience opened read-only: taking it (any change) is refused."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        raise HarnessError(
            f"{self.path}: this experience was opened read-only",
            "open it without read_only to change it (or copy it first)",
        )

    def __exit__(self, *exc_info: object) -> None:
        return None
