"""One short example per command, shown at the end of its `--help` (tests run each through the
parser, so an example cannot name an option that does not exist)."""

from __future__ import annotations

import argparse

EXAMPLES: dict[str, str] = {
    "": "mcp-harness demo",
    "paths": "mcp-harness paths --json",
    "experience": "mcp-harness experience search shell 'list files'",
    "experience new": "mcp-harness experience new shell",
    "experience add": "mcp-harness experience add shell 'list files' 'ls -la'",
    "experience import-jsonl": "mcp-harness experience import-jsonl shell rows.jsonl",
    "experience search": "mcp-harness experience search shell 'list files' -k 3",
    "experience show": "mcp-harness experience show shell 0 1",
    "experience stats": "mcp-harness experience stats shell",
    "experience edit": "mcp-harness experience edit shell 0 --weight 0.5",
    "experience delete": "mcp-harness experience delete shell 3",
    "experience push": "mcp-harness experience push shell postgresql://me@db:5432/team#shell",
    "experience pull": "mcp-harness experience pull postgresql://me@db:5432/team#shell shell",
    "capture": "mcp-harness capture install",
    "capture install": "mcp-harness capture install --scope project",
    "capture uninstall": "mcp-harness capture uninstall",
    "capture status": "mcp-harness capture status",
    "capture prefix-path": "mcp-harness capture prefix-path",
    "capture log": "mcp-harness capture log -n 5",
    "harvest": "mcp-harness harvest --exit success --since 2026-11-01",
    "module": "mcp-harness module show coder",
    "module new": "mcp-harness module new my-coder --from coder",
    "module validate": "mcp-harness module validate coder",
    "module show": "mcp-harness module show coder --json",
    "module run": "mcp-harness module run coder --input task='Create a directory called build' "
    "--input workdir=. --input check='test -d build'",
    "kernels": "mcp-harness kernels",
    "trace": "mcp-harness trace show runs/train-1",
    "trace show": "mcp-harness trace show runs/train-1 --step 2",
    "demo": "mcp-harness demo --keep demo-run",
    "train": "mcp-harness train coder --data tasks.jsonl --val val.jsonl --epochs 2",
    "eval": "mcp-harness eval coder --data heldout.jsonl --json",
    "dataset": "mcp-harness dataset from-harvest tasks.jsonl",
    "dataset from-harvest": "mcp-harness dataset from-harvest tasks.jsonl --project my-app",
    "serve": "claude mcp add harness -- mcp-harness serve",
    "export-skill": "mcp-harness export-skill coder --to .claude/skills",
}


def parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[str, argparse.ArgumentParser]]:
    """Every (command path, parser) of the tree under `parser`, `parser` itself as ""."""
    found = [(" ".join(path), parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += parsers(sub, (*path, name))
    return found


def add_examples(parser: argparse.ArgumentParser) -> None:
    """Put each command's example in its epilog."""
    for path, command in parsers(parser):
        if path in EXAMPLES:
            command.epilog = f"example: {EXAMPLES[path]}"
