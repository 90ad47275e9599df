"""What a tool returns: secrets redacted, and text kept under Claude Code's output limit
(MAX_MCP_OUTPUT_TOKENS, 25,000 tokens by default). Longer text is cut, and the full text is
saved under `<data home>/server/results/` with the path and its resource URI in the result, so
nothing is lost and the model can read it in chunks; the oldest saved files go once there are
more than the `results_files` / `results_bytes` limits."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from mcp_harness.limits import limits
from mcp_harness.paths import data_home
from mcp_harness.redaction import redact
from mcp_harness.storage.atomic import atomic_write

LIMIT_CHARS = 40_000


def results_dir() -> Path:
    return data_home() / "server" / "results"


def fit(text: str, what: str = "result", limit: int = LIMIT_CHARS) -> str:
    """`text` redacted, or its head and tail with a pointer to the saved full text."""
    text = redact(text)
    if len(text) <= limit:
        return text
    path = results_dir() / f"{what}-{uuid.uuid4().hex[:12]}.txt"
    atomic_write(path, text, durable=False)
    prune_results(keep=path)
    half = limit // 2
    return (
        f"{text[:half]}\n\n[... {len(text) - limit} characters cut; the full {what} "
        f"({len(text)} characters) is saved at {path}, resource harness://results/{path.name} "
        f"...]\n\n{text[-half:]}"
    )


def prune_results(keep: Path | None = None) -> int:
    """Delete the oldest saved results beyond the limits (never `keep`); how many went."""
    caps = limits()
    entries = []
    with os.scandir(results_dir()) as found:
        for entry in found:
            if entry.is_file(follow_symlinks=False) and entry.name.endswith(".txt"):
                info = entry.stat(follow_symlinks=False)
                entries.append((info.st_mtime_ns, info.st_size, entry.path))
    entries.sort(reverse=True)  # newest first
    count = total = removed = 0
    for _, size, path in entries:
        count, total = count + 1, total + size
        if path != str(keep) and (count > caps.results_files or total > caps.results_bytes):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed += 1
    return removed
