"""Second-order view of training: why did the module change?

Every backward function — an op's numeric `backward` and its `symbolic_backward` — is called
through `dispatch(fn, inputs, call)`. With no policy active it just runs `call()`. Inside
`with dispatch_policy(policy):` the policy decides; `TracePolicy` runs the call and keeps a
`ReflectionRecord(fn, inputs, output, timestamp)` of it, so a training step leaves a readable
account of which element asked for which change. The trainer saves each step's records as
`<out>/trace/step-<n>.jsonl`; `mcp-harness trace show` prints them.

`need_reflection(coefficients, anchor)` multiplies a node's coefficients by a scalar anchor
(`reflection_anchor()`): `loss.backward(create_graph=True)` then leaves in `anchor.grad` a
differentiable summary of the first-order gradients flowing through that point, and
`anchor.grad.backward()` runs the second-order pass through the same dispatch: every op's
first-order backward between the anchor and the loss is differentiated, recorded as
`<op>.backward.backward` with the first-order `grad_output` and `grad_input`.

Second order on the text channel: `CritiquePolicy(critic)` has a critic review every
first-order symbolic reflection (the targets it passed upstream) and revise it; the review is
recorded as `<fn>.critique` with the reflection's inputs and its output as `grad_input`, and a
revision replaces what the reflection asked for. `kernel_critic(kernel)` is a critic that asks
an LLM kernel. A record's `order` (1 or 2) says which pass it belongs to.

The active policy is a context variable (not thread-local: backward passes may hop threads and
asyncio tasks), and nesting two policies raises `PolicyConflictError`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_harness.storage.atomic import atomic_write

_ACTIVE: contextvars.ContextVar[Policy | None] = contextvars.ContextVar("policy", default=None)


class PolicyConflictError(RuntimeError):
    """A backward-dispatch policy was activated while another one is active."""


SECOND_ORDER = (".backward.backward", ".critique")


@dataclass(frozen=True)
class ReflectionRecord:
    fn: str
    inputs: dict[str, Any]
    output: Any
    timestamp: float

    @property
    def order(self) -> int:
        """2 for a reflection on a reflection, else 1."""
        return 2 if self.fn.endswith(SECOND_ORDER) else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "fn": self.fn,
            "order": self.order,
            "inputs": _plain(self.inputs),
            "output": _plain(self.output),
            "timestamp": self.timestamp,
        }


class Policy:
    """Decides how a backward function runs; the default just runs it."""

    def dispatch(self, fn: str, inputs: dict[str, Any], call: Callable[[], Any]) -> Any:
        return call()

    async def adispatch(
        self, fn: str, inputs: dict[str, Any], call: Callable[[], Awaitable[Any]]
    ) -> Any:
        return await call()


class TracePolicy(Policy, list):
    """Runs every backward function and records it (in itself, and in `records` if given,
    as the seed's `TracePolicy(records)` does)."""

    def __init__(self, records: list[ReflectionRecord] | None = None) -> None:
        super().__init__()
        self._sink = records

    def record(self, record: ReflectionRecord) -> None:
        self.append(record)
        if self._sink is not None:
            self._sink.append(record)

    def dispatch(self, fn: str, inputs: dict[str, Any], call: Callable[[], Any]) -> Any:
        output = call()
        self.record(ReflectionRecord(fn, inputs, output, time.time()))
        return output

    async def adispatch(
        self, fn: str, inputs: dict[str, Any], call: Callable[[], Awaitable[Any]]
    ) -> Any:
        output = await call()
        self.record(ReflectionRecord(fn, inputs, output, time.time()))
        return output

    def save(self, path: Path) -> None:
        atomic_write(
            path, "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in self)
        )


Critic = Callable[[ReflectionRecord], Awaitable[dict[str, Any] | None]]


class CritiquePolicy(TracePolicy):
    """Traces every call, and has `critic` review each first-order symbolic reflection:
    `await critic(record)` returns revised effects (the record's output with changed
    `input_targets`) or None to keep it."""

    def __init__(self, critic: Critic, records: list[ReflectionRecord] | None = None) -> None:
        super().__init__(records)
        self.critic = critic

    async def adispatch(
        self, fn: str, inputs: dict[str, Any], call: Callable[[], Awaitable[Any]]
    ) -> Any:
        output = await super().adispatch(fn, inputs, call)
        revised = await self.critic(self[-1])
        self.record(
            ReflectionRecord(
                f"{fn}.critique", {**inputs, "grad_input": output}, revised, time.time()
            )
        )
        return output if revised is None else revised


CRITIQUE = (
    "You check a reflection. An expert's output should have been the TARGET; the reflection "
    "concluded that the expert's input should have been the PROPOSED INPUT. If that is right, "
    "reply KEEP. Otherwise reply with the input the expert should have been given, only that."
)


def kernel_critic(kernel: Any) -> Critic:
    """A critic that asks `kernel` about every input target a reflection proposed."""
    from mcp_harness.kernels.base import KernelRequest

    async def critic(record: ReflectionRecord) -> dict[str, Any] | None:
        output = record.output if isinstance(record.output, dict) else {}
        proposed = output.get("input_targets", {})
        revised, changed = {}, False
        for name, per in proposed.items():
            revised[name] = dict(per)
            for coords, text in per.items():
                target = record.inputs.get("targets", {}).get(coords, "")
                reply = await kernel.complete(
                    KernelRequest(CRITIQUE, f"TARGET:\n{target}\n\nPROPOSED INPUT:\n{text}")
                )
                answer = reply.text.strip() if reply.ok else ""
                if answer and answer != "KEEP" and answer != text:
                    revised[name][coords], changed = answer, True
        return {**output, "input_targets": revised} if changed else None

    return critic


def dispatch(fn: str, inputs: dict[str, Any], call: Callable[[], Any]) -> Any:
    policy = _ACTIVE.get()
    return call() if policy is None else policy.dispatch(fn, inputs, call)


async def adispatch(fn: str, inputs: dict[str, Any], call: Callable[[], Awaitable[Any]]) -> Any:
    """`dispatch` for backward functions that await (symbolic backward may call a kernel)."""
    policy = _ACTIVE.get()
    return await (call() if policy is None else policy.adispatch(fn, inputs, call))


@contextlib.contextmanager
def dispatch_policy(policy: Policy) -> Iterator[Policy]:
    if _ACTIVE.get() is not None:
        raise PolicyConflictError("a backward-dispatch policy is already active")
    token = _ACTIVE.set(policy)
    try:
        yield policy
    finally:
        _ACTIVE.reset(token)


def reflection_anchor() -> Any:
    import torch

    return torch.ones((), requires_grad=True)


def need_reflection(coefficients: Any, anchor: Any) -> Any:
    """`coefficients * anchor`: gradients through this point also reach the anchor."""
    return coefficients * anchor


def load_records(path: Path) -> list[dict[str, Any]]:
    """The reflection records of one `trace/step-<n>.jsonl` file, one JSON object a line."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def recorded_steps(where: Path) -> tuple[Path, list[int]]:
    """The folder holding a training run's step files (`where` itself, its `trace/`, or a
    step file's folder) and the step numbers recorded there, in order."""
    folder = where.parent if where.is_file() else where
    if (folder / "trace").is_dir():
        folder = folder / "trace"
    steps = sorted(
        int(p.stem.split("-")[1])
        for p in folder.glob("step-*.jsonl")
        if p.stem.split("-")[1].isdigit()
    )
    return folder, steps


def step_file(where: Path, step: int | None) -> Path:
    """The step file `where` names: itself if it is one, else step `step` (None: the last)
    of the run directory or trace folder `where`; a HarnessError names what is missing."""
    from mcp_harness.errors import HarnessError

    if where.is_file():
        return where
    folder, steps = recorded_steps(where)
    if not steps:
        raise HarnessError(
            f"{where}: no reflection records (trace/step-<n>.jsonl)",
            "point at a training run directory (the --out of `mcp-harness train`, or the "
            "'out' of a module_train_start result)",
        )
    chosen = steps[-1] if step is None else step
    if chosen not in steps:
        raise HarnessError(
            f"{where}: no step {chosen}", f"steps recorded: {', '.join(map(str, steps))}"
        )
    return folder / f"step-{chosen}.jsonl"


def _plain(value: Any) -> Any:
    """JSON-friendly: tensors become lists, tuples lists, objects their str."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
