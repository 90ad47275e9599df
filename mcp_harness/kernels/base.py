"""The kernel protocol: what an expert element sends to an LLM backend and what comes back.

An expert retrieves experience rows for its input element and asks a kernel for the output.
Every kernel (offline, anthropic, openai, claude-code, replay) implements `Kernel.complete`;
the shared policy (concurrency limit, retries, timeouts, accounting, budget) lives in
`KernelRunner`, so each backend only turns a request into text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol


@dataclass(frozen=True)
class Example:
    """A retrieved experience row shown to the kernel: input (key) -> output (value).

    `adapted` is the value with the row's slots filled from the request's input
    (`experience.slots.adapt`); `unfilled` names the parameters that found no counterpart and
    `fit` says how well the row's key fits the input token by token (None: not computed) and
    `rescue` how far a judge of meaning may trust the row when the input rewords its key
    (`experience.fit.Fit.rescue`), `contradicted` whether the input says the key's sentence
    turned around (`experience.fit.Fit.contradicted`), `kinship` how far the input is the key's
    sentence, parameters aside, and `near_miss` whether it is that sentence with its point changed
    (`experience.fit.Fit.near_miss`); `fills` the slots the input filled with other words (slot,
    input's word); `weight` is the row's trained weight."""

    key: str
    value: str
    score: float
    row: int | None = None
    adapted: str | None = None
    unfilled: tuple[str, ...] = ()
    fit: float | None = None
    weight: float = 1.0
    rescue: float = 0.0
    contradicted: bool = False
    kinship: float = 0.0
    near_miss: bool = False
    fills: tuple[tuple[str, str], ...] = ()

    @property
    def answer(self) -> str:
        return self.value if self.adapted is None else self.adapted


@dataclass(frozen=True)
class KernelRequest:
    """One element's question. `task` says what the expert does; `examples` are best first;
    `tried` are outputs this element already gave for the same input in earlier iterations of
    its loop, which failed: a kernel should answer something else. `candidates` is how many
    answers the caller can use: a kernel may offer up to that many (`KernelReply.alternatives`
    after the first), which the caller tries in order before asking again."""

    task: str
    input: str
    examples: tuple[Example, ...] = ()
    trajectory: str = ""
    max_tokens: int = 1024
    tried: tuple[str, ...] = ()
    candidates: int = 1


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
    experience row the answer came from, when the kernel knows (offline does). `alternatives`
    (only for a request with `candidates` > 1): further confident answers, best first, each
    what the kernel would answer once the ones before it were tried and failed; they came
    with this call and cost nothing more.
    """

    text: str
    ok: bool = True
    confidence: float = 1.0
    usage: Usage = field(default_factory=Usage)
    reason: str = ""
    row: int | None = None
    alternatives: tuple[KernelReply, ...] = ()


def successive(
    answer: Callable[[KernelRequest], KernelReply], request: KernelRequest
) -> KernelReply:
    """For a kernel whose answer is a pure function of the request (offline): its reply plus,
    up to `request.candidates` in all, what it would answer next were each earlier answer
    tried and failed, until it has no confident answer left. One call, several candidates."""
    first = answer(request)
    alternatives: list[KernelReply] = []
    tried = (*request.tried, first.text)
    while first.ok and 1 + len(alternatives) < request.candidates:
        reply = answer(replace(request, tried=tried))
        if not reply.ok:
            break
        alternatives.append(reply)
        tried = (*tried, reply.text)
    return replace(first, alternatives=tuple(alternatives)) if alternatives else first


class Kernel(Protocol):
    name: str

    async def complete(self, request: KernelRequest) -> KernelReply: ...
