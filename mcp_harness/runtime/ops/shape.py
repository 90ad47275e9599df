"""Shape ops: slice, unsqueeze, expand (torch semantics) and mean (the usual loss).

One broadcasting rule for all ops: only `ft_expand` broadcasts; every other op with several
inputs needs them to have the same shape.
"""

from __future__ import annotations

import asyncio
import re

from mcp_harness.runtime.future import Coords, Element, FutureTensor, Run
from mcp_harness.runtime.ops.base import Op, ShapeError, computed_mask, register, zeros
from mcp_harness.runtime.status import Status

_SLICE = re.compile(r"^(-?\d*):(-?\d*)$")


@register
class Slice(Op):
    """Select along each dim: an int (the dim goes away), "start:stop" or ":" (a range), or a
    list of ints (gather). Dims not listed are kept whole. Torch/NumPy semantics."""

    name = "ft_slice"
    ARGS = {"index": (list, ...)}

    def _plan(self, shape: tuple[int, ...], node: str) -> list[tuple[str, list[int]]]:
        index = self.args["index"]
        if len(index) > len(shape):
            raise ShapeError(
                f"node {node!r} (ft_slice): index {index} has {len(index)} entries "
                f"but the input has shape {list(shape)}",
                "index at most one per dim",
            )
        plan = []
        for dim, size in enumerate(shape):
            entry = index[dim] if dim < len(index) else ":"
            if isinstance(entry, int) and not isinstance(entry, bool):
                if not -size <= entry < size:
                    raise ShapeError(
                        f"node {node!r} (ft_slice): index {entry} is out of range "
                        f"for dim {dim} of shape {list(shape)}",
                        "use -n <= i < n",
                    )
                plan.append(("int", [entry % size]))
            elif isinstance(entry, str) and _SLICE.match(entry):
                start, stop = _SLICE.match(entry).groups()
                picked = range(size)[
                    slice(int(start) if start else None, int(stop) if stop else None)
                ]
                plan.append(("range", list(picked)))
            elif isinstance(entry, list) and all(isinstance(i, int) for i in entry):
                bad = [i for i in entry if not -size <= i < size]
                if bad:
                    raise ShapeError(
                        f"node {node!r} (ft_slice): indices {bad} are out of range "
                        f"for dim {dim} of shape {list(shape)}",
                        "use -n <= i < n",
                    )
                plan.append(("list", [i % size for i in entry]))
            else:
                raise ShapeError(
                    f"node {node!r} (ft_slice): index entry {entry!r} for dim {dim} "
                    "is not an int, 'start:stop' or a list of ints",
                    'write e.g. [0, "1:3", [0, 2]]',
                )
        return plan

    def infer_shape(self, shapes, node):
        self.check_arity(len(shapes), node)
        self._shape_in = tuple(shapes[0])
        self._steps = self._plan(self._shape_in, node)
        return tuple(len(picks) for kind, picks in self._steps if kind != "int")

    def source(self, coords: Coords) -> Coords:
        out = iter(coords)
        return tuple(picks[0] if kind == "int" else picks[next(out)] for kind, picks in self._steps)

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        return await run.get(node.inputs[0], self.source(coords), trajectory)

    async def symbolic_backward(self, run, node, targets, grads):
        for coords, target in targets.items():
            grads.add_target(node.inputs[0], self.source(coords), target)

    def backward(self, run, node, grad):
        out = zeros(self._shape_in)
        mask = computed_mask(run, node)
        for coords in node.coords():
            out[self.source(coords)] += grad[coords] * mask[coords]
        return [out]


@register
class Unsqueeze(Op):
    """Insert a dim of size 1 at `dim` (torch semantics, negative dims allowed)."""

    name = "ft_unsqueeze"
    ARGS = {"dim": (int, ...)}

    def infer_shape(self, shapes, node):
        self.check_arity(len(shapes), node)
        rank = len(shapes[0])
        dim = self.args["dim"]
        if not -rank - 1 <= dim <= rank:
            raise ShapeError(
                f"node {node!r} (ft_unsqueeze): dim {dim} is out of range for shape "
                f"{list(shapes[0])}",
                f"use {-rank - 1} <= dim <= {rank}",
            )
        self._dim = dim % (rank + 1)
        shape = list(shapes[0])
        shape.insert(self._dim, 1)
        return tuple(shape)

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        source = coords[: self._dim] + coords[self._dim + 1 :]
        return await run.get(node.inputs[0], source, trajectory)

    async def symbolic_backward(self, run, node, targets, grads):
        for coords, target in targets.items():
            grads.add_target(node.inputs[0], coords[: self._dim] + coords[self._dim + 1 :], target)

    def backward(self, run, node, grad):
        return [(grad * computed_mask(run, node)).squeeze(self._dim)]


@register
class Expand(Op):
    """Broadcast to `shape` (torch.expand): new leading dims may be added, -1 keeps a dim, and
    only size-1 dims grow. Every broadcast position reads the same input element."""

    name = "ft_expand"
    ARGS = {"shape": (list, ...)}

    def infer_shape(self, shapes, node):
        self.check_arity(len(shapes), node)
        source, target = list(shapes[0]), list(self.args["shape"])
        if len(target) < len(source):
            raise ShapeError(
                f"node {node!r} (ft_expand): cannot expand shape {source} to {target} (fewer dims)",
                "give at least as many dims as the input",
            )
        lead = len(target) - len(source)
        out = []
        for dim, size in enumerate(target):
            have = source[dim - lead] if dim >= lead else None
            if not isinstance(size, int) or (size == -1 and have is None) or size < -1:
                raise ShapeError(
                    f"node {node!r} (ft_expand): bad size {size!r} at dim {dim} of {target}",
                    "sizes are ints >= 0; -1 keeps an existing dim",
                )
            size = have if size == -1 else size
            if have is not None and have != size and have != 1:
                raise ShapeError(
                    f"node {node!r} (ft_expand): input shape {source} cannot expand "
                    f"to {target} (dim {dim}: {have} -> {size})",
                    "only dims of size 1 can grow",
                )
            out.append(size)
        self._source, self._lead = tuple(source), lead
        return tuple(out)

    def source(self, coords: Coords) -> Coords:
        tail = coords[self._lead :]
        return tuple(0 if n == 1 else c for c, n in zip(tail, self._source, strict=True))

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        return await run.get(node.inputs[0], self.source(coords), trajectory)

    async def symbolic_backward(self, run, node, targets, grads):
        """Broadcast positions share one source element: the first target given for it wins
        (texts are not merged; the other positions' targets are dropped)."""
        for coords, target in sorted(targets.items()):
            grads.add_target(node.inputs[0], self.source(coords), target)

    def backward(self, run, node, grad):
        masked = grad * computed_mask(run, node)
        return [masked.sum_to_size(self._source) if self._source else masked.sum().reshape(())]


@register
class Mean(Op):
    """The mean of all input statuses, a 0-d tensor: the usual loss (`1 - mean` to minimise).

    Its coefficient is exactly the mean of the input coefficients, so `backward` gives every
    input element `grad / numel`.
    """

    name = "ft_mean"

    def infer_shape(self, shapes, node):
        self.check_arity(len(shapes), node)
        return ()

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        source = node.inputs[0]
        elements = await asyncio.gather(*(run.get(source, c, trajectory) for c in source.coords()))
        values = [e.status.encode() for e in elements]
        mean = sum(values) / len(values) if values else 0.0
        ok = sum(e.status.ok for e in elements)
        status = Status.confidence(mean) if mean >= 0 else Status.failed(-mean)
        return Element(f"{ok}/{len(elements)} confident", status, {"mean": mean})

    def coefficient(self, element: Element) -> float:
        return element.meta["mean"]

    def backward(self, run, node, grad):
        source = node.inputs[0]
        return [grad.expand(source.shape) / max(source.numel, 1)]
