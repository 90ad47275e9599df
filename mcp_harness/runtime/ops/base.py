"""The op interface and registry.

An op is a class registered under its name with: a docstring (what it does), `arity` (how many
input nodes), `ARGS` (its literal arguments and their types, checked when the graph is built),
`infer_shape` (the shape contract, checked before anything runs), `element` (forward: compute
one output element, pulling input elements from the run) and `backward` (per-element numeric
gradients for its inputs, given the output's gradient). Symbolic gradients will ride beside the
numeric ones through the same `backward`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from mcp_harness.errors import HarnessError

if TYPE_CHECKING:
    import torch

    from mcp_harness.runtime.future import Coords, Element, FutureTensor, Run
    from mcp_harness.runtime.gradients import Gradients

OPS: dict[str, type[Op]] = {}


class ShapeError(HarnessError):
    """A graph breaks an op's shape contract; raised before anything runs."""


def register(cls: type[Op]) -> type[Op]:
    OPS[cls.name] = cls
    return cls


class Op:
    name: ClassVar[str] = ""
    arity: ClassVar[int | tuple[int, int | None]] = 1
    ARGS: ClassVar[dict[str, tuple[type | tuple[type, ...], Any]]] = {}
    """name -> (accepted types, default); a default of `...` means required."""

    def __init__(self, **args: Any) -> None:
        unknown = set(args) - set(self.ARGS)
        if unknown:
            raise HarnessError(
                f"{self.name}: unknown argument(s) {sorted(unknown)}",
                f"{self.name} takes {sorted(self.ARGS) or 'no arguments'}",
            )
        for key, (types, default) in self.ARGS.items():
            if key not in args:
                if default is ...:
                    raise HarnessError(
                        f"{self.name}: missing argument {key!r}", f"give {key!r} in the node's args"
                    )
                args[key] = default
                continue
            accepted = types if isinstance(types, tuple) else (types,)
            value = args[key]
            if not isinstance(value, accepted) or (
                isinstance(value, bool) and bool not in accepted
            ):
                names = " or ".join(t.__name__ for t in accepted)
                raise HarnessError(
                    f"{self.name}: argument {key!r} must be {names}, got "
                    f"{type(value).__name__} {value!r}",
                    f"fix {key!r} in the node's args",
                )
        self.args = args

    # ---- static contract --------------------------------------------------------------------
    def check_arity(self, count: int, node: str) -> None:
        low, high = (self.arity, self.arity) if isinstance(self.arity, int) else self.arity
        if count < low or (high is not None and count > high):
            want = f"{low}" if low == high else f"{low}..{high if high is not None else 'n'}"
            raise ShapeError(
                f"node {node!r} ({self.name}) takes {want} input(s), got {count}",
                "fix the node's inputs",
            )

    def infer_shape(self, shapes: list[tuple[int, ...]], node: str) -> tuple[int, ...]:
        """Default contract: all inputs share one shape, which is the output's."""
        self.check_arity(len(shapes), node)
        return same_shapes(shapes, node, self.name)

    # ---- forward / backward -----------------------------------------------------------------
    async def element(
        self, run: Run, node: FutureTensor, coords: Coords, trajectory: str
    ) -> Element:
        raise NotImplementedError(f"{self.name} has no forward")

    async def symbolic_backward(
        self, run: Run, node: FutureTensor, targets: dict[Coords, str], grads: Gradients
    ) -> None:
        """Turn target texts for this node's elements into targets for its inputs (and, for
        experts, experience changes). Default: an effect or a text join says nothing about
        what its inputs should have been, so nothing flows further."""

    def coefficient(self, element: Element) -> float:
        """The element's value in the coefficient tensor (its encoded Status by default)."""
        return element.status.encode()

    def parameters(self) -> list[str]:
        """The experience tensors (by name) whose row weights this op's elements depend on."""
        return []

    def parameter_grad(
        self, run: Run, node: FutureTensor, grad: torch.Tensor, name: str
    ) -> torch.Tensor:
        """The gradient of experience `name`'s row weights, given the output's gradient."""
        raise NotImplementedError(f"{self.name} reads no experience")

    def backward(
        self, run: Run, node: FutureTensor, grad: torch.Tensor
    ) -> list[torch.Tensor | None]:
        """Default for element-wise ops: each computed element passes its gradient to the input
        elements at the same coordinates."""
        computed = computed_mask(run, node)
        return [
            grad * computed if tuple(inp.shape) == tuple(node.shape) else zeros(inp.shape)
            for inp in node.inputs
        ]


def same_shapes(shapes: list[tuple[int, ...]], node: str, op: str) -> tuple[int, ...]:
    if not shapes:
        return ()
    first = tuple(shapes[0])
    for index, other in enumerate(shapes[1:], start=1):
        if tuple(other) != first:
            raise ShapeError(
                f"node {node!r} ({op}): input 0 has shape {list(first)} but input {index} has "
                f"shape {list(other)}",
                "make the inputs the same shape (ft_expand or ft_slice them)",
            )
    return first


def zeros(shape: tuple[int, ...]) -> torch.Tensor:
    """A zero gradient (torch is imported only once gradients are asked for)."""
    import torch

    return torch.zeros(shape)


def computed_mask(run: Run, node: FutureTensor) -> torch.Tensor:
    import torch

    results = run.results.get(node.name, {})
    return torch.tensor([float(i in results) for i in range(node.numel)]).reshape(node.shape)
