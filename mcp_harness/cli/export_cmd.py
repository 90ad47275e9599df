"""`mcp-harness export-skill`: a module becomes a Claude Code skill."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export-skill",
        help="export a module as a Claude Code skill (SKILL.md + module data + launcher)",
        description="Write <DIR>/<NAME>/SKILL.md, a copy of the module under module/ and the "
        "launcher scripts/run.sh (runs `mcp-harness module run` on it). Exporting again "
        "replaces the skill atomically.",
    )
    parser.add_argument(
        "module", help="a module name (built-in or under the data dir) or a module directory"
    )
    parser.add_argument(
        "--to",
        type=Path,
        default=None,
        metavar="DIR",
        help="skills directory (default: ./.claude/skills if ./.claude exists, else "
        "~/.claude/skills; e.g. skills/ of the mcp-harness repo)",
    )
    parser.add_argument(
        "--name", default=None, help="skill name, ^[a-z0-9-]{1,64}$ (default: the module's name)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=_export)


def _export(args: argparse.Namespace) -> int:
    from mcp_harness.export.skill import export_skill

    done = export_skill(args.module, args.to, args.name)
    if args.json:
        print(json.dumps(done.to_json(), indent=2))
        return 0
    rows = ", ".join(f"{k} {v} rows" for k, v in done.experience.items()) or "no experience"
    print(
        f"{'replaced' if done.replaced else 'exported'} skill {done.name!r} at {done.skill_dir}\n"
        f"  SKILL.md, module/ ({rows}), scripts/run.sh — {done.files} files\n"
        f"  in Claude Code: /{done.name}, or the model invokes it when a task fits (a session "
        "started before the skills dir existed finds it from the next session on)\n"
        f"  launcher help: {done.launcher} --help"
    )
    return 0
