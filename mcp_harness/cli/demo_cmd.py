"""`mcp-harness demo`: the main job (see `mcp_harness.demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo",
        help="harvest a recorded session, then let the coder module work terminal tasks",
        description="The main job, offline (no API key): harvest a bundled Claude Code "
        "session into experience, run the coder module on 7 terminal tasks (each in its own "
        "tmux session), train it on other wordings and run the tasks again. Uses a temporary "
        "data dir (kept with --keep), never yours.",
    )
    demo.add_argument(
        "--kernel",
        default=None,
        help="offline (default without ANTHROPIC_API_KEY), anthropic, openai, …",
    )
    demo.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="keep everything (data, module, runs, workspaces) in this directory",
    )
    demo.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from mcp_harness.demo import run

    run(args.kernel, args.keep)
    return 0
