"""Kernel calls saved by speculative multi-action dispatch (`ft_tmux_speculative_run`).

One task, whose right command is the K-th candidate the experience knows. The loop coder asks
the expert once per attempt (`ft_recurrent` over expert -> `ft_tmux_run` -> exit-status
check; the offline kernel offers the next distinct candidate each time); the speculative coder
asks once for every candidate and tries them in order in one element. Both run for real on a
private tmux server; the script prints the kernel calls and seconds of each.

`--coder`: the built-in coder, whose command expert asks for 4 candidates per call and whose
retry loop tries them in order before asking again. The learning benchmark's protocol
(`benchmarks/learning.py`: bundled harvested experience, held-out tasks, training on the
"train" split gated by "val", held-out tasks again) runs twice from scratch: with the offline
kernel (one answer per call) and with the offline kernel offering its next answers in the same
call (`kernels.base.successive`). It prints the kernel calls per phase and checks that every
task ran the same commands with the same outcome.

    python benchmarks/speculative.py [--candidates 4] [--coder]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from mcp_harness import (
    Session,
    ft_const,
    ft_expand,
    ft_expert,
    ft_recurrent,
    ft_tmux_create_session,
    ft_tmux_run,
    ft_tmux_speculative_run,
    ft_unsqueeze,
    ft_validate_exit_status,
    make_tensor,
)
from mcp_harness.kernels.base import successive
from mcp_harness.kernels.offline import OfflineKernel
from mcp_harness.kernels.runner import KernelRunner

TASK = "show the project notes"


def candidates(count: int) -> list[str]:
    """count - 1 commands that fail, then the one that works."""
    return [f"cat notes-{i}.txt" for i in range(count - 1)] + ["cat notes.txt"]


def loop_coder(root: Path, work: Path, count: int):
    rows = [[f"notes\nshow\nv{i}", TASK, c] for i, c in enumerate(candidates(count))]
    exp = make_tensor(rows, root, name="loop_cmd")
    task = ft_expand(ft_unsqueeze(ft_const([TASK]), -1), [1, count])
    session = ft_expand(
        ft_unsqueeze(ft_tmux_create_session(ft_const([str(work)]), name="loop"), -1), [1, count]
    )
    command = ft_expert(task, exp, topk=count)
    return ft_recurrent(ft_validate_exit_status(ft_tmux_run(command, session)))


def speculative_coder(root: Path, work: Path, count: int):
    exp = make_tensor([["notes\nshow", TASK, "\n".join(candidates(count))]], root, name="spec")
    command = ft_expert(ft_const([TASK]), exp)
    session = ft_tmux_create_session(ft_const([str(work)]), name="spec")
    return ft_tmux_speculative_run(command, session)


class Counted(OfflineKernel):
    """The offline kernel, counting its calls (it reports no usage: it costs nothing)."""

    calls = 0

    async def complete(self, request):
        self.calls += 1
        return await super().complete(request)


class Offering(Counted):
    """Counted, offering up to the request's `candidates` answers per call."""

    async def complete(self, request):
        self.calls += 1
        return successive(self.answer, request)


async def _coder_session(root: Path, kernel: Counted, tasks) -> dict:
    import learning

    from mcp_harness import demo

    trainer, _ = demo.coder_trainer(root, KernelRunner(kernel))
    split = {s: [t.example for t in tasks if t.split == s] for s in ("train", "val", "heldout")}
    calls, outcomes = {}, {}
    for phase in ("held-out before", "training", "held-out after"):
        start = kernel.calls
        if phase == "training":
            await trainer.fit(split["train"], learning.EPOCHS, learning.BATCH, val=split["val"])
        else:
            outcomes[phase] = await learning.outcomes(trainer, split["heldout"])
        calls[phase] = kernel.calls - start
    return {"calls": calls, "outcomes": outcomes}


def coder() -> int:
    """The built-in coder with and without candidates offered (see the module doc)."""
    import asyncio

    from mcp_harness import demo
    from mcp_harness.terminal.pool import shutdown
    from mcp_harness.training.tasksets import bundled, load_task_set

    tasks = load_task_set(bundled())
    results = {}
    for name, kernel in (("one answer per call", Counted()), ("candidates offered", Offering())):
        root = Path(tempfile.mkdtemp(prefix="mh-spec-coder-", dir="/tmp"))
        os.environ["MCP_HARNESS_RUNTIME_DIR"] = str(root / "rt")
        try:
            with demo._home(root / "home"):
                results[name] = asyncio.run(_coder_session(root, kernel, tasks))
        finally:
            shutdown(root / "rt")
            shutil.rmtree(root, ignore_errors=True)
    plain, offered = results.values()
    print(f"coder, offline kernel, {bundled().name} | calls per phase")
    for phase, before in plain["calls"].items():
        after = offered["calls"][phase]
        saved = before - after
        print(f"{phase:16} {before:5} -> {after:5}  saved {saved} ({saved / before:.0%})")
    total_b, total_a = sum(plain["calls"].values()), sum(offered["calls"].values())
    print(f"{'total':16} {total_b:5} -> {total_a:5}  saved {total_b - total_a}")
    same = plain["outcomes"] == offered["outcomes"]
    print(f"{'PASS' if same else 'MISS'}  same commands and outcomes on every held-out task")
    print(json.dumps({name: r["calls"] for name, r in results.items()}))
    return 0 if same else 1


def measure(build, root: Path, work: Path, count: int) -> dict:
    output = build(root, work, count)
    kernel = Counted()
    started = time.perf_counter()
    with Session(kernel=KernelRunner(kernel)) as session:
        session.forward(output)
        [element] = session.elements(output)
    seconds = time.perf_counter() - started
    return {"passed": element.status.ok, "calls": kernel.calls, "seconds": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--coder", action="store_true", help="the built-in coder (minutes)")
    args = parser.parse_args()
    if args.coder:
        return coder()
    runtime = Path(tempfile.mkdtemp(prefix="mh-spec-", dir="/tmp"))
    os.environ["MCP_HARNESS_RUNTIME_DIR"] = str(runtime)
    os.environ.setdefault("MCP_HARNESS_HOME", str(runtime / "home"))
    try:
        with tempfile.TemporaryDirectory() as scratch:
            work = Path(scratch) / "work"
            work.mkdir()
            (work / "notes.txt").write_text("the notes\n")
            results = {
                name: measure(build, Path(scratch) / name, work, args.candidates)
                for name, build in [("loop", loop_coder), ("speculative", speculative_coder)]
            }
    finally:
        from mcp_harness.terminal.pool import shutdown

        shutdown(runtime)
        shutil.rmtree(runtime, ignore_errors=True)
    for name, r in results.items():
        print(f"{name:12} passed={r['passed']} kernel calls={r['calls']} {r['seconds']:.2f} s")
    saved = results["loop"]["calls"] - results["speculative"]["calls"]
    print(f"speculative dispatch saved {saved} of {results['loop']['calls']} kernel calls")
    print(json.dumps(results))
    return 0 if all(r["passed"] for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
