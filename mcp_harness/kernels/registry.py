"""The kernel registry: each kernel declares once its name, config keys, environment variables,
how its settings are checked, how it is built, how `mcp-harness kernels` describes it, and what
it can do (`reflective`: it can rewrite a row and say what an upstream expert should have
said).

`kernels.config` reads the keys from here; nothing else decides by a kernel's name.
Settings functions are pure checks (settings, files, PATH) that raise a HarnessError naming the
fix; constructors import their SDK only when a kernel is built.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp_harness.errors import HarnessError
from mcp_harness.kernels.anthropic_api import DEFAULT_MODEL as ANTHROPIC_DEFAULT_MODEL
from mcp_harness.kernels.base import Kernel
from mcp_harness.kernels.offline import DEFAULT_THRESHOLD
from mcp_harness.kernels.openai_api import DEFAULT_MODEL as OPENAI_DEFAULT_MODEL
from mcp_harness.paths import data_home

if TYPE_CHECKING:
    from mcp_harness.kernels.config import KernelConfig

INT, NUM, STR = "an integer", "a number", "a string"
SDK_TIMEOUT_MARGIN_S = 5.0  # the SDK timeout is a backstop behind the runner's own

Settings = dict[str, Any]


@dataclass(frozen=True)
class KernelSpec:
    """One kernel's declaration (see the module doc)."""

    name: str
    keys: dict[str, str]  # [kernels.<name>] key -> its kind (INT, NUM, STR)
    settings: Callable[[KernelConfig, str | None], Settings]  # (config, model override)
    construct: Callable[[Settings], Kernel]
    detail: Callable[[Settings], str]
    env: dict[str, str] = field(default_factory=dict)  # environment variable -> key
    reflective: bool = True


KERNELS: dict[str, KernelSpec] = {}


def register(spec: KernelSpec) -> KernelSpec:
    if spec.name in KERNELS:
        raise ValueError(f"kernel {spec.name!r} registered twice")
    KERNELS[spec.name] = spec
    return spec


def unknown(name: str) -> HarnessError:
    return HarnessError(
        f"unknown kernel {name!r}", f"use one of: {', '.join(KERNELS)} (--kernel NAME)"
    )


def spec_of(name: str) -> KernelSpec:
    try:
        return KERNELS[name]
    except KeyError:
        raise unknown(name) from None


def settings_of(name: str, cfg: KernelConfig, model: str | None) -> Settings:
    """Everything needed to construct kernel `name`, or a HarnessError saying what is missing."""
    return spec_of(name).settings(cfg, model)


def reflects(name: str) -> bool:
    """Whether the kernel called `name` can reflect (a kernel not registered here, such as a
    test's stub, is taken for an LLM and can)."""
    spec = KERNELS.get(name)
    return spec.reflective if spec is not None else True


# ---- offline ---------------------------------------------------------------------------------
def _offline_settings(cfg: KernelConfig, model: str | None) -> Settings:
    threshold = float(cfg.section("offline").get("threshold", DEFAULT_THRESHOLD))
    if threshold < 0:
        raise HarnessError(
            f"{cfg.path}: kernels.offline.threshold is {threshold}", "use a value >= 0"
        )
    return {"threshold": threshold}


def _offline(settings: Settings) -> Kernel:
    from mcp_harness.kernels.offline import OfflineKernel

    return OfflineKernel(**settings)


register(
    KernelSpec(
        "offline",
        {"threshold": NUM},
        _offline_settings,
        _offline,
        lambda s: f"threshold {s['threshold']:g}, no network",
        reflective=False,
    )
)


# ---- the API kernels -------------------------------------------------------------------------
def _need_sdk(kernel: str, module: str) -> None:
    """The SDK of an API kernel is the optional extra of the same name."""
    if importlib.util.find_spec(module) is None:
        raise HarnessError(
            f"{kernel} kernel needs the `{module}` Python package, which is not installed",
            f"pip install 'mcp-harness[{module}]', or use --kernel offline",
        )


def _api_detail(settings: Settings) -> str:
    where = settings.get("base_url") or "default endpoint"
    return f"model {settings['model']} at {where}"


def _anthropic_settings(cfg: KernelConfig, model: str | None) -> Settings:
    section = cfg.section("anthropic")
    _need_sdk("anthropic", "anthropic")
    if not section.get("api_key"):
        raise HarnessError(
            "anthropic kernel needs ANTHROPIC_API_KEY",
            f"set ANTHROPIC_API_KEY (or api_key under [kernels.anthropic] in {cfg.path}), "
            "or use --kernel offline (or claude-code, which uses your Claude Code login)",
        )
    return {
        "api_key": section["api_key"],
        "base_url": section.get("base_url") or None,
        "model": model or section.get("model") or ANTHROPIC_DEFAULT_MODEL,
        "timeout_s": cfg.timeout_s + SDK_TIMEOUT_MARGIN_S,
    }


def _anthropic(settings: Settings) -> Kernel:
    from mcp_harness.kernels.anthropic_api import AnthropicKernel

    return AnthropicKernel(**settings)


def _openai_settings(cfg: KernelConfig, model: str | None) -> Settings:
    section = cfg.section("openai")
    _need_sdk("openai", "openai")
    if not section.get("api_key") and not section.get("base_url"):
        raise HarnessError(
            "openai kernel needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local "
            "OpenAI-compatible server: vLLM, llama.cpp, Ollama)",
            "set OPENAI_API_KEY or OPENAI_BASE_URL (e.g. http://127.0.0.1:11434/v1), "
            "or use --kernel offline",
        )
    return {
        "api_key": section.get("api_key") or None,
        "base_url": section.get("base_url") or None,
        "model": model or section.get("model") or OPENAI_DEFAULT_MODEL,
        "timeout_s": cfg.timeout_s + SDK_TIMEOUT_MARGIN_S,
    }


def _openai(settings: Settings) -> Kernel:
    from mcp_harness.kernels.openai_api import OpenAIKernel

    return OpenAIKernel(**settings)


_API_KEYS = {"model": STR, "api_key": STR, "base_url": STR}
register(
    KernelSpec(
        "anthropic",
        _API_KEYS,
        _anthropic_settings,
        _anthropic,
        _api_detail,
        env={"ANTHROPIC_API_KEY": "api_key", "ANTHROPIC_BASE_URL": "base_url"},
    )
)
register(
    KernelSpec(
        "openai",
        _API_KEYS,
        _openai_settings,
        _openai,
        _api_detail,
        env={"OPENAI_API_KEY": "api_key", "OPENAI_BASE_URL": "base_url"},
    )
)


# ---- claude-code -----------------------------------------------------------------------------
def _claude_bin(cfg: KernelConfig) -> str:
    configured = cfg.section("claude-code").get("bin") or "claude"
    environ = os.environ if cfg.env is None else cfg.env
    if os.sep in configured:
        path = Path(configured).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return str(path.absolute())
        raise HarnessError(
            f"claude-code kernel: {configured} is not an executable file",
            "set MCP_HARNESS_CLAUDE_BIN (or bin under [kernels.claude-code]) to the `claude` "
            "binary, or use --kernel offline",
        )
    found = shutil.which(configured, path=environ.get("PATH", os.defpath))
    if found is None:
        raise HarnessError(
            f"claude-code kernel: `{configured}` not found on PATH",
            "install Claude Code (npm install -g @anthropic-ai/claude-code) or set "
            "MCP_HARNESS_CLAUDE_BIN, or use --kernel offline",
        )
    return found


def _claude_agent(cfg: KernelConfig) -> Settings:
    """Agent mode's settings: `workspace` (a directory) and `tools` (comma separated, only
    with a workspace); none without a workspace."""
    section = cfg.section("claude-code")
    tools = section.get("tools")
    if not section.get("workspace"):
        if tools is not None:
            raise HarnessError(
                f"{cfg.path}: kernels.claude-code.tools is set but no workspace",
                "set workspace too (tools are offered only to an agent in a workspace), "
                "or remove tools",
            )
        return {}
    workspace = Path(section["workspace"]).expanduser().absolute()
    if not workspace.is_dir():
        raise HarnessError(
            f"claude-code kernel: workspace {workspace} is not a directory",
            "create it, or set MCP_HARNESS_CLAUDE_WORKSPACE (or workspace under "
            "[kernels.claude-code]) to the directory the agent should work in",
        )
    agent: Settings = {"workspace": workspace}
    if tools is not None:
        names = tuple(t.strip() for t in tools.split(",") if t.strip())
        if not names:
            raise HarnessError(
                f"{cfg.path}: kernels.claude-code.tools is empty",
                'name the tools, e.g. tools = "Read,Edit,Write", or remove the key',
            )
        agent["tools"] = names
    return agent


def _claude_code_settings(cfg: KernelConfig, model: str | None) -> Settings:
    section = cfg.section("claude-code")
    return {
        "claude_bin": _claude_bin(cfg),
        "model": model or section.get("model") or None,
        "api_key": section.get("api_key") or None,
        "base_url": section.get("base_url") or None,
        "env": dict(cfg.env) if cfg.env is not None else None,
        # its own empty directory: no project CLAUDE.md, settings or MCP servers leak in
        "cwd": data_home(cfg.env) / "kernels" / "claude-code",
        **_claude_agent(cfg),
    }


def _claude_code(settings: Settings) -> Kernel:
    from mcp_harness.kernels.claude_code import ClaudeCodeKernel

    return ClaudeCodeKernel(**settings)


def _claude_code_detail(settings: Settings) -> str:
    model = settings.get("model") or "its default model"
    detail = f"{settings['claude_bin']}, {model}, your Claude Code login or ANTHROPIC_API_KEY"
    if "workspace" in settings:
        from mcp_harness.kernels.claude_code import AGENT_TOOLS

        tools = ", ".join(settings.get("tools", AGENT_TOOLS))
        detail += f"; coding agent in {settings['workspace']} ({tools})"
    return detail


register(
    KernelSpec(
        "claude-code",
        {"bin": STR, **_API_KEYS, "workspace": STR, "tools": STR},
        _claude_code_settings,
        _claude_code,
        _claude_code_detail,
        env={"MCP_HARNESS_CLAUDE_BIN": "bin", "MCP_HARNESS_CLAUDE_WORKSPACE": "workspace"},
    )
)


# ---- replay ----------------------------------------------------------------------------------
def _replay_settings(cfg: KernelConfig, model: str | None) -> Settings:
    section = cfg.section("replay")
    cassette = section.get("cassette")
    if not cassette:
        raise HarnessError(
            "replay kernel needs a cassette file",
            "set MCP_HARNESS_CASSETTE (or cassette under [kernels.replay])",
        )
    path = Path(cassette).expanduser().absolute()
    mode = section.get("mode", "replay")
    if mode not in ("replay", "record"):
        raise HarnessError(
            f"replay kernel: unknown mode {mode!r}",
            'set MCP_HARNESS_REPLAY_MODE (or mode under [kernels.replay]) to "replay" or "record"',
        )
    if mode == "replay":
        if not path.is_file():
            raise HarnessError(
                f"replay cassette {path} does not exist",
                "record it first (MCP_HARNESS_REPLAY_MODE=record with "
                "MCP_HARNESS_REPLAY_INNER=<kernel>), or fix MCP_HARNESS_CASSETTE",
            )
        return {"cassette": path, "mode": mode, "inner": None}
    inner = section.get("inner")
    if not inner or inner == "replay" or inner not in KERNELS:
        raise HarnessError(
            f"replay kernel in record mode needs an inner kernel to record, got {inner!r}",
            "set MCP_HARNESS_REPLAY_INNER (or inner under [kernels.replay]) to one of: "
            + ", ".join(n for n in KERNELS if n != "replay"),
        )
    return {"cassette": path, "mode": mode, "inner": (inner, settings_of(inner, cfg, model))}


def _replay(settings: Settings) -> Kernel:
    from mcp_harness.kernels.replay import ReplayKernel

    inner = settings["inner"]
    return ReplayKernel(
        settings["cassette"],
        mode=settings["mode"],
        inner=spec_of(inner[0]).construct(inner[1]) if inner is not None else None,
    )


def _replay_detail(settings: Settings) -> str:
    inner = settings.get("inner")
    if inner is None:
        return f"replays {settings['cassette']}"
    name, inner_settings = inner
    detail = spec_of(name).detail(inner_settings)
    return f"records {name} ({detail}) into {settings['cassette']}"


register(
    KernelSpec(
        "replay",
        {"cassette": STR, "mode": STR, "inner": STR},
        _replay_settings,
        _replay,
        _replay_detail,
        env={
            "MCP_HARNESS_CASSETTE": "cassette",
            "MCP_HARNESS_REPLAY_MODE": "mode",
            "MCP_HARNESS_REPLAY_INNER": "inner",
        },
    )
)
