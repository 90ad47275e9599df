"""Leaves and text plumbing: run inputs, constants, and joining texts element-wise."""

from __future__ import annotations

from typing import Any

from mcp_harness.errors import HarnessError
from mcp_harness.runtime.future import Coords, Element, FutureTensor, Run
from mcp_harness.runtime.ops.base import Op, ShapeError, register
from mcp_harness.runtime.status import Status


def _nested_shape(value: Any) -> tuple[int, ...]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return tuple(shape)


def _at(value: Any, coords: Coords) -> Any:
    for c in coords:
        value = value[c]
    return value


@register
class Input(Op):
    """A leaf filled at run time: `run.inputs[name]`, nested lists of text of the declared shape."""

    name = "ft_input"
    arity = 0
    ARGS = {"input": (str, ...), "shape": (list, ...)}

    def infer_shape(self, shapes, node):
        self.check_arity(len(shapes), node)
        shape = self.args["shape"]
        if not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ShapeError(
                f"node {node!r}: shape must be a list of non-negative ints, got {shape}",
                "write e.g. [1] or [4, 8]",
            )
        return tuple(shape)

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        name = self.args["input"]
        if name not in run.inputs:
            raise HarnessError(
                f"run input {name!r} was not given (node {node.name!r})",
                f"pass {name!r} when running the graph",
            )
        value = run.inputs[name]
        if _nested_shape(value) != node.shape:
            raise HarnessError(
                f"run input {name!r} has shape {list(_nested_shape(value))} but node "
                f"{node.name!r} declares {list(node.shape)}",
                "give nested lists of the declared shape",
            )
        return Element(str(_at(value, coords)), Status.confidence(1.0))

    def backward(self, run, node, grad):
        return []


@register
class Const(Op):
    """Literal texts from the graph spec (nested lists; a bare string is a 0-d tensor)."""

    name = "ft_const"
    arity = 0
    ARGS = {"value": ((str, list), ...)}

    def infer_shape(self, shapes, node):
        self.check_arity(len(shapes), node)
        return _nested_shape(self.args["value"])

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        return Element(str(_at(self.args["value"], coords)), Status.confidence(1.0))

    def backward(self, run, node, grad):
        return []


@register
class Format(Op):
    """Join input texts element-wise with a template: `{0}`, `{1}`… are the inputs' texts.

    A failed input element fails the output with the same status (nothing is made up).
    Example: `{"template": "{0}\\n\\n{1}"}` puts a task above a screen.
    """

    name = "ft_format"
    arity = (1, None)
    ARGS = {"template": (str, ...)}

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        parts = [await run.get(inp, coords, trajectory) for inp in node.inputs]
        for part in parts:
            if not part.status.ok:
                return Element(part.text, part.status)
        try:
            text = self.args["template"].format(*(p.text for p in parts))
        except (IndexError, KeyError) as exc:
            raise HarnessError(
                f"node {node.name!r}: template refers to {exc} but the node has "
                f"{len(parts)} inputs",
                "use {0}..{n-1} in the template",
            ) from None
        return Element(text, Status.confidence(min(p.status.value for p in parts)))


@register
class FirstLine(Op):
    """The first line of the input text that is not blank (an expert's answer without the
    chatter after it); none fails the element."""

    name = "ft_first_line"

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        source = await run.get(node.inputs[0], coords, trajectory)
        if not source.status.ok:
            return Element(source.text, source.status)
        line = next((line for line in source.text.splitlines() if line.strip()), None)
        if line is None:
            return Element("", Status.failed(0.1), {"reason": "the text has no non-blank line"})
        return Element(line.rstrip(), source.status)
