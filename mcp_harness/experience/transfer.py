"""Copying rows between a local experience and a pool: `experience push` and `pull`.

A copied row keeps its cells, weight and provenance (source, timestamp, slots, session…); a row
the destination already holds (same query, key and value) is skipped, so pushing or pulling
twice adds nothing. A push is one pool transaction (all rows or none); pulled rows are marked
with the pool they came from and keep `author`, the database role that added them.
`snapshot` copies a whole store of either backend into a new file experience (checkpoints, a
training gate's trial copy, an eval's scratch copy).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mcp_harness.experience.rows import Row, StoredRow

if TYPE_CHECKING:
    from mcp_harness.experience.pg_store import PoolExperience
    from mcp_harness.experience.store import Experience


@dataclass(frozen=True)
class Copied:
    added: int
    skipped: int


def as_row(stored: StoredRow, **extra: object) -> Row:
    """A stored row as a new row for another store, provenance kept."""
    fields = {k: v for k, v in stored.provenance.items() if k != "source"}
    source = str(stored.provenance.get("source", "unknown"))
    return Row(stored.query, stored.key, stored.value, stored.weight, source, {**fields, **extra})


def push(source: Iterable[StoredRow], pool: PoolExperience) -> Copied:
    """Every row of `source` the pool lacks, in one transaction."""
    rows = [as_row(stored) for stored in source]
    added = pool.push(rows)
    return Copied(len(added), len(rows) - len(added))


def pull(pool: PoolExperience, local: Experience | PoolExperience) -> Copied:
    """Every row of the pool that `local` lacks, appended in one commit."""
    with local.locked():
        held = {(r.query, r.key, r.value) for r in local.rows()}
        rows = []
        skipped = 0
        for stored in pool.rows():
            cells = (stored.query, stored.key, stored.value)
            if cells in held:
                skipped += 1
                continue
            held.add(cells)
            rows.append(as_row(stored, pool=pool.path))
        added = local.append(rows)
    return Copied(len(added), skipped)


def snapshot(store: Experience | PoolExperience, path: Path, *, as_searched: bool = False) -> Path:
    """A file experience at `path` with the rows `store` has committed, in order, with their
    weights and provenance: a file store's directory copied under its writer lock (without lock
    and journal), a pool store's rows read in one snapshot. `as_searched`: a pool row's weight
    is the one its search uses (other authors' rows scaled by `others_weight`)."""
    from mcp_harness.experience.store import Experience

    if isinstance(store, Experience):
        with store.locked():
            shutil.copytree(store.path, path, ignore=shutil.ignore_patterns(".lock", ".txn"))
        return path
    rows = store.rows()
    if as_searched:
        rows = (replace(r, weight=store.search_weight(r)) for r in rows)
    Experience.create(path).append(as_row(stored) for stored in rows)
    return path
