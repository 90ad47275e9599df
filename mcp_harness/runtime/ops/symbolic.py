"""The seed's symbolic-tensor ops over text elements: attention (causal), merge along an axis
with a text merger, stack, and fork with merged gradients.

Each keeps per-element gradients: numeric ones go to exactly the input elements an output
element read, and symbolic targets split back where the text can be split (a merged text by
its separator, a stacked element to its source, forked branches merged by majority).
"""

from __future__ import annotations

import asyncio
from collections import Counter

from mcp_harness.runtime.future import Coords, Element, FutureTensor, Run
from mcp_harness.runtime.ops.base import Op, ShapeError, register, same_shapes, zeros
from mcp_harness.runtime.status import Status


def _dim(dim: int, rank: int, node: str, op: str) -> int:
    if not -rank <= dim < rank:
        raise ShapeError(
            f"node {node!r} ({op}): dim {dim} is out of range for rank {rank}",
            f"use a dim in {-rank}..{rank - 1}",
        )
    return dim % rank


def _join(parts: list[Element], separator: str, reason: str) -> Element:
    """The texts of the confident parts joined; the lowest confidence; none confident fails."""
    ok = [p for p in parts if p.status.ok]
    if not ok:
        return Element(reason, Status.failed(0.1), {"reason": reason})
    return Element(
        separator.join(p.text for p in ok),
        Status.confidence(min(p.status.value for p in ok)),
        {"parts": len(ok)},
    )


@register
class Attention(Op):
    """Each position along the last dim reads the positions it may attend to, joined with
    `separator`: with `mask` "causal" (default) itself and the earlier ones, with "full" all of
    them — the seed's st_attention with its causal mask. Failed positions are left out; an
    element whose every attended position failed fails. Same shape as the input."""

    name = "st_attention"
    ARGS = {"mask": (str, "causal"), "separator": (str, "\n")}

    def infer_shape(self, shapes, node):
        self.check_arity(len(shapes), node)
        if self.args["mask"] not in ("causal", "full"):
            raise ShapeError(
                f"node {node!r} (st_attention): mask {self.args['mask']!r}",
                "use mask 'causal' or 'full'",
            )
        if not shapes[0]:
            raise ShapeError(
                f"node {node!r} (st_attention): a 0-d input has no sequence dim",
                "attend over a last dim of size >= 1",
            )
        return tuple(shapes[0])

    def _attended(self, coords: Coords, length: int) -> range:
        return range(coords[-1] + 1 if self.args["mask"] == "causal" else length)

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        source = node.inputs[0]
        positions = self._attended(coords, source.shape[-1])
        parts = await asyncio.gather(
            *(run.get(source, (*coords[:-1], j), trajectory) for j in positions)
        )
        return _join(list(parts), self.args["separator"], "no attended position succeeded")

    def backward(self, run, node, grad):
        out = zeros(node.inputs[0].shape)
        for coords in node.coords():
            if run.element(node, coords) is not None:
                for j in self._attended(coords, node.shape[-1]):
                    out[(*coords[:-1], j)] += grad[coords]
        return [out]


@register
class Merge(Op):
    """Reduce dim `dim` by merging the texts along it with `separator` (the seed's merge with
    a text merger). Failed elements are left out; all failed fails the element. A target for
    a merged text that splits by the separator into one part per element teaches each
    element its part."""

    name = "st_merge"
    ARGS = {"dim": (int, -1), "separator": (str, "\n")}

    def infer_shape(self, shapes, node):
        self.check_arity(len(shapes), node)
        shape = list(shapes[0])
        if not shape:
            raise ShapeError(f"node {node!r} (st_merge): a 0-d input has no dim to merge", "")
        del shape[_dim(self.args["dim"], len(shapes[0]), node, self.name)]
        return tuple(shape)

    def _sources(self, node: FutureTensor, coords: Coords) -> list[Coords]:
        shape = node.inputs[0].shape
        dim = self.args["dim"] % len(shape)
        return [(*coords[:dim], k, *coords[dim:]) for k in range(shape[dim])]

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        parts = await asyncio.gather(
            *(run.get(node.inputs[0], c, trajectory) for c in self._sources(node, coords))
        )
        return _join(list(parts), self.args["separator"], "every merged element failed")

    async def symbolic_backward(self, run, node, targets, grads):
        for coords, target in targets.items():
            sources = self._sources(node, coords)
            pieces = target.split(self.args["separator"])
            if len(pieces) == len(sources):
                for source, piece in zip(sources, pieces, strict=True):
                    grads.add_target(node.inputs[0], source, piece)

    def backward(self, run, node, grad):
        out = zeros(node.inputs[0].shape)
        for coords in node.coords():
            if run.element(node, coords) is not None:
                for source in self._sources(node, coords):
                    out[source] = grad[coords]
        return [out]


@register
class Stack(Op):
    """Stack inputs of one shape along a new dim `dim` (torch.stack): element k along it is
    input k's element. Gradients go back to the input each element came from."""

    name = "st_stack"
    arity = (1, None)
    ARGS = {"dim": (int, 0)}

    def infer_shape(self, shapes, node):
        self.check_arity(len(shapes), node)
        shape = list(same_shapes(shapes, node, self.name))
        dim = _dim(self.args["dim"], len(shape) + 1, node, self.name)
        shape.insert(dim, len(shapes))
        return tuple(shape)

    def _source(self, node: FutureTensor, coords: Coords) -> tuple[int, Coords]:
        dim = self.args["dim"] % len(node.shape)
        return coords[dim], (*coords[:dim], *coords[dim + 1 :])

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        index, inner = self._source(node, coords)
        return await run.get(node.inputs[index], inner, trajectory)

    async def symbolic_backward(self, run, node, targets, grads):
        for coords, target in targets.items():
            index, inner = self._source(node, coords)
            grads.add_target(node.inputs[index], inner, target)

    def backward(self, run, node, grad):
        grads = [zeros(i.shape) for i in node.inputs]
        for coords in node.coords():
            if run.element(node, coords) is not None:
                index, inner = self._source(node, coords)
                grads[index][inner] = grad[coords]
        return grads


@register
class Fork(Op):
    """`copies` branches of the input along a new leading dim: branch k's element is the
    input's (computed once). Backward merges the branches: numeric gradients are summed, and
    the branches' targets for one element are merged by majority (ties: the lowest branch)."""

    name = "st_fork"
    ARGS = {"copies": (int, 2)}

    def infer_shape(self, shapes, node):
        self.check_arity(len(shapes), node)
        if self.args["copies"] < 1:
            raise ShapeError(f"node {node!r} (st_fork): copies must be >= 1", "use copies >= 1")
        return (self.args["copies"], *shapes[0])

    async def element(self, run: Run, node: FutureTensor, coords: Coords, trajectory: str):
        return await run.get(node.inputs[0], coords[1:], trajectory)

    async def symbolic_backward(self, run, node, targets, grads):
        merged: dict[Coords, list[str]] = {}
        for coords in sorted(targets):
            merged.setdefault(tuple(coords[1:]), []).append(targets[coords])
        for inner, texts in merged.items():
            counts = Counter(texts)
            best = max(counts.values())
            grads.add_target(node.inputs[0], inner, next(t for t in texts if counts[t] == best))

    def backward(self, run, node, grad):
        computed = [run.element(node, c) is not None for c in node.coords()]
        out = zeros(node.inputs[0].shape)
        for flag, coords in zip(computed, node.coords(), strict=True):
            if flag:
                out[coords[1:]] += grad[coords]
        return [out]
