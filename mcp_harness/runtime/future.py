"""FutureTensor graph nodes and their evaluation.

A `FutureTensor` is a node: an op instance, its input nodes and its logical shape. Nothing runs
when a graph is built. A `Run` evaluates nodes by pulling elements: `await run.get(node,
coords)` computes that element once (concurrent pulls of the same element share one
computation), which pulls the input elements it needs. Each element of each node is computed
at most once per run; an effect that must happen twice needs two op instances (the seed's cache
broke exactly there). Computed elements are written to `<run dir>/<node>/` in the
symbolic-tensor layout as they complete (by a writer thread, secrets redacted); when a forward
pass ends (also by error or cancellation) the statuses and metadata follow.

A run owns what it starts: the tmux sessions its ops create (recorded by name before they
exist) and the pool runners its checks spawn. `await run.close()` — or `async with run:` —
ends exactly those, however the run ended; sessions it only attached to are left alone.

After a forward pass `run.coefficients(node)` gives the node's status floats as a torch tensor
that is part of autograd: each node is one `torch.autograd.Function` whose backward asks the
op for per-element gradients of its inputs, so `loss.backward()` is plain torch.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp_harness.errors import HarnessError
from mcp_harness.redaction import redact
from mcp_harness.runtime.status import Status
from mcp_harness.runtime.writer import ElementWriter
from mcp_harness.storage import layout
from mcp_harness.storage.atomic import atomic_write
from mcp_harness.terminal.pool import Panes
from mcp_harness.terminal.session import kill_session

if TYPE_CHECKING:
    import torch

    from mcp_harness.kernels.runner import KernelRunner
    from mcp_harness.runtime.ops.base import Op

Coords = tuple[int, ...]


@dataclass(frozen=True)
class Element:
    """One computed element: its text, its Status and op-specific facts (exit code, branch…)."""

    text: str
    status: Status
    meta: dict[str, Any] = field(default_factory=dict)


class Trajectory(str):
    """The context a loop (`ft_recurrent`) gives one iteration: the text of the earlier failed
    attempts, plus where the loop is (`loop`: the coordinates it reduces over, `step`: this
    iteration), so an op inside it can look up its own elements of the earlier iterations."""

    loop: Coords
    step: int

    def __new__(cls, text: str, loop: Coords, step: int) -> Trajectory:
        made = super().__new__(cls, text)
        made.loop, made.step = tuple(loop), step
        return made

    def earlier(self, coords: Coords) -> list[Coords]:
        """The coordinates of the same element in the earlier iterations, when `coords` is this
        iteration's element of a node shaped like the loop's input; else none."""
        if tuple(coords[:-1]) != self.loop or coords[-1] != self.step:
            return []
        return [(*self.loop, step) for step in range(self.step)]


class FutureTensor:
    """A lazy graph node. Build with `FutureTensor(op, inputs)`; the op fixes the shape."""

    _ids = itertools.count()

    def __init__(self, op: Op, inputs: Sequence[FutureTensor] = (), name: str | None = None):
        self.op = op
        self.inputs = tuple(inputs)
        self.name = name or f"{op.name}_{next(self._ids)}"
        self.shape: Coords = tuple(op.infer_shape([i.shape for i in self.inputs], self.name))
        # Set by the Python API: experience tensors bound to this node by name, and the
        # reflection anchor its coefficients are multiplied by (`need_reflection`).
        self.bound: dict[str, Any] = {}
        self.anchor: Any = None

    @property
    def numel(self) -> int:
        return layout.numel(self.shape)

    def coords(self) -> Iterator[Coords]:
        return itertools.product(*(range(n) for n in self.shape))

    def __repr__(self) -> str:
        return f"FutureTensor({self.name}: {self.op.name} {list(self.shape)})"


class Run:
    """One forward pass over a graph: memoised elements, the kernel, terminals, the run dir."""

    def __init__(
        self,
        run_dir: Path,
        *,
        kernel: KernelRunner | None = None,
        inputs: dict[str, Any] | None = None,
        experience: dict[str, Any] | None = None,
        workdir: Path | None = None,
        parameters: dict[str, torch.Tensor] | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.run_id = uuid.uuid4().hex[:8]
        self.kernel = kernel
        self.inputs = inputs or {}
        self.experience = experience or {}
        self.workdir = workdir
        # Row-weight tensors by experience name (see runtime.parameters): given, the experts'
        # coefficients depend on them in autograd, so loss.backward() fills their .grad.
        self.parameters = parameters or {}
        self.sessions: dict[str, Any] = {}  # every session the run drives, by name
        self.owned: set[str] = set()  # the names of those it creates: closed by close()
        self.panes = Panes()  # pool panes its checks start: closed by close()
        self.results: dict[str, dict[int, Element]] = {}
        self._pending: dict[tuple[str, int], asyncio.Future[Element]] = {}
        self._nodes: dict[str, FutureTensor] = {}
        self._coefficients: dict[str, torch.Tensor] = {}
        # Element files are written by one thread as elements complete: file system calls
        # release the GIL, so the writing overlaps the waits on kernels and terminals.
        self._writer = ElementWriter()
        run_dir.mkdir(parents=True, exist_ok=True)

    async def get(self, node: FutureTensor, coords: Coords, trajectory: str = "") -> Element:
        """The element at `coords`, computing it (once) if needed."""
        flat = layout.flat_index(node.shape, coords)
        done = self.results.get(node.name, {}).get(flat)
        if done is not None:
            return done
        key = (node.name, flat)
        pending = self._pending.get(key)
        if pending is None:
            self._nodes[node.name] = node
            pending = asyncio.ensure_future(self._compute(node, coords, flat, trajectory))
            self._pending[key] = pending
        return await asyncio.shield(pending)

    async def _compute(self, node: FutureTensor, coords: Coords, flat: int, trajectory: str):
        element = await node.op.element(self, node, coords, trajectory)
        self.results.setdefault(node.name, {})[flat] = element
        self._pending.pop((node.name, flat), None)
        if node.op.name != "ft_const":  # literals live in the graph spec already
            self._writer.write(self.run_dir / node.name, flat, redact(element.text))
        return element

    async def forward(self, node: FutureTensor, timeout: float | None = None) -> list[Element]:
        """Every element of `node` (concurrently), in row-major order."""

        async def pull_all() -> list[Element]:
            return list(await asyncio.gather(*(self.get(node, c) for c in node.coords())))

        try:
            return await asyncio.wait_for(pull_all(), timeout)
        except TimeoutError:
            raise HarnessError(
                f"run of {node.name!r} timed out after {timeout:g} s; unfinished elements were "
                "cancelled",
                "allow more time (--timeout) or fewer steps",
            ) from None
        finally:
            for pending in list(self._pending.values()):
                pending.cancel()
            self.save()

    async def close(self) -> None:
        """Cancel unfinished elements, then end the sessions and pool runners this run started
        (and only those). Safe to call more than once."""
        pending = list(self._pending.values())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        names, self.owned = sorted(self.owned), set()
        for name in names:
            self.sessions.pop(name, None)
        await asyncio.gather(*(kill_session(name) for name in names), return_exceptions=True)
        await asyncio.to_thread(self.panes.close)

    async def __aenter__(self) -> Run:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def element(self, node: FutureTensor, coords: Coords) -> Element | None:
        """A computed element, or None if this run never computed it."""
        return self.results.get(node.name, {}).get(layout.flat_index(node.shape, coords))

    def save(self) -> None:
        """Finish writing the elements, then each node's shape, statuses and metadata."""
        self._writer.wait()
        for name, node in self._nodes.items():
            directory = self.run_dir / name
            results = self.results.get(name, {})
            layout.write_shape(directory, node.shape, durable=False)
            statuses = [
                results[i].status.encode() if i in results else None for i in range(node.numel)
            ]
            atomic_write(directory / "statuses.json", json.dumps(statuses), durable=False)
            meta = {str(i): e.meta for i, e in results.items() if e.meta}
            if meta:
                atomic_write(
                    directory / "meta.json", redact(json.dumps(meta, default=str)), durable=False
                )

    # ---- autograd ---------------------------------------------------------------------------
    def coefficients(self, node: FutureTensor) -> torch.Tensor:
        """Status floats of a computed node, as a torch tensor connected to its inputs."""
        import torch

        from mcp_harness.runtime.autograd import NodeFunction

        cached = self._coefficients.get(node.name)
        if cached is not None:
            return cached
        parents = [self.coefficients(i) for i in node.inputs]
        names = tuple(n for n in node.op.parameters() if n in self.parameters)
        results = self.results.get(node.name, {})
        values = torch.tensor(
            [node.op.coefficient(results[i]) if i in results else 0.0 for i in range(node.numel)],
            dtype=torch.float32,
        ).reshape(node.shape)
        if parents or names:
            weights = [self.parameters[n] for n in names]
            coef = NodeFunction.apply(self, node, values, names, *parents, *weights)
        else:  # a leaf: gradients accumulate in its .grad
            coef = values.requires_grad_(True)
        if node.anchor is not None:
            coef = coef * node.anchor
        self._coefficients[node.name] = coef
        return coef
