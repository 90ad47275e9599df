"""Keep tool results under Claude Code's output limit (MAX_MCP_OUTPUT_TOKENS, 25,000 tokens by
default): longer text is cut, and the full text is saved under `<data home>/server/results/`
with the path in the result, so nothing is lost and the model can read it in chunks (secrets
redacted before the file is written, like everything else the tool stores)."""

from __future__ import annotations

import uuid

from mcp_harness.paths import data_home
from mcp_harness.redaction import redact
from mcp_harness.storage.atomic import atomic_write

LIMIT_CHARS = 40_000


def fit(text: str, what: str = "result", limit: int = LIMIT_CHARS) -> str:
    """`text`, or its head and tail with a pointer to the saved full text."""
    if len(text) <= limit:
        return text
    path = data_home() / "server" / "results" / f"{what}-{uuid.uuid4().hex[:12]}.txt"
    atomic_write(path, redact(text))
    half = limit // 2
    return (
        f"{text[:half]}\n\n[... {len(text) - limit} characters cut; the full {what} "
        f"({len(text)} characters) is saved at {path} ...]\n\n{text[-half:]}"
    )
