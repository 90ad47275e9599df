"""Control flow as ops: branch (`ft_switch`), sequence (`ft_sequential`), loop (`ft_recurrent`)."""

from __future__ import annotations

from mcp_harness.errors import HarnessError
from mcp_harness.runtime.future import Coords, Element, FutureTensor, Run, Trajectory
from mcp_harness.runtime.ops.base import Op, ShapeError, register, same_shapes, zeros
from mcp_harness.runtime.status import Kind, Status

TRAJECTORY_KEEP = 3


@register
class Switch(Op):
    """Route each element by its condition's text: inputs are [condition, branch 0, …]; `cases`
    gives one prefix per branch, and the first case the stripped condition equals or starts
    with picks the branch, which alone is pulled (its effects alone happen). No match picks
    `default` if given, else the element fails and names the text — never a silent branch 0."""

    name = "ft_switch"
    arity = (2, None)
    ARGS = {"cases": (list, ...), "default": ((int, type(None)), None)}

    def infer_shape(self, shapes, node):
        self.check_arity(len(shapes), node)
        cases, default = self.args["cases"], self.args["default"]
        if len(cases) != len(shapes) - 1 or not all(isinstance(c, str) for c in cases):
            raise ShapeError(
                f"node {node!r} (ft_switch): {len(shapes) - 1} branches but cases {cases}",
                "give one prefix string per branch input",
            )
        if default is not None and not 0 <= default < len(cases):
            raise ShapeError(
                f"node {node!r} (ft_switch): default {default} is not a branch index",
                f"use 0..{len(cases) - 1} or null",
            )
        return same_shapes(shapes, node, self.name)

    def choose(self, text: str) -> int | None:
        stripped = text.strip()
        for index, case in enumerate(self.args["cases"]):
            if stripped == case or stripped.startswith(case):
                return index
        return self.args["default"]

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        condition = await run.get(node.inputs[0], coords, trajectory)
        if not condition.status.ok:
            return Element(condition.text, condition.status, {"branch": None})
        branch = self.choose(condition.text)
        if branch is None:
            return Element(
                f"no case of {self.args['cases']} matches {condition.text.strip()!r}",
                Status.failed(0.1),
                {"branch": None},
            )
        result = await run.get(node.inputs[1 + branch], coords, trajectory)
        return Element(result.text, result.status, {**result.meta, "branch": branch})

    async def symbolic_backward(self, run, node, targets, grads):
        for coords, target in targets.items():
            element = run.element(node, coords)
            if element is not None and element.meta.get("branch") is not None:
                grads.add_target(node.inputs[1 + element.meta["branch"]], coords, target)
        # A target for an element whose condition failed says nothing about the condition's
        # text (the branch prefix), so it does not flow there.

    def backward(self, run, node, grad):
        grads = [zeros(node.shape) for _ in node.inputs]
        for coords in node.coords():
            element = run.element(node, coords)
            if element is None:
                continue
            # The element is the branch that ran, or, when none ran, the condition's outcome.
            branch = element.meta.get("branch")
            grads[0 if branch is None else 1 + branch][coords] = grad[coords]
        return grads


@register
class Sequential(Op):
    """Pull the inputs in order at the same coordinates; return the first element that is not
    confident (the rest are skipped), else the last one."""

    name = "ft_sequential"
    arity = (1, None)

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        evaluated = 0
        for source in node.inputs:
            result = await run.get(source, coords, trajectory)
            evaluated += 1
            if not result.status.ok:
                break
        return Element(result.text, result.status, {**result.meta, "evaluated": evaluated})

    async def symbolic_backward(self, run, node, targets, grads):
        for coords, target in targets.items():
            element = run.element(node, coords)
            if element is not None:
                grads.add_target(node.inputs[element.meta["evaluated"] - 1], coords, target)

    def backward(self, run, node, grad):
        grads = [zeros(node.shape) for _ in node.inputs]
        for coords in node.coords():
            element = run.element(node, coords)
            for index in range(element.meta["evaluated"] if element else 0):
                grads[index][coords] = grad[coords]
        return grads


@register
class Recurrent(Op):
    """Loop along the last dim: pull iteration 0, 1, … of the input until one is confident
    (the output is that element) or the dim runs out (the output is the best failed attempt).
    Each iteration sees the last few failed outputs as its trajectory, and the ops inside the
    loop can see their own earlier attempts (experts do not repeat an answer that failed).
    Reduces the last dim."""

    name = "ft_recurrent"

    def infer_shape(self, shapes, node):
        self.check_arity(len(shapes), node)
        if not shapes[0] or shapes[0][-1] < 1:
            raise ShapeError(
                f"node {node!r} (ft_recurrent): input shape {list(shapes[0])} has no iteration dim",
                "loop over a last dim of size >= 1 (ft_expand)",
            )
        return tuple(shapes[0][:-1])

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        source = node.inputs[0]
        attempts: list[str] = []
        best: tuple[float, int, Element] | None = None
        for step in range(source.shape[-1]):
            context = Trajectory(
                "\n".join([trajectory, *attempts[-TRAJECTORY_KEEP:]]).strip(), coords, step
            )
            result = await run.get(source, (*coords, step), context)
            meta = {**result.meta, "iterations": step + 1, "winner": step}
            if result.status.ok:
                return Element(result.text, result.status, meta)
            if result.status.kind is Kind.NOT_BOUNDED:
                return Element(result.text, Status.confidence(1.0), meta)
            if result.status.kind is Kind.CONTEXT_OVERFLOW:
                return Element("", result.status, meta)
            if best is None or result.status.value > best[0]:
                best = (result.status.value, step, result)
            attempts.append(f"====[Iteration {step}]====\nOutput:\n{result.text}")
        if best is None:
            raise HarnessError(f"node {node.name!r}: no iteration ran", "give a last dim >= 1")
        _, step, result = best
        return Element(
            result.text,
            result.status,
            {**result.meta, "iterations": source.shape[-1], "winner": step},
        )

    async def symbolic_backward(self, run, node, targets, grads):
        for coords, target in targets.items():
            element = run.element(node, coords)
            if element is not None:
                grads.add_target(node.inputs[0], (*coords, element.meta["winner"]), target)

    def backward(self, run, node, grad):
        out = zeros(node.inputs[0].shape)
        for coords in node.coords():
            element = run.element(node, coords)
            if element is not None:
                out[(*coords, element.meta["winner"])] = grad[coords]
        return [out]
