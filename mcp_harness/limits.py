"""Resource limits, read from the `[limits]` table of `<data home>/config.toml`.

One request must not be able to take the machine down: element counts are checked from the
shapes while a graph is built (before any element exists), and the server caps batches, jobs,
terminals, cell and request sizes, regex time and its saved long results. Exceeding a limit is
a HarnessError naming the limit and the setting that raises it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from mcp_harness.errors import HarnessError
from mcp_harness.paths import data_home

SECTION = "limits"


@dataclass(frozen=True)
class Limits:
    node_elements: int = 10_000  # elements of one graph node (product of its shape)
    run_elements: int = 100_000  # elements of all nodes of one graph together
    batch: int = 256  # tasks in one module run or training step
    steps: int = 1000  # the size of a graph's `steps` dim (iterations of its agent loop)
    jobs: int = 4  # background jobs (runs, training) running at once per server
    terminals: int = 32  # live terminals a server's clients may create
    cell_chars: int = 1_000_000  # characters of one experience cell (query, key or value)
    request_bytes: int = 4 * 1024 * 1024  # body of one HTTP request
    regex_timeout_s: float = 2.0  # one regex evaluation (ft_validate_regex)
    results_files: int = 200  # long-result files kept in <data home>/server/results/
    results_bytes: int = 200 * 1024 * 1024  # and their total size

    def exceeded(
        self, what: str, value: float, key: str, instead: str = "make it smaller"
    ) -> HarnessError:
        """The error for `what` being `value` over the limit `key`."""
        return HarnessError(
            f"{what} ({value:,}) exceeds the limit {key} = {getattr(self, key):,}",
            f"{instead}, or raise `{key}` in the [{SECTION}] table of {config_file()}",
        )


def config_file() -> Path:
    return data_home() / "config.toml"


def limits() -> Limits:
    """The limits in force: config.toml's [limits] over the defaults (read on every call, so
    an edit applies without a restart)."""
    path = config_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Limits()
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"cannot read {path}: {exc}", "fix or move the file") from None
    import tomllib  # here, not with the module: a server's start reads no config.toml

    try:
        table = tomllib.loads(text).get(SECTION, {})
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(f"cannot read {path}: {exc}", "fix or move the file") from None
    if not isinstance(table, dict):
        raise HarnessError(f"{path}: [{SECTION}] must be a table", f"write [{SECTION}]")
    kinds = {f.name: f.type for f in fields(Limits)}
    values = {}
    for key, value in table.items():
        if key not in kinds:
            raise HarnessError(
                f"{path}: unknown key {key!r} in [{SECTION}]", f"use one of: {', '.join(kinds)}"
            )
        number = isinstance(value, int | float) if kinds[key] == "float" else isinstance(value, int)
        if isinstance(value, bool) or not number or value <= 0:
            raise HarnessError(
                f"{path}: {SECTION}.{key} must be a positive {kinds[key]}, got {value!r}",
                f"fix `{key}` in the [{SECTION}] table",
            )
        values[key] = value
    return Limits(**values)
