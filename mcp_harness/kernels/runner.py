"""The policy every kernel shares: concurrency limit, timeout, retries, accounting, budget.

Backends only turn a request into text; `KernelRunner` wraps any of them and is itself a
`Kernel`:
- one semaphore per runner bounds the calls in flight, and `admit()` paces the preparation of
  requests so that limit stays full (`Lookahead`);
- each attempt runs under `asyncio.timeout` (in the caller's task: `wait_for` would start one
  per call); a timeout is a HarnessError naming the kernel and the limit, and is not retried (a
  stuck endpoint would otherwise cost retries x timeout);
- 429 / 5xx / connection failures are retried with exponential backoff and jitter from a seeded
  RNG (reproducible delays), honouring a short `retry-after`; other failures fail at once;
- usage is summed in `runner.usage`, priced from the model table when the backend reports no
  cost (unknown model: $0 and a line in `runner.notes`);
- a `Budget` is checked *before* each call against what was spent plus what calls in flight may
  still spend plus this call's worst case (prompt estimate + `max_tokens`), so a run stops
  cleanly with `BudgetExceeded` instead of going over.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace

from mcp_harness.errors import HarnessError
from mcp_harness.kernels.base import Kernel, KernelReply, KernelRequest, Usage
from mcp_harness.kernels.failures import classify
from mcp_harness.kernels.pricing import cost_usd, price_of
from mcp_harness.kernels.prompt import SYSTEM_PROMPT, render_prompt

MAX_BACKOFF_S = 30.0


def estimate_usage(request: KernelRequest) -> Usage:
    """A call's worst case before it is made: the prompt at ~3 characters a token (generous for
    English and code) plus the full `max_tokens` of output."""
    chars = len(render_prompt(request)) + len(SYSTEM_PROMPT)
    return Usage(input_tokens=math.ceil(chars / 3), output_tokens=request.max_tokens, calls=1)


def describe(usage: Usage) -> str:
    tokens = usage.input_tokens + usage.output_tokens
    return (
        f"{usage.calls} call{'s' if usage.calls != 1 else ''}, {tokens} tokens "
        f"({usage.input_tokens} in / {usage.output_tokens} out), ${usage.cost_usd:.4f}"
    )


class BudgetExceeded(HarnessError):
    """The next call could go over the run's budget; nothing was sent. `spent` says how much was."""

    def __init__(self, message: str, fix: str | None, spent: Usage) -> None:
        super().__init__(message, fix)
        self.spent = spent


@dataclass
class Budget:
    """Per-run limits (None = no limit). Share one Budget between runners to cap a whole run."""

    max_calls: int | None = None
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    spent: Usage = field(default_factory=Usage)
    _reserved: Usage = field(default_factory=Usage, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        for label, value in (
            ("max_calls", self.max_calls),
            ("max_tokens", self.max_tokens),
            ("max_cost_usd", self.max_cost_usd),
        ):
            if value is not None and value < 0:
                raise HarnessError(f"budget {label} is {value}", f"give {label} a value >= 0")

    def reserve(self, estimate: Usage, kernel: str) -> Usage:
        """Hold `estimate` for a call about to be made, or raise BudgetExceeded."""
        with self._lock:
            spent, held = self.spent, self._reserved
            checks = (
                ("max_calls", self.max_calls, spent.calls + held.calls, estimate.calls, "calls"),
                (
                    "max_tokens",
                    self.max_tokens,
                    _tokens(spent) + _tokens(held),
                    _tokens(estimate),
                    "tokens",
                ),
                (
                    "max_cost_usd",
                    self.max_cost_usd,
                    spent.cost_usd + held.cost_usd,
                    estimate.cost_usd,
                    "USD",
                ),
            )
            for label, limit, committed, needed, unit in checks:
                if limit is not None and committed + needed > limit:
                    pending = (
                        f" (+ {_amount(committed - _value(spent, unit), unit)} held by calls "
                        f"in flight)"
                        if committed != _value(spent, unit)
                        else ""
                    )
                    raise BudgetExceeded(
                        f"budget stop before the next {kernel} call: spent {describe(spent)}"
                        f"{pending}; the call may need {_amount(needed, unit)} and "
                        f"{label} = {limit:g}",
                        f"raise {label} to continue; results computed so far are kept",
                        replace(spent),
                    )
            self._reserved.add(estimate)
        return estimate

    def settle(self, reservation: Usage, actual: Usage | None) -> None:
        """Replace a reservation by what the call really spent (None: it spent nothing)."""
        with self._lock:
            self._reserved.add(_negate(reservation))
            if actual is not None:
                self.spent.add(actual)


def _tokens(usage: Usage) -> int:
    return usage.input_tokens + usage.output_tokens


def _value(usage: Usage, unit: str) -> float:
    return {"calls": usage.calls, "tokens": _tokens(usage), "USD": usage.cost_usd}[unit]


def _amount(value: float, unit: str) -> str:
    if unit == "USD":
        return f"${value:.4f}"
    return f"{value:g} {unit[:-1] if value == 1 else unit}"


def _negate(usage: Usage) -> Usage:
    return Usage(-usage.input_tokens, -usage.output_tokens, -usage.calls, -usage.cost_usd)


class Lookahead:
    """Paces the preparation of kernel requests so a concurrency limit stays full.

    A caller enters before it prepares a request (for an expert: retrieval and adapting each
    row to the input, synchronous work on the event loop) and leaves once the call is answered.
    At most `window` callers are inside at once — with a window of twice the concurrency
    limit, the calls in flight plus as many requests prepared ahead — and each entry waits for
    a turn of the event loop of its own. Without the turns, every element ready at once would
    prepare back to back in one pass of the loop before any call could start or any finished
    call be taken up; with them, the loop runs what became ready between two preparations:
    calls prepared earlier start, finished calls release their slots and the requests prepared
    for those slots go out at once. Entry is in order of arrival (both waits are FIFO), and
    nothing about a request or its answer changes.
    """

    def __init__(self, window: int) -> None:
        if window < 1:
            raise HarnessError(f"lookahead window is {window}", "use a window >= 1")
        self._window = asyncio.Semaphore(window)
        self._turn = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        async with self._window:
            async with self._turn:  # one entry at a time, each on its own turn of the loop
                await asyncio.sleep(0)
            yield


def admission(kernel: Kernel) -> AbstractAsyncContextManager[object]:
    """`kernel.admit()` for a KernelRunner: enter it before preparing a request for `kernel`
    and leave it once the call is answered. A bare kernel has no limit to keep full, so
    there is nothing to wait for."""
    if isinstance(kernel, KernelRunner):
        return kernel.admit()
    return contextlib.nullcontext()


class KernelRunner:
    """Wraps a kernel with the shared call policy; `await runner.complete(request)`, or, to
    keep the concurrency limit full when preparing a request takes work of its own::

        async with runner.admit():
            request = prepare()
            reply = await runner.complete(request)
    """

    def __init__(
        self,
        kernel: Kernel,
        *,
        concurrency: int = 8,
        timeout_s: float = 120.0,
        retries: int = 4,
        backoff_s: float = 0.5,
        budget: Budget | None = None,
        seed: int = 0,
        prices: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        if concurrency < 1:
            raise HarnessError(f"kernel concurrency is {concurrency}", "use concurrency >= 1")
        if timeout_s <= 0:
            raise HarnessError(f"kernel timeout_s is {timeout_s}", "use timeout_s > 0")
        if retries < 0:
            raise HarnessError(f"kernel retries is {retries}", "use retries >= 0")
        self.kernel = kernel
        self.name = kernel.name
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.budget = budget
        self.prices = dict(prices or {})
        self.usage = Usage()
        self.retried = 0
        self.notes: list[str] = []
        self._rng = random.Random(seed)
        self._semaphore: asyncio.Semaphore | None = None
        self._lookahead: Lookahead | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._entered = 0

    def _limit(self) -> asyncio.Semaphore:
        """The semaphore of the running loop (rebuilt when a later `asyncio.run` reuses us)."""
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            if self._entered:
                raise HarnessError(
                    f"{self.name} kernel runner used from two event loops at once",
                    "run all kernel calls of one run on one event loop",
                )
            self._loop, self._semaphore = loop, asyncio.Semaphore(self.concurrency)
            self._lookahead = Lookahead(2 * self.concurrency)
        return self._semaphore

    def admit(self) -> AbstractAsyncContextManager[None]:
        """Enter before preparing a request, leave once its call is answered: up to
        `concurrency` requests are prepared ahead while the calls in flight wait, one per turn
        of the event loop (`Lookahead`), so a slot that frees is taken at once."""
        self._limit()
        assert self._lookahead is not None
        return self._lookahead.admit()

    @property
    def model(self) -> str | None:
        return getattr(self.kernel, "model", None)

    @property
    def billable(self) -> bool:
        return bool(getattr(self.kernel, "billable", True))

    @property
    def reads(self) -> int:
        """How many rows the kernel reads per question whatever an expert's topk (0: topk)."""
        return int(getattr(self.kernel, "reads", 0))

    def _estimate(self, request: KernelRequest) -> Usage:
        estimate = estimate_usage(request)
        price = price_of(self.model, self.prices)
        if price is not None:
            estimate.cost_usd = cost_usd(estimate, price)
        return estimate

    def _priced(self, usage: Usage) -> Usage:
        usage = replace(usage)
        if usage.cost_usd or not (usage.input_tokens or usage.output_tokens):
            return usage
        price = price_of(self.model, self.prices)
        if price is None:
            note = (
                f"no price known for model {self.model!r}: its cost is counted as $0 "
                f'(add it under [kernel.prices] in config.toml: "{self.model}" = [in, out] '
                f"USD per million tokens)"
            )
            if note not in self.notes:
                self.notes.append(note)
            return usage
        usage.cost_usd = cost_usd(usage, price)
        return usage

    def backoff_delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        if retry_after_s is not None:
            return retry_after_s
        base = min(MAX_BACKOFF_S, self.backoff_s * (2**attempt))
        return base * (0.5 + self._rng.random())  # jitter in [0.5, 1.5) x base

    async def complete(self, request: KernelRequest) -> KernelReply:
        limit = self._limit()
        self._entered += 1
        try:
            async with limit:
                return await self._attempts(request)
        finally:
            self._entered -= 1

    async def _attempts(self, request: KernelRequest) -> KernelReply:
        attempt = 0
        while True:
            reservation = None
            if self.budget is not None and self.billable:
                reservation = self.budget.reserve(self._estimate(request), self.name)
            try:
                async with asyncio.timeout(self.timeout_s):
                    reply = await self.kernel.complete(request)
            except TimeoutError:
                self._release(reservation)
                raise HarnessError(
                    f"{self.name} kernel gave no answer within {self.timeout_s:g} s",
                    "raise timeout_s in the [kernel] section of config.toml, or check that "
                    "the endpoint is up",
                ) from None
            except Exception as exc:
                self._release(reservation)
                failure = classify(exc, self.name, getattr(self.kernel, "base_url", None))
                if not failure.retryable or attempt >= self.retries:
                    if failure.retryable:
                        failure.error.message += f" (after {attempt + 1} attempts)"
                    if failure.error is exc:
                        raise
                    raise failure.error from exc
                await asyncio.sleep(self.backoff_delay(attempt, failure.retry_after_s))
                attempt += 1
                self.retried += 1
                continue
            except BaseException:
                self._release(reservation)
                raise
            usage = self._priced(reply.usage)
            if reservation is not None and self.budget is not None:
                self.budget.settle(reservation, usage)
            self.usage.add(usage)
            return replace(reply, usage=usage)

    def _release(self, reservation: Usage | None) -> None:
        if reservation is not None and self.budget is not None:
            self.budget.settle(reservation, None)

    def summary(self) -> str:
        """One line for the end of a run: what this runner spent."""
        retried = f", {self.retried} retried" if self.retried else ""
        return f"{self.name}: {describe(self.usage)}{retried}"
