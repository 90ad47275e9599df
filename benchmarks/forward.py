"""Forward-pass benchmark: how close a wide graph of expert elements gets to the ideal.

Why: an `ft_expert` element is one LLM call; a harness run is many of them, and the runtime's
job is to keep the kernel's concurrency limit full while adding as little as possible per
element. Measured in one process run:

1. 1,000 expert elements (`ft_const[1000] -> ft_expert`, each retrieving from a 1,000-row
   experience) against a kernel whose every call takes 100 ms (an `asyncio.sleep`), at
   concurrency 64: wall time vs the ideal ceil(1000 / 64) x 100 ms — how well the runtime keeps
   the concurrency limit full;
2. the same through the real OpenAI SDK against a loopback stub (another process) answering
   after 100 ms: what a user sees, including the SDK's own CPU time per request;
3. the same graph on a kernel that answers at once: the framework's own cost per element
   (evaluation, retrieval, prompt building, the runner's policy, writing the run).

Run: `.venv/bin/python benchmarks/forward.py [--elements N] [--concurrency C] [--delay S]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mcp_harness.experience.keywords import keywords_text
from mcp_harness.experience.store import Experience, Row
from mcp_harness.kernels.base import KernelReply, KernelRequest
from mcp_harness.kernels.openai_api import OpenAIKernel
from mcp_harness.kernels.runner import KernelRunner
from mcp_harness.runtime.future import FutureTensor, Run
from mcp_harness.runtime.ops import OPS

HERE = Path(__file__).parent


class LatencyKernel:
    """Answers after a fixed delay without doing any work (0 = at once)."""

    name = "latency"

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def complete(self, request: KernelRequest) -> KernelReply:
        if self.delay:
            await asyncio.sleep(self.delay)
        return KernelReply(f"ok {len(request.input)}")


def graph(elements: int) -> FutureTensor:
    texts = [f"run the tests for module m{i % 97} with verbose output" for i in range(elements)]
    const = FutureTensor(OPS["ft_const"](value=texts), name="tasks")
    return FutureTensor(
        OPS["ft_expert"](experience="cmd", task="Answer briefly."), [const], name="answers"
    )


async def measure(kernel: KernelRunner, experience: Experience, elements: int, work: Path) -> float:
    node = graph(elements)
    run = Run(work, kernel=kernel, experience={"cmd": experience})
    started = time.perf_counter()
    results = await run.forward(node)
    wall = time.perf_counter() - started
    bad = [e for e in results if not e.status.ok]
    if bad:
        raise SystemExit(f"{len(bad)} elements failed, e.g. {bad[0].text}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--elements", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mh-forward-") as tmp:
        root = Path(tmp)
        experience = Experience.create(root / "exp")
        experience.append(
            [
                Row(
                    keywords_text(f"run tests module m{i} verbose"),
                    f"run tests m{i}",
                    f"pytest -v tests/test_m{i}.py",
                )
                for i in range(1000)
            ]
        )
        sleeping = KernelRunner(LatencyKernel(args.delay), concurrency=args.concurrency)
        scheduled = asyncio.run(measure(sleeping, experience, args.elements, root / "run0"))
        stub = subprocess.Popen(
            [sys.executable, str(HERE / "llm_stub.py"), str(args.delay)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            port = int(stub.stdout.readline())
            remote = KernelRunner(
                OpenAIKernel(
                    api_key="sk-bench", base_url=f"http://127.0.0.1:{port}/v1", model="bench"
                ),
                concurrency=args.concurrency,
                retries=0,
            )
            wall = asyncio.run(measure(remote, experience, args.elements, root / "run1"))
        finally:
            stub.stdin.close()
            stub.wait(timeout=10)
        local = KernelRunner(LatencyKernel(0), concurrency=args.concurrency)
        framework = asyncio.run(measure(local, experience, args.elements, root / "run2"))
    ideal = math.ceil(args.elements / args.concurrency) * args.delay
    per_element_ms = framework / args.elements * 1000
    print(
        f"forward benchmark | {args.elements} expert elements | concurrency "
        f"{args.concurrency} | call latency {args.delay * 1000:.0f} ms | ideal {ideal:.3f} s"
    )
    print(
        f"  100 ms kernel (runtime scheduling): wall {scheduled:.3f} s = "
        f"{scheduled / ideal:.2f}x ideal"
    )
    print(f"  OpenAI SDK -> loopback stub:        wall {wall:.3f} s = {wall / ideal:.2f}x ideal")
    print(f"  framework cost per element (instant kernel): {per_element_ms:.3f} ms")
    print(f"  {'PASS' if per_element_ms <= 1 else 'MISS'}  overhead <= 1 ms per element")
    print(f"  {'PASS' if scheduled <= 1.2 * ideal else 'MISS'}  wall <= 1.2x ideal (runtime)")
    print(f"  {'PASS' if wall <= 1.2 * ideal else 'MISS'}  wall <= 1.2x ideal (with the SDK)")
    print(
        json.dumps(
            {
                "elements": args.elements,
                "concurrency": args.concurrency,
                "ideal_s": ideal,
                "runtime_wall_s": scheduled,
                "sdk_wall_s": wall,
                "framework_ms_per_element": per_element_ms,
            }
        )
    )


if __name__ == "__main__":
    main()
