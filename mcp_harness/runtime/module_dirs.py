"""Where modules are, found without loading one: the built-in templates and the modules under
the data dir. Kept apart from `runtime.module` (which imports the experience store and the
graph code) so a server's start can look at the modules dir cheaply."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from mcp_harness.errors import broken_install
from mcp_harness.paths import data_home

SPEC = "module.json"


def modules_home() -> Path:
    return data_home() / "modules"


def builtin_names() -> list[str]:
    """The built-in templates; none at all means the package was installed without its data."""
    root = resources.files("mcp_harness.modules")
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and (p / SPEC).is_file())
    if not names:
        raise broken_install(f"the built-in modules ({root}/*/{SPEC})")
    return names
