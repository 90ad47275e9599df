"""The kernel protocol: what an expert element sends to an LLM backend and what comes back.

An expert retrieves experience rows for its input element and asks a kernel for the output.
Every kernel (offline, anthropic, openai, claude-code, replay) implements `Kernel.complete`;
the shared policy (concurrency limit, retries, timeouts, accounting, budget) lives in
`KernelRunner`, so each backend only turns a request into text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Example:
    """A retrieved experience row shown to the kernel: input (key) -> output (value).

    `adapted` is the value with the row's slots filled from the request's input
    (`experience.slots.adapt`); `unfilled` names the parameters that found no counterpart and
    `fit` says how well the row's key fits the input token by token (None: not computed) and
    `rescue` how far a judge of meaning may trust the row when the input rewords its key
    (`experience.slots.Fit.rescue`); `weight` is the row's trained weight."""

    key: str
    value: str
    score: float
    row: int | None = None
    adapted: str | None = None
    unfilled: tuple[str, ...] = ()
    fit: float | None = None
    weight: float = 1.0
    rescue: float = 0.0

    @property
    def answer(self) -> str:
        return self.value if self.adapted is None else self.adapted


@dataclass(frozen=True)
class KernelRequest:
    """One element's question. `task` says what the expert does; `examples` are best first;
    `tried` are outputs this element already gave for the same input in earlier iterations of
    its loop, which failed: a kernel should answer something else."""

    task: str
    input: str
    examples: tuple[Example, ...] = ()
    trajectory: str = ""
    max_tokens: int = 1024
    tried: tuple[str, ...] = ()


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    calls: int = 0
    cost_usd: float = 0.0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.calls += other.calls
        self.cost_usd += other.cost_usd


@dataclass(frozen=True)
class KernelReply:
    """`ok` False means the kernel could not answer confidently (offline: no row scored enough).

    `confidence` in [0, 1] becomes the element's Status (confidence or failed). `row` is the
    experience row the answer came from, when the kernel knows (offline does).
    """

    text: str
    ok: bool = True
    confidence: float = 1.0
    usage: Usage = field(default_factory=Usage)
    reason: str = ""
    row: int | None = None


class Kernel(Protocol):
    name: str

    async def complete(self, request: KernelRequest) -> KernelReply: ...
