"""Shell-wrapper benchmark: latency the prefix wrapper adds to Claude Code's Bash commands.

Why: every Bash command Claude Code runs goes through the wrapper, so its cost is paid on every
call. Measured in one process run, each against plain `bash -c` spawned the way Claude Code
spawns (new session, stdin /dev/null, stdout and stderr on one O_APPEND file):

1. `true` through the wrapper (claim a pane, relay, screens before/after, record) vs `bash -c`;
2. 1 MB of output, same comparison (ratio);
3. pass-through (a hook or MCP launch string, exec'd straight into bash) vs `bash -c`;
4. 8 concurrent callers with distinct outputs: wrong outputs and latency.

Run: `.venv/bin/python benchmarks/shell_wrapper.py [--runs N]`. Uses a private tmux server and
data dir under /tmp, removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from mcp_harness.capture.prefix import prefix_path
from mcp_harness.terminal.pool import shutdown


def composite(cmd: str, cwd_file: str) -> str:
    quoted = "'" + cmd.replace("'", "'\"'\"'") + "'"
    return f"eval {quoted} \\< /dev/null && pwd -P >| {cwd_file}"


def spawn(argv: list[str], env: dict[str, str], sink: int) -> tuple[float, int]:
    start = time.perf_counter()
    code = subprocess.run(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, start_new_session=True
    ).returncode
    return (time.perf_counter() - start) * 1000, code


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def measure(argv: list[str], env: dict[str, str], runs: int, sink: int) -> tuple[float, float]:
    spawn(argv, env, sink)  # warm: the first call may start the pane
    return percentiles([spawn(argv, env, sink)[0] for _ in range(runs)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mh-bench-", dir="/tmp"))
    env = {
        **os.environ,
        "MCP_HARNESS_HOME": str(work / "home"),
        "MCP_HARNESS_RUNTIME_DIR": str(work / "rt"),
        "SHELL": "/bin/bash",
    }
    os.environ["MCP_HARNESS_RUNTIME_DIR"] = env["MCP_HARNESS_RUNTIME_DIR"]
    prefix = str(prefix_path(work / "home"))
    cwd_file = str(work / "cwd")
    sink = os.open(work / "out", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC)
    results: dict[str, dict[str, float]] = {}
    try:
        for name, cmd, runs in (
            ("true", "true", args.runs),
            ("1 MB", "head -c 1000000 /dev/zero | tr '\\0' a", args.runs // 4),
        ):
            line = composite(cmd, cwd_file)
            bash = measure(["/bin/bash", "-c", line], env, runs, sink)
            wrapped = measure([prefix, line], env, runs, sink)
            results[name] = {
                "bash_p50": bash[0],
                "bash_p95": bash[1],
                "wrapper_p50": wrapped[0],
                "wrapper_p95": wrapped[1],
                "added_p50": wrapped[0] - bash[0],
                "added_p95": wrapped[1] - bash[1],
                "ratio_p50": wrapped[0] / bash[0],
            }
        bash = measure(["/bin/bash", "-c", "true"], env, args.runs, sink)
        passed = measure([prefix, "true"], env, args.runs, sink)
        results["pass-through"] = {
            "bash_p50": bash[0],
            "bash_p95": bash[1],
            "wrapper_p50": passed[0],
            "wrapper_p95": passed[1],
            "added_p50": passed[0] - bash[0],
            "added_p95": passed[1] - bash[1],
            "ratio_p50": passed[0] / bash[0],
        }
        results["8 concurrent"] = concurrent(prefix, env, work, rounds=max(args.runs // 20, 3))
    finally:
        os.close(sink)
        shutdown(work / "rt")
        shutil.rmtree(work, ignore_errors=True)
    report(results, args.runs)


def concurrent(prefix: str, env: dict[str, str], work: Path, rounds: int) -> dict[str, float]:
    wrong = 0
    latencies: list[float] = []
    for round_ in range(rounds):
        outputs: dict[int, bytes] = {}

        def call(n: int, round_: int = round_, outputs: dict[int, bytes] = outputs) -> None:
            cmd = f"for i in $(seq 500); do echo r{round_}-job{n}-$i; done"
            start = time.perf_counter()
            done = subprocess.run(
                [prefix, composite(cmd, str(work / f"c{n}"))],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                start_new_session=True,
            )
            latencies.append((time.perf_counter() - start) * 1000)
            outputs[n] = done.stdout

        threads = [threading.Thread(target=call, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for n in range(8):
            expected = "".join(f"r{round_}-job{n}-{i}\n" for i in range(1, 501)).encode()
            wrong += outputs[n] != expected
    p50, p95 = percentiles(latencies)
    return {"calls": 8 * rounds, "wrong": wrong, "wrapper_p50": p50, "wrapper_p95": p95}


def report(results: dict[str, dict[str, float]], runs: int) -> None:
    print(
        f"shell wrapper benchmark | {os.cpu_count()} cores | tmux "
        f"{subprocess.run(['tmux', '-V'], capture_output=True, text=True).stdout.split()[-1]}"
        f" | {runs} runs (1 MB: {runs // 4})"
    )
    print(
        f"{'case':14}{'bash -c p50/p95 ms':>22}{'wrapper p50/p95 ms':>22}{'added p50/p95':>18}"
        f"{'ratio':>8}"
    )
    for name in ("true", "1 MB", "pass-through"):
        r = results[name]
        print(
            f"{name:14}{r['bash_p50']:>12.2f} /{r['bash_p95']:>7.2f}"
            f"{r['wrapper_p50']:>13.2f} /{r['wrapper_p95']:>7.2f}"
            f"{r['added_p50']:>10.2f} /{r['added_p95']:>6.2f}{r['ratio_p50']:>8.2f}"
        )
    c = results["8 concurrent"]
    print(
        f"8 concurrent: {c['calls']:.0f} calls, {c['wrong']:.0f} wrong outputs, "
        f"p50 {c['wrapper_p50']:.1f} ms, p95 {c['wrapper_p95']:.1f} ms"
    )
    targets = [
        ("added p50 for `true` <= 10 ms", results["true"]["added_p50"] <= 10),
        ("1 MB p50 <= 2x bash -c", results["1 MB"]["ratio_p50"] <= 2),
        ("pass-through added p50 <= 3 ms", results["pass-through"]["added_p50"] <= 3),
        ("zero wrong outputs under concurrency", c["wrong"] == 0),
    ]
    for label, ok in targets:
        print(f"  {'PASS' if ok else 'MISS'}  {label}")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
