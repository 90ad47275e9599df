"""The Python API, with the seed's names: compose a harness from lazy ops, run it on any
kernel, train it with `loss.backward()` and `StSGD`, and save it as a module the CLI and the
MCP tools serve.

```python
from mcp_harness import make_tensor, ft_const, ft_expert, Session, StSGD
exp = make_tensor([["list files", "list the files", "ls"]], "/tmp/exp", name="cmd")
out = ft_expert(ft_const(["list the files"]), exp)     # shape checked here, nothing runs
with Session(kernel="offline") as s:
    print(s.forward(out))                              # ['ls']
    loss = s.target_loss(out, {(0,): "ls -la"})        # edit distance to the target
    optimizer = StSGD([exp], lr=0.2)
    loss.backward()                                    # numeric .grad + symbolic rows
    optimizer.step()
```
Every registered op (`ft_*`, `st_*`) is a function `op(*inputs, *args, name=None, **args)`:
input nodes first, then the op's arguments in the order its docs list them (or by keyword);
an experience tensor may stand for its name. `to_spec(node)` / `from_spec(spec)` convert to
and from the JSON graph spec; `save_module(node, dir)` writes a module directory.
"""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from mcp_harness.errors import HarnessError
from mcp_harness.runtime.future import Coords, FutureTensor
from mcp_harness.runtime.ops import OPS
from mcp_harness.runtime.parameters import experience_parameter, is_experience_parameter
from mcp_harness.runtime.reflection import (
    CritiquePolicy,
    Policy,
    PolicyConflictError,
    ReflectionRecord,
    TracePolicy,
    dispatch_policy,
    kernel_critic,
    reflection_anchor,
)

# Also attributes, resolved on first use (`__getattr__`): `StSGD` (imports torch),
# `DirectoryLoader` (training.loader) and one
# `ft_<op>` constructor per registered op.
__all__ = [
    "CritiquePolicy",
    "Policy",
    "PolicyConflictError",
    "ReflectionRecord",
    "Session",
    "TracePolicy",
    "dispatch_policy",
    "from_spec",
    "ft_reflection_starter",
    "harness_module",
    "kernel_critic",
    "make_tensor",
    "need_reflection",
    "op_function",
    "save_module",
    "to_dense",
    "to_sparse",
    "to_spec",
]


def make_tensor(rows: Sequence[Sequence[str]], root: Path | str, name: str | None = None):
    """An `[N, 3]` experience tensor of (query, key, value) rows at `<root>/<uid>`, as a torch
    leaf of row weights (see `runtime.parameters`); `[]` makes an empty one (cold start)."""
    from mcp_harness.experience.store import Experience, Row

    uid = uuid.uuid4().hex
    experience = Experience.create(Path(root) / uid)
    experience.append([Row.from_list(list(r), source="make_tensor") for r in rows])
    return experience_parameter(experience, name or f"experience_{uid[:8]}")


def to_sparse(nested: Any) -> list[tuple[Coords, str]]:
    """The sparse view of nested texts: (coordinates, text) of every present (non-None)
    element, in row-major order."""
    found: list[tuple[Coords, str]] = []

    def walk(value: Any, coords: Coords) -> None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*coords, index))
        elif value is not None:
            found.append((coords, str(value)))

    walk(nested, ())
    return found


def to_dense(entries: Iterable[tuple[Sequence[int], str]], shape: Sequence[int]) -> Any:
    """The dense view: nested lists of `shape` with each entry's text at its coordinates and
    None elsewhere (`ft_const` of it is a graph leaf)."""
    from mcp_harness.storage.layout import flat_index, numel

    shape = tuple(shape)
    flat: list[str | None] = [None] * numel(shape)
    for coords, text in entries:
        flat[flat_index(shape, tuple(coords))] = text

    def fold(items: list, dims: tuple[int, ...]) -> Any:
        if not dims:
            return items[0]
        step = len(items) // dims[0] if dims[0] else 0
        return [fold(items[i * step : (i + 1) * step], dims[1:]) for i in range(dims[0])]

    return fold(flat, shape)


def ft_reflection_starter():
    """The scalar anchor of second-order reflection (`need_reflection`)."""
    return reflection_anchor()


def need_reflection(node: Any, anchor: Any) -> Any:
    """Anchor reflection at `node`: its coefficients are multiplied by `anchor`, so after
    `loss.backward(create_graph=True)` `anchor.grad` summarises the first-order gradients
    through it and `anchor.grad.backward()` runs the second-order pass. Returns `node` (for a
    torch tensor: `tensor * anchor`)."""
    if isinstance(node, FutureTensor):
        node.anchor = anchor
        return node
    return node * anchor


def op_function(op_name: str) -> Callable[..., FutureTensor]:
    """The Python constructor of a registered op (see the module docstring)."""
    cls = OPS.get(op_name)
    if cls is None:
        raise AttributeError(f"no op {op_name!r}; ops: {', '.join(sorted(OPS))}")

    def build(*given: Any, name: str | None = None, **args: Any) -> FutureTensor:
        inputs: list[FutureTensor] = []
        values: list[Any] = []
        for item in given:
            if isinstance(item, FutureTensor):
                if values:
                    raise HarnessError(
                        f"{op_name}: input node {item.name!r} given after an argument",
                        "give input nodes first, then arguments",
                    )
                inputs.append(item)
            elif op_name == "ft_switch" and _is_cases(item):
                args["cases"] = [case for case, _ in item]
                inputs.extend(branch for _, branch in item)
            else:
                values.append(item)
        free = [key for key in cls.ARGS if key not in args]
        if len(values) > len(free):
            raise HarnessError(
                f"{op_name}: {len(values)} positional arguments but it takes {free}",
                "pass arguments by keyword",
            )
        args.update(zip(free, values, strict=False))
        bound = {}
        for key, value in list(args.items()):
            if is_experience_parameter(value):
                bound[value.st_name] = value
                args[key] = value.st_name
        node = FutureTensor(cls(**args), inputs, name=name)
        node.bound = bound
        return node

    build.__name__ = build.__qualname__ = op_name
    build.__doc__ = cls.__doc__
    return build


def _is_cases(item: Any) -> bool:
    return isinstance(item, (list, tuple)) and all(
        isinstance(c, tuple) and len(c) == 2 and isinstance(c[1], FutureTensor) for c in item
    )


def nodes_of(output: FutureTensor) -> list[FutureTensor]:
    """Every node `output` depends on, inputs first (the spec's order)."""
    order: list[FutureTensor] = []
    seen: set[int] = set()

    def visit(node: FutureTensor) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        for parent in node.inputs:
            visit(parent)
        order.append(node)

    visit(output)
    names = [n.name for n in order]
    for node in order:
        if names.count(node.name) > 1:
            raise HarnessError(
                f"two nodes of the graph are named {node.name!r}", "give each node its own name"
            )
    return order


def parameters_of(output: FutureTensor) -> dict[str, Any]:
    """The experience tensors bound anywhere in the graph of `output`, by name."""
    found: dict[str, Any] = {}
    for node in nodes_of(output):
        for name, param in node.bound.items():
            if found.get(name, param) is not param:
                raise HarnessError(
                    f"two experience tensors are named {name!r}",
                    "give each make_tensor its own name",
                )
            found[name] = param
    return found


def to_spec(output: FutureTensor, name: str = "module") -> dict[str, Any]:
    """The JSON graph spec of `output`'s graph (experience by absolute path)."""
    nodes = nodes_of(output)
    spec: dict[str, Any] = {"name": name, "inputs": {}, "experience": {}, "nodes": []}
    for node in nodes:
        entry: dict[str, Any] = {"id": node.name, "op": node.op.name}
        if node.inputs:
            entry["inputs"] = [i.name for i in node.inputs]
        if node.op.args:
            entry["args"] = node.op.args
        spec["nodes"].append(entry)
        if node.op.name == "ft_input":
            spec["inputs"][node.op.args["input"]] = list(node.op.args["shape"])
    for exp_name, param in parameters_of(output).items():
        spec["experience"][exp_name] = str(param.experience.path)
    spec["output"] = output.name
    return json.loads(json.dumps(spec))  # plain JSON values only


def from_spec(spec: dict[str, Any], base: Path | str = ".") -> FutureTensor:
    """The output node of a graph spec, its experience opened (as a `module.json` names it:
    paths relative to `base`, or pool addresses and `[stores]` names) and bound."""
    from mcp_harness.experience.backend import open_at
    from mcp_harness.runtime.graph import build
    from mcp_harness.runtime.module import stores

    graph = build(spec)
    params = {
        exp_name: experience_parameter(open_at(where), exp_name)
        for exp_name, where in stores(Path(base).absolute(), spec).items()
    }
    for node in graph.nodes.values():
        node.bound = {n: params[n] for n in node.op.parameters() if n in params}
    return graph.output


def save_module(output: FutureTensor, directory: Path | str, name: str | None = None) -> Path:
    """Write `output`'s graph as a module directory (`module.json`), runnable by
    `mcp-harness module run <dir>` and served by the MCP tools."""
    from mcp_harness.runtime.module import SPEC
    from mcp_harness.storage.atomic import atomic_write

    directory = Path(directory).absolute()
    directory.mkdir(parents=True, exist_ok=True)
    spec = to_spec(output, name or directory.name)
    atomic_write(directory / SPEC, json.dumps(spec, indent=2, ensure_ascii=False) + "\n")
    return directory


class Session:
    """One forward pass of Python-built graphs on a kernel (a name or a KernelRunner), on its
    own event loop; closing it ends the tmux sessions its ops started. Element files go to
    `run_dir` (default: a temporary directory removed on close). Synchronous: from async
    code, use `runtime.future.Run` directly."""

    def __init__(
        self,
        kernel: Any = "offline",
        inputs: dict[str, Any] | None = None,
        run_dir: Path | str | None = None,
        workdir: Path | str | None = None,
    ) -> None:
        import tempfile

        from mcp_harness.kernels.config import make_kernel
        from mcp_harness.runtime.future import Run

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise HarnessError(
                "Session is synchronous and was made inside a running event loop",
                "from async code, build a runtime.future.Run and await run.forward(node)",
            )

        self.kernel = make_kernel(kernel) if isinstance(kernel, str) or kernel is None else kernel
        self._scratch = None
        if run_dir is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="harness-run-")
            run_dir = self._scratch.name
        self.run = Run(
            Path(run_dir),
            kernel=self.kernel,
            inputs=inputs,
            workdir=Path(workdir) if workdir else None,
        )
        self._loop = asyncio.new_event_loop()

    def _bind(self, output: FutureTensor) -> None:
        for exp_name, param in parameters_of(output).items():
            self.run.experience[exp_name] = param.experience
            self.run.parameters[exp_name] = param

    def forward(self, output: FutureTensor, timeout: float | None = None) -> list[str]:
        """Every element of `output`, computed (once per session), as texts in row-major
        order; `elements(output)` gives their statuses and facts."""
        self._bind(output)
        elements = self._loop.run_until_complete(self.run.forward(output, timeout))
        return [e.text for e in elements]

    def elements(self, node: FutureTensor) -> list[Any]:
        return [self.run.element(node, c) for c in node.coords()]

    def coefficients(self, node: FutureTensor):
        """The node's status floats as a torch tensor in autograd (after `forward`)."""
        return self.run.coefficients(node)

    def status_loss(self, node: FutureTensor):
        """1 - the mean status of `node` (0 when every element is fully confident)."""
        from mcp_harness.training.losses import status_loss

        return status_loss(self.run, node)

    def target_loss(self, node: FutureTensor, targets: dict[Coords, str]):
        """The mean edit distance of `node`'s elements to `targets` (coords -> text). Its
        backward is both channels: numeric gradients through every node to the experience
        tensors' `.grad`, and the symbolic pass (targets flow back, experts propose rows and
        patches) into their `.symbolic_grad`."""
        import torch

        from mcp_harness.training.losses import edit_distance

        self._bind(node)
        numeric = edit_distance(self.run, node, targets)
        hook = functools.partial(self._symbolic, node, {node.name: dict(targets)})
        return _SymbolicLoss.apply(hook, numeric) if torch.is_grad_enabled() else numeric

    def _symbolic(self, output: FutureTensor, targets: dict[str, dict[Coords, str]]) -> None:
        from mcp_harness.runtime.gradients import backward
        from mcp_harness.runtime.graph import Graph

        nodes = {n.name: n for n in nodes_of(output)}
        graph = Graph({}, nodes, output, {})
        grads = self._loop.run_until_complete(backward(self.run, graph, targets))
        params = parameters_of(output)
        for change in (*grads.rows, *grads.patches):
            params[change.experience].symbolic_grad.append(change)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._loop.run_until_complete(self.run.close())
        finally:
            self._loop.close()
            if self._scratch is not None:
                self._scratch.cleanup()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def harness_module(output: FutureTensor):
    """`output`'s graph as a `torch.nn.Module` (see `_module_class`)."""
    return _module_class()(output)


@functools.cache
def _module_class():
    import torch

    class HarnessModule(torch.nn.Module):
        """A graph as an nn.Module: its experience tensors are the module's parameters (so
        `StSGD(module.parameters())`, `state_dict()`, `named_parameters()` work), and
        `module(session)` runs the graph in `session` and returns the output's status floats,
        a tensor in autograd."""

        def __init__(self, output: FutureTensor) -> None:
            super().__init__()
            self.output = output
            for exp_name, param in parameters_of(output).items():
                self.register_parameter(exp_name, param)

        def forward(self, session: Session, timeout: float | None = None) -> torch.Tensor:
            session.forward(self.output, timeout)
            return session.coefficients(self.output)

        def to_spec(self, name: str = "module") -> dict[str, Any]:
            return to_spec(self.output, name)

    return HarnessModule


class _SymbolicLoss:
    """Identity on the loss value; its backward also runs the symbolic pass (once per
    backward call), then passes the numeric gradient on."""

    @staticmethod
    def apply(hook: Callable[[], None], loss: Any) -> Any:
        return _symbolic_function().apply(hook, loss)


@functools.cache
def _symbolic_function():
    import torch

    class SymbolicLoss(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, hook: Callable[[], None], loss: torch.Tensor) -> torch.Tensor:
            ctx.hook = hook
            return loss.clone()

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
            ctx.hook()
            return None, grad

    return SymbolicLoss


def __getattr__(name: str) -> Any:
    if name == "StSGD":
        from mcp_harness.training.optimizer import StSGD

        return StSGD
    if name == "DirectoryLoader":
        from mcp_harness.training.loader import DirectoryLoader

        return DirectoryLoader
    if name in OPS:
        return op_function(name)
    raise AttributeError(f"module 'mcp_harness.api' has no attribute {name!r}")


def __dir__() -> Iterable[str]:
    return sorted({*globals(), *__all__, *OPS})
