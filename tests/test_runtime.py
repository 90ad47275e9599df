"""The FutureTensor engine: lazy pulls, at-most-once elements, concurrency, cancellation,
control flow, shape contracts and per-element gradients."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mcp_harness.errors import HarnessError
from mcp_harness.experience.store import Experience, Row
from mcp_harness.kernels.offline import OfflineKernel
from mcp_harness.runtime.future import Element, FutureTensor, Run
from mcp_harness.runtime.graph import build
from mcp_harness.runtime.ops import OPS, Op, ShapeError
from mcp_harness.runtime.status import CONTEXT_OVERFLOW, NOT_BOUNDED, Status


class Probe(Op):
    """Test probe: element text from a table, counting how often each element is computed."""

    name = "probe"

    def __init__(self, table: dict, gate: asyncio.Event | None = None) -> None:
        super().__init__()
        self.table, self.gate, self.calls, self.started, self.cancelled = table, gate, [], 0, 0

    def infer_shape(self, shapes, node):
        return shapes[0] if shapes else (len(self.table),)

    async def element(self, run, node, coords, trajectory):
        self.calls.append((coords, trajectory))
        self.started += 1
        if self.gate is not None:
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        text, status = self.table[coords]
        return Element(text, status)


def node(op_name: str, *inputs: FutureTensor, **args) -> FutureTensor:
    return FutureTensor(OPS[op_name](**args), inputs)


def ok(text: str) -> tuple[str, Status]:
    return text, Status.confidence(1.0)


def test_status_encoding() -> None:
    for status in (
        Status.confidence(0.0),
        Status.confidence(0.9),
        Status.failed(0.25),
        NOT_BOUNDED,
        CONTEXT_OVERFLOW,
    ):
        assert Status.decode(status.encode()) == status
    assert Status.confidence(0.9).encode() == pytest.approx(0.9, abs=1e-9)  # no bfloat16
    assert Status.failed(0).encode() < 0  # failed never encodes as 0


def test_confidence_zero_is_computed_not_pending(tmp_path: Path) -> None:
    probe = Probe({(0,): ("zero", Status.confidence(0.0))})
    leaf = FutureTensor(probe)
    run = Run(tmp_path)
    asyncio.run(run.forward(leaf))
    asyncio.run(run.forward(leaf))
    assert len(probe.calls) == 1  # the seed recomputed confidence(0) elements forever


def test_each_element_computed_once_even_when_pulled_concurrently(tmp_path: Path) -> None:
    probe = Probe({(i,): ok(f"e{i}") for i in range(3)})
    source = FutureTensor(probe)
    twice = node("ft_format", source, source, template="{0}+{1}")
    also = node("ft_format", source, template="[{0}]")
    run = Run(tmp_path)

    async def both():
        return await asyncio.gather(run.forward(twice), run.forward(also))

    first, second = asyncio.run(both())
    assert [e.text for e in first] == ["e0+e0", "e1+e1", "e2+e2"]
    assert [e.text for e in second] == ["[e0]", "[e1]", "[e2]"]
    assert sorted(c for c, _ in probe.calls) == [(0,), (1,), (2,)]
    assert (tmp_path / twice.name / "storage" / "1" / "data").read_text() == "e1+e1"


def test_elements_run_concurrently_and_timeouts_cancel(tmp_path: Path) -> None:
    gate = asyncio.Event()
    probe = Probe({(i,): ok(str(i)) for i in range(8)}, gate)
    source = FutureTensor(probe)
    run = Run(tmp_path)

    async def scenario():
        task = asyncio.ensure_future(run.forward(source))
        while probe.started < 8:  # all eight are in flight before any finishes
            await asyncio.sleep(0)
        gate.set()
        return await task

    assert len(asyncio.run(scenario())) == 8
    blocked = Probe({(i,): ok(str(i)) for i in range(3)}, asyncio.Event())
    with pytest.raises(HarnessError, match=r"timed out after 0\.05 s"):
        asyncio.run(Run(tmp_path / "b").forward(FutureTensor(blocked), timeout=0.05))
    assert blocked.cancelled == 3


def test_switch_pulls_only_the_chosen_branch(tmp_path: Path) -> None:
    cond = FutureTensor(Probe({(0,): ok("keys: C-c"), (1,): ok("ls -la"), (2,): ok("??")}))
    keys = FutureTensor(Probe({(i,): ok(f"pressed{i}") for i in range(3)}))
    runs = FutureTensor(Probe({(i,): ok(f"ran{i}") for i in range(3)}))
    switch = node("ft_switch", cond, keys, runs, cases=["keys:", "ls"])
    run = Run(tmp_path)
    out = asyncio.run(run.forward(switch))
    assert [e.text for e in out[:2]] == ["pressed0", "ran1"]
    assert not out[2].status.ok and "no case of ['keys:', 'ls'] matches '??'" in out[2].text
    assert [c for c, _ in keys.op.calls] == [(0,)] and [c for c, _ in runs.op.calls] == [(1,)]
    with_default = node("ft_switch", cond, keys, runs, cases=["keys:", "ls"], default=1)
    assert asyncio.run(Run(tmp_path / "d").forward(with_default))[2].text == "ran2"


def test_sequential_returns_early_on_failure(tmp_path: Path) -> None:
    first = FutureTensor(Probe({(0,): ok("a"), (1,): ("bad", Status.failed(0.3))}))
    second = FutureTensor(Probe({(0,): ok("b"), (1,): ok("never")}))
    out = asyncio.run(Run(tmp_path).forward(node("ft_sequential", first, second)))
    assert [(e.text, e.status.ok) for e in out] == [("b", True), ("bad", False)]
    assert [c for c, _ in second.op.calls] == [(0,)]


def test_recurrent_stops_at_first_confident_iteration(tmp_path: Path) -> None:
    table = {
        (0, 0): ("try1", Status.failed(0.2)),
        (0, 1): ("try2", Status.failed(0.6)),
        (0, 2): ok("done"),
        (0, 3): ok("unused"),
        (1, 0): ("x", Status.failed(0.1)),
        (1, 1): ("best", Status.failed(0.7)),
        (1, 2): ("y", Status.failed(0.4)),
        (1, 3): ("z", Status.failed(0.3)),
    }
    probe = Probe(table)
    steps = FutureTensor(probe)
    steps.shape = (2, 4)
    loop = node("ft_recurrent", steps)
    assert loop.shape == (2,)
    out = asyncio.run(Run(tmp_path).forward(loop))
    assert (out[0].text, out[0].meta["iterations"]) == ("done", 3)
    assert (out[1].text, out[1].status, out[1].meta["winner"]) == ("best", Status.failed(0.7), 1)
    assert (0, 3) not in [c for c, _ in probe.calls]
    third = dict(probe.calls)[(0, 2)]
    assert "====[Iteration 0]====" in third and "try2" in third  # failed attempts are shown


def test_gradients_are_per_element(tmp_path: Path) -> None:
    const = node("ft_const", value=[["a", "b", "c"], ["d", "e", "f"]])
    sliced = node("ft_slice", const, index=[":", "1:3"])
    expanded = node("ft_expand", node("ft_unsqueeze", sliced, dim=0), shape=[3, -1, -1])
    loss = node("ft_mean", expanded)
    run = Run(tmp_path)
    asyncio.run(run.forward(loss))
    value = run.coefficients(loss)
    value.backward()
    assert value.item() == pytest.approx(1.0)
    assert run.coefficients(const).grad.tolist() == [[0.0, 0.25, 0.25], [0.0, 0.25, 0.25]]


def test_switch_and_recurrent_route_gradients(tmp_path: Path) -> None:
    cond = node("ft_const", value=[["run", "keys", "run"]])
    left = node("ft_const", value=[["l0", "l1", "l2"]])
    right = node("ft_const", value=[["r0", "r1", "r2"]])
    switch = node("ft_switch", cond, left, right, cases=["keys", "run"])
    loss = node("ft_mean", node("ft_recurrent", switch))
    run = Run(tmp_path)
    asyncio.run(run.forward(loss))
    run.coefficients(loss).backward()
    assert run.coefficients(right).grad.tolist() == [[1.0, 0.0, 0.0]]  # iteration 0 won
    assert run.coefficients(left).grad.tolist() == [[0.0, 0.0, 0.0]]


def test_expert_retrieves_then_asks_the_kernel(tmp_path: Path) -> None:
    experience = Experience.create(tmp_path / "exp")
    experience.append([Row("list\nfiles", "list files", "ls -la")])
    task = node("ft_const", value=["please list the files", "reboot the moon"])
    expert = node("ft_expert", task, experience="cmd")
    run = Run(tmp_path / "run", kernel=OfflineKernel(), experience={"cmd": experience})
    out = asyncio.run(run.forward(expert))
    assert (out[0].text, out[0].status.ok, out[0].meta["rows"]) == ("ls -la", True, [0])
    assert not out[1].status.ok and "no experience row" in out[1].text


def test_expert_reads_as_many_rows_as_the_kernel_behind_its_runner_asks(tmp_path: Path) -> None:
    """A kernel that judges rows itself (offline reads 16) gets that many through the runner
    every configured kernel is wrapped in, not just the expert's topk."""
    from mcp_harness.kernels.base import KernelReply
    from mcp_harness.kernels.runner import KernelRunner

    class Reader:
        name, reads = "reader", 6

        def __init__(self) -> None:
            self.seen: list[int] = []

        async def complete(self, request):
            self.seen.append(len(request.examples))
            return KernelReply("ok")

    experience = Experience.create(tmp_path / "exp")
    experience.append([Row(f"list\nfiles{i}", f"list files {i}", f"ls {i}") for i in range(10)])
    kernel = Reader()
    expert = node("ft_expert", node("ft_const", value=["list the files"]), experience="cmd", topk=2)
    run = Run(tmp_path / "run", kernel=KernelRunner(kernel), experience={"cmd": experience})
    asyncio.run(run.forward(expert))
    assert kernel.seen == [6]


GRAPH = {
    "dims": {"n": 2},
    "experience": {"cmd": "x"},
    "nodes": [
        {"id": "a", "op": "ft_const", "args": {"value": ["x", "y"]}},
        {"id": "b", "op": "ft_expand", "inputs": ["a"], "args": {"shape": [3, "n"]}},
        {"id": "c", "op": "ft_expert", "inputs": ["b"], "args": {"experience": "cmd"}},
    ],
    "output": "c",
}


def variant(**changes) -> dict:
    spec = {**GRAPH, "nodes": [dict(n) for n in GRAPH["nodes"]]}
    for index, patch in changes.get("nodes", {}).items():
        spec["nodes"][index].update(patch)
    return {**spec, **{k: v for k, v in changes.items() if k != "nodes"}}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (variant(nodes={1: {"op": "ft_nope"}}), "node 'b': unknown op 'ft_nope'"),
        (
            variant(nodes={1: {"args": {"shape": [3, 4]}}}),
            "node 'b' (ft_expand): input shape [2] cannot expand to [3, 4]",
        ),
        (
            variant(nodes={2: {"inputs": ["a", "b"]}}),
            "node 'c' (ft_expert) takes 1 input(s), got 2",
        ),
        (variant(nodes={2: {"inputs": ["zz"]}}), "node 'c' refers to unknown node 'zz'"),
        (
            variant(nodes={0: {"inputs": ["c"], "op": "ft_format", "args": {"template": "{0}"}}}),
            "depends on itself",
        ),
        (
            variant(nodes={2: {"args": {"experience": "other"}}}),
            "node 'c': experience 'other' is not declared",
        ),
        (
            variant(nodes={2: {"args": {"experience": "cmd", "topk": "4"}}}),
            "argument 'topk' must be int, got str",
        ),
        (variant(nodes={1: {"args": {"shape": [3, "m"]}}}), "node 'b': unknown dim 'm'"),
        (variant(output="nowhere"), "output is unknown node 'nowhere'"),
    ],
)
def test_bad_graphs_are_rejected_before_running(spec: dict, message: str) -> None:
    with pytest.raises(HarnessError) as info:
        build(spec)
    assert message in str(info.value)
    assert info.value.fix


def test_shape_mismatch_names_both_shapes() -> None:
    spec = {
        "nodes": [
            {"id": "a", "op": "ft_const", "args": {"value": ["x", "y"]}},
            {"id": "b", "op": "ft_const", "args": {"value": ["x", "y", "z"]}},
            {"id": "c", "op": "ft_sequential", "inputs": ["a", "b"]},
        ],
        "output": "c",
    }
    with pytest.raises(
        ShapeError,
        match=r"node 'c' \(ft_sequential\): input 0 has shape \[2\] "
        r"but input 1 has shape \[3\]",
    ):
        build(spec)


def test_dims_bind_at_run_time() -> None:
    assert build(GRAPH).output.shape == (3, 2)
    assert build(variant(nodes={0: {"args": {"value": ["x"]}}}), dims={"n": 5}).output.shape == (
        3,
        5,
    )


class CountingKernel:
    """A billable kernel that answers at once (the budget counts its calls)."""

    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request):
        from mcp_harness.kernels.base import KernelReply, Usage

        self.calls += 1
        return KernelReply(f"answer {self.calls}", usage=Usage(10, 5, 1, 0.0))


def test_a_run_over_budget_stops_cleanly_and_says_what_it_spent(tmp_path: Path) -> None:
    from mcp_harness.kernels.runner import Budget, BudgetExceeded, KernelRunner

    experience = Experience.create(tmp_path / "exp")
    experience.append([Row("a", "a", "b")])
    kernel = CountingKernel()
    runner = KernelRunner(kernel, concurrency=1, budget=Budget(max_calls=3))
    tasks = node("ft_const", value=[f"task {i}" for i in range(6)])
    expert = node("ft_expert", tasks, experience="cmd")
    run = Run(tmp_path / "run", kernel=runner, experience={"cmd": experience})
    with pytest.raises(BudgetExceeded, match="spent 3 calls") as info:
        asyncio.run(run.forward(expert))
    assert "max_calls" in info.value.fix or "max_calls" in info.value.message
    assert kernel.calls == 3
    done = [i for i in range(6) if run.element(expert, (i,)) is not None]
    assert len(done) == 3
    assert (tmp_path / "run" / expert.name / "statuses.json").is_file()  # results kept


def test_gradients_through_sequential_format_and_expert(tmp_path: Path) -> None:
    experience = Experience.create(tmp_path / "exp")
    experience.append([Row("alpha", "alpha", "A")])
    first = node("ft_const", value=["alpha", "zzz"])
    second = node("ft_const", value=["b", "c"])
    joined = node("ft_format", first, template="{0}")
    expert = node("ft_expert", joined, experience="e")
    sequence = node("ft_sequential", expert, second)
    loss = node("ft_mean", sequence)
    run = Run(tmp_path / "run", kernel=OfflineKernel(), experience={"e": experience})
    asyncio.run(run.forward(loss))
    run.coefficients(loss).backward()
    # Element 0: the expert answered, so both inputs of the sequence were evaluated (1/2 each);
    # element 1: the expert failed and the sequence stopped there (second gets nothing).
    assert run.coefficients(second).grad.tolist() == [0.5, 0.0]
    assert run.coefficients(first).grad.tolist() == [0.5, 0.5]


def test_run_files_are_redacted(tmp_path: Path) -> None:
    key = "sk-ant-api03-" + "Q7w" * 30
    shown = node(
        "ft_format", node("ft_const", value=[f"export ANTHROPIC_API_KEY={key}"]), template="$ {0}"
    )
    run = Run(tmp_path)
    [element] = asyncio.run(run.forward(shown))
    assert key in element.text  # in memory the run sees the real text
    stored = (tmp_path / shown.name / "storage" / "0" / "data").read_text()
    assert key not in stored and "[REDACTED]" in stored


class LoggedExperience:
    """An experience stub that logs each retrieval: the start of an expert's preparation."""

    def __init__(self, log: list[tuple[str, str]]) -> None:
        self.log = log

    def search(self, text: str, k: int = 4, method: str = "jaccard") -> list:
        self.log.append(("prepare", text))
        return []


class TurnsKernel:
    """A kernel whose every call stays in flight for a fixed number of event-loop turns (no
    clock involved), logging when each call starts and ends."""

    name = "turns"

    def __init__(self, log: list[tuple[str, str]], turns: int) -> None:
        self.log, self.turns = log, turns

    async def complete(self, request):
        from mcp_harness.kernels.base import KernelReply

        self.log.append(("start", request.input))
        for _ in range(self.turns):
            await asyncio.sleep(0)
        self.log.append(("end", request.input))
        return KernelReply(f"done {request.input}")


def test_experts_prepare_requests_ahead_while_calls_are_in_flight(tmp_path: Path) -> None:
    """With a limit of N calls, the preparation of element N+1 (retrieval, adapting rows) runs
    while the first N calls are in flight; each call starts as soon as its own request is ready
    (not after everyone's), and at most N requests wait prepared ahead of the calls."""
    from mcp_harness.kernels.runner import KernelRunner

    limit, count = 2, 8
    log: list[tuple[str, str]] = []
    runner = KernelRunner(TurnsKernel(log, turns=20), concurrency=limit)
    tasks = node("ft_const", value=[f"t{i}" for i in range(count)])
    expert = node("ft_expert", tasks, experience="cmd")
    run = Run(tmp_path / "run", kernel=runner, experience={"cmd": LoggedExperience(log)})
    out = asyncio.run(run.forward(expert))
    assert [e.text for e in out] == [f"done t{i}" for i in range(count)]

    at = {event: position for position, event in enumerate(log)}
    # The first call starts before the second element prepares: nobody waits for the rest.
    assert at["start", "t0"] < at["prepare", "t1"]
    # Element N+1 (t2) is prepared while the first N calls are in flight ...
    first = [f"t{i}" for i in range(limit)]
    assert max(at["start", t] for t in first) < at["prepare", "t2"]
    assert at["prepare", "t2"] < min(at["end", t] for t in first)
    # ... and starts its call once a slot frees, before any further preparation.
    freed = min(at["end", t] for t in first)
    assert freed < at["start", "t2"] < at["prepare", f"t{2 * limit}"]
    in_flight = ahead = 0
    for kind, _ in log:
        in_flight += {"start": 1, "end": -1}.get(kind, 0)
        ahead += {"prepare": 1, "start": -1}.get(kind, 0)
        assert in_flight <= limit  # the concurrency limit holds
        assert ahead <= limit  # at most N prepared requests wait for a slot


def test_a_cancelled_run_leaves_the_lookahead_and_the_limit_free(tmp_path: Path) -> None:
    """Elements cancelled while in flight, prepared or waiting to prepare give their places
    back: the same runner serves the next run at its full limit."""
    from mcp_harness.kernels.base import KernelReply
    from mcp_harness.kernels.runner import KernelRunner

    class Held:
        name = "held"

        def __init__(self) -> None:
            self.started = asyncio.Event()
            self.hold = True

        async def complete(self, request):
            self.started.set()
            while self.hold:
                await asyncio.Event().wait()  # never set: only cancellation ends it
            return KernelReply(f"done {request.input}")

    kernel = Held()
    runner = KernelRunner(kernel, concurrency=2)
    tasks = node("ft_const", value=[f"t{i}" for i in range(8)])
    log: list[tuple[str, str]] = []

    async def scenario() -> list[Element]:
        first = Run(tmp_path / "a", kernel=runner, experience={"cmd": LoggedExperience(log)})
        pending = asyncio.ensure_future(first.forward(node("ft_expert", tasks, experience="cmd")))
        await kernel.started.wait()
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        await first.close()  # its cancelled elements have ended
        # Every place is free again (checked here, so a leak fails instead of hanging below).
        assert runner._limit()._value == 2
        assert runner._lookahead is not None and runner._lookahead._window._value == 4
        kernel.hold = False
        second = Run(tmp_path / "b", kernel=runner, experience={"cmd": LoggedExperience(log)})
        return await second.forward(node("ft_expert", tasks, experience="cmd"))

    out = asyncio.run(scenario())
    assert [e.text for e in out] == [f"done t{i}" for i in range(8)]
