"""The bridge to torch autograd: one Function per graph node, per-element gradients.

A node's Function takes its inputs' coefficient tensors and, for an op that reads experience
(`Op.parameters`), the experience's row-weight tensor (`runtime.parameters`) when the run was
given one; `loss.backward()` then fills that tensor's `.grad`, as torch does for any weight.
"""

from __future__ import annotations

from typing import Any

import torch

from mcp_harness.runtime.reflection import dispatch


class NodeFunction(torch.autograd.Function):
    """Forward returns the node's status floats; backward asks the op for input gradients
    (and for the gradients of the row weights it read)."""

    @staticmethod
    def forward(
        ctx: Any, run: Any, node: Any, values: torch.Tensor, names: tuple[str, ...], *tensors
    ) -> torch.Tensor:
        ctx.run, ctx.node, ctx.names = run, node, names
        return values.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        node, run = ctx.node, ctx.run
        grads = dispatch(
            f"{node.op.name}.backward",
            {"node": node.name, "grad_output": grad},
            lambda: node.op.backward(run, node, grad),
        )
        weights = [node.op.parameter_grad(run, node, grad, name) for name in ctx.names]
        return (None, None, None, None, *grads, *weights)
