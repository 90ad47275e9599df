"""Start-up benchmark: what a user waits for before mcp-harness answers.

Why: issue 17 sets `mcp-harness serve` within 1.1x of a hello server on the same MCP SDK, and
`mcp-harness --help` and `mcp-harness paths` within 150 ms. Measured in one run, interleaved
(every round runs each command once), medians of wall time from spawn:

- `--help`, `paths`: until the process exits;
- `serve` and the hello server (an `MCPServer` with one tool, `run()` on stdio): until the
  answer to `initialize` and then to `tools/list` has been read from stdout (the client's
  first round trips), then stdin is closed;
- `python -c pass` as the floor.

The package's bytecode is compiled first (`compileall`), as an installed package's is.

Run: `.venv/bin/python benchmarks/startup.py [--rounds N]`.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HELLO = """
from mcp.server import MCPServer

server = MCPServer("hello")


@server.tool()
def hello(name: str) -> str:
    \"\"\"Say hello.\"\"\"
    return f"hello {name}"


server.run()
"""
_REQUESTS = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "startup-bench", "version": "0"},
        },
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
]


def exit_time(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def serve_time(command: list[str], env: dict[str, str]) -> float:
    """Spawn a stdio MCP server; time until the tools/list answer arrives."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write("".join(json.dumps(r) + "\n" for r in _REQUESTS))
        proc.stdin.flush()
        while True:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{command}: exited before answering tools/list")
            if json.loads(line).get("id") == 2:
                break
        elapsed = time.perf_counter() - start
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    return elapsed


def run(rounds: int) -> dict:
    home = tempfile.mkdtemp(prefix="mcp-harness-startup-")
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "MCP_HARNESS_HOME": home, "PYTHONPATH": repo}
    # bytecode, as an installed package has: with PYTHONDONTWRITEBYTECODE set every spawn
    # would otherwise compile every module again
    compileall.compile_dir(Path(repo) / "mcp_harness", quiet=1)
    py = sys.executable
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as hello:
        hello.write(HELLO)
    commands = {
        "python -c pass": (exit_time, [py, "-c", "pass"]),
        "mcp-harness --help": (exit_time, [py, "-m", "mcp_harness", "--help"]),
        "mcp-harness paths": (exit_time, [py, "-m", "mcp_harness", "paths"]),
        "hello server (same SDK)": (serve_time, [py, hello.name]),
        "mcp-harness serve": (serve_time, [py, "-m", "mcp_harness", "serve"]),
    }
    for measure, command in commands.values():  # warm the page cache
        measure(command, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, (measure, command) in commands.items():
            times[name].append(measure(command, env))
    os.unlink(hello.name)
    median = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    ratio = median["mcp-harness serve"] / median["hello server (same SDK)"]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "rounds": rounds,
        "median_ms": median,
        "targets": [
            {"target": "serve / hello server <= 1.1", "measured": ratio, "pass": ratio <= 1.1},
            *(
                {"target": f"{name} <= 150 ms", "measured": median[name], "pass": ms <= 150}
                for name, ms in median.items()
                if name in ("mcp-harness --help", "mcp-harness paths")
            ),
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    args = parser.parse_args(argv)
    result = run(args.rounds)
    print(f"start-up benchmark {result['date']} | {result['machine']} | {args.rounds} rounds")
    for name, ms in result["median_ms"].items():
        print(f"  {name:<28} {ms:>8.1f} ms")
    for t in result["targets"]:
        print(f"  {t['target']:<36} {t['measured']:>8.2f}  {'PASS' if t['pass'] else 'MISS'}")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
