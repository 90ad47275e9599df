"""The bridge to torch autograd: one Function per graph node, per-element gradients."""

from __future__ import annotations

from typing import Any

import torch

from mcp_harness.runtime.reflection import dispatch


class NodeFunction(torch.autograd.Function):
    """Forward returns the node's status floats; backward asks the op for input gradients."""

    @staticmethod
    def forward(
        ctx: Any, run: Any, node: Any, values: torch.Tensor, *parents: torch.Tensor
    ) -> torch.Tensor:
        ctx.run, ctx.node = run, node
        return values.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        node = ctx.node
        grads = dispatch(
            f"{node.op.name}.backward",
            {"node": node.name, "grad_output": grad},
            lambda: node.op.backward(ctx.run, node, grad),
        )
        return (None, None, None, *grads)
