"""`mcp-harness` command line: parses arguments and turns HarnessError into a clear message.

Sub-commands live in their own modules and are imported only when chosen, so `--help` and
non-training commands never import torch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from mcp_harness import __version__
from mcp_harness.errors import HarnessError


def build_parser() -> argparse.ArgumentParser:
    from mcp_harness.cli import (
        capture_cmd,
        demo_cmd,
        eval_cmd,
        examples,
        experience_cmd,
        export_cmd,
        module_cmd,
        serve_cmd,
        trace_cmd,
        train_cmd,
    )

    parser = argparse.ArgumentParser(
        prog="mcp-harness",
        description="Turn an AI coding agent's terminal work into trainable, reusable skill.",
    )
    parser.add_argument("--version", action="version", version=f"mcp-harness {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    paths = commands.add_parser(
        "paths",
        help="print where mcp-harness stores its data",
        description="Print the data home (experience, modules, runs, captured calls; the "
        "XDG data dir unless MCP_HARNESS_HOME is set) and the runtime dir of the tmux pool.",
    )
    paths.add_argument("--json", action="store_true", help="machine-readable output")
    paths.set_defaults(run=_run_paths)

    experience_cmd.register(commands)
    capture_cmd.register(commands)
    module_cmd.register(commands)
    trace_cmd.register(commands)
    demo_cmd.register(commands)
    train_cmd.register(commands)
    eval_cmd.register(commands)
    serve_cmd.register(commands)
    export_cmd.register(commands)
    examples.add_examples(parser)
    return parser


def _run_paths(args: argparse.Namespace) -> int:
    from mcp_harness.paths import ENV_HOME, all_paths

    paths = {name: str(path) for name, path in all_paths().items()}
    if args.json:
        print(json.dumps(paths, indent=2))
    else:
        for name, path in paths.items():
            print(f"{name:12} {path}")
        print(f"(set {ENV_HOME} to move everything)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except HarnessError as exc:
        print(f"mcp-harness: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    except Exception as exc:  # last resort: never a raw traceback unless asked for
        if os.environ.get("MCP_HARNESS_DEBUG"):
            raise
        print(
            f"mcp-harness: internal error: {type(exc).__name__}: {exc}\n"
            "  (this is a bug; rerun with MCP_HARNESS_DEBUG=1 for a traceback and report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
