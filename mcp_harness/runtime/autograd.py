"""The bridge to torch autograd: one Function per graph node, per-element gradients.

A node's Function takes its inputs' coefficient tensors and, for an op that reads experience
(`Op.parameters`), the experience's row-weight tensor (`runtime.parameters`) when the run was
given one; `loss.backward()` then fills that tensor's `.grad`, as torch does for any weight.

Under `loss.backward(create_graph=True)` each node's first-order backward (its reflection) is
itself a Function (`Reflection`), so the gradients it produced are differentiable: a second
backward through them (`anchor.grad.backward()`, see `runtime.reflection`) calls its backward,
which is dispatched as `<op>.backward.backward` with the first-order reflection's inputs
(`grad_output`) and outputs (`grad_input`) and returns the exact vector-Jacobian product of
the op's backward (every op's backward is linear in the output's gradient).
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

        def first_order() -> list[torch.Tensor | None]:
            if torch.is_grad_enabled() and node.inputs:  # create_graph=True
                return list(Reflection.apply(run, node, grad, _TIE))
            return node.op.backward(run, node, grad)

        grads = dispatch(
            f"{node.op.name}.backward", {"node": node.name, "grad_output": grad}, first_order
        )
        weights = [node.op.parameter_grad(run, node, grad, name) for name in ctx.names]
        return (None, None, None, None, *grads, *weights)


# Every reflection's outputs must stay in the second-order graph even where its grad_output is
# a constant (the loss's own gradient is): this leaf ties them in, and receives no gradient.
_TIE = torch.zeros((), requires_grad=True)


class Reflection(torch.autograd.Function):
    """A node's first-order backward as a differentiable function of `grad_output`."""

    @staticmethod
    def forward(
        ctx: Any, run: Any, node: Any, grad_output: torch.Tensor, tie: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        ctx.run, ctx.node = run, node
        ctx.save_for_backward(grad_output)
        grads = node.op.backward(run, node, grad_output.detach())
        ctx.grad_input = tuple(
            torch.zeros(i.shape) if g is None else g.detach()
            for g, i in zip(grads, node.inputs, strict=True)
        )
        return tuple(g.clone() for g in ctx.grad_input)

    @staticmethod
    def backward(ctx: Any, *grad_grad_input: torch.Tensor) -> tuple[Any, ...]:
        (grad_output,) = ctx.saved_tensors
        run, node = ctx.run, ctx.node

        def second_order() -> torch.Tensor:
            with torch.enable_grad():
                probe = grad_output.detach().requires_grad_(True)
                outs = [
                    (g, v)
                    for g, v in zip(
                        node.op.backward(run, node, probe), grad_grad_input, strict=True
                    )
                    if g is not None and g.requires_grad
                ]
                if not outs:
                    return torch.zeros_like(grad_output)
                (vjp,) = torch.autograd.grad(
                    [g for g, _ in outs], probe, [v for _, v in outs], allow_unused=True
                )
            return torch.zeros_like(grad_output) if vjp is None else vjp

        result = dispatch(
            f"{node.op.name}.backward.backward",
            {
                "node": node.name,
                "grad_output": grad_output.detach(),
                "grad_input": list(ctx.grad_input),
                "grad_grad_input": [v.detach() for v in grad_grad_input],
            },
            second_order,
        )
        return None, None, result, None
