"""Which kernel a run uses and how it is set up: environment over `<data_home>/config.toml`.

One loader reads both; every key is checked against the keys each kernel declares in
`kernels.registry` (an unknown or mistyped key is an error naming the file, never ignored), and
a missing requirement fails when the kernel is made, with the fix ("anthropic kernel needs
ANTHROPIC_API_KEY; set it or use --kernel offline").

    [kernel]                    # shared by all kernels
    name = "offline"            # MCP_HARNESS_KERNEL
    concurrency = 8
    timeout_s = 120
    retries = 4
    backoff_s = 0.5
    max_calls = 1000            # optional per-run budget
    max_tokens = 2000000
    max_cost_usd = 5.0
    [kernel.prices]             # USD per million tokens, for models not in the built-in table
    "my-model" = [0.5, 1.5]
    [kernels.offline]
    threshold = 0.2
    [kernels.anthropic]         # ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL
    model = "claude-sonnet-4-6" # MCP_HARNESS_MODEL overrides the model of the kernel in use
    [kernels.openai]            # OPENAI_API_KEY, OPENAI_BASE_URL (vLLM, llama.cpp, Ollama)
    model = "gpt-4o-mini"
    [kernels.claude-code]       # uses your Claude Code login; MCP_HARNESS_CLAUDE_BIN
    bin = "claude"
    workspace = "~/project"     # optional: a coding agent there (MCP_HARNESS_CLAUDE_WORKSPACE)
    tools = "Read,Edit,Write"   # the file tools it may use (the default; only with workspace)
    [kernels.replay]            # MCP_HARNESS_CASSETTE, MCP_HARNESS_REPLAY_MODE / _INNER
    cassette = "run.jsonl"
    mode = "replay"             # or "record", calling `inner`
    inner = "openai"

Nothing here touches the network: `kernel_status()` only checks settings, files and PATH.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp_harness.errors import HarnessError
from mcp_harness.kernels.base import Kernel
from mcp_harness.kernels.registry import INT, KERNELS, NUM, STR, settings_of, spec_of, unknown
from mcp_harness.kernels.runner import Budget, KernelRunner
from mcp_harness.paths import data_home

KERNEL_NAMES = tuple(KERNELS)
DEFAULT_KERNEL = "offline"

_KERNEL_KEYS: dict[str, str] = {
    "name": STR,
    "concurrency": INT,
    "timeout_s": NUM,
    "retries": INT,
    "backoff_s": NUM,
    "max_calls": INT,
    "max_tokens": INT,
    "max_cost_usd": NUM,
}
_BOUNDS = (  # key, bound, strictly greater
    ("concurrency", 1, False),
    ("timeout_s", 0, True),
    ("retries", 0, False),
    ("backoff_s", 0, False),
    ("max_calls", 0, False),
    ("max_tokens", 0, False),
    ("max_cost_usd", 0, False),
)
ENV_KERNEL = "MCP_HARNESS_KERNEL"
ENV_MODEL = "MCP_HARNESS_MODEL"


def config_path(env: Mapping[str, str] | None = None) -> Path:
    return data_home(env) / "config.toml"


@dataclass(frozen=True)
class KernelConfig:
    """The merged settings. `sections[name]` holds one kernel's keys (file, then env)."""

    path: Path
    kernel: str = DEFAULT_KERNEL
    model: str | None = None  # MCP_HARNESS_MODEL: the model of the kernel in use
    concurrency: int = 8
    timeout_s: float = 120.0
    retries: int = 4
    backoff_s: float = 0.5
    max_calls: int | None = None
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    env: Mapping[str, str] | None = None  # None: this process's environment

    def section(self, name: str) -> dict[str, Any]:
        return self.sections.get(name, {})

    def budget(self) -> Budget | None:
        if self.max_calls is None and self.max_tokens is None and self.max_cost_usd is None:
            return None
        return Budget(self.max_calls, self.max_tokens, self.max_cost_usd)


def _check(path: Path, where: str, key: str, value: Any, kind: str) -> Any:
    ok = {
        INT: isinstance(value, int) and not isinstance(value, bool),
        NUM: isinstance(value, int | float) and not isinstance(value, bool),
        STR: isinstance(value, str),
    }[kind]
    if not ok:
        raise HarnessError(
            f"{path}: {where}.{key} must be {kind}, got {value!r}",
            f"fix `{key}` in the [{where}] section",
        )
    return value


def _read_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise HarnessError(f"cannot read {path}: {exc.strerror}", "check its permissions") from exc
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise HarnessError(
            f"{path} is not valid TOML: {exc}",
            "fix the file (see `mcp-harness kernels` for the keys) or move it away",
        ) from exc


def _prices(path: Path, table: Any) -> dict[str, tuple[float, float]]:
    if not isinstance(table, dict):
        raise HarnessError(f"{path}: kernel.prices must be a table", 'use "model" = [in, out]')
    prices: dict[str, tuple[float, float]] = {}
    for model, pair in table.items():
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in pair)
        ):
            raise HarnessError(
                f"{path}: kernel.prices.{model} must be [input, output] USD per million tokens",
                f'write "{model}" = [3.0, 15.0]',
            )
        prices[model] = (float(pair[0]), float(pair[1]))
    return prices


def load_config(env: Mapping[str, str] | None = None, path: Path | None = None) -> KernelConfig:
    """Read `<data_home>/config.toml` (if any) and the environment; environment wins."""
    environ = os.environ if env is None else env
    path = path or config_path(env)
    data = _read_file(path)
    kernel_table = data.get("kernel", {})
    kernels_table = data.get("kernels", {})
    if not isinstance(kernel_table, dict) or not isinstance(kernels_table, dict):
        raise HarnessError(f"{path}: [kernel] and [kernels.*] must be tables", "fix the file")
    shared: dict[str, Any] = {}
    prices: dict[str, tuple[float, float]] = {}
    for key, value in kernel_table.items():
        if key == "prices":
            prices = _prices(path, value)
            continue
        if key not in _KERNEL_KEYS:
            raise HarnessError(
                f"{path}: unknown key {key!r} in [kernel]",
                f"use one of: {', '.join([*_KERNEL_KEYS, 'prices'])}",
            )
        shared[key] = _check(path, "kernel", key, value, _KERNEL_KEYS[key])
    sections: dict[str, dict[str, Any]] = {name: {} for name in KERNEL_NAMES}
    for name, table in kernels_table.items():
        if name not in KERNELS:
            raise HarnessError(
                f"{path}: unknown kernel section [kernels.{name}]",
                f"use one of: {', '.join(KERNEL_NAMES)}",
            )
        if not isinstance(table, dict):
            raise HarnessError(f"{path}: kernels.{name} must be a table", "fix the file")
        for key, value in table.items():
            allowed = KERNELS[name].keys
            if key not in allowed:
                raise HarnessError(
                    f"{path}: unknown key {key!r} in [kernels.{name}]",
                    f"use one of: {', '.join(allowed)}",
                )
            sections[name][key] = _check(path, f"kernels.{name}", key, value, allowed[key])
    for name, spec in KERNELS.items():
        for variable, key in spec.env.items():
            value = environ.get(variable)
            if value:
                sections[name][key] = value
    for key, low, strict in _BOUNDS:
        if key in shared and (shared[key] <= low if strict else shared[key] < low):
            raise HarnessError(
                f"{path}: kernel.{key} is {shared[key]}",
                f"use a value {'>' if strict else '>='} {low} for `{key}` in [kernel]",
            )
    kernel = environ.get(ENV_KERNEL) or shared.pop("name", DEFAULT_KERNEL)
    shared.pop("name", None)
    return KernelConfig(
        path=path,
        kernel=kernel,
        model=environ.get(ENV_MODEL) or None,
        prices=prices,
        sections=sections,
        env=env,
        **shared,
    )


# ---- building kernels ---------------------------------------------------------------------


def build_kernel(name: str | None = None, config: KernelConfig | None = None) -> Kernel:
    """The bare kernel (no runner policy), e.g. to wrap in a ReplayKernel by hand."""
    cfg = config or load_config()
    name = name or cfg.kernel
    return spec_of(name).construct(settings_of(name, cfg, cfg.model))


def make_kernel(
    name: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    config: KernelConfig | None = None,
    budget: Budget | None = None,
) -> KernelRunner:
    """The configured kernel (`name`, else MCP_HARNESS_KERNEL, else [kernel] name, else offline)
    wrapped in a KernelRunner; `budget` overrides the config file's limits."""
    cfg = config or load_config(env)
    kernel = build_kernel(name, cfg)
    return KernelRunner(
        kernel,
        concurrency=cfg.concurrency,
        timeout_s=cfg.timeout_s,
        retries=cfg.retries,
        backoff_s=cfg.backoff_s,
        budget=budget if budget is not None else cfg.budget(),
        prices=cfg.prices,
    )


# ---- status ---------------------------------------------------------------------------------


def kernel_status(
    env: Mapping[str, str] | None = None, config: KernelConfig | None = None
) -> list[dict[str, Any]]:
    """For each kernel: `name`, `selected`, `usable`, `detail` and (if unusable) `reason` and
    `fix`. No network and no subprocess: only settings, files and PATH are checked."""
    cfg = config or load_config(env)
    rows: list[dict[str, Any]] = []
    for name in KERNEL_NAMES:
        row: dict[str, Any] = {"name": name, "selected": name == cfg.kernel}
        try:
            settings = settings_of(name, cfg, cfg.model if name == cfg.kernel else None)
        except HarnessError as exc:
            row.update(usable=False, detail="", reason=exc.message, fix=exc.fix or "")
        else:
            row.update(usable=True, detail=KERNELS[name].detail(settings), reason="", fix="")
        rows.append(row)
    if cfg.kernel not in KERNEL_NAMES:
        error = unknown(cfg.kernel)
        rows.append(
            {
                "name": cfg.kernel,
                "selected": True,
                "usable": False,
                "detail": "",
                "reason": error.message,
                "fix": error.fix or "",
            }
        )
    return rows


def format_status(rows: list[dict[str, Any]]) -> str:
    """A table for `mcp-harness kernels`: `*` marks the selected kernel."""
    width = max([len(str(r["name"])) for r in rows] + [6])
    lines = [f"  {'kernel':<{width}}  usable  details"]
    for row in rows:
        mark = "*" if row.get("selected") else " "
        if row.get("usable"):
            text = str(row.get("detail", ""))
        else:
            text = str(row.get("reason", ""))
            if row.get("fix"):
                text += f" (fix: {row['fix']})"
        usable = "yes" if row.get("usable") else "no"
        lines.append(f"{mark} {row['name']:<{width}}  {usable:<6}  {text}")
    return "\n".join(lines)
