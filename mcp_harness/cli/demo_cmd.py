"""`mcp-harness demo`: the main job, runnable with no API key.

Builds an experience tensor from the bundled sample of shell-command rows (through the same
JSONL importer users call), then answers a few questions from it with both retrieval methods.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from importlib import resources
from pathlib import Path

DEMO_QUERIES = (
    "what changed in git since the last commit",
    "run the python tests and stop on the first failure",
    "something is already listening on port 8080, kill it",
    "unpack this tar.gz archive",
    "how much disk space is left",
)


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="build experience from a bundled sample and query it")
    demo.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="write the experience here and keep it (default: a temp dir)",
    )
    demo.add_argument("-k", type=int, default=3, help="rows per query (default 3)")
    demo.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    if args.keep is not None:
        return _demo(args.keep.absolute(), args.k)
    with tempfile.TemporaryDirectory(prefix="mcp-harness-demo-") as tmp:
        return _demo(Path(tmp) / "shell-commands", args.k)


def _demo(target: Path, k: int) -> int:
    from mcp_harness.experience.importer import read_rows_jsonl
    from mcp_harness.experience.store import Experience

    sample = resources.files("mcp_harness.data").joinpath("sample_shell_rows.jsonl")
    with resources.as_file(sample) as sample_path:
        rows = read_rows_jsonl(sample_path, source="sample")
    started = time.perf_counter()
    experience = Experience.create(target)
    experience.append(rows)
    built = time.perf_counter() - started
    print(
        f"Built experience tensor [{len(experience)}, 3] at {experience.path} "
        f"in {built * 1000:.0f} ms (query | key | value files in the seed layout)\n"
    )
    for text in DEMO_QUERIES:
        print(f"? {text}")
        for method in ("jaccard", "bm25"):
            started = time.perf_counter()
            hits = experience.search(text, k=k, method=method)
            took = (time.perf_counter() - started) * 1000
            best = ", ".join(f"{h.row.value!r} ({h.score:.2f})" for h in hits) or "no match"
            print(f"  {method:7} {took:5.2f} ms  {best}")
        print()
    print("Next: `mcp-harness experience --help` to build your own.")
    return 0
