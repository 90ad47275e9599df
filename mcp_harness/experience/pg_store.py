"""An experience in a PostgreSQL pool, behind the same interface as the file store.

Rows, provenance, weights and search results are those of `store.Experience`: the same
`RetrievalIndex` (same scores, ties broken by row index) is fed from the table once per process
and then follows the experience's change counter (`pg_schema`), reading only rows changed since;
a search costs one indexed look-up of the counter plus the k rows it returns, never a scan.
Every change is one transaction under the experience's advisory lock: all of it is stored or
none. Rows are redacted (`rows.clean`) before they leave the machine. A row's provenance gains
`author`, the database role that inserted it; other authors' rows count `others_weight` times
their weight in search (0 hides them).
"""

from __future__ import annotations

import bisect
import contextlib
import getpass
import json
import socket
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from mcp_harness.errors import HarnessError
from mcp_harness.experience.backend import PoolAddress
from mcp_harness.experience.keywords import extract_keywords
from mcp_harness.experience.pg_schema import (
    SCHEMA,
    connect,
    database_errors,
    import_psycopg,
    row_digest,
)
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
from mcp_harness.experience.slots import find_slots, query_keywords
from mcp_harness.redaction import redact

if TYPE_CHECKING:
    import psycopg

_FETCH = 1000  # rows per round trip when reading many
_ROW_COLUMNS = "id, query, key, value, weight, meta, author"


class PoolExperience:
    """An experience (`address.experience`) in a PostgreSQL database, with its index in memory."""

    def __init__(self, address: PoolAddress, others_weight: float = 1.0) -> None:
        from mcp_harness.experience.index import RetrievalIndex

        self.address = address
        self.path = address.display  # what messages name; never holds a password
        self.others_weight = others_weight
        self._conn = connect(address.conninfo, self.path)
        self._me: str = self._conn.execute("SELECT current_user").fetchone()[0]
        self._index = RetrievalIndex()
        self._ids: list[int] = []
        self._change = 0
        self._depth = 0  # nesting of write transactions
        self._cache: dict[int, StoredRow] = {}

    @classmethod
    def open(
        cls, address: PoolAddress, mode: str = "open", others_weight: float = 1.0
    ) -> PoolExperience:
        """Connect and load the index. `mode`: "open" an experience the pool holds, make a
        "new" one, or "ensure" it exists (the schema is made if the database has none)."""
        psycopg = import_psycopg()
        experience = cls(address, others_weight)
        table = f"{SCHEMA}.experiences"
        try:
            with database_errors(experience.path, "create experiences"):
                if mode == "new":
                    experience._conn.execute(
                        f"INSERT INTO {table} (name) VALUES (%s)", (address.experience,)
                    )
                elif mode == "ensure":
                    experience._conn.execute(
                        f"INSERT INTO {table} (name) VALUES (%s) ON CONFLICT DO NOTHING",
                        (address.experience,),
                    )
            found = experience._conn.execute(
                f"SELECT 1 FROM {table} WHERE name = %s", (address.experience,)
            ).fetchone()
            if not found:
                raise HarnessError(
                    f"{experience.path}: no experience of that name in this database",
                    f"create it with `mcp-harness experience new '{experience.path}'`",
                )
            with experience._reading():
                pass
        except psycopg.errors.UniqueViolation:
            experience.close()
            raise HarnessError(
                f"{experience.path}: an experience already exists here",
                "open it instead, or choose another name after '#'",
            ) from None
        except BaseException:
            experience.close()
            raise
        return experience

    def close(self) -> None:
        self._conn.close()

    def check_trainable(self) -> None:
        """Refuse, naming the store, when this role may not add or edit rows (what a
        training step does), before anything is changed."""
        with database_errors(self.path, "read the pool"):
            allowed = self._conn.execute(
                "SELECT has_table_privilege(%s, 'INSERT') AND has_table_privilege(%s, 'UPDATE')",
                (f"{SCHEMA}.rows", f"{SCHEMA}.rows"),
            ).fetchone()[0]
        if not allowed:
            raise HarnessError(
                f"{self.path}: your database role may not edit rows, which every training step "
                "does (row weights, patches, new rows); nothing was trained",
                "ask a maintainer to train it, or to grant you the maintainer role (README: the "
                "pool's setup SQL); or train a local copy (mcp-harness experience pull) and push "
                "the rows it learns (mcp-harness experience push)",
            )

    # ---- following the table ----------------------------------------------------------------
    @contextlib.contextmanager
    def _reading(self) -> Iterator[psycopg.Connection]:
        """A consistent snapshot with the index brought up to it (inside a write: that one)."""
        if self._depth:
            self._sync()
            yield self._conn
            return
        with database_errors(self.path, "read the pool"), self._conn.transaction():
            self._conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            self._sync()
            yield self._conn

    @contextlib.contextmanager
    def _writing(self) -> Iterator[int]:
        """One transaction holding the experience's lock, the index current; yields the number
        the change will have. A failure rolls everything back and reloads the index."""
        self._depth += 1
        base = self._change
        try:
            with self._conn.transaction():
                self._conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 16))",
                    (self.address.experience,),
                )
                self._sync()
                base = self._change
                yield base + 1
        except BaseException:
            if self._change != base:  # what this transaction applied to the index is gone
                self._reset()
            raise
        finally:
            self._depth -= 1

    def _record(self, change: int, kind: str, ids: Sequence[int] | None = None) -> None:
        self._conn.execute(
            f"INSERT INTO {SCHEMA}.changes (experience, change, kind, ids) VALUES (%s, %s, %s, %s)",
            (self.address.experience, change, kind, list(ids) if ids is not None else None),
        )

    def _reset(self) -> None:
        from mcp_harness.experience.index import RetrievalIndex

        self._index, self._ids, self._change, self._cache = RetrievalIndex(), [], 0, {}

    def _factor(self, author: str) -> float:
        return 1.0 if author == self._me else self.others_weight

    def _sync(self) -> None:
        """Apply to the index what changed since its change number (nothing when current)."""
        name = self.address.experience
        now = self._counter()
        if now == self._change:
            return
        if now < self._change:  # the history was rewritten behind our back: start over
            self._reset()
        since = self._change
        gone = self._conn.execute(  # a logged deletion counts only if the row is gone
            f"SELECT DISTINCT d.id FROM {SCHEMA}.changes AS c, unnest(c.ids) AS d(id) "
            "WHERE c.experience = %s AND c.change > %s AND c.kind = 'delete' "
            f"AND NOT EXISTS (SELECT 1 FROM {SCHEMA}.rows AS r WHERE r.id = d.id)",
            (name, since),
        ).fetchall()
        doomed = sorted(p for (i,) in gone if (p := self._position(i)) is not None)
        if doomed:
            self._index.delete(doomed)
            dropped = set(doomed)
            self._ids = [i for p, i in enumerate(self._ids) if p not in dropped]
            self._cache.clear()
        changed = self._conn.execute(
            f"SELECT id, query, meta -> 'slots', weight, author, terms_changed > %s "
            f"FROM {SCHEMA}.rows WHERE experience = %s AND changed > %s ORDER BY id",
            (since, name, since),
        )
        new_ids: list[int] = []
        new_terms: list[list[str]] = []
        new_weights: list[float] = []
        for row_id, query, slots, weight, author, retermed in changed:
            effective = weight * self._factor(author)
            position = self._position(row_id)
            if position is None:
                if self._ids and row_id < self._ids[-1]:  # inserted past the lock: reload
                    self._reset()
                    self._sync()
                    return
                new_ids.append(row_id)
                new_terms.append(terms(query, {"slots": slots}))
                new_weights.append(effective)
                continue
            self._cache.pop(row_id, None)
            if retermed:
                self._index.replace(position, terms(query, {"slots": slots}), effective)
            else:
                self._index.set_weight(position, effective)
        if new_ids:
            self._index.append(new_terms, new_weights)
            self._ids.extend(new_ids)
        self._change = now

    def _counter(self) -> int:
        """The experience's change number: one index look-up."""
        return self._conn.execute(
            f"SELECT coalesce(max(change), 0) FROM {SCHEMA}.changes WHERE experience = %s",
            (self.address.experience,),
        ).fetchone()[0]

    def _position(self, row_id: int) -> int | None:
        at = bisect.bisect_left(self._ids, row_id)
        return at if at < len(self._ids) and self._ids[at] == row_id else None

    # ---- reading ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ids)

    def _fetch(self, ids: Sequence[int]) -> dict[int, StoredRow]:
        """Rows by id, from the cache or one query (inside a snapshot)."""
        wanted = [i for i in ids if i not in self._cache]
        if wanted:
            found = self._conn.execute(
                f"SELECT {_ROW_COLUMNS} FROM {SCHEMA}.rows WHERE id = ANY(%s)", (wanted,)
            )
            for row_id, query, key, value, weight, meta, author in found:
                provenance = {**meta, "author": author}
                self._cache[row_id] = StoredRow(0, query, key, value, weight, provenance)
        return {i: self._cache[i] for i in ids if i in self._cache}

    def _at(self, positions: Sequence[int]) -> list[StoredRow]:
        ids = [self._ids[p] for p in positions]
        found = self._fetch(ids)
        out = []
        for position, row_id in zip(positions, ids, strict=True):
            stored = found[row_id]
            out.append(StoredRow(position, *_cells(stored), stored.weight, dict(stored.provenance)))
        return out

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self):
            raise HarnessError(
                f"row {index} does not exist in {self.path} ({len(self)} rows)",
                f"use a row index from 0 to {len(self) - 1}" if len(self) else "add rows first",
            )

    def row(self, index: int) -> StoredRow:
        with self._reading():
            self._check_index(index)
            return self._at([index])[0]

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[StoredRow]:
        with self._reading():
            end = min(stop if stop is not None else len(self), len(self))
            chunks = [list(range(s, min(s + _FETCH, end))) for s in range(start, end, _FETCH)]
            out = [stored for chunk in chunks for stored in self._at(chunk)]
            self._cache.clear()  # a full read must not keep every row in memory
        yield from out

    def find_value(self, value: str) -> StoredRow | None:
        """The first row whose value is `value` (ignoring surrounding whitespace)."""
        wanted = value.strip()
        for stored in self.rows():
            if stored.value.strip() == wanted:
                return stored
        return None

    def search(
        self,
        text: str,
        k: int = 16,
        method: str = "jaccard",
        noise: float = 0.0,
        seed: int | None = None,
    ) -> list[Hit]:
        """Top-k rows for `text`, scored as the file store scores them. When the index is
        current this costs one statement for the counter and one for rows not cached yet; a
        row deleted in between sends the search through a snapshot instead."""
        keywords = query_keywords(extract_keywords(text))
        if not self._depth:
            with database_errors(self.path, "read the pool"):
                if self._counter() == self._change:
                    matches = self._index.search(keywords, k, method, noise, seed)
                    ids = [self._ids[m.row] for m in matches]
                    if len(self._fetch(ids)) == len(ids):
                        rows = self._at([m.row for m in matches])
                        return [Hit(m.score, r) for m, r in zip(matches, rows, strict=True)]
        with self._reading():
            matches = self._index.search(keywords, k, method, noise, seed)
            rows = self._at([m.row for m in matches])
        return [Hit(m.score, r) for m, r in zip(matches, rows, strict=True)]

    def weights(self) -> list[float]:
        return [r.weight for r in self.rows()]

    def search_weight(self, stored: StoredRow) -> float:
        """The weight search gives a row: its own, times `others_weight` if another role
        added it."""
        return stored.weight * self._factor(str(stored.provenance.get("author", self._me)))

    def stats(self) -> dict[str, Any]:
        sources: dict[str, int] = {}
        weights = []
        for stored in self.rows():
            source = str(stored.provenance.get("source", "unknown"))
            sources[source] = sources.get(source, 0) + 1
            weights.append(stored.weight)
        return {
            "path": self.path,
            "rows": len(self),
            "sources": dict(sorted(sources.items())),
            "weight_mean": sum(weights) / len(weights) if weights else None,
            "vocabulary": self._index.vocabulary_size(),
        }

    @contextlib.contextmanager
    def locked(self) -> Iterator[PoolExperience]:
        """Hold the experience's lock with the latest rows loaded: read-then-append cannot
        race another writer, and what is written inside commits together."""
        with database_errors(self.path, "add rows"), self._writing():
            yield self

    # ---- writing ----------------------------------------------------------------------------
    def append(self, rows: Iterable[Row]) -> range:
        """Append rows (secrets redacted first) in one transaction; returns their indices."""
        return self._append(rows, unique=False)

    def push(self, rows: Iterable[Row]) -> range:
        """Append the rows the pool does not hold yet (by query, key and value), in one
        transaction; concurrent pushes of one row store it once."""
        return self._append(rows, unique=True)

    def _append(self, rows: Iterable[Row], unique: bool) -> range:
        prepared = [clean(row) for row in rows]
        metas = [_pool_meta(meta_for(row)) for row in prepared]
        for number, (row, meta) in enumerate(zip(prepared, metas, strict=True)):
            self._check_text(number, row, meta)
        with database_errors(self.path, "add rows"), self._writing() as change:
            start = len(self)
            if prepared:
                self._insert(change, prepared, metas, unique)
                self._record(change, "append")
                self._sync()
            return range(start, len(self))

    def _insert(self, change: int, rows: list[Row], metas: list[str], unique: bool) -> None:
        name = self.address.experience
        columns = "experience, query, key, value, weight, meta, digest, changed, terms_changed"
        if not unique:
            with self._conn.cursor().copy(f"COPY {SCHEMA}.rows ({columns}) FROM STDIN") as copy:
                for row, meta in zip(rows, metas, strict=True):
                    cells = (row.query, row.key, row.value, row.weight, meta)
                    copy.write_row((name, *cells, None, change, change))
            return
        self._conn.execute(
            "CREATE TEMP TABLE mh_push (ord int, query text, key text, value text, "
            "weight float8, meta text, digest text) ON COMMIT DROP"
        )
        with self._conn.cursor().copy("COPY mh_push FROM STDIN") as copy:
            for number, (row, meta) in enumerate(zip(rows, metas, strict=True)):
                ident = row_digest(row.query, row.key, row.value)
                copy.write_row((number, row.query, row.key, row.value, row.weight, meta, ident))
        self._conn.execute(
            f"INSERT INTO {SCHEMA}.rows ({columns}) "
            "SELECT %s, query, key, value, weight, meta::json, digest, %s, %s FROM "
            "(SELECT DISTINCT ON (digest) * FROM mh_push ORDER BY digest, ord) AS first "
            "ORDER BY ord ON CONFLICT (experience, digest) WHERE digest IS NOT NULL DO NOTHING",
            (name, change, change),
        )
        self._conn.execute("DROP TABLE mh_push")

    def _check_text(self, number: int, row: Row, meta: str) -> None:
        for column, text in zip((*COLUMNS, "provenance"), (*_cells(row), meta), strict=True):
            if "\x00" in text or "\\u0000" in text:
                raise HarnessError(
                    f"{self.path}: row {number} has a NUL character in its {column}, "
                    "which PostgreSQL cannot store",
                    "remove it from the row (nothing was stored)",
                )

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
        """Change cells, weight or provenance fields of one row in one transaction."""
        change = {"query": query, "key": key, "value": value, "weight": weight, "fields": fields}
        self.update({index: change})
        return self.row(index)

    def update(self, patches: dict[int, dict[str, Any]], rows: Sequence[Row] = ()) -> range:
        """Patch rows and append `rows`, all in one transaction; returns the appended indices."""
        prepared = [clean(row) for row in rows]
        metas = [_pool_meta(meta_for(row)) for row in prepared]
        for number, (row, meta) in enumerate(zip(prepared, metas, strict=True)):
            self._check_text(number, row, meta)
        with database_errors(self.path, "edit rows"), self._writing() as change:
            for index in patches:
                self._check_index(index)
            olds = dict(zip(patches, self._at(list(patches)), strict=True))
            for index, patch in patches.items():
                self._patch_one(change, olds[index], patch)
            start = len(self)
            if prepared:
                self._insert(change, prepared, metas, unique=False)
            self._record(change, "update")
            self._sync()
            return range(start, len(self))

    def _patch_one(self, change: int, old: StoredRow, patch: dict[str, Any]) -> None:
        texts = [None if patch.get(c) is None else redact(patch[c]) for c in COLUMNS]
        meta = {k: v for k, v in old.provenance.items() if k != "author"}
        weight = old.weight if patch.get("weight") is None else check_weight(patch["weight"])
        meta.update(json.loads(redact(json.dumps(patch.get("fields") or {}, ensure_ascii=False))))
        if texts[1] is not None or texts[2] is not None:
            meta["slots"] = find_slots(
                old.key if texts[1] is None else texts[1],
                old.value if texts[2] is None else texts[2],
            )
        cells = [o if t is None else t for t, o in zip(texts, _cells(old), strict=True)]
        meta_text = _pool_meta({"w": weight, **meta})
        self._check_text(old.index, Row(*cells), meta_text)
        retermed = texts[0] is not None or texts[1] is not None or texts[2] is not None
        self._conn.execute(
            f"UPDATE {SCHEMA}.rows SET query = %s, key = %s, value = %s, weight = %s, "
            "meta = %s, changed = %s, "
            "terms_changed = CASE WHEN %s THEN %s ELSE terms_changed END WHERE id = %s",
            (*cells, weight, meta_text, change, retermed, change, self._ids[old.index]),
        )

    def set_weights(self, weights: Sequence[float]) -> None:
        """Replace every row weight at once (the optimizer's numeric step)."""
        checked = [check_weight(w) for w in weights]
        with database_errors(self.path, "edit rows"), self._writing() as change:
            if len(checked) != len(self):
                raise HarnessError(
                    f"{len(checked)} weights for {len(self)} rows in {self.path}",
                    "give one weight per row",
                )
            self._conn.execute(
                f"UPDATE {SCHEMA}.rows AS r SET weight = w.weight, changed = %s "
                "FROM unnest(%s::bigint[], %s::float8[]) AS w(id, weight) WHERE r.id = w.id",
                (change, self._ids, checked),
            )
            self._record(change, "weights")
            self._sync()

    def delete(self, indices: Iterable[int]) -> int:
        """Delete rows; later rows move up. Returns how many were deleted."""
        doomed = sorted(set(indices))
        with database_errors(self.path, "delete rows"), self._writing() as change:
            for index in doomed:
                self._check_index(index)
            if not doomed:
                return 0
            ids = [self._ids[i] for i in doomed]
            self._conn.execute(f"DELETE FROM {SCHEMA}.rows WHERE id = ANY(%s)", (ids,))
            self._record(change, "delete", ids)
            self._sync()
            return len(doomed)


def _cells(row: Row | StoredRow) -> tuple[str, str, str]:
    return (row.query, row.key, row.value)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return "unknown"


def _pool_meta(meta: dict[str, Any]) -> str:
    """Provenance as the pool stores it: without the weight (a column of its own), with the
    machine user and host that sent it unless the row already names them."""
    rest = {k: v for k, v in meta.items() if k != "w"}
    rest.setdefault("user", _user())
    rest.setdefault("host", socket.gethostname())
    return json.dumps(rest, ensure_ascii=False)  # fields were redacted with the row (`clean`)
