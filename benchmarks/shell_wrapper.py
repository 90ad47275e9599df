"""Shell-wrapper benchmark: what the prefix wrapper costs Claude Code's Bash calls.

Why: every Bash command Claude Code runs goes through the wrapper, so its cost is paid on every
call. Each case runs Claude Code's exact composite string through `<prefix>` and through plain
`/bin/bash -c`, interleaved (bash, wrapper, wrapper, bash, …, so drift and warm-up hit both
alike), both spawned as Claude Code spawns (new session, a socket on stdin, stdout and stderr
on one fresh O_WRONLY|O_APPEND regular file per call); the figure is the median:

1. `true`: added latency (target <= 3 ms); also with recording off (`MCP_HARNESS_CAPTURE=0`:
   the wrapper is exec'd and execs the shell), which is the price of the extra exec alone;
2. 10 MB and 100 MB of output: ratio (target <= 1.2x);
3. a 100 KB command: ratio (target <= 1.5x);
4. pass-through (a hook or MCP launch string, exec'd straight into bash): added latency;
5. 8 concurrent callers with distinct outputs: wrong outputs and latency.

The session's mirror records each call after the wrapper has returned (read back, pane,
record). That work is not in the timings; the next spawn waits until the record is written so
it cannot land on either side, and how long after the call it was written is reported as the
record lag. Run: `.venv/bin/python benchmarks/shell_wrapper.py [--runs N]`. Uses a private tmux
server and data dir under /tmp, removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from mcp_harness.capture.prefix import prefix_path
from mcp_harness.terminal.pool import shutdown

SESSION = "benchmark-session"


def composite(cmd: str, cwd_file: Path, snapshot: Path) -> str:
    """Claude Code's composite string for `cmd` (reference/claude-code.md section 4)."""
    quoted = "'" + cmd.replace("'", "'\"'\"'") + "'"
    return (
        f"source {snapshot} 2>/dev/null || true && "
        "{ shopt -u extglob || setopt NO_EXTENDED_GLOB; } >/dev/null 2>&1 || true && "
        f"eval {quoted} < /dev/null && pwd -P >| {cwd_file}"
    )


class Bench:
    def __init__(self, work: Path, prefix: str) -> None:
        self.work, self.prefix = work, prefix
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TMUX")},
            "MCP_HARNESS_HOME": str(work / "home"),
            "MCP_HARNESS_RUNTIME_DIR": str(work / "rt"),
            "SHELL": "/bin/bash",
            "CLAUDECODE": "1",
            "CLAUDE_CODE_SESSION_ID": SESSION,
        }
        self.snapshot = work / "snapshot.sh"
        self.snapshot.write_text("alias ll='ls -l'\nexport SNAP=1\n")
        self.records = work / "home" / "capture" / "commands.jsonl"
        self.lags: list[float] = []

    def spawn(self, argv: list[str]) -> float:
        out_path = self.work / "out"
        out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        ours, theirs = socket.socketpair()
        try:
            start = time.perf_counter()
            proc = subprocess.Popen(
                argv,
                env=self.env,
                cwd=self.work,
                stdin=theirs.fileno(),
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
            proc.wait()
            elapsed = (time.perf_counter() - start) * 1000
        finally:
            os.close(out)
            ours.close()
            theirs.close()
            out_path.unlink()
        if proc.returncode != 0:
            raise SystemExit(f"{argv[0]} exited {proc.returncode}")
        return elapsed

    def recorded(self) -> int:
        return self.records.read_bytes().count(b"\n") if self.records.exists() else 0

    def wrapped(self, line: str) -> float:
        before = self.recorded()
        elapsed = self.spawn([self.prefix, line])
        done = time.perf_counter()
        deadline = done + 30
        while self.recorded() <= before:
            if time.perf_counter() > deadline:
                raise SystemExit("the mirror wrote no record within 30 s")
            time.sleep(0.0005)
        self.lags.append((time.perf_counter() - done) * 1000)
        return elapsed

    def compare(self, cmd: str, runs: int, record: bool = True) -> dict[str, float]:
        """Interleaved medians; `record=False` runs the wrapper with MCP_HARNESS_CAPTURE=0
        (what exec'ing the wrapper alone costs)."""
        line = composite(cmd, self.work / "cwd", self.snapshot)
        bash, wrapper = [], []
        self.wrapped(line)  # warm: the first call of a session starts its mirror
        self.spawn(["/bin/bash", "-c", line])
        through = self.wrapped if record else self.unrecorded
        for i in range(runs):
            order = (0, 1) if i % 2 == 0 else (1, 0)
            for which in order:
                if which == 0:
                    bash.append(self.spawn(["/bin/bash", "-c", line]))
                else:
                    wrapper.append(through(line))
        b, w = statistics.median(bash), statistics.median(wrapper)
        return {"runs": runs, "bash_p50": b, "wrapper_p50": w, "added_p50": w - b, "ratio": w / b}

    def unrecorded(self, line: str) -> float:
        self.env["MCP_HARNESS_CAPTURE"] = "0"
        try:
            return self.spawn([self.prefix, line])
        finally:
            del self.env["MCP_HARNESS_CAPTURE"]

    def pass_through(self, runs: int) -> dict[str, float]:
        bash, wrapper = [], []
        for i in range(runs):
            order = (0, 1) if i % 2 == 0 else (1, 0)
            for which in order:
                argv = ["/bin/bash", "-c", "true"] if which == 0 else [self.prefix, "true"]
                (bash if which == 0 else wrapper).append(self.spawn(argv))
        b, w = statistics.median(bash), statistics.median(wrapper)
        return {"runs": runs, "bash_p50": b, "wrapper_p50": w, "added_p50": w - b, "ratio": w / b}

    def concurrent(self, rounds: int) -> dict[str, float]:
        wrong = 0
        latencies: list[float] = []
        for round_ in range(rounds):
            outputs: dict[int, bytes] = {}

            def call(n: int, round_: int = round_, outputs: dict[int, bytes] = outputs) -> None:
                cmd = f"for i in $(seq 500); do echo r{round_}-job{n}-$i; done"
                start = time.perf_counter()
                done = subprocess.run(
                    [self.prefix, composite(cmd, self.work / f"c{n}", self.snapshot)],
                    env=self.env,
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
        ordered = sorted(latencies)
        return {
            "calls": 8 * rounds,
            "wrong": wrong,
            "wrapper_p50": statistics.median(ordered),
            "wrapper_p95": ordered[int(0.95 * (len(ordered) - 1))],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="runs of `true` (others scaled)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mh-bench-", dir="/tmp"))
    bench = Bench(work, str(prefix_path(work / "home")))
    runs = args.runs
    results: dict[str, dict[str, float]] = {}
    try:
        results["true"] = bench.compare("true", runs)
        results["true, rec. off"] = bench.compare("true", runs, record=False)
        results["10 MB"] = bench.compare("head -c 10000000 /dev/zero | tr '\\0' b", runs // 8)
        results["100 MB"] = bench.compare("head -c 100000000 /dev/zero | tr '\\0' b", runs // 40)
        results["100 KB cmd"] = bench.compare("echo " + "x" * 100_000 + " >/dev/null", runs // 2)
        results["pass-through"] = bench.pass_through(runs)
        lags = sorted(bench.lags)
        results["record lag"] = {
            "calls": len(lags),
            "p50": statistics.median(lags),
            "p95": lags[int(0.95 * (len(lags) - 1))],
        }
        results["8 concurrent"] = bench.concurrent(max(runs // 20, 3))
    finally:
        shutdown(work / "rt")
        shutil.rmtree(work, ignore_errors=True)
    report(results)


def report(results: dict[str, dict[str, float]]) -> None:
    tmux = subprocess.run(["tmux", "-V"], capture_output=True, text=True).stdout.split()[-1]
    load = os.getloadavg()[0]
    print(
        f"shell wrapper benchmark | {os.cpu_count()} cores, load {load:.1f} | tmux {tmux}"
        " | interleaved medians"
    )
    print(f"{'case':14}{'runs':>6}{'bash -c ms':>12}{'wrapper ms':>12}{'added ms':>10}{'ratio':>8}")
    for name in ("true", "true, rec. off", "10 MB", "100 MB", "100 KB cmd", "pass-through"):
        r = results[name]
        print(
            f"{name:14}{r['runs']:>6.0f}{r['bash_p50']:>12.2f}{r['wrapper_p50']:>12.2f}"
            f"{r['added_p50']:>10.2f}{r['ratio']:>8.2f}"
        )
    lag = results["record lag"]
    print(
        f"record lag (wrapper exit -> record written): p50 {lag['p50']:.1f} ms, "
        f"p95 {lag['p95']:.1f} ms over {lag['calls']:.0f} calls"
    )
    c = results["8 concurrent"]
    print(
        f"8 concurrent: {c['calls']:.0f} calls, {c['wrong']:.0f} wrong outputs, "
        f"p50 {c['wrapper_p50']:.1f} ms, p95 {c['wrapper_p95']:.1f} ms"
    )
    targets = [
        ("added p50 for `true` <= 3 ms", results["true"]["added_p50"] <= 3),
        ("10 MB output <= 1.2x bash -c", results["10 MB"]["ratio"] <= 1.2),
        ("100 MB output <= 1.2x bash -c", results["100 MB"]["ratio"] <= 1.2),
        ("100 KB command <= 1.5x bash -c", results["100 KB cmd"]["ratio"] <= 1.5),
        ("zero wrong outputs under concurrency", c["wrong"] == 0),
    ]
    for label, ok in targets:
        print(f"  {'PASS' if ok else 'MISS'}  {label}")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
