"""Experience tools: search, add, edit, delete and inspect experience tensors.

`experience` is a name (`<data home>/experience/<name>`) or a path, as in the CLI; the server's
`experience_cache` opens each one once and confines its paths.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from mcp_harness.errors import HarnessError
from mcp_harness.experience.store import Row, StoredRow
from mcp_harness.limits import limits
from mcp_harness.server.declare import Result, tool
from mcp_harness.server.experience_cache import ExperienceCache
from mcp_harness.server.output import LIMIT_CHARS, fit

MIN_CELL_CHARS = 2_000


# ---- results -------------------------------------------------------------------------------

ExperienceArg = Annotated[
    str,
    Field(
        min_length=1,
        description="experience name (stored under <data home>/experience/) or a path to an "
        "experience directory",
    ),
]
RowIndex = Annotated[int, Field(ge=0, description="row index (0-based)")]


class RowOut(Result):
    row: int = Field(description="row index (0-based; later rows move up after a delete)")
    query: str = Field(description="retrieval keywords, one per line")
    key: str = Field(description="the situation or task")
    value: str = Field(description="what to do")
    weight: float
    provenance: dict[str, Any] = Field(description="source, timestamp and other fields")


class HitOut(RowOut):
    score: float = Field(description="similarity x row weight")


class SearchResult(Result):
    experience: str = Field(description="path of the experience")
    text: str
    method: str
    rows: int = Field(description="rows in the experience")
    hits: list[HitOut] = Field(description="best first; empty when nothing matches")
    note: str | None = Field(default=None, description="why there are no hits, if there are none")


class RowResult(Result):
    experience: str
    rows: int = Field(description="rows in the experience now")
    created: bool = Field(default=False, description="whether the experience was created now")
    entry: RowOut


class DeleteResult(Result):
    experience: str
    deleted: int
    rows: int = Field(description="rows left")


class StatsResult(Result):
    path: str
    rows: int
    sources: dict[str, int] = Field(description="rows per provenance source")
    weight_mean: float | None
    vocabulary: int = Field(description="distinct retrieval keywords")


def _row(stored: StoredRow, limit: int = LIMIT_CHARS // 2) -> dict[str, Any]:
    return {
        "row": stored.index,
        "query": fit(stored.query, "experience-query", limit),
        "key": fit(stored.key, "experience-key", limit),
        "value": fit(stored.value, "experience-value", limit),
        "weight": stored.weight,
        "provenance": stored.provenance,
    }


def _check_cells(**cells: str | None) -> None:
    """Every given cell within the `cell_chars` limit."""
    caps = limits()
    for name, text in cells.items():
        if text is not None and len(text) > caps.cell_chars:
            raise caps.exceeded(f"{name}: characters", len(text), "cell_chars")


# ---- tools ---------------------------------------------------------------------------------


def _cache(ctx: Context) -> ExperienceCache:
    return ctx.request_context.lifespan_context.experience


def register(server: MCPServer) -> None:
    read = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @tool(server, title="Search experience", annotations=read)
    def experience_search(
        ctx: Context,
        experience: ExperienceArg,
        text: Annotated[str, Field(description="what to look for; keywords are extracted")],
        k: Annotated[int, Field(ge=1, le=50, description="rows to return")] = 5,
        method: Annotated[
            Literal["jaccard", "bm25"], Field(description="retrieval scoring")
        ] = "jaccard",
    ) -> SearchResult:
        """Top-k experience rows for a text (key = situation, value = what to do), scored by
        keyword similarity x row weight, best first; ties go to the lower row index."""
        with _cache(ctx).opened(experience) as exp:
            hits = exp.search(text, k, method)
            count = len(exp)
            path = str(exp.path)
        limit = max(MIN_CELL_CHARS, LIMIT_CHARS // (3 * max(len(hits), 1)))
        note = None
        if not hits:
            note = "the experience is empty" if count == 0 else "no row shares a keyword"
        return SearchResult(
            experience=path,
            text=text,
            method=method,
            rows=count,
            hits=[HitOut(score=round(h.score, 6), **_row(h.row, limit)) for h in hits],
            note=note,
        )

    @tool(
        server,
        title="Add an experience row",
        annotations=ToolAnnotations(destructive_hint=False, open_world_hint=False),
    )
    def experience_add(
        ctx: Context,
        experience: ExperienceArg,
        key: Annotated[str, Field(description="the situation or task (source text)")],
        value: Annotated[str, Field(description="what to do (target text)")],
        query: Annotated[
            str | None,
            Field(description="retrieval keywords, one per line (default: from the key)"),
        ] = None,
        weight: Annotated[float, Field(ge=0, le=1e6, description="row weight")] = 1.0,
        create: Annotated[
            bool, Field(description="create the experience if it does not exist yet")
        ] = False,
    ) -> RowResult:
        """Append one row to an experience (secrets are redacted before it is stored)."""
        from mcp_harness.experience.keywords import keywords_text

        _check_cells(query=query, key=key, value=value)
        keywords = query if query is not None else keywords_text(key)
        entry, created = _cache(ctx).entry(experience, create=create)
        with entry.lock:
            exp = entry.experience
            indices = exp.append([Row(keywords, key, value, weight, "mcp")])
            stored = exp.row(indices[0])
            return RowResult(
                experience=str(exp.path), rows=len(exp), created=created, entry=_row(stored)
            )

    @tool(
        server,
        title="Edit an experience row",
        annotations=ToolAnnotations(
            destructive_hint=True, idempotent_hint=True, open_world_hint=False
        ),
    )
    def experience_edit(
        ctx: Context,
        experience: ExperienceArg,
        row: RowIndex,
        query: Annotated[str | None, Field(description="new retrieval keywords")] = None,
        key: Annotated[str | None, Field(description="new key text")] = None,
        value: Annotated[str | None, Field(description="new value text")] = None,
        weight: Annotated[float | None, Field(ge=0, le=1e6, description="new weight")] = None,
    ) -> RowResult:
        """Change one row's cells or weight in one commit (omitted fields stay as they are);
        the old text is replaced."""
        if all(v is None for v in (query, key, value, weight)):
            raise HarnessError("nothing to change", "give query, key, value or weight")
        _check_cells(query=query, key=key, value=value)
        with _cache(ctx).opened(experience) as exp:
            stored = exp.patch(row, query=query, key=key, value=value, weight=weight)
            return RowResult(experience=str(exp.path), rows=len(exp), entry=_row(stored))

    @tool(
        server,
        title="Delete experience rows",
        annotations=ToolAnnotations(
            destructive_hint=True, idempotent_hint=False, open_world_hint=False
        ),
    )
    def experience_delete(
        ctx: Context,
        experience: ExperienceArg,
        rows: Annotated[list[RowIndex], Field(min_length=1, description="row indices")],
    ) -> DeleteResult:
        """Delete rows in one commit; later rows move up (their indices change)."""
        with _cache(ctx).opened(experience) as exp:
            deleted = exp.delete(rows)
            return DeleteResult(experience=str(exp.path), deleted=deleted, rows=len(exp))

    @tool(server, title="Experience statistics", annotations=read)
    def experience_stats(ctx: Context, experience: ExperienceArg) -> StatsResult:
        """Row count, rows per source, mean weight and vocabulary size of an experience."""
        with _cache(ctx).opened(experience) as exp, exp.locked():  # reloads what others committed
            return StatsResult(**exp.stats())
