"""Forward-pass benchmark: how close a wide graph of expert elements gets to the ideal.

Why: an `ft_expert` element is one LLM call; a harness run is many of them, and the runtime's
job is to keep the kernel's concurrency limit full while adding as little as possible per
element. Measured in one process run:

1. 1,000 expert elements (`ft_const[1000] -> ft_expert`, each retrieving from a 1,000-row
   experience) through the real OpenAI SDK against a loopback stub that answers after 100 ms,
   at concurrency 64: wall time vs the ideal ceil(1000 / 64) x 100 ms;
2. the same graph on an in-process kernel that answers at once: the framework's own cost per
   element (evaluation, retrieval, prompt building, element files, the runner's policy).

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


class InstantKernel:
    """Answers at once: isolates the framework's cost from the LLM's latency."""

    name = "instant"

    async def complete(self, request: KernelRequest) -> KernelReply:
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
        local = KernelRunner(InstantKernel(), concurrency=args.concurrency)
        framework = asyncio.run(measure(local, experience, args.elements, root / "run2"))
    ideal = math.ceil(args.elements / args.concurrency) * args.delay
    per_element_ms = framework / args.elements * 1000
    print(
        f"forward benchmark | {args.elements} expert elements | concurrency "
        f"{args.concurrency} | stub latency {args.delay * 1000:.0f} ms"
    )
    print(f"  wall {wall:.3f} s vs ideal {ideal:.3f} s -> {wall / ideal:.2f}x ideal")
    print(
        f"  framework cost per element (instant kernel): {per_element_ms:.3f} ms "
        f"({framework:.3f} s for {args.elements})"
    )
    print(f"  {'PASS' if per_element_ms <= 1 else 'MISS'}  overhead <= 1 ms per element")
    print(f"  {'PASS' if wall <= 1.2 * ideal else 'MISS'}  wall <= 1.2x ideal")
    print(
        json.dumps(
            {
                "elements": args.elements,
                "concurrency": args.concurrency,
                "wall_s": wall,
                "ideal_s": ideal,
                "ratio": wall / ideal,
                "framework_ms_per_element": per_element_ms,
            }
        )
    )


if __name__ == "__main__":
    main()
