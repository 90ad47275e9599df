"""The MCP server's experience tools on a pool address: same answers as the CLI, one
connection per store held by the server's cache and closed with it (real PostgreSQL, real
client)."""

from __future__ import annotations

from pathlib import Path

from mcp import Client

from mcp_harness.experience.backend import opened
from mcp_harness.server.app import build_server
from mcp_harness.server.experience_cache import ExperienceCache


async def test_experience_tools_take_a_pool_address(harness_home: Path, pg_uri: str) -> None:
    async with Client(build_server(), mode="legacy") as client:
        added = await client.call_tool(
            "experience_add",
            {"experience": pg_uri, "key": "Make run.sh executable", "value": "chmod +x run.sh",
             "create": True},
        )  # fmt: skip
        assert not added.is_error, added.content
        found = await client.call_tool(
            "experience_search", {"experience": pg_uri, "text": "make deploy.sh executable"}
        )
        assert not found.is_error and "chmod +x run.sh" in found.content[0].text
    with opened(pg_uri) as store:  # what another process sees
        assert [r.value for r in store.rows()] == ["chmod +x run.sh"]


def test_the_cache_closes_the_connections_it_opened(harness_home: Path, pg_uri: str) -> None:
    cache = ExperienceCache()
    entry, _ = cache.entry(pg_uri, create=True)
    again, _ = cache.entry(pg_uri)
    assert again is entry  # one connection per store
    cache.close()
    assert entry.experience._conn.closed and not cache.entries
