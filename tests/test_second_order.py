"""A real second derivative: every op kind's first-order backward is differentiated under
create_graph=True, the second-order records carry the first-order grad_output and grad_input,
a critique policy revises a symbolic reflection, and `trace show` prints both orders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mcp_harness import (
    CritiquePolicy,
    Session,
    TracePolicy,
    dispatch_policy,
    ft_const,
    ft_expand,
    ft_expert,
    ft_format,
    ft_mean,
    ft_recurrent,
    ft_slice,
    ft_switch,
    ft_unsqueeze,
    make_tensor,
    need_reflection,
    st_attention,
    st_fork,
    st_merge,
    st_stack,
)
from mcp_harness.api import ft_reflection_starter

pytestmark = pytest.mark.filterwarnings("ignore:Using backward.. with create_graph=True")

ROOT = Path(__file__).resolve().parents[1]


def expert(x, tmp_path):
    exp = make_tensor([["a", "a", "done"], ["b", "b", "done"]], tmp_path / "exp", name="e")
    return ft_expert(x, exp, name="op")


KINDS = {
    "element-wise": lambda x, _: ft_format(x, x, "{0}+{1}", name="op"),
    "routing": lambda x, _: ft_switch(x, [("a", x), ("b", ft_format(x, "<{0}>"))], name="op"),
    "loop": lambda x, _: ft_recurrent(ft_expand(ft_unsqueeze(x, -1), [2, 3]), name="op"),
    "shape": lambda x, _: ft_slice(ft_expand(ft_unsqueeze(x, 0), [3, 2]), ["1:", 1], name="op"),
    "reduction": lambda x, _: ft_mean(x, name="op"),
    "merge": lambda x, _: st_merge(st_stack(x, x, dim=1), dim=1, name="op"),
    "attention": lambda x, _: st_attention(ft_unsqueeze(x, 0), name="op"),
    "fork": lambda x, _: st_fork(x, copies=3, name="op"),
    "expert": expert,
}


def jacobian_vjp(run, node, grad_output: torch.Tensor, vs: list) -> torch.Tensor:
    """(d grad_input / d grad_output)^T v, by applying the op's backward to each basis vector."""
    out = torch.zeros(grad_output.numel())
    for i in range(grad_output.numel()):
        basis = torch.zeros(grad_output.numel())
        basis[i] = 1.0
        images = node.op.backward(run, node, basis.reshape(grad_output.shape))
        out[i] = sum(float((g * v).sum()) for g, v in zip(images, vs, strict=True) if g is not None)
    return out.reshape(grad_output.shape)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_op_kind_has_a_second_order_record(kind: str, tmp_path: Path) -> None:
    anchor = ft_reflection_starter()
    x = need_reflection(ft_const(["a", "b"], name="x"), anchor)
    node = KINDS[kind](x, tmp_path)
    with Session() as session:
        session.forward(node)
        first: list = []
        with dispatch_policy(TracePolicy(first)):
            loss = (
                1
                - (
                    session.coefficients(node)
                    * torch.linspace(1, 2, node.numel).reshape(node.shape)
                ).mean()
            )
            loss.backward(create_graph=True)
        assert anchor.grad is not None and anchor.grad.requires_grad
        second: list = []
        with dispatch_policy(TracePolicy(second)):
            anchor.grad.backward()
        records = {r.fn: r for r in second}
        record = records.get(f"{node.op.name}.backward.backward")
        assert record is not None, sorted(records)
        assert record.order == 2 and record.inputs["node"] == "op"
        [firsts] = [r for r in first if r.fn == f"{node.op.name}.backward"]
        assert torch.equal(record.inputs["grad_output"], firsts.inputs["grad_output"].detach())
        assert all(
            torch.equal(a, b.detach())
            for a, b in zip(record.inputs["grad_input"], firsts.output, strict=True)
        )
        expected = jacobian_vjp(
            session.run, node, record.inputs["grad_output"], record.inputs["grad_grad_input"]
        )
        assert torch.allclose(record.output, expected)
        assert record.output.abs().sum() > 0


def test_a_critique_policy_revises_a_reflection_and_trace_show_prints_both_orders(
    tmp_path: Path,
) -> None:
    decision = make_tensor([["files", "list the files", "List files"]], tmp_path, name="decision")
    command = make_tensor(
        [["list", "List files", "ls"], ["long", "List files in detail", "ls -la"]],
        tmp_path,
        name="command",
    )
    what = ft_expert(ft_const(["list the files"], name="task"), decision, name="what")
    how = ft_expert(what, command, name="how")

    async def critic(record):
        if record.inputs["node"] != "how":
            return None
        return {**record.output, "input_targets": {"what": {(0,): "List all files in detail"}}}

    policy = CritiquePolicy(critic)
    with Session() as session:
        assert session.forward(how) == ["ls"]
        loss = session.target_loss(how, {(0,): "ls -la"})
        with dispatch_policy(policy):
            loss.backward()
    critiques = [r for r in policy if r.fn == "ft_expert.symbolic_backward.critique"]
    assert [r.inputs["node"] for r in critiques] == ["how", "what"]
    reviewed = critiques[0]
    assert reviewed.order == 2
    assert reviewed.inputs["grad_input"]["input_targets"] == {
        "what": {(0,): "List files in detail"}
    }
    # The revision, not the reflection's own proposal, is what the decision expert learns:
    assert "List all files in detail" in {c.value for c in decision.symbolic_grad}
    assert "List files in detail" not in {c.value for c in decision.symbolic_grad}
    trace = tmp_path / "trace.jsonl"
    policy.save(trace)
    done = subprocess.run(
        [sys.executable, "-m", "mcp_harness", "trace", "show", str(trace)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "MCP_HARNESS_HOME": str(tmp_path / "h")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "- order 1: ft_expert.symbolic_backward on how" in done.stdout
    assert "- order 2: ft_expert.symbolic_backward.critique on how" in done.stdout
    assert "reviewed the reflection: revised" in done.stdout
    # The MCP trace_show tool tells the orders apart too.
    from mcp_harness.runtime.reflection import load_records
    from mcp_harness.server.tools_trace import _record

    shown = {(r.fn, r.node): r for r in map(_record, load_records(trace))}
    how = shown[("ft_expert.symbolic_backward.critique", "how")]
    assert (how.kind, how.order, how.revised) == ("critique", 2, True)
    assert how.input_targets == {"what": {"(0,)": "List all files in detail"}}
    what = shown[("ft_expert.symbolic_backward.critique", "what")]
    assert (what.kind, what.revised, what.input_targets) == ("critique", False, {})
    assert shown[("ft_expert.symbolic_backward", "how")].order == 1


def test_kernel_critic_asks_the_kernel_about_each_proposed_input() -> None:
    import asyncio

    from mcp_harness import kernel_critic
    from mcp_harness.kernels.base import KernelReply
    from mcp_harness.runtime.reflection import ReflectionRecord

    class Reviewer:
        """Stands in for an LLM: keeps one proposal, corrects the other."""

        asked: list = []

        async def complete(self, request):
            self.asked.append(request.input)
            return KernelReply("KEEP" if "ls" in request.input else "Initialize a git repository")

    record = ReflectionRecord(
        "ft_expert.symbolic_backward",
        {"node": "how", "targets": {(0,): "ls", (1,): "git init -q"}},
        {"input_targets": {"what": {(0,): "List files", (1,): "Make a repo"}}, "rows": []},
        0.0,
    )
    revised = asyncio.run(kernel_critic(Reviewer())(record))
    assert revised["input_targets"] == {
        "what": {(0,): "List files", (1,): "Initialize a git repository"}
    }
    assert Reviewer.asked == [
        "TARGET:\nls\n\nPROPOSED INPUT:\nList files",
        "TARGET:\ngit init -q\n\nPROPOSED INPUT:\nMake a repo",
    ]
    keep = ReflectionRecord("f", {"targets": {}}, {"input_targets": {"what": {}}}, 0.0)
    assert asyncio.run(kernel_critic(Reviewer())(keep)) is None
