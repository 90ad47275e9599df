"""The file backend's provenance sidecar (`rows.jsonl`) and commit counter (`generation`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp_harness.errors import CorruptTensorError

if TYPE_CHECKING:
    import numpy as np

ROWS_FILE = "rows.jsonl"
GENERATION_FILE = "generation"


def read_sidecar(path: Path, count: int) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Provenance for `count` rows and the byte offsets where committed lines start and end.

    Rows without a line (a tensor written by hand or by the seed) get default provenance.
    """
    from mcp_harness.experience.index_file import line_offsets

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [{"w": 1.0, "source": "unknown"} for _ in range(count)], line_offsets([])
    lines = raw.split(b"\n")[:-1][:count]
    try:  # one parse for all lines: this runs on every open
        metas = json.loads(b"[" + b",".join(lines) + b"]") if lines else []
    except json.JSONDecodeError:
        metas = None
    if metas is None or len(metas) != len(lines) or not all(isinstance(m, dict) for m in metas):
        metas = []
        for number, line in enumerate(lines, start=1):
            try:
                meta = json.loads(line)
            except json.JSONDecodeError:
                meta = None
            if not isinstance(meta, dict):
                raise CorruptTensorError(
                    f"{path}:{number}: provenance line is not a JSON object",
                    f"repair or delete line {number} of {path.name}",
                )
            metas.append(meta)
    offsets = line_offsets([len(line) + 1 for line in lines])
    metas.extend({"w": 1.0, "source": "unknown"} for _ in range(count - len(metas)))
    return metas, offsets


def read_generation(path: Path) -> int:
    """The number of commits made through mcp-harness (0 before the first, or when unreadable:
    an index labelled otherwise is then stale)."""
    try:
        return int((path / GENERATION_FILE).read_text(encoding="ascii"))
    except (OSError, ValueError, UnicodeDecodeError):
        return 0


def sidecar_stamp(path: Path) -> tuple[int, ...]:
    """The version stamp of the experience at `path`: every commit rewrites or appends
    `rows.jsonl`, so its inode, size and mtime change."""
    try:
        st = (path / ROWS_FILE).stat()
    except FileNotFoundError:
        return ()
    return (st.st_ino, st.st_size, st.st_mtime_ns)
