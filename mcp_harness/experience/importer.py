"""Read experience rows from JSON Lines, validating every line before anything is stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mcp_harness.errors import HarnessError
from mcp_harness.experience.keywords import keywords_text
from mcp_harness.experience.store import Row

_RESERVED = {"query", "key", "value", "weight", "source"}
FORMAT_HINT = (
    'each line is {"key": "...", "value": "..."} with optional "query" (keywords, one per line; '
    'default: extracted from the key), "weight", "source" and any provenance fields, '
    "or a [query, key, value] list"
)


def row_from_json(item: Any, default_source: str) -> Row:
    """One JSON value (object or 3-list) -> Row; raises HarnessError naming the problem."""
    if isinstance(item, list):
        return Row.from_list(item, source=default_source)
    if not isinstance(item, dict):
        raise HarnessError(f"expected an object or a list, got {type(item).__name__}", FORMAT_HINT)
    for name in ("key", "value"):
        if not isinstance(item.get(name), str):
            raise HarnessError(f"missing or non-text {name!r}", FORMAT_HINT)
    query = item.get("query")
    if query is not None and not isinstance(query, str):
        raise HarnessError("'query' must be text", FORMAT_HINT)
    weight = item.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
        raise HarnessError(f"'weight' must be a number >= 0, got {weight!r}", FORMAT_HINT)
    fields = {k: v for k, v in item.items() if k not in _RESERVED}
    return Row(
        query if query is not None else keywords_text(item["key"]),
        item["key"],
        item["value"],
        float(weight),
        str(item.get("source", default_source)),
        fields,
    )


def read_rows_jsonl(path: Path, source: str) -> list[Row]:
    """All rows of a JSONL file; the first bad line aborts with its line number."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HarnessError(f"{path}: no such file", "check the path") from None
    except UnicodeDecodeError:
        raise HarnessError(f"{path}: not UTF-8 text", "save the file as UTF-8") from None
    rows: list[Row] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HarnessError(
                f"{path}:{number}: not valid JSON ({exc.msg})", FORMAT_HINT
            ) from None
        try:
            rows.append(row_from_json(item, source))
        except HarnessError as exc:
            raise HarnessError(f"{path}:{number}: {exc.message}", exc.fix) from None
    return rows
