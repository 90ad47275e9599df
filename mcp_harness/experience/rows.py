"""Experience rows as callers give them and as stores return them, shared by every backend:
validation, redaction and the provenance a new row gets."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mcp_harness.errors import HarnessError
from mcp_harness.experience.keywords import extract_keywords
from mcp_harness.experience.slots import find_slots, index_keywords

COLUMNS = ("query", "key", "value")


@dataclass
class Row:
    """One experience row as given by a caller; provenance fields are free-form."""

    query: str
    key: str
    value: str
    weight: float = 1.0
    source: str = "manual"
    fields: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_list(cls, cells: Sequence[Any], **meta: Any) -> Row:
        if not isinstance(cells, (list, tuple)) or len(cells) != 3:
            width = len(cells) if isinstance(cells, (list, tuple)) else type(cells).__name__
            raise HarnessError(
                f"an experience row needs 3 cells (query, key, value), got {width}",
                "give [query, key, value]; use '' for an empty cell",
            )
        for name, cell in zip(COLUMNS, cells, strict=True):
            if not isinstance(cell, str):
                raise HarnessError(
                    f"row cell {name!r} must be text, got {type(cell).__name__}",
                    "quote the value as a string",
                )
        return cls(cells[0], cells[1], cells[2], **meta)


@dataclass(frozen=True)
class StoredRow:
    """A row as stored, with its index and provenance."""

    index: int
    query: str
    key: str
    value: str
    weight: float
    provenance: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "row": self.index,
            "query": self.query,
            "key": self.key,
            "value": self.value,
            "weight": self.weight,
            "provenance": self.provenance,
        }


@dataclass(frozen=True)
class Hit:
    """A search result: the row and its score (similarity x row weight)."""

    score: float
    row: StoredRow

    def to_json(self) -> dict[str, Any]:
        return {"score": round(self.score, 6), **self.row.to_json()}


def clean(row: Row) -> Row:
    from mcp_harness.redaction import redact  # its rules are costly to import: only to write

    if not isinstance(row, Row):
        raise HarnessError(f"expected a Row, got {type(row).__name__}", "build rows with Row(...)")
    check_weight(row.weight)
    return Row(
        redact(row.query),
        redact(row.key),
        redact(row.value),
        row.weight,
        row.source,
        json.loads(redact(json.dumps(row.fields, ensure_ascii=False))),
    )


def check_weight(weight: float) -> float:
    if not isinstance(weight, (int, float)) or not 0.0 <= float(weight) <= 1e6:
        raise HarnessError(f"row weight must be a number >= 0, got {weight!r}", "use e.g. 1.0")
    return float(weight)


def meta_for(row: Row) -> dict[str, Any]:
    """Provenance of a new row; its slots (the spans key and value share) unless given."""
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    meta = {"w": row.weight, "source": row.source, "ts": stamp, **row.fields}
    if not isinstance(meta.get("slots"), list):
        meta["slots"] = find_slots(row.key, row.value)
    return meta


def terms(query: str, meta: dict[str, Any]) -> list[str]:
    """A row's retrieval terms: its query keywords, distinctive slots as placeholders."""
    slots = meta.get("slots")
    return index_keywords(extract_keywords(query), slots if isinstance(slots, list) else None)
