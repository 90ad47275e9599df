"""Training: losses, symbolic backward (both chained experts learn), StSGD with its gate,
datasets."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from mcp_harness.errors import HarnessError
from mcp_harness.experience.keywords import keywords_text
from mcp_harness.experience.store import Experience, Row
from mcp_harness.kernels.offline import OfflineKernel
from mcp_harness.runtime.future import Run
from mcp_harness.runtime.gradients import backward, summed
from mcp_harness.runtime.graph import build
from mcp_harness.training.losses import edit_distance, exact_match, status_loss
from mcp_harness.training.optimizer import StSGD
from mcp_harness.training.trainer import Example, load_dataset


def rows(*pairs: tuple[str, str]) -> list[Row]:
    return [Row(keywords_text(k), k, v) for k, v in pairs]


@pytest.fixture
def chain(tmp_path: Path):
    """task -> decision expert -> command expert, on the offline kernel."""
    decision = Experience.create(tmp_path / "decision")
    decision.append(rows(("list the files here", "List files")))
    command = Experience.create(tmp_path / "command")
    command.append(rows(("List files", "ls -la"), ("Initialize a git repository", "git init -q")))
    spec = {
        "experience": {"decision": "d", "command": "c"},
        "nodes": [
            {
                "id": "task",
                "op": "ft_const",
                "args": {"value": ["list the files here", "turn this into a git repo"]},
            },
            {
                "id": "decision",
                "op": "ft_expert",
                "inputs": ["task"],
                "args": {"experience": "decision"},
            },
            {
                "id": "command",
                "op": "ft_expert",
                "inputs": ["decision"],
                "args": {"experience": "command"},
            },
        ],
        "output": "command",
    }
    graph = build(spec)
    run = Run(
        tmp_path / "run",
        kernel=OfflineKernel(),
        experience={"decision": decision, "command": command},
    )
    asyncio.run(run.forward(graph.output))
    return graph, run, decision, command


def test_losses_are_torch_scalars_with_per_element_gradients(chain) -> None:
    graph, run, _, _ = chain
    node = graph.nodes["command"]
    targets = {(0,): "ls -la", (1,): "git init -q"}
    exact = exact_match(run, node, targets)
    assert exact.item() == pytest.approx(0.5)  # element 1 failed (no decision matched)
    exact.backward()
    task = run.coefficients(graph.nodes["task"])
    assert task.grad.tolist() == [0.0, 0.5]  # only the wrong element is blamed
    run2_loss = edit_distance(run, node, {(0,): "ls -l"})
    assert run2_loss.item() == pytest.approx(1 / 6)
    # statuses: confidence(1.0) and failed(~0): 1 - mean(1.0, -1e-10) = 0.5
    assert status_loss(run, node).item() == pytest.approx(0.5)


def test_both_chained_experts_receive_gradients(chain) -> None:
    graph, run, decision, command = chain
    grads = asyncio.run(backward(run, graph, {"command": {(1,): "git init -q"}}))
    # Inverse retrieval: the command row holding the target was keyed "Initialize a git
    # repository", so that is what the decision expert should have said.
    assert grads.targets["decision"][(1,)] == "Initialize a git repository"
    proposed = {(p.experience, p.key, p.value) for p in grads.rows}
    assert ("decision", "turn this into a git repo", "Initialize a git repository") in proposed
    plan = StSGD({"decision": decision, "command": command}).plan(grads)
    assert plan.rows.get("command", []) == []  # already stored: not added
    diffs = grads.diffs(run, graph)
    assert "+git init -q" in diffs["command"][(1,)]
    ok = asyncio.run(backward(run, graph, {"command": {(0,): "ls -la"}}))
    assert ok.row_credit["command"][0] == -1.0 and ok.row_credit["decision"] == {}


def test_a_row_blamed_at_every_step_of_a_loop_made_one_mistake() -> None:
    """Four steps of one task answered wrong from row 3, two right from row 5: one step of the
    optimizer moves each row's weight by at most the learning rate."""
    credits = [("decision", 3, 1.0, f"decision@(0, {t})") for t in range(4)]
    credits += [("decision", 5, -1.0, f"decision@({b}, 0)") for b in range(2)]
    credits.append(("command", 1, 0.5, "command@(0, 0)"))
    assert summed(credits) == {"decision": {3: 1.0, 5: -1.0}, "command": {1: 0.5}}


def test_unknown_target_node_is_named(chain) -> None:
    graph, run, _, _ = chain
    with pytest.raises(HarnessError, match="target for unknown node 'nope'"):
        asyncio.run(backward(run, graph, {"nope": {(0,): "x"}}))


def test_stsgd_applies_rows_and_weights_and_logs(chain, tmp_path: Path) -> None:
    graph, run, decision, command = chain
    grads = asyncio.run(backward(run, graph, {"command": {(0,): "ls -la", (1,): "git init -q"}}))
    log = tmp_path / "steps.jsonl"
    optimizer = StSGD({"decision": decision, "command": command}, lr=0.5, log=log)
    report = asyncio.run(optimizer.apply(grads))
    assert report.accepted
    assert decision.find_value("Initialize a git repository") is not None
    assert command.row(0).weight == 1.0  # credited, but a seed row changes only behind a gate
    grads = asyncio.run(backward(run, graph, {"command": {(0,): "ls -la"}}))

    async def gate(experience: dict[str, Experience]) -> float:
        return 0.0

    assert asyncio.run(optimizer.apply(grads, gate)).accepted
    assert command.row(0).weight == pytest.approx(1.5)  # credited: it answered right
    again = Run(
        tmp_path / "run2",
        kernel=OfflineKernel(),
        experience={"decision": decision, "command": command},
    )
    assert [e.text for e in asyncio.run(again.forward(graph.output))] == ["ls -la", "git init -q"]
    entry = json.loads(log.read_text().splitlines()[0])
    assert entry["accepted"] and entry["new_rows"]["decision"]


def test_gate_rejects_a_step_that_makes_heldout_worse(chain, tmp_path: Path) -> None:
    graph, run, decision, command = chain
    grads = asyncio.run(backward(run, graph, {"command": {(1,): "git init -q"}}))
    optimizer = StSGD({"decision": decision, "command": command})
    before = len(decision)

    async def gate(experience: dict[str, Experience]) -> float:
        return float(len(experience["decision"]))  # any new row counts as worse here

    report = asyncio.run(optimizer.apply(grads, gate))
    assert not report.accepted and "validation loss would rise" in report.reason
    assert len(decision) == before  # nothing real changed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the dataset is empty"),
        ("{oops\n", ":1: not valid JSON"),
        ('{"inputs": {"task": 3}}\n', "'inputs' must map names to text"),
        ('{"inputs": {"task": "x"}, "targets": {"command": 5}}\n', "a target is text or a list"),
    ],
)
def test_bad_datasets_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(text)
    with pytest.raises(HarnessError, match=message):
        load_dataset(path)


@pytest.mark.filterwarnings("ignore:Using backward.. with create_graph=True")
def test_trace_policy_records_every_backward_call(chain) -> None:
    from mcp_harness.runtime.reflection import (
        PolicyConflictError,
        TracePolicy,
        dispatch_policy,
        need_reflection,
        reflection_anchor,
    )

    graph, run, _, _ = chain
    trace = TracePolicy()
    anchor = reflection_anchor()
    with dispatch_policy(trace):
        loss = 1 - need_reflection(run.coefficients(graph.nodes["command"]), anchor).mean()
        loss.backward(create_graph=True)
        asyncio.run(backward(run, graph, {"command": {(1,): "git init -q"}}))
        with pytest.raises(PolicyConflictError), dispatch_policy(TracePolicy()):
            pass
    functions = [record.fn for record in trace]
    assert functions[:2] == ["ft_expert.backward", "ft_expert.backward"]
    assert "ft_expert.symbolic_backward" in functions
    symbolic = [r for r in trace if r.fn == "ft_expert.symbolic_backward"]
    assert symbolic[0].inputs["node"] == "command"
    assert symbolic[1].output["input_targets"]["task"] == {}  # consts take no target
    assert anchor.grad is not None and anchor.grad.requires_grad  # a second-order handle
    assert all(record.to_json()["timestamp"] > 0 for record in trace)


def reflecting_model(body: dict) -> str:
    """Stand-in LLM behind the real openai SDK: answers the two reflection questions."""
    from tests.kernel_stubs import last_user_text

    prompt = last_user_text(body)
    if "WANTED OUTPUT" in prompt:
        return "Initialize a git repository"
    if "EXAMPLE OUTPUT" in prompt:
        return "ls -la --group-directories-first"
    return "List files"  # the forward answer of both experts


def test_llm_reflection_patches_rows_and_teaches_upstream(tmp_path: Path) -> None:
    from mcp_harness.kernels.openai_api import OpenAIKernel
    from mcp_harness.kernels.runner import KernelRunner
    from tests.kernel_stubs import ApiStub

    decision = Experience.create(tmp_path / "decision")
    decision.append(rows(("list the files here", "List files")))
    command = Experience.create(tmp_path / "command")
    command.append(rows(("List files", "ls -la")))
    graph = build(
        {
            "experience": {"decision": "d", "command": "c"},
            "nodes": [
                {"id": "task", "op": "ft_const", "args": {"value": ["make this a git repo"]}},
                {
                    "id": "decision",
                    "op": "ft_expert",
                    "inputs": ["task"],
                    "args": {"experience": "decision"},
                },
                {
                    "id": "command",
                    "op": "ft_expert",
                    "inputs": ["decision"],
                    "args": {"experience": "command"},
                },
            ],
            "output": "command",
        }
    )
    with ApiStub("openai", text=reflecting_model) as stub:
        kernel = KernelRunner(OpenAIKernel(api_key="sk-test", base_url=stub.base_url))
        run = Run(
            tmp_path / "run", kernel=kernel, experience={"decision": decision, "command": command}
        )

        async def forward_then_backward():  # one event loop: the SDK client is bound to it
            await run.forward(graph.output)
            calls = stub.count
            return calls, await backward(run, graph, {"command": {(0,): "git init -q"}})

        forward_calls, grads = asyncio.run(forward_then_backward())
        reflection_calls = stub.count - forward_calls
    assert grads.targets["decision"][(0,)] == "Initialize a git repository"  # LLM's answer
    assert [(p.experience, p.row) for p in grads.patches] == [("command", 0)]
    assert ("decision", "make this a git repo", "Initialize a git repository") in {
        (p.experience, p.key, p.value) for p in grads.rows
    }
    assert "+ls -la --group-directories-first" in grads.patches[0].diff
    assert reflection_calls == 2  # command: what to ask upstream + its row's patch; decision: 0
    optimizer = StSGD({"decision": decision, "command": command})
    command.patch(0, value="ls")  # the row changed after the backward pass

    async def gate(experience: dict[str, Experience]) -> float:
        return 0.0  # a seed row's patch is applied only behind a gate

    report = asyncio.run(optimizer.apply(grads, gate))
    assert not report.accepted and "no longer applies" in report.reason
    assert command.row(0).value == "ls" and len(decision) == 1  # nothing half-applied


def test_a_target_for_an_untrainable_node_is_refused(chain) -> None:
    graph, run, _, _ = chain
    with pytest.raises(HarnessError, match="node 'task' \\(ft_const\\) is not trainable"):
        asyncio.run(backward(run, graph, {"task": {(0,): "x"}}))


def test_both_experts_of_the_coder_get_gradients(tmp_path: Path, runtime: Path) -> None:
    from mcp_harness import demo
    from mcp_harness.kernels.config import make_kernel
    from mcp_harness.runtime.reflection import load_records

    with demo._home(tmp_path / "home"):
        trainer, _ = demo.coder_trainer(tmp_path, make_kernel("offline"))
        asyncio.run(trainer.step([task.example for task in demo.tasks().train[:4]]))
    records = load_records(tmp_path / "trace" / "step-1.jsonl")
    numeric = {
        r["inputs"]["node"]: r["inputs"]["grad_output"]
        for r in records
        if r["fn"] == "ft_expert.backward"
    }
    assert set(numeric) == {"decision", "command"}
    assert all(any(abs(g) > 0 for row in grads for g in row) for grads in numeric.values())
    symbolic = {r["inputs"]["node"] for r in records if r["fn"] == "ft_expert.symbolic_backward"}
    assert symbolic == {"decision", "command"}


def test_a_step_interrupted_between_experiences_is_finished_on_restart(chain, tmp_path) -> None:
    from mcp_harness.training.optimizer import _commit, pending_changes

    graph, run, decision, command = chain
    grads = asyncio.run(backward(run, graph, {"command": {(0,): "ls -la", (1,): "git init -q"}}))
    experiences = {"decision": decision, "command": command}
    log = tmp_path / "steps.jsonl"
    pending = pending_changes(StSGD(experiences, log=log).plan(grads), experiences)
    assert set(pending) == {"decision", "command"}
    (tmp_path / "pending-step.json").write_text(json.dumps(pending))
    _commit({"decision": pending["decision"]}, experiences)  # then: kill -9
    rows_after_crash = len(decision)
    StSGD(experiences, log=log)  # the next training process starts
    assert not (tmp_path / "pending-step.json").exists()
    assert len(decision) == rows_after_crash  # replay adds no duplicate rows
    assert command.row(0).weight == pytest.approx(1.2)  # the command half was finished


class ReflectingStub(OfflineKernel):
    """A stand-in LLM: the offline kernel forward; in reflection it says what the decision
    should have been, and as a critic it revises every input a reflection proposed."""

    name = "reflecting-stub"  # not registered: taken for an LLM, so experts reflect with it

    async def complete(self, request):
        from mcp_harness.kernels.base import KernelReply
        from mcp_harness.runtime.ops.expert import INPUT_REFLECTION
        from mcp_harness.runtime.reflection import CRITIQUE

        if request.task == INPUT_REFLECTION:
            return KernelReply(text="Initialize a git repository in app")
        if request.task == CRITIQUE:
            return KernelReply(text="Revised: " + request.input.split("PROPOSED INPUT:\n")[1])
        return await super().complete(request)


def test_fit_with_second_order_reflection_records_and_applies_critiques(
    tmp_path: Path, runtime: Path
) -> None:
    from mcp_harness import demo
    from mcp_harness.runtime.reflection import load_records

    with demo._home(tmp_path / "home"):
        # The decision is wrong ("Create the build folder") and only the command is targeted:
        # the command's reflection says what the decision should have been; the critic revises.
        [task] = [
            Example(t.example.inputs, {"command": ["git init -q app"]}, t.example.files)
            for t in demo.tasks().heldout + demo.tasks().train
            if t.example.inputs["task"] == "Initialize a git repository in the app folder"
        ]
        trainer, _ = demo.coder_trainer(tmp_path, ReflectingStub())
        from mcp_harness.experience.keywords import keywords_text
        from mcp_harness.experience.rows import Row

        wrong = "Initialize a git repository in the app folder"  # a confidently wrong decision
        trainer.module.experience["decision"].append(
            [Row(keywords_text(wrong), wrong, "Create the build folder")]
        )
        asyncio.run(trainer.fit([task], 1, 1, second_order=True))
    records = load_records(tmp_path / "trace" / "step-1.jsonl")
    first = [r for r in records if r["fn"] == "ft_expert.symbolic_backward"]
    second = [r for r in records if r["fn"] == "ft_expert.symbolic_backward.critique"]
    assert {r["order"] for r in first} == {1} and {r["order"] for r in second} == {2}
    assert [r["inputs"]["node"] for r in second] == [r["inputs"]["node"] for r in first]
    assert all(r["inputs"]["grad_input"] == f["output"] for r, f in zip(second, first, strict=True))
    [reviewed] = [r for r in second if r["inputs"]["node"] == "command"]
    assert reviewed["inputs"]["grad_input"]["input_targets"]["decision"] == {
        "(0, 0)": "Initialize a git repository in app"
    }
    assert reviewed["output"]["input_targets"]["decision"] == {
        "(0, 0)": "Revised: Initialize a git repository in app"
    }
    # The revision, not the reflection's own proposal, is what the decision expert learned:
    values = {row.value for row in trainer.module.experience["decision"].rows()}
    assert "Revised: Initialize a git repository in app" in values
    assert "Initialize a git repository in app" not in values
    step = json.loads((tmp_path / "train-steps.jsonl").read_text().splitlines()[0])
    assert step["second_order_records"] == len(second)
