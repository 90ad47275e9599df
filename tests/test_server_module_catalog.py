"""The module catalog kept in the schema cache (`server/module_catalog.py`): a new process
reads what an earlier one cached only while every file the catalog was read from is as it was;
an edit that keeps a file's size and mtime, or a new config.toml, is read again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcp_harness.runtime import module as modules
from mcp_harness.server import module_catalog, schema_cache


def _fresh() -> list[module_catalog.Entry]:
    """The catalog as a new process reads it (the cache file read again, then saved)."""
    schema_cache._opened.clear()
    found = module_catalog.entries()
    schema_cache.cache().save()
    return found


def _read_now(monkeypatch: pytest.MonkeyPatch) -> list[module_catalog.Entry]:
    """The catalog read from the files, the cache left out."""
    schema_cache._opened.clear()
    with monkeypatch.context() as patched:
        patched.setattr(schema_cache.SchemaCache, "catalog", lambda self, signature: None)
        return module_catalog.entries()


def test_a_cached_catalog_is_what_reading_gives(
    harness_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modules.new("mine")
    first = _fresh()
    assert [e.name for e in first] == ["coder", "mine"]
    assert _fresh() == first == _read_now(monkeypatch)
    cached = _fresh()
    cached[0].spec["nodes"].clear()  # a caller's change does not reach the cache
    assert _fresh() == first


def test_an_edit_keeping_size_and_mtime_is_read_again(harness_home: Path) -> None:
    folder = modules.new("mine")
    readme = folder / "README.md"
    readme.write_text("# mine\n\nLists files.\n\n## Inputs\n\n- `task`: what to list\n")
    _fresh()
    before = readme.stat()
    readme.write_text(readme.read_text().replace("to list", "to sort"))
    os.utime(readme, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert readme.stat().st_size == before.st_size
    mine = next(e for e in _fresh() if e.name == "mine")
    assert mine.inputs["task"] == "what to sort", mine.inputs


def test_a_new_config_is_read_again(harness_home: Path) -> None:
    assert all(entry.error is None for entry in _fresh())
    (harness_home / "config.toml").write_text("[limits]\nsteps = 2\n")
    coder = next(e for e in _fresh() if e.name == "coder")
    assert coder.error is not None and "steps" in coder.error
